//! The command tree. One binary: `serve`, `worker`, `migrate`, `tenants`, `tokens`, `events`,
//! `rules check` and `replay`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use domain::{CallId, Seq};
use secrecy::{ExposeSecret, SecretString};
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
        #[arg(long, value_name = "SEQ", conflicts_with = "follow")]
        at: Option<u64>,
        /// Print one JSON document instead of text (with --step or --follow: one JSON
        /// document per event, one per line).
        #[arg(long)]
        json: bool,
        /// After each event, print what it changed in the call's state (transcript, alerts,
        /// checklist, cards, suggestions, summary and disposition).
        #[arg(long)]
        step: bool,
        /// Then keep printing the call's new events as they are committed, until the call
        /// has ended and its summary has arrived, or Ctrl-C / SIGTERM.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        store: StoreSettings,
    },
    /// Replay transcripts into a running server as live calls and print what comes back;
    /// with --calls N, run N calls at once and report latencies and any lost event.
    ///
    /// Each FILE is a transcript: the project's format (transcripts/*.json), a Harper
    /// Valley transcript or an ABCD dialogue. Every file is read before anything is sent.
    /// One call per FILE, one after the other: start it (source "replay"), stream its
    /// segments over the WebSocket (ids s0001, s0002, ...), print each event as it arrives,
    /// then end the call (reason completed) and wait for its summary. With --call the
    /// segments go into that live call instead, and the call is ended too: the transcript
    /// is over. A dropped connection is resumed (resubscribed from the last seq seen,
    /// unacknowledged segments resent with the same ids), and so is a request the server
    /// failed (an `internal` or `unavailable` error, e.g. while its database restarts).
    ///
    /// Exit code 0 when every summary arrived; 1 on a refused request, a connection that
    /// could not be resumed, or a summary that never came; 2 (load mode) if a subscriber
    /// lost or repeated an event.
    Replay {
        /// Transcript files.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        server: String,
        /// An API token (agent, service or admin).
        #[arg(long, env = "EARSHOT_TOKEN", hide_env_values = true, value_name = "T")]
        token: String,
        /// 1 real time, 2 twice as fast, 0.5 half speed; 0 as fast as possible (each segment
        /// as soon as the previous one is acknowledged).
        #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = parse_speed)]
        speed: f64,
        /// Run N calls at once (the files round-robin), with a progress bar, then print a
        /// latency report and check that no subscriber lost an event.
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
        calls: u32,
        /// The agent id the calls are started for.
        #[arg(long, default_value = "replay", value_name = "ID", value_parser = parse_agent_id)]
        agent: domain::AgentId,
        /// Stream into this live call (e.g. one a browser panel opened) instead of starting
        /// one; it is ended when the transcript is over.
        #[arg(long, value_name = "CALL_ID", value_parser = parse_call_id, conflicts_with = "calls")]
        call: Option<CallId>,
        /// Send segments with POST /api/v1/calls/{id}/segments instead of the WebSocket.
        #[arg(long)]
        rest: bool,
        /// Print each WebSocket `event` message as received, one JSON document per line
        /// (with --calls: the report as one JSON document).
        #[arg(long)]
        json: bool,
        /// Also show suggestion drafts as they stream.
        #[arg(long, short)]
        verbose: bool,
        /// How long to wait for a call's summary after ending it.
        #[arg(long, default_value_t = 20, value_name = "SECS")]
        summary_timeout: u64,
        /// Write each call's view to DIR/<call_id>.jsonl: every `event` message its
        /// subscriber applied, as received, one per line (an overlap after a resume, at or
        /// below a seq already seen, is not written). For harnesses that compare it with
        /// the log.
        #[arg(long, value_name = "DIR")]
        dump_views: Option<PathBuf>,
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

fn parse_agent_id(s: &str) -> Result<domain::AgentId, String> {
    domain::AgentId::parse(s).map_err(|e| e.to_string())
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!(
            "{s:?}: expected 0 (as fast as possible) or a positive number such as 1, 2 or 0.5"
        )),
    }
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
            step,
            follow,
            store,
        } => {
            let store = store.open().await?;
            if !step && !follow {
                let out =
                    crate::events::render(store.as_ref(), call_id, at.map(Seq::new), json).await?;
                print!("{out}");
                return Ok(());
            }
            let stop = CancellationToken::new();
            if follow {
                tokio::spawn(crate::server::cancel_on_signal(stop.clone()));
            }
            let options = crate::events::Options {
                at: at.map(Seq::new),
                json,
                step,
                follow,
            };
            crate::events::run(
                store.as_ref(),
                call_id,
                &options,
                &mut std::io::stdout(),
                stop,
            )
            .await
        }
        Command::Replay {
            files,
            server,
            token,
            speed,
            calls,
            agent,
            call,
            rest,
            json,
            verbose,
            summary_timeout,
            dump_views,
        } => {
            let options = crate::replay::Options {
                files,
                server,
                token: SecretString::from(token),
                speed,
                calls: calls as usize,
                agent,
                call,
                rest,
                json,
                verbose,
                summary_timeout: Duration::from_secs(summary_timeout),
                dump_views,
            };
            match crate::replay::run(options).await? {
                crate::replay::Outcome::Completed => Ok(()),
                crate::replay::Outcome::EventsLost { lost, duplicated } => {
                    // Exit code 2 tells a script "the server lost events", apart from the
                    // 1 of any other failure; the report is already printed.
                    eprintln!("error: {lost} event(s) lost and {duplicated} duplicated");
                    use std::io::Write;
                    let _ = std::io::stdout().flush();
                    std::process::exit(2);
                }
            }
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
