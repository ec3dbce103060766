//! Integration tests of the `earshot` binary and its server, over real sockets and real
//! stores. One test binary: `helpers` builds apps and seeds calls.

mod assist;
mod bad_input;
mod cli;
mod cross_node;
mod fake_llm;
mod health;
mod helpers;
mod lifecycle;
mod panel;
mod pii_logs;
mod replay;
mod resume;
mod rulesets;
mod schema_regressions;
mod tenants;
