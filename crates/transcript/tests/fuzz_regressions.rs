//! Inputs found by `cargo fuzz run transcript_formats` (docs/fuzzing.md), minimized, each
//! with the behaviour it must keep.

use std::collections::HashSet;

use transcript::{Format, TranscriptError, parse};

fn invalid_hv(input: &[u8]) -> String {
    match parse(input) {
        Err(TranscriptError::Invalid {
            format: Format::HarperValley,
            reason,
        }) => reason,
        other => panic!("expected a Harper Valley error, got {other:?}"),
    }
}

/// Two utterances with one `index` gave two segments with the id `hv-2`, though segment ids
/// are unique within a transcript.
#[test]
fn harper_valley_index_twice_is_refused() {
    let input = br#"[{"duration_ms":4,"human_transcript":"m","index":2,"speaker_role":"agent","start_ms":4},{"duration_ms":130,"human_transcript":"ay","index":2,"speaker_role":"agent","start_ms":4}]"#;
    assert_eq!(invalid_hv(input), "utterance 2: index appears twice");
}

#[test]
fn harper_valley_segment_ids_stay_unique() {
    let input = br#"[{"duration_ms":4,"human_transcript":"m","index":2,"speaker_role":"agent","start_ms":4},{"duration_ms":130,"human_transcript":"ay","index":3,"speaker_role":"caller","start_ms":4}]"#;
    let t = parse(input).unwrap();
    let ids: HashSet<&str> = t.segments.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), t.segments.len());
}

/// `start_ms + duration_ms` overflowed: a panic with overflow checks, and in a release build
/// a segment ending before it starts. Found while writing the target's invariants, and
/// confirmed with it: the target's `end_ms >= start_ms` check fails on this input.
#[test]
fn harper_valley_end_past_u64_is_refused() {
    let input = br#"[{"duration_ms":18446744073709551615,"human_transcript":"m","index":2,"speaker_role":"agent","start_ms":1}]"#;
    assert_eq!(
        invalid_hv(input),
        "utterance 2: start_ms + duration_ms is out of range"
    );
}
