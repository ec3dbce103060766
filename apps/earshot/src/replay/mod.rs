//! `earshot replay`: recorded transcripts streamed into a running server as live calls, and
//! what the server answers printed as it arrives — or, with `--calls N`, N calls at once and
//! a latency and loss report.
//!
//! A replay is a client like any other: it speaks the REST API and the WebSocket protocol of
//! docs/protocol.md over real sockets, so it works against any server it can reach (the
//! browser panel's end-to-end test streams a transcript into a call it opened).
//!
//! One call: start it (`POST /api/v1/calls`, source `replay`) or take a live one
//! (`--call`); open a WebSocket and subscribe from seq 0; send each segment (ids `s0001`, …)
//! when it is due — its `start_ms` scaled by 1/`--speed` from the start of the replay, or at
//! speed 0 as soon as the previous one is acknowledged — over the socket, or over REST with
//! `--rest`; print every event as it arrives; once every segment is acknowledged, end the
//! call as completed (also a call taken with `--call`: the transcript is over) and wait for
//! the `summary_generated` event.
//!
//! **Invariant:** nothing is lost across a dropped connection. On a resumable close (1001,
//! 4000, 4008, 4009) or a broken socket the replay reconnects with backoff, resubscribes with
//! `since_seq` = the last seq it saw, and resends every segment not yet acknowledged with its
//! original id (the server answers a resent final segment with its original seq). A server
//! error on the socket (`internal`, `unavailable`: the server's database restarting, say) is
//! handled the same way after a pause; only a refusal ends the replay. Events are
//! de-duplicated by seq. It gives up after [`client::RESUME_WITHIN`] without progress.
//!
//! `--dump-views DIR` writes what each call's subscriber applied, as received, to
//! `DIR/<call_id>.jsonl` (module `view`), so that a harness can compare it with the log.
//!
//! # Layout
//!
//! - `client`: the REST calls, the WebSocket handshake, [`client::Failure`] (refused vs
//!   unreachable) and the retry loop.
//! - `feed`: the send schedule of one call and its unacknowledged segments.
//! - `link`: one WebSocket kept alive: subscribe, send, read, reconnect and resume.
//! - `render`: the human-readable lines for each event.
//! - `single`: one call at a time, printed.
//! - `load`: `--calls N`, the progress bar and the report; `report`: its pure parts (seq
//!   checking, percentiles, the report's text and JSON).
//! - `view`: `--dump-views`, each call's received events written to a file.

mod client;
mod feed;
mod link;
mod load;
mod render;
mod report;
mod single;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::{AgentId, CallId};
use secrecy::SecretString;
use transcript::Transcript;

pub use feed::due_after;
pub use report::{Latency, Seen, SeqTracker};

/// Everything `earshot replay` was asked to do.
pub struct Options {
    pub files: Vec<PathBuf>,
    /// The server's base URL, `http://host:port`.
    pub server: String,
    pub token: SecretString,
    /// 1 real time, 2 twice as fast, 0 as fast as the server acknowledges.
    pub speed: f64,
    /// Concurrent calls; 1 is the printed single-call mode.
    pub calls: usize,
    pub agent: AgentId,
    /// Stream into this live call instead of starting one.
    pub call: Option<CallId>,
    /// Send segments with `POST …/segments` instead of the WebSocket.
    pub rest: bool,
    pub json: bool,
    /// Also show suggestion drafts as they stream.
    pub verbose: bool,
    pub summary_timeout: Duration,
    /// Write each call's received events to `<dir>/<call_id>.jsonl`.
    pub dump_views: Option<PathBuf>,
}

/// How a replay that ran to its end went.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Load mode: some subscriber missed or repeated events (the report says which).
    EventsLost {
        lost: u64,
        duplicated: u64,
    },
}

/// A transcript file, read and parsed.
pub struct Loaded {
    pub path: PathBuf,
    pub transcript: Transcript,
}

/// Reads every file before anything is sent: one that does not parse is an error naming it.
pub fn load(files: &[PathBuf]) -> anyhow::Result<Vec<Loaded>> {
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the transcript {}", path.display()))?;
            // The parse error already says why (its source is not repeated).
            let transcript = transcript::parse(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not a transcript earshot can replay: {e}",
                    path.display()
                )
            })?;
            Ok(Loaded {
                path: path.clone(),
                transcript,
            })
        })
        .collect()
}

pub async fn run(opts: Options) -> anyhow::Result<Outcome> {
    if opts.files.is_empty() {
        anyhow::bail!("name at least one transcript file");
    }
    if opts.calls == 0 {
        anyhow::bail!("--calls: must be at least 1");
    }
    if opts.call.is_some() && (opts.calls > 1 || opts.files.len() > 1) {
        anyhow::bail!(
            "--call streams one transcript into one existing call: give one FILE, without --calls"
        );
    }
    if !(opts.speed.is_finite() && opts.speed >= 0.0) {
        anyhow::bail!("--speed: must be 0 (as fast as possible) or a positive number");
    }
    let files = load(&opts.files)?;
    if let Some(dir) = &opts.dump_views {
        view::prepare(dir)?;
    }
    let server = Arc::new(client::Server::new(&opts.server, opts.token.clone())?);
    if opts.calls == 1 {
        for file in &files {
            single::replay(server.clone(), file, &opts).await?;
        }
        return Ok(Outcome::Completed);
    }
    let report = load::run(server, files, &opts).await?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    let (lost, duplicated) = (report.lost(), report.duplicated());
    if lost > 0 || duplicated > 0 {
        return Ok(Outcome::EventsLost { lost, duplicated });
    }
    if report.failed() > 0 {
        anyhow::bail!(
            "{} of {} calls did not finish (see the report)",
            report.failed(),
            report.calls.len()
        );
    }
    Ok(Outcome::Completed)
}
