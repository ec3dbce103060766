//! Transcript files (earshot, Harper Valley, ABCD) through `transcript::parse`.
//!
//! Asserts: it never panics; a transcript it accepts has at least one segment, segment ids
//! unique within it (as `TranscriptSegment::id` promises), text that is not blank and an end
//! no earlier than its start; and since a `Transcript` serializes to the earshot format, the
//! serialized transcript parses back to the same transcript.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use transcript::{Format, detect, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(t) = parse(data) else {
        return;
    };
    assert!(!t.segments.is_empty(), "a transcript with no segments");
    let mut ids = BTreeSet::new();
    for s in &t.segments {
        assert!(ids.insert(s.id.as_str()), "segment id {:?} twice", s.id);
        assert!(!s.text.trim().is_empty(), "blank segment {:?}", s.id);
        assert!(
            s.end_ms >= s.start_ms,
            "segment {:?} ends before it starts",
            s.id
        );
    }
    let json = serde_json::to_vec(&t).expect("a transcript serializes");
    let value: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(detect(&value).ok(), Some(Format::Earshot));
    let back = parse(&json).expect("a serialized transcript parses");
    assert_eq!(
        back, t,
        "the round trip through the earshot format changed it"
    );
});
