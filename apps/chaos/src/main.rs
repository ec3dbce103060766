//! `earshot-chaos`: N calls stream through `earshot replay` while the server is killed with
//! SIGKILL and restarted k times and PostgreSQL is restarted; then the log must hold every
//! segment exactly once and every alert the rules imply, and every client's view must equal
//! the log. It prints the counts and exits non-zero on any discrepancy. docs/chaos.md says
//! what it does, why, and what real runs printed.
//!
//! Everything runs as a user runs it: the real `earshot` binary (`serve`, `replay`, `rules
//! check`) as child processes, a PostgreSQL cluster of the harness's own (never the shared
//! one), and the verdict read straight from `call_events` with SQL.
//!
//! # Layout
//!
//! - `postgres`: the harness's own cluster (`initdb`, `pg_ctl`, as the postgres user when
//!   run as root).
//! - `server`: the `earshot serve` process: start on a fixed port, SIGKILL, start again.
//! - `plan`: the seeded fault plan.
//! - `expect`: what the rules imply per transcript (`earshot rules check --json`).
//! - `verify`: the invariants, checked on what was read (pure), and corrupted copies that
//!   must fail them.

mod expect;
mod plan;
mod postgres;
mod server;
mod verify;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::time::Instant;

use crate::expect::Expected;
use crate::plan::Fault;
use crate::postgres::{Cluster, StopMode};
use crate::server::Server;
use crate::verify::{Client, Inputs, LogEvent, Verdict, ViewEvent};

/// The workspace this harness was built in: default transcripts, ruleset and server.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// Ports the harness may use: the server's, and its PostgreSQL's.
const SERVER_PORTS: std::ops::RangeInclusive<u16> = 19200..=19299;
const PG_PORTS: std::ops::RangeInclusive<u16> = 5441..=5449;
/// How long to wait for every call to be streaming before the first fault.
const WARMUP: Duration = Duration::from_secs(120);
/// The least time between two faults, so that clients are back on the server in between.
const SETTLE: Duration = Duration::from_millis(500);
/// The replay's wait for a call's summary: generous, a kill may come right after the end.
const SUMMARY_TIMEOUT_SECS: &str = "120";

/// Streams N calls through `earshot replay` while the server is SIGKILLed k times and
/// PostgreSQL restarts, then checks the log and every client's view. See docs/chaos.md.
#[derive(Parser, Debug)]
#[command(name = "earshot-chaos", version)]
struct Args {
    /// Simulated calls, streamed at once (the transcripts round-robin).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    calls: u32,
    /// Times the server is killed with SIGKILL (and started again on the same port).
    #[arg(long, default_value_t = 3)]
    kills: u32,
    /// Times the harness's PostgreSQL is restarted while the server runs.
    #[arg(long, default_value_t = 1)]
    pg_restarts: u32,
    /// How a PostgreSQL restart stops it: immediate is a crash (recovery on start).
    #[arg(long, value_enum, default_value_t = StopMode::Immediate)]
    pg_stop_mode: StopMode,
    /// The replay's speed (2: twice real time). High enough to finish quickly, low enough
    /// that the kills land while calls are streaming.
    #[arg(long, default_value_t = 2.0)]
    speed: f64,
    /// The seed of the fault plan (printed; pass it again to replay the same plan).
    #[arg(long)]
    seed: Option<u64>,
    /// The `earshot` binary. Default: built with cargo (same profile as this harness) in
    /// this workspace's target directory.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// PostgreSQL's bin directory. Default: the highest version under /usr/lib/postgresql.
    #[arg(long, value_name = "DIR")]
    pg_bin: Option<PathBuf>,
    /// The ruleset the server's tenant runs (the built-in default is home-services).
    #[arg(long, value_name = "FILE")]
    ruleset: Option<PathBuf>,
    /// Transcripts to replay. Default: the workspace's transcripts/*.json.
    #[arg(value_name = "TRANSCRIPT")]
    transcripts: Vec<PathBuf>,
    /// Give up on the replay after this long.
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    timeout: u64,
    /// Keep the work directory and the PostgreSQL cluster (always kept on failure).
    #[arg(long)]
    keep: bool,
    /// Drop one event from one client's view before the checks: the run must fail.
    #[arg(long, hide = true)]
    self_check: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A line of the timeline, stamped with the time since the start.
struct Clock(Instant);

impl Clock {
    fn say(&self, what: impl std::fmt::Display) {
        println!("[{:7.1} s] {what}", self.0.elapsed().as_secs_f64());
    }
}

/// The first port in `range` nothing listens on.
fn free_port(range: std::ops::RangeInclusive<u16>) -> anyhow::Result<u16> {
    range
        .clone()
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .with_context(|| format!("no free port in {}-{}", range.start(), range.end()))
}

/// Builds `earshot` with the same profile as this harness, next to it.
fn build_server() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the harness's directory")?;
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(p) => p.to_owned(),
        None => bail!("cannot tell the build profile from {}", dir.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("building the server: cargo build -p earshot --profile {profile}");
    let status = std::process::Command::new(cargo)
        .args(["build", "-p", "earshot", "--profile", &profile])
        .current_dir(WORKSPACE)
        .env(
            "CARGO_TARGET_DIR",
            dir.parent().context("the target directory")?,
        )
        .status()
        .context("running cargo (or pass --server-bin)")?;
    if !status.success() {
        bail!("cargo build -p earshot failed ({status})");
    }
    Ok(dir.join("earshot"))
}

fn default_transcripts() -> anyhow::Result<Vec<PathBuf>> {
    let dir = Path::new(WORKSPACE).join("transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no transcripts in {}", dir.display());
    }
    Ok(files)
}

async fn connect(url: &str) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await?)
}

/// Calls with at least one segment in the log.
async fn calls_streaming(db: &PgPool) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT count(DISTINCT call_id) FROM call_events WHERE event_type = 'segment_added'",
    )
    .fetch_one(db)
    .await
    .ok()
}

/// The whole log, by call, each call's events in log order.
async fn read_log(db: &PgPool) -> anyhow::Result<BTreeMap<String, Vec<LogEvent>>> {
    let rows = sqlx::query(
        "SELECT call_id::text AS call_id, seq, position, event_id::text AS event_id, \
                event_type, payload \
         FROM call_events ORDER BY position",
    )
    .fetch_all(db)
    .await
    .context("reading call_events")?;
    let mut log: BTreeMap<String, Vec<LogEvent>> = BTreeMap::new();
    for r in rows {
        let seq: i64 = r.try_get("seq")?;
        log.entry(r.try_get("call_id")?)
            .or_default()
            .push(LogEvent {
                seq: u64::try_from(seq).unwrap_or(0),
                position: r.try_get("position")?,
                event_id: r.try_get("event_id")?,
                kind: r.try_get("event_type")?,
                data: r.try_get("payload")?,
            });
    }
    Ok(log)
}

/// A client's view file; an unreadable line is the client's error.
fn read_view(dir: &Path, call: &str) -> Result<Vec<ViewEvent>, String> {
    let path = dir.join(format!("{call}.jsonl"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| ViewEvent::parse(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

/// Requests the server failed because its store did (answered `internal`), from its logs:
/// what the PostgreSQL restart cost the clients.
fn store_errors_logged(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("server-") && n.ends_with(".stderr.log"))
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| text.matches(r#""message":"store error""#).count() as u64)
        .sum()
}

/// What the replay reported, as far as the verdict needs it.
#[derive(Default)]
struct ReplayReport {
    exit: Option<i32>,
    doc: Option<Value>,
}

impl ReplayReport {
    fn n(&self, path: &[&str]) -> u64 {
        let mut v = self.doc.as_ref().unwrap_or(&Value::Null);
        for k in path {
            v = &v[*k];
        }
        v.as_u64().unwrap_or(0)
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let clock = Clock(Instant::now());
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed: must be a positive number (the faults are planned on the send schedule)");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let transcripts = if args.transcripts.is_empty() {
        default_transcripts()?
    } else {
        args.transcripts.clone()
    };
    let ruleset = args
        .ruleset
        .clone()
        .unwrap_or_else(|| Path::new(WORKSPACE).join("rulesets/home-services.yaml"));
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => build_server()?,
    };
    if !bin.is_file() {
        bail!("no server binary at {}", bin.display());
    }
    let (pg_bin, pg_version) = match &args.pg_bin {
        Some(d) => (d.clone(), "(--pg-bin)".to_owned()),
        None => postgres::find_bin()?,
    };

    // What the rules imply, offline, before anything runs.
    let mut expected: HashMap<String, Expected> = HashMap::new();
    for t in &transcripts {
        let e = expect::expected(&bin, &ruleset, t).await?;
        expected.insert(t.display().to_string(), e);
    }
    let longest_ms = expected
        .values()
        .map(|e| e.last_start_ms)
        .max()
        .unwrap_or(0);
    let stream = Duration::from_secs_f64(longest_ms as f64 / 1_000.0 / args.speed);
    let window = (stream.mul_f64(0.05), stream.mul_f64(0.9));
    let plan = plan::plan(seed, args.kills, args.pg_restarts, window);

    let mut work = tempfile::Builder::new()
        .prefix("earshot-chaos-")
        .tempdir()?;
    let views = work.path().join("views");
    let pg_port = free_port(PG_PORTS)?;
    let mut pg = Cluster::create(pg_bin, pg_port).await?;
    pg.start().await?;
    // From here on, a failure keeps the logs and the cluster for a post-mortem.
    let outcome: anyhow::Result<bool> = async {
        let mut server = Server::new(bin.clone(), free_port(SERVER_PORTS)?, pg.url(), work.path());

        println!(
            "earshot chaos: seed {seed} (reproduce with --seed {seed}); {} calls from {} \
             transcripts at speed {}; {} server kills (SIGKILL), {} PostgreSQL restart(s) \
             (-m {})",
            args.calls,
            transcripts.len(),
            args.speed,
            args.kills,
            args.pg_restarts,
            args.pg_stop_mode.as_str()
        );
        println!(
            "  server    {} on 127.0.0.1:{} (assist worker on, offline provider)",
            bin.display(),
            server.port
        );
        println!(
            "  postgres  {pg_version}, its own cluster on 127.0.0.1:{pg_port} (log {})",
            pg.log_file().display()
        );
        println!(
            "  work dir  {} (server logs, replay output, client views)",
            work.path().display()
        );
        println!(
            "  plan      faults between {:.1} s and {:.1} s into the stream:",
            window.0.as_secs_f64(),
            window.1.as_secs_f64()
        );
        for p in &plan {
            match p.fault {
                Fault::KillServer { down } => println!(
                    "            {:6.1} s  SIGKILL the server, down {:.1} s",
                    p.at.as_secs_f64(),
                    down.as_secs_f64()
                ),
                Fault::RestartPostgres => println!(
                    "            {:6.1} s  restart PostgreSQL (-m {})",
                    p.at.as_secs_f64(),
                    args.pg_stop_mode.as_str()
                ),
            }
        }

        let token = server
            .start()
            .await?
            .context("the first start printed no admin token (was the database empty?)")?;
        clock.say(format!("server up (pid {})", server.pid().unwrap_or(0)));
        let db = connect(&pg.url()).await?;

        // The clients: one replay process, N calls.
        let replay_stderr = std::fs::File::create(work.path().join("replay.stderr.log"))?;
        let mut replay = tokio::process::Command::new(&bin);
        replay
            .arg("replay")
            .args(&transcripts)
            .args(["--server", &server.url()])
            .args(["--speed", &args.speed.to_string()])
            .args(["--calls", &args.calls.to_string()])
            .args(["--json", "--summary-timeout", SUMMARY_TIMEOUT_SECS])
            .arg("--dump-views")
            .arg(&views)
            .env("EARSHOT_TOKEN", &token)
            .env("EARSHOT_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(replay_stderr))
            .kill_on_drop(true);
        let child = replay.spawn().context("starting earshot replay")?;
        let mut replay = tokio::spawn(child.wait_with_output());
        clock.say(format!("replay started: {} calls", args.calls));

        // The faults start once every call is streaming: a replay does not retry its very first
        // requests (a wrong URL fails at once), so a kill before a call has started is not a
        // fault it claims to survive.
        let warm_until = Instant::now() + WARMUP;
        let mut finished = None;
        loop {
            if calls_streaming(&db).await.unwrap_or(0) >= i64::from(args.calls) {
                break;
            }
            if Instant::now() > warm_until {
                bail!("not every call was streaming within {} s", WARMUP.as_secs());
            }
            tokio::select! {
                r = &mut replay => { finished = Some(r); break; }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        let t0 = Instant::now();
        clock.say("every call is streaming: faults armed");

        let (mut kills, mut pg_restarts) = (0u32, 0u32);
        let mut last_fault = None::<Instant>;
        for p in &plan {
            if finished.is_some() {
                break;
            }
            let due = match last_fault {
                Some(t) => (t0 + p.at).max(t + SETTLE),
                None => t0 + p.at,
            };
            tokio::select! {
                r = &mut replay => { finished = Some(r); break; }
                _ = tokio::time::sleep_until(due) => {}
            }
            match p.fault {
                Fault::KillServer { down } => {
                    let pid = server.pid().unwrap_or(0);
                    server.kill().await?;
                    kills += 1;
                    clock.say(format!(
                        "kill {kills}: SIGKILL server (pid {pid}); down for {:.1} s",
                        down.as_secs_f64()
                    ));
                    tokio::time::sleep(down).await;
                    let started = Instant::now();
                    server.start().await?;
                    clock.say(format!(
                        "server back (pid {}), listening {} ms after its start",
                        server.pid().unwrap_or(0),
                        started.elapsed().as_millis()
                    ));
                }
                Fault::RestartPostgres => {
                    let started = Instant::now();
                    clock.say(format!("pg_ctl restart -m {}", args.pg_stop_mode.as_str()));
                    pg.restart(args.pg_stop_mode).await?;
                    pg_restarts += 1;
                    clock.say(format!(
                        "PostgreSQL back, accepting connections after {:.1} s",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
            last_fault = Some(Instant::now());
        }

        let remaining = Duration::from_secs(args.timeout).saturating_sub(clock.0.elapsed());
        let output = match finished {
            Some(r) => Some(r),
            None => match tokio::time::timeout(remaining, &mut replay).await {
                Ok(r) => Some(r),
                Err(_) => {
                    replay.abort();
                    None
                }
            },
        };
        let mut report = ReplayReport::default();
        match output {
            Some(Ok(Ok(out))) => {
                report.exit = out.status.code();
                report.doc = serde_json::from_slice(&out.stdout).ok();
                clock.say(format!("replay finished ({})", out.status));
            }
            Some(Ok(Err(e))) => clock.say(format!("replay: cannot wait for it: {e}")),
            Some(Err(e)) => clock.say(format!("replay: {e}")),
            None => clock.say(format!(
                "replay: still running after {} s; killed",
                args.timeout
            )),
        }
        let stopped = server.stop().await?;
        clock.say(format!("server stopped ({stopped}); reading the log"));

        // The verdict, from the log.
        let log = read_log(&db).await?;
        db.close().await;
        let mut clients = Vec::new();
        let per_call = report
            .doc
            .as_ref()
            .and_then(|d| d["per_call"].as_array())
            .cloned()
            .unwrap_or_default();
        for c in &per_call {
            let call_id = c["call_id"].as_str().unwrap_or_default().to_owned();
            let (view, view_error) = match read_view(&views, &call_id) {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e)),
            };
            clients.push(Client {
                error: c["error"].as_str().map(str::to_owned).or(view_error),
                file: c["file"].as_str().unwrap_or_default().to_owned(),
                acked: c["acked"].as_u64().unwrap_or(0),
                call_id,
                view,
            });
        }
        let mut inputs = Inputs {
            clients,
            log,
            expected,
        };
        if args.self_check
            && let Some(view) = inputs.clients.first_mut().and_then(|c| c.view.as_mut())
            && !view.is_empty()
        {
            let dropped = view.remove(view.len() / 2);
            println!(
                "self-check: dropped seq {} ({}) from call {}'s view: this run must fail",
                dropped.seq, dropped.kind, inputs.clients[0].call_id
            );
        }
        let mut verdict = verify::verify(&inputs);
        if report.doc.is_none() {
            verdict.problems.push(verify::Problem {
                check: verify::Check::Clients,
                detail: "the replay printed no report".into(),
            });
        } else if per_call.len() != args.calls as usize {
            verdict.problems.push(verify::Problem {
                check: verify::Check::Clients,
                detail: format!(
                    "the replay reported {} calls of {}",
                    per_call.len(),
                    args.calls
                ),
            });
        }
        if report.exit != Some(0) {
            verdict.problems.push(verify::Problem {
                check: verify::Check::Clients,
                detail: format!(
                    "the replay exited with {:?} (see {})",
                    report.exit,
                    work.path().join("replay.stderr.log").display()
                ),
            });
        }
        if kills < args.kills || pg_restarts < args.pg_restarts {
            verdict.problems.push(verify::Problem {
                check: verify::Check::Clients,
                detail: format!(
                    "the calls finished before the plan did: {kills} of {} kills, \
                     {pg_restarts} of {} PostgreSQL restarts (lower --speed)",
                    args.kills, args.pg_restarts
                ),
            });
        }

        // Each check must be able to fail: corrupted copies of this run's data.
        let corruptions = verify::corruptions(&inputs);
        let mut caught = 0;
        for (name, check, corrupted) in &corruptions {
            if verify::verify(corrupted).breaks(*check) {
                caught += 1;
            } else {
                verdict.problems.push(verify::Problem {
                    check: *check,
                    detail: format!("the {check:?} check did not catch a corrupted copy: {name}"),
                });
            }
        }

        let faults = Faults {
            kills,
            pg_restarts,
            store_errors: store_errors_logged(work.path()),
        };
        print_result(&verdict, &report, &args, &faults, caught, corruptions.len());
        let ok = verdict.ok();
        println!(
            "{} in {:.1} s (seed {seed})",
            if ok { "PASS" } else { "FAIL" },
            clock.0.elapsed().as_secs_f64()
        );
        Ok(ok)
    }
    .await;
    if !matches!(outcome, Ok(true)) || args.keep {
        work.disable_cleanup(true);
        let pg_dir = pg.keep();
        println!(
            "kept: {} (server logs, replay output, views) and {} (PostgreSQL data and log)",
            work.path().display(),
            pg_dir.display()
        );
    }
    outcome
}

/// The faults that happened.
struct Faults {
    kills: u32,
    pg_restarts: u32,
    store_errors: u64,
}

fn print_result(
    v: &Verdict,
    report: &ReplayReport,
    args: &Args,
    faults: &Faults,
    caught: usize,
    corruptions: usize,
) {
    let Faults {
        kills,
        pg_restarts,
        store_errors,
    } = faults;
    let c = &v.counts;
    println!();
    println!("result (read from call_events on the harness's PostgreSQL):");
    let row = |what: &str, value: String| println!("  {what:<32} {value}");
    row(
        "calls",
        format!("{} streamed, {} in the log", c.calls, c.calls_in_log),
    );
    row(
        "segments sent",
        format!(
            "{} of {} ({} acked; {} resent after a reconnect)",
            report.n(&["segments", "sent"]),
            c.segments_expected,
            c.segments_acked,
            report.n(&["segments", "resent"])
        ),
    );
    row("segments in the log", c.segments_in_log.to_string());
    row("events in the log", c.events_in_log.to_string());
    row("duplicate events", c.duplicates.to_string());
    row("seq gaps", c.seq_gaps.to_string());
    row(
        "alerts expected / found",
        format!("{} / {}", c.alerts_expected, c.alerts_found),
    );
    row(
        "checklist + cards expected / found",
        format!("{} / {}", c.rule_events_expected, c.rule_events_found),
    );
    row("summaries", format!("{} / {}", c.summaries, c.calls));
    row(
        "server kills (SIGKILL)",
        format!("{kills} of {}", args.kills),
    );
    row(
        "PostgreSQL restarts",
        format!(
            "{pg_restarts} of {} (-m {})",
            args.pg_restarts,
            args.pg_stop_mode.as_str()
        ),
    );
    row(
        "requests failed by the store",
        format!("{store_errors} (answered `internal`, retried by the clients)"),
    );
    row("client reconnects", report.n(&["reconnects"]).to_string());
    row(
        "client views equal to the log",
        format!(
            "{} / {} (mismatches: {})",
            c.views_equal, c.calls, c.view_mismatches
        ),
    );
    row(
        "replay's own loss check",
        format!(
            "exit {}; lost {}, duplicated {}, failed calls {}",
            report.exit.map_or("none".into(), |e| e.to_string()),
            report.n(&["lost"]),
            report.n(&["duplicated"]),
            report.n(&["failed_calls"])
        ),
    );
    row(
        "checks seen to fail",
        format!("{caught} / {corruptions} corrupted copies of this run's data caught"),
    );
    if !v.problems.is_empty() {
        println!();
        println!("{} problem(s):", v.problems.len());
        for p in v.problems.iter().take(40) {
            println!("  [{:?}] {}", p.check, p.detail);
        }
        if v.problems.len() > 40 {
            println!("  … {} more", v.problems.len() - 40);
        }
    }
    println!();
}
