//! The directory on SQLite. Every write is one statement in a `BEGIN IMMEDIATE`
//! transaction on the store's pool, behind the store's write gate, as `commit_call_listings`
//! writes: it takes the write lock up front, in turn with the log's committer, instead of
//! failing with `SQLITE_BUSY` when a read transaction cannot be upgraded.
//!
//! SQLite names a violated UNIQUE or PRIMARY KEY constraint by its columns and a violated
//! foreign key not at all, so [`constraint`] recovers the constraint's name: from the
//! columns, or, for a foreign key, from the one the statement can violate.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::event::RulesetRef;
use domain::{ActorId, Role, RulesetId, TenantId, TokenId};
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::{
    Directory, NewToken, StoredRuleset, Subject, Tenant, TokenRecord, active_ref, corrupt, now,
    to_version, version_name, violation,
};
use crate::{SqliteEventStore, StoreError};

/// The UNIQUE and PRIMARY KEY constraints of the directory tables, by the columns SQLite
/// names when one is violated ("UNIQUE constraint failed: tenants.id").
const UNIQUE: &[(&str, &str)] = &[
    ("tenants.id", "tenants_pkey"),
    ("api_tokens.id", "api_tokens_pkey"),
    ("api_tokens.secret_sha256", "api_tokens_secret_sha256_key"),
    (
        "rulesets.tenant_id, rulesets.id, rulesets.version",
        "rulesets_pkey",
    ),
];

/// The name of the constraint `e` violates, if it is one of the directory's; `fk` is the
/// one foreign key the failed statement could violate.
fn constraint(e: &sqlx::Error, fk: Option<&'static str>) -> Option<&'static str> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    match db.kind() {
        ErrorKind::UniqueViolation => {
            let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
            UNIQUE
                .iter()
                .find(|(c, _)| *c == columns)
                .map(|(_, name)| *name)
        }
        ErrorKind::ForeignKeyViolation => fk,
        _ => None,
    }
}

fn map_write_error(
    subject: Subject<'_>,
    fk: Option<&'static str>,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        constraint(&e, fk)
            .and_then(|c| violation(c, &subject))
            .unwrap_or(StoreError::Database(e))
    }
}

/// Opens a write transaction behind the store's write gate: see the module docs.
async fn begin(
    store: &SqliteEventStore,
) -> Result<
    (
        tokio::sync::OwnedMutexGuard<()>,
        Transaction<'static, Sqlite>,
    ),
    StoreError,
> {
    store.begin_write().await
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(table: &str, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(table, format!("time {micros} is out of range")))
}

fn tenant_row(row: &SqliteRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::parse(row.try_get::<String, _>("id")?).map_err(|e| corrupt("tenants", e))?,
        name: row.try_get("name")?,
        created_at: time("tenants", row.try_get("created_at")?)?,
    })
}

const SELECT_TOKENS: &str =
    "SELECT id, tenant_id, role, name, created_at, revoked_at FROM api_tokens";

fn token_row(row: &SqliteRow) -> Result<TokenRecord, StoreError> {
    let bad = |e: domain::IdError| corrupt("api_tokens", e);
    let id: String = row.try_get("id")?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| corrupt("api_tokens", format!("id {id:?} is not a UUID")))?;
    Ok(TokenRecord {
        id: TokenId::from_uuid(id).map_err(bad)?,
        tenant: TenantId::parse(row.try_get::<String, _>("tenant_id")?).map_err(bad)?,
        role: Role::parse(row.try_get("role")?).map_err(bad)?,
        name: row.try_get("name")?,
        created_at: time("api_tokens", row.try_get("created_at")?)?,
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(|t| time("api_tokens", t))
            .transpose()?,
    })
}

/// Each version with whether it is its tenant's active one.
const SELECT_RULESETS: &str = "SELECT r.tenant_id, r.id, r.version, r.source, r.created_at, \
         r.created_by, COALESCE(t.active_ruleset_id = r.id \
             AND t.active_ruleset_version = r.version, 0) AS active \
     FROM rulesets r JOIN tenants t ON t.id = r.tenant_id";

fn ruleset_row(row: &SqliteRow) -> Result<StoredRuleset, StoreError> {
    let bad = |e: domain::IdError| corrupt("rulesets", e);
    Ok(StoredRuleset {
        tenant: TenantId::parse(row.try_get::<String, _>("tenant_id")?).map_err(bad)?,
        id: RulesetId::parse(row.try_get::<String, _>("id")?).map_err(bad)?,
        version: to_version("rulesets", row.try_get("version")?)?,
        source: row.try_get("source")?,
        created_at: time("rulesets", row.try_get("created_at")?)?,
        created_by: ActorId::parse(row.try_get::<String, _>("created_by")?).map_err(bad)?,
        active: row.try_get::<i64, _>("active")? != 0,
    })
}

fn text(id: TokenId) -> String {
    id.as_uuid().hyphenated().to_string()
}

#[async_trait]
impl Directory for SqliteEventStore {
    async fn tenant_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
            .fetch_one(self.pool())
            .await?;
        Ok(n as u64)
    }

    async fn create_tenant(&self, id: &TenantId, name: &str) -> Result<Tenant, StoreError> {
        let created_at = now();
        let (_gate, mut tx) = begin(self).await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id.as_str())
            .bind(name)
            .bind(micros(created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_write_error(Subject::Tenant(id), None))?;
        tx.commit().await?;
        Ok(Tenant {
            id: id.clone(),
            name: name.to_owned(),
            created_at,
        })
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(tenant_row)
            .transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(tenant_row)
            .collect()
    }

    async fn create_token(&self, token: NewToken) -> Result<TokenRecord, StoreError> {
        let created_at = now();
        let (_gate, mut tx) = begin(self).await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, tenant_id, role, name, secret_sha256, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(text(token.id))
        .bind(token.tenant.as_str())
        .bind(token.role.as_str())
        .bind(&token.name)
        .bind(&token.secret_sha256[..])
        .bind(micros(created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_write_error(
            Subject::Token(&token),
            Some("api_tokens_tenant_fkey"),
        ))?;
        tx.commit().await?;
        Ok(TokenRecord {
            id: token.id,
            tenant: token.tenant,
            role: token.role,
            name: token.name,
            created_at,
            revoked_at: None,
        })
    }

    async fn find_token(
        &self,
        secret_sha256: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query(&format!(
            "{SELECT_TOKENS} WHERE secret_sha256 = ? AND revoked_at IS NULL"
        ))
        .bind(&secret_sha256[..])
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(token_row)
        .transpose()
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError> {
        sqlx::query(&format!(
            "{SELECT_TOKENS} WHERE tenant_id = ? ORDER BY created_at, id"
        ))
        .bind(tenant.as_str())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(token_row)
        .collect()
    }

    async fn revoke_token(&self, tenant: &TenantId, id: TokenId) -> Result<bool, StoreError> {
        let (_gate, mut tx) = begin(self).await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?3) \
             WHERE tenant_id = ?1 AND id = ?2",
        )
        .bind(tenant.as_str())
        .bind(text(id))
        .bind(micros(now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
        version: u32,
        source: &str,
        created_by: &ActorId,
    ) -> Result<StoredRuleset, StoreError> {
        let created_at = now();
        let (_gate, mut tx) = begin(self).await?;
        sqlx::query(
            "INSERT INTO rulesets (tenant_id, id, version, source, created_at, created_by) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(i64::from(version))
        .bind(source)
        .bind(micros(created_at))
        .bind(created_by.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_write_error(
            Subject::Ruleset(tenant, id, version),
            Some("rulesets_tenant_fkey"),
        ))?;
        tx.commit().await?;
        Ok(StoredRuleset {
            tenant: tenant.clone(),
            id: id.clone(),
            version,
            source: source.to_owned(),
            created_at,
            created_by: created_by.clone(),
            active: false,
        })
    }

    async fn ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
        version: u32,
    ) -> Result<Option<StoredRuleset>, StoreError> {
        sqlx::query(&format!(
            "{SELECT_RULESETS} WHERE r.tenant_id = ? AND r.id = ? AND r.version = ?"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(i64::from(version))
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(ruleset_row)
        .transpose()
    }

    async fn latest_ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
    ) -> Result<Option<StoredRuleset>, StoreError> {
        sqlx::query(&format!(
            "{SELECT_RULESETS} WHERE r.tenant_id = ? AND r.id = ? \
             ORDER BY r.version DESC LIMIT 1"
        ))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(ruleset_row)
        .transpose()
    }

    async fn list_rulesets(&self, tenant: &TenantId) -> Result<Vec<StoredRuleset>, StoreError> {
        sqlx::query(&format!(
            "{SELECT_RULESETS} WHERE r.tenant_id = ? ORDER BY r.id, r.version"
        ))
        .bind(tenant.as_str())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(ruleset_row)
        .collect()
    }

    async fn activate_ruleset(
        &self,
        tenant: &TenantId,
        id: &RulesetId,
        version: u32,
    ) -> Result<(), StoreError> {
        // The EXISTS makes an unknown version update nothing; the foreign key
        // tenants_active_ruleset_fkey would refuse it anyway.
        let (_gate, mut tx) = begin(self).await?;
        let done = sqlx::query(
            "UPDATE tenants SET active_ruleset_id = ?2, active_ruleset_version = ?3 \
             WHERE id = ?1 AND EXISTS (SELECT 1 FROM rulesets \
                 WHERE tenant_id = ?1 AND id = ?2 AND version = ?3)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(i64::from(version))
        .execute(&mut *tx)
        .await
        .map_err(map_write_error(
            Subject::Ruleset(tenant, id, version),
            Some("tenants_active_ruleset_fkey"),
        ))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "ruleset version",
                id: version_name(id, version),
            });
        }
        tx.commit().await?;
        Ok(())
    }

    async fn active_ruleset(&self, tenant: &TenantId) -> Result<Option<RulesetRef>, StoreError> {
        let row: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT active_ruleset_id, active_ruleset_version FROM tenants WHERE id = ?",
        )
        .bind(tenant.as_str())
        .fetch_optional(self.pool())
        .await?;
        active_ref(row)
    }
}
