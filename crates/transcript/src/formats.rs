//! One reader per transcript format.

use domain::event::Speaker;
use serde::Deserialize;
use serde_json::Value;

use crate::{Format, Transcript, TranscriptError, TranscriptSegment};

fn invalid(format: Format, reason: impl Into<String>) -> TranscriptError {
    TranscriptError::Invalid {
        format,
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EarshotFile {
    title: String,
    #[serde(default = "english")]
    language: String,
    segments: Vec<EarshotSegment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EarshotSegment {
    #[serde(default)]
    id: Option<String>,
    speaker: Speaker,
    text: String,
    start_ms: u64,
    end_ms: u64,
}

fn english() -> String {
    "en-US".to_owned()
}

pub(crate) fn earshot(value: Value) -> Result<Transcript, TranscriptError> {
    let f: EarshotFile =
        serde_json::from_value(value).map_err(|e| invalid(Format::Earshot, e.to_string()))?;
    if f.segments.is_empty() {
        return Err(invalid(Format::Earshot, "segments: must not be empty"));
    }
    let mut segments = Vec::with_capacity(f.segments.len());
    let mut seen = std::collections::HashSet::new();
    for (i, s) in f.segments.into_iter().enumerate() {
        let id = s.id.unwrap_or_else(|| format!("seg-{}", i + 1));
        if !seen.insert(id.clone()) {
            return Err(invalid(
                Format::Earshot,
                format!("segments[{i}].id: {id:?} appears twice"),
            ));
        }
        if s.end_ms < s.start_ms {
            return Err(invalid(
                Format::Earshot,
                format!("segments[{i}].end_ms: before start_ms"),
            ));
        }
        if s.text.trim().is_empty() {
            return Err(invalid(
                Format::Earshot,
                format!("segments[{i}].text: must not be empty"),
            ));
        }
        segments.push(TranscriptSegment {
            id,
            speaker: s.speaker,
            text: s.text,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
        });
    }
    Ok(Transcript {
        title: f.title,
        language: f.language,
        segments,
    })
}

#[derive(Deserialize)]
struct HvUtterance {
    index: u64,
    speaker_role: String,
    human_transcript: String,
    start_ms: i64,
    duration_ms: u64,
}

/// Harper Valley annotators mark noise and cut-off words; they are not speech.
fn clean_hv(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| !(w.starts_with('[') || w.starts_with('<') || w.ends_with('~')))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn harper_valley(value: Value) -> Result<Transcript, TranscriptError> {
    let utterances: Vec<HvUtterance> =
        serde_json::from_value(value).map_err(|e| invalid(Format::HarperValley, e.to_string()))?;
    let mut segments = Vec::with_capacity(utterances.len());
    let mut seen = std::collections::HashSet::new();
    for u in utterances {
        // Segment ids are made of `index`, and must be unique.
        if !seen.insert(u.index) {
            return Err(invalid(
                Format::HarperValley,
                format!("utterance {}: index appears twice", u.index),
            ));
        }
        let speaker = match u.speaker_role.as_str() {
            "agent" => Speaker::Agent,
            "caller" => Speaker::Customer,
            other => {
                return Err(invalid(
                    Format::HarperValley,
                    format!("utterance {}: unknown speaker_role {other:?}", u.index),
                ));
            }
        };
        let text = clean_hv(&u.human_transcript);
        if text.is_empty() {
            continue;
        }
        let start_ms = u.start_ms.max(0) as u64;
        let end_ms = start_ms.checked_add(u.duration_ms).ok_or_else(|| {
            invalid(
                Format::HarperValley,
                format!(
                    "utterance {}: start_ms + duration_ms is out of range",
                    u.index
                ),
            )
        })?;
        segments.push(TranscriptSegment {
            id: format!("hv-{}", u.index),
            speaker,
            text,
            start_ms,
            end_ms,
        });
    }
    // `index` order is close to, but not exactly, time order (overlapping turns).
    segments.sort_by_key(|s| s.start_ms);
    if segments.is_empty() {
        return Err(invalid(Format::HarperValley, "no spoken utterances"));
    }
    Ok(Transcript {
        title: "Harper Valley bank call".to_owned(),
        language: "en-US".to_owned(),
        segments,
    })
}

pub(crate) fn abcd(value: Value) -> Result<Transcript, TranscriptError> {
    let convo = match value {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        Value::Array(_) => return Err(invalid(Format::Abcd, "no conversations")),
        other => other,
    };
    let id = convo
        .get("convo_id")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let turns = convo
        .get("original")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(Format::Abcd, "original: expected a list of [speaker, text]"))?;
    let mut segments = Vec::new();
    let mut clock = 0u64;
    for (i, turn) in turns.iter().enumerate() {
        let (Some(who), Some(text)) = (
            turn.get(0).and_then(Value::as_str),
            turn.get(1).and_then(Value::as_str),
        ) else {
            return Err(invalid(
                Format::Abcd,
                format!("original[{i}]: expected [speaker, text]"),
            ));
        };
        let speaker = match who {
            "agent" => Speaker::Agent,
            "customer" => Speaker::Customer,
            "action" => continue,
            other => {
                return Err(invalid(
                    Format::Abcd,
                    format!("original[{i}]: unknown speaker {other:?}"),
                ));
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let words = text.split_whitespace().count() as u64;
        let duration = (words * 400).max(1_500);
        segments.push(TranscriptSegment {
            id: format!("abcd-{}", i + 1),
            speaker,
            text: text.to_owned(),
            start_ms: clock,
            end_ms: clock + duration,
        });
        clock += duration + 300;
    }
    if segments.is_empty() {
        return Err(invalid(Format::Abcd, "no spoken turns"));
    }
    Ok(Transcript {
        title: format!("ABCD conversation {id}"),
        language: "en-US".to_owned(),
        segments,
    })
}
