//! First start, and new tenants: a tenant comes with the built-in rulesets (the default one
//! active) and an admin token, shown once.

use domain::{ActorId, Role, TenantId};
use secrecy::SecretString;
use store::{Store, StoreError};

use crate::engines::{BUILT_IN, DEFAULT_RULESET, compile};

/// Who the directory records as the author of seeded rulesets.
const SYSTEM: &str = "earshot";

/// On an empty store, creates the `default` tenant and returns its admin token. Several
/// nodes starting at once on one database: one creates it, the others see it exists.
pub async fn first_start(store: &dyn Store) -> Result<Option<SecretString>, StoreError> {
    if store.tenant_count().await? > 0 {
        return Ok(None);
    }
    match create_tenant(store, &TenantId::default_tenant(), "Default tenant").await {
        Ok(token) => Ok(Some(token)),
        Err(StoreError::AlreadyExists { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a tenant with the built-in rulesets and returns a new admin token for it.
pub async fn create_tenant(
    store: &dyn Store,
    id: &TenantId,
    name: &str,
) -> Result<SecretString, StoreError> {
    store.create_tenant(id, name).await?;
    let by = ActorId::parse(SYSTEM).expect("a valid actor id");
    for (file, yaml) in BUILT_IN {
        let (ruleset, _) = compile(file, yaml).expect("the built-in rulesets compile (tested)");
        let r = ruleset.reference();
        store
            .insert_ruleset(id, &r.id, r.version, yaml, &by)
            .await?;
        if r.id.as_str() == DEFAULT_RULESET {
            store.activate_ruleset(id, &r.id, r.version).await?;
        }
    }
    let (token, _) = crate::auth::issue(store, id, Role::Admin, "admin").await?;
    tracing::info!(tenant = %id, "tenant created with the built-in rulesets and an admin token");
    Ok(token)
}
