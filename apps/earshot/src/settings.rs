//! Where the store is. One typed place for it, shared by every subcommand.

use std::path::PathBuf;

use anyhow::Context;

/// The store to open: `DATABASE_URL` when set (Postgres or SQLite URL), otherwise an SQLite
/// file in the data directory, created on first use.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreSettings {
    /// Database URL: postgres://… for PostgreSQL, sqlite://PATH for an SQLite file.
    /// Unset: the embedded SQLite store in --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory of the embedded SQLite store (used when no database URL is given).
    #[arg(long, env = "EARSHOT_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Do not migrate on start; only check the schema is current. For a database role that
    /// may not change the schema (run `earshot migrate` as the owner first).
    #[arg(long, env = "EARSHOT_SKIP_MIGRATIONS")]
    pub skip_migrations: bool,
}

impl StoreSettings {
    /// The URL to open, creating the data directory for the embedded store if needed.
    pub fn url(&self) -> anyhow::Result<String> {
        match self.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Ok(url.to_owned()),
            _ => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| {
                    format!(
                        "cannot create the data directory {}",
                        self.data_dir.display()
                    )
                })?;
                Ok(format!(
                    "sqlite://{}",
                    self.data_dir.join("earshot.db").display()
                ))
            }
        }
    }

    pub async fn open(&self) -> anyhow::Result<std::sync::Arc<dyn store::EventStore>> {
        let url = self.url()?;
        let config = store::StoreConfig {
            run_migrations: !self.skip_migrations,
            ..store::StoreConfig::default()
        };
        store::open(&url, config)
            .await
            .with_context(|| format!("cannot open the store at {}", store::redact_url(&url)))
    }
}
