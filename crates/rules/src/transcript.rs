//! Whole transcripts: owned segments, and running an engine over a finished call (what
//! `earshot rules check FILE --transcript T` prints). Reading transcript files is the
//! `transcript` crate's job.

use domain::event::{CallEvent, Speaker};
use domain::ids::{CallId, LanguageTag, SegmentId};
use serde::{Deserialize, Serialize};

use crate::compile::Engine;
use crate::engine::SegmentInput;

/// A segment that owns its text, e.g. loaded from a transcript file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedSegment {
    pub segment_id: SegmentId,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl OwnedSegment {
    pub fn as_input(&self) -> SegmentInput<'_> {
        SegmentInput {
            segment_id: &self.segment_id,
            speaker: self.speaker,
            text: &self.text,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
        }
    }
}

/// Runs a whole call through `engine`: for each segment in order, the clock at its start and
/// then the segment; then the end of the call. The same inputs give the same events.
pub fn run_transcript(
    engine: &Engine,
    call: CallId,
    language: &LanguageTag,
    segments: &[OwnedSegment],
) -> Vec<CallEvent> {
    let mut state = engine.new_call(language);
    let mut events = Vec::new();
    for seg in segments {
        events.extend(engine.on_clock(&mut state, call, seg.start_ms));
        events.extend(engine.on_segment(&mut state, call, &seg.as_input()));
    }
    events.extend(engine.on_call_end(&mut state, call));
    events
}
