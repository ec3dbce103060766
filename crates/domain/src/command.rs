//! Commands: what a person or a source asks of a call. [`decide`] checks a command against the
//! call's current state and turns it into the events to append, or a [`DomainError`] that
//! says exactly what was wrong. Nothing is written for a refused command.

use crate::event::{
    AlertAcknowledged, CallEnded, CallEvent, CallSource, CallStarted, Disposition,
    DispositionOverridden, EndReason, GenerationFailed, ReplySuggested, RulesetRef, SegmentAdded,
    SuggestionFeedback, SummaryGenerated, Verdict,
};
use crate::ids::{ActorId, AgentId, AlertId, LanguageTag, SegmentId, SuggestionId, TenantId};
use crate::state::{CallState, CallStatus};

/// The longest segment text accepted from a source, in characters (checked at the edge, on
/// the text as sent). A speech-to-text segment is a sentence or two; anything near this is a
/// misbehaving source.
pub const MAX_SEGMENT_CHARS: usize = 4_000;

/// The longest segment text stored, in characters: the redacted text a command carries.
/// Redaction may lengthen a segment (`my pin is 4321` → `my pin is [NUMBER]`), so a segment
/// the edge accepted must not be refused here for that; the bound only keeps a misconfigured
/// placeholder from growing a row without limit.
pub const MAX_STORED_SEGMENT_CHARS: usize = 4 * MAX_SEGMENT_CHARS;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    StartCall {
        tenant: TenantId,
        source: CallSource,
        agent: AgentId,
        ruleset: RulesetRef,
        language: LanguageTag,
    },
    /// A segment whose text is already redacted.
    AddSegment(SegmentAdded),
    EndCall {
        reason: EndReason,
        by: ActorId,
    },
    AcknowledgeAlert {
        alert_id: AlertId,
        by: ActorId,
    },
    GiveSuggestionFeedback {
        suggestion_id: SuggestionId,
        verdict: Verdict,
        by: ActorId,
    },
    OverrideDisposition {
        to: Disposition,
        by: ActorId,
        note: Option<String>,
    },
    /// The assist worker posts a suggested reply to a live call. Posting a suggestion id the
    /// call already has is a no-op (a retry, or a competing worker that got there first).
    PostSuggestion(ReplySuggested),
    /// The assist worker posts the end-of-call summary. A call has one: posting again is a
    /// no-op.
    PostSummary(SummaryGenerated),
    /// The assist worker records a failed generation. The same failure (task, position,
    /// provider) recorded twice is a no-op.
    ReportGenerationFailure(GenerationFailed),
}

/// The longest suggested reply accepted, in characters.
pub const MAX_SUGGESTION_CHARS: usize = 2_000;
/// The longest note on a disposition override, in characters (checked at the edge, on the
/// note as the person typed it).
pub const MAX_NOTE_CHARS: usize = 2_000;
/// The longest note stored, once redacted (see [`MAX_STORED_SEGMENT_CHARS`]).
pub const MAX_STORED_NOTE_CHARS: usize = 4 * MAX_NOTE_CHARS;
/// The longest summary line (reason, action or next step) accepted, in characters.
pub const MAX_SUMMARY_LINE_CHARS: usize = 1_000;
/// The most actions or next steps in one summary.
pub const MAX_SUMMARY_LINES: usize = 12;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A field of the command is malformed.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the call has not started")]
    CallNotStarted,
    #[error("the call has already started")]
    CallAlreadyStarted,
    #[error("the call has ended")]
    CallEnded,
    #[error("the call has not ended yet")]
    CallNotEnded,
    #[error("segment {0} was already added as final")]
    DuplicateSegment(SegmentId),
    #[error("no alert {0} on this call")]
    UnknownAlert(AlertId),
    #[error("no suggestion {0} on this call")]
    UnknownSuggestion(SuggestionId),
    #[error("suggestion {0} already has feedback")]
    FeedbackAlreadyGiven(SuggestionId),
}

impl DomainError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Validates `command` against `state` and returns the events that carry it out. An empty
/// vector means the command is already satisfied (acknowledging an acknowledged alert).
pub fn decide(state: &CallState, command: Command) -> Result<Vec<CallEvent>, DomainError> {
    match command {
        Command::StartCall {
            tenant,
            source,
            agent,
            ruleset,
            language,
        } => {
            if state.status != CallStatus::NotStarted {
                return Err(DomainError::CallAlreadyStarted);
            }
            if ruleset.version == 0 {
                return Err(DomainError::invalid(
                    "ruleset.version",
                    "must be at least 1",
                ));
            }
            Ok(vec![CallEvent::CallStarted(CallStarted {
                tenant,
                source,
                agent,
                ruleset,
                language,
            })])
        }
        Command::AddSegment(segment) => {
            ensure_live(state)?;
            validate_segment(&segment)?;
            if state
                .segment(&segment.segment_id)
                .is_some_and(|s| s.segment.is_final)
            {
                return Err(DomainError::DuplicateSegment(segment.segment_id));
            }
            Ok(vec![CallEvent::SegmentAdded(segment)])
        }
        Command::EndCall { reason, by } => {
            ensure_live(state)?;
            Ok(vec![CallEvent::CallEnded(CallEnded { reason, by })])
        }
        Command::AcknowledgeAlert { alert_id, by } => {
            ensure_started(state)?;
            let alert = state
                .alerts
                .iter()
                .find(|a| a.alert.alert_id == alert_id)
                .ok_or(DomainError::UnknownAlert(alert_id))?;
            if alert.acknowledged_by.is_some() {
                return Ok(vec![]);
            }
            Ok(vec![CallEvent::AlertAcknowledged(AlertAcknowledged {
                alert_id,
                by,
            })])
        }
        Command::GiveSuggestionFeedback {
            suggestion_id,
            verdict,
            by,
        } => {
            ensure_started(state)?;
            let s = state
                .suggestions
                .iter()
                .find(|s| s.suggestion.suggestion_id == suggestion_id)
                .ok_or(DomainError::UnknownSuggestion(suggestion_id))?;
            if s.feedback.is_some() {
                return Err(DomainError::FeedbackAlreadyGiven(suggestion_id));
            }
            Ok(vec![CallEvent::SuggestionFeedback(SuggestionFeedback {
                suggestion_id,
                verdict,
                by,
            })])
        }
        Command::OverrideDisposition { to, by, note } => {
            match state.status {
                CallStatus::NotStarted => return Err(DomainError::CallNotStarted),
                CallStatus::Live => return Err(DomainError::CallNotEnded),
                CallStatus::Ended => {}
            }
            if let Some(n) = &note
                && n.chars().count() > MAX_STORED_NOTE_CHARS
            {
                return Err(DomainError::invalid(
                    "note",
                    format!("must be at most {MAX_STORED_NOTE_CHARS} characters once redacted"),
                ));
            }
            Ok(vec![CallEvent::DispositionOverridden(
                DispositionOverridden {
                    from: state.disposition.as_ref().map(|d| d.disposition),
                    to,
                    by,
                    note,
                },
            )])
        }
        Command::PostSuggestion(s) => {
            ensure_live(state)?;
            if state
                .suggestions
                .iter()
                .any(|v| v.suggestion.suggestion_id == s.suggestion_id)
            {
                return Ok(vec![]);
            }
            check_text("text", &s.text, MAX_SUGGESTION_CHARS)?;
            if s.based_on_seq > state.version {
                return Err(DomainError::invalid(
                    "based_on_seq",
                    format!(
                        "{} is beyond the call's last event ({})",
                        s.based_on_seq, state.version
                    ),
                ));
            }
            Ok(vec![CallEvent::ReplySuggested(s)])
        }
        Command::PostSummary(s) => {
            match state.status {
                CallStatus::NotStarted => return Err(DomainError::CallNotStarted),
                CallStatus::Live => return Err(DomainError::CallNotEnded),
                CallStatus::Ended => {}
            }
            if state.summary.is_some() {
                return Ok(vec![]);
            }
            check_text(
                "summary.reason_for_call",
                &s.summary.reason_for_call,
                MAX_SUMMARY_LINE_CHARS,
            )?;
            for (field, lines) in [
                ("summary.actions_taken", &s.summary.actions_taken),
                ("summary.next_steps", &s.summary.next_steps),
            ] {
                if lines.len() > MAX_SUMMARY_LINES {
                    return Err(DomainError::invalid(
                        field,
                        format!("has {} lines; at most {MAX_SUMMARY_LINES}", lines.len()),
                    ));
                }
                for line in lines {
                    check_text(field, line, MAX_SUMMARY_LINE_CHARS)?;
                }
            }
            if !(0.0..=1.0).contains(&s.confidence) {
                return Err(DomainError::invalid(
                    "confidence",
                    "must be between 0 and 1",
                ));
            }
            Ok(vec![CallEvent::SummaryGenerated(s)])
        }
        Command::ReportGenerationFailure(f) => {
            ensure_started(state)?;
            if state.generation_failures.iter().any(|v| {
                v.failure.task == f.task
                    && v.failure.based_on_seq == f.based_on_seq
                    && v.failure.provider == f.provider
            }) {
                return Ok(vec![]);
            }
            Ok(vec![CallEvent::GenerationFailed(f)])
        }
    }
}

/// Text a machine generated: not blank, not longer than `max` characters.
fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), DomainError> {
    if text.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(DomainError::invalid(
            field,
            format!("is {chars} characters; at most {max}"),
        ));
    }
    Ok(())
}

fn ensure_started(state: &CallState) -> Result<(), DomainError> {
    match state.status {
        CallStatus::NotStarted => Err(DomainError::CallNotStarted),
        _ => Ok(()),
    }
}

fn ensure_live(state: &CallState) -> Result<(), DomainError> {
    match state.status {
        CallStatus::NotStarted => Err(DomainError::CallNotStarted),
        CallStatus::Ended => Err(DomainError::CallEnded),
        CallStatus::Live => Ok(()),
    }
}

fn validate_segment(s: &SegmentAdded) -> Result<(), DomainError> {
    let chars = s.text.chars().count();
    if s.text.trim().is_empty() {
        return Err(DomainError::invalid("text", "must not be empty"));
    }
    if chars > MAX_STORED_SEGMENT_CHARS {
        return Err(DomainError::invalid(
            "text",
            format!(
                "is {chars} characters once redacted; at most {MAX_STORED_SEGMENT_CHARS} are stored"
            ),
        ));
    }
    if s.end_ms < s.start_ms {
        return Err(DomainError::invalid(
            "end_ms",
            format!("{} is before start_ms {}", s.end_ms, s.start_ms),
        ));
    }
    if let Some(c) = s.confidence
        && !(0.0..=1.0).contains(&c)
    {
        return Err(DomainError::invalid(
            "confidence",
            "must be between 0 and 1",
        ));
    }
    let mut last_end = 0;
    for (i, r) in s.redactions.iter().enumerate() {
        if r.start >= r.end || r.end as usize > chars {
            return Err(DomainError::invalid(
                "redactions",
                format!(
                    "span {i} ({}..{}) is empty or outside the text",
                    r.start, r.end
                ),
            ));
        }
        if r.start < last_end {
            return Err(DomainError::invalid(
                "redactions",
                format!("span {i} overlaps or precedes the one before it"),
            ));
        }
        last_end = r.end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PiiKind, Redaction, Speaker};
    use crate::ids::{CallId, RulesetId, Seq};

    fn actor() -> ActorId {
        ActorId::parse("lead-1").unwrap()
    }

    fn start() -> Command {
        Command::StartCall {
            tenant: TenantId::default_tenant(),
            source: CallSource::Manual,
            agent: AgentId::parse("a-1").unwrap(),
            ruleset: RulesetRef {
                id: RulesetId::parse("home-services").unwrap(),
                version: 1,
            },
            language: LanguageTag::parse("en").unwrap(),
        }
    }

    fn segment(id: &str, text: &str, is_final: bool) -> SegmentAdded {
        SegmentAdded {
            segment_id: SegmentId::parse(id).unwrap(),
            speaker: Speaker::Customer,
            text: text.into(),
            start_ms: 100,
            end_ms: 900,
            is_final,
            confidence: Some(0.9),
            redactions: vec![],
        }
    }

    /// Runs commands through `decide` and `apply`, as the write path does.
    fn run(commands: Vec<Command>) -> Result<CallState, DomainError> {
        let call_id = CallId::new();
        let mut state = CallState::default();
        for c in commands {
            for event in decide(&state, c)? {
                let seq = state.version.next().get();
                state.apply(&crate::testkit::recorded(call_id, seq, event));
            }
        }
        Ok(state)
    }

    fn end() -> Command {
        Command::EndCall {
            reason: EndReason::Completed,
            by: actor(),
        }
    }

    #[test]
    fn commands_in_order() {
        // (commands, expected outcome) — the table a reader checks first.
        let cases: Vec<(&str, Vec<Command>, Result<(), DomainError>)> = vec![
            ("start", vec![start()], Ok(())),
            (
                "twice started",
                vec![start(), start()],
                Err(DomainError::CallAlreadyStarted),
            ),
            (
                "segment before start",
                vec![Command::AddSegment(segment("s1", "hi", true))],
                Err(DomainError::CallNotStarted),
            ),
            (
                "segment after end",
                vec![
                    start(),
                    end(),
                    Command::AddSegment(segment("s1", "hi", true)),
                ],
                Err(DomainError::CallEnded),
            ),
            (
                "end twice",
                vec![start(), end(), end()],
                Err(DomainError::CallEnded),
            ),
            (
                "final segment twice",
                vec![
                    start(),
                    Command::AddSegment(segment("s1", "hi", true)),
                    Command::AddSegment(segment("s1", "hi", true)),
                ],
                Err(DomainError::DuplicateSegment(
                    SegmentId::parse("s1").unwrap(),
                )),
            ),
            (
                "interim then final",
                vec![
                    start(),
                    Command::AddSegment(segment("s1", "hel", false)),
                    Command::AddSegment(segment("s1", "hello", true)),
                ],
                Ok(()),
            ),
            (
                "override while live",
                vec![
                    start(),
                    Command::OverrideDisposition {
                        to: Disposition::Booked,
                        by: actor(),
                        note: None,
                    },
                ],
                Err(DomainError::CallNotEnded),
            ),
            (
                "ack unknown alert",
                vec![
                    start(),
                    Command::AcknowledgeAlert {
                        alert_id: AlertId::new(),
                        by: actor(),
                    },
                ],
                Err(DomainError::UnknownAlert(AlertId::new())),
            ),
        ];
        for (name, commands, want) in cases {
            let got = run(commands).map(|_| ());
            match (&want, &got) {
                (Err(DomainError::UnknownAlert(_)), Err(DomainError::UnknownAlert(_))) => {}
                _ => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn interim_segment_is_replaced_in_place() {
        let state = run(vec![
            start(),
            Command::AddSegment(segment("s1", "i need a", false)),
            Command::AddSegment(segment("s2", "hello", true)),
            Command::AddSegment(segment("s1", "i need a technician", true)),
        ])
        .unwrap();
        assert_eq!(state.segments.len(), 2);
        assert_eq!(state.segments[0].segment.text, "i need a technician");
        assert_eq!(state.segments[0].seq, Seq::new(4));
        assert_eq!(state.version, Seq::new(4));
    }

    #[test]
    fn bad_segments_name_the_field() {
        let cases: Vec<(SegmentAdded, &str)> = vec![
            (segment("s", "   ", true), "text"),
            (
                segment("s", &"x".repeat(MAX_STORED_SEGMENT_CHARS + 1), true),
                "text",
            ),
            (
                SegmentAdded {
                    end_ms: 10,
                    ..segment("s", "hi", true)
                },
                "end_ms",
            ),
            (
                SegmentAdded {
                    confidence: Some(1.5),
                    ..segment("s", "hi", true)
                },
                "confidence",
            ),
            (
                SegmentAdded {
                    redactions: vec![Redaction {
                        kind: PiiKind::Phone,
                        start: 0,
                        end: 99,
                    }],
                    ..segment("s", "call me at [PHONE]", true)
                },
                "redactions",
            ),
            (
                SegmentAdded {
                    redactions: vec![
                        Redaction {
                            kind: PiiKind::Phone,
                            start: 5,
                            end: 10,
                        },
                        Redaction {
                            kind: PiiKind::Email,
                            start: 6,
                            end: 11,
                        },
                    ],
                    ..segment("s", "call me at [PHONE]", true)
                },
                "redactions",
            ),
        ];
        for (seg, field) in cases {
            let err = run(vec![start(), Command::AddSegment(seg)]).unwrap_err();
            assert!(
                matches!(&err, DomainError::Invalid { field: f, .. } if *f == field),
                "{field}: {err:?}"
            );
        }
    }

    #[test]
    fn override_outranks_later_summary() {
        use crate::event::{Summary, SummaryGenerated};
        let mut state = run(vec![
            start(),
            end(),
            Command::OverrideDisposition {
                to: Disposition::Lead,
                by: actor(),
                note: Some("customer will call back".into()),
            },
        ])
        .unwrap();
        let d = state.disposition.clone().unwrap();
        assert_eq!(d.disposition, Disposition::Lead);
        assert_eq!(d.overridden_by, Some(actor()));
        // A summary generated after the override keeps the human's disposition.
        let recorded = crate::testkit::recorded(
            state.info.as_ref().unwrap().call_id,
            state.version.next().get(),
            CallEvent::SummaryGenerated(SummaryGenerated {
                summary: Summary {
                    reason_for_call: "AC not cooling".into(),
                    actions_taken: vec![],
                    next_steps: vec![],
                },
                disposition: Disposition::Spam,
                confidence: 0.4,
                provider: "offline".into(),
                model: "extractive-v1".into(),
            }),
        );
        state.apply(&recorded);
        assert_eq!(
            state.disposition.as_ref().unwrap().disposition,
            Disposition::Lead
        );
        assert_eq!(
            state.summary.as_ref().unwrap().disposition,
            Disposition::Spam
        );
        let again = decide(
            &state,
            Command::OverrideDisposition {
                to: Disposition::Booked,
                by: actor(),
                note: None,
            },
        )
        .unwrap();
        assert!(matches!(
            &again[0],
            CallEvent::DispositionOverridden(DispositionOverridden {
                from: Some(Disposition::Lead),
                to: Disposition::Booked,
                ..
            })
        ));
    }

    fn suggestion(id: SuggestionId, text: &str, based_on: u64) -> Command {
        Command::PostSuggestion(ReplySuggested {
            suggestion_id: id,
            text: text.into(),
            based_on_seq: Seq::new(based_on),
            provider: "offline".into(),
            model: "extractive-v1".into(),
            latency_ms: 1,
            prompt_tokens: None,
            completion_tokens: None,
        })
    }

    fn summary(reason: &str, confidence: f32) -> Command {
        use crate::event::Summary;
        Command::PostSummary(SummaryGenerated {
            summary: Summary {
                reason_for_call: reason.into(),
                actions_taken: vec!["booked a visit".into()],
                next_steps: vec![],
            },
            disposition: Disposition::Booked,
            confidence,
            provider: "openai".into(),
            model: "m".into(),
        })
    }

    fn failure(based_on: u64) -> Command {
        Command::ReportGenerationFailure(GenerationFailed {
            task: crate::event::AssistTask::Reply,
            based_on_seq: Seq::new(based_on),
            provider: "openai".into(),
            model: "m".into(),
            error: "HTTP 500".into(),
            attempts: 3,
            fallback: Some("offline".into()),
        })
    }

    #[test]
    fn assist_commands_are_checked_and_idempotent() {
        let id = SuggestionId::new();
        // A suggestion needs a live call, real text and a position the call has reached.
        assert_eq!(
            run(vec![start(), end(), suggestion(id, "hi", 1)]).unwrap_err(),
            DomainError::CallEnded
        );
        assert!(matches!(
            run(vec![start(), suggestion(id, "  ", 1)]).unwrap_err(),
            DomainError::Invalid { field: "text", .. }
        ));
        assert!(matches!(
            run(vec![start(), suggestion(id, "hi", 7)]).unwrap_err(),
            DomainError::Invalid {
                field: "based_on_seq",
                ..
            }
        ));
        // Posting the same suggestion id twice writes it once.
        let state = run(vec![
            start(),
            suggestion(id, "hi", 1),
            suggestion(id, "hi", 1),
        ])
        .unwrap();
        assert_eq!(state.suggestions.len(), 1);
        assert_eq!(state.version, Seq::new(2));

        // A summary needs an ended call; the first one stands.
        assert_eq!(
            run(vec![start(), summary("no heat", 0.5)]).unwrap_err(),
            DomainError::CallNotEnded
        );
        assert!(matches!(
            run(vec![start(), end(), summary("no heat", 1.5)]).unwrap_err(),
            DomainError::Invalid {
                field: "confidence",
                ..
            }
        ));
        assert!(matches!(
            run(vec![start(), end(), summary("", 0.5)]).unwrap_err(),
            DomainError::Invalid {
                field: "summary.reason_for_call",
                ..
            }
        ));
        let state = run(vec![
            start(),
            end(),
            summary("no heat", 0.5),
            summary("something else", 0.9),
        ])
        .unwrap();
        assert_eq!(
            state.summary.as_ref().unwrap().summary.reason_for_call,
            "no heat"
        );
        assert_eq!(
            state.disposition.as_ref().unwrap().disposition,
            Disposition::Booked
        );

        // The same failure is recorded once; it may come after the call ended.
        let state = run(vec![start(), failure(1), failure(1), end(), failure(2)]).unwrap();
        assert_eq!(state.generation_failures.len(), 2);
        assert_eq!(state.generation_failures[0].seq, Seq::new(2));
    }
}
