//! Append throughput and rebuild speed, printed as a Markdown table.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p store --bench append
//! ```
//!
//! For each store (SQLite in a temp file; Postgres in a fresh database when `DATABASE_URL`
//! is set), with group commit on and off, and for 1, 16 and 64 concurrent writers: every
//! writer appends one event per append (the hardest case: one segment, ~300 bytes of JSON)
//! to its own calls with an exact expected version, for `BENCH_SECONDS` (default 3); the
//! run is repeated `BENCH_RUNS` times (default 3) and the median is printed. Durable: every
//! append has returned only after its transaction committed (Postgres `synchronous_commit`
//! as configured — on by default; SQLite `synchronous = FULL`).
//!
//! Also 64 writers appending 3 events at a time (a segment and the rule events it caused, as
//! the ingest pipeline appends), group commit on.
//!
//! Rebuild: a call of 20,000 events folded into `CallState` — in memory (the fold alone), and
//! from the store (read in pages + decode + fold).
//!
//! A hand-rolled harness rather than criterion: criterion measures the latency of one
//! closure, while this measures the throughput of many concurrent writers over a fixed time.
//!
//! For other tools (`bench/pgbench/run.sh` compares these rows with pgbench) a few variables
//! select rows and add output; none changes what a row measures:
//!
//! - `BENCH_JSON=1`: after each table row, the same row as one JSON line (`{"bench":
//!   "append", …}`; a reader takes the lines that start with `{`).
//! - `BENCH_STORES=postgres` (default `sqlite,postgres`): the stores to run.
//! - `BENCH_PARTS` (default `group-commit,one-tx,three-events,rebuild`): the groups of rows
//!   to run.
//! - `BENCH_THREE_EVENT_WRITERS` (default `64`): the writer counts of the 3-event rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::{CallId, CallState, NewEvent, Seq, TenantId, testkit};
use store::testkit::TestStore;
use store::{EventStore, ExpectedVersion, StoreConfig};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list from the environment.
fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn part_enabled(part: &str) -> bool {
    env_list("BENCH_PARTS", "group-commit,one-tx,three-events,rebuild")
        .iter()
        .any(|p| p == part)
}

fn json_lines() -> bool {
    std::env::var("BENCH_JSON").is_ok_and(|v| v == "1")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

const TEXT: &str = "okay so the unit in the attic is making a rattling noise and the upstairs \
                    rooms are not getting any cold air at all since yesterday afternoon";

async fn append_run(
    store: Arc<dyn EventStore>,
    writers: usize,
    per_append: usize,
    seconds: u64,
) -> f64 {
    let tenant = TenantId::parse("bench").expect("valid");
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (store, stop, count, tenant) =
            (store.clone(), stop.clone(), count.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            let mut call = CallId::new();
            let mut version = Seq::ZERO;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // A call of 200 events, then the next call.
                if version.get() >= 200 {
                    call = CallId::new();
                    version = Seq::ZERO;
                }
                // One segment, plus the rule events it caused when `per_append` > 1.
                let events: Vec<NewEvent> = (0..per_append)
                    .map(|k| {
                        NewEvent::new(if version == Seq::ZERO && k == 0 {
                            testkit::started("bench", "agent-1")
                        } else if k == 0 {
                            n += 1;
                            testkit::segment(n, TEXT, true)
                        } else {
                            testkit::alert()
                        })
                    })
                    .collect();
                let out = store
                    .append(call, &tenant, ExpectedVersion::Exact(version), events)
                    .await
                    .expect("append");
                version = out.last_seq();
                count.fetch_add(per_append as u64, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let counted = count.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("writer");
    }
    counted as f64 / elapsed
}

/// The rebuild rates of every run: (fold only, read + decode + fold), events/s.
async fn rebuild(store: &dyn EventStore, analyze_url: Option<&str>) -> (Vec<f64>, Vec<f64>) {
    const EVENTS: u64 = 20_000;
    let tenant = TenantId::parse("bench").expect("valid");
    let call = CallId::new();
    let mut batch = vec![NewEvent::new(testkit::started("bench", "agent-1"))];
    for n in 1..EVENTS {
        batch.push(NewEvent::new(if n % 10 == 0 {
            testkit::alert()
        } else {
            testkit::segment(n, TEXT, true)
        }));
        if batch.len() == 500 {
            store
                .append(
                    call,
                    &tenant,
                    ExpectedVersion::Any,
                    std::mem::take(&mut batch),
                )
                .await
                .expect("seed");
        }
    }
    if !batch.is_empty() {
        store
            .append(call, &tenant, ExpectedVersion::Any, batch)
            .await
            .expect("seed");
    }
    if let Some(url) = analyze_url {
        // A table filled seconds ago has no planner statistics yet (autovacuum analyzes it
        // within a minute in production); without them Postgres sorts the whole stream
        // instead of walking the (call_id, seq) index.
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query("ANALYZE call_events")
            .execute(&mut conn)
            .await
            .expect("analyze");
    }
    let mut from_store = Vec::new();
    let mut in_memory = Vec::new();
    for _ in 0..env_u64("BENCH_RUNS", 3) {
        let t = Instant::now();
        let events = store::load_stream(store, call, None).await.expect("read");
        let state = CallState::replay(&events);
        from_store.push(EVENTS as f64 / t.elapsed().as_secs_f64());
        assert_eq!(state.version, Seq::new(EVENTS));

        let t = Instant::now();
        let state = CallState::replay(&events);
        in_memory.push(EVENTS as f64 / t.elapsed().as_secs_f64());
        assert_eq!(state.version, Seq::new(EVENTS));
    }
    (in_memory, from_store)
}

/// One table row: the median and every run (and, with `BENCH_JSON=1`, the same as JSON).
fn report(store: &str, what: &str, row: Row, writers: usize, results: Vec<f64>) {
    let runs: Vec<String> = results.iter().map(|r| format!("{r:.0}")).collect();
    let med = median(results.clone());
    println!(
        "| {store} | {what} | {writers} writers | {med:.0} events/s | {} |",
        runs.join(", ")
    );
    if json_lines() {
        println!(
            "{}",
            serde_json::json!({
                "bench": "append",
                "store": store,
                "what": what,
                "commit": row.commit,
                "events_per_append": row.events_per_append,
                "writers": writers,
                "seconds": env_u64("BENCH_SECONDS", 3),
                "median_events_per_s": med,
                "runs_events_per_s": results,
            })
        );
    }
}

/// What an append row is: how appends commit and how many events each carries.
#[derive(Clone, Copy)]
struct Row {
    /// "group" or "per_append".
    commit: &'static str,
    events_per_append: usize,
}

async fn bench_backend(name: &str, db: TestStore) {
    let seconds = env_u64("BENCH_SECONDS", 3);
    let runs = env_u64("BENCH_RUNS", 3);
    for (mode, max_batch, part, commit) in [
        (
            "group commit",
            StoreConfig::default().max_batch_events,
            "group-commit",
            "group",
        ),
        ("one tx per append", 1, "one-tx", "per_append"),
    ] {
        if !part_enabled(part) {
            continue;
        }
        let row = Row {
            commit,
            events_per_append: 1,
        };
        let config = StoreConfig {
            max_batch_events: max_batch,
            max_connections: 16,
            ..StoreConfig::default()
        };
        let store = store::open(&db.url, config).await.expect("open store");
        for writers in [1usize, 16, 64] {
            let mut results = Vec::new();
            for _ in 0..runs {
                results.push(append_run(store.clone(), writers, 1, seconds).await);
            }
            report(
                name,
                &format!("append 1 event, {mode}"),
                row,
                writers,
                results,
            );
        }
    }
    let store = store::open(&db.url, StoreConfig::default())
        .await
        .expect("open store");
    if part_enabled("three-events") {
        let row = Row {
            commit: "group",
            events_per_append: 3,
        };
        for writers in env_list("BENCH_THREE_EVENT_WRITERS", "64") {
            let writers: usize = writers
                .parse()
                .expect("BENCH_THREE_EVENT_WRITERS: numbers separated by commas");
            let mut results = Vec::new();
            for _ in 0..runs {
                results.push(append_run(store.clone(), writers, 3, seconds).await);
            }
            report(
                name,
                "append 3 events (segment + rule events), group commit",
                row,
                writers,
                results,
            );
        }
    }
    if !part_enabled("rebuild") {
        drop(store);
        db.finish().await;
        return;
    }
    let analyze = (store.backend() == "postgres").then_some(db.url.as_str());
    let (mem, stored) = rebuild(store.as_ref(), analyze).await;
    for (mode, runs) in [
        ("fold only (CallState::apply)", mem),
        ("read + decode + fold", stored),
    ] {
        let list: Vec<String> = runs.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "| {name} | rebuild, {mode} | 1 call, 20,000 events | {:.0} events/s | {} |",
            median(runs.clone()),
            list.join(", ")
        );
        if json_lines() {
            println!(
                "{}",
                serde_json::json!({
                    "bench": "append",
                    "store": name,
                    "what": "rebuild",
                    "mode": mode,
                    "events": 20_000,
                    "median_events_per_s": median(runs.clone()),
                    "runs_events_per_s": runs,
                })
            );
        }
    }
    drop(store);
    db.finish().await;
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run only
    // when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!(
        "machine: {} cores; BENCH_SECONDS={} BENCH_RUNS={}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        env_u64("BENCH_SECONDS", 3),
        env_u64("BENCH_RUNS", 3)
    );
    println!();
    println!("| store | what | concurrency | median | runs |");
    println!("|---|---|---|---|---|");
    let stores = env_list("BENCH_STORES", "sqlite,postgres");
    if stores.iter().any(|s| s == "sqlite") {
        bench_backend("sqlite", TestStore::sqlite()).await;
    }
    if stores.iter().any(|s| s == "postgres") {
        match TestStore::postgres("bench").await {
            Some(db) => bench_backend("postgres", db).await,
            None => println!("| postgres | skipped: set DATABASE_URL | | | |"),
        }
    }
}
