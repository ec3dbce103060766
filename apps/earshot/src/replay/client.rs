//! The server's client: REST calls around a replay, the WebSocket, and what can go wrong.
//!
//! Every failure is one of two kinds ([`Failure`]): the server *refused* (a 4xx and its
//! `{"error": {code, message, field}}` body, or an `error` message on the socket), which no
//! retry will fix; or the server could not be *reached* (a network error, a 5xx, a dropped
//! socket), which a replay already under way retries until [`RESUME_WITHIN`] has passed.
//! The first requests of a replay (starting or finding the call, the first connection) are
//! not retried, so a wrong URL or token fails at once.

use std::time::Duration;

use domain::event::Speaker;
use domain::{AgentId, CallId};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a replay under way keeps trying to reach the server again (reconnecting the
/// WebSocket, retrying a REST call) before it gives up.
pub const RESUME_WITHIN: Duration = Duration::from_secs(60);
/// How long one request or one WebSocket handshake may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The error body of the REST API and of WebSocket `error` messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// The HTTP status, for a REST answer.
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl ServerError {
    /// Reads `{"error": {code, message, field}}`; anything else becomes a message of its own.
    pub fn from_body(status: Option<u16>, body: &str) -> Self {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        Self::from_value(status, &v["error"]).unwrap_or_else(|| Self {
            status,
            code: "unknown".into(),
            message: if body.trim().is_empty() {
                "(no body)".into()
            } else {
                body.trim().chars().take(500).collect()
            },
            field: None,
        })
    }

    pub fn from_value(status: Option<u16>, error: &Value) -> Option<Self> {
        Some(Self {
            status,
            code: error["code"].as_str()?.to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            field: error["field"].as_str().map(str::to_owned),
        })
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = self.status {
            write!(f, "HTTP {s} ")?;
        }
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field: {field})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The server refused a request: no retry will change its answer.
    #[error("{what}: the server refused: {error}")]
    Refused { what: String, error: ServerError },
    /// The server could not be reached, or answered with a server error.
    #[error("{what}: {detail}")]
    Unreachable { what: String, detail: String },
    /// Anything else that ends a replay (the connection lost for good, a summary that never
    /// came, a message the tool cannot read).
    #[error("{0}")]
    Fatal(String),
}

impl Failure {
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Unreachable { .. })
    }

    fn refused(what: &str, error: ServerError) -> Self {
        Failure::Refused {
            what: what.to_owned(),
            error,
        }
    }

    fn unreachable(what: &str, detail: impl std::fmt::Display) -> Self {
        Failure::Unreachable {
            what: what.to_owned(),
            detail: detail.to_string(),
        }
    }
}

/// One segment as `POST …/segments` and the `segments` message take it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WireSegment {
    pub segment_id: String,
    pub speaker: &'static str,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

pub fn speaker_name(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "agent",
        Speaker::Customer => "customer",
    }
}

/// A running server: its base URL and the token every request carries.
pub struct Server {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

/// What `GET /api/v1/calls/{id}` says about a call.
pub struct CallInfo {
    pub status: String,
    pub top_seq: u64,
}

impl Server {
    /// `base` is `http://host:port` or `https://…` (a trailing `/` is fine).
    pub fn new(base: &str, token: SecretString) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"));
        if rest.is_none_or(str::is_empty) {
            anyhow::bail!("--server {base:?}: expected http://HOST:PORT or https://HOST[:PORT]");
        }
        if token.expose_secret().trim().is_empty() {
            anyhow::bail!("no token: pass --token or set EARSHOT_TOKEN");
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self { http, base, token })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn ws_url(&self) -> String {
        let rest = self
            .base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| {
                self.base
                    .strip_prefix("http://")
                    .map(|r| format!("ws://{r}"))
            })
            .unwrap_or_else(|| self.base.clone());
        format!("{rest}/api/v1/ws")
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose_secret())
    }

    /// One request; a 2xx answers its JSON body (`null` when empty).
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let what = format!("{method} {path}");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.bearer());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::unreachable(&what, error_chain(&e)))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::unreachable(&what, error_chain(&e)))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Failure::unreachable(
                &what,
                ServerError::from_body(Some(status.as_u16()), &text),
            ));
        }
        if !status.is_success() {
            return Err(Failure::refused(
                &what,
                ServerError::from_body(Some(status.as_u16()), &text),
            ));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| Failure::Fatal(format!("{what}: the answer is not JSON: {e}")))
    }

    /// Starts a call for `agent` (source `replay`) with an id chosen here, so that a retried
    /// start is recognised by the server rather than starting a second call.
    pub async fn start_call(&self, agent: &AgentId) -> Result<CallId, Failure> {
        let id = CallId::new();
        let body = json!({"call_id": id, "agent_id": agent.as_str(), "source": "replay"});
        self.request(reqwest::Method::POST, "/api/v1/calls", Some(&body))
            .await?;
        Ok(id)
    }

    pub async fn call_info(&self, call: CallId) -> Result<CallInfo, Failure> {
        let path = format!("/api/v1/calls/{call}");
        let v = self.request(reqwest::Method::GET, &path, None).await?;
        match (v["state"]["status"].as_str(), v["top_seq"].as_u64()) {
            (Some(status), Some(top_seq)) => Ok(CallInfo {
                status: status.to_owned(),
                top_seq,
            }),
            _ => Err(Failure::Fatal(format!(
                "GET {path}: no state.status or top_seq in the answer"
            ))),
        }
    }

    /// Ends the call as completed. True if this ended it, false if it had already ended
    /// (which is also what a retry of an end that went through sees).
    pub async fn end_call(&self, call: CallId) -> Result<bool, Failure> {
        let path = format!("/api/v1/calls/{call}/end");
        match self
            .request(
                reqwest::Method::POST,
                &path,
                Some(&json!({"reason": "completed"})),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(Failure::Refused { error, .. }) if error.code == "call_ended" => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Posts one segment; answers the highest seq it was written at or caused.
    pub async fn post_segment(&self, call: CallId, seg: &WireSegment) -> Result<u64, Failure> {
        let path = format!("/api/v1/calls/{call}/segments");
        let body = serde_json::to_value(seg).expect("segments serialize");
        let v = self
            .request(reqwest::Method::POST, &path, Some(&body))
            .await?;
        match v["results"].get(0) {
            Some(r) if r["seq"].is_u64() => Ok(super::link::top_seq_of_result(r)),
            _ => Err(Failure::Fatal(format!(
                "POST {path}: no results[0].seq in {v}"
            ))),
        }
    }

    /// Opens the WebSocket (the token in the `Authorization` header, not the URL, so that
    /// it stays out of access logs) and reads its `hello`.
    pub async fn connect(&self) -> Result<Ws, Failure> {
        let what = format!("opening the WebSocket {}", self.ws_url());
        let mut req = self
            .ws_url()
            .into_client_request()
            .map_err(|e| Failure::Fatal(format!("{what}: {e}")))?;
        let bearer = HeaderValue::from_str(&self.bearer())
            .map_err(|_| Failure::Fatal("the token is not a valid header value".into()))?;
        req.headers_mut().insert(AUTHORIZATION, bearer);
        let connect = tokio_tungstenite::connect_async_with_config(req, None, true);
        let (mut ws, _) = match tokio::time::timeout(REQUEST_TIMEOUT, connect).await {
            Err(_) => return Err(Failure::unreachable(&what, "timed out")),
            Ok(Ok(ok)) => ok,
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let error = ServerError::from_body(Some(status), &body);
                return Err(if status >= 500 {
                    Failure::unreachable(&what, error)
                } else {
                    Failure::refused(&what, error)
                });
            }
            Ok(Err(e)) => return Err(Failure::unreachable(&what, error_chain(&e))),
        };
        // The first message is the hello.
        match tokio::time::timeout(REQUEST_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"hello\"") => Ok(ws),
            // A server that is shutting down still completes the handshake and then closes
            // with 1001: the next attempt reaches it restarted, or another node.
            Ok(Some(Ok(Message::Close(Some(frame)))))
                if super::link::resumable(u16::from(frame.code)) =>
            {
                Err(Failure::unreachable(
                    &what,
                    format!("closed before the hello ({} {})", frame.code, frame.reason),
                ))
            }
            Ok(Some(Ok(other))) => Err(Failure::Fatal(format!(
                "{what}: expected the hello, got {other:?}"
            ))),
            Ok(Some(Err(e))) => Err(Failure::unreachable(&what, e)),
            Ok(None) => Err(Failure::unreachable(&what, "closed before the hello")),
            Err(_) => Err(Failure::unreachable(&what, "no hello within 30 s")),
        }
    }

    /// [`Server::connect`], retried with backoff while the server cannot be reached, for
    /// [`RESUME_WITHIN`].
    pub async fn reconnect(&self) -> Result<Ws, Failure> {
        retrying(|| self.connect()).await
    }
}

/// Sends one JSON message.
pub async fn send_json(ws: &mut Ws, v: &Value) -> Result<(), String> {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .map_err(|e| e.to_string())
}

/// Runs `attempt` until it succeeds, fails for good, or [`RESUME_WITHIN`] has passed
/// (exponential backoff with jitter, 0.5 s doubling to 20 s, as docs/protocol.md asks).
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && started.elapsed() < RESUME_WITHIN => {
                let jitter = rand::rng().random_range(0..=delay.as_millis() as u64 / 5);
                tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
            Err(e) if e.is_transient() => {
                return Err(Failure::Fatal(format!(
                    "lost the server and could not reach it again within {} s: {e}",
                    RESUME_WITHIN.as_secs()
                )));
            }
            Err(e) => return Err(e),
        }
    }
}

/// An error with its causes, on one line ("connection refused" is usually the last).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_the_api_body_or_keep_the_text() {
        let e = ServerError::from_body(
            Some(422),
            r#"{"error": {"code": "invalid_field", "message": "agent_id: must not be empty", "field": "agent_id"}}"#,
        );
        assert_eq!(e.code, "invalid_field");
        assert_eq!(
            e.to_string(),
            "HTTP 422 invalid_field: agent_id: must not be empty (field: agent_id)"
        );
        let e = ServerError::from_body(Some(502), "Bad Gateway");
        assert_eq!(e.to_string(), "HTTP 502 unknown: Bad Gateway");
        let e = ServerError::from_body(None, "");
        assert_eq!(e.message, "(no body)");
    }

    #[test]
    fn server_urls() {
        let s = |u: &str| Server::new(u, SecretString::from("esk_x"));
        assert_eq!(
            s("http://127.0.0.1:8080/").unwrap().ws_url(),
            "ws://127.0.0.1:8080/api/v1/ws"
        );
        assert_eq!(
            s("https://assist.example.com").unwrap().ws_url(),
            "wss://assist.example.com/api/v1/ws"
        );
        assert!(s("127.0.0.1:8080").is_err());
        assert!(s("http://").is_err());
        assert!(Server::new("http://x", SecretString::from(" ")).is_err());
    }

    /// A real WebSocket server on a local port answers three opens: closed with 1001 (it is
    /// shutting down), closed with 1008, then the hello.
    #[tokio::test]
    async fn a_close_before_the_hello_is_retried_only_when_resumable() {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let answers = tokio::spawn(async move {
            let closes = [
                (
                    CloseCode::Away,
                    "server shutting down; reconnect and resume",
                ),
                (CloseCode::Policy, "not allowed"),
            ];
            for (code, reason) in closes {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                ws.send(Message::Close(Some(frame))).await.unwrap();
                // Wait for the client's side of the close before dropping the socket.
                while let Some(Ok(_)) = ws.next().await {}
            }
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let hello = r#"{"type": "hello", "protocol": 1}"#;
            ws.send(Message::Text(hello.into())).await.unwrap();
            ws
        });
        let server = Server::new(&base, SecretString::from("esk_x")).unwrap();

        let Err(away) = server.connect().await else {
            panic!("a close is not a hello")
        };
        assert!(away.is_transient(), "{away}");
        assert!(away.to_string().contains("1001"), "{away}");
        let Err(policy) = server.connect().await else {
            panic!("a close is not a hello")
        };
        assert!(!policy.is_transient(), "{policy}");
        server
            .connect()
            .await
            .expect("the third open gets the hello");
        answers.await.unwrap();
    }
}
