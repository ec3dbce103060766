//! Calls: start, list, state (now or at any seq), end, the raw log, summary and disposition,
//! and the feedback a person gives on what the panel showed (each one an event: auditors ask
//! for every prompt and dismissal to be on record).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use domain::command::MAX_NOTE_CHARS;
use domain::event::{CallSource, Disposition, EndReason, RulesetRef, Verdict};
use domain::{
    AgentId, AlertId, CallId, CallListing, CallState, CallStatus, Command, LanguageTag, Role,
    RulesetId, Seq, SuggestionId,
};
use serde::{Deserialize, Serialize};
use store::CallQuery;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, RawBody, param};
use super::ingest::INGEST_ROLES;
use super::schema;
use super::{TraceCtx, call_id, origin};
use crate::auth::Principal;
use crate::hub::event_message;
use crate::pipeline::{CommandOutcome, StartCall};
use crate::server::AppState;

const FEEDBACK_ROLES: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];
const DISPOSITION_ROLES: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartCallBody {
    /// Your own id for the call (a UUID, not the nil one), so that a retried start is
    /// recognised. Omit it to get a fresh one.
    #[schema(value_type = Option<schema::Id>)]
    pub call_id: Option<String>,
    /// The CSR on the call. Defaults to the token's holder for an agent token.
    #[schema(value_type = Option<schema::Label>)]
    pub agent_id: Option<String>,
    /// BCP 47 language tag; default `en-US`.
    #[schema(value_type = Option<schema::Language>)]
    pub language: Option<String>,
    /// `manual`, `replay` or `telephony`; default `manual`.
    #[schema(value_type = Option<schema::CallSource>)]
    pub source: Option<String>,
    /// A ruleset version of the tenant; default the tenant's active ruleset.
    pub ruleset: Option<RulesetRefBody>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RulesetRefBody {
    #[schema(value_type = schema::Slug)]
    pub id: String,
    #[schema(minimum = 1)]
    pub version: u32,
}

impl From<&RulesetRef> for RulesetRefBody {
    fn from(r: &RulesetRef) -> Self {
        Self {
            id: r.id.as_str().to_owned(),
            version: r.version,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct StartCallResponse {
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// The call's version after the start (1 for a new call).
    pub seq: u64,
    /// False when the call already existed (a retried start).
    pub created: bool,
    pub ruleset: RulesetRefBody,
}

/// Start a call.
#[utoipa::path(
    post, path = "/api/v1/calls", tag = "calls",
    request_body = StartCallBody,
    responses(
        (status = 201, description = "Started", body = StartCallResponse),
        (status = 200, description = "Already started with this id (a retry)", body = StartCallResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Supervisor tokens do not start calls", body = ErrorBody),
        (status = 409, description = "call_id is taken", body = ErrorBody),
        (status = 413, description = "The body is over the server's limit", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid, or names a ruleset version the tenant does not have; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn start_call(
    State(state): State<AppState>,
    principal: Principal,
    trace: TraceCtx,
    ApiJson(body): ApiJson<StartCallBody>,
) -> Result<(StatusCode, Json<StartCallResponse>), ApiError> {
    principal.require(INGEST_ROLES, "start calls")?;
    let call_id = match &body.call_id {
        Some(s) => call_id(s)?,
        None => CallId::new(),
    };
    let agent = match (&body.agent_id, principal.role) {
        (Some(a), _) => AgentId::parse(a).map_err(|e| ApiError::field("agent_id", e.reason))?,
        (None, Role::Agent) => AgentId::parse(principal.actor.as_str())
            .map_err(|e| ApiError::field("agent_id", e.reason))?,
        (None, _) => return Err(ApiError::field("agent_id", "is required")),
    };
    let language = LanguageTag::parse(body.language.as_deref().unwrap_or("en-US"))
        .map_err(|e| ApiError::field("language", e.reason))?;
    let source = match body.source.as_deref().unwrap_or("manual") {
        "manual" => CallSource::Manual,
        "replay" => CallSource::Replay,
        "telephony" => CallSource::Telephony,
        _ => {
            return Err(ApiError::field(
                "source",
                "must be \"manual\", \"replay\" or \"telephony\"",
            ));
        }
    };
    let ruleset = match &body.ruleset {
        Some(r) => RulesetRef {
            id: RulesetId::parse(&r.id).map_err(|e| ApiError::field("ruleset.id", e.reason))?,
            version: r.version,
        },
        None => state
            .store
            .active_ruleset(&principal.tenant)
            .await?
            .ok_or_else(|| {
                ApiError::field(
                    "ruleset",
                    "the tenant has no active ruleset: name one, or activate one first",
                )
            })?,
    };
    let outcome = state
        .pipeline
        .start(
            &origin(&principal, &trace),
            StartCall {
                call_id,
                source,
                agent,
                ruleset,
                language,
            },
        )
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(StartCallResponse {
            call_id,
            seq: outcome.version.get(),
            created: outcome.created,
            ruleset: (&outcome.ruleset).into(),
        }),
    ))
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `live` or `ended`.
    #[param(value_type = Option<schema::CallStatus>)]
    pub status: Option<String>,
    /// Only this agent's calls.
    #[param(value_type = Option<schema::Label>)]
    pub agent: Option<String>,
    /// Only calls started at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,16}_(?!00000000-0000-0000-0000-000000000000$)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallList {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    pub calls: Vec<CallListing>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// List the tenant's calls, newest first.
///
/// Served from the call index, a projection of the log that trails it by up to about 100 ms.
#[utoipa::path(
    get, path = "/api/v1/calls", tag = "calls",
    params(ListQuery),
    responses(
        (status = 200, body = CallList),
        (status = 422, description = "A parameter is invalid or unknown; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_calls(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<CallList>, ApiError> {
    let mut query = CallQuery::tenant(principal.tenant.clone());
    query.status = param("status", q.status.as_deref(), |s| match s {
        "live" => Ok(CallStatus::Live),
        "ended" => Ok(CallStatus::Ended),
        _ => Err("must be \"live\" or \"ended\""),
    })?;
    query.agent = param("agent", q.agent.as_deref(), |s| {
        AgentId::parse(s).map_err(|e| e.reason)
    })?;
    query.since = param("since", q.since.as_deref(), |s| {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc))
    })?;
    query.limit = param("limit", q.limit.as_deref(), |s| match s.parse::<usize>() {
        Ok(n) if (1..=200).contains(&n) => Ok(n),
        _ => Err("must be a whole number from 1 to 200"),
    })?
    .unwrap_or(50);
    query.before = param("cursor", q.cursor.as_deref(), parse_cursor)?;
    let calls = state.store.list_calls(&query).await?;
    let next_cursor = (calls.len() == query.limit)
        .then(|| calls.last().map(|c| cursor(c.started_at, c.call_id)))
        .flatten();
    Ok(Json(CallList { calls, next_cursor }))
}

fn cursor(at: DateTime<Utc>, call: CallId) -> String {
    format!("{}_{}", at.timestamp_micros(), call)
}

fn parse_cursor(s: &str) -> Result<(DateTime<Utc>, CallId), &'static str> {
    let bad = "is not a cursor from a previous page";
    let (micros, id) = s.split_once('_').ok_or(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad)?;
    let at = Utc.timestamp_micros(micros).single().ok_or(bad)?;
    Ok((at, id.parse().map_err(|_| bad)?))
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// Rebuild the state as it was right after this seq (0: before the first event); at most
    /// the call's latest seq.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9223372036854775807_i64)]
    pub as_of: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallStateResponse {
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// The seq the state is at.
    pub seq: u64,
    /// The call's latest seq.
    pub top_seq: u64,
    #[schema(value_type = Object)]
    pub state: CallState,
}

/// Get a call's state, rebuilt from its log (now, or at `as_of`).
#[utoipa::path(
    get, path = "/api/v1/calls/{call_id}", tag = "calls",
    params(("call_id" = schema::Id, Path, description = "The call's id"), StateQuery),
    responses(
        (status = 200, body = CallStateResponse),
        (status = 404, description = "No such call in your tenant", body = ErrorBody),
        (status = 422, description = "`call_id` is not a UUID, `as_of` is past the call's latest seq, or a parameter is unknown", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_call(
    State(state): State<AppState>,
    principal: Principal,
    Path(call): Path<String>,
    ApiQuery(q): ApiQuery<StateQuery>,
) -> Result<Json<CallStateResponse>, ApiError> {
    let call = call_id(&call)?;
    let as_of = seq_param("as_of", q.as_of.as_deref())?;
    let events = store::load_stream(state.store.as_ref(), call, None).await?;
    check_tenant(&events, &principal)?;
    let top_seq = events.last().map(|e| e.meta.seq).unwrap_or(Seq::ZERO);
    let upto = as_of.unwrap_or(top_seq);
    if upto > top_seq {
        return Err(ApiError::field(
            "as_of",
            format!("is past the call's latest seq ({top_seq})"),
        ));
    }
    let call_state = CallState::replay(events.iter().take_while(|e| e.meta.seq <= upto));
    Ok(Json(CallStateResponse {
        call_id: call,
        seq: call_state.version.get(),
        top_seq: top_seq.get(),
        state: call_state,
    }))
}

/// A seq in a query string: 0 to `i64::MAX`, as the document says (`int64`) and as the stores
/// hold seqs.
fn seq_param(name: &str, value: Option<&str>) -> Result<Option<Seq>, ApiError> {
    param(name, value, |s| match s.parse::<Seq>() {
        Ok(seq) if i64::try_from(seq.get()).is_ok() => Ok(seq),
        _ => Err("must be a whole number from 0 to 9223372036854775807"),
    })
}

/// 404 unless the first event is a start in the caller's tenant.
fn check_tenant(events: &[domain::RecordedEvent], principal: &Principal) -> Result<(), ApiError> {
    match events.first() {
        Some(e) if e.meta.tenant == principal.tenant => Ok(()),
        _ => Err(ApiError::not_found("call")),
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndCallBody {
    /// `completed` (default), `transferred`, `dropped` or `abandoned`.
    #[schema(value_type = Option<schema::EndReason>)]
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CommandResponse {
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// The call's version after the command.
    pub seq: u64,
    /// The events written (none when the command was already satisfied).
    pub written: Vec<super::ingest::CausedEvent>,
}

fn command_response(call_id: CallId, o: CommandOutcome) -> Json<CommandResponse> {
    Json(CommandResponse {
        call_id,
        seq: o.version.get(),
        written: o
            .written
            .into_iter()
            .map(|w| super::ingest::CausedEvent {
                seq: w.seq.get(),
                kind: w.kind,
            })
            .collect(),
    })
}

/// End a call. Required checklist items not covered are recorded as missed.
#[utoipa::path(
    post, path = "/api/v1/calls/{call_id}/end", tag = "calls",
    params(("call_id" = schema::Id, Path, description = "The call's id")),
    request_body(content = Option<EndCallBody>, description = "Optional: no body, or `null`, ends the call as `completed`"),
    responses(
        (status = 200, body = CommandResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Supervisor tokens do not end calls", body = ErrorBody),
        (status = 404, description = "No such call in your tenant", body = ErrorBody),
        (status = 409, description = "Already ended", body = ErrorBody),
        (status = 413, description = "The body is over the server's limit", body = ErrorBody),
        (status = 422, description = "`call_id` or a field is invalid; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn end_call(
    State(state): State<AppState>,
    principal: Principal,
    trace: TraceCtx,
    Path(call): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<CommandResponse>, ApiError> {
    principal.require(INGEST_ROLES, "end calls")?;
    let call = call_id(&call)?;
    // The body is optional: none, or JSON `null`, ends the call as `completed`.
    let body: EndCallBody = if body.iter().all(u8::is_ascii_whitespace) {
        EndCallBody::default()
    } else {
        super::extract::parse_json::<Option<EndCallBody>>(&body)?.unwrap_or_default()
    };
    let reason = match body.reason.as_deref().unwrap_or("completed") {
        "completed" => EndReason::Completed,
        "transferred" => EndReason::Transferred,
        "dropped" => EndReason::Dropped,
        "abandoned" => EndReason::Abandoned,
        _ => {
            return Err(ApiError::field(
                "reason",
                "must be completed, transferred, dropped or abandoned",
            ));
        }
    };
    let outcome = state
        .pipeline
        .execute(
            &origin(&principal, &trace),
            call,
            Command::EndCall {
                reason,
                by: principal.actor.clone(),
            },
        )
        .await?;
    Ok(command_response(call, outcome))
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events with a seq above this (default 0: from the start).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    /// In seq order, each in the WebSocket `event` message shape.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Pass as `after` for the next page; absent when this page reached the end.
    pub next_after: Option<u64>,
}

/// A page of a call's raw event log.
#[utoipa::path(
    get, path = "/api/v1/calls/{call_id}/events", tag = "calls",
    params(("call_id" = schema::Id, Path, description = "The call's id"), EventsQuery),
    responses(
        (status = 200, body = EventPage),
        (status = 404, description = "No such call in your tenant", body = ErrorBody),
        (status = 422, description = "`call_id` or a parameter is invalid or unknown; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn call_events(
    State(state): State<AppState>,
    principal: Principal,
    Path(call): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let call = call_id(&call)?;
    let after = seq_param("after", q.after.as_deref())?.unwrap_or(Seq::ZERO);
    let limit = param("limit", q.limit.as_deref(), |s| match s.parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err("must be a whole number from 1 to 1000"),
    })?
    .unwrap_or(100);
    if state.pipeline.call_tenant(call).await?.as_ref() != Some(&principal.tenant) {
        return Err(ApiError::not_found("call"));
    }
    let page = state.store.read_stream(call, after, limit).await?;
    let next_after = (page.len() == limit)
        .then(|| page.last().map(|e| e.meta.seq.get()))
        .flatten();
    let events = page
        .iter()
        .map(|e| {
            serde_json::from_str(event_message(e).text.as_str()).expect("event messages are JSON")
        })
        .collect();
    Ok(Json(EventPage { events, next_after }))
}

#[derive(Serialize, ToSchema)]
pub struct SummaryResponse {
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// The LLM's structured summary (null until it is generated).
    #[schema(value_type = Option<Object>, required = true)]
    pub summary: Option<domain::state::SummaryView>,
    /// The disposition in force: the summary's, or a person's override (null before either).
    #[schema(value_type = Option<Object>, required = true)]
    pub disposition: Option<domain::state::DispositionView>,
}

/// Get a call's summary and disposition.
#[utoipa::path(
    get, path = "/api/v1/calls/{call_id}/summary", tag = "calls",
    params(("call_id" = schema::Id, Path, description = "The call's id")),
    responses(
        (status = 200, body = SummaryResponse),
        (status = 404, description = "No such call, or no summary or disposition yet", body = ErrorBody),
        (status = 422, description = "`call_id` is not a UUID", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_summary(
    State(state): State<AppState>,
    principal: Principal,
    Path(call): Path<String>,
) -> Result<Json<SummaryResponse>, ApiError> {
    let call = call_id(&call)?;
    let events = store::load_stream(state.store.as_ref(), call, None).await?;
    check_tenant(&events, &principal)?;
    let s = CallState::replay(&events);
    if s.summary.is_none() && s.disposition.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_ready",
            "the call has no summary or disposition yet",
        ));
    }
    Ok(Json(SummaryResponse {
        call_id: call,
        summary: s.summary,
        disposition: s.disposition,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    /// `booked`, `lead`, `spam`, `resolved`, `escalated` or `other`.
    #[schema(value_type = schema::Disposition)]
    pub disposition: String,
    /// Why (at most 2000 characters, counted before PII in it is masked).
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// Override an ended call's disposition (recorded with who did it).
#[utoipa::path(
    put, path = "/api/v1/calls/{call_id}/disposition", tag = "calls",
    params(("call_id" = schema::Id, Path, description = "The call's id")),
    request_body = DispositionBody,
    responses(
        (status = 200, body = CommandResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Service tokens do not set dispositions", body = ErrorBody),
        (status = 404, description = "No such call in your tenant", body = ErrorBody),
        (status = 409, description = "The call has not ended", body = ErrorBody),
        (status = 413, description = "The body is over the server's limit", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "`call_id` or a field is invalid; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_disposition(
    State(state): State<AppState>,
    principal: Principal,
    trace: TraceCtx,
    Path(call): Path<String>,
    ApiJson(body): ApiJson<DispositionBody>,
) -> Result<Json<CommandResponse>, ApiError> {
    principal.require(DISPOSITION_ROLES, "set dispositions")?;
    let call = call_id(&call)?;
    let to: Disposition = serde_json::from_value(serde_json::Value::String(body.disposition))
        .map_err(|_| {
            ApiError::field(
                "disposition",
                "must be booked, lead, spam, resolved, escalated or other",
            )
        })?;
    // The limit is on what the client sent. Redaction changes the length: it shortens a note
    // that holds long numbers ("[NUMBER]" for 2000 digits: without this check such a note got
    // through) and lengthens one with short ones ("pin 4321" → "pin [NUMBER]"), so the
    // domain only bounds the stored note, at MAX_STORED_NOTE_CHARS.
    if let Some(n) = &body.note
        && n.chars().count() > MAX_NOTE_CHARS
    {
        return Err(ApiError::field(
            "note",
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    let outcome = state
        .pipeline
        .execute(
            &origin(&principal, &trace),
            call,
            Command::OverrideDisposition {
                to,
                by: principal.actor.clone(),
                // Notes go into the append-only log: PII in them is redacted like a segment's.
                note: body.note.map(|n| state.pipeline.redact_text(&n)),
            },
        )
        .await?;
    Ok(command_response(call, outcome))
}

/// Acknowledge an alert (idempotent).
#[utoipa::path(
    post, path = "/api/v1/calls/{call_id}/alerts/{alert_id}/ack", tag = "feedback",
    params(("call_id" = schema::Id, Path, description = "The call's id"), ("alert_id" = schema::Id, Path, description = "The alert's id")),
    responses(
        (status = 200, body = CommandResponse),
        (status = 403, description = "Service tokens do not acknowledge alerts", body = ErrorBody),
        (status = 404, description = "No such call in your tenant, or no such alert on it", body = ErrorBody),
        (status = 409, description = "The call has ended", body = ErrorBody),
        (status = 422, description = "`call_id` or `alert_id` is not a UUID", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ack_alert(
    State(state): State<AppState>,
    principal: Principal,
    trace: TraceCtx,
    Path((call, alert)): Path<(String, String)>,
) -> Result<Json<CommandResponse>, ApiError> {
    principal.require(FEEDBACK_ROLES, "acknowledge alerts")?;
    let call = call_id(&call)?;
    let alert_id: AlertId = super::uuid_param("alert_id", &alert)?;
    let outcome = state
        .pipeline
        .execute(
            &origin(&principal, &trace),
            call,
            Command::AcknowledgeAlert {
                alert_id,
                by: principal.actor.clone(),
            },
        )
        .await?;
    Ok(command_response(call, outcome))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// `accepted` or `dismissed`.
    #[schema(value_type = schema::Verdict)]
    pub verdict: String,
}

/// Accept or dismiss a suggested reply.
#[utoipa::path(
    post, path = "/api/v1/calls/{call_id}/suggestions/{suggestion_id}/feedback", tag = "feedback",
    params(("call_id" = schema::Id, Path, description = "The call's id"), ("suggestion_id" = schema::Id, Path, description = "The suggestion's id")),
    request_body = FeedbackBody,
    responses(
        (status = 200, body = CommandResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Service tokens do not give feedback", body = ErrorBody),
        (status = 404, description = "No such call in your tenant, or no such suggestion on it", body = ErrorBody),
        (status = 409, description = "Feedback already given", body = ErrorBody),
        (status = 413, description = "The body is over the server's limit", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "`call_id`, `suggestion_id` or a field is invalid; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn suggestion_feedback(
    State(state): State<AppState>,
    principal: Principal,
    trace: TraceCtx,
    Path((call, suggestion)): Path<(String, String)>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<Json<CommandResponse>, ApiError> {
    principal.require(FEEDBACK_ROLES, "give feedback")?;
    let call = call_id(&call)?;
    let suggestion_id: SuggestionId = super::uuid_param("suggestion_id", &suggestion)?;
    let verdict = match body.verdict.as_str() {
        "accepted" => Verdict::Accepted,
        "dismissed" => Verdict::Dismissed,
        _ => return Err(ApiError::field("verdict", "must be accepted or dismissed")),
    };
    let outcome = state
        .pipeline
        .execute(
            &origin(&principal, &trace),
            call,
            Command::GiveSuggestionFeedback {
                suggestion_id,
                verdict,
                by: principal.actor.clone(),
            },
        )
        .await?;
    Ok(command_response(call, outcome))
}
