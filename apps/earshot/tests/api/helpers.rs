use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use domain::{CallEvent, CallId, NewEvent, TenantId, testkit};
use earshot::server::{Application, ServerConfig};
use futures::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use store::testkit::TestStore;
use store::{ExpectedVersion, Store};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    /// The admin token of the `default` tenant, made by the first start.
    pub admin: String,
    pub http: reqwest::Client,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/api/v1/ws?access_token={token}", self.addr)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.expect("the server task does not panic")
    }

    /// Sends `body` as JSON with `token`; answers (status, JSON body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("the request is answered");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// Makes a token of the default tenant.
    pub async fn token(&self, role: &str, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/tokens",
                &self.admin,
                json!({"role": role, "name": name}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Starts a call on the default ruleset; returns its id.
    pub async fn start_call(&self, token: &str) -> String {
        let (status, body) = self
            .post("/api/v1/calls", token, json!({"agent_id": "agent-7"}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["call_id"].as_str().unwrap().to_owned()
    }

    /// Ingests one final segment; answers the response body (asserting 200).
    pub async fn say(
        &self,
        token: &str,
        call: &str,
        id: &str,
        speaker: &str,
        text: &str,
        start_ms: u64,
    ) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/calls/{call}/segments"),
                token,
                json!({"segment_id": id, "speaker": speaker, "text": text, "start_ms": start_ms, "end_ms": start_ms + 1000}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Ingests a batch of segments; answers the response body (asserting 200).
    pub async fn ingest(&self, token: &str, call: &str, segments: Vec<Value>) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/v1/calls/{call}/segments"),
                token,
                json!({"segments": segments}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn ws(&self, token: &str) -> Ws {
        Ws::connect(&self.ws_url(token)).await
    }

    /// The call's events (up to 1000) in seq order, read with the admin token.
    pub async fn events(&self, call: &str) -> Vec<Value> {
        let (status, body) = self
            .get(
                &format!("/api/v1/calls/{call}/events?limit=1000"),
                &self.admin,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().unwrap().clone()
    }
}

/// Builds the server on port 0 over `store` (a fresh one: the first start makes the
/// default tenant and its admin token) and runs it in the background.
pub async fn spawn_app(store: Arc<dyn Store>) -> TestApp {
    spawn_app_with(store, config()).await
}

/// The server's defaults without the assist worker, whose suggestions and summaries would
/// interleave with the events these tests count seq by seq (the assist tests turn it on).
pub fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.assist.enabled = false;
    config
}

pub async fn spawn_app_with(store: Arc<dyn Store>, config: ServerConfig) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        earshot::telemetry::init(earshot::telemetry::LogFormat::Pretty);
    }
    let app = Application::build("127.0.0.1:0".parse().unwrap(), store, config)
        .await
        .expect("the app builds");
    let admin = app
        .first_admin_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned())
        .unwrap_or_default();
    let addr = app.addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until(shutdown.clone()));
    TestApp {
        addr,
        shutdown,
        task,
        admin,
        http: reqwest::Client::new(),
    }
}

/// A WebSocket client speaking the hub protocol.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How long a test waits for a message it expects.
pub const WAIT: Duration = Duration::from_secs(10);

impl Ws {
    pub async fn connect(url: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the websocket opens");
        let mut ws = Ws { stream };
        let hello = ws.next_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        ws
    }

    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("the message is sent");
    }

    /// The next JSON message (pings are answered by tungstenite as it reads).
    pub async fn next_json(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a message within the wait")
                .expect("the socket is open")
                .expect("the socket reads");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Close(c) => panic!("closed by the server: {c:?}"),
                _ => continue,
            }
        }
    }

    /// Reads until a close frame; answers its code.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a close within the wait");
            match msg {
                Some(Ok(Message::Close(Some(c)))) => return c.code.into(),
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    }

    /// Reads events, checking they continue `last` without gaps, until a close frame; answers
    /// the last seq read and the close code.
    pub async fn events_until_close(&mut self, mut last: u64) -> (u64, u16) {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.stream.next())
                .await
                .expect("a close within 30 s");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let m: Value = serde_json::from_str(t.as_str()).unwrap();
                    assert_eq!(m["seq"], last + 1, "no gaps before the close: {m}");
                    last += 1;
                }
                Some(Ok(Message::Close(Some(c)))) => return (last, u16::from(c.code)),
                Some(Ok(_)) => {}
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    }

    pub async fn subscribe(&mut self, call: &str, since: u64) -> (Vec<Value>, Value) {
        self.send(json!({"type": "subscribe", "call_id": call, "since_seq": since}))
            .await;
        let mut replayed = Vec::new();
        loop {
            let m = self.next_json().await;
            match m["type"].as_str() {
                Some("event") => replayed.push(m),
                Some("subscribed") => return (replayed, m),
                _ => panic!("unexpected message while subscribing: {m}"),
            }
        }
    }

    /// Events until one of `kind` arrives (included).
    pub async fn events_until(&mut self, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let m = self.next_json().await;
            if m["type"] == "event" {
                let done = m["kind"] == kind;
                out.push(m);
                if done {
                    return out;
                }
            }
        }
    }
}

/// A finished call with three segments and an alert.
pub async fn seed_call(db: &TestStore) -> CallId {
    let store = db.open().await;
    let call = CallId::new();
    let events: Vec<CallEvent> = vec![
        testkit::started("acme-hvac", "agent-7"),
        testkit::segment(1, "my ac stopped cooling last night", true),
        testkit::segment(2, "i guarantee we'll have it fixed today", true),
        testkit::alert(),
    ];
    store
        .append(
            call,
            &TenantId::parse("acme-hvac").unwrap(),
            ExpectedVersion::Exact(domain::Seq::ZERO),
            events.into_iter().map(NewEvent::new).collect(),
        )
        .await
        .unwrap();
    call
}

/// Runs an async test body `fn(Arc<dyn Store>) -> impl Future` on the embedded store and on
/// Postgres, as two tests `sqlite` and `postgres` in a module named after the body.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = store::testkit::TestStore::sqlite();
                super::$name(db.open_store().await).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = store::testkit::TestStore::postgres(module_path!()).await else {
                    return;
                };
                super::$name(db.open_store().await).await;
                db.finish().await;
            }
        }
    )*};
}
