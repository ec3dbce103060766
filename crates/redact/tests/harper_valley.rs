//! The 15 Harper Valley bank calls (Gridspace–Stanford, Apache-2.0), through the redactor
//! with one context per speaker, as the ingest pipeline will run it.
//!
//! Callers read out (fictional) phone numbers and zip codes digit by digit, split over
//! several segments ("my phone number is one four two" / "six four one" / "nine eight four
//! two"). No single segment holds seven digits, so the check is on each speaker's segments
//! joined in order: that is what a reader of the stored transcript would see.

use std::fs;
use std::path::Path;

use redact::{Policy, Redactor, SpeakerContext};
use serde::Deserialize;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/harper-valley/transcript"
);

#[derive(Deserialize)]
struct Utterance {
    index: u32,
    speaker_role: String,
    human_transcript: String,
}

struct Call {
    sid: String,
    utterances: Vec<Utterance>,
}

fn load() -> Vec<Call> {
    let dir = Path::new(DATA);
    let entries = fs::read_dir(dir).unwrap_or_else(|e| {
        panic!(
            "Harper Valley transcripts not found at {} ({e}). They live in the shared data \
             checkout beside this repository (shared/data/harper-valley/transcript/*.json); \
             this test must not be skipped.",
            dir.display()
        )
    });
    let mut calls: Vec<Call> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let json = fs::read_to_string(&p).expect("readable transcript");
            let mut utterances: Vec<Utterance> =
                serde_json::from_str(&json).expect("a JSON list of utterances");
            utterances.sort_by_key(|u| u.index);
            Call {
                sid: p
                    .file_stem()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned(),
                utterances,
            }
        })
        .collect();
    calls.sort_by(|a, b| a.sid.cmp(&b.sid));
    calls
}

/// The longest run of digits a naive reader sees: digit words, "oh"/"o", "double"/"triple",
/// written digits, and (to err on the strict side) tens and teens as two digits each, with
/// hesitations and transcription tags in between not breaking the run.
fn longest_digit_run(text: &str) -> usize {
    const ONES: &[&str] = &[
        "zero", "oh", "o", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    const TWOS: &[&str] = &[
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
    ];
    let (mut best, mut cur, mut repeat) = (0, 0, 1);
    for tok in text.split_whitespace() {
        let n = if ONES.contains(&tok) {
            1
        } else if TWOS.contains(&tok) {
            2
        } else if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) {
            tok.len()
        } else {
            match tok {
                "double" => {
                    repeat = 2;
                    continue;
                }
                "triple" => {
                    repeat = 3;
                    continue;
                }
                "uh" | "um" | "uhm" | "[noise]" | "<unk>" => continue,
                _ => {
                    cur = 0;
                    repeat = 1;
                    continue;
                }
            }
        };
        cur += n * repeat;
        repeat = 1;
        best = best.max(cur);
    }
    best
}

/// One call after redaction.
struct Redacted {
    sid: String,
    /// Each speaker's (agent, caller) segments joined in order, before and after.
    raw: [String; 2],
    red: [String; 2],
    /// Each utterance's redacted text, in utterance order.
    each: Vec<String>,
}

/// Each call's segments through `r`, with one context per speaker.
fn redact_all(r: &Redactor, calls: &[Call]) -> Vec<Redacted> {
    calls
        .iter()
        .map(|call| {
            let mut ctx = [SpeakerContext::new(), SpeakerContext::new()];
            let mut raw: [String; 2] = Default::default();
            let mut red: [String; 2] = Default::default();
            let mut each = Vec::new();
            for u in &call.utterances {
                let s = match u.speaker_role.as_str() {
                    "agent" => 0,
                    "caller" => 1,
                    other => panic!("unknown speaker_role {other:?} in {}", call.sid),
                };
                let out = r.redact_next(&mut ctx[s], &u.human_transcript);
                for red in &out.redactions {
                    let placeholder: String = out
                        .text
                        .chars()
                        .skip(red.start as usize)
                        .take((red.end - red.start) as usize)
                        .collect();
                    assert_eq!(placeholder, r.policy().placeholders.get(red.kind));
                }
                raw[s].push_str(&u.human_transcript);
                raw[s].push(' ');
                red[s].push_str(&out.text);
                red[s].push(' ');
                each.push(out.text);
            }
            Redacted {
                sid: call.sid.clone(),
                raw,
                red,
                each,
            }
        })
        .collect()
}

#[test]
fn no_seven_digit_run_survives_in_any_speakers_stream() {
    let calls = load();
    assert_eq!(calls.len(), 15, "expected the 15 Harper Valley calls");
    let utterances: usize = calls.iter().map(|c| c.utterances.len()).sum();
    assert_eq!(utterances, 302);

    for policy in [Policy::default(), Policy::strict(4)] {
        let r = Redactor::new(policy).expect("valid");
        let mut long_in_input = 0;
        for Redacted { sid, raw, red, .. } in redact_all(&r, &calls) {
            for s in 0..2 {
                if longest_digit_run(&raw[s]) >= 7 {
                    long_in_input += 1;
                }
                let left = longest_digit_run(&red[s]);
                assert!(
                    left < 7,
                    "call {sid}: a run of {left} digits survives in the redacted text"
                );
            }
        }
        // The phone numbers of calls 0224c9… and 0ece8b… and the zip code read twice in
        // 099f48…: if the reader stopped seeing them, the assertion above would be empty.
        assert!(
            long_in_input >= 3,
            "only {long_in_input} long runs in the input"
        );
    }
}

#[test]
fn known_pii_is_redacted_and_known_non_pii_survives() {
    let calls = load();
    let r = Redactor::new(Policy::default()).expect("valid");
    let all = redact_all(&r, &calls);
    let find = |sid: &str, index: u32| -> (&str, &str) {
        let (ci, call) = calls
            .iter()
            .enumerate()
            .find(|(_, c)| c.sid.starts_with(sid))
            .unwrap_or_else(|| panic!("call {sid} not in the data"));
        let pos = call
            .utterances
            .iter()
            .position(|u| u.index == index)
            .unwrap_or_else(|| panic!("utterance {index} not in call {sid}"));
        (
            call.utterances[pos].human_transcript.as_str(),
            all[ci].each[pos].as_str(),
        )
    };

    for (sid, index, want) in [
        ("0224c9", 11, "my phone number is [PHONE]"),
        ("0224c9", 12, "[PHONE]"),
        ("0224c9", 13, "[PHONE]"),
        ("0ece8b", 10, "my phone number is [PHONE]"),
        ("0ece8b", 14, "it's [NUMBER]"),
        ("0ece8b", 17, "[PHONE]"),
        ("084d81", 14, "and the zip is [NUMBER]"),
    ] {
        assert_eq!(find(sid, index).1, want, "call {sid} utterance {index}");
    }

    for (sid, index) in [
        ("0126ff", 13), // the branch hours are nine thirty a m a m to five o'clock p m
        ("037724", 9),  // eighty six dollars has been transferred …
        ("076cd5", 11), // um that's gonna be a hundred and one dollar
        ("0b5d3d", 10), // twenty five hundred dollars in there …
        ("0df279", 9),  // uh eight forty five a m
        ("0df279", 11), // … scheduled for friday at eight forty five a m
        ("099f48", 16), // the amount of the bill is one hundred and three dollars
        ("0a7678", 10), // … arriving at about three to five business days …
        ("0a7678", 6),  // let me get that done for you one moment
        ("0002f7", 7),  // can you send me a new one
        ("04a102", 4),  // oh
        ("0ece8b", 18), // your password reset link has been sent to your phone
    ] {
        let (input, output) = find(sid, index);
        assert!(!input.is_empty());
        assert_eq!(
            output, input,
            "call {sid} utterance {index} must survive unchanged"
        );
    }
}

#[test]
fn the_checker_sees_spoken_written_and_mixed_runs() {
    assert_eq!(
        longest_digit_run("my number is four one five uh 555 oh one"),
        8
    );
    assert_eq!(longest_digit_run("double five triple two"), 5);
    assert_eq!(longest_digit_run("oh okay two units"), 1);
    assert_eq!(longest_digit_run("[PHONE] [PHONE]"), 0);
}
