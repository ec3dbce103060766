//! Per-segment redaction latency on the 302 Harper Valley utterances.
//!
//! ```text
//! cargo bench -p redact
//! ```
//!
//! For the default and the strict policy: every utterance's `human_transcript` is redacted
//! with `redact_next`, starting from the speaker context it would have at that point of
//! its call (so continuations and pre-emptive redactions are on the measured path); the
//! rows marked "alone" time `redact` on the same text with no context (the path of interim
//! hypotheses, which returns a fixed point: a second pass when the first found a value). Each
//! segment is timed on its own: `ROUNDS` rounds of `BATCH` calls, the segment's time being
//! the median round's mean per call (batching keeps the clock's own cost out). The table
//! gives p50 / p99 / max over the 302 segments, in microseconds. Criterion then reports the
//! mean for the whole set. Target: p99 ≤ 20 µs. `BENCH_JSON=1` adds each row as one JSON
//! line (`{"bench":"redact",...}`) for `bench/report.sh`.
//!
//! The binary exits at once unless `--bench` is among its arguments, so `cargo test
//! --all-targets` builds and runs it for free.

use std::fs;
use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use redact::{Policy, Redactor, SpeakerContext};
use serde::Deserialize;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/harper-valley/transcript"
);
const ROUNDS: usize = 31;
const BATCH: u32 = 32;

#[derive(Deserialize)]
struct Utterance {
    index: u32,
    speaker_role: String,
    human_transcript: String,
}

/// Every utterance in call order, with the speaker (0 agent, 1 caller) and call number.
fn load() -> Vec<(usize, usize, String)> {
    let mut paths: Vec<_> = fs::read_dir(DATA)
        .unwrap_or_else(|e| panic!("Harper Valley transcripts not found at {DATA}: {e}"))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for (call, p) in paths.iter().enumerate() {
        let json = fs::read_to_string(p).expect("readable transcript");
        let mut utterances: Vec<Utterance> = serde_json::from_str(&json).expect("valid JSON");
        utterances.sort_by_key(|u| u.index);
        for u in utterances {
            let speaker = usize::from(u.speaker_role == "caller");
            out.push((call, speaker, u.human_transcript));
        }
    }
    out
}

/// Each segment with the context its speaker has just before it.
fn with_contexts(
    r: &Redactor,
    segments: &[(usize, usize, String)],
) -> Vec<(SpeakerContext, String)> {
    let mut current = (usize::MAX, [SpeakerContext::new(), SpeakerContext::new()]);
    segments
        .iter()
        .map(|(call, speaker, text)| {
            if current.0 != *call {
                current = (*call, Default::default());
            }
            let before = current.1[*speaker].clone();
            r.redact_next(&mut current.1[*speaker], text);
            (before, text.clone())
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Each case's time in µs, sorted: `alone` times `redact` (no context: an interim
/// hypothesis, a typed note), otherwise `redact_next` from the case's context.
fn per_segment_micros(r: &Redactor, cases: &[(SpeakerContext, String)], alone: bool) -> Vec<f64> {
    let mut times: Vec<f64> = cases
        .iter()
        .map(|(ctx, text)| {
            let mut rounds: Vec<f64> = (0..ROUNDS)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..BATCH {
                        if alone {
                            black_box(r.redact(black_box(text)));
                        } else {
                            let mut c = ctx.clone();
                            black_box(r.redact_next(&mut c, black_box(text)));
                        }
                    }
                    start.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH)
                })
                .collect();
            rounds.sort_by(f64::total_cmp);
            rounds[ROUNDS / 2]
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let segments = load();
    let policies = [
        ("default", Policy::default()),
        ("strict(4)", Policy::strict(4)),
    ];

    println!(
        "\nper-segment redaction time, {} Harper Valley segments (µs)\n",
        segments.len()
    );
    println!("| policy           |   p50 |   p99 |   max |");
    println!("|------------------|------:|------:|------:|");
    let mut prepared = Vec::new();
    for (name, policy) in &policies {
        let r = Redactor::new(policy.clone()).expect("valid policy");
        let cases = with_contexts(&r, &segments);
        // Warm caches and the regex pools before measuring.
        for (ctx, text) in &cases {
            black_box(r.redact_next(&mut ctx.clone(), text));
        }
        for alone in [false, true] {
            let t = per_segment_micros(&r, &cases, alone);
            let (p50, p99, max) = (percentile(&t, 50.0), percentile(&t, 99.0), t[t.len() - 1]);
            let what = if alone {
                format!("{name}, alone")
            } else {
                (*name).to_owned()
            };
            println!("| {what:<16} | {p50:>5.2} | {p99:>5.2} | {max:>5.2} |");
            if std::env::var("BENCH_JSON").is_ok_and(|v| v == "1") {
                println!(
                    "{}",
                    serde_json::json!({
                        "bench": "redact", "what": what, "segments": t.len(),
                        "p50_us": p50, "p99_us": p99, "max_us": max,
                    })
                );
            }
        }
        prepared.push((name, r, cases));
    }
    println!();

    let mut c = Criterion::default().configure_from_args();
    for (name, r, cases) in &prepared {
        c.bench_function(
            &format!("redact all {} segments, {name}", cases.len()),
            |b| {
                b.iter(|| {
                    for (ctx, text) in cases {
                        black_box(r.redact_next(&mut ctx.clone(), black_box(text)));
                    }
                });
            },
        );
    }
    c.final_summary();
}
