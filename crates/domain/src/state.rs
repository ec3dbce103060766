//! `CallState`: the projection of one call's stream that the panel, the API and the command
//! validation all read. Built only by [`CallState::apply`], so the state at any position is
//! the fold of the stream up to it, whether live or rebuilt from the log.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::envelope::RecordedEvent;
use crate::event::{
    AlertRaised, CallEvent, CallSource, Disposition, EndReason, GenerationFailed,
    GuidanceCardShown, MissReason, ReplySuggested, RuleRef, RulesetRef, SegmentAdded, Summary,
    Timestamp, Verdict,
};
use crate::ids::{ActorId, AgentId, CallId, LanguageTag, RuleId, SegmentId, Seq, TenantId};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// No event yet.
    #[default]
    NotStarted,
    Live,
    Ended,
}

/// A call's transcript: segments in first-seen order, with an index by segment id so that
/// folding a long call stays linear. Serializes as the plain list; equality ignores the index
/// (it is derived from the list).
#[derive(Clone, Debug, Default)]
pub struct Segments {
    list: Vec<SegmentView>,
    index: HashMap<SegmentId, usize>,
}

impl Segments {
    pub fn get(&self, id: &SegmentId) -> Option<&SegmentView> {
        self.index.get(id).map(|&i| &self.list[i])
    }

    /// Adds a segment, or replaces the one with the same id where it stands.
    fn upsert(&mut self, view: SegmentView) {
        match self.index.get(&view.segment.segment_id) {
            Some(&i) => self.list[i] = view,
            None => {
                self.index
                    .insert(view.segment.segment_id.clone(), self.list.len());
                self.list.push(view);
            }
        }
    }
}

impl Deref for Segments {
    type Target = [SegmentView];

    fn deref(&self) -> &[SegmentView] {
        &self.list
    }
}

impl PartialEq for Segments {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl Serialize for Segments {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Segments {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<SegmentView>::deserialize(d)?;
        let index = list
            .iter()
            .enumerate()
            .map(|(i, s)| (s.segment.segment_id.clone(), i))
            .collect();
        Ok(Segments { list, index })
    }
}

/// Facts fixed when the call started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    pub call_id: CallId,
    pub tenant: TenantId,
    pub source: CallSource,
    pub agent: AgentId,
    pub ruleset: RulesetRef,
    pub language: LanguageTag,
    pub started_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentView {
    /// The seq of the event that last wrote this segment.
    pub seq: Seq,
    #[serde(flatten)]
    pub segment: SegmentAdded,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub seq: Seq,
    #[serde(flatten)]
    pub alert: AlertRaised,
    pub acknowledged_by: Option<ActorId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChecklistStatus {
    Completed { seq: Seq, segment_id: SegmentId },
    Missed { seq: Seq, reason: MissReason },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistEntry {
    pub item: RuleRef,
    #[serde(flatten)]
    pub status: ChecklistStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardView {
    pub seq: Seq,
    #[serde(flatten)]
    pub card: GuidanceCardShown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestionView {
    pub seq: Seq,
    #[serde(flatten)]
    pub suggestion: ReplySuggested,
    pub feedback: Option<(Verdict, ActorId)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationFailureView {
    pub seq: Seq,
    #[serde(flatten)]
    pub failure: GenerationFailed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryView {
    pub seq: Seq,
    pub summary: Summary,
    pub disposition: Disposition,
    pub confidence: f32,
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DispositionView {
    pub disposition: Disposition,
    /// Who set it by hand; `None` when it is the summary's own.
    pub overridden_by: Option<ActorId>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndView {
    pub reason: EndReason,
    pub by: ActorId,
    pub at: Timestamp,
}

/// The state of one call at one position of its stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallState {
    /// The seq of the last event applied; `Seq::ZERO` before any.
    pub version: Seq,
    pub status: CallStatus,
    pub info: Option<CallInfo>,
    /// In the order they were first added; an interim segment is replaced in place by its
    /// final version.
    pub segments: Segments,
    pub alerts: Vec<AlertView>,
    /// Keyed by rule id: each required item is completed or missed once.
    pub checklist: BTreeMap<RuleId, ChecklistEntry>,
    pub cards: Vec<CardView>,
    pub suggestions: Vec<SuggestionView>,
    pub ended: Option<EndView>,
    pub summary: Option<SummaryView>,
    pub disposition: Option<DispositionView>,
    /// Generations that failed (and what was posted instead), oldest first.
    #[serde(default)]
    pub generation_failures: Vec<GenerationFailureView>,
}

impl CallState {
    /// Folds one event into the state. Events are facts already accepted by the log, so this
    /// never fails: an event that refers to something unknown (which validation prevents on
    /// the write path) changes nothing rather than inventing state.
    pub fn apply(&mut self, recorded: &RecordedEvent) {
        let seq = recorded.meta.seq;
        match &recorded.event {
            CallEvent::CallStarted(e) => {
                self.status = CallStatus::Live;
                self.info = Some(CallInfo {
                    call_id: recorded.meta.call_id,
                    tenant: e.tenant.clone(),
                    source: e.source,
                    agent: e.agent.clone(),
                    ruleset: e.ruleset.clone(),
                    language: e.language.clone(),
                    started_at: recorded.meta.recorded_at,
                });
            }
            CallEvent::SegmentAdded(e) => {
                self.segments.upsert(SegmentView {
                    seq,
                    segment: e.clone(),
                });
            }
            CallEvent::AlertRaised(e) => self.alerts.push(AlertView {
                seq,
                alert: e.clone(),
                acknowledged_by: None,
            }),
            CallEvent::ChecklistItemCompleted(e) => {
                self.checklist
                    .entry(e.item.rule_id.clone())
                    .or_insert_with(|| ChecklistEntry {
                        item: e.item.clone(),
                        status: ChecklistStatus::Completed {
                            seq,
                            segment_id: e.segment_id.clone(),
                        },
                    });
            }
            CallEvent::ChecklistItemMissed(e) => {
                self.checklist
                    .entry(e.item.rule_id.clone())
                    .or_insert_with(|| ChecklistEntry {
                        item: e.item.clone(),
                        status: ChecklistStatus::Missed {
                            seq,
                            reason: e.reason.clone(),
                        },
                    });
            }
            CallEvent::GuidanceCardShown(e) => self.cards.push(CardView {
                seq,
                card: e.clone(),
            }),
            CallEvent::ReplySuggested(e) => self.suggestions.push(SuggestionView {
                seq,
                suggestion: e.clone(),
                feedback: None,
            }),
            CallEvent::SuggestionFeedback(e) => {
                if let Some(s) = self
                    .suggestions
                    .iter_mut()
                    .find(|s| s.suggestion.suggestion_id == e.suggestion_id)
                {
                    s.feedback = Some((e.verdict, e.by.clone()));
                }
            }
            CallEvent::AlertAcknowledged(e) => {
                if let Some(a) = self
                    .alerts
                    .iter_mut()
                    .find(|a| a.alert.alert_id == e.alert_id)
                {
                    a.acknowledged_by.get_or_insert_with(|| e.by.clone());
                }
            }
            CallEvent::CallEnded(e) => {
                self.status = CallStatus::Ended;
                self.ended = Some(EndView {
                    reason: e.reason,
                    by: e.by.clone(),
                    at: recorded.meta.recorded_at,
                });
            }
            CallEvent::SummaryGenerated(e) => {
                self.summary = Some(SummaryView {
                    seq,
                    summary: e.summary.clone(),
                    disposition: e.disposition,
                    confidence: e.confidence,
                    provider: e.provider.clone(),
                    model: e.model.clone(),
                });
                // A human override outranks a (re)generated summary.
                if self
                    .disposition
                    .as_ref()
                    .is_none_or(|d| d.overridden_by.is_none())
                {
                    self.disposition = Some(DispositionView {
                        disposition: e.disposition,
                        overridden_by: None,
                        note: None,
                    });
                }
            }
            CallEvent::DispositionOverridden(e) => {
                self.disposition = Some(DispositionView {
                    disposition: e.to,
                    overridden_by: Some(e.by.clone()),
                    note: e.note.clone(),
                });
            }
            CallEvent::GenerationFailed(e) => {
                self.generation_failures.push(GenerationFailureView {
                    seq,
                    failure: e.clone(),
                });
            }
        }
        self.version = seq;
    }

    /// Folds a whole stream (or a prefix of it) from the empty state.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Self {
        let mut state = CallState::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    pub fn segment(&self, id: &SegmentId) -> Option<&SegmentView> {
        self.segments.get(id)
    }

    /// A copy of the latest part of the call: the segments from the `finals`-th last final
    /// one on (with any interim ones among them), the last `items` alerts and cards, the
    /// whole checklist and the call's facts; no suggestions, summary, disposition or failures.
    ///
    /// What a suggested reply is made from. The assist worker takes one per customer turn,
    /// and a full clone of a long call copies every segment and alert it ever had (a
    /// thousand strings for a ten-minute call), on the cores ingest runs on.
    pub fn recent(&self, finals: usize, items: usize) -> CallState {
        let mut start = self.segments.len();
        let mut counted = 0;
        while start > 0 && counted < finals {
            start -= 1;
            if self.segments[start].segment.is_final {
                counted += 1;
            }
        }
        let list = self.segments.list[start..].to_vec();
        let index = list
            .iter()
            .enumerate()
            .map(|(i, s)| (s.segment.segment_id.clone(), i))
            .collect();
        let tail = |len: usize| len.saturating_sub(items);
        CallState {
            version: self.version,
            status: self.status,
            info: self.info.clone(),
            segments: Segments { list, index },
            alerts: self.alerts[tail(self.alerts.len())..].to_vec(),
            checklist: self.checklist.clone(),
            cards: self.cards[tail(self.cards.len())..].to_vec(),
            suggestions: Vec::new(),
            ended: self.ended.clone(),
            summary: None,
            disposition: None,
            generation_failures: Vec::new(),
        }
    }

    pub fn unacknowledged_alerts(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.acknowledged_by.is_none())
            .count()
    }
}
