//! Proptest strategies for *valid* call event sequences: a started call, then segments,
//! alerts, checklist changes, cards, suggestions and feedback, an end, a summary and
//! overrides, in an order the write path would accept. Used by the property tests of the
//! store and projection crates ("the state rebuilt from the log at seq equals the live state
//! at seq").

use proptest::prelude::*;

use crate::event::*;
use crate::ids::*;

#[derive(Clone, Debug)]
enum Op {
    Segment {
        customer: bool,
        text: usize,
        is_final: bool,
        reuse: bool,
    },
    Alert {
        severity: u8,
    },
    Complete {
        rule: usize,
    },
    Miss {
        rule: usize,
    },
    Card,
    Suggest,
    Feedback {
        pick: usize,
        accept: bool,
    },
    Ack {
        pick: usize,
    },
    End,
    Summary {
        disposition: u8,
    },
    Override {
        disposition: u8,
    },
}

const TEXTS: &[&str] = &[
    "thank you for calling comfort air this is dana",
    "my ac stopped cooling last night",
    "can i get your service address please",
    "i guarantee we'll have it fixed today",
    "you can reach me at [PHONE]",
    "أريد إلغاء الاشتراك",
    "मुझे अपना कार्ड बदलना है",
    "okay",
];

const RULES: &[&str] = &[
    "greeting",
    "confirm-address",
    "recording-consent",
    "offer-appointment",
];

const DISPOSITIONS: &[Disposition] = &[
    Disposition::Booked,
    Disposition::Lead,
    Disposition::Spam,
    Disposition::Resolved,
    Disposition::Escalated,
    Disposition::Other,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 0..TEXTS.len(), any::<bool>(), any::<bool>())
            .prop_map(|(customer, text, is_final, reuse)| Op::Segment { customer, text, is_final, reuse }),
        2 => (0u8..3).prop_map(|severity| Op::Alert { severity }),
        2 => (0..RULES.len()).prop_map(|rule| Op::Complete { rule }),
        1 => (0..RULES.len()).prop_map(|rule| Op::Miss { rule }),
        1 => Just(Op::Card),
        2 => Just(Op::Suggest),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, accept)| Op::Feedback { pick, accept }),
        1 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        1 => Just(Op::End),
        1 => (0u8..6).prop_map(|disposition| Op::Summary { disposition }),
        1 => (0u8..6).prop_map(|disposition| Op::Override { disposition }),
    ]
}

fn ruleset() -> RulesetRef {
    RulesetRef {
        id: RulesetId::parse("home-services").expect("valid"),
        version: 2,
    }
}

fn rule(name: &str) -> RuleRef {
    RuleRef {
        rule_id: RuleId::parse(name).expect("valid"),
        ruleset: ruleset(),
    }
}

fn actor() -> ActorId {
    ActorId::parse("supervisor-1").expect("valid")
}

/// A valid sequence of 1 to `max_len + 1` events for one call, starting with `CallStarted`.
pub fn call_events(max_len: usize) -> impl Strategy<Value = Vec<CallEvent>> {
    prop::collection::vec(op(), 0..max_len).prop_map(build)
}

fn build(ops: Vec<Op>) -> Vec<CallEvent> {
    let mut out = vec![CallEvent::CallStarted(CallStarted {
        tenant: TenantId::default_tenant(),
        source: CallSource::Replay,
        agent: AgentId::parse("agent-7").expect("valid"),
        ruleset: ruleset(),
        language: LanguageTag::parse("en-US").expect("valid"),
    })];
    let mut ended = false;
    let mut segments: Vec<(SegmentId, bool)> = vec![];
    let mut alerts: Vec<(AlertId, bool)> = vec![];
    let mut suggestions: Vec<(SuggestionId, bool)> = vec![];
    let mut disposition: Option<Disposition> = None;
    let mut clock = 0u64;
    for op in ops {
        match op {
            Op::Segment {
                customer,
                text,
                is_final,
                reuse,
            } if !ended => {
                // Re-send an interim segment as its final (or updated interim) version.
                let target = segments
                    .iter_mut()
                    .rev()
                    .find(|(_, f)| !*f)
                    .filter(|_| reuse);
                let segment_id = match target {
                    Some((id, f)) => {
                        *f = is_final;
                        id.clone()
                    }
                    None => {
                        let id =
                            SegmentId::parse(format!("seg-{}", segments.len() + 1)).expect("valid");
                        segments.push((id.clone(), is_final));
                        id
                    }
                };
                let text = TEXTS[text].to_owned();
                let redactions = match text.find("[PHONE]") {
                    Some(byte) => {
                        let start = text[..byte].chars().count() as u32;
                        vec![Redaction {
                            kind: PiiKind::Phone,
                            start,
                            end: start + 7,
                        }]
                    }
                    None => vec![],
                };
                clock += 1_500;
                out.push(CallEvent::SegmentAdded(SegmentAdded {
                    segment_id,
                    speaker: if customer {
                        Speaker::Customer
                    } else {
                        Speaker::Agent
                    },
                    text,
                    start_ms: clock,
                    end_ms: clock + 1_200,
                    is_final,
                    confidence: Some(0.87),
                    redactions,
                }));
            }
            Op::Alert { severity } if !ended => {
                let alert_id = AlertId::new();
                alerts.push((alert_id, false));
                out.push(CallEvent::AlertRaised(AlertRaised {
                    alert_id,
                    rule: rule("no-guarantee"),
                    severity: [Severity::Info, Severity::Warning, Severity::Critical]
                        [severity as usize],
                    message: "Do not guarantee outcomes".into(),
                    correction: Some("We'll do everything we can to fix it today.".into()),
                    segment_id: segments.last().map(|(id, _)| id.clone()),
                }));
            }
            Op::Complete { rule: r } if !ended => {
                if let Some((id, _)) = segments.last() {
                    out.push(CallEvent::ChecklistItemCompleted(ChecklistItemCompleted {
                        item: rule(RULES[r]),
                        segment_id: id.clone(),
                    }));
                }
            }
            Op::Miss { rule: r } => out.push(CallEvent::ChecklistItemMissed(ChecklistItemMissed {
                item: rule(RULES[r]),
                reason: if ended {
                    MissReason::CallEnded
                } else {
                    MissReason::Deadline { after_ms: 30_000 }
                },
            })),
            Op::Card if !ended => out.push(CallEvent::GuidanceCardShown(GuidanceCardShown {
                card_id: CardId::new(),
                rule: rule("retention"),
                title: "Customer wants to cancel".into(),
                body: "Acknowledge, ask why, offer the loyalty discount.".into(),
                segment_id: segments.last().map(|(id, _)| id.clone()),
            })),
            Op::Suggest if !ended => {
                let suggestion_id = SuggestionId::new();
                suggestions.push((suggestion_id, false));
                out.push(CallEvent::ReplySuggested(ReplySuggested {
                    suggestion_id,
                    text: "Could I confirm the service address?".into(),
                    based_on_seq: Seq::new(out.len() as u64),
                    provider: "offline".into(),
                    model: "rules-v1".into(),
                    latency_ms: 3,
                    prompt_tokens: None,
                    completion_tokens: None,
                }));
            }
            Op::Feedback { pick, accept } if !suggestions.is_empty() => {
                let i = pick % suggestions.len();
                if !suggestions[i].1 {
                    suggestions[i].1 = true;
                    out.push(CallEvent::SuggestionFeedback(SuggestionFeedback {
                        suggestion_id: suggestions[i].0,
                        verdict: if accept {
                            Verdict::Accepted
                        } else {
                            Verdict::Dismissed
                        },
                        by: actor(),
                    }));
                }
            }
            Op::Ack { pick } if !alerts.is_empty() => {
                let i = pick % alerts.len();
                if !alerts[i].1 {
                    alerts[i].1 = true;
                    out.push(CallEvent::AlertAcknowledged(AlertAcknowledged {
                        alert_id: alerts[i].0,
                        by: actor(),
                    }));
                }
            }
            Op::End if !ended => {
                ended = true;
                out.push(CallEvent::CallEnded(CallEnded {
                    reason: EndReason::Completed,
                    by: actor(),
                }));
            }
            Op::Summary { disposition: d } if ended => {
                disposition.get_or_insert(DISPOSITIONS[d as usize]);
                out.push(CallEvent::SummaryGenerated(SummaryGenerated {
                    summary: Summary {
                        reason_for_call: "AC not cooling".into(),
                        actions_taken: vec!["Booked a technician visit".into()],
                        next_steps: vec!["Technician arrives Tuesday 9-11am".into()],
                    },
                    disposition: DISPOSITIONS[d as usize],
                    confidence: 0.8,
                    provider: "offline".into(),
                    model: "extractive-v1".into(),
                }));
            }
            Op::Override { disposition: d } if ended => {
                out.push(CallEvent::DispositionOverridden(DispositionOverridden {
                    from: disposition,
                    to: DISPOSITIONS[d as usize],
                    by: actor(),
                    note: None,
                }));
                disposition = Some(DISPOSITIONS[d as usize]);
            }
            _ => {}
        }
    }
    out
}

/// `event` as the store would return it at `seq` of `call_id` (position = seq, now).
pub fn recorded(call_id: CallId, seq: u64, event: CallEvent) -> crate::RecordedEvent {
    crate::RecordedEvent {
        meta: crate::EventMetadata {
            event_id: EventId::new(),
            tenant: TenantId::default_tenant(),
            call_id,
            seq: Seq::new(seq),
            global_position: crate::GlobalPosition::new(seq),
            recorded_at: chrono::Utc::now(),
            trace_id: None,
            causation_id: None,
            correlation_id: None,
            schema_version: 1,
        },
        event,
    }
}

/// A `CallStarted` for `tenant` and `agent` on the home-services ruleset.
pub fn started(tenant: &str, agent: &str) -> CallEvent {
    CallEvent::CallStarted(CallStarted {
        tenant: TenantId::parse(tenant).expect("valid tenant"),
        source: CallSource::Replay,
        agent: AgentId::parse(agent).expect("valid agent"),
        ruleset: RulesetRef {
            id: RulesetId::parse("home-services").expect("valid"),
            version: 1,
        },
        language: LanguageTag::parse("en-US").expect("valid"),
    })
}

/// Segment `n` (odd: customer, even: agent), timed `n` seconds into the call.
pub fn segment(n: u64, text: &str, is_final: bool) -> CallEvent {
    CallEvent::SegmentAdded(SegmentAdded {
        segment_id: SegmentId::parse(format!("seg-{n}")).expect("valid"),
        speaker: if n.is_multiple_of(2) {
            Speaker::Agent
        } else {
            Speaker::Customer
        },
        text: text.to_owned(),
        start_ms: n * 1_000,
        end_ms: n * 1_000 + 800,
        is_final,
        confidence: Some(0.9),
        redactions: vec![],
    })
}

/// A critical "never guarantee" alert with a fresh id.
pub fn alert() -> CallEvent {
    CallEvent::AlertRaised(AlertRaised {
        alert_id: AlertId::new(),
        rule: rule("no-guarantee"),
        severity: Severity::Critical,
        message: "Never guarantee an outcome".into(),
        correction: Some("We'll do everything we can to get it working today.".into()),
        segment_id: Some(SegmentId::parse("seg-1").expect("valid")),
    })
}
