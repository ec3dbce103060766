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

/// The scheduling policy of the generations' thread (`--assist-sched`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssistSched {
    /// SCHED_IDLE (the default): it runs when ingest, the rules and the fan-out leave a core.
    Idle,
    /// SCHED_OTHER, Linux's default policy: only the nice value lowers it.
    Normal,
}

/// The assist worker and its language-model provider. With no `--llm-base-url` the worker
/// uses the offline provider only (no key, no network).
#[derive(clap::Args, Clone, Debug)]
pub struct AssistSettings {
    /// OpenAI-compatible API base URL, up to `/chat/completions`: e.g. …/v1 for OpenAI,
    /// OpenRouter, vLLM or Ollama (http://localhost:11434/v1), or an Azure OpenAI deployment
    /// URL (with --llm-azure-api-version). Unset: the offline provider only.
    #[arg(long, env = "EARSHOT_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,

    /// The model (for Azure, any label: the deployment in the URL picks the model).
    #[arg(long, env = "EARSHOT_LLM_MODEL")]
    pub llm_model: Option<String>,

    /// The API key. Prefer the environment variable: a flag shows in `ps`.
    #[arg(long, env = "EARSHOT_LLM_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub llm_api_key: Option<secrecy::SecretString>,

    /// The provider's name as recorded in events (openai, openrouter, azure, ollama, vllm…).
    #[arg(long, env = "EARSHOT_LLM_PROVIDER", default_value = "openai")]
    pub llm_provider: String,

    /// An extra request header, NAME=VALUE (repeatable; comma-separated in the environment),
    /// e.g. OpenRouter's HTTP-Referer.
    #[arg(long = "llm-header", env = "EARSHOT_LLM_HEADERS", value_delimiter = ',', hide_env_values = true, value_parser = parse_header)]
    pub llm_headers: Vec<(String, String)>,

    /// Azure OpenAI: the api-version query parameter (turns on Azure mode: `api-key` header).
    #[arg(long, env = "EARSHOT_LLM_AZURE_API_VERSION")]
    pub llm_azure_api_version: Option<String>,

    /// Seconds one provider request may take, end to end.
    #[arg(long, env = "EARSHOT_LLM_TIMEOUT_SECS", default_value_t = 30)]
    pub llm_timeout_secs: u64,

    /// Seconds to wait for the provider's first byte.
    #[arg(
        long,
        env = "EARSHOT_LLM_FIRST_BYTE_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub llm_first_byte_timeout_secs: u64,

    /// Speak HTTP/2 without TLS (h2c, prior knowledge) to an `http://` base URL, for a
    /// gateway or server that speaks it: a reply given up for a newer segment then resets
    /// one stream instead of closing the connection. (`https://` negotiates HTTP/2 anyway.)
    #[arg(long, env = "EARSHOT_LLM_HTTP2_PRIOR_KNOWLEDGE")]
    pub llm_http2_prior_knowledge: bool,

    /// A PEM file of certificates to trust beside the system's, for an `https://` provider
    /// whose certificate an internal CA signed, or that signed its own.
    #[arg(long, env = "EARSHOT_LLM_CA_CERT", value_name = "PEM_FILE")]
    pub llm_ca_cert: Option<std::path::PathBuf>,

    /// Milliseconds a customer segment waits for the next one before a reply is suggested.
    #[arg(long, env = "EARSHOT_ASSIST_DEBOUNCE_MS", default_value_t = 300)]
    pub assist_debounce_ms: u64,

    /// Generations (provider requests) running at once; the rest wait.
    #[arg(long, env = "EARSHOT_ASSIST_MAX_CONCURRENT", default_value_t = 256)]
    pub assist_max_concurrent: usize,

    /// The nice value (0–19) of the thread the generations run on: higher gives ingest and
    /// the rules the CPU first when the cores are busy; 0 keeps the process's priority.
    #[arg(long, env = "EARSHOT_ASSIST_NICE", default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub assist_nice: i32,

    /// The scheduling policy of that thread (Linux): `idle` (SCHED_IDLE, the default) is
    /// preempted as soon as ingest, the rules or the fan-out wake on its core, and on cores
    /// that stay busy its replies wait; `normal` has only the nice value.
    #[arg(long, env = "EARSHOT_ASSIST_SCHED", value_enum, default_value_t = AssistSched::Idle)]
    pub assist_sched: AssistSched,

    /// Milliseconds between `suggestion_draft` messages of one reply: pieces streamed sooner
    /// go out together with the next one (0: every piece on its own). The first piece is
    /// never held.
    #[arg(long, env = "EARSHOT_ASSIST_DRAFT_INTERVAL_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub assist_draft_interval_ms: u64,

    /// This worker's share of the calls, I/N (e.g. 2/3 with three workers). Each share
    /// keeps its own checkpoint.
    #[arg(long, env = "EARSHOT_ASSIST_SHARD", default_value = "1/1", value_parser = crate::worker::Shard::parse)]
    pub assist_shard: crate::worker::Shard,
}

fn parse_secret(s: &str) -> Result<secrecy::SecretString, String> {
    if s.trim().is_empty() {
        return Err("is empty".to_owned());
    }
    Ok(secrecy::SecretString::from(s.trim().to_owned()))
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| "is not NAME=VALUE".to_owned())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("has an empty header name".to_owned());
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

impl AssistSettings {
    /// The remote provider's configuration; `None` for offline only.
    pub fn provider(&self) -> anyhow::Result<Option<llm::OpenAiConfig>> {
        let Some(base) = self
            .llm_base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            if self.llm_model.is_some() || self.llm_api_key.is_some() || self.llm_ca_cert.is_some()
            {
                anyhow::bail!("--llm-model, --llm-api-key and --llm-ca-cert need --llm-base-url");
            }
            return Ok(None);
        };
        let model = match self.llm_model.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => anyhow::bail!("--llm-model is required with --llm-base-url"),
        };
        if self.llm_timeout_secs == 0 || self.llm_first_byte_timeout_secs == 0 {
            anyhow::bail!("LLM timeouts must be at least 1 second");
        }
        let mut config = llm::OpenAiConfig::new(base, model);
        config.provider_name = self.llm_provider.clone();
        config.api_key = self.llm_api_key.clone();
        config.headers = self.llm_headers.clone();
        config.azure = self
            .llm_azure_api_version
            .clone()
            .map(|api_version| llm::AzureConfig { api_version });
        config.request_timeout = std::time::Duration::from_secs(self.llm_timeout_secs);
        config.first_byte_timeout =
            std::time::Duration::from_secs(self.llm_first_byte_timeout_secs);
        config.http2_prior_knowledge = self.llm_http2_prior_knowledge;
        if let Some(path) = &self.llm_ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--llm-ca-cert {}: {e}", path.display()))?;
            config.ca_certs_pem = Some(pem);
        }
        // Checked now, so a bad URL or header stops the start instead of every request.
        llm::OpenAiCompatible::new(config.clone())
            .map_err(|e| anyhow::anyhow!("the LLM provider: {e}"))?;
        Ok(Some(config))
    }

    pub fn worker(&self) -> crate::worker::WorkerConfig {
        crate::worker::WorkerConfig {
            debounce: std::time::Duration::from_millis(self.assist_debounce_ms),
            shard: self.assist_shard,
            max_concurrent: self.assist_max_concurrent.max(1),
            priority: crate::worker::Priority {
                nice: self.assist_nice,
                idle: self.assist_sched == AssistSched::Idle,
            },
            draft_interval: std::time::Duration::from_millis(self.assist_draft_interval_ms),
            ..Default::default()
        }
    }
}
