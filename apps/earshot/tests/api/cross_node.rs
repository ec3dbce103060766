//! Two server processes on one Postgres database: an event ingested on one reaches a WebSocket
//! subscriber of the other, in seq order, with no gap and no duplicate, as fast as the
//! database's `NOTIFY` carries the wake-up (not at the hub's one-second safety poll).
//!
//! Everything here runs `earshot serve` as a user runs it: real processes, their stdout read
//! for the address and the one-time admin token, stopped with SIGTERM. [`ServerProcess`] is
//! shared with `pii_logs`.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use store::testkit::PgTestDb;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::helpers::{WAIT, Ws};

/// How long a process may take to print its address (it migrates the store first).
const STARTUP: Duration = Duration::from_secs(60);
/// How long a process may take to exit after SIGTERM.
const STOPPING: Duration = Duration::from_secs(20);

/// One `earshot serve` process on a free port, its stdout and stderr collected line by line.
pub(crate) struct ServerProcess {
    name: &'static str,
    child: Child,
    pub addr: SocketAddr,
    /// The admin token printed on the first start (`None` when the store had a tenant).
    pub admin: Option<String>,
    pub http: reqwest::Client,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    /// `EARSHOT_DATA_DIR`: the embedded store's directory when no `DATABASE_URL` is given.
    _data_dir: tempfile::TempDir,
}

/// What a stopped process left.
pub(crate) struct Exited {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

/// Reads `from` to its end, line by line (lossily: a non-UTF-8 byte must not end the
/// capture), into `into`, and each line to `tx` as well.
fn collect(
    from: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::UnboundedSender<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned();
                    if let Some(tx) = &tx {
                        let _ = tx.send(line.clone());
                    }
                    lock(&into).push(line);
                }
            }
        }
    })
}

fn lock(lines: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_token(s: &str) -> bool {
    s.len() == 44 && s.starts_with("esk_") && s[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl ServerProcess {
    /// Starts `earshot serve --listen 127.0.0.1:0`, with a fresh temporary directory as
    /// `EARSHOT_DATA_DIR` and then `configure` applied to the command (environment, more
    /// arguments), and waits for its address; with `first_start`, also
    /// for the admin token the first start prints.
    pub(crate) async fn start(
        name: &'static str,
        first_start: bool,
        configure: impl FnOnce(&mut Command),
    ) -> ServerProcess {
        let data_dir = tempfile::tempdir().expect("a temp dir");
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("earshot"));
        // The assist worker's posts would interleave with the seqs these tests check.
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--no-assist"])
            .env_remove("EARSHOT_LISTEN")
            .env("EARSHOT_DATA_DIR", data_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("earshot serve starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone(), Some(tx)),
            collect(child.stderr.take().unwrap(), stderr.clone(), None),
        ];
        let mut server = ServerProcess {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: None,
            http: reqwest::Client::new(),
            stdout,
            stderr,
            readers,
            _data_dir: data_dir,
        };

        let deadline = tokio::time::Instant::now() + STARTUP;
        let mut next_line = async || match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err("it exited"),
            Err(_) => Err("it printed nothing within the startup time"),
        };
        let first = match next_line().await {
            Ok(l) => l,
            Err(why) => server.fail(why).await,
        };
        let Some(addr) = first
            .strip_prefix("earshot listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
        else {
            server
                .fail(&format!("its first line is not the address: {first:?}"))
                .await
        };
        server.addr = addr;
        if first_start {
            loop {
                match next_line().await {
                    Ok(l) if is_token(l.trim()) => {
                        server.admin = Some(l.trim().to_owned());
                        break;
                    }
                    Ok(_) => {}
                    Err(why) => server.fail(&format!("no admin token: {why}")).await,
                }
            }
        }
        server
    }

    /// Kills the process and panics with what it wrote.
    async fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill().await;
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        panic!(
            "earshot serve ({}): {why}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.name,
            lock(&self.stdout).join("\n"),
            lock(&self.stderr).join("\n"),
        );
    }

    pub(crate) fn admin(&self) -> &str {
        self.admin
            .as_deref()
            .expect("this process made the admin token")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/api/v1/ws?access_token={token}", self.addr)
    }

    pub(crate) async fn ws(&self, token: &str) -> Ws {
        Ws::connect(&self.ws_url(token)).await
    }

    /// Sends `body` as JSON with `token`; answers (status, JSON body or `Null`).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("the request is answered");
        let status = r.status().as_u16();
        let text = r.text().await.expect("the body reads");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// Makes a token of the default tenant with `admin`.
    pub(crate) async fn token(&self, admin: &str, role: &str, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/tokens",
                admin,
                &json!({"role": role, "name": name}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Starts a call on the tenant's active ruleset; answers its id.
    pub(crate) async fn start_call(&self, token: &str) -> String {
        let (status, body) = self
            .post("/api/v1/calls", token, &json!({"agent_id": "agent-7"}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["call_id"].as_str().unwrap().to_owned()
    }

    /// Posts segments (one, or `{"segments": […]}`), asserting 200; answers the body.
    pub(crate) async fn ingest(&self, token: &str, call: &str, body: &Value) -> Value {
        let (status, resp) = self
            .post(&format!("/api/v1/calls/{call}/segments"), token, body)
            .await;
        assert_eq!(status, 200, "{} refused {body}: {resp}", self.name);
        resp
    }

    /// The call's whole log, as `GET …/events` pages it.
    pub(crate) async fn events(&self, token: &str, call: &str, after: u64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = after;
        loop {
            let (status, page) = self
                .get(
                    &format!("/api/v1/calls/{call}/events?after={after}&limit=1000"),
                    token,
                )
                .await;
            assert_eq!(status, 200, "{page}");
            out.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next_after"].as_u64() {
                Some(n) => after = n,
                None => return out,
            }
        }
    }

    /// SIGTERM, then waits for the exit and for the end of both outputs.
    pub(crate) async fn stop(mut self) -> Exited {
        if let Some(pid) = self.child.id() {
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .expect("kill runs");
            assert!(sent.success(), "SIGTERM to {}", self.name);
        }
        let status = match tokio::time::timeout(STOPPING, self.child.wait()).await {
            Ok(s) => s.expect("waiting for the process"),
            Err(_) => self.fail("it did not exit after SIGTERM").await,
        };
        for r in self.readers.drain(..) {
            tokio::time::timeout(WAIT, r)
                .await
                .expect("the outputs end with the process")
                .expect("the output readers do not panic");
        }
        Exited {
            status,
            stdout: std::mem::take(&mut *lock(&self.stdout)),
            stderr: std::mem::take(&mut *lock(&self.stderr)),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A failing test shows what the server said (the process is killed on drop).
        if std::thread::panicking() {
            let tail = |lines: &Mutex<Vec<String>>| {
                let lines = lock(lines);
                let from = lines.len().saturating_sub(40);
                lines[from..].join("\n")
            };
            eprintln!(
                "--- earshot serve ({}) at {}, stdout:\n{}\n--- stderr (last 40 lines):\n{}",
                self.name,
                self.addr,
                tail(&self.stdout),
                tail(&self.stderr)
            );
        }
    }
}

/// A server process on the Postgres database at `url`.
async fn node(name: &'static str, url: &str, first_start: bool) -> ServerProcess {
    ServerProcess::start(name, first_start, |cmd| {
        cmd.env("DATABASE_URL", url)
            .env("RUST_LOG", "info,sqlx=warn")
            .args(["--log-format", "json"]);
    })
    .await
}

/// Two nodes on one fresh database: A made the tenant (and printed its admin token), B found
/// it and printed none.
async fn two_nodes(test: &str) -> Option<(PgTestDb, ServerProcess, ServerProcess)> {
    let db = PgTestDb::create(test).await?;
    let a = node("node A", &db.url, true).await;
    let b = node("node B", &db.url, false).await;
    assert!(a.admin.is_some());
    Some((db, a, b))
}

/// Stops both nodes (cleanly, exit 0) and drops the database.
async fn finish(db: PgTestDb, nodes: Vec<ServerProcess>) {
    for n in nodes {
        let name = n.name;
        let exited = n.stop().await;
        assert!(
            exited.status.success(),
            "{name} exited with {:?} after SIGTERM; stderr:\n{}",
            exited.status,
            exited.stderr.join("\n")
        );
        if name != "node A" {
            // Only the first start makes (and shows) an admin token.
            assert!(
                !exited.stdout.iter().any(|l| l.contains("esk_")),
                "{name} printed a token: {:?}",
                exited.stdout
            );
        }
    }
    db.drop_db().await;
}

/// The seqs an ingest answer says were written, in order: each segment's, then what it
/// caused. Retries (deduplicated) wrote nothing.
fn written(resp: &Value) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for r in resp["results"].as_array().expect("results") {
        if r["deduplicated"] == true {
            continue;
        }
        out.push((r["seq"].as_u64().unwrap(), "segment_added".to_owned()));
        for c in r["caused"].as_array().unwrap() {
            out.push((
                c["seq"].as_u64().unwrap(),
                c["kind"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// Reads the subscriber's next messages: exactly the events `expected` (seq, kind), in order,
/// of `call`. Anything else (another seq: a gap or a duplicate; another message) fails.
async fn expect_events(ws: &mut Ws, call: &str, expected: &[(u64, String)]) -> Vec<Value> {
    let mut got = Vec::with_capacity(expected.len());
    for (seq, kind) in expected {
        let m = ws.next_json().await;
        assert_eq!(m["type"], "event", "expected event {seq} ({kind}), got {m}");
        assert_eq!(m["call_id"], call, "{m}");
        assert_eq!(
            m["seq"].as_u64(),
            Some(*seq),
            "expected seq {seq} ({kind}) next, got {m}"
        );
        assert_eq!(m["kind"], kind.as_str(), "{m}");
        got.push(m);
    }
    got
}

/// What was said on the test calls: the first customer line, then the agent's prohibited
/// claim (raises `alert_raised` under the default home-services ruleset), then more.
fn script(prefix: &str) -> Vec<(String, &'static str, &'static str)> {
    [
        ("customer", "hi my ac stopped cooling last night"),
        (
            "agent",
            "thanks for calling northwind heating and air this call may be recorded",
        ),
        ("agent", "I guarantee we'll have it fixed today"),
        ("customer", "great what is the address you have on file"),
        ("agent", "we can book a technician for tomorrow morning"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (speaker, text))| (format!("{prefix}-{i}"), speaker, text))
    .collect()
}

fn segment(id: &str, speaker: &str, text: &str, start_ms: u64) -> Value {
    json!({"segment_id": id, "speaker": speaker, "text": text, "start_ms": start_ms, "end_ms": start_ms + 1500})
}

/// Runs the script into `call` on `writer` (one segment per request, then a batch, then a
/// WebSocket `segments` message) while `subscriber`, a WebSocket on the other node, follows
/// the call. Each ingest's events must arrive there, exactly, before the next is sent.
/// Answers every event received and the time each ingest took to reach the subscriber.
async fn relay(
    writer: &ServerProcess,
    token: &str,
    call: &str,
    subscriber: &mut Ws,
    prefix: &str,
) -> (Vec<Value>, Vec<Duration>) {
    let mut received = Vec::new();
    let mut latencies = Vec::new();
    let lines = script(prefix);
    let mut start_ms = 0;
    for (id, speaker, text) in &lines {
        let sent = Instant::now();
        let resp = writer
            .ingest(token, call, &segment(id, speaker, text, start_ms))
            .await;
        start_ms += 2_000;
        received.extend(expect_events(subscriber, call, &written(&resp)).await);
        latencies.push(sent.elapsed());
    }

    // A batch: several segments (and what they cause) in one transaction.
    let batch: Vec<Value> = (0..3)
        .map(|i| {
            segment(
                &format!("{prefix}-batch-{i}"),
                "customer",
                &format!("ok number {i} sounds good"),
                start_ms + i * 2_000,
            )
        })
        .collect();
    start_ms += 6_000;
    let resp = writer
        .ingest(token, call, &json!({"segments": batch}))
        .await;
    let expected = written(&resp);
    assert_eq!(expected.len(), 3, "{resp}");
    received.extend(expect_events(subscriber, call, &expected).await);

    // The same over the writer's WebSocket, as a streaming source sends it.
    let mut source = writer.ws(token).await;
    source
        .send(json!({
            "type": "segments", "call_id": call, "ref": "s1",
            "segments": [segment(&format!("{prefix}-ws"), "agent", "see you tomorrow then", start_ms)],
        }))
        .await;
    let ack = source.next_json().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["ref"], "s1");
    received.extend(expect_events(subscriber, call, &written(&ack)).await);
    (received, latencies)
}

/// The checks on what a subscriber of one node got for a call written on the other: every
/// event from seq 2 on, contiguous, the alert among them, each identical to the log as the
/// writer's node serves it.
async fn check_stream(writer: &ServerProcess, token: &str, call: &str, received: &[Value]) {
    let seqs: Vec<u64> = received
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let top = 1 + received.len() as u64;
    assert_eq!(
        seqs,
        (2..=top).collect::<Vec<_>>(),
        "in seq order, no gaps, no duplicates"
    );
    let alert = received
        .iter()
        .find(|e| e["kind"] == "alert_raised")
        .expect("the prohibited claim raised an alert");
    assert_eq!(alert["data"]["rule"]["rule_id"], "no-guarantee", "{alert}");
    let log = writer.events(token, call, 1).await;
    assert_eq!(
        log, received,
        "what the other node delivered is the log, event for event"
    );
}

/// Events written on one node reach a subscriber of the other promptly, in order, without
/// gaps or duplicates; both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_fanout_postgres() {
    let Some((db, a, b)) = two_nodes("api::cross_node::cross_node_fanout_postgres").await else {
        return;
    };
    let source = a.token(a.admin(), "service", "dialer").await;
    let csr = a.token(a.admin(), "agent", "agent-7").await;

    // A → B.
    let call = a.start_call(&source).await;
    let mut panel = b.ws(&csr).await;
    let (replayed, subscribed) = panel.subscribe(&call, 0).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["kind"], "call_started");
    assert_eq!(subscribed["top_seq"], 1, "{subscribed}");
    let (received, mut latencies) = relay(&a, &source, &call, &mut panel, "ab").await;
    check_stream(&a, &csr, &call, &received).await;

    // The end, on A: the call's last events reach B too, right after the others.
    let top = 1 + received.len() as u64;
    let (status, end) = a
        .post(
            &format!("/api/v1/calls/{call}/end"),
            &source,
            &json!({"reason": "completed"}),
        )
        .await;
    assert_eq!(status, 200, "{end}");
    let expected: Vec<(u64, String)> = end["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["seq"].as_u64().unwrap(),
                w["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(expected[0], (top + 1, "call_ended".to_owned()));
    expect_events(&mut panel, &call, &expected).await;

    // B → A, on a call started on B.
    let call2 = b.start_call(&source).await;
    let mut panel2 = a.ws(&csr).await;
    let (replayed, subscribed) = panel2.subscribe(&call2, 0).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(subscribed["top_seq"], 1, "{subscribed}");
    let (received2, latencies2) = relay(&b, &source, &call2, &mut panel2, "ba").await;
    check_stream(&b, &csr, &call2, &received2).await;
    // Each node serves the other's writes from the shared log: the same events.
    assert_eq!(a.events(&csr, &call2, 1).await, received2);

    // The wake-up crosses nodes over LISTEN/NOTIFY. Without it, the subscriber's node would
    // find each event only at its hub's one-second poll, which restarts right after it
    // delivers: since each segment is sent as soon as the previous one arrived, every one
    // would then take about a second (it takes milliseconds with the wake-up).
    latencies.extend(latencies2);
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(750),
        "events reach the other node at its poll, not on the wake-up: {latencies:?}"
    );

    drop((panel, panel2));
    finish(db, vec![a, b]).await;
}

/// A subscriber that comes to the other node after the fact, from seq 2, gets the events
/// after seq 2 replayed from the log, then `subscribed` with the call's top seq, then the
/// live events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_resume_from_seq_postgres() {
    let Some((db, a, b)) = two_nodes("api::cross_node::cross_node_resume_from_seq_postgres").await
    else {
        return;
    };
    let source = a.token(a.admin(), "service", "dialer").await;
    let csr = a.token(a.admin(), "agent", "agent-7").await;
    let call = a.start_call(&source).await;
    let mut start_ms = 0;
    let mut top = 1;
    for (id, speaker, text) in script("r") {
        let resp = a
            .ingest(&source, &call, &segment(&id, speaker, text, start_ms))
            .await;
        start_ms += 2_000;
        top = written(&resp).last().unwrap().0;
    }
    let log = a.events(&csr, &call, 0).await;
    assert_eq!(log.len() as u64, top);
    assert!(log.iter().any(|e| e["kind"] == "alert_raised"));

    let mut late = b.ws(&csr).await;
    let (replayed, subscribed) = late.subscribe(&call, 2).await;
    assert_eq!(
        replayed,
        log[2..],
        "exactly the events after seq 2, in order, as the log holds them"
    );
    assert_eq!(subscribed["call_id"], call.as_str());
    assert_eq!(subscribed["since_seq"], 2);
    assert_eq!(subscribed["top_seq"], top, "{subscribed}");
    assert_eq!(subscribed["recovered"], top - 2, "{subscribed}");

    // Then live, on from the top, whichever node writes.
    let resp = a
        .ingest(
            &source,
            &call,
            &segment("r-live-a", "customer", "thank you", start_ms),
        )
        .await;
    let expected = written(&resp);
    assert_eq!(expected[0].0, top + 1);
    expect_events(&mut late, &call, &expected).await;
    let resp = b
        .ingest(
            &source,
            &call,
            &segment("r-live-b", "agent", "you are welcome", start_ms + 2_000),
        )
        .await;
    let expected2 = written(&resp);
    assert_eq!(expected2[0].0, expected.last().unwrap().0 + 1, "{resp}");
    expect_events(&mut late, &call, &expected2).await;

    // A subscriber from the top gets no backlog at all.
    let now = expected2.last().unwrap().0;
    let mut fresh = b.ws(&csr).await;
    let (replayed, subscribed) = fresh.subscribe(&call, now).await;
    assert!(replayed.is_empty(), "{replayed:?}");
    assert_eq!(subscribed["top_seq"], now);

    drop((late, fresh));
    finish(db, vec![a, b]).await;
}

/// One call written through both nodes in turn: each node's cached session is behind the
/// log after the other wrote, so its append loses the race, reloads the call and goes
/// through. Subscribers on both nodes see the same contiguous stream, with one alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_one_call_written_on_both_nodes_postgres() {
    let Some((db, a, b)) =
        two_nodes("api::cross_node::cross_node_one_call_written_on_both_nodes_postgres").await
    else {
        return;
    };
    let source = a.token(a.admin(), "service", "dialer").await;
    let csr = a.token(a.admin(), "agent", "agent-7").await;
    let call = a.start_call(&source).await;
    let mut on_a = a.ws(&csr).await;
    let mut on_b = b.ws(&csr).await;
    on_a.subscribe(&call, 1).await;
    on_b.subscribe(&call, 1).await;

    let mut all = Vec::new();
    for (i, (id, speaker, text)) in script("both").into_iter().enumerate() {
        let writer = if i % 2 == 0 { &a } else { &b };
        let resp = writer
            .ingest(
                &source,
                &call,
                &segment(&id, speaker, text, i as u64 * 2_000),
            )
            .await;
        let expected = written(&resp);
        assert_eq!(
            expected[0].0,
            all.last().map(|(s, _)| s + 1).unwrap_or(2),
            "the next seq, whichever node wrote the previous one: {resp}"
        );
        all.extend(expected);
    }
    let got_a = expect_events(&mut on_a, &call, &all).await;
    let got_b = expect_events(&mut on_b, &call, &all).await;
    assert_eq!(got_a, got_b);
    assert_eq!(
        all.iter().filter(|(_, k)| k == "alert_raised").count(),
        1,
        "{all:?}"
    );

    // A retry sent to the other node is recognised there: nothing new is written.
    let (id, speaker, text) = &script("both")[0];
    let resp = b
        .ingest(&source, &call, &segment(id, speaker, text, 0))
        .await;
    assert_eq!(resp["results"][0]["deduplicated"], true, "{resp}");
    assert_eq!(resp["results"][0]["seq"], 2, "{resp}");

    let (_, state_a) = a.get(&format!("/api/v1/calls/{call}"), &csr).await;
    let (_, state_b) = b.get(&format!("/api/v1/calls/{call}"), &csr).await;
    assert_eq!(state_a["top_seq"], all.last().unwrap().0);
    assert_eq!(state_a, state_b, "both nodes rebuild the same state");

    drop((on_a, on_b));
    finish(db, vec![a, b]).await;
}

/// `earshot serve --no-assist` and a separate `earshot worker` process on one Postgres
/// database, the worker asking a remote provider (a local Chat Completions server): the
/// customer's segment gets the provider's suggestion and the ended call its summary, written
/// by the worker process and seen by the server's subscribers; the worker speaks HTTP/2
/// without TLS to it (`--llm-http2-prior-knowledge`). SIGTERM stops the worker cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_worker_serves_a_server_without_one_postgres() {
    use crate::fake_llm::{FakeLlm, Step};
    let Some(db) =
        PgTestDb::create("api::cross_node::standalone_worker_serves_a_server_without_one_postgres")
            .await
    else {
        return;
    };
    let llm = FakeLlm::start(
        vec![Step::stream(vec!["Let me ", "book that ", "for you."])],
        vec![Step::Complete(
            json!({"reason_for_call": "The heater is broken.", "actions_taken": [],
                   "next_steps": ["A technician visits tomorrow."], "disposition": "booked",
                   "confidence": 0.8})
            .to_string(),
        )],
    )
    .await;
    let server = node("node A", &db.url, true).await;
    let base = llm.base_url();
    // Not a server: it prints no address; `ServerProcess` is for `serve`, so run it here.
    let mut worker = Command::new(assert_cmd::cargo::cargo_bin("earshot"));
    worker
        .args([
            "worker",
            "--llm-base-url",
            &base,
            "--llm-model",
            "fake-model",
        ])
        .args(["--llm-provider", "fake", "--assist-debounce-ms", "50"])
        .arg("--llm-http2-prior-knowledge")
        .env("DATABASE_URL", &db.url)
        .env("EARSHOT_LLM_API_KEY", "sk-test-not-a-real-key")
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut worker = worker.spawn().expect("earshot worker starts");
    let worker_err = Arc::new(Mutex::new(Vec::new()));
    let reader = collect(worker.stderr.take().unwrap(), worker_err.clone(), None);

    let admin = server.admin().to_owned();
    let source = server.token(&admin, "service", "dialer").await;
    let csr = server.token(&admin, "agent", "agent-7").await;
    let call = server.start_call(&source).await;
    let mut ws = server.ws(&csr).await;
    ws.subscribe(&call, 0).await;
    server
        .ingest(
            &source,
            &call,
            &segment(
                "c1",
                "customer",
                "my heater is broken, can someone come tomorrow?",
                0,
            ),
        )
        .await;
    let got = ws.events_until("reply_suggested").await;
    let s = &got.last().unwrap()["data"];
    assert_eq!(s["text"], "Let me book that for you.");
    assert_eq!(s["provider"], "fake");
    server
        .ingest(
            &source,
            &call,
            &segment("a1", "agent", "Booked for tomorrow morning.", 3_000),
        )
        .await;
    server
        .ingest(&source, &call, &segment("c2", "customer", "thanks", 6_000))
        .await;
    let (status, body) = server
        .post(
            &format!("/api/v1/calls/{call}/end"),
            &source,
            &json!({"reason": "completed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let got = ws.events_until("summary_generated").await;
    let summary = &got.last().unwrap()["data"];
    assert_eq!(summary["provider"], "fake");
    assert_eq!(summary["disposition"], "booked");
    let (status, body) = server
        .get(&format!("/api/v1/calls/{call}/summary"), &csr)
        .await;
    assert_eq!(status, 200, "{body}");
    // `--llm-http2-prior-knowledge`: every request spoke HTTP/2 (the fake also speaks 1.1).
    let versions = llm.versions();
    assert!(versions.len() >= 2, "{versions:?}");
    assert!(
        versions.iter().all(|v| *v == axum::http::Version::HTTP_2),
        "{versions:?}"
    );

    let pid = worker.id().expect("running").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(STOPPING, worker.wait())
        .await
        .expect("the worker stops after SIGTERM")
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let log = lock(&worker_err).join("\n");
    assert!(status.success(), "worker exited with {status:?}:\n{log}");
    assert!(log.contains("assist worker started"), "{log}");
    assert!(
        !log.contains("sk-test-not-a-real-key"),
        "the key was logged:\n{log}"
    );
    drop(ws);
    finish(db, vec![server]).await;
}
