//! The call event catalogue: every fact the log can hold about a call.
//!
//! Each variant is stored as `(event_type, schema_version, payload)`. `event_type` and
//! `schema_version` are columns of their own in the store; the payload is the variant's
//! struct as JSON. A change to a payload's shape bumps that variant's schema version and adds
//! an upcast step in [`decode`] from the old version, so rows written years ago still read.
//! No variant has been revised yet: every current version is 1 and there is nothing to upcast.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{
    ActorId, AgentId, AlertId, CardId, LanguageTag, RuleId, RulesetId, SegmentId, Seq,
    SuggestionId, TenantId,
};

/// Where a call's transcript comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    /// Typed or pasted by a person, e.g. a CSR trying the panel.
    Manual,
    /// Streamed from a recorded transcript by the replay tool.
    Replay,
    /// A live phone call (speech-to-text on a telephony stream).
    Telephony,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Agent,
    Customer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// What kind of PII a redaction placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Phone,
    Email,
    Card,
    Ssn,
    Iban,
    Dob,
    Address,
    Name,
    /// A run of digits caught by the strict policy, with no more specific kind.
    Number,
}

/// One redaction in a segment's (already redacted) text: the kind, and the span of the
/// placeholder in Unicode scalar values (`char`s), end exclusive. Never the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub kind: PiiKind,
    pub start: u32,
    pub end: u32,
}

/// A ruleset at one version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RulesetRef {
    pub id: RulesetId,
    pub version: u32,
}

/// One rule of one ruleset version: what every alert, checklist change and card records.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleRef {
    pub rule_id: RuleId,
    pub ruleset: RulesetRef,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Booked,
    Lead,
    Spam,
    Resolved,
    Escalated,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The conversation finished normally.
    Completed,
    /// Handed to another agent or queue.
    Transferred,
    /// The line dropped.
    Dropped,
    /// The customer hung up before being served.
    Abandoned,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Dismissed,
}

/// Why a required checklist item counts as missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MissReason {
    /// The call ended without the item being covered.
    CallEnded,
    /// Its deadline, this many milliseconds into the call, passed.
    Deadline { after_ms: u64 },
    /// Another rule fired first that the item had to precede.
    PrecededBy { rule_id: RuleId },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallStarted {
    pub tenant: TenantId,
    pub source: CallSource,
    pub agent: AgentId,
    pub ruleset: RulesetRef,
    pub language: LanguageTag,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentAdded {
    pub segment_id: SegmentId,
    pub speaker: Speaker,
    /// Already redacted: raw transcript text never reaches the log.
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// False for an interim speech-to-text hypothesis that a final segment with the same id
    /// will replace.
    pub is_final: bool,
    pub confidence: Option<f32>,
    pub redactions: Vec<Redaction>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRaised {
    pub alert_id: AlertId,
    pub rule: RuleRef,
    pub severity: Severity,
    pub message: String,
    /// What the agent could say instead.
    pub correction: Option<String>,
    /// The segment that fired it (the last one, if a phrase spanned two).
    pub segment_id: Option<SegmentId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItemCompleted {
    pub item: RuleRef,
    pub segment_id: SegmentId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItemMissed {
    pub item: RuleRef,
    pub reason: MissReason,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuidanceCardShown {
    pub card_id: CardId,
    pub rule: RuleRef,
    pub title: String,
    pub body: String,
    pub segment_id: Option<SegmentId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplySuggested {
    pub suggestion_id: SuggestionId,
    pub text: String,
    /// The stream position the suggestion was computed from.
    pub based_on_seq: Seq,
    pub provider: String,
    pub model: String,
    pub latency_ms: u32,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
}

/// What the assist worker was generating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssistTask {
    /// A suggested reply ([`ReplySuggested`]).
    Reply,
    /// The end-of-call summary ([`SummaryGenerated`]).
    Summary,
}

/// A provider failed to generate a reply or a summary (after its retries), or was not asked
/// because its circuit breaker was open. Recorded so a failure is never silent; `fallback`
/// names the provider whose output was posted instead, in the same append.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationFailed {
    pub task: AssistTask,
    /// The stream position the generation was computed from.
    pub based_on_seq: Seq,
    pub provider: String,
    pub model: String,
    /// What went wrong, without the prompt or the response text.
    pub error: String,
    /// Calls made to the provider, retries included (0 when the circuit was open).
    pub attempts: u32,
    pub fallback: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestionFeedback {
    pub suggestion_id: SuggestionId,
    pub verdict: Verdict,
    pub by: ActorId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertAcknowledged {
    pub alert_id: AlertId,
    pub by: ActorId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallEnded {
    pub reason: EndReason,
    pub by: ActorId,
}

/// The structured end-of-call summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub reason_for_call: String,
    pub actions_taken: Vec<String>,
    pub next_steps: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryGenerated {
    pub summary: Summary,
    pub disposition: Disposition,
    /// 0.0 ..= 1.0
    pub confidence: f32,
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispositionOverridden {
    pub from: Option<Disposition>,
    pub to: Disposition,
    pub by: ActorId,
    pub note: Option<String>,
}

/// A reference to a moment of the call's own clock, for events that carry one.
pub type Timestamp = DateTime<Utc>;

/// Why a stored `(event_type, schema_version, payload)` could not become a [`CallEvent`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error(
        "event type {event_type:?} has no schema version {version} (this build knows up to {current})"
    )]
    UnsupportedVersion {
        event_type: String,
        version: u16,
        current: u16,
    },
    #[error("payload of {event_type:?} v{version} does not match its schema: {source}")]
    Payload {
        event_type: String,
        version: u16,
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    fn payload(event_type: &str, version: u16, source: serde_json::Error) -> Self {
        DecodeError::Payload {
            event_type: event_type.to_owned(),
            version,
            source,
        }
    }
}

/// A [`CallEvent`] as the store writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedEvent {
    pub event_type: &'static str,
    pub schema_version: u16,
    pub payload: Value,
}

macro_rules! catalogue {
    ($($variant:ident($payload:ty) = $name:literal, v = $version:literal;)*) => {
        /// Every fact about a call. New variants are added here (and in the table below);
        /// the store does not change.
        #[derive(Clone, Debug, PartialEq)]
        pub enum CallEvent {
            $($variant($payload),)*
        }

        impl CallEvent {
            /// The stored type name, e.g. `segment_added`.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(CallEvent::$variant(_) => $name,)*
                }
            }

            /// The schema version this build writes for this event type.
            pub fn schema_version(&self) -> u16 {
                match self {
                    $(CallEvent::$variant(_) => $version,)*
                }
            }

            pub fn encode(&self) -> EncodedEvent {
                let payload = match self {
                    $(CallEvent::$variant(p) => serde_json::to_value(p),)*
                }
                // The payload types hold only strings, numbers, bools, vectors and maps
                // with string keys: serializing them to a `Value` cannot fail.
                .expect("event payloads always serialize to JSON");
                EncodedEvent {
                    event_type: self.event_type(),
                    schema_version: self.schema_version(),
                    payload,
                }
            }

            /// Every event type name this build knows, with its current schema version.
            pub fn catalogue() -> &'static [(&'static str, u16)] {
                &[$(($name, $version),)*]
            }
        }

        /// Reads a stored event, upcasting older schema versions to the current one.
        pub fn decode(event_type: &str, schema_version: u16, payload: Value) -> Result<CallEvent, DecodeError> {
            match event_type {
                $($name => {
                    let payload = upcast($name, schema_version, $version, payload)?;
                    serde_json::from_value::<$payload>(payload)
                        .map(CallEvent::$variant)
                        .map_err(|source| DecodeError::payload($name, schema_version, source))
                })*
                other => Err(DecodeError::UnknownType(other.to_owned())),
            }
        }

        /// [`decode`] from JSON text, as the store reads it. A payload at the current version
        /// is parsed straight into its type (no intermediate `Value`): this is the hot path of
        /// every rebuild and every consumer.
        pub fn decode_str(event_type: &str, schema_version: u16, payload: &str) -> Result<CallEvent, DecodeError> {
            match event_type {
                $($name if schema_version == $version => {
                    serde_json::from_str::<$payload>(payload)
                        .map(CallEvent::$variant)
                        .map_err(|source| DecodeError::payload($name, schema_version, source))
                })*
                _ => {
                    let value = serde_json::from_str(payload)
                        .map_err(|source| DecodeError::payload(event_type, schema_version, source))?;
                    decode(event_type, schema_version, value)
                }
            }
        }
    };
}

catalogue! {
    CallStarted(CallStarted) = "call_started", v = 1;
    SegmentAdded(SegmentAdded) = "segment_added", v = 1;
    AlertRaised(AlertRaised) = "alert_raised", v = 1;
    ChecklistItemCompleted(ChecklistItemCompleted) = "checklist_item_completed", v = 1;
    ChecklistItemMissed(ChecklistItemMissed) = "checklist_item_missed", v = 1;
    GuidanceCardShown(GuidanceCardShown) = "guidance_card_shown", v = 1;
    ReplySuggested(ReplySuggested) = "reply_suggested", v = 1;
    SuggestionFeedback(SuggestionFeedback) = "suggestion_feedback", v = 1;
    AlertAcknowledged(AlertAcknowledged) = "alert_acknowledged", v = 1;
    CallEnded(CallEnded) = "call_ended", v = 1;
    SummaryGenerated(SummaryGenerated) = "summary_generated", v = 1;
    DispositionOverridden(DispositionOverridden) = "disposition_overridden", v = 1;
    GenerationFailed(GenerationFailed) = "generation_failed", v = 1;
}

/// Brings a payload written at `version` up to `current`, one version at a time. When a
/// payload's shape changes, its old version gets a step here, e.g.
/// `("segment_added", 1) => { /* rename a field */ }`; the rows in the log are never rewritten.
fn upcast(
    event_type: &str,
    version: u16,
    current: u16,
    payload: Value,
) -> Result<Value, DecodeError> {
    if version == 0 || version > current {
        return Err(DecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    // Every event type is at its first version: there is no older shape to convert from.
    Ok(payload)
}

/// Serializes as `{"type": "...", "schema_version": n, "data": {...}}`, the shape the CLI
/// and (later) the API print.
impl Serialize for CallEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let encoded = self.encode();
        let mut st = s.serialize_struct("CallEvent", 3)?;
        st.serialize_field("type", encoded.event_type)?;
        st.serialize_field("schema_version", &encoded.schema_version)?;
        st.serialize_field("data", &encoded.payload)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for CallEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            #[serde(rename = "type")]
            event_type: String,
            schema_version: u16,
            data: Value,
        }
        let w = Wire::deserialize(d)?;
        decode(&w.event_type, w.schema_version, w.data).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> CallEvent {
        CallEvent::CallStarted(CallStarted {
            tenant: TenantId::default_tenant(),
            source: CallSource::Replay,
            agent: AgentId::parse("agent-7").unwrap(),
            ruleset: RulesetRef {
                id: RulesetId::parse("home-services").unwrap(),
                version: 3,
            },
            language: LanguageTag::parse("en-US").unwrap(),
        })
    }

    #[test]
    fn encode_decode_round_trip() {
        let e = started();
        let enc = e.encode();
        assert_eq!(enc.event_type, "call_started");
        assert_eq!(enc.schema_version, 1);
        assert_eq!(enc.payload["ruleset"]["version"], 3);
        let back = decode(enc.event_type, enc.schema_version, enc.payload).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_type_and_version_are_errors() {
        let err = decode("call_teleported", 1, Value::Null).unwrap_err();
        assert!(matches!(err, DecodeError::UnknownType(t) if t == "call_teleported"));
        let payload = started().encode().payload;
        let err = decode("call_started", 9, payload.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event type \"call_started\" has no schema version 9 (this build knows up to 1)"
        );
        let err = decode("call_started", 0, payload).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnsupportedVersion { version: 0, .. }
        ));
        let err = decode("call_ended", 1, serde_json::json!({"reason": "exploded"})).unwrap_err();
        assert!(err.to_string().starts_with("payload of \"call_ended\" v1"));
    }

    #[test]
    fn decode_str_agrees_with_decode() {
        let e = started();
        let text = e.encode().payload.to_string();
        assert_eq!(decode_str("call_started", 1, &text).unwrap(), e);
        assert!(matches!(
            decode_str("call_started", 9, &text),
            Err(DecodeError::UnsupportedVersion { version: 9, .. })
        ));
        assert!(matches!(
            decode_str("nope", 1, &text),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            decode_str("call_started", 1, "{not json"),
            Err(DecodeError::Payload { .. })
        ));
    }

    #[test]
    fn catalogue_names_are_unique() {
        let mut names: Vec<_> = CallEvent::catalogue().iter().map(|(n, _)| *n).collect();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), before);
        assert_eq!(before, 13);
    }

    #[test]
    fn wire_shape() {
        let v = serde_json::to_value(started()).unwrap();
        assert_eq!(v["type"], "call_started");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["data"]["source"], "replay");
        let back: CallEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, started());
    }
}
