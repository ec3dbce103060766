//! What one speaker's previous segment left open, carried into their next segment.

use domain::event::PiiKind;
use serde::{Deserialize, Serialize};

use crate::cue::Cue;

/// Per-speaker state for [`Redactor::redact_next`](crate::Redactor::redact_next).
///
/// Keep one per speaker per call and pass the same value with each of that speaker's
/// segments, in order; segments of the other speaker in between do not disturb it. It is
/// plain data — counts, a cue and a kind, **never digits or any function of them** — so it
/// can be logged, stored with the call and used to replay the redaction exactly.
/// Segments that hold only hesitations or `[noise]` leave it unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerContext {
    /// The digit run the last segment ended with, if it ended with one.
    pub(crate) tail: Option<Tail>,
    /// A cue the last segment ended with that no value has followed yet ("my card number is").
    pub(crate) cue: Option<OpenCue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tail {
    pub digits: u32,
    pub literal: u32,
    pub atoms: u32,
    pub cue: Option<Cue>,
    /// How it was redacted, if it was. Once part of a number is redacted the rest is too.
    pub redacted: Option<PiiKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpenCue {
    pub cue: Cue,
    /// Words spoken since the cue, counted against its window.
    pub used: u8,
}

impl SpeakerContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything, e.g. after a long silence or a hold.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// True if the next segment starts fresh: no digit run or cue is waiting for it.
    pub fn is_idle(&self) -> bool {
        self.tail.is_none() && self.cue.is_none()
    }

    /// The kind the previous segment's trailing digit run was redacted as, if it was: the
    /// caller can tell that a number is being read out across segments.
    pub fn pending(&self) -> Option<PiiKind> {
        self.tail.and_then(|t| t.redacted)
    }
}
