//! `--calls N`: N calls at once, each with an ingest socket sending its segments and a
//! subscriber socket timing what comes back and checking its seqs; then the report.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use domain::{CallEvent, CallId};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{Failure, Server, retrying};
use super::feed::{Counters, Feed, Rest, SendTimes, segment_index, wire_segments};
use super::link::{EventMsg, Link, Observer, Until};
use super::report::{CallOutcome, LoadReport};
use super::view::ViewFile;
use super::{Loaded, Options};

/// How long the loss check waits for a subscriber to reach the call's top seq.
const CATCH_UP: Duration = Duration::from_secs(5);

/// The subscriber's view: latencies against the ingest side's send times, and counts.
struct Timer {
    sent_at: SendTimes,
    segment_latency: Vec<u64>,
    alert_latency: Vec<u64>,
    alerts: u64,
    suggestions: u64,
    summaries: u64,
    /// `--dump-views`: every event applied, as received.
    view: Option<ViewFile>,
}

impl Timer {
    fn since_sent(&self, segment_id: &str, arrived: Instant) -> Option<u64> {
        let k = segment_index(segment_id)?;
        let sent = (*self.sent_at.lock().expect("send times").get(k)?)?;
        Some(arrived.saturating_duration_since(sent).as_micros() as u64)
    }
}

impl Observer for Timer {
    fn event(&mut self, e: &EventMsg, arrived: Instant) {
        if let Some(v) = self.view.as_mut() {
            v.record(e);
        }
        match &e.event {
            Some(CallEvent::SegmentAdded(s)) => {
                if let Some(us) = self.since_sent(s.segment_id.as_str(), arrived) {
                    self.segment_latency.push(us);
                }
            }
            Some(CallEvent::AlertRaised(a)) => {
                self.alerts += 1;
                if let Some(us) = a
                    .segment_id
                    .as_ref()
                    .and_then(|s| self.since_sent(s.as_str(), arrived))
                {
                    self.alert_latency.push(us);
                }
            }
            Some(CallEvent::ReplySuggested(_)) => self.suggestions += 1,
            Some(CallEvent::SummaryGenerated(_)) => self.summaries += 1,
            _ => {}
        }
    }
}

/// The ingest socket reports nothing: its acks are the feed's business.
struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _e: &EventMsg, _arrived: Instant) {}
}

pub async fn run(
    server: Arc<Server>,
    files: Vec<Loaded>,
    opts: &Options,
) -> anyhow::Result<LoadReport> {
    let files: Vec<Arc<Loaded>> = files.into_iter().map(Arc::new).collect();
    let n = opts.calls;
    let total: usize = (0..n)
        .map(|i| files[i % files.len()].transcript.segments.len())
        .sum();
    let counters = Arc::new(Counters::default());
    let bar = progress_bar(total as u64);
    let ticker = {
        let (bar, counters) = (bar.clone(), counters.clone());
        tokio::spawn(async move {
            loop {
                bar.set_position(counters.acked.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "sent {} · calls done {}/{n}",
                    counters.sent.load(Ordering::Relaxed),
                    counters.calls_done.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let file = files[i % files.len()].clone();
            let call = Call {
                server: server.clone(),
                agent: opts.agent.clone(),
                speed: opts.speed,
                rest: opts.rest,
                summary_timeout: opts.summary_timeout,
                counters: counters.clone(),
                dump_views: opts.dump_views.clone(),
            };
            tokio::spawn(async move { call.run(&file).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(n);
    for t in tasks {
        outcomes.push(t.await?);
    }
    ticker.abort();
    bar.finish_and_clear();
    Ok(LoadReport::new(
        outcomes,
        files.len(),
        opts.speed,
        started.elapsed().as_secs_f64(),
    ))
}

fn progress_bar(len: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} segments acked · {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

/// One simulated call.
struct Call {
    server: Arc<Server>,
    agent: domain::AgentId,
    speed: f64,
    rest: bool,
    summary_timeout: Duration,
    counters: Arc<Counters>,
    dump_views: Option<std::path::PathBuf>,
}

impl Call {
    async fn run(self, file: &Loaded) -> CallOutcome {
        let mut out = CallOutcome {
            file: file.path.display().to_string(),
            segments: file.transcript.segments.len() as u64,
            ..Default::default()
        };
        if let Err(e) = self.drive(file, &mut out).await {
            out.error = Some(e.to_string());
        }
        self.counters.calls_done.fetch_add(1, Ordering::Relaxed);
        out
    }

    async fn drive(&self, file: &Loaded, out: &mut CallOutcome) -> Result<(), Failure> {
        let server = &self.server;
        let call: CallId = server.start_call(&self.agent).await?;
        out.call_id = Some(call.to_string());
        let view = match &self.dump_views {
            Some(dir) => Some(ViewFile::create(dir, call).map_err(|e| {
                Failure::Fatal(format!(
                    "--dump-views: cannot create the view of call {call} in {}: {e}",
                    dir.display()
                ))
            })?),
            None => None,
        };
        let mut sub = Link::open(server.clone(), call, true).await?;
        let mut feed = Feed::new(wire_segments(&file.transcript), self.speed)
            .with_counters(self.counters.clone());
        let mut timer = Timer {
            sent_at: feed.sent_at.clone(),
            segment_latency: Vec::new(),
            alert_latency: Vec::new(),
            alerts: 0,
            suggestions: 0,
            summaries: 0,
            view,
        };
        sub.drive(None, &mut timer, Until::Subscribed).await?;
        let mut ingest = if self.rest {
            feed.rest = Some(Rest::spawn(server.clone(), call, feed.segments.clone()));
            Link::rest_only(server.clone(), call)
        } else {
            Link::open(server.clone(), call, false).await?
        };
        feed.start(Instant::now());

        // The summary deadline starts when the call is ended; a sender dropped without one
        // means the ingest side failed (its error is the one reported).
        let (deadline_tx, deadline_rx) = watch::channel(None::<Instant>);
        let timeout = self.summary_timeout;
        let ingest_side = async {
            let deadline_tx = deadline_tx;
            ingest
                .drive(Some(&mut feed), &mut Quiet, Until::AllAcked)
                .await?;
            ingest.close().await;
            retrying(|| server.end_call(call)).await?;
            let _ = deadline_tx.send(Some(Instant::now() + timeout));
            Ok::<_, Failure>(())
        };
        let sub_side = async {
            tokio::select! {
                r = sub.drive(None, &mut timer, Until::Summary) => r,
                _ = summary_deadline(deadline_rx) => Err(Failure::Fatal(format!(
                    "no summary within {} s after the call ended", timeout.as_secs()
                ))),
            }
        };
        let (sent, followed) = tokio::join!(ingest_side, sub_side);
        out.sent = feed.sent() as u64;
        out.acked = feed.acked() as u64;
        out.resent = feed.resent;
        out.reconnects = sub.reconnects + ingest.reconnects;
        sent?;
        followed?;

        // The loss check: every seq up to the call's top, each once.
        let top = retrying(|| server.call_info(call)).await?.top_seq;
        if sub.seqs.last < top {
            let _ =
                tokio::time::timeout(CATCH_UP, sub.drive(None, &mut timer, Until::Seq(top))).await;
        }
        sub.close().await;
        out.top_seq = top;
        out.events = sub.seqs.received;
        out.lost = sub.seqs.lost(top);
        out.duplicated = sub.seqs.duplicates;
        out.alerts = timer.alerts;
        out.suggestions = timer.suggestions;
        out.summaries = timer.summaries;
        out.segment_latency = timer.segment_latency;
        out.alert_latency = timer.alert_latency;
        if let Some(v) = timer.view {
            v.finish().map_err(|e| Failure::Fatal(e.to_string()))?;
        }
        Ok(())
    }
}

/// Resolves when the deadline set on `rx` passes, or at once if the sender is dropped
/// without setting one.
async fn summary_deadline(mut rx: watch::Receiver<Option<Instant>>) {
    loop {
        let set = *rx.borrow_and_update();
        if let Some(d) = set {
            tokio::time::sleep_until(d).await;
            return;
        }
        if rx.changed().await.is_err() {
            let set = *rx.borrow();
            if let Some(d) = set {
                tokio::time::sleep_until(d).await;
            }
            return;
        }
    }
}
