//! `earshot-load fanout`: one call followed by many WebSocket subscribers on one node.
//!
//! Two figures (docs/benchmarks.md, "Hub: one call fanned out to 10,000 WebSocket
//! subscribers"):
//!
//! - **Server memory per idle connection.** With `--server-pid`, the server's `VmRSS`
//!   (`/proc/<pid>/status`) is read after the setup (ruleset, tokens, the call, the ingest
//!   socket) and again once all `--subscribers` WebSockets are open, subscribed to the call
//!   and idle for `--idle` seconds: (after − before) / subscribers. Each subscriber is read
//!   by its own task from the moment it is subscribed, so the server's pings are answered
//!   while the other connections are still being opened.
//! - **Delivery latency.** Then one ingest socket sends `--segments` segments at `--rate` a
//!   second (each raises one alert: the `loadtest` ruleset of the load mode), and every
//!   subscriber takes the arrival instant of each segment's `alert_raised` (and of its
//!   `segment_added`) against the segment's send instant, on one monotonic clock. All
//!   subscribers × all segments go into one HdrHistogram.
//!
//! Checks, as in the load mode: contiguous seqs at every subscriber (a gap is lost, a repeat
//! duplicated), every subscriber reaches the call's top seq, every ack names an alert. The
//! tool exits with status 2 when anything was lost, duplicated or refused; the aims (p99 ≤
//! 100 ms, ≤ 16 KiB a connection) are reported, not enforced.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{StreamExt, stream};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{self, Api};
use crate::readers::{self, ReaderSched, Readers};
use crate::report::{Latency, histogram};
use crate::run::{self, Call, Clock, IngestStats, Phase, Schedule, SubscriberStats};
use crate::{SpeakerMode, progress};

/// Read and write buffer of each subscriber socket: a segment's two frames (~1 KB) fit, and
/// the tool, which shares the machine with the server, spends less on zero-filling buffers
/// (see `run::connect_with_buffers`).
const SUBSCRIBER_BUFFER: usize = 2 * 1024;
/// Threads reading the subscribers' sockets (the machine this was measured on has two cores).
const READER_THREADS: usize = 2;

/// The aims of the issue.
const AIM_P99_MS: f64 = 100.0;
const AIM_BYTES_PER_CONNECTION: f64 = 16.0 * 1024.0;

#[derive(clap::Args, Debug)]
pub struct Options {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin token of the tenant (esk_…), as printed on the server's first start.
    #[arg(long, env = "EARSHOT_TOKEN", hide_env_values = true)]
    pub token: String,
    /// WebSocket subscribers of the one call.
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// Segments the call sends (each raises one alert).
    #[arg(long, default_value_t = 60)]
    pub segments: usize,
    /// Segments per second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds the subscribed connections stay idle before the server's memory is read.
    #[arg(long, default_value_t = 5)]
    pub idle: u64,
    /// The server's process id, for its memory (`/proc/<pid>/status`); without it the
    /// memory figures are left out.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Connections opened at once during setup.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Seconds to wait, after the last send, for acks and for subscribers to reach the top.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Scheduling policy of the threads that read the subscribers' sockets: `batch` keeps
    /// their wake-ups from preempting the server on the cores both share (src/readers.rs).
    #[arg(long, value_enum, default_value_t = ReaderSched::Batch)]
    pub reader_sched: ReaderSched,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Resident memory of a process, from `/proc/<pid>/status`, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    /// `VmRSS`: everything resident.
    pub total: u64,
    /// `RssAnon`: the heap and stacks (not the mapped binary).
    pub anon: u64,
}

impl Rss {
    pub fn of(pid: &str) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        Ok(Self::parse(&status))
    }

    fn parse(status: &str) -> Self {
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .map_or(0, |n| n * 1024)
        };
        Self {
            total: kib("VmRSS:"),
            anon: kib("RssAnon:"),
        }
    }
}

/// CPU time (user + system, all threads) a process has used so far, in seconds, from
/// `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = parse_cpu_ticks(&stat).context("an unreadable /proc/<pid>/stat")?;
    Ok(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// utime + stime, the 14th and 15th fields (counted after the command name, which is in
/// parentheses and may contain spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The server's memory before and after the connections were opened.
pub struct Memory {
    pub before: Rss,
    /// Right after the last subscriber was subscribed.
    pub subscribed: Rss,
    /// After `--idle` seconds with every connection idle.
    pub idle: Rss,
    /// After the segments were delivered and every subscriber reached the top.
    pub after_run: Rss,
}

impl Memory {
    fn per_connection(&self, n: usize, f: impl Fn(&Rss) -> u64) -> f64 {
        (f(&self.idle) as f64 - f(&self.before) as f64) / n.max(1) as f64
    }
}

pub struct Report {
    pub url: String,
    pub subscribers: usize,
    pub segments: usize,
    pub rate: f64,
    pub idle_s: u64,
    pub connect_seconds: f64,
    pub memory: Option<Memory>,
    /// CPU seconds the server (with --server-pid) and the tool used from the first send
    /// until every subscriber reached the top.
    pub server_cpu_run: Option<f64>,
    pub tool_cpu_run: f64,
    /// The policy the reader threads ran under (`None`: not the one asked for).
    pub reader_sched: Option<ReaderSched>,
    /// The tool's own resident memory at the end (it holds as many client sockets).
    pub tool_rss: Rss,
    pub segments_sent: u64,
    pub segments_acked: u64,
    pub acked_without_alert: u64,
    pub ingest_errors: u64,
    pub first_ingest_error: Option<String>,
    pub alerts_expected: u64,
    pub alerts_received: u64,
    pub alerts_unmatched: u64,
    pub events_received: u64,
    /// Of those, the events replayed when the subscribers subscribed (before the run).
    pub backlog_events: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub disconnected: usize,
    pub first_disconnect: Option<String>,
    pub top_seq: u64,
    pub expected_top_seq: u64,
    pub alert_latency: Latency,
    pub segment_latency: Latency,
    pub ack_latency: Latency,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn build(
        o: &Options,
        connect_seconds: f64,
        memory: Option<Memory>,
        (server_cpu_run, tool_cpu_run): (Option<f64>, f64),
        backlog: u64,
        ingest: &IngestStats,
        subscribers: &[SubscriberStats],
        top_seq: u64,
        assist_events: u64,
        reader_sched: Option<ReaderSched>,
    ) -> Self {
        let disconnected: Vec<&SubscriberStats> =
            subscribers.iter().filter(|s| s.closed.is_some()).collect();
        Self {
            url: o.url.clone(),
            subscribers: subscribers.len(),
            segments: o.segments,
            rate: o.rate,
            idle_s: o.idle,
            connect_seconds,
            memory,
            server_cpu_run,
            tool_cpu_run,
            reader_sched,
            tool_rss: Rss::of("self").unwrap_or_default(),
            segments_sent: ingest.sent,
            segments_acked: ingest.acked,
            acked_without_alert: ingest.acked_without_alert,
            ingest_errors: ingest.errors,
            first_ingest_error: ingest.first_error.clone(),
            alerts_expected: ingest.sent * subscribers.len() as u64,
            alerts_received: subscribers.iter().map(|s| s.alerts).sum(),
            alerts_unmatched: subscribers.iter().map(|s| s.unmatched).sum(),
            events_received: subscribers.iter().map(|s| s.events).sum(),
            backlog_events: backlog,
            lost: subscribers.iter().map(|s| s.gaps + s.missing).sum(),
            duplicated: subscribers.iter().map(|s| s.duplicates).sum(),
            disconnected: disconnected.len(),
            first_disconnect: disconnected.first().and_then(|s| s.closed.clone()),
            top_seq,
            // call_started, then a segment and its alert per acked segment, plus whatever
            // the assist worker wrote.
            expected_top_seq: 1 + 2 * ingest.acked + assist_events,
            alert_latency: Latency::of(&histogram(subscribers.iter().map(|s| &s.latency))),
            segment_latency: Latency::of(&histogram(
                subscribers.iter().map(|s| &s.segment_latency),
            )),
            ack_latency: Latency::of(&histogram(std::iter::once(&ingest.ack_latency))),
        }
    }

    /// Nothing lost, duplicated or refused, and every expected alert arrived.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.disconnected == 0
            && self.ingest_errors == 0
            && self.alerts_unmatched == 0
            && self.acked_without_alert == 0
            && self.segments_acked == self.segments_sent
            && self.alerts_received == self.alerts_expected
            && self.top_seq == self.expected_top_seq
    }

    /// Server CPU during the run over the events it delivered during the run.
    fn server_cpu_per_event(&self) -> Option<f64> {
        let delivered = self.events_received.saturating_sub(self.backlog_events);
        self.server_cpu_run
            .filter(|_| delivered > 0)
            .map(|cpu| cpu / delivered as f64)
    }

    fn bytes_per_connection(&self) -> Option<f64> {
        self.memory
            .as_ref()
            .map(|m| m.per_connection(self.subscribers, |r| r.total))
    }

    pub fn to_json(&self) -> Value {
        let rss = |r: &Rss| json!({"vm_rss_bytes": r.total, "rss_anon_bytes": r.anon});
        let memory = self.memory.as_ref().map(|m| {
            json!({
                "before": rss(&m.before),
                "subscribed": rss(&m.subscribed),
                "idle": rss(&m.idle),
                "after_run": rss(&m.after_run),
                "bytes_per_idle_connection": m.per_connection(self.subscribers, |r| r.total),
                "anon_bytes_per_idle_connection": m.per_connection(self.subscribers, |r| r.anon),
            })
        });
        json!({
            "mode": "fanout",
            "url": self.url,
            "calls": 1,
            "subscribers": self.subscribers,
            "segments": self.segments,
            "rate_per_s": self.rate,
            "idle_s": self.idle_s,
            "connect_seconds": self.connect_seconds,
            "server_memory": memory,
            "tool_memory": rss(&self.tool_rss),
            "reader_sched": self.reader_sched.map(ReaderSched::name),
            "cpu_seconds_during_delivery": {
                "server": self.server_cpu_run,
                "tool": self.tool_cpu_run,
            },
            "server_cpu_us_per_delivered_event": self.server_cpu_per_event().map(|s| s * 1e6),
            "segments_sent": self.segments_sent,
            "segments_acked": self.segments_acked,
            "acked_without_alert": self.acked_without_alert,
            "ingest_errors": self.ingest_errors,
            "first_ingest_error": self.first_ingest_error,
            "alerts_expected": self.alerts_expected,
            "alerts_received": self.alerts_received,
            "alerts_unmatched": self.alerts_unmatched,
            "events_received": self.events_received,
            "backlog_events": self.backlog_events,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "subscribers_disconnected": self.disconnected,
            "first_disconnect": self.first_disconnect,
            "top_seq": self.top_seq,
            "expected_top_seq": self.expected_top_seq,
            "latency_ms": {
                "segment_to_alert": self.alert_latency.json(),
                "segment_to_segment_event": self.segment_latency.json(),
                "segment_to_ack": self.ack_latency.json(),
            },
            "aims": {
                "p99_ms": AIM_P99_MS,
                "bytes_per_idle_connection": AIM_BYTES_PER_CONNECTION,
                "p99_met": self.alert_latency.count > 0 && self.alert_latency.p99 <= AIM_P99_MS,
                "memory_met": self.bytes_per_connection().map(|b| b <= AIM_BYTES_PER_CONNECTION),
            },
            "passed": self.passed(),
        })
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut out = String::new();
        let _ = writeln!(out, "earshot-load fanout report ({})", self.url);
        let _ = writeln!(
            out,
            "  subscribers          {} WebSockets on one call, opened in {:.1} s",
            self.subscribers, self.connect_seconds
        );
        if let Some(m) = &self.memory {
            let _ = writeln!(
                out,
                "  server VmRSS (MiB)   before {:.1}, subscribed {:.1}, idle {} s {:.1}, after the run {:.1}",
                mib(m.before.total),
                mib(m.subscribed.total),
                self.idle_s,
                mib(m.idle.total),
                mib(m.after_run.total)
            );
            let _ = writeln!(
                out,
                "  per idle connection  {:.0} bytes ({:.1} KiB; RssAnon {:.1} KiB) — aim ≤ {:.0} KiB",
                m.per_connection(self.subscribers, |r| r.total),
                m.per_connection(self.subscribers, |r| r.total) / 1024.0,
                m.per_connection(self.subscribers, |r| r.anon) / 1024.0,
                AIM_BYTES_PER_CONNECTION / 1024.0
            );
        } else {
            let _ = writeln!(
                out,
                "  server memory        not measured (pass --server-pid)"
            );
        }
        let _ = writeln!(
            out,
            "  tool VmRSS           {:.1} MiB",
            mib(self.tool_rss.total)
        );
        let _ = writeln!(
            out,
            "  CPU during delivery  server {}, tool {:.1} s (readers {}){}",
            self.server_cpu_run
                .map_or("not measured".to_owned(), |c| format!("{c:.1} s")),
            self.tool_cpu_run,
            self.reader_sched
                .map_or("not under the policy asked for", ReaderSched::name),
            self.server_cpu_per_event()
                .map_or(String::new(), |c| format!(
                    " (server {:.1} µs per delivered event)",
                    c * 1e6
                ))
        );
        let _ = writeln!(
            out,
            "  segments             {} at {}/s; sent {}, acked {}, ingest errors {}",
            self.segments, self.rate, self.segments_sent, self.segments_acked, self.ingest_errors
        );
        let _ = writeln!(
            out,
            "  alerts               expected {}, received {} (unmatched {}, acks without an alert {})",
            self.alerts_expected,
            self.alerts_received,
            self.alerts_unmatched,
            self.acked_without_alert
        );
        let _ = writeln!(
            out,
            "  events at subscribers {} received; lost {}, duplicated {}, disconnected {}; top seq {} (expected {})",
            self.events_received,
            self.lost,
            self.duplicated,
            self.disconnected,
            self.top_seq,
            self.expected_top_seq
        );
        let _ = writeln!(
            out,
            "  segment → alert (ms)         {}",
            self.alert_latency.line()
        );
        let _ = writeln!(
            out,
            "  segment → segment event (ms) {}",
            self.segment_latency.line()
        );
        let _ = writeln!(
            out,
            "  segment → ack (ms)           {}",
            self.ack_latency.line()
        );
        if let Some(e) = &self.first_ingest_error {
            let _ = writeln!(out, "  first ingest error   {e}");
        }
        if let Some(e) = &self.first_disconnect {
            let _ = writeln!(out, "  first disconnect     {e}");
        }
        let _ = writeln!(
            out,
            "  aims                 p99 ≤ {AIM_P99_MS} ms: {}; ≤ {} KiB per idle connection: {}",
            if self.alert_latency.p99 <= AIM_P99_MS {
                "met"
            } else {
                "NOT met"
            },
            AIM_BYTES_PER_CONNECTION / 1024.0,
            match self.bytes_per_connection() {
                Some(b) if b <= AIM_BYTES_PER_CONNECTION => "met",
                Some(_) => "NOT met",
                None => "not measured",
            }
        );
        let _ = writeln!(
            out,
            "  result               {}",
            if self.passed() {
                "PASS (nothing lost or duplicated)"
            } else {
                "FAIL"
            }
        );
        out
    }
}

pub fn validate(o: &Options) -> anyhow::Result<()> {
    if o.subscribers == 0 || o.segments == 0 {
        bail!("--subscribers and --segments must be at least 1");
    }
    if !(o.rate > 0.0 && o.rate <= 1_000.0) {
        bail!("--rate must be above 0 and at most 1000");
    }
    Ok(())
}

pub async fn run(o: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&o.url)?;
    let n = o.subscribers;
    let period = Duration::from_secs_f64(1.0 / o.rate);
    crate::check_fd_limit(n + 1);
    let server_pid = o.server_pid.map(|p| p.to_string());
    let server_rss =
        || -> anyhow::Result<Option<Rss>> { server_pid.as_deref().map(Rss::of).transpose() };
    let server_cpu =
        || -> anyhow::Result<Option<f64>> { server_pid.as_deref().map(cpu_seconds).transpose() };

    // --- setup (not timed) ---
    let version = api.upload_ruleset(&o.token).await?;
    progress(format!("uploaded ruleset {} v{version}", api::RULESET_ID));
    let service = api
        .token(&o.token, "service", "earshot-load-ingest")
        .await?;
    let agent = api.token(&o.token, "agent", "earshot-load").await?;
    let id = api.start_call(&service, "fanout-agent", version).await?;
    let call = Arc::new(Call::new(id, o.segments));
    let ingest_ws = run::connect(&api.ws_url(&service)).await?;
    // Let the server settle after the setup's requests before the baseline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server_rss()?;

    // Sends are recorded from the epoch on: there is no warm-up (nothing is sent before the
    // run, and each subscriber's backlog holds only `call_started`).
    let clock = Clock {
        epoch: Instant::now(),
        record_from: 0,
    };
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let sub_url = api.ws_url(&agent);
    let connect_started = Instant::now();
    // Each subscriber is read from the moment it is subscribed, so the server's pings are
    // answered while the others connect.
    let mut readers = Readers::start(READER_THREADS, call.clone(), clock, o.reader_sched)?;
    if !readers.sched_applied {
        progress(format!(
            "warning: the readers could not be put under --reader-sched {}",
            o.reader_sched.name()
        ));
    }
    let reader_sched = readers.sched_applied.then_some(o.reader_sched);
    let mut connects = stream::iter(0..n)
        .map(|_| {
            let call = call.clone();
            let url = sub_url.clone();
            tokio::task::spawn_blocking(move || {
                readers::connect_and_subscribe(&url, SUBSCRIBER_BUFFER, &call, &clock)
            })
        })
        .buffer_unordered(o.connect_concurrency.max(1));
    let mut opened = 0usize;
    // Events replayed at subscribe time (the backlog), before the run's CPU is counted.
    let mut backlog = 0u64;
    while let Some(connected) = connects.next().await {
        let (ws, stats) = connected.context("a connect task panicked")??;
        backlog += stats.events;
        readers.add(ws, stats)?;
        opened += 1;
        if opened.is_multiple_of(1_000) {
            progress(format!("{opened} subscribers subscribed"));
        }
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    let subscribed = server_rss()?;
    progress(format!(
        "{n} subscribers subscribed in {connect_seconds:.1} s; idle for {} s",
        o.idle
    ));
    tokio::time::sleep(Duration::from_secs(o.idle)).await;
    let idle = server_rss()?;

    // --- the run ---
    let cpu_before = (server_cpu()?, cpu_seconds("self")?);
    let start = Instant::now() + Duration::from_millis(200);
    progress(format!(
        "sending {} segments at {}/s to {n} subscribers",
        o.segments, o.rate
    ));
    let ingest = tokio::spawn(run::run_ingest(
        ingest_ws,
        call.clone(),
        clock,
        Schedule {
            first: start,
            period,
            segments: o.segments,
            speaker: SpeakerMode::Agent,
        },
        phase_rx.clone(),
    ));
    let sending_ends = start + period.mul_f64(o.segments as f64);
    tokio::time::sleep_until(sending_ends).await;
    let drain_deadline = Instant::now() + Duration::from_secs(o.drain_timeout);
    phase_tx.send_replace(Phase::Draining(drain_deadline));
    let ingest = ingest.await.context("the ingest task panicked")?;
    let top = api.top_seq(&service, &call.id).await?;
    call.set_target(top);
    // The subscribers stop once at the top (or at the deadline).
    let deadline = drain_deadline.into_std();
    let stats: Vec<SubscriberStats> = tokio::task::spawn_blocking(move || readers.finish(deadline))
        .await
        .context("the readers panicked")??;
    drop(phase_tx);
    progress("subscribers done");
    let cpu_run = (
        server_cpu()?
            .zip(cpu_before.0)
            .map(|(after, before)| after - before),
        cpu_seconds("self")? - cpu_before.1,
    );
    let after_run = server_rss()?;
    let assist_events = stats
        .iter()
        .map(|s| s.assist_events_upto(top))
        .max()
        .unwrap_or(0);
    if let Err(e) = api.end_call(&service, &call.id).await {
        progress(format!("warning: ending the call failed: {e:#}"));
    }
    let memory = match (before, subscribed, idle, after_run) {
        (Some(before), Some(subscribed), Some(idle), Some(after_run)) => Some(Memory {
            before,
            subscribed,
            idle,
            after_run,
        }),
        _ => None,
    };
    Ok(Report::build(
        o,
        connect_seconds,
        memory,
        cpu_run,
        backlog,
        &ingest,
        &stats,
        top,
        assist_events,
        reader_sched,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_proc_status() {
        let status = "Name:\tearshot\nVmPeak:\t  900000 kB\nVmRSS:\t   123456 kB\n\
                      RssAnon:\t   100000 kB\nRssFile:\t   23456 kB\n";
        let r = Rss::parse(status);
        assert_eq!(r.total, 123_456 * 1024);
        assert_eq!(r.anon, 100_000 * 1024);
        let own = Rss::of("self").unwrap();
        assert!(own.total > 0 && own.anon > 0 && own.anon <= own.total);
    }

    #[test]
    fn cpu_time_is_read_from_proc_stat() {
        let stat = "1234 (earshot (x) y) S 1 1234 1234 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 9 0 100 2000000 3000";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert!(cpu_seconds("self").unwrap() >= 0.0);
    }

    #[test]
    fn memory_per_connection_is_the_growth_over_the_count() {
        let m = Memory {
            before: Rss {
                total: 10 << 20,
                anon: 8 << 20,
            },
            subscribed: Rss::default(),
            idle: Rss {
                total: (10 << 20) + 10_000 * 8_192,
                anon: (8 << 20) + 10_000 * 4_096,
            },
            after_run: Rss::default(),
        };
        assert_eq!(m.per_connection(10_000, |r| r.total), 8_192.0);
        assert_eq!(m.per_connection(10_000, |r| r.anon), 4_096.0);
    }
}
