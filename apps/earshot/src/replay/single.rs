//! One call, printed: the call's events as they arrive, then its summary.

use std::io::Write;
use std::sync::Arc;

use tokio::time::Instant;

use super::client::{Failure, Server, retrying};
use super::feed::{Feed, Rest, wire_segments};
use super::link::{EventMsg, Link, Observer, Until};
use super::render::{Tally, clock, lines};
use super::report::speed_label;
use super::view::ViewFile;
use super::{Loaded, Options};

/// Prints events: human-readable lines, or (`--json`) each `event` message as received.
/// Notes about the replay itself go to stdout with the lines, or to stderr beside JSON.
struct Printer {
    json: bool,
    verbose: bool,
    tally: Tally,
    /// `--dump-views`: every event applied, as received.
    view: Option<ViewFile>,
}

impl Printer {
    fn out(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn note(&self, line: &str) {
        if self.json {
            eprintln!("{line}");
        } else {
            self.out(line);
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, e: &EventMsg, _arrived: Instant) {
        self.tally.add(e);
        if let Some(v) = self.view.as_mut() {
            v.record(e);
        }
        if self.json {
            self.out(e.raw.trim_end());
        } else {
            for line in lines(e) {
                self.out(&line);
            }
        }
    }

    fn gap(&mut self, missing: u64, seq: u64) {
        eprintln!("warning: {missing} event(s) before seq {seq} never arrived");
    }

    fn draft(&mut self, suggestion_id: &str, index: u64, delta: &str) {
        if self.verbose && !self.json {
            self.out(&format!(
                "                  (draft {suggestion_id} #{index}: {delta:?})"
            ));
        }
    }

    fn reconnecting(&mut self, why: &str) {
        eprintln!("{why}: reconnecting and resuming");
    }
}

pub async fn replay(server: Arc<Server>, file: &Loaded, opts: &Options) -> anyhow::Result<()> {
    let t = &file.transcript;
    let (call, how) = match opts.call {
        Some(call) => {
            let info = server.call_info(call).await?;
            if info.status != "live" {
                anyhow::bail!(
                    "call {call} is {}: only a live call takes segments",
                    info.status
                );
            }
            (call, "into the existing call")
        }
        None => (server.start_call(&opts.agent).await?, "as call"),
    };
    let mut p = Printer {
        json: opts.json,
        verbose: opts.verbose,
        tally: Tally::default(),
        view: match &opts.dump_views {
            Some(dir) => Some(ViewFile::create(dir, call).map_err(|e| {
                anyhow::anyhow!(
                    "--dump-views: cannot create the view of call {call} in {}: {e}",
                    dir.display()
                )
            })?),
            None => None,
        },
    };
    let duration = t.segments.iter().map(|s| s.end_ms).max().unwrap_or(0);
    p.note(&format!(
        "replaying {} ({}: {} segments, {}) {how} {call} at {}{}",
        file.path.display(),
        t.title,
        t.segments.len(),
        clock(duration),
        speed_label(opts.speed),
        if opts.rest {
            ", segments over REST"
        } else {
            ""
        }
    ));
    let mut link = Link::open(server.clone(), call, true).await?;
    link.drive(None, &mut p, Until::Subscribed).await?;

    let mut feed = Feed::new(wire_segments(t), opts.speed);
    if opts.rest {
        feed.rest = Some(Rest::spawn(server.clone(), call, feed.segments.clone()));
    }
    let started = Instant::now();
    feed.start(started);
    link.drive(Some(&mut feed), &mut p, Until::AllAcked).await?;
    let sent_in = started.elapsed();
    let ended = retrying(|| server.end_call(call)).await?;
    p.note(&format!(
        "all {} segments acknowledged in {:.1} s{}; {}; waiting up to {} s for the summary",
        feed.segments.len(),
        sent_in.as_secs_f64(),
        if feed.resent > 0 {
            format!(" ({} resent after a reconnect)", feed.resent)
        } else {
            String::new()
        },
        if ended {
            "ended the call (completed)"
        } else {
            "the call had already ended"
        },
        opts.summary_timeout.as_secs()
    ));
    match tokio::time::timeout(
        opts.summary_timeout,
        link.drive(None, &mut p, Until::Summary),
    )
    .await
    {
        Ok(r) => r?,
        Err(_) => {
            return Err(Failure::Fatal(format!(
                "no summary for call {call} within {} s after it ended (is an assist worker \
                 running? `earshot serve` runs one unless --no-assist)",
                opts.summary_timeout.as_secs()
            ))
            .into());
        }
    }
    link.close().await;
    p.note(&format!("call {call}: {}", p.tally.line()));
    if let Some(v) = p.view.take() {
        v.finish()?;
    }
    Ok(())
}
