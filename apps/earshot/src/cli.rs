//! The command tree. One binary: `serve`, `migrate`, `events`, `rules check`; later issues
//! add `replay` and `worker`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use domain::{CallId, Seq};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::settings::{AssistSettings, ServerSettings, StoreSettings};
use crate::telemetry::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "earshot",
    version,
    about = "Real-time agent assist for call centers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr.
    #[arg(
        long,
        env = "EARSHOT_LOG_FORMAT",
        value_enum,
        default_value_t,
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate and open the store, then serve HTTP until Ctrl-C or SIGTERM.
    Serve {
        #[command(flatten)]
        store: StoreSettings,
        /// Address to listen on.
        #[arg(long, env = "EARSHOT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        server: ServerSettings,
        #[command(flatten)]
        assist: AssistSettings,
        /// Do not run the assist worker in this process (run `earshot worker` instead).
        #[arg(long, env = "EARSHOT_NO_ASSIST")]
        no_assist: bool,
    },
    /// Run only the assist worker: follow the log, post suggested replies and end-of-call
    /// summaries. Several may run (see --assist-shard), beside `serve --no-assist`.
    Worker {
        #[command(flatten)]
        store: StoreSettings,
        #[command(flatten)]
        assist: AssistSettings,
    },
    /// Create or upgrade the store's schema, then exit.
    Migrate {
        #[command(flatten)]
        store: StoreSettings,
    },
    /// Print a call's events and its state rebuilt from the log (at the end, or at --at).
    Events {
        /// The call's id (a UUID).
        #[arg(value_parser = parse_call_id)]
        call_id: CallId,
        /// Rebuild the state as it was right after this seq (0: before the first event).
        #[arg(long, value_name = "SEQ")]
        at: Option<u64>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreSettings,
    },
    /// Tenants: make one, with the built-in rulesets and an admin token (printed once).
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// API tokens: make one for a tenant (printed once).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Rulesets: validate one, and see what it does on a transcript.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Create a tenant and print its first admin token.
    Create {
        /// The tenant id: lower-case letters, digits and '-', e.g. acme-hvac.
        id: String,
        /// A display name (defaults to the id).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        store: StoreSettings,
    },
    /// List the tenants.
    List {
        #[command(flatten)]
        store: StoreSettings,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Make a token and print it (only its hash is stored).
    Create {
        /// The tenant it belongs to.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// admin, supervisor, agent or service.
        #[arg(long)]
        role: String,
        /// Who or what holds it, e.g. alice or replay-cli.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreSettings,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Validate a ruleset file; with --transcript, run the call through redaction and the
    /// rules and print what fires, segment by segment.
    Check {
        /// The ruleset (YAML), e.g. rulesets/home-services.yaml.
        file: PathBuf,
        /// A transcript: the project's format (transcripts/*.json), a Harper Valley
        /// transcript or an ABCD dialogue.
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_call_id(s: &str) -> Result<CallId, String> {
    s.parse::<CallId>().map_err(|e| e.to_string())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            store,
            listen,
            server,
            assist,
            no_assist,
        } => {
            let mut config = server.config()?;
            config.assist = crate::worker::AssistConfig {
                enabled: !no_assist,
                provider: assist.provider()?,
                worker: assist.worker(),
                ..Default::default()
            };
            serve(store, listen, config).await
        }
        Command::Worker { store, assist } => worker(store, assist).await,
        Command::Migrate { store } => {
            let url = store.url()?;
            let backend = store::migrate(&url).await?;
            println!(
                "migrated the {backend} store at {}",
                store::redact_url(&url)
            );
            Ok(())
        }
        Command::Events {
            call_id,
            at,
            json,
            store,
        } => {
            let store = store.open().await?;
            let out =
                crate::events::render(store.as_ref(), call_id, at.map(Seq::new), json).await?;
            print!("{out}");
            Ok(())
        }
        Command::Tenants {
            command: TenantsCommand::Create { id, name, store },
        } => {
            let id = domain::TenantId::parse(&id)?;
            let store = store.open_store().await?;
            let token = crate::bootstrap::create_tenant(
                store.as_ref(),
                &id,
                name.as_deref().unwrap_or(id.as_str()),
            )
            .await?;
            println!("created tenant {id} with the built-in rulesets");
            println!("admin token (shown only now): {}", token.expose_secret());
            Ok(())
        }
        Command::Tenants {
            command: TenantsCommand::List { store },
        } => {
            let store = store.open_store().await?;
            for t in store.list_tenants().await? {
                println!("{}\t{}\t{}", t.id, t.created_at.to_rfc3339(), t.name);
            }
            Ok(())
        }
        Command::Tokens {
            command:
                TokensCommand::Create {
                    tenant,
                    role,
                    name,
                    store,
                },
        } => {
            let tenant = domain::TenantId::parse(&tenant)?;
            let role = domain::Role::parse(&role)?;
            let name = domain::ActorId::parse(&name)?;
            let store = store.open_store().await?;
            let (token, record) =
                crate::auth::issue(store.as_ref(), &tenant, role, name.as_str()).await?;
            println!("{}", token.expose_secret());
            eprintln!(
                "made {role} token {} for {name} in tenant {tenant}",
                record.id
            );
            Ok(())
        }
        Command::Rules {
            command:
                RulesCommand::Check {
                    file,
                    transcript,
                    json,
                },
        } => {
            crate::rules_check::ensure_file(&file)?;
            print!(
                "{}",
                crate::rules_check::run(&file, transcript.as_deref(), json)?
            );
            Ok(())
        }
    }
}

/// The standalone assist worker: its own pipeline on the shared store, no HTTP, no drafts.
async fn worker(settings: StoreSettings, assist: AssistSettings) -> anyhow::Result<()> {
    let config = crate::worker::AssistConfig {
        provider: assist.provider()?,
        worker: crate::worker::WorkerConfig {
            stream_drafts: false,
            ..assist.worker()
        },
        ..Default::default()
    };
    let store = settings.open_store().await?;
    let engines = std::sync::Arc::new(crate::engines::Engines::new(store.clone()));
    let redactor = redact::Redactor::new(redact::Policy::default())?;
    let pipeline = std::sync::Arc::new(crate::pipeline::Pipeline::new(
        store.clone(),
        engines.clone(),
        redactor,
        domain::command::MAX_SEGMENT_CHARS,
    ));
    let worker =
        crate::worker::Worker::build(store.clone(), pipeline.clone(), engines, None, &config)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::server::cancel_on_signal(shutdown.clone()));
    // Idle sessions are dropped as in the server.
    let sweeper = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = sweeper.cancelled() => break,
                _ = tick.tick() => { pipeline.evict_idle(std::time::Duration::from_secs(600)); }
            }
        }
    });
    tracing::info!(store = store.backend(), "assist worker running");
    worker.run(shutdown).await;
    Ok(())
}

async fn serve(
    settings: StoreSettings,
    listen: SocketAddr,
    config: crate::server::ServerConfig,
) -> anyhow::Result<()> {
    let url = settings.url()?;
    let store = settings.open_store().await?;
    let app = crate::server::Application::build(listen, store.clone(), config).await?;
    // To the console, not the log. A closed stdout (a supervisor that stopped reading) must
    // not take the server down, so write errors are ignored rather than panicking.
    let console = |text: String| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    console(format!(
        "earshot listening on http://{} (store: {} at {})",
        app.addr(),
        store.backend(),
        store::redact_url(&url)
    ));
    if let Some(token) = &app.first_admin_token {
        // Shown once, on the console only: it is not logged, and only its hash is stored.
        console(format!(
            "\nFirst start: created tenant \"default\" with the built-in rulesets.\n\
             Its admin token (shown only now; keep it):\n\n    {}\n\n\
             Use it as `Authorization: Bearer <token>`; make more with POST /api/v1/tokens.\n\
             API docs: http://{}/docs\n",
            secrecy::ExposeSecret::expose_secret(token),
            app.addr()
        ));
    }
    tracing::info!(addr = %app.addr(), store = store.backend(), "serving");
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::server::cancel_on_signal(shutdown.clone()));
    app.run_until(shutdown).await
}
