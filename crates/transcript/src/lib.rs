//! Call transcripts from files: the project's own format, Harper Valley bank calls and ABCD
//! customer-service dialogues, read into one [`Transcript`] shape that the `rules check` and
//! (later) `replay` subcommands stream as a call.
//!
//! Pure: parsing takes bytes and returns data or a [`TranscriptError`] that says where and
//! why (the file is the caller's to read).
//!
//! # Formats
//!
//! - **earshot** (`transcripts/*.json`, JSON Schema in `transcripts/schema/transcript.schema.json`):
//!   `{"title", "language", "segments": [{"speaker": "agent"|"customer", "text", "start_ms",
//!   "end_ms"}]}`; unknown fields are refused.
//! - **Harper Valley** (`harper-valley/transcript/<sid>.json`): a JSON list of utterances; we
//!   use `human_transcript` (the human reference, not the ASR text), `speaker_role`
//!   (`agent`/`caller`), `start_ms` and `duration_ms`; empty utterances are skipped.
//! - **ABCD** (`abcd_sample.json`): a list of conversations (or one) with `original` =
//!   `[speaker, text]` pairs; `action` turns (button clicks, not speech) are skipped. The chats
//!   have no timings, so each turn is given 400 ms per word, at least 1.5 s, one after another.
//!
//! # Layout
//!
//! - `lib.rs`: [`Transcript`], [`TranscriptSegment`], [`parse`], [`Format`], errors.
//! - `formats`: one reader per format.

mod formats;

use domain::event::Speaker;
use serde::{Deserialize, Serialize};

/// A call as a sequence of timed, attributed segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub title: String,
    /// A BCP 47 tag, e.g. `en-US`.
    pub language: String,
    pub segments: Vec<TranscriptSegment>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    /// Unique within the transcript, e.g. `seg-3` or `hv-12`.
    pub id: String,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Earshot,
    HarperValley,
    Abcd,
}

#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a transcript this tool knows: {0}")]
    UnknownFormat(&'static str),
    #[error("{format:?} transcript: {reason}")]
    Invalid { format: Format, reason: String },
}

/// Reads a transcript, recognising its format from its shape.
pub fn parse(json: &[u8]) -> Result<Transcript, TranscriptError> {
    let value: serde_json::Value = serde_json::from_slice(json)?;
    match detect(&value)? {
        Format::Earshot => formats::earshot(value),
        Format::HarperValley => formats::harper_valley(value),
        Format::Abcd => formats::abcd(value),
    }
}

/// Which format a parsed JSON document is in.
pub fn detect(value: &serde_json::Value) -> Result<Format, TranscriptError> {
    use serde_json::Value;
    let first = match value {
        Value::Object(o) if o.contains_key("segments") => return Ok(Format::Earshot),
        Value::Object(o) if o.contains_key("original") => return Ok(Format::Abcd),
        Value::Array(items) => items.first(),
        _ => None,
    };
    match first {
        Some(Value::Object(o)) if o.contains_key("speaker_role") => Ok(Format::HarperValley),
        Some(Value::Object(o)) if o.contains_key("original") => Ok(Format::Abcd),
        Some(_) => Err(TranscriptError::UnknownFormat(
            "a list, but not of Harper Valley utterances or ABCD conversations",
        )),
        None => Err(TranscriptError::UnknownFormat(
            "expected an object with \"segments\" (earshot), a list of utterances with \
             \"speaker_role\" (Harper Valley) or conversations with \"original\" (ABCD)",
        )),
    }
}
