//! earshot-load: measures how long a transcript segment takes to come back as an
//! `alert_raised` at WebSocket subscribers, through the whole server (ingest, redaction,
//! rules, the append, the hub's tail of the log, the fan-out), under a uniform load of many
//! calls.
//!
//! Setup (not timed): with the admin token, upload the `loadtest` ruleset (one prohibited
//! rule on a marker word, no cooldown, no cap, so every segment raises one alert), make a
//! service token (ingest) and an agent token (subscribers), start the calls, open
//! `--subscribers` WebSockets per call subscribed from seq 0, and one ingest WebSocket per
//! call. Run: each call sends `--rate` segments a second over its ingest WebSocket for
//! `--duration` seconds, the calls' schedules staggered evenly over one period; the send
//! instant of every segment is recorded, and each subscriber takes the arrival instant of
//! the `alert_raised` naming that segment. Every subscriber also checks that the seqs it
//! gets are contiguous and, at the end, that it got everything up to the call's top seq.
//!
//! With an LLM provider configured on the server (`earshot-load fake-llm` stands in for one),
//! customer segments (`--speaker customer|alternate`) also make the server suggest replies:
//! each subscriber takes the arrival of the first streamed `suggestion_draft` (index 0) and
//! of the posted `reply_suggested` event, against the send instant of the segment the
//! suggestion was based on (`based_on_seq`, or the newest segment at or before it).
//! `--measure-suggestions` waits `--suggestion-wait` seconds after the last send before the
//! calls' top seqs are read, so the last suggestions are posted and counted.
//!
//! `earshot-load fanout` follows one call with many subscribers instead (10,000 by
//! default): the server's memory per idle connection and the delivery latency to all of
//! them (see `fanout`).

mod api;
mod fake_llm;
mod fanout;
mod readers;
mod report;
mod run;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::Api;
use crate::report::Report;
use crate::run::{Call, Clock, Phase, Schedule};

#[derive(Parser, Debug)]
#[command(
    name = "earshot-load",
    version,
    about = "Measure segment → alert latency at WebSocket subscribers of an earshot server",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    // A later option wins (run-bench.sh passes its defaults before the caller's arguments).
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: run the load (the options below).
    #[command(flatten)]
    load: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a fake LLM provider (OpenAI Chat Completions: POST /v1/chat/completions) that
    /// answers after a fixed delay, for running the server with a provider in the loop.
    FakeLlm(fake_llm::Options),
    /// One call, many subscribers: the server's memory per idle WebSocket and the latency
    /// of delivering the call's events to all of them.
    Fanout(fanout::Options),
}

/// Who says the segments.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeakerMode {
    Agent,
    Customer,
    /// Customer, agent, customer, … (segment 0 is the customer's).
    Alternate,
}

impl SpeakerMode {
    /// The speaker of segment `k`.
    pub fn of(self, k: usize) -> &'static str {
        match self {
            SpeakerMode::Agent => "agent",
            SpeakerMode::Customer => "customer",
            SpeakerMode::Alternate if k.is_multiple_of(2) => "customer",
            SpeakerMode::Alternate => "agent",
        }
    }

    fn name(self) -> &'static str {
        match self {
            SpeakerMode::Agent => "agent",
            SpeakerMode::Customer => "customer",
            SpeakerMode::Alternate => "alternate",
        }
    }
}

#[derive(clap::Args, Debug)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An admin token of the tenant (esk_…), as printed on the server's first start.
    #[arg(long, env = "EARSHOT_TOKEN", hide_env_values = true, required = true)]
    token: Option<String>,
    /// Concurrent calls.
    #[arg(long, default_value_t = 1)]
    calls: usize,
    /// WebSocket subscribers per call.
    #[arg(long, default_value_t = 2)]
    subscribers: usize,
    /// Segments per second per call.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Leading seconds whose segments are checked but left out of the latency figures.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Connections (and REST calls) opened at once during setup.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Seconds to wait, after the last send, for acks and for subscribers to reach the top.
    #[arg(long, default_value_t = 30)]
    drain_timeout: u64,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Leave the calls live at the end (by default they are ended).
    #[arg(long)]
    keep_calls: bool,
    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
    /// Who says the segments: agent, customer, or alternate (customer first). The server
    /// suggests replies (with an LLM provider configured) to customer segments only.
    #[arg(long, value_enum, default_value_t = SpeakerMode::Agent)]
    speaker: SpeakerMode,
    /// Measure suggested replies: always report segment → first suggestion token and
    /// segment → suggestion posted, and wait `--suggestion-wait` seconds after the last send
    /// for the last suggestions before reading the calls' top seqs. (Suggestion messages
    /// that arrive are measured either way.)
    #[arg(long)]
    measure_suggestions: bool,
    /// With --measure-suggestions: seconds to wait after the last send (debounce + the
    /// provider's latency + the stream, with a margin).
    #[arg(long, default_value_t = 10)]
    suggestion_wait: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    raise_fd_limit();
    match cli.command {
        Some(Command::FakeLlm(options)) => {
            return tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?
                .block_on(fake_llm::run(options));
        }
        Some(Command::Fanout(options)) => return fanout_main(&options),
        None => {}
    }
    let args = cli.load;
    if args.calls == 0 || args.subscribers == 0 {
        bail!("--calls and --subscribers must be at least 1");
    }
    if !(args.rate > 0.0 && args.rate <= 1_000.0) {
        bail!("--rate must be above 0 and at most 1000");
    }
    if args.duration == 0 || args.warmup >= args.duration {
        bail!("--duration must be at least 1 and above --warmup");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        runtime.worker_threads(n.max(1));
    }
    let report = runtime
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(load(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    if !report.passed() {
        std::process::exit(2);
    }
    Ok(())
}

fn fanout_main(options: &fanout::Options) -> anyhow::Result<()> {
    fanout::validate(options)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = options.threads {
        runtime.worker_threads(n.max(1));
    }
    let report = runtime
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(fanout::run(options))?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    if !report.passed() {
        std::process::exit(2);
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: every connection is a file, and
/// the usual soft limit (1,024) is far below the thousands of sockets a run opens.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            progress(format!("warning: cannot raise the open-files limit: {e}"));
        }
    }
}

fn progress(msg: impl std::fmt::Display) {
    eprintln!("earshot-load: {msg}");
}

/// Warns when the sockets the run needs come near the open-files limit.
fn check_fd_limit(sockets: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(soft) = soft
        && sockets + 64 > soft
    {
        progress(format!(
            "warning: the run needs {sockets} sockets but `ulimit -n` is {soft}; raise it"
        ));
    }
}

async fn load(args: &Args) -> anyhow::Result<Report> {
    let api = Api::new(&args.url)?;
    let n = args.calls;
    let subs = args.subscribers;
    let segments = ((args.duration as f64) * args.rate).floor().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    check_fd_limit(n * (subs + 1));

    // --- setup (not timed) ---
    let admin = args
        .token
        .as_deref()
        .context("--token (or EARSHOT_TOKEN) is required")?;
    let version = api.upload_ruleset(admin).await?;
    progress(format!("uploaded ruleset {} v{version}", api::RULESET_ID));
    let service = api.token(admin, "service", "earshot-load-ingest").await?;
    let agent = api.token(admin, "agent", "earshot-load").await?;

    let setup_started = Instant::now();
    let ids: Vec<String> = stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let service = service.clone();
            async move {
                api.start_call(&service, &format!("load-agent-{i}"), version)
                    .await
            }
        })
        .buffered(args.connect_concurrency)
        .try_collect()
        .await?;
    let calls: Vec<Arc<Call>> = ids
        .into_iter()
        .map(|id| Arc::new(Call::new(id, segments)))
        .collect();
    progress(format!("started {n} calls"));

    let epoch = Instant::now();
    let clock = Clock {
        epoch,
        record_from: 0,
    };
    let sub_url = api.ws_url(&agent);
    let subscribers: Vec<(usize, run::Ws, run::SubscriberStats)> =
        stream::iter((0..n).flat_map(|c| (0..subs).map(move |_| c)))
            .map(|c| {
                let call = calls[c].clone();
                let url = sub_url.clone();
                async move {
                    let mut ws = run::connect(&url).await?;
                    let stats = run::subscribe(&mut ws, &call, &clock).await?;
                    Ok::<_, anyhow::Error>((c, ws, stats))
                }
            })
            .buffer_unordered(args.connect_concurrency)
            .try_collect()
            .await?;
    progress(format!("{} subscribers subscribed", subscribers.len()));
    let ingest_url = api.ws_url(&service);
    let mut ingest_sockets: Vec<(usize, run::Ws)> = stream::iter(0..n)
        .map(|c| {
            let url = ingest_url.clone();
            async move { Ok::<_, anyhow::Error>((c, run::connect(&url).await?)) }
        })
        .buffer_unordered(args.connect_concurrency)
        .try_collect()
        .await?;
    ingest_sockets.sort_by_key(|(c, _)| *c);
    progress(format!(
        "{n} ingest sockets open; setup took {:.1} s; sending for {} s",
        setup_started.elapsed().as_secs_f64(),
        args.duration
    ));

    // --- the run ---
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let start = Instant::now() + Duration::from_millis(200);
    let clock = Clock {
        epoch,
        record_from: (start + Duration::from_secs(args.warmup) - epoch).as_nanos() as u64,
    };
    let sub_calls: Vec<usize> = subscribers.iter().map(|(c, _, _)| *c).collect();
    let sub_tasks: Vec<_> = subscribers
        .into_iter()
        .map(|(c, ws, stats)| run::spawn_subscriber(ws, calls[c].clone(), clock, stats))
        .collect();
    let ingest_tasks: Vec<_> = ingest_sockets
        .into_iter()
        .map(|(c, ws)| {
            // Call c starts c/n of a period after the first: the sends are spread evenly.
            let offset = period.mul_f64(c as f64 / n as f64);
            let schedule = Schedule {
                first: start + offset,
                period,
                segments,
                speaker: args.speaker,
            };
            tokio::spawn(run::run_ingest(
                ws,
                calls[c].clone(),
                clock,
                schedule,
                phase_rx.clone(),
            ))
        })
        .collect();

    // Sending ends at the last scheduled segment; then in-flight work drains (and, when
    // measuring suggestions, the last ones are given time to be posted).
    let sending_ends = start + period.mul_f64(segments as f64);
    let suggestion_wait = if args.measure_suggestions {
        Duration::from_secs(args.suggestion_wait)
    } else {
        Duration::ZERO
    };
    tokio::time::sleep_until(sending_ends).await;
    let drain_deadline = Instant::now() + suggestion_wait + Duration::from_secs(args.drain_timeout);
    phase_tx.send_replace(Phase::Draining(drain_deadline));
    let mut ingest = Vec::with_capacity(n);
    for t in ingest_tasks {
        ingest.push(t.await.context("an ingest task panicked")?);
    }
    if !suggestion_wait.is_zero() {
        let until = sending_ends + suggestion_wait;
        progress(format!(
            "waiting {:.1} s more for the last suggestions",
            until
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
        ));
        tokio::time::sleep_until(until).await;
    }
    progress("every ingest socket is done; reading the calls' top seqs");

    let tops: Vec<u64> = stream::iter(calls.iter().cloned())
        .map(|call| {
            let api = api.clone();
            let service = service.clone();
            async move {
                let top = api.top_seq(&service, &call.id).await?;
                call.set_target(top);
                Ok::<_, anyhow::Error>(top)
            }
        })
        .buffered(args.connect_concurrency)
        .try_collect()
        .await?;
    // The subscribers stop once at the top (or at the deadline).
    let subscriber_stats =
        futures::future::try_join_all(sub_tasks.into_iter().map(|s| s.finish(drain_deadline)))
            .await?;
    drop(phase_tx);
    progress("subscribers done");
    // Events the assist worker wrote in each call's log up to its top seq (reply_suggested,
    // generation_failed), as the call's subscribers saw them: the top-seq check allows them.
    let mut assist_events = vec![0u64; n];
    for (c, stats) in sub_calls.iter().zip(&subscriber_stats) {
        assist_events[*c] = assist_events[*c].max(stats.assist_events_upto(tops[*c]));
    }
    if args.measure_suggestions && subscriber_stats.iter().all(|s| s.first_tokens == 0) {
        progress(
            "warning: no suggestion draft arrived (is an LLM provider configured on the server, \
             and are there customer segments: --speaker customer|alternate?)",
        );
    }

    if !args.keep_calls {
        let ended: Vec<anyhow::Result<()>> = stream::iter(calls.iter().cloned())
            .map(|call| {
                let api = api.clone();
                let service = service.clone();
                async move { api.end_call(&service, &call.id).await }
            })
            .buffer_unordered(args.connect_concurrency)
            .collect()
            .await;
        if let Some(Err(e)) = ended.into_iter().find(Result::is_err) {
            progress(format!("warning: ending a call failed: {e:#}"));
        }
    }

    Ok(Report::build(
        args_summary(args, segments),
        &ingest,
        &subscriber_stats,
        &tops,
        &assist_events,
    ))
}

fn args_summary(args: &Args, segments: usize) -> report::Setup {
    report::Setup {
        url: args.url.clone(),
        calls: args.calls,
        subscribers_per_call: args.subscribers,
        rate: args.rate,
        duration_s: args.duration,
        warmup_s: args.warmup,
        segments_per_call: segments,
        speaker: args.speaker.name(),
        measure_suggestions: args.measure_suggestions,
        suggestion_wait_s: args.suggestion_wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_is_the_load_with_its_old_options() {
        let cli =
            Cli::try_parse_from(["earshot-load", "--token", "esk_x", "--calls", "3", "--json"])
                .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.load.calls, 3);
        assert_eq!(cli.load.speaker, SpeakerMode::Agent);
        assert!(!cli.load.measure_suggestions);
        let cli = Cli::try_parse_from([
            "earshot-load",
            "--token",
            "t",
            "--speaker",
            "alternate",
            "--measure-suggestions",
        ])
        .unwrap();
        assert_eq!(cli.load.speaker, SpeakerMode::Alternate);
        assert!(cli.load.measure_suggestions);
        assert_eq!(cli.load.suggestion_wait, 10);
    }

    #[test]
    fn a_later_option_wins() {
        let cli = Cli::try_parse_from([
            "earshot-load",
            "--token=t",
            "--speaker=customer",
            "--measure-suggestions",
            "--suggestion-wait=9",
            "--speaker=agent",
            "--measure-suggestions",
            "--suggestion-wait=20",
        ])
        .unwrap();
        assert_eq!(cli.load.speaker, SpeakerMode::Agent);
        assert_eq!(cli.load.suggestion_wait, 20);
    }

    #[test]
    fn fake_llm_needs_no_token() {
        let cli = Cli::try_parse_from(["earshot-load", "fake-llm", "--delay-ms", "50"]).unwrap();
        let Some(Command::FakeLlm(o)) = cli.command else {
            panic!("not fake-llm");
        };
        assert_eq!(o.delay_ms, 50);
        assert_eq!(o.tokens, 20);
        assert_eq!(o.token_interval_ms, 20);
        assert_eq!(o.listen.to_string(), "127.0.0.1:18090");
    }

    #[test]
    fn fanout_has_its_own_options() {
        let cli = Cli::try_parse_from([
            "earshot-load",
            "fanout",
            "--token",
            "t",
            "--subscribers",
            "100",
            "--server-pid",
            "42",
            "--json",
        ])
        .unwrap();
        let Some(Command::Fanout(o)) = cli.command else {
            panic!("not fanout");
        };
        assert_eq!(o.subscribers, 100);
        assert_eq!(o.segments, 60);
        assert_eq!(o.rate, 1.0);
        assert_eq!(o.server_pid, Some(42));
        assert!(o.json);
    }

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, getrlimit};
        raise_fd_limit();
        let l = getrlimit(Resource::Nofile);
        assert_eq!(l.current, l.maximum);
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
