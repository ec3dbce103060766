//! A scripted language-model server speaking the OpenAI Chat Completions wire protocol
//! (`POST /v1/chat/completions`, JSON or Server-Sent Events), for the assist tests.
//!
//! Reply requests (no `response_format`) and summary requests (`response_format` JSON schema)
//! each follow a script of [`Step`]s; the last step repeats. Every request body is recorded
//! with its arrival time, and a streamed answer dropped by the client before its end is
//! counted (the worker cancelling a stale request).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub enum Step {
    /// Stream these deltas after `first_byte`, `gap` apart, then usage and `[DONE]`.
    Stream {
        deltas: Vec<&'static str>,
        first_byte: Duration,
        gap: Duration,
    },
    /// One whole completion with this content (streamed as one delta if asked to stream).
    Complete(String),
    /// This status with an OpenAI error body, and `Retry-After` seconds if given.
    Status(u16, Option<u64>),
    /// Answer nothing for this long (longer than the client's timeouts).
    Hang(Duration),
}

impl Step {
    pub fn stream(deltas: Vec<&'static str>) -> Step {
        Step::Stream {
            deltas,
            first_byte: Duration::ZERO,
            gap: Duration::from_millis(10),
        }
    }
}

#[derive(Clone)]
struct Shared {
    replies: Arc<Mutex<VecDeque<Step>>>,
    summaries: Arc<Mutex<VecDeque<Step>>>,
    requests: Arc<Mutex<Vec<(Instant, Value)>>>,
    versions: Arc<Mutex<Vec<Version>>>,
    dropped: Arc<AtomicUsize>,
}

pub struct FakeLlm {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    pub async fn start(replies: Vec<Step>, summaries: Vec<Step>) -> FakeLlm {
        let shared = Shared {
            replies: Arc::new(Mutex::new(replies.into())),
            summaries: Arc::new(Mutex::new(summaries.into())),
            requests: Arc::default(),
            versions: Arc::default(),
            dropped: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeLlm { addr, shared, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The request bodies so far, with their arrival instants.
    pub fn requests(&self) -> Vec<(Instant, Value)> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The HTTP version of each request so far (the server speaks HTTP/1.1 and h2c).
    pub fn versions(&self) -> Vec<Version> {
        self.shared.versions.lock().unwrap().clone()
    }

    /// Streamed answers the client dropped before their end.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.requests().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} requests arrived",
                self.requests().len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn next(script: &Mutex<VecDeque<Step>>) -> Step {
    let mut s = script.lock().unwrap();
    if s.len() > 1 {
        s.pop_front().unwrap()
    } else {
        s.front().cloned().expect("a script has at least one step")
    }
}

async fn answer(
    State(shared): State<Shared>,
    version: Version,
    Json(body): Json<Value>,
) -> Response {
    shared.versions.lock().unwrap().push(version);
    shared
        .requests
        .lock()
        .unwrap()
        .push((Instant::now(), body.clone()));
    let structured = body.get("response_format").is_some();
    let step = next(if structured {
        &shared.summaries
    } else {
        &shared.replies
    });
    let stream = body["stream"] == true;
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    match step {
        Step::Status(code, retry_after) => {
            let mut r = (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"error": {"message": "scripted failure", "type": "server_error"}})),
            )
                .into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, s.to_string().parse().unwrap());
            }
            r
        }
        Step::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Step::Complete(content) if !stream => Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366}
        }))
        .into_response(),
        Step::Complete(content) => sse(&shared, model, vec![content], Duration::ZERO, Duration::ZERO),
        Step::Stream {
            deltas,
            first_byte,
            gap,
        } => {
            if !stream {
                let content: String = deltas.concat();
                return Json(json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366}
                }))
                .into_response();
            }
            sse(
                &shared,
                model,
                deltas.into_iter().map(str::to_owned).collect(),
                first_byte,
                gap,
            )
        }
    }
}

/// Counts a stream dropped before its end.
struct DropGuard {
    dropped: Arc<AtomicUsize>,
    finished: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn sse(
    shared: &Shared,
    model: String,
    deltas: Vec<String>,
    first_byte: Duration,
    gap: Duration,
) -> Response {
    let guard = DropGuard {
        dropped: shared.dropped.clone(),
        finished: false,
    };
    let n = deltas.len();
    let stream = futures::stream::unfold((0usize, deltas, guard), move |(i, deltas, mut guard)| {
        let model = model.clone();
        async move {
            let chunk = |v: Value| format!("data: {v}\n\n");
            let text = if i == 0 {
                tokio::time::sleep(first_byte).await;
                chunk(
                    json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"role": "assistant", "content": deltas[0]}, "finish_reason": null}]}),
                )
            } else if i < n {
                tokio::time::sleep(gap).await;
                chunk(
                    json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": deltas[i]}, "finish_reason": null}]}),
                )
            } else if i == n {
                guard.finished = true;
                chunk(
                    json!({"id": "c", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                ) + &chunk(
                    json!({"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [],
                            "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366}}),
                ) + "data: [DONE]\n\n"
            } else {
                return None;
            };
            Some((
                Ok::<_, std::convert::Infallible>(text),
                (i + 1, deltas, guard),
            ))
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
