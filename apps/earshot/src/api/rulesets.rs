//! Rulesets: versioned YAML documents per tenant. Uploading validates and compiles the
//! document (errors name the line and the rule); activating a version makes new calls run
//! with it. A call records the version it started with, so activation never changes a call
//! in flight.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use domain::event::RulesetRef;
use domain::{Role, RulesetId};
use serde::{Deserialize, Serialize};
use store::StoredRuleset;
use utoipa::ToSchema;

use super::calls::RulesetRefBody;
use super::error::{ApiError, ErrorBody, Location};
use super::extract::{RawBody, parse_json};
use super::schema;
use crate::auth::Principal;
use crate::engines::compile;
use crate::server::AppState;

/// The largest ruleset document accepted.
const MAX_RULESET_BYTES: usize = 1024 * 1024;

#[derive(Serialize, ToSchema)]
pub struct RulesetVersion {
    #[schema(value_type = schema::Slug)]
    pub id: String,
    #[schema(minimum = 1)]
    pub version: u32,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The YAML as uploaded (left out of lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl RulesetVersion {
    fn from_stored(r: StoredRuleset, with_source: bool) -> Self {
        Self {
            id: r.id.as_str().to_owned(),
            version: r.version,
            active: r.active,
            created_at: r.created_at,
            created_by: r.created_by.as_str().to_owned(),
            source: with_source.then_some(r.source),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RulesetList {
    /// The version new calls run with.
    pub active: Option<RulesetRefBody>,
    /// Every version of every ruleset, by id then version.
    pub versions: Vec<RulesetVersion>,
}

/// List the tenant's rulesets and which version is active.
#[utoipa::path(
    get, path = "/api/v1/rulesets", tag = "rulesets",
    responses((status = 200, body = RulesetList)),
    security(("bearer" = []))
)]
pub async fn list_rulesets(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<RulesetList>, ApiError> {
    let all = state.store.list_rulesets(&principal.tenant).await?;
    let active = state
        .store
        .active_ruleset(&principal.tenant)
        .await?
        .map(|r| RulesetRefBody::from(&r));
    Ok(Json(RulesetList {
        active,
        versions: all
            .into_iter()
            .map(|r| RulesetVersion::from_stored(r, false))
            .collect(),
    }))
}

fn ruleset_id(s: &str) -> Result<RulesetId, ApiError> {
    RulesetId::parse(s).map_err(|e| ApiError::field("ruleset_id", e.reason))
}

/// Get the latest version of a ruleset, with its YAML.
#[utoipa::path(
    get, path = "/api/v1/rulesets/{ruleset_id}", tag = "rulesets",
    params(("ruleset_id" = schema::Slug, Path, description = "The ruleset's id, e.g. `home-services`")),
    responses(
        (status = 200, body = RulesetVersion),
        (status = 404, description = "No such ruleset in your tenant", body = ErrorBody),
        (status = 422, description = "`ruleset_id` is not a ruleset id", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_ruleset(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<RulesetVersion>, ApiError> {
    let id = ruleset_id(&id)?;
    let r = state
        .store
        .latest_ruleset(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("ruleset"))?;
    Ok(Json(RulesetVersion::from_stored(r, true)))
}

/// Get one version of a ruleset, with its YAML.
#[utoipa::path(
    get, path = "/api/v1/rulesets/{ruleset_id}/versions/{version}", tag = "rulesets",
    params(
        ("ruleset_id" = schema::Slug, Path, description = "The ruleset's id, e.g. `home-services`"),
        ("version" = u32, Path, minimum = 1, description = "The version, from 1"),
    ),
    responses(
        (status = 200, body = RulesetVersion),
        (status = 404, description = "No such ruleset version in your tenant", body = ErrorBody),
        (status = 422, description = "`ruleset_id` or `version` is invalid", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_ruleset_version(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<RulesetVersion>, ApiError> {
    let id = ruleset_id(&id)?;
    let version = version_param(&version)?;
    let r = state
        .store
        .ruleset(&principal.tenant, &id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("ruleset version"))?;
    Ok(Json(RulesetVersion::from_stored(r, true)))
}

fn version_param(s: &str) -> Result<u32, ApiError> {
    match s.parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(ApiError::field("version", "must be a whole number from 1")),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesetUpload {
    /// The ruleset's YAML (its `id` and `version` are read from it).
    pub source: String,
}

/// Upload a new ruleset version.
///
/// The body is the YAML itself (`Content-Type: application/yaml`), or JSON
/// `{"source": "<yaml>"}`. The document's `version` must be above every stored version of
/// its `id`. The new version is not active until activated.
#[utoipa::path(
    post, path = "/api/v1/rulesets", tag = "rulesets",
    request_body(
        description = "YAML (any content type but JSON), or JSON with `source`",
        content(
            (RulesetUpload = "application/json"),
            (String = "application/yaml"),
        ),
    ),
    responses(
        (status = 201, body = RulesetVersion),
        (status = 400, description = "Malformed JSON, or a body that is not UTF-8", body = ErrorBody),
        (status = 403, description = "Only admins edit rulesets", body = ErrorBody),
        (status = 409, description = "The version is not above the latest", body = ErrorBody),
        (status = 413, description = "The document is over 1 MiB, or the body over the server's limit", body = ErrorBody),
        (status = 422, description = "The ruleset is invalid: `line` and `rule` say where", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_ruleset(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<RulesetVersion>), ApiError> {
    principal.require(&[Role::Admin], "edit rulesets")?;
    if body.len() > MAX_RULESET_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a ruleset may be at most {MAX_RULESET_BYTES} bytes"),
        ));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let source = if content_type == "application/json" {
        parse_json::<RulesetUpload>(&body)?.source
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_request("the ruleset is not UTF-8 text"))?
    };
    let (ruleset, engine) = compile("ruleset.yaml", &source).map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_ruleset",
            e.to_string(),
        );
        err.location = Some(Box::new(Location {
            line: e.line,
            column: e.column,
            rule: e.rule_id.clone(),
        }));
        err
    })?;
    let RulesetRef { id, version } = ruleset.reference().clone();
    if let Some(latest) = state.store.latest_ruleset(&principal.tenant, &id).await?
        && latest.version >= version
    {
        return Err(ApiError::conflict(format!(
            "version: ruleset {id} is already at version {}; upload version {} or above",
            latest.version,
            latest.version + 1
        ))
        .with_field("version"));
    }
    let stored = state
        .store
        .insert_ruleset(&principal.tenant, &id, version, &source, &principal.actor)
        .await?;
    state.engines.insert(&principal.tenant, engine);
    tracing::info!(ruleset = %id, version, by = %principal.actor, "ruleset version uploaded");
    Ok((
        StatusCode::CREATED,
        Json(RulesetVersion::from_stored(stored, false)),
    ))
}

/// Make a ruleset version the one new calls run with.
#[utoipa::path(
    post, path = "/api/v1/rulesets/{ruleset_id}/versions/{version}/activate", tag = "rulesets",
    params(
        ("ruleset_id" = schema::Slug, Path, description = "The ruleset's id, e.g. `home-services`"),
        ("version" = u32, Path, minimum = 1, description = "The version, from 1"),
    ),
    responses(
        (status = 200, body = RulesetList),
        (status = 403, description = "Only admins activate rulesets", body = ErrorBody),
        (status = 404, description = "No such ruleset version in your tenant", body = ErrorBody),
        (status = 422, description = "`ruleset_id` or `version` is invalid", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn activate_ruleset(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<RulesetList>, ApiError> {
    principal.require(&[Role::Admin], "activate rulesets")?;
    let id = ruleset_id(&id)?;
    let version = version_param(&version)?;
    state
        .store
        .activate_ruleset(&principal.tenant, &id, version)
        .await?;
    tracing::info!(ruleset = %id, version, by = %principal.actor, "ruleset activated");
    list_rulesets(State(state), principal).await
}
