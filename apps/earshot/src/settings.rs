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
        Ok(self.open_store().await?)
    }

    /// The store with its directory (tenants, tokens, rulesets), as the server needs it.
    pub async fn open_store(&self) -> anyhow::Result<std::sync::Arc<dyn store::Store>> {
        let url = self.url()?;
        let config = store::StoreConfig {
            run_migrations: !self.skip_migrations,
            ..store::StoreConfig::default()
        };
        store::open_store(&url, config)
            .await
            .with_context(|| format!("cannot open the store at {}", store::redact_url(&url)))
    }
}

/// The server's own limits and timings.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerSettings {
    /// The longest transcript segment accepted, in characters (at most 4000).
    #[arg(long, env = "EARSHOT_MAX_SEGMENT_CHARS", default_value_t = domain::command::MAX_SEGMENT_CHARS)]
    pub max_segment_chars: usize,

    /// Seconds between WebSocket pings (jittered by up to a fifth).
    #[arg(long, env = "EARSHOT_WS_PING_SECS", default_value_t = 25)]
    pub ws_ping_secs: u64,

    /// Seconds a WebSocket client has to answer a ping.
    #[arg(long, env = "EARSHOT_WS_PONG_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_pong_timeout_secs: u64,

    /// Bytes queued for one WebSocket client before it is closed as a slow consumer.
    #[arg(long, env = "EARSHOT_WS_MAX_QUEUED_BYTES", default_value_t = 1024 * 1024)]
    pub ws_max_queued_bytes: usize,
}

impl ServerSettings {
    pub fn config(&self) -> anyhow::Result<crate::server::ServerConfig> {
        let max = domain::command::MAX_SEGMENT_CHARS;
        if self.max_segment_chars == 0 || self.max_segment_chars > max {
            anyhow::bail!("--max-segment-chars must be between 1 and {max}");
        }
        if self.ws_ping_secs == 0 || self.ws_pong_timeout_secs == 0 {
            anyhow::bail!("WebSocket ping interval and pong timeout must be at least 1 second");
        }
        let mut config = crate::server::ServerConfig {
            max_segment_chars: self.max_segment_chars,
            ..Default::default()
        };
        config.ws.ping_interval = std::time::Duration::from_secs(self.ws_ping_secs);
        config.ws.pong_timeout = std::time::Duration::from_secs(self.ws_pong_timeout_secs);
        config.ws.max_queued_bytes = self.ws_max_queued_bytes.max(16 * 1024);
        Ok(config)
    }
}
