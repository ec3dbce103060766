//! The directory beside the log: tenants, their API tokens and their rulesets.
//!
//! Ordinary mutable rows (a token is revoked, a ruleset version activated), written by
//! single statements outside the log's committer. What must hold is enforced by named
//! constraints in the database (migration `0003_directory`), and [`violation`] says what
//! each of them means as a [`StoreError`]:
//!
//! | constraint                      | error                                         |
//! |---------------------------------|-----------------------------------------------|
//! | `tenants_pkey`                  | `AlreadyExists { what: "tenant" }`            |
//! | `api_tokens_pkey`               | `AlreadyExists { what: "token" }`             |
//! | `api_tokens_secret_sha256_key`  | `AlreadyExists { what: "token secret" }`      |
//! | `api_tokens_tenant_fkey`        | `NotFound { what: "tenant" }`                 |
//! | `rulesets_pkey`                 | `AlreadyExists { what: "ruleset version" }`   |
//! | `rulesets_tenant_fkey`          | `NotFound { what: "tenant" }`                 |
//! | `tenants_active_ruleset_fkey`   | `NotFound { what: "ruleset version" }`        |

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use domain::event::RulesetRef;
use domain::{ActorId, Role, RulesetId, TenantId, TokenId};
use serde::Serialize;

use crate::StoreError;

/// A customer of the platform: the owner of calls, tokens and rulesets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A token to store. The secret itself never reaches the store, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub id: TokenId,
    pub tenant: TenantId,
    pub role: Role,
    /// Who or what holds it, e.g. `alice` or `replay-cli`.
    pub name: String,
    pub secret_sha256: [u8; 32],
}

/// A stored token, without its secret hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: TokenId,
    pub tenant: TenantId,
    pub role: Role,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One version of one of a tenant's rulesets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredRuleset {
    pub tenant: TenantId,
    pub id: RulesetId,
    pub version: u32,
    /// The YAML as uploaded.
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub created_by: ActorId,
    /// Whether this is the tenant's active ruleset (the one new calls run with).
    pub active: bool,
}

/// Tenants, API tokens and rulesets. Every operation but the tenant ones is scoped to one
/// tenant: nothing of another tenant is seen or changed.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// How many tenants exist (the server bootstraps a default tenant when 0).
    async fn tenant_count(&self) -> Result<u64, StoreError>;

    /// Fails with [`StoreError::AlreadyExists`] `{ what: "tenant", id }` if the id is taken.
    async fn create_tenant(&self, id: &TenantId, name: &str) -> Result<Tenant, StoreError>;

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// All tenants, by id.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Fails with [`StoreError::NotFound`] `{ what: "tenant", id }` if the tenant does not
    /// exist, and with [`StoreError::AlreadyExists`] if the token id (`"token"`) or its
    /// secret hash (`"token secret"`) is already stored.
    async fn create_token(&self, token: NewToken) -> Result<TokenRecord, StoreError>;

    /// The unrevoked token with this secret hash, if any.
    async fn find_token(&self, secret_sha256: &[u8; 32])
    -> Result<Option<TokenRecord>, StoreError>;

    /// The tenant's tokens, revoked ones included, oldest first.
    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError>;

    /// Marks it revoked (idempotent: revoking a revoked token is `Ok(true)` and keeps the
    /// first revocation time). `Ok(false)` if no such token in that tenant.
    async fn revoke_token(&self, tenant: &TenantId, id: TokenId) -> Result<bool, StoreError>;

    /// Stores a new version. Fails with [`StoreError::AlreadyExists`]
    /// `{ what: "ruleset version", id: "home-services@3" }` if `(tenant, id, version)`
    /// exists, and [`StoreError::NotFound`] for an unknown tenant. Does not activate it.
    async fn insert_ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
        version: u32,
        source: &str,
        created_by: &ActorId,
    ) -> Result<StoredRuleset, StoreError>;

    async fn ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
        version: u32,
    ) -> Result<Option<StoredRuleset>, StoreError>;

    /// The latest version of one ruleset (highest version), if any.
    async fn latest_ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
    ) -> Result<Option<StoredRuleset>, StoreError>;

    /// All versions of all the tenant's rulesets, ordered by id then version; `source`
    /// included.
    async fn list_rulesets(&self, tenant: &TenantId) -> Result<Vec<StoredRuleset>, StoreError>;

    /// Makes `(id, version)` the tenant's one active ruleset (new calls run with it).
    /// [`StoreError::NotFound`] `{ what: "ruleset version" }` if the tenant has no such
    /// version.
    async fn activate_ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
        version: u32,
    ) -> Result<(), StoreError>;

    /// The tenant's active ruleset, if one was activated.
    async fn active_ruleset(&self, tenant: &TenantId) -> Result<Option<RulesetRef>, StoreError>;
}

/// The row a write was about, to name it in an error.
pub(crate) enum Subject<'a> {
    Tenant(&'a TenantId),
    Token(&'a NewToken),
    Ruleset(&'a TenantId, &'a RulesetId, u32),
}

/// What a violation of the named constraint means for `subject`, or `None` if it is not one
/// the directory expects while writing it (the caller then reports the database error).
pub(crate) fn violation(constraint: &str, subject: &Subject<'_>) -> Option<StoreError> {
    let exists = |what, id: String| Some(StoreError::AlreadyExists { what, id });
    let missing = |what, id: String| Some(StoreError::NotFound { what, id });
    match (constraint, subject) {
        ("tenants_pkey", Subject::Tenant(id)) => exists("tenant", id.to_string()),
        ("api_tokens_pkey", Subject::Token(t)) => exists("token", t.id.to_string()),
        ("api_tokens_secret_sha256_key", Subject::Token(t)) => {
            exists("token secret", format!("of token {}", t.id))
        }
        ("api_tokens_tenant_fkey", Subject::Token(t)) => missing("tenant", t.tenant.to_string()),
        ("rulesets_pkey", Subject::Ruleset(_, id, v)) => {
            exists("ruleset version", version_name(id, *v))
        }
        ("rulesets_tenant_fkey", Subject::Ruleset(tenant, ..)) => {
            missing("tenant", tenant.to_string())
        }
        ("tenants_active_ruleset_fkey", Subject::Ruleset(_, id, v)) => {
            missing("ruleset version", version_name(id, *v))
        }
        _ => None,
    }
}

/// `home-services@3`.
pub(crate) fn version_name(id: &RulesetId, version: u32) -> String {
    format!("{id}@{version}")
}

/// The time a directory row is written, at the microsecond precision both backends keep,
/// so the value returned equals the value read back.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn corrupt(table: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table} row: {e}"))
}

pub(crate) fn to_version(table: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(table, format!("ruleset version {v} is out of range")))
}

/// The active ruleset from a tenant's `(active_ruleset_id, active_ruleset_version)`.
pub(crate) fn active_ref(
    row: Option<(Option<String>, Option<i64>)>,
) -> Result<Option<RulesetRef>, StoreError> {
    match row {
        Some((Some(id), Some(version))) => Ok(Some(RulesetRef {
            id: RulesetId::parse(id).map_err(|e| corrupt("tenants", e))?,
            version: to_version("tenants", version)?,
        })),
        _ => Ok(None),
    }
}
