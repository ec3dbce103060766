//! API tokens of a tenant: made, listed and revoked by its admins. The token itself is shown
//! once, in the answer that makes it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::{ActorId, Role, TokenId};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use store::TokenRecord;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::schema;
use crate::auth::{Principal, issue};
use crate::server::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// `admin`, `supervisor`, `agent` or `service`.
    #[schema(value_type = schema::Role)]
    pub role: String,
    /// Who or what holds it (recorded as `by` on what they do), e.g. `alice` or `replay-cli`.
    #[schema(value_type = schema::Label)]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenInfo {
    #[schema(value_type = String, format = Uuid)]
    pub id: TokenId,
    pub tenant: String,
    pub role: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRecord> for TokenInfo {
    fn from(r: TokenRecord) -> Self {
        Self {
            id: r.id,
            tenant: r.tenant.as_str().to_owned(),
            role: r.role.as_str().to_owned(),
            name: r.name,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NewTokenResponse {
    /// The bearer token. It is not stored and cannot be shown again.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// Make a token for the tenant.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = NewTokenBody,
    responses(
        (status = 201, body = NewTokenResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Only admins make tokens", body = ErrorBody),
        (status = 413, description = "The body is over the server's limit", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<(StatusCode, Json<NewTokenResponse>), ApiError> {
    principal.require(&[Role::Admin], "make tokens")?;
    let role = Role::parse(&body.role).map_err(|e| ApiError::field("role", e.reason))?;
    let name = ActorId::parse(&body.name).map_err(|e| ApiError::field("name", e.reason))?;
    let (secret, record) =
        issue(state.store.as_ref(), &principal.tenant, role, name.as_str()).await?;
    tracing::info!(token = %record.id, role = %role, by = %principal.actor, "token made");
    Ok((
        StatusCode::CREATED,
        Json(NewTokenResponse {
            token: secret.expose_secret().to_owned(),
            info: record.into(),
        }),
    ))
}

/// List the tenant's tokens (never the secrets).
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, body = Vec<TokenInfo>),
        (status = 403, description = "Only admins list tokens", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    principal.require(&[Role::Admin], "list tokens")?;
    let tokens = state.store.list_tokens(&principal.tenant).await?;
    Ok(Json(tokens.into_iter().map(TokenInfo::from).collect()))
}

/// Revoke a token. It stops working within seconds on every node.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{token_id}", tag = "tokens",
    params(("token_id" = schema::Id, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Only admins revoke tokens", body = ErrorBody),
        (status = 404, description = "No such token in your tenant", body = ErrorBody),
        (status = 422, description = "`token_id` is not a UUID", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(&[Role::Admin], "revoke tokens")?;
    let id: TokenId = super::uuid_param("token_id", &id)?;
    if !state.store.revoke_token(&principal.tenant, id).await? {
        return Err(ApiError::not_found("token"));
    }
    state.auth.forget_all();
    tracing::info!(token = %id, by = %principal.actor, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
