//! A `call_events` row as both backends read it, and its checked conversion to a
//! [`RecordedEvent`]. A row that does not decode is an error naming its event id, never a
//! panic.

use chrono::{DateTime, Utc};
use domain::{
    CallId, CallListing, CorrelationId, EventId, EventMetadata, GlobalPosition, RecordedEvent, Seq,
    TenantId, TraceId,
};
use uuid::Uuid;

use crate::StoreError;

pub(crate) struct RawEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub tenant_id: String,
    pub call_id: Uuid,
    pub seq: i64,
    pub event_type: String,
    pub schema_version: i64,
    /// The payload's JSON text.
    pub payload: String,
    pub trace_id: Option<String>,
    pub causation_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
}

impl RawEvent {
    pub fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("event {} has an invalid {what}", self.event_id))
        };
        let event_id = EventId::from_uuid(self.event_id).map_err(|_| corrupt("event id"))?;
        let schema_version =
            u16::try_from(self.schema_version).map_err(|_| corrupt("schema version"))?;
        let event = domain::decode_str(&self.event_type, schema_version, &self.payload)
            .map_err(|source| StoreError::Decode { event_id, source })?;
        Ok(RecordedEvent {
            meta: EventMetadata {
                event_id,
                tenant: TenantId::parse(self.tenant_id.as_str())
                    .map_err(|_| corrupt("tenant id"))?,
                call_id: CallId::from_uuid(self.call_id).map_err(|_| corrupt("call id"))?,
                seq: Seq::new(u64::try_from(self.seq).map_err(|_| corrupt("seq"))?),
                global_position: GlobalPosition::new(
                    u64::try_from(self.position).map_err(|_| corrupt("position"))?,
                ),
                recorded_at: self.recorded_at,
                trace_id: self
                    .trace_id
                    .map(TraceId::parse)
                    .transpose()
                    .map_err(|_| corrupt("trace id"))?,
                causation_id: self
                    .causation_id
                    .map(EventId::from_uuid)
                    .transpose()
                    .map_err(|_| corrupt("causation id"))?,
                correlation_id: self
                    .correlation_id
                    .map(CorrelationId::from_uuid)
                    .transpose()
                    .map_err(|_| corrupt("correlation id"))?,
                schema_version,
            },
            event,
        })
    }
}

/// Converts positions and seqs for binding: both backends store them as signed 64-bit.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Call-list rows are stored as the listing's JSON beside the columns that filter them.
pub(crate) fn listing_to_json(l: &CallListing) -> String {
    serde_json::to_string(l).expect("a call listing always serializes")
}

pub(crate) fn listing_from_json(v: serde_json::Value) -> Result<CallListing, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("call_index row: {e}")))
}
