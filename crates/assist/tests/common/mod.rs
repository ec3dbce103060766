// Shared by the test files: a CallState from transcript segments.
#![allow(dead_code)]

use domain::event::{CallEvent, SegmentAdded, Speaker};
use domain::ids::{CallId, SegmentId};
use domain::state::CallState;
use domain::testkit::{recorded, started};

pub fn state_of(segments: &[(String, Speaker, String)]) -> CallState {
    let call = CallId::new();
    let mut events = vec![recorded(call, 1, started("default", "agent-7"))];
    for (i, (id, speaker, text)) in segments.iter().enumerate() {
        let n = i as u64;
        events.push(recorded(
            call,
            n + 2,
            CallEvent::SegmentAdded(SegmentAdded {
                segment_id: SegmentId::parse(id.clone()).expect("valid segment id"),
                speaker: *speaker,
                text: text.clone(),
                start_ms: n * 1_000,
                end_ms: n * 1_000 + 800,
                is_final: true,
                confidence: None,
                redactions: vec![],
            }),
        ));
    }
    CallState::replay(&events)
}

pub fn state_of_transcript(t: &transcript::Transcript) -> CallState {
    let segs: Vec<(String, Speaker, String)> = t
        .segments
        .iter()
        .map(|s| (s.id.clone(), s.speaker, s.text.clone()))
        .collect();
    state_of(&segs)
}
