//! The `earshot` binary's library: settings, the HTTP server and the CLI subcommands, kept
//! in a library so integration tests can build the server in-process (`server::build`)
//! and call it over a real socket.
//!
//! # Layout
//!
//! - `cli`: the clap command tree and each subcommand's entry point (`serve`, `migrate`,
//!   `events`, `rules check`).
//! - `settings`: where the store is (`DATABASE_URL`, or an SQLite file in the data dir).
//! - `server`: [`server::build`] → a bound address and the future that serves until
//!   shutdown; the routes and the background tasks it supervises.
//! - `events`: the `events` subcommand's rendering of a call's log and rebuilt state.
//! - `replay`: `replay`, transcripts streamed into a running server as live calls (one,
//!   printed; or many at once, with a latency and loss report).
//! - `rules_check`: `rules check`, a ruleset validated and run over a redacted transcript.
//! - `telemetry`: tracing setup (pretty in a terminal, JSON lines otherwise).
//! - `web`: the CSR guidance panel (`apps/earshot/web/`), compiled in and served at `/`.

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod engines;
pub mod events;
pub mod hub;
pub mod pipeline;
pub mod replay;
pub mod rules_check;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod web;
pub mod worker;
