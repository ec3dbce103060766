//! `POST /api/v1/calls/{call_id}/segments`: transcript segments in, one or a batch. The same
//! body shapes arrive over the WebSocket (`segments` messages) for streaming sources.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::event::Speaker;
use domain::{CallId, Role, SegmentId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{RawBody, parse_json};
use super::schema;
use super::{TraceCtx, call_id, origin};
use crate::auth::Principal;
use crate::pipeline::{MAX_BATCH, RawSegment, SegmentOutcome};
use crate::server::AppState;

/// Who may feed transcripts.
pub const INGEST_ROLES: &[Role] = &[Role::Service, Role::Agent, Role::Admin];

/// One transcript segment, raw: it is redacted before anything stores or logs it.
#[derive(Deserialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    /// The source's id of the segment (1–128 characters). A final segment is accepted once;
    /// resending it (same id, speaker and times) is a no-op answering the original seq.
    #[schema(value_type = schema::Label, example = "seg-0007")]
    pub segment_id: String,
    /// `agent` or `customer`.
    #[schema(value_type = schema::Speaker, example = "agent")]
    pub speaker: String,
    /// What was said, before redaction: not blank, and at most the server's
    /// `--max-segment-chars` characters (413 above that).
    #[schema(value_type = schema::Text, example = "I guarantee the part will be here tomorrow.")]
    pub text: String,
    /// Milliseconds since the call started.
    pub start_ms: u64,
    /// Not before `start_ms`.
    pub end_ms: u64,
    /// False for an interim speech-to-text hypothesis, replaced later by the final segment
    /// with the same id. Default true.
    #[serde(default = "yes")]
    pub is_final: bool,
    /// Speech-to-text confidence, 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: Option<f32>,
}

fn yes() -> bool {
    true
}

/// A batch of segments, ingested all or nothing.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBatch {
    /// 1 to 500 segments, in time order, with distinct ids.
    #[schema(min_items = 1, max_items = 500)]
    pub segments: Vec<SegmentBody>,
}

/// The body of `POST …/segments` as the document describes it: one segment, or a batch.
/// [`parse_body`] reads it (choosing by the `segments` key, so that errors name the right
/// fields); this type only gives the document its `oneOf`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SegmentsIn {
    One(SegmentBody),
    Batch(SegmentBatch),
}

#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    pub results: Vec<SegmentResult>,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentResult {
    pub segment_id: String,
    /// The seq of the segment's event.
    pub seq: u64,
    /// True when the segment was already in the log (a retry): nothing was written.
    pub deduplicated: bool,
    /// Events the segment caused (alerts, checklist items, guidance cards).
    pub caused: Vec<CausedEvent>,
}

#[derive(Serialize, ToSchema)]
pub struct CausedEvent {
    pub seq: u64,
    #[schema(example = "alert_raised")]
    pub kind: &'static str,
}

impl SegmentResult {
    pub fn from_outcome(o: SegmentOutcome) -> Self {
        Self {
            segment_id: o.segment_id.as_str().to_owned(),
            seq: o.seq.get(),
            deduplicated: o.deduplicated,
            caused: o
                .caused
                .into_iter()
                .map(|w| CausedEvent {
                    seq: w.seq.get(),
                    kind: w.kind,
                })
                .collect(),
        }
    }
}

impl SegmentBody {
    /// Checks the fields that need no call state. Errors name the field (relative to the
    /// segment) and never echo the text.
    pub fn validate(self, max_chars: usize) -> Result<RawSegment, ApiError> {
        let segment_id = SegmentId::parse(&self.segment_id)
            .map_err(|e| ApiError::field("segment_id", e.reason))?;
        let speaker = match self.speaker.as_str() {
            "agent" => Speaker::Agent,
            "customer" => Speaker::Customer,
            _ => {
                return Err(ApiError::field(
                    "speaker",
                    "must be \"agent\" or \"customer\"",
                ));
            }
        };
        let chars = self.text.chars().count();
        if chars > max_chars {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("text: is {chars} characters; at most {max_chars} are accepted"),
            )
            .with_field("text"));
        }
        if self.text.trim().is_empty() {
            return Err(ApiError::field("text", "must not be empty"));
        }
        if self.end_ms < self.start_ms {
            return Err(ApiError::field(
                "end_ms",
                format!("{} is before start_ms {}", self.end_ms, self.start_ms),
            ));
        }
        if let Some(c) = self.confidence
            && !(0.0..=1.0).contains(&c)
        {
            return Err(ApiError::field("confidence", "must be between 0 and 1"));
        }
        Ok(RawSegment {
            segment_id,
            speaker,
            text: self.text,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            is_final: self.is_final,
            confidence: self.confidence,
        })
    }
}

/// Validates a whole batch, naming `segments[i].field` on the first bad one.
pub fn validate_batch(
    segments: Vec<SegmentBody>,
    max_chars: usize,
) -> Result<Vec<RawSegment>, ApiError> {
    if segments.is_empty() {
        return Err(ApiError::field(
            "segments",
            "must hold at least one segment",
        ));
    }
    if segments.len() > MAX_BATCH {
        return Err(ApiError::field(
            "segments",
            format!(
                "holds {} segments; at most {MAX_BATCH} per request",
                segments.len()
            ),
        ));
    }
    segments
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.validate(max_chars)
                .map_err(|e| e.under(&format!("segments[{i}]")))
        })
        .collect()
}

/// Parses either one segment or `{"segments": [...]}`.
pub fn parse_body(bytes: &[u8]) -> Result<Vec<SegmentBody>, ApiError> {
    let value: serde_json::Value = parse_json(bytes)?;
    if value.get("segments").is_some() {
        Ok(parse_json::<SegmentBatch>(bytes)?.segments)
    } else {
        Ok(vec![parse_json::<SegmentBody>(bytes)?])
    }
}

/// Ingest transcript segments.
///
/// The body is one segment, or `{"segments": [...]}` for a batch (at most 500), which is
/// written all or nothing. Each segment is redacted, run through the call's rules, and
/// appended with the events it caused in one transaction; subscribers get them over the
/// WebSocket.
#[utoipa::path(
    post,
    path = "/api/v1/calls/{call_id}/segments",
    tag = "ingest",
    params(("call_id" = schema::Id, Path, description = "The call's id")),
    request_body(content = SegmentsIn, description = "One `SegmentBody`, or a batch"),
    responses(
        (status = 200, description = "Ingested (or recognised as retries)", body = IngestResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Supervisor tokens do not ingest", body = ErrorBody),
        (status = 404, description = "No such call in your tenant", body = ErrorBody),
        (status = 409, description = "The call ended, or a final segment id was reused with other content", body = ErrorBody),
        (status = 413, description = "A segment's text is over the limit", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "`call_id` or a field is invalid; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_segments(
    State(state): State<AppState>,
    principal: Principal,
    trace: TraceCtx,
    Path(call): Path<String>,
    headers: axum::http::HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<IngestResponse>, ApiError> {
    principal.require(INGEST_ROLES, "ingest segments")?;
    super::extract::require_json(&headers)?;
    let call = call_id(&call)?;
    let segments = validate_batch(parse_body(&body)?, state.pipeline.max_segment_chars)?;
    let outcomes = state
        .pipeline
        .ingest(&origin(&principal, &trace), call, &segments)
        .await?;
    Ok(Json(IngestResponse {
        call_id: call,
        results: outcomes
            .into_iter()
            .map(SegmentResult::from_outcome)
            .collect(),
    }))
}
