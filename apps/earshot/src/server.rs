//! The HTTP server and the background tasks it supervises.
//!
//! [`Application::build`] opens the listener (port 0 picks a free one, which tests use) and
//! returns the bound address; [`Application::run_until`] serves until the shutdown token is
//! cancelled, running the call-index projection beside the HTTP server. If either task stops
//! on its own, the other is shut down and the error names the task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use projection::{CallIndex, Runner};
use serde_json::json;
use store::EventStore;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn EventStore>,
}

/// The routes. Later API modules each add a `router()` merged here.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
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

pub struct Application {
    listener: TcpListener,
    store: Arc<dyn EventStore>,
}

impl Application {
    pub async fn build(listen: SocketAddr, store: Arc<dyn EventStore>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        Ok(Self { listener, store })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled (then drains in-flight requests), or until a
    /// task fails.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        let router = app(AppState {
            store: self.store.clone(),
        });
        let http_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let result = axum::serve(self.listener, router)
                .with_graceful_shutdown(http_shutdown.cancelled_owned())
                .await
                .context("the HTTP server failed");
            ("http", result)
        });
        let runner_shutdown = shutdown.clone();
        let store = self.store.clone();
        tasks.spawn(async move {
            Runner::new(store)
                .run(&mut CallIndex, runner_shutdown)
                .await;
            ("call-index projection", Ok(()))
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
