//! Compiled rulesets, by tenant and version. Compiling a ruleset builds its automata (a few
//! milliseconds for hundreds of rules), so each version is compiled once per process and
//! shared by every call that runs with it. Versions are immutable in the directory, so a
//! cached engine never goes stale; a call keeps the version it started with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::TenantId;
use domain::event::RulesetRef;
use rules::{Engine, Ruleset, RulesetError};
use store::{Directory, StoreError};

/// The rulesets shipped with the binary, seeded into every new tenant.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "home-services.yaml",
        include_str!("../../../rulesets/home-services.yaml"),
    ),
    (
        "banking.yaml",
        include_str!("../../../rulesets/banking.yaml"),
    ),
];

/// The built-in ruleset a new tenant starts with.
pub const DEFAULT_RULESET: &str = "home-services";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("ruleset {0} is not in the directory")]
    Missing(String),
    #[error("stored ruleset does not compile: {0}")]
    Invalid(#[from] RulesetError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Engines {
    directory: Arc<dyn Directory>,
    compiled: Mutex<HashMap<(TenantId, RulesetRef), Arc<Engine>>>,
    /// Parsed rulesets (their titles and guidance text), for the assist worker's prompts.
    parsed: Mutex<HashMap<(TenantId, RulesetRef), Arc<Ruleset>>>,
}

/// Parses and compiles a ruleset's YAML.
pub fn compile(file: &str, yaml: &str) -> Result<(Ruleset, Engine), RulesetError> {
    let ruleset = rules::parse_ruleset(file, yaml)?;
    let engine = Engine::compile(&ruleset)?;
    Ok((ruleset, engine))
}

impl Engines {
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self {
            directory,
            compiled: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// [`Engines::ruleset`] if it is in the cache already (no store read).
    pub fn cached_ruleset(
        &self,
        tenant: &TenantId,
        reference: &RulesetRef,
    ) -> Option<Arc<Ruleset>> {
        let key = (tenant.clone(), reference.clone());
        self.parsed
            .lock()
            .expect("ruleset cache")
            .get(&key)
            .cloned()
    }

    /// The parsed text of one ruleset version of a tenant (titles, card bodies).
    pub async fn ruleset(
        &self,
        tenant: &TenantId,
        reference: &RulesetRef,
    ) -> Result<Arc<Ruleset>, EngineError> {
        if let Some(r) = self.cached_ruleset(tenant, reference) {
            return Ok(r);
        }
        let key = (tenant.clone(), reference.clone());
        let (file, source) = self.source(tenant, reference).await?;
        let ruleset = Arc::new(rules::parse_ruleset(&file, &source)?);
        self.parsed
            .lock()
            .expect("ruleset cache")
            .entry(key)
            .or_insert_with(|| ruleset.clone());
        Ok(ruleset)
    }

    /// The engine of one ruleset version of a tenant.
    pub async fn get(
        &self,
        tenant: &TenantId,
        reference: &RulesetRef,
    ) -> Result<Arc<Engine>, EngineError> {
        let key = (tenant.clone(), reference.clone());
        if let Some(e) = self.compiled.lock().expect("engine cache").get(&key) {
            return Ok(e.clone());
        }
        let (file, source) = self.source(tenant, reference).await?;
        // Compiling is CPU work of a few milliseconds: keep it off the async workers.
        let engine = tokio::task::spawn_blocking(move || compile(&file, &source).map(|c| c.1))
            .await
            .expect("ruleset compilation panicked")?;
        let engine = Arc::new(engine);
        self.compiled
            .lock()
            .expect("engine cache")
            .entry(key)
            .or_insert_with(|| engine.clone());
        Ok(engine)
    }

    /// A ruleset version's YAML from the directory, with the name errors give it.
    async fn source(
        &self,
        tenant: &TenantId,
        reference: &RulesetRef,
    ) -> Result<(String, String), EngineError> {
        let file = format!("{}@{}", reference.id, reference.version);
        let stored = self
            .directory
            .ruleset(tenant, &reference.id, reference.version)
            .await?
            .ok_or_else(|| EngineError::Missing(file.clone()))?;
        Ok((file, stored.source))
    }

    /// Keeps an engine compiled elsewhere (after validating an upload) for later calls.
    pub fn insert(&self, tenant: &TenantId, engine: Engine) {
        let key = (tenant.clone(), engine.ruleset_ref().clone());
        self.compiled
            .lock()
            .expect("engine cache")
            .insert(key, Arc::new(engine));
    }
}
