//! Integration tests of the `earshot` binary and its server, over real sockets and real
//! stores. One test binary: `helpers` builds apps and seeds calls.

mod cli;
mod health;
mod helpers;
mod lifecycle;
