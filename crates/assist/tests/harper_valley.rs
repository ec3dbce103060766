//! The 15 Harper Valley bank calls (Gridspace–Stanford, Apache-2.0): the extracted reason for
//! the call must share a key word with the call's task label (`metadata.tasks[0].task_type`,
//! e.g. "replace card").

mod common;

use std::fs;
use std::path::Path;

use common::state_of_transcript;
use serde::Deserialize;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/harper-valley"
);

#[derive(Deserialize)]
struct Metadata {
    tasks: Vec<Task>,
}

#[derive(Deserialize)]
struct Task {
    task_type: String,
}

/// Words of a task label and the forms a caller says them in.
fn key_words(label: &str) -> Vec<&'static str> {
    label
        .split_whitespace()
        .flat_map(|w| -> &'static [&'static str] {
            match w {
                "replace" => &["replace", "replacement", "new one", "new card"],
                "card" => &["card"],
                "transfer" => &["transfer"],
                "money" => &["money"],
                "branch" => &["branch"],
                "hours" => &["hours", "open"],
                "reset" => &["reset"],
                "password" => &["password"],
                "check" => &[],
                "balance" => &["balance"],
                "pay" => &["pay"],
                "bill" => &["bill"],
                "schedule" => &["schedule"],
                "appointment" => &["appointment"],
                "order" => &["order"],
                "checks" => &["checks"],
                _ => &[],
            }
        })
        .copied()
        .collect()
}

#[test]
fn reasons_match_task_labels() {
    let sids_path = format!("{DATA}/sids.txt");
    let sids = fs::read_to_string(&sids_path).unwrap_or_else(|e| {
        panic!(
            "Harper Valley data not found at {} ({e}). It lives in the shared data checkout \
             beside this repository (shared/data/harper-valley); this test must not be skipped.",
            Path::new(&sids_path).display()
        )
    });
    let mut hits = 0;
    let mut total = 0;
    for sid in sids.split_whitespace() {
        let bytes = fs::read(format!("{DATA}/transcript/{sid}.json")).expect("transcript");
        let t = transcript::parse(&bytes).expect("a Harper Valley transcript");
        let meta: Metadata = serde_json::from_slice(
            &fs::read(format!("{DATA}/metadata/{sid}.json")).expect("metadata"),
        )
        .expect("metadata JSON");
        let label = &meta.tasks[0].task_type;
        let state = state_of_transcript(&t);
        let out = assist::summarize(&state);
        let reason = out.summary.reason_for_call.to_lowercase();
        let hit = key_words(label).iter().any(|k| reason.contains(k));
        println!("{sid} [{label}] hit={hit} {reason:?} {:?}", out.disposition);
        for id in &out.evidence.reason_for_call {
            assert!(
                state.segment(id).is_some(),
                "{sid}: evidence {id} not in call"
            );
        }
        hits += usize::from(hit);
        total += 1;
    }
    assert_eq!(total, 15, "the sample has 15 calls");
    let rate = hits as f64 / total as f64;
    println!(
        "harper valley reason hit rate: {hits}/{total} = {:.0} %",
        rate * 100.0
    );
    assert!(rate >= 0.9, "hit rate {rate:.2} below the 90 % floor");
}
