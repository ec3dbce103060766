//! The directory on PostgreSQL. Every write is one statement; a violated constraint is
//! named by Postgres and mapped by [`violation`].

use async_trait::async_trait;
use domain::event::RulesetRef;
use domain::{ActorId, Role, RulesetId, TenantId, TokenId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{
    Directory, NewToken, StoredRuleset, Subject, Tenant, TokenRecord, active_ref, corrupt, now,
    to_version, version_name, violation,
};
use crate::{PgEventStore, StoreError};

/// Maps a violation of one of the directory's named constraints; any other error is
/// passed on.
fn map_write_error(subject: Subject<'_>) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if let sqlx::Error::Database(db) = &e
            && let Some(err) = db.constraint().and_then(|c| violation(c, &subject))
        {
            return err;
        }
        StoreError::Database(e)
    }
}

fn tenant_row(row: &PgRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::parse(row.try_get::<String, _>("id")?).map_err(|e| corrupt("tenants", e))?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

const SELECT_TOKENS: &str =
    "SELECT id, tenant_id, role, name, created_at, revoked_at FROM api_tokens";

fn token_row(row: &PgRow) -> Result<TokenRecord, StoreError> {
    let bad = |e: domain::IdError| corrupt("api_tokens", e);
    Ok(TokenRecord {
        id: TokenId::from_uuid(row.try_get("id")?).map_err(bad)?,
        tenant: TenantId::parse(row.try_get::<String, _>("tenant_id")?).map_err(bad)?,
        role: Role::parse(row.try_get("role")?).map_err(bad)?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Each version with whether it is its tenant's active one.
const SELECT_RULESETS: &str = "SELECT r.tenant_id, r.id, r.version, r.source, r.created_at, \
         r.created_by, COALESCE(t.active_ruleset_id = r.id \
             AND t.active_ruleset_version = r.version, false) AS active \
     FROM rulesets r JOIN tenants t ON t.id = r.tenant_id";

fn ruleset_row(row: &PgRow) -> Result<StoredRuleset, StoreError> {
    let bad = |e: domain::IdError| corrupt("rulesets", e);
    Ok(StoredRuleset {
        tenant: TenantId::parse(row.try_get::<String, _>("tenant_id")?).map_err(bad)?,
        id: RulesetId::parse(row.try_get::<String, _>("id")?).map_err(bad)?,
        version: to_version("rulesets", row.try_get("version")?)?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
        created_by: ActorId::parse(row.try_get::<String, _>("created_by")?).map_err(bad)?,
        active: row.try_get("active")?,
    })
}

#[async_trait]
impl Directory for PgEventStore {
    async fn tenant_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
            .fetch_one(self.pool())
            .await?;
        Ok(n as u64)
    }

    async fn create_tenant(&self, id: &TenantId, name: &str) -> Result<Tenant, StoreError> {
        let created_at = now();
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(name)
            .bind(created_at)
            .execute(self.pool())
            .await
            .map_err(map_write_error(Subject::Tenant(id)))?;
        Ok(Tenant {
            id: id.clone(),
            name: name.to_owned(),
            created_at,
        })
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
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
        sqlx::query(
            "INSERT INTO api_tokens (id, tenant_id, role, name, secret_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id.as_uuid())
        .bind(token.tenant.as_str())
        .bind(token.role.as_str())
        .bind(&token.name)
        .bind(&token.secret_sha256[..])
        .bind(created_at)
        .execute(self.pool())
        .await
        .map_err(map_write_error(Subject::Token(&token)))?;
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
            "{SELECT_TOKENS} WHERE secret_sha256 = $1 AND revoked_at IS NULL"
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
            "{SELECT_TOKENS} WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant.as_str())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(token_row)
        .collect()
    }

    async fn revoke_token(&self, tenant: &TenantId, id: TokenId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(id.as_uuid())
        .bind(now())
        .execute(self.pool())
        .await?;
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
        sqlx::query(
            "INSERT INTO rulesets (tenant_id, id, version, source, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(i64::from(version))
        .bind(source)
        .bind(created_at)
        .bind(created_by.as_str())
        .execute(self.pool())
        .await
        .map_err(map_write_error(Subject::Ruleset(tenant, id, version)))?;
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
            "{SELECT_RULESETS} WHERE r.tenant_id = $1 AND r.id = $2 AND r.version = $3"
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
            "{SELECT_RULESETS} WHERE r.tenant_id = $1 AND r.id = $2 \
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
            "{SELECT_RULESETS} WHERE r.tenant_id = $1 ORDER BY r.id, r.version"
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
        let done = sqlx::query(
            "UPDATE tenants SET active_ruleset_id = $2, active_ruleset_version = $3 \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM rulesets \
                 WHERE tenant_id = $1 AND id = $2 AND version = $3)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(i64::from(version))
        .execute(self.pool())
        .await
        .map_err(map_write_error(Subject::Ruleset(tenant, id, version)))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "ruleset version",
                id: version_name(id, version),
            });
        }
        Ok(())
    }

    async fn active_ruleset(&self, tenant: &TenantId) -> Result<Option<RulesetRef>, StoreError> {
        let row: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT active_ruleset_id, active_ruleset_version FROM tenants WHERE id = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(self.pool())
        .await?;
        active_ref(row)
    }
}
