//! `earshot-load fake-llm`: a local stand-in for an LLM provider speaking the OpenAI Chat
//! Completions wire protocol (`POST {base}/chat/completions`, with `base` e.g.
//! `http://127.0.0.1:18090/v1`), so the server can be measured with a provider in the loop
//! without a real model: every answer comes after a fixed delay, streamed answers as a fixed
//! number of chunks at a fixed interval.
//!
//! - Without `stream` (or `stream: false`): after `--delay-ms`, one `chat.completion` with
//!   `usage`. With `response_format.type == "json_schema"` the content is a JSON document of
//!   the call-summary shape (`reason_for_call`, `actions_taken`, `next_steps`,
//!   `disposition`, `confidence`); otherwise a one-sentence suggested reply.
//! - With `stream: true`: after `--delay-ms`, `text/event-stream` with `--tokens` content
//!   chunks `--token-interval-ms` apart (the first also carrying `role`), a chunk with
//!   `finish_reason: "stop"`, a usage chunk (`choices: []`) when
//!   `stream_options.include_usage` is true, then `data: [DONE]`.
//!
//! Requests are served concurrently (nothing is locked across the delay). On Ctrl-C or
//! SIGTERM a one-line count of the requests goes to stderr.
//!
//! Plain HTTP by default (HTTP/1.1, or HTTP/2 with prior knowledge). With `--tls-cert-out`
//! it serves HTTPS the way hosted providers do, offering `h2` and `http/1.1` by ALPN, with a
//! self-signed certificate made at start (rcgen) and written out for the client to trust.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::stream;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The options of `earshot-load fake-llm`.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Address to listen on; the base URL to give the server is `http://<this>/v1`
    /// (`https://` with `--tls-cert-out`).
    #[arg(long, default_value = "127.0.0.1:18090")]
    pub listen: SocketAddr,
    /// Milliseconds before the first byte of every answer.
    #[arg(long, default_value_t = 3000)]
    pub delay_ms: u64,
    /// Content chunks of a streamed answer.
    #[arg(long, default_value_t = 20)]
    pub tokens: u32,
    /// Milliseconds between two content chunks of a streamed answer.
    #[arg(long, default_value_t = 20)]
    pub token_interval_ms: u64,
    /// Streams one HTTP/2 connection may carry at once (a client speaking h2c sends every
    /// request over one connection; the ones above this wait for a stream to end).
    #[arg(long, default_value_t = 4096)]
    pub h2_max_streams: u32,
    /// Serve HTTPS, offering HTTP/2 and HTTP/1.1 by ALPN as hosted providers do, with a
    /// certificate for 127.0.0.1 and localhost made at start and written (PEM) to this file
    /// for the client to trust (`earshot serve --llm-ca-cert FILE`).
    #[arg(long, value_name = "PEM_FILE")]
    pub tls_cert_out: Option<PathBuf>,
}

/// A TLS acceptor with a new self-signed certificate for 127.0.0.1 and localhost, offering
/// `h2` then `http/1.1`; the certificate is returned as PEM.
pub fn self_signed_tls() -> anyhow::Result<(TlsAcceptor, String)> {
    let issued =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .context("making a self-signed certificate")?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(issued.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the certificate's key: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![issued.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), issued.cert.pem()))
}

/// The plain-text answer (a suggested reply).
const SUGGESTION: &str = "Thanks for waiting, let me check that for you right away.";

/// Counts of what was asked, shared by the handlers.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub streamed: AtomicU64,
    pub structured: AtomicU64,
    pub rejected: AtomicU64,
}

impl Counters {
    pub fn summary(&self) -> String {
        format!(
            "fake-llm: {} requests ({} streamed, {} structured, {} rejected)",
            self.requests.load(Ordering::Relaxed),
            self.streamed.load(Ordering::Relaxed),
            self.structured.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }
}

struct Fake {
    delay: Duration,
    tokens: u32,
    interval: Duration,
    counters: Arc<Counters>,
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(default)]
    stream_options: Option<Value>,
}

#[derive(Deserialize)]
struct ChatMessage {
    /// A string, or (newer clients) an array of `{type: "text", text}` parts.
    #[serde(default)]
    content: Value,
}

impl ChatRequest {
    fn structured(&self) -> bool {
        self.response_format
            .as_ref()
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str)
            == Some("json_schema")
    }

    fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// About one token per four characters of the messages.
    fn prompt_tokens(&self) -> u64 {
        let chars: usize = self
            .messages
            .iter()
            .map(|m| match &m.content {
                Value::String(s) => s.chars().count(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .map(|t| t.chars().count())
                    .sum(),
                _ => 0,
            })
            .sum();
        (chars as u64).div_ceil(4)
    }
}

/// The JSON content of a structured answer (the call-summary shape).
pub fn structured_content() -> String {
    json!({
        "reason_for_call": "The customer asked about a load-test segment.",
        "actions_taken": ["Listened to the load-test segment."],
        "next_steps": ["Nothing: this was a load test."],
        "disposition": "other",
        "confidence": 0.5,
    })
    .to_string()
}

/// The router of the fake provider: `POST /v1/chat/completions` (and, for clients given a
/// base URL without `/v1`, `POST /chat/completions`).
pub fn router(options: &Options, counters: Arc<Counters>) -> Router {
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(options.delay_ms),
        tokens: options.tokens.max(1),
        interval: Duration::from_millis(options.token_interval_ms),
        counters,
    });
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .with_state(fake)
}

/// Serves the fake provider on `listener` until the process is stopped: HTTP/1.1, and
/// HTTP/2 without TLS (h2c, prior knowledge) with `--h2-max-streams` streams a connection;
/// over TLS when given an acceptor (the protocol is then the one ALPN chose).
/// hyper-util's auto builder rather than `axum::serve`, which leaves hyper's limit (200).
pub async fn serve(
    listener: TcpListener,
    options: &Options,
    counters: Arc<Counters>,
    tls: Option<TlsAcceptor>,
) {
    let app = router(options, counters);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(options.h2_max_streams);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // Out of files, say: wait, as axum::serve does, instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let tls = tls.clone();
        // A connection the client dropped (or a failed handshake) is not the fake's error.
        tokio::spawn(async move {
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            }
        });
    }
}

/// `earshot-load fake-llm`: serves until Ctrl-C or SIGTERM, then prints the counts.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let tls = match &options.tls_cert_out {
        None => None,
        Some(path) => {
            let (acceptor, pem) = self_signed_tls()?;
            std::fs::write(path, pem)
                .with_context(|| format!("writing the certificate to {}", path.display()))?;
            Some(acceptor)
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "fake-llm: listening on {scheme}://{addr}/v1 (delay {} ms, {} tokens every {} ms)",
        options.delay_ms, options.tokens, options.token_interval_ms
    );
    let counters = Arc::new(Counters::default());
    tokio::select! {
        () = serve(listener, &options, counters.clone(), tls) => {}
        () = shutdown_signal() => {}
    }
    eprintln!("{}", counters.summary());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(json!({
            "error": { "message": message, "type": "invalid_request_error", "code": null }
        })),
    )
        .into_response()
}

async fn chat(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            fake.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a chat completion request: {e}"),
            );
        }
    };
    let n = fake.counters.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let structured = req.structured();
    let streamed = req.stream.unwrap_or(false);
    if structured {
        fake.counters.structured.fetch_add(1, Ordering::Relaxed);
    }
    if streamed {
        fake.counters.streamed.fetch_add(1, Ordering::Relaxed);
    }
    let id = format!("chatcmpl-fake{:x}{n:08x}", unix_now());
    tokio::time::sleep(fake.delay).await;
    let created = unix_now();
    let prompt_tokens = req.prompt_tokens();
    if !streamed {
        let content = if structured {
            structured_content()
        } else {
            SUGGESTION.to_owned()
        };
        let completion_tokens = content.split_whitespace().count() as u64;
        return axum::Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": req.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content },
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }))
        .into_response();
    }

    let deltas = if structured {
        split_even(&structured_content(), fake.tokens as usize)
    } else {
        let words: Vec<&str> = SUGGESTION.split_whitespace().collect();
        (0..fake.tokens as usize)
            .map(|i| format!("{} ", words[i % words.len()]))
            .collect()
    };
    let chunk = |choices: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": req.model,
            "choices": choices,
        })
    };
    // (wait before the frame, the frame)
    let mut frames: Vec<(bool, String)> = Vec::with_capacity(deltas.len() + 3);
    for (i, text) in deltas.iter().enumerate() {
        let delta = if i == 0 {
            json!({ "role": "assistant", "content": text })
        } else {
            json!({ "content": text })
        };
        let c = chunk(json!([{ "index": 0, "delta": delta, "finish_reason": null }]));
        frames.push((i > 0, format!("data: {c}\n\n")));
    }
    let stop = chunk(json!([{ "index": 0, "delta": {}, "finish_reason": "stop" }]));
    frames.push((false, format!("data: {stop}\n\n")));
    if req.include_usage() {
        let completion_tokens = deltas.len() as u64;
        let mut usage = chunk(json!([]));
        usage["usage"] = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        });
        frames.push((false, format!("data: {usage}\n\n")));
    }
    frames.push((false, "data: [DONE]\n\n".to_owned()));

    let interval = fake.interval;
    let body = stream::unfold(frames.into_iter(), move |mut frames| async move {
        let (wait, frame) = frames.next()?;
        if wait && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        Some((Ok::<_, Infallible>(frame), frames))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `text` cut into `n` pieces of about the same number of characters (fewer when it is
/// shorter than `n`), so the pieces put together are `text` again.
fn split_even(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    let mut out = Vec::with_capacity(n);
    let mut from = 0;
    for i in 1..=n {
        let to = chars.len() * i / n;
        out.push(chars[from..to].iter().collect());
        from = to;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(delay_ms: u64, tokens: u32) -> (String, Arc<Counters>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let options = Options {
            listen: listener.local_addr().unwrap(),
            delay_ms,
            tokens,
            token_interval_ms: 1,
            h2_max_streams: 4096,
            tls_cert_out: None,
        };
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        tokio::spawn(async move { serve(listener, &options, c, None).await });
        (base, counters)
    }

    /// Over TLS a client offering HTTP/2 by ALPN (reqwest's default) gets it, and the
    /// certificate written out is the one that verifies the server.
    #[tokio::test]
    async fn serves_https_with_http2_by_alpn() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}/v1", listener.local_addr().unwrap());
        let options = Options {
            listen: listener.local_addr().unwrap(),
            delay_ms: 0,
            tokens: 3,
            token_interval_ms: 1,
            h2_max_streams: 4096,
            tls_cert_out: None,
        };
        let (acceptor, pem) = self_signed_tls().unwrap();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        tokio::spawn(async move { serve(listener, &options, c, Some(acceptor)).await });
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let resp = client
            .post(format!("{base}/chat/completions"))
            .json(&json!({ "model": "fake-3s", "messages": messages(), "stream": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        let body = resp.error_for_status().unwrap().text().await.unwrap();
        let data = sse_data(&body);
        assert_eq!(data.last().unwrap(), "[DONE]");
        assert_eq!(
            data.len(),
            3 + 2,
            "3 content chunks, the stop chunk and [DONE]"
        );
        assert_eq!(counters.streamed.load(Ordering::Relaxed), 1);
    }

    fn messages() -> Value {
        json!([
            { "role": "system", "content": "You suggest replies." },
            { "role": "user", "content": "customer: where is my parcel" },
        ])
    }

    /// The `data:` payloads of an SSE body, checking its framing.
    fn sse_data(body: &str) -> Vec<String> {
        assert!(body.ends_with("\n\n"), "an SSE body ends with a blank line");
        body.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data line: {e:?}"))
                    .to_owned()
            })
            .collect()
    }

    /// HTTP/2 without TLS, every request on one connection, more at once than hyper's own
    /// default limit of 200 streams: with that limit the last 100 would wait for the first
    /// 200 answers (3 s) and then 3 s more, past the 5.5 s each request is given.
    #[tokio::test]
    async fn answers_over_h2c_more_streams_at_once_than_hyper_allows_by_default() {
        let (base, counters) = start(3_000, 2).await;
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(Duration::from_millis(5_500))
            .build()
            .unwrap();
        let requests = (0..300).map(|_| {
            let client = client.clone();
            let url = format!("{base}/chat/completions");
            async move {
                let resp = client
                    .post(url)
                    .json(&json!({ "model": "fake-3s", "messages": messages(), "stream": true }))
                    .send()
                    .await?;
                let version = resp.version();
                let body = resp.error_for_status()?.text().await?;
                Ok::<_, reqwest::Error>((version, body))
            }
        });
        let answers = futures::future::join_all(requests).await;
        for answer in answers {
            let (version, body) = answer.expect("answered in time");
            assert_eq!(version, reqwest::Version::HTTP_2);
            assert_eq!(sse_data(&body).last().unwrap(), "[DONE]");
        }
        assert_eq!(counters.requests.load(Ordering::Relaxed), 300);
    }

    #[tokio::test]
    async fn non_streamed_answer_has_the_envelope_and_usage() {
        let (base, counters) = start(0, 5).await;
        let resp = reqwest::Client::new()
            .post(format!("{base}/chat/completions"))
            .json(&json!({ "model": "fake-3s", "messages": messages(), "max_tokens": 64 }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(v["created"].as_u64().unwrap() > 0);
        assert_eq!(v["model"], "fake-3s");
        assert_eq!(v["choices"][0]["index"], 0);
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["message"]["content"], SUGGESTION);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        let u = &v["usage"];
        // 20 + 28 characters → 12 tokens.
        assert_eq!(u["prompt_tokens"], 12);
        assert!(u["completion_tokens"].as_u64().unwrap() > 0);
        assert_eq!(
            u["total_tokens"].as_u64().unwrap(),
            u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
        );
        assert_eq!(counters.requests.load(Ordering::Relaxed), 1);
        assert_eq!(counters.streamed.load(Ordering::Relaxed), 0);
    }

    fn check_summary(content: &str) {
        let s: Value = serde_json::from_str(content).expect("the content is JSON");
        let o = s.as_object().unwrap();
        assert_eq!(o.len(), 5, "{s}");
        assert!(s["reason_for_call"].is_string());
        for list in ["actions_taken", "next_steps"] {
            assert!(s[list].as_array().unwrap().iter().all(Value::is_string));
        }
        assert!(
            ["booked", "lead", "spam", "resolved", "escalated", "other"]
                .contains(&s["disposition"].as_str().unwrap())
        );
        let c = s["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
    }

    #[tokio::test]
    async fn json_schema_answer_is_a_summary() {
        let (base, counters) = start(0, 5).await;
        let v: Value = reqwest::Client::new()
            .post(format!("{base}/chat/completions"))
            .json(&json!({
                "model": "m", "messages": messages(), "stream": false, "temperature": 0.2,
                "response_format": { "type": "json_schema", "json_schema": {
                    "name": "summary", "schema": { "type": "object" }, "strict": true } },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        check_summary(v["choices"][0]["message"]["content"].as_str().unwrap());
        assert_eq!(counters.structured.load(Ordering::Relaxed), 1);
    }

    async fn stream(base: &str, body: Value) -> (String, String) {
        let resp = reqwest::Client::new()
            .post(format!("{base}/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        (ct, resp.text().await.unwrap())
    }

    #[tokio::test]
    async fn streamed_answer_is_sse_ending_in_done() {
        let (base, counters) = start(0, 7).await;
        let (ct, body) = stream(
            &base,
            json!({ "model": "fake-3s", "messages": messages(), "stream": true,
                    "stream_options": { "include_usage": true } }),
        )
        .await;
        assert!(ct.starts_with("text/event-stream"));
        let data = sse_data(&body);
        assert_eq!(data.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        // 7 content chunks, the stop chunk, the usage chunk.
        assert_eq!(chunks.len(), 9);
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "fake-3s");
            assert_eq!(c["id"], chunks[0]["id"]);
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        for c in &chunks[..7] {
            let content = c["choices"][0]["delta"]["content"].as_str().unwrap();
            assert!(content.ends_with(' ') && content.len() > 1);
            assert!(c["choices"][0]["finish_reason"].is_null());
        }
        assert!(chunks[1]["choices"][0]["delta"].get("role").is_none());
        assert_eq!(chunks[7]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[7]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[8]["choices"], json!([]));
        assert_eq!(chunks[8]["usage"]["completion_tokens"], 7);
        assert_eq!(counters.streamed.load(Ordering::Relaxed), 1);

        // Without include_usage: no usage chunk.
        let (_, body) = stream(
            &base,
            json!({ "model": "m", "messages": messages(), "stream": true }),
        )
        .await;
        let data = sse_data(&body);
        assert_eq!(data.len(), 7 + 1 + 1);
        assert_eq!(data.last().unwrap(), "[DONE]");
        assert!(data.iter().all(|d| !d.contains("\"usage\"")));
    }

    #[tokio::test]
    async fn streamed_json_schema_answer_concatenates_to_a_summary() {
        let (base, _) = start(0, 20).await;
        let (_, body) = stream(
            &base,
            json!({ "model": "m", "messages": messages(), "stream": true,
                    "response_format": { "type": "json_schema", "json_schema": {} } }),
        )
        .await;
        let data = sse_data(&body);
        assert_eq!(data.last().unwrap(), "[DONE]");
        let text: String = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        check_summary(&text);
    }

    #[tokio::test]
    async fn requests_are_served_concurrently() {
        let (base, counters) = start(300, 3).await;
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        let answers = futures::future::join_all((0..20).map(|_| {
            client
                .post(format!("{base}/chat/completions"))
                .json(&json!({ "model": "m", "messages": messages() }))
                .send()
        }))
        .await;
        assert!(answers.iter().all(|a| a.as_ref().unwrap().status() == 200));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300));
        assert!(took < Duration::from_millis(2_000), "took {took:?}");
        assert_eq!(counters.requests.load(Ordering::Relaxed), 20);
    }

    #[tokio::test]
    async fn a_bad_body_is_refused() {
        let (base, counters) = start(0, 3).await;
        let resp = reqwest::Client::new()
            .post(format!("{base}/chat/completions"))
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(counters.rejected.load(Ordering::Relaxed), 1);
        assert_eq!(counters.requests.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn split_even_keeps_the_text() {
        assert_eq!(split_even("abcdef", 4).concat(), "abcdef");
        assert_eq!(split_even("ab", 5).len(), 2);
        assert_eq!(split_even("é€x", 3), ["é", "€", "x"]);
    }
}
