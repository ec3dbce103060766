//! The HTTP server and the background tasks it supervises.
//!
//! [`Application::build`] opens the listener (port 0 picks a free one, which tests use),
//! bootstraps an empty store (a default tenant and a one-time admin token), and returns the
//! bound address; [`Application::run_until`] serves until the shutdown token is cancelled,
//! running beside the HTTP server the hub (the log's tail, fanning events out to
//! WebSockets), the call-index projection, the assist worker (unless turned off) and the
//! sweeper. If any task stops on its
//! own, the others are shut down and the error names the task.
//!
//! Shutdown drains: the listener stops accepting, in-flight requests (ingests included) run
//! to completion, and WebSockets are closed with 1001 so clients reconnect elsewhere and
//! resume.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use projection::{CallIndex, Runner};
use secrecy::SecretString;
use serde_json::json;
use store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::ws::WsConfig;
use crate::auth::Authenticator;
use crate::engines::Engines;
use crate::hub::Hub;
use crate::pipeline::Pipeline;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub pipeline: Arc<Pipeline>,
    pub hub: Arc<Hub>,
    pub engines: Arc<Engines>,
    pub auth: Arc<Authenticator>,
    pub ws: WsConfig,
    /// Cancelled when the server shuts down (WebSockets close on it).
    pub shutdown: CancellationToken,
}

/// Server settings beyond the listen address and the store.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub ws: WsConfig,
    /// The longest segment text accepted, in characters.
    pub max_segment_chars: usize,
    /// Sessions idle this long are dropped from memory (they reload from the log).
    pub session_idle: Duration,
    /// Frames the hub buffers per call for subscribers that fall behind a burst.
    pub hub_call_capacity: usize,
    /// The assist worker (suggested replies, summaries) and its provider.
    pub assist: crate::worker::AssistConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ws: WsConfig::default(),
            max_segment_chars: domain::command::MAX_SEGMENT_CHARS,
            session_idle: Duration::from_secs(600),
            hub_call_capacity: crate::hub::CALL_CHANNEL,
            assist: crate::worker::AssistConfig::default(),
        }
    }
}

/// The Prometheus recorder, installed once per process.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embedding the app); keep ours
            // as a handle anyway so /metrics still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The routes.
pub fn app(state: AppState) -> Router {
    let body_limit = (state.pipeline.max_segment_chars * 4 * crate::pipeline::MAX_BATCH)
        .clamp(64 * 1024, 16 * 1024 * 1024);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(crate::api::router())
        .merge(crate::web::router())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", crate::api::ApiDoc::openapi()))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(crate::api::trace_requests))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn not_found() -> crate::api::error::ApiError {
    crate::api::error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Liveness: the process is up and serving HTTP. Never touches the store, so a database
/// outage does not get the server restarted.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers within two seconds.
async fn readyz(State(state): State<AppState>) -> Response {
    let backend = state.store.backend();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Json(json!({ "status": "ready", "store": backend })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: the store failed");
            unavailable(backend, "the store returned an error")
        }
        Err(_) => {
            tracing::warn!("readiness check: the store did not answer within 2 s");
            unavailable(backend, "the store did not answer within 2 s")
        }
    }
}

fn unavailable(backend: &str, reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "store": backend, "reason": reason })),
    )
        .into_response()
}

/// Prometheus text. Consumer lag (events between the log's head and each consumer) is
/// measured at scrape time.
async fn metrics_text(State(state): State<AppState>) -> Response {
    if let Ok(head) = state.store.head().await {
        let hub = state.hub.position();
        metrics::gauge!("earshot_consumer_lag_events", "consumer" => "hub")
            .set(head.get().saturating_sub(hub.get()) as f64);
        if let Ok(cp) = state.store.load_checkpoint(CallIndex::NAME).await {
            metrics::gauge!("earshot_consumer_lag_events", "consumer" => CallIndex::NAME)
                .set(head.get().saturating_sub(cp.get()) as f64);
        }
        metrics::gauge!("earshot_log_head_position").set(head.get() as f64);
    }
    metrics::gauge!("earshot_call_sessions").set(state.pipeline.live_sessions() as f64);
    metrics::gauge!("earshot_hub_followed_calls").set(state.hub.followed_calls() as f64);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics_handle().render(),
    )
        .into_response()
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    config: ServerConfig,
    worker: Option<Arc<crate::worker::Worker>>,
    /// The admin token made on first start, to be shown once.
    pub first_admin_token: Option<SecretString>,
}

impl Application {
    pub async fn build(
        listen: SocketAddr,
        store: Arc<dyn Store>,
        config: ServerConfig,
    ) -> anyhow::Result<Self> {
        metrics_handle();
        let first_admin_token = crate::bootstrap::first_start(store.as_ref())
            .await
            .context("bootstrapping the store")?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let engines = Arc::new(Engines::new(store.clone()));
        let redactor = redact::Redactor::new(redact::Policy::default())
            .context("compiling the redaction policy")?;
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            engines.clone(),
            redactor,
            config.max_segment_chars,
        ));
        let hub = Arc::new(Hub::new(store.clone(), config.hub_call_capacity));
        let worker = if config.assist.enabled {
            Some(crate::worker::Worker::build(
                store.clone(),
                pipeline.clone(),
                engines.clone(),
                Some(hub.clone()),
                &config.assist,
            )?)
        } else {
            None
        };
        let state = AppState {
            hub,
            auth: Arc::new(Authenticator::new(store.clone())),
            store,
            pipeline,
            engines,
            ws: config.ws.clone(),
            shutdown: CancellationToken::new(),
        };
        Ok(Self {
            listener,
            state,
            config,
            worker,
            first_admin_token,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled (then drains in-flight requests), or until a
    /// task fails.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        let state = self.state.clone();
        // Everything the server runs stops on the caller's token.
        let inner = state.shutdown.clone();
        let outer = shutdown.clone();
        tokio::spawn(async move {
            outer.cancelled().await;
            inner.cancel();
        });
        let router = app(state.clone());

        let http_shutdown = shutdown.clone();
        // Events go out as small WebSocket frames, often two in a row (a segment and the
        // alert it raised): with Nagle's algorithm the second waits for the client's delayed
        // ACK, ~40 ms. Latency matters more here than packet count.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
            }
        });
        tasks.spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(http_shutdown.cancelled_owned())
                .await
                .context("the HTTP server failed");
            ("http", result)
        });

        let hub = state.hub.clone();
        let hub_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let result = hub.run(hub_shutdown).await.context("the hub failed");
            ("hub", result)
        });

        let runner_shutdown = shutdown.clone();
        let store: Arc<dyn store::EventStore> = state.store.clone();
        tasks.spawn(async move {
            Runner::new(store)
                .run(&mut CallIndex, runner_shutdown)
                .await;
            ("call-index projection", Ok(()))
        });

        if let Some(worker) = self.worker.clone() {
            let worker_shutdown = shutdown.clone();
            tasks.spawn(async move {
                worker.run(worker_shutdown).await;
                ("assist worker", Ok(()))
            });
        }

        let sweeper_shutdown = shutdown.clone();
        let pipeline = state.pipeline.clone();
        let hub = state.hub.clone();
        let idle = self.config.session_idle;
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30).min(idle));
            loop {
                tokio::select! {
                    _ = sweeper_shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        let n = pipeline.evict_idle(idle);
                        let m = hub.prune();
                        if n + m > 0 {
                            tracing::debug!(sessions = n, channels = m, "dropped idle call sessions and hub channels");
                        }
                    }
                }
            }
            ("session sweeper", Ok(()))
        });

        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            let (name, result) = joined.context("a server task panicked")?;
            if !shutdown.is_cancelled() {
                let why = match result {
                    Ok(()) => anyhow::anyhow!("{name} stopped unexpectedly"),
                    Err(e) => e.context(format!("{name} stopped")),
                };
                tracing::error!(task = name, error = %why, "shutting down");
                failure.get_or_insert(why);
                shutdown.cancel();
            } else if let Err(e) = result {
                failure.get_or_insert(e);
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}
