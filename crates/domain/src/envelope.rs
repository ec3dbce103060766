//! Events with their metadata: what goes into an append ([`NewEvent`]) and what comes out of
//! a read ([`RecordedEvent`]).

use serde::{Deserialize, Serialize};

use crate::event::{CallEvent, Timestamp};
use crate::ids::{CallId, CorrelationId, EventId, GlobalPosition, Seq, TenantId, TraceId};

/// An event to append. The store assigns `seq`, `global_position` and `recorded_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// The idempotency key: appending an event whose id is already in the log is a no-op
    /// that answers with the original positions.
    pub event_id: EventId,
    pub event: CallEvent,
    pub trace_id: Option<TraceId>,
    /// The event that caused this one (e.g. the segment an alert was raised on).
    pub causation_id: Option<EventId>,
    pub correlation_id: Option<CorrelationId>,
}

impl NewEvent {
    /// A new event with a fresh id and no tracing context.
    pub fn new(event: CallEvent) -> Self {
        Self {
            event_id: EventId::new(),
            event,
            trace_id: None,
            causation_id: None,
            correlation_id: None,
        }
    }

    pub fn with_id(mut self, id: EventId) -> Self {
        self.event_id = id;
        self
    }

    pub fn with_trace(mut self, trace: Option<TraceId>) -> Self {
        self.trace_id = trace;
        self
    }

    pub fn caused_by(mut self, cause: EventId) -> Self {
        self.causation_id = Some(cause);
        self
    }

    pub fn correlated(mut self, correlation: CorrelationId) -> Self {
        self.correlation_id = Some(correlation);
        self
    }
}

/// Everything the log knows about an event besides its payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub event_id: EventId,
    pub tenant: TenantId,
    pub call_id: CallId,
    pub seq: Seq,
    pub global_position: GlobalPosition,
    pub recorded_at: Timestamp,
    pub trace_id: Option<TraceId>,
    pub causation_id: Option<EventId>,
    pub correlation_id: Option<CorrelationId>,
    /// The schema version the payload was written with (before any upcast on read).
    pub schema_version: u16,
}

/// An event read back from the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub meta: EventMetadata,
    pub event: CallEvent,
}
