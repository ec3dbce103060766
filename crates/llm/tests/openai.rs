//! `OpenAiCompatible` against a real HTTP server (axum on 127.0.0.1:0) that speaks the Chat
//! Completions wire protocol: JSON responses, SSE streams cut at awkward byte boundaries,
//! error statuses with `Retry-After`, and a server that never answers in time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, Version};
use axum::response::Response;
use llm::{
    AzureConfig, BreakerConfig, ChatRequest, CircuitState, LlmError, Message, OpenAiCompatible,
    OpenAiConfig, Provider, RetryPolicy,
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

const KEY: &str = "sk-test-S3CRET-4f9a";

#[derive(Clone)]
enum Reply {
    /// A status, extra headers and a JSON body.
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// 200 with an SSE body sent as these chunks, `gap` apart.
    Sse { chunks: Vec<Vec<u8>>, gap: Duration },
    /// Answer nothing for this long (then a 200 that nobody waits for).
    Sleep(Duration),
}

struct Recorded {
    version: Version,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Value,
    at: Instant,
}

#[derive(Default)]
struct Mock {
    replies: Vec<Reply>,
    log: Mutex<Vec<Recorded>>,
    /// TCP connections accepted.
    connections: AtomicUsize,
}

impl Mock {
    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

async fn handler(
    State(mock): State<Arc<Mock>>,
    version: Version,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut log = mock.log.lock().unwrap();
        log.push(Recorded {
            version,
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: Instant::now(),
        });
        log.len() - 1
    };
    let reply = mock.replies[n.min(mock.replies.len() - 1)].clone();
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut r = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            for (name, value) in headers {
                r = r.header(name, value);
            }
            r.body(Body::from(body)).unwrap()
        }
        Reply::Sse { chunks, gap } => {
            let stream = futures::stream::unfold(chunks.into_iter(), move |mut it| async move {
                let chunk = it.next()?;
                tokio::time::sleep(gap).await;
                Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), it))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Reply::Sleep(d) => {
            tokio::time::sleep(d).await;
            Response::new(Body::from(ok_body("too late", None)))
        }
    }
}

/// The mock answering `replies` in turn, its app, and a listener on a free local port.
async fn mock_app(replies: Vec<Reply>) -> (Arc<Mock>, axum::Router, tokio::net::TcpListener) {
    let mock = Arc::new(Mock {
        replies,
        ..Mock::default()
    });
    let app = axum::Router::new()
        .fallback(handler)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (mock, app, listener)
}

/// Starts the server; returns the base URL (`…/v1`) and the mock.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Mock>) {
    let (mock, app, listener) = mock_app(replies).await;
    let addr = listener.local_addr().unwrap();
    let counted = mock.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        counted.connections.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), mock)
}

fn ok_body(content: &str, usage: Option<(u32, u32)>) -> String {
    let mut body = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    });
    if let Some((p, c)) = usage {
        body["usage"] = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    }
    body.to_string()
}

fn ok(content: &str) -> Reply {
    Reply::Json {
        status: 200,
        headers: vec![],
        body: ok_body(content, Some((11, 3))),
    }
}

fn status(code: u16) -> Reply {
    let body = json!({"error": {"message": format!("status {code}"), "type": "test"}}).to_string();
    Reply::Json {
        status: code,
        headers: vec![],
        body,
    }
}

fn config(base: &str) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(base, "test-model");
    c.api_key = Some(SecretString::from(KEY));
    c.retry = RetryPolicy {
        max_retries: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    };
    c.first_byte_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(5);
    c
}

fn request() -> ChatRequest {
    ChatRequest {
        max_tokens: Some(64),
        temperature: Some(0.2),
        ..ChatRequest::new(vec![
            Message::system("You assist a CSR."),
            Message::user("Customer: my bill is wrong"),
        ])
    }
}

/// Splits `bytes` into pieces of 1, 2, 3, 5, 8, 13, 1, 2, … bytes: every kind of boundary
/// (inside `data:`, inside JSON, inside a multi-byte char, between `\r` and `\n`) occurs.
fn awkward_chunks(bytes: &[u8]) -> Vec<Vec<u8>> {
    let sizes = [1, 2, 3, 5, 8, 13];
    let mut out = Vec::new();
    let mut i = 0;
    for n in sizes.iter().cycle() {
        if i >= bytes.len() {
            break;
        }
        let end = (i + n).min(bytes.len());
        out.push(bytes[i..end].to_vec());
        i = end;
    }
    out
}

fn sse_body(deltas: &[&str], usage: Option<(u32, u32)>, done: bool, eol: &str) -> String {
    let mut events = vec![
        json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
    ];
    for d in deltas {
        events.push(json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": null}]}));
    }
    if done {
        events.push(json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    }
    if let Some((p, c)) = usage {
        events.push(json!({"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}));
    }
    let mut body = format!(": keep-alive{eol}{eol}");
    for e in events {
        body.push_str(&format!("data: {e}{eol}{eol}"));
    }
    if done {
        body.push_str(&format!("data: [DONE]{eol}{eol}"));
    }
    body
}

#[tokio::test]
async fn stream_split_at_awkward_boundaries_yields_every_delta_and_usage() {
    let deltas = ["Sure, I can ", "héłp wïth that — ", "a €5 refund 👍."];
    for eol in ["\n", "\r\n"] {
        let body = sse_body(&deltas, Some((42, 7)), true, eol);
        let chunks = awkward_chunks(body.as_bytes());
        assert!(chunks.len() > 50);
        let (base, mock) = serve(vec![Reply::Sse {
            chunks,
            gap: Duration::from_millis(1),
        }])
        .await;
        let client = OpenAiCompatible::new(config(&base)).unwrap();

        let mut seen = Vec::new();
        let c = client
            .stream(request(), &mut |d: &str| seen.push(d.to_owned()))
            .await
            .unwrap();

        assert_eq!(seen, deltas, "one callback per delta, in order, intact");
        assert_eq!(c.text, deltas.concat());
        assert_eq!((c.prompt_tokens, c.completion_tokens), (Some(42), Some(7)));
        let first = c.first_token.expect("first token time");
        assert!(first <= c.latency);
        assert_eq!(c.attempts, 1);

        let log = mock.log.lock().unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].path, "/v1/chat/completions");
        assert_eq!(log[0].body["stream"], json!(true));
        assert_eq!(
            log[0].body["stream_options"],
            json!({"include_usage": true})
        );
        assert_eq!(log[0].body["model"], json!("test-model"));
        assert_eq!(
            log[0].body["messages"][1],
            json!({"role": "user", "content": "Customer: my bill is wrong"})
        );
        assert_eq!(log[0].body["max_tokens"], json!(64));
    }
}

/// The worker gives a streamed reply up (drops it) when a newer segment arrives. Over HTTP/2
/// (h2c, prior knowledge) that resets one stream and the next request goes over the same
/// connection; over HTTP/1.1 the connection is closed with it and the next opens a new one.
#[tokio::test]
async fn a_stream_given_up_keeps_its_connection_on_http2_only() {
    for (h2, version, connections) in [(true, Version::HTTP_2, 1), (false, Version::HTTP_11, 2)] {
        let deltas = ["one ", "two ", "three ", "four ", "five"];
        let body = sse_body(&deltas, None, true, "\n");
        // ~50 chunks 100 ms apart: still streaming when it is given up.
        let (base, mock) = serve(vec![
            Reply::Sse {
                chunks: awkward_chunks(body.as_bytes()),
                gap: Duration::from_millis(100),
            },
            ok("the next reply"),
        ])
        .await;
        let mut config = config(&base);
        config.http2_prior_knowledge = h2;
        let client = OpenAiCompatible::new(config).unwrap();
        give_up_then_ask_again(&client, &mock, "the next reply", version, connections).await;
    }
}

/// Gives a stream up while it is still streaming (as the worker does for a newer segment),
/// then asks again; asserts the reply, the HTTP version of both requests and the TCP
/// connections they took.
async fn give_up_then_ask_again(
    client: &OpenAiCompatible,
    mock: &Mock,
    reply: &str,
    version: Version,
    connections: usize,
) {
    let given_up = tokio::time::timeout(
        Duration::from_millis(700),
        client.stream(request(), &mut |_: &str| {}),
    )
    .await;
    assert!(
        given_up.is_err(),
        "{version:?}: the stream outlived the wait"
    );
    let next = client.complete(request()).await.unwrap();
    assert_eq!(next.text, reply);

    let log = mock.log.lock().unwrap();
    assert_eq!(log.len(), 2, "{version:?}");
    assert!(log.iter().all(|r| r.version == version), "{version:?}");
    assert_eq!(
        mock.connections.load(Ordering::SeqCst),
        connections,
        "{version:?}: TCP connections for the two requests"
    );
}

/// Starts the same server over TLS with a certificate for 127.0.0.1 made here and offering
/// `alpn` (e.g. `h2` and `http/1.1`, as hosted providers do); returns the `https://` base URL,
/// the mock and the certificate (PEM) for the client to trust.
async fn serve_tls(replies: Vec<Reply>, alpn: &[&[u8]]) -> (String, Arc<Mock>, String) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;
    use tokio_rustls::rustls;

    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(issued.signing_key.serialize_der()).unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![issued.cert.der().clone()], key)
    .unwrap();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let (mock, app, listener) = mock_app(replies).await;
    let addr = listener.local_addr().unwrap();
    let counted = mock.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            counted.connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = TowerToHyperService::new(app);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://{addr}/v1"), mock, issued.cert.pem())
}

/// A hosted provider (`https://`, offering `h2` by ALPN) gets HTTP/2 with no flag: a reply
/// given up resets its stream and the next request reuses the connection. A server offering
/// only `http/1.1` gets HTTP/1.1, a connection per given-up request. The certificate is
/// checked: without `ca_certs_pem` trusting it, nothing reaches the server.
#[tokio::test]
async fn https_negotiates_http2_by_alpn_and_trusts_only_the_given_certificates() {
    for (alpn, version, connections) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], Version::HTTP_2, 1),
        (&[b"http/1.1".as_slice()][..], Version::HTTP_11, 2),
    ] {
        let body = sse_body(&["one ", "two ", "three"], None, true, "\n");
        let (base, mock, cert) = serve_tls(
            vec![
                Reply::Sse {
                    chunks: awkward_chunks(body.as_bytes()),
                    gap: Duration::from_millis(100),
                },
                ok("over TLS"),
            ],
            alpn,
        )
        .await;
        let mut config = config(&base);
        config.ca_certs_pem = Some(cert.into_bytes());
        let client = OpenAiCompatible::new(config).unwrap();
        give_up_then_ask_again(&client, &mock, "over TLS", version, connections).await;
    }

    let (base, mock, _) = serve_tls(vec![ok("unreachable")], &[b"h2", b"http/1.1"]).await;
    let mut untrusted = config(&base);
    untrusted.retry.max_retries = 0;
    let err = OpenAiCompatible::new(untrusted)
        .unwrap()
        .complete(request())
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Transport { .. }), "{err}");
    assert_eq!(
        mock.count(),
        0,
        "an untrusted certificate got a request through"
    );
}

#[test]
fn ca_certificates_that_are_not_pem_are_a_configuration_error() {
    let mut config = config("https://127.0.0.1:1/v1");
    config.ca_certs_pem = Some(b"not a certificate".to_vec());
    let err = OpenAiCompatible::new(config).unwrap_err();
    assert!(
        matches!(err, LlmError::Config(ref m) if m.contains("no PEM certificate")),
        "{err}"
    );
}

#[tokio::test]
async fn stream_cut_before_done_is_an_error_and_not_retried() {
    let body = sse_body(&["Half a sen"], None, false, "\n");
    let (base, mock) = serve(vec![
        Reply::Sse {
            chunks: awkward_chunks(body.as_bytes()),
            gap: Duration::ZERO,
        },
        ok("unused"),
    ])
    .await;
    let client = OpenAiCompatible::new(config(&base)).unwrap();
    let mut seen = String::new();
    let err = client
        .stream(request(), &mut |d: &str| seen.push_str(d))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Protocol(ref m) if m.contains("[DONE]")),
        "{err}"
    );
    assert_eq!(seen, "Half a sen");
    assert_eq!(mock.count(), 1, "text was already shown: no retry");
}

#[tokio::test]
async fn key_is_sent_as_bearer_and_never_printed() {
    let (base, mock) = serve(vec![ok("Happy to help.")]).await;
    let mut cfg = config(&base);
    cfg.headers = vec![("X-Title".into(), "earshot".into())];
    let config_debug = format!("{cfg:?}");
    let client = OpenAiCompatible::new(cfg).unwrap();

    let c = client.complete(request()).await.unwrap();
    assert_eq!(c.text, "Happy to help.");
    assert_eq!((c.prompt_tokens, c.completion_tokens), (Some(11), Some(3)));
    assert_eq!(c.first_token, None);

    let log = mock.log.lock().unwrap();
    assert_eq!(log[0].headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(log[0].headers["x-title"], "earshot");
    assert_eq!(log[0].body["stream"], json!(false));
    assert!(log[0].body.get("response_format").is_none());

    let client_debug = format!("{client:?}");
    for debug in [&config_debug, &client_debug] {
        assert!(!debug.contains("S3CRET"), "key leaked: {debug}");
        assert!(debug.contains("test-model"), "{debug}");
    }
    assert_eq!((client.name(), client.model()), ("openai", "test-model"));
}

#[tokio::test]
async fn azure_mode_uses_deployment_url_api_version_and_api_key_header() {
    let (base, mock) = serve(vec![ok("ok")]).await;
    let deployment = base.replace("/v1", "/openai/deployments/gpt4o-prod/");
    let mut cfg = config(&deployment);
    cfg.azure = Some(AzureConfig {
        api_version: "2024-10-21".into(),
    });
    let client = OpenAiCompatible::new(cfg).unwrap();
    client.complete(request()).await.unwrap();

    let log = mock.log.lock().unwrap();
    assert_eq!(
        log[0].path,
        "/openai/deployments/gpt4o-prod/chat/completions"
    );
    assert_eq!(log[0].query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(log[0].headers["api-key"], KEY);
    assert!(log[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_retried() {
    let limited = Reply::Json {
        status: 429,
        headers: vec![("retry-after", "1".into())],
        body: json!({"error": {"message": "rate limited"}}).to_string(),
    };
    let (base, mock) = serve(vec![limited, ok("after the wait")]).await;
    let client = OpenAiCompatible::new(config(&base)).unwrap();

    let c = client.complete(request()).await.unwrap();
    assert_eq!(c.text, "after the wait");
    assert_eq!(c.attempts, 2);
    let log = mock.log.lock().unwrap();
    assert_eq!(log.len(), 2);
    let waited = log[1].at - log[0].at;
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    assert!(c.latency >= Duration::from_secs(1));
}

#[tokio::test]
async fn retry_after_is_capped() {
    let limited = Reply::Json {
        status: 503,
        headers: vec![("retry-after", "120".into())],
        body: "{}".into(),
    };
    let (base, mock) = serve(vec![limited, ok("soon")]).await;
    let mut cfg = config(&base);
    cfg.retry.max_retry_after = Duration::from_millis(200);
    let client = OpenAiCompatible::new(cfg).unwrap();

    let start = Instant::now();
    let c = client.complete(request()).await.unwrap();
    assert_eq!(c.text, "soon");
    assert_eq!(mock.count(), 2);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_500_is_retried() {
    let (base, mock) = serve(vec![status(500), status(502), ok("third time")]).await;
    let client = OpenAiCompatible::new(config(&base)).unwrap();
    let c = client.complete(request()).await.unwrap();
    assert_eq!(c.text, "third time");
    assert_eq!(c.attempts, 3);
    assert_eq!(mock.count(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (base, mock) = serve(vec![status(500)]).await;
    let client = OpenAiCompatible::new(config(&base)).unwrap();
    let err = client.complete(request()).await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::Status {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("status 500"),
        "the body is reported: {err}"
    );
    assert_eq!(mock.count(), 4, "1 attempt + max_retries 3");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_after_retries() {
    let (base, mock) = serve(vec![Reply::Sleep(Duration::from_secs(5))]).await;
    let mut cfg = config(&base);
    cfg.first_byte_timeout = Duration::from_millis(150);
    cfg.retry.max_retries = 2;
    let client = OpenAiCompatible::new(cfg).unwrap();

    let start = Instant::now();
    let err = client.complete(request()).await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, LlmError::Timeout { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("first-byte"), "{err}");
    assert_eq!(mock.count(), 3);
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn the_request_timeout_bounds_a_slow_stream() {
    // Headers and the first chunk come at once, then the stream dribbles past the limit.
    let body = sse_body(&["a", "b", "c", "d"], None, true, "\n");
    let chunks = awkward_chunks(body.as_bytes());
    let (base, mock) = serve(vec![Reply::Sse {
        chunks,
        gap: Duration::from_millis(50),
    }])
    .await;
    let mut cfg = config(&base);
    cfg.request_timeout = Duration::from_millis(300);
    let client = OpenAiCompatible::new(cfg).unwrap();
    let err = client
        .stream(request(), &mut |_: &str| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Timeout { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("request timeout"), "{err}");
    assert_eq!(
        mock.count(),
        4,
        "no text reached the caller, so it was retried"
    );
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let (base, mock) = serve(vec![status(400), ok("never")]).await;
    let client = OpenAiCompatible::new(config(&base)).unwrap();
    let err = client.complete(request()).await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::Status {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(mock.count(), 1);
    assert_eq!(client.circuit_state(), CircuitState::Closed);
    assert!(!err.is_remote_failure());
}

#[derive(Debug, Deserialize, PartialEq)]
struct SummaryOut {
    reason_for_call: String,
    actions_taken: Vec<String>,
    next_steps: Vec<String>,
}

fn summary_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "reason_for_call": {"type": "string"},
            "actions_taken": {"type": "array", "items": {"type": "string"}},
            "next_steps": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["reason_for_call", "actions_taken", "next_steps"],
        "additionalProperties": false
    })
}

#[tokio::test]
async fn structured_output_is_requested_and_parsed() {
    let content = json!({
        "reason_for_call": "billing dispute",
        "actions_taken": ["refunded €5"],
        "next_steps": ["email confirmation"]
    })
    .to_string();
    let (base, mock) = serve(vec![ok(&content)]).await;
    let client = OpenAiCompatible::new(config(&base)).unwrap();

    let c = client
        .complete(request().with_json_schema("call_summary", summary_schema()))
        .await
        .unwrap();
    let summary: SummaryOut = c.parse_json().unwrap();
    assert_eq!(
        summary,
        SummaryOut {
            reason_for_call: "billing dispute".into(),
            actions_taken: vec!["refunded €5".into()],
            next_steps: vec!["email confirmation".into()],
        }
    );
    let log = mock.log.lock().unwrap();
    assert_eq!(
        log[0].body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "call_summary", "schema": summary_schema(), "strict": true}})
    );
}

#[tokio::test]
async fn malformed_structured_output_is_a_clear_error() {
    let truncated = r#"{"reason_for_call": "billing", "actions_taken": ["#;
    let (base, mock) = serve(vec![ok(truncated), ok("{}")]).await;
    let client = OpenAiCompatible::new(config(&base)).unwrap();
    let err = client
        .complete(request().with_json_schema("call_summary", summary_schema()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::MalformedJson { len, .. } if len == truncated.len()),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("structured output is not valid JSON"), "{msg}");
    assert!(
        !msg.contains("billing"),
        "the output text stays out of the error: {msg}"
    );
    assert_eq!(mock.count(), 1);
    assert_eq!(
        client.circuit_state(),
        CircuitState::Closed,
        "the remote did answer"
    );

    // Valid JSON of the wrong shape is caught by the typed parse.
    let c = client
        .complete(request().with_json_schema("call_summary", summary_schema()))
        .await
        .unwrap();
    assert!(matches!(
        c.parse_json::<SummaryOut>(),
        Err(LlmError::MalformedJson { .. })
    ));
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_half_opens_after_the_cool_down() {
    let (base, mock) = serve(vec![status(500), status(500), status(503), ok("back")]).await;
    let mut cfg = config(&base);
    cfg.retry.max_retries = 0;
    cfg.breaker = BreakerConfig {
        failure_threshold: 2,
        cool_down: Duration::from_millis(300),
    };
    let client = OpenAiCompatible::new(cfg).unwrap();

    assert!(client.complete(request()).await.is_err());
    assert_eq!(client.circuit_state(), CircuitState::Closed);
    assert!(client.complete(request()).await.is_err());
    assert!(client.is_open());

    // Open: fails at once, the server is not called.
    let err = client.complete(request()).await.unwrap_err();
    assert!(
        matches!(err, LlmError::CircuitOpen { retry_in } if retry_in <= Duration::from_millis(300)),
        "{err}"
    );
    assert!(client.stream(request(), &mut |_: &str| {}).await.is_err());
    assert_eq!(mock.count(), 2);

    // Half-open: one probe goes through; it fails, so the circuit opens again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(client.circuit_state(), CircuitState::HalfOpen);
    assert!(!client.is_open());
    assert!(matches!(
        client.complete(request()).await,
        Err(LlmError::Status { status: 503, .. })
    ));
    assert_eq!(mock.count(), 3);
    assert!(client.is_open());
    assert!(matches!(
        client.complete(request()).await,
        Err(LlmError::CircuitOpen { .. })
    ));
    assert_eq!(mock.count(), 3);

    // The next probe succeeds: closed.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(client.complete(request()).await.unwrap().text, "back");
    assert_eq!(client.circuit_state(), CircuitState::Closed);
    assert_eq!(mock.count(), 4);
}
