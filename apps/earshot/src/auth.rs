//! Bearer tokens: who is calling, for which tenant, in which role.
//!
//! A token is `esk_` + 40 hex digits (160 random bits). Only its SHA-256 is stored, so a
//! copy of the database does not hold usable tokens; the plain token is shown once, when it
//! is made. Lookups are cached for a few seconds so that a busy ingest source does not cost a
//! database round trip per request; a revoked token stops working within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::{ActorId, Role, TenantId, TokenId};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use store::{Directory, NewToken, StoreError, TokenRecord};

use crate::api::error::ApiError;
use crate::server::AppState;

const PREFIX: &str = "esk_";
const CACHE_TTL: Duration = Duration::from_secs(5);

/// The caller of a request, once its token is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
    /// The token's holder, recorded as `by` on what they do.
    pub actor: ActorId,
    pub token_id: TokenId,
}

impl Principal {
    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], to: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "a {} token may not {to} (allowed: {})",
                self.role,
                allowed.join(", ")
            )))
        }
    }
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token.
pub fn generate() -> SecretString {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    let mut s = String::with_capacity(PREFIX.len() + 40);
    s.push_str(PREFIX);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    SecretString::from(s)
}

/// Creates a token for `tenant` and returns the plain token (shown once) and its record.
pub async fn issue(
    directory: &dyn Directory,
    tenant: &TenantId,
    role: Role,
    name: &str,
) -> Result<(SecretString, TokenRecord), StoreError> {
    let secret = generate();
    let record = directory
        .create_token(NewToken {
            id: TokenId::new(),
            tenant: tenant.clone(),
            role,
            name: name.to_owned(),
            secret_sha256: hash(secret.expose_secret()),
        })
        .await?;
    Ok((secret, record))
}

/// A lookup's result (a principal, or "no such token") and when it was made.
type Cached = (Instant, Option<Principal>);

/// Checks tokens against the directory, with a short cache.
pub struct Authenticator {
    directory: Arc<dyn Directory>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl Authenticator {
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self {
            directory,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        if !token.starts_with(PREFIX) || token.len() != PREFIX.len() + 40 {
            return Err(ApiError::unauthorized(
                "the bearer token is malformed (expected esk_ and 40 hex digits)",
            ));
        }
        let key = hash(token);
        let now = Instant::now();
        if let Some((at, found)) = self.cache.lock().expect("auth cache").get(&key)
            && now.duration_since(*at) < CACHE_TTL
        {
            return found.clone().ok_or_else(unknown_token);
        }
        let record = self.directory.find_token(&key).await?;
        let principal = record.and_then(|r| {
            Some(Principal {
                actor: ActorId::parse(&r.name).ok()?,
                tenant: r.tenant,
                role: r.role,
                token_id: r.id,
            })
        });
        let mut cache = self.cache.lock().expect("auth cache");
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
        }
        cache.insert(key, (now, principal.clone()));
        principal.ok_or_else(unknown_token)
    }

    /// Forgets cached lookups (after a revocation on this node).
    pub fn forget_all(&self) {
        self.cache.lock().expect("auth cache").clear();
    }
}

fn unknown_token() -> ApiError {
    ApiError::unauthorized("the bearer token is unknown or revoked")
}

/// The token of a request: `Authorization: Bearer …`, or `?access_token=…` for browsers'
/// WebSockets, which cannot set headers.
pub fn token_of(parts: &Parts) -> Option<String> {
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = h.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "access_token")
            .map(|(_, v)| v.to_owned())
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = token_of(parts) else {
            return Err(ApiError::unauthorized(
                "send a bearer token: Authorization: Bearer esk_…",
            ));
        };
        state.auth.authenticate(&token).await
    }
}
