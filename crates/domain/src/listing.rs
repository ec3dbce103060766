//! `CallListing`: one row of the call list (what a supervisor's wallboard and the calls page
//! show), folded from a call's events like `CallState` but small enough to keep for every
//! call in a table.

use serde::{Deserialize, Serialize};

use crate::envelope::RecordedEvent;
use crate::event::{CallEvent, CallSource, Disposition, RulesetRef, Timestamp};
use crate::ids::{AgentId, CallId, LanguageTag, Seq, TenantId};
use crate::state::CallStatus;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallListing {
    pub call_id: CallId,
    pub tenant: TenantId,
    pub status: CallStatus,
    pub agent: AgentId,
    pub source: CallSource,
    pub language: LanguageTag,
    pub ruleset: RulesetRef,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// The seq of the last event folded in.
    pub last_seq: Seq,
    pub segments: u32,
    pub alerts: u32,
    pub unacknowledged_alerts: u32,
    pub disposition: Option<Disposition>,
    /// True once a person set the disposition: a later summary no longer changes it.
    pub disposition_overridden: bool,
}

impl CallListing {
    /// Folds one event into the listing of its call. `listing` is `None` until the call's
    /// `CallStarted`; events of a call without one are ignored (the write path never
    /// produces them).
    pub fn fold(listing: &mut Option<CallListing>, recorded: &RecordedEvent) {
        let meta = &recorded.meta;
        if let CallEvent::CallStarted(e) = &recorded.event {
            *listing = Some(CallListing {
                call_id: meta.call_id,
                tenant: e.tenant.clone(),
                status: CallStatus::Live,
                agent: e.agent.clone(),
                source: e.source,
                language: e.language.clone(),
                ruleset: e.ruleset.clone(),
                started_at: meta.recorded_at,
                ended_at: None,
                last_seq: meta.seq,
                segments: 0,
                alerts: 0,
                unacknowledged_alerts: 0,
                disposition: None,
                disposition_overridden: false,
            });
            return;
        }
        let Some(l) = listing.as_mut() else { return };
        // Replays of an already-folded position change nothing: folding is idempotent.
        if meta.seq <= l.last_seq {
            return;
        }
        l.last_seq = meta.seq;
        match &recorded.event {
            CallEvent::SegmentAdded(e) if e.is_final => l.segments += 1,
            CallEvent::AlertRaised(_) => {
                l.alerts += 1;
                l.unacknowledged_alerts += 1;
            }
            CallEvent::AlertAcknowledged(_) => {
                l.unacknowledged_alerts = l.unacknowledged_alerts.saturating_sub(1);
            }
            CallEvent::CallEnded(_) => {
                l.status = CallStatus::Ended;
                l.ended_at = Some(meta.recorded_at);
            }
            CallEvent::SummaryGenerated(e) if !l.disposition_overridden => {
                l.disposition = Some(e.disposition);
            }
            CallEvent::DispositionOverridden(e) => {
                l.disposition = Some(e.to);
                l.disposition_overridden = true;
            }
            _ => {}
        }
    }
}
