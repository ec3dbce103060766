//! The HTTP API under `/api/v1`, its OpenAPI 3.1 document (`/openapi.json`, generated from
//! the handlers' annotations) and its docs UI (`/docs`).
//!
//! Each module exposes its handlers; [`router`] mounts them. Every handler takes a
//! [`Principal`] (the bearer token checked) and a [`TraceCtx`] (the request's trace id, also
//! written into the metadata of the events the request causes).

pub mod calls;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod live;
pub mod rulesets;
pub mod schema;
pub mod tokens;
pub mod ws;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use domain::{CallId, TraceId};
use rand::RngCore;
use tracing::Instrument;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use self::error::ApiError;
use crate::auth::Principal;
use crate::pipeline::Origin;
use crate::server::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "earshot",
        description = "Real-time agent assist for call centers: calls, transcript ingest, \
                       alerts and guidance, rulesets. The live feed is the WebSocket at \
                       /api/v1/ws (docs/protocol.md).",
    ),
    paths(
        calls::start_call,
        calls::list_calls,
        calls::get_call,
        calls::end_call,
        calls::call_events,
        calls::get_summary,
        calls::put_disposition,
        calls::ack_alert,
        calls::suggestion_feedback,
        ingest::post_segments,
        rulesets::list_rulesets,
        rulesets::get_ruleset,
        rulesets::get_ruleset_version,
        rulesets::create_ruleset,
        rulesets::activate_ruleset,
        tokens::create_token,
        tokens::list_tokens,
        tokens::revoke_token,
    ),
    // Schemas that parameters name: utoipa collects only the ones bodies name by itself.
    components(schemas(schema::CallStatus, schema::Id, schema::Label, schema::Slug)),
    modifiers(&BearerAuth, &Unauthorized),
    tags(
        (name = "calls", description = "Start, follow, end and review calls"),
        (name = "ingest", description = "Transcript segments in"),
        (name = "feedback", description = "Alert acknowledgements and suggestion feedback"),
        (name = "rulesets", description = "Versioned rulesets and the active one"),
        (name = "tokens", description = "API tokens of the tenant"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("esk_…")
                    .build(),
            ),
        );
    }
}

/// Every operation that takes a bearer token answers 401 without a good one: the
/// [`Principal`] extractor refuses the request before the handler runs, so the answer is
/// documented here, once, for all of them (each handler documents its own answers).
struct Unauthorized;

impl Modify for Unauthorized {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let response = ResponseBuilder::new()
            .description("No bearer token, or one that is malformed, unknown or revoked")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    op.responses
                        .responses
                        .entry("401".to_owned())
                        .or_insert_with(|| response.clone().into());
                }
            }
        }
    }
}

/// The API's routes (under `/api/v1`) and the WebSocket.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/calls",
            post(calls::start_call).get(calls::list_calls),
        )
        .route("/api/v1/calls/{call_id}", get(calls::get_call))
        .route("/api/v1/calls/{call_id}/end", post(calls::end_call))
        .route("/api/v1/calls/{call_id}/events", get(calls::call_events))
        .route("/api/v1/calls/{call_id}/summary", get(calls::get_summary))
        .route(
            "/api/v1/calls/{call_id}/disposition",
            put(calls::put_disposition),
        )
        .route(
            "/api/v1/calls/{call_id}/segments",
            post(ingest::post_segments),
        )
        .route(
            "/api/v1/calls/{call_id}/alerts/{alert_id}/ack",
            post(calls::ack_alert),
        )
        .route(
            "/api/v1/calls/{call_id}/suggestions/{suggestion_id}/feedback",
            post(calls::suggestion_feedback),
        )
        .route(
            "/api/v1/rulesets",
            get(rulesets::list_rulesets).post(rulesets::create_ruleset),
        )
        .route("/api/v1/rulesets/{ruleset_id}", get(rulesets::get_ruleset))
        .route(
            "/api/v1/rulesets/{ruleset_id}/versions/{version}",
            get(rulesets::get_ruleset_version),
        )
        .route(
            "/api/v1/rulesets/{ruleset_id}/versions/{version}/activate",
            post(rulesets::activate_ruleset),
        )
        .route(
            "/api/v1/tokens",
            post(tokens::create_token).get(tokens::list_tokens),
        )
        .route(
            "/api/v1/tokens/{token_id}",
            axum::routing::delete(tokens::revoke_token),
        )
        .route("/api/v1/ws", get(ws::upgrade))
}

/// The request's trace id: the caller's `x-request-id` (if it is a valid trace id) or a
/// fresh one. Answered in `x-trace-id`, logged on every line of the request, and written
/// into the events the request causes.
#[derive(Clone, Debug)]
pub struct TraceCtx(pub TraceId);

impl<S: Send + Sync> FromRequestParts<S> for TraceCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<TraceCtx>()
            .cloned()
            .unwrap_or_else(|| TraceCtx(new_trace_id())))
    }
}

pub fn new_trace_id() -> TraceId {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    TraceId::parse(&hex).expect("32 hex digits are a trace id")
}

/// Middleware: gives each request a trace id and a span (method, route, trace id; never the
/// query string, which may carry a token) and counts it.
pub async fn trace_requests(mut req: Request, next: Next) -> Response {
    let trace = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceId::parse(v).ok())
        .unwrap_or_else(new_trace_id);
    req.extensions_mut().insert(TraceCtx(trace.clone()));
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span =
        tracing::info_span!("request", trace_id = %trace, method = %req.method(), route = %route);
    let started = std::time::Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request"
            );
        }
    });
    metrics::counter!("earshot_http_requests_total", "status" => status.to_string()).increment(1);
    if let Ok(v) = HeaderValue::from_str(trace.as_str()) {
        response.headers_mut().insert("x-trace-id", v);
    }
    response
}

/// Parses a UUID id, refusing it without echoing the input (it could be anything a client
/// pasted, PII included).
pub fn uuid_param<T: std::str::FromStr>(field: &str, s: &str) -> Result<T, ApiError> {
    s.parse::<T>()
        .map_err(|_| ApiError::field(field, "must be a UUID (not the nil UUID)"))
}

pub fn call_id(s: &str) -> Result<CallId, ApiError> {
    uuid_param("call_id", s)
}

pub fn origin(principal: &Principal, trace: &TraceCtx) -> Origin {
    Origin {
        tenant: principal.tenant.clone(),
        actor: principal.actor.clone(),
        trace: Some(trace.0.clone()),
    }
}
