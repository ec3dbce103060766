//! PII never reaches the logs: a server process, at the most verbose logging a user would
//! set (`RUST_LOG=debug,sqlx=debug,tower_http=debug`, JSON lines), takes PII through every
//! edge — REST and WebSocket ingest, interim and final segments, a number read across two
//! segments, requests refused for every reason, malformed bodies, PII in URLs — and then its
//! whole output, stdout and stderr, is scanned. The log is checked to be really verbose (so
//! the test cannot pass because nothing was logged), and the PII to be really stored,
//! redacted.

use futures::SinkExt;
use serde_json::{Value, json};
use store::testkit::PgTestDb;

use crate::cross_node::{Exited, ServerProcess};

const PHONE: &str = "415-555-0132";
const PHONE_SPOKEN: &str = "four one five five five five zero one three two";
const CARD: &str = "4111 1111 1111 1111";
const EMAIL: &str = "john.smith@example.com";
const SSN: &str = "123-45-6789";

/// What must appear nowhere in the output: the values as said, and their digit runs.
const NEEDLES: &[&str] = &[
    PHONE,
    PHONE_SPOKEN,
    "five five five five zero one three two",
    "zero one three two",
    "555-0132",
    "4155550132",
    CARD,
    "1111 1111 1111",
    "4111111111111111",
    "four one one one",
    EMAIL,
    "john.smith",
    "example.com",
    SSN,
    "45-6789",
    "123456789",
];

/// The digit runs, also looked for in each line with spaces and dashes taken out (so
/// "4111-1111-1111-1111" or "415 555 0132" in a log line would be caught too).
const DIGIT_RUNS: &[&str] = &["4111111111111111", "4155550132", "123456789"];

/// The most verbose logging a user would set.
const VERBOSE: &str = "debug,sqlx=debug,tower_http=debug";

fn verbose(cmd: &mut tokio::process::Command, filter: &str) {
    cmd.env("RUST_LOG", filter)
        .env_remove("EARSHOT_LOG_FORMAT")
        .args(["--log-format", "json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pii_in_the_logs_sqlite() {
    let server = ServerProcess::start("sqlite", true, |cmd| {
        // The embedded store in the process's temporary data directory.
        cmd.env_remove("DATABASE_URL");
        verbose(cmd, VERBOSE);
    })
    .await;
    pii_through_every_edge(server, "sqlite", "sqlite").await;
}

/// The same at `RUST_LOG=trace`. tungstenite logs every received message, raw segment text
/// included, at trace ("Received message {…}"), and it would reach our log through the `log`
/// bridge: the server caps that library at debug whatever RUST_LOG says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pii_in_the_logs_at_trace_sqlite() {
    let server = ServerProcess::start("sqlite, trace", true, |cmd| {
        cmd.env_remove("DATABASE_URL");
        verbose(cmd, "trace");
    })
    .await;
    pii_through_every_edge(server, "sqlite", "sqlite, trace").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pii_in_the_logs_postgres() {
    let Some(db) = PgTestDb::create("api::pii_logs::no_pii_in_the_logs_postgres").await else {
        return;
    };
    let server = ServerProcess::start("postgres", true, |cmd| {
        cmd.env("DATABASE_URL", &db.url);
        verbose(cmd, VERBOSE);
    })
    .await;
    pii_through_every_edge(server, "postgres", "postgres").await;
    db.drop_db().await;
}

fn seg(id: &str, speaker: &str, text: &str, start_ms: u64) -> Value {
    json!({"segment_id": id, "speaker": speaker, "text": text, "start_ms": start_ms, "end_ms": start_ms + 1000})
}

/// Sends a raw body; answers (status, body text).
async fn post_raw(server: &ServerProcess, path: &str, token: &str, body: String) -> (u16, String) {
    let r = server
        .http
        .post(server.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the request is answered");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// The segment event with `id` in `events`.
fn segment_event<'a>(events: &'a [Value], id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == "segment_added" && e["data"]["segment_id"] == id)
        .unwrap_or_else(|| panic!("no segment {id} in the log"))
}

/// Asserts the stored segment `id` holds `placeholder` and a redaction of `kind`.
fn assert_redacted(events: &[Value], id: &str, placeholder: &str, kind: &str) {
    let e = segment_event(events, id);
    let text = e["data"]["text"].as_str().unwrap();
    assert!(text.contains(placeholder), "segment {id}: {text:?}");
    let kinds: Vec<&str> = e["data"]["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&kind), "segment {id}: {kinds:?} in {e}");
}

/// The needles found in `text`.
fn leaks(text: &str) -> Vec<&'static str> {
    let squeezed: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
    let mut found: Vec<&str> = NEEDLES
        .iter()
        .copied()
        .filter(|n| text.contains(n))
        .collect();
    for run in DIGIT_RUNS {
        if squeezed.contains(run) && !found.contains(run) {
            found.push(run);
        }
    }
    found
}

async fn pii_through_every_edge(server: ServerProcess, store: &str, backend: &str) {
    let admin = server.admin().to_owned();
    let source = server.token(&admin, "service", "dialer").await;
    let csr = server.token(&admin, "agent", "agent-7").await;
    let call = server.start_call(&source).await;
    let path = format!("/api/v1/calls/{call}/segments");

    // --- Accepted, over REST: one segment at a time, and a batch.
    let mut answers = Vec::new();
    answers.push(
        server
            .ingest(
                &source,
                &call,
                &seg(
                    "rest-phone",
                    "customer",
                    &format!("sure you can call me back at {PHONE}"),
                    0,
                ),
            )
            .await,
    );
    answers.push(
        server
            .ingest(
                &source,
                &call,
                &seg(
                    "rest-spoken",
                    "customer",
                    &format!("it's {PHONE_SPOKEN}"),
                    2_000,
                ),
            )
            .await,
    );
    answers.push(
        server
            .ingest(
                &source,
                &call,
                &json!({"segments": [
                    seg("rest-card", "customer", &format!("my card number is {CARD}"), 4_000),
                    seg("rest-email", "customer", &format!("email me at {EMAIL}"), 6_000),
                    seg("rest-ssn", "customer", &format!("my social security number is {SSN}"), 8_000),
                ]}),
            )
            .await,
    );
    // An interim hypothesis is redacted too (on its own).
    answers.push(
        server
            .ingest(
                &source,
                &call,
                &json!({"segment_id": "rest-interim", "speaker": "customer",
                        "text": format!("call me at {PHONE}"), "start_ms": 10_000,
                        "end_ms": 10_500, "is_final": false}),
            )
            .await,
    );

    // --- Accepted, over the WebSocket, including a card read across two segments.
    let mut ws = server.ws(&source).await;
    ws.send(json!({
        "type": "segments", "call_id": call, "ref": "w1",
        "segments": [
            seg("ws-phone", "customer", &format!("my cell is {PHONE}"), 12_000),
            seg("ws-spoken", "customer", &format!("that's {PHONE_SPOKEN}"), 14_000),
            seg("ws-card", "customer", &format!("the card is {CARD}"), 16_000),
            seg("ws-email", "customer", &format!("it's {EMAIL}"), 18_000),
            seg("ws-ssn", "customer", &format!("social is {SSN}"), 20_000),
            seg("ws-split-1", "customer", "my card number is four one one one", 22_000),
            seg("ws-split-2", "customer", "one one one one one one one one one one one one", 24_000),
        ],
    }))
    .await;
    let ack = ws.next_json().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["results"].as_array().unwrap().len(), 7, "{ack}");
    for a in &answers {
        assert!(leaks(&a.to_string()).is_empty(), "an ingest answer: {a}");
    }
    assert!(leaks(&ack.to_string()).is_empty(), "{ack}");

    // --- Refused, over REST, each carrying PII.
    let expect = async |what: &str, status: u16, answer: (u16, String)| {
        assert_eq!(answer.0, status, "{what}: {}", answer.1);
    };
    expect(
        "an invalid speaker",
        422,
        post_raw(
            &server,
            &path,
            &source,
            seg(
                "bad-speaker",
                "robot",
                &format!("my card is {CARD}"),
                30_000,
            )
            .to_string(),
        )
        .await,
    )
    .await;
    let oversized = format!("my card is {CARD} and my phone is {PHONE} ").repeat(120);
    assert!(oversized.chars().count() > domain::command::MAX_SEGMENT_CHARS);
    expect(
        "an oversized text",
        413,
        post_raw(
            &server,
            &path,
            &source,
            seg("too-long", "customer", &oversized, 30_000).to_string(),
        )
        .await,
    )
    .await;
    // Refused by the pipeline (logged there as "ingest refused"): a final segment that goes
    // back in time, and a final segment id reused with other content.
    expect(
        "a segment out of order",
        422,
        post_raw(
            &server,
            &path,
            &source,
            seg("late", "customer", &format!("my ssn is {SSN}"), 1_000).to_string(),
        )
        .await,
    )
    .await;
    expect(
        "a reused segment id",
        409,
        post_raw(
            &server,
            &path,
            &source,
            seg("rest-phone", "agent", &format!("your email is {EMAIL}"), 0).to_string(),
        )
        .await,
    )
    .await;
    expect(
        "malformed JSON",
        400,
        post_raw(
            &server,
            &path,
            &source,
            format!(
                r#"{{"segment_id": "broken", "speaker": "customer", "text": "my card is {CARD} and {EMAIL}"#
            ),
        )
        .await,
    )
    .await;
    expect(
        "a number where the text goes",
        422,
        post_raw(
            &server,
            &path,
            &source,
            r#"{"segment_id": "typed", "speaker": "customer", "text": 4111111111111111, "start_ms": 30000, "end_ms": 31000}"#.to_owned(),
        )
        .await,
    )
    .await;
    expect(
        "an unknown field",
        422,
        post_raw(
            &server,
            &path,
            &source,
            format!(
                r#"{{"segment_id": "extra", "speaker": "customer", "text": "hi", "start_ms": 30000, "end_ms": 31000, "ssn": "{SSN}"}}"#
            ),
        )
        .await,
    )
    .await;
    expect(
        "a bad token",
        401,
        post_raw(
            &server,
            &path,
            "esk_0000000000000000000000000000000000000000",
            seg(
                "no-auth",
                "customer",
                &format!("my phone is {PHONE}"),
                30_000,
            )
            .to_string(),
        )
        .await,
    )
    .await;
    let unknown_call = uuid::Uuid::now_v7();
    expect(
        "an unknown call",
        404,
        post_raw(
            &server,
            &format!("/api/v1/calls/{unknown_call}/segments"),
            &source,
            seg("nowhere", "customer", &format!("my card is {CARD}"), 30_000).to_string(),
        )
        .await,
    )
    .await;
    // A call that ended takes no more segments.
    let ended = server.start_call(&source).await;
    let (status, body) = server
        .post(
            &format!("/api/v1/calls/{ended}/end"),
            &source,
            &json!({"reason": "completed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A supervisor's free-text note on the call: redacted like a segment before it is stored,
    // and never logged.
    let lead = server.token(&admin, "supervisor", "lead-1").await;
    let (status, body) = server
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/calls/{ended}/disposition"),
            &lead,
            Some(&json!({"disposition": "booked", "note": format!("call back on {PHONE}")})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, summary) = server
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/calls/{ended}/summary"),
            &lead,
            None,
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    let note = summary["disposition"]["note"].as_str().unwrap();
    assert_eq!(note, "call back on [PHONE]", "the note is stored redacted");
    expect(
        "an ended call",
        409,
        post_raw(
            &server,
            &format!("/api/v1/calls/{ended}/segments"),
            &source,
            seg("after-end", "customer", &format!("my ssn is {SSN}"), 0).to_string(),
        )
        .await,
    )
    .await;
    // PII in the URL: the path and the query string.
    expect(
        "an email as the call id",
        422,
        post_raw(
            &server,
            &format!("/api/v1/calls/{EMAIL}/segments"),
            &source,
            seg("by-email", "customer", "hello", 0).to_string(),
        )
        .await,
    )
    .await;
    let (status, _) = server
        .get(
            &format!("/api/v1/lookup/{PHONE}?card=4111111111111111"),
            &source,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .get(
            &format!("/api/v1/calls/{call}/events?after={PHONE}"),
            &source,
        )
        .await;
    assert_eq!(status, 422);

    // --- Refused, over the WebSocket.
    let ws_refusals = [
        json!({"type": "segments", "call_id": call, "ref": "bad-speaker",
               "segments": [seg("ws-bad", "robot", &format!("my card is {CARD}"), 40_000)]}),
        json!({"type": "segments", "call_id": ended, "ref": "ended",
               "segments": [seg("ws-after-end", "customer", &format!("my ssn is {SSN}"), 0)]}),
        json!({"type": "segments", "call_id": call, "ref": "late",
               "segments": [seg("ws-late", "customer", &format!("email {EMAIL}"), 0)]}),
        json!({"type": "segments", "call_id": call, "ref": "too-long",
               "segments": [seg("ws-long", "customer", &oversized, 40_000)]}),
        json!({"type": "subscribe", "call_id": PHONE, "ref": "sub"}),
        json!({"type": "lookup", "phone": PHONE, "card": CARD}),
    ];
    for msg in ws_refusals {
        ws.send(msg.clone()).await;
        let answer = ws.next_json().await;
        assert_eq!(answer["type"], "error", "{msg} → {answer}");
    }
    ws.stream
        .send(tokio_tungstenite::tungstenite::Message::Text(
            format!(r#"{{"type": "segments", "call_id": "{call}", "segments": [{{"text": "{CARD} {EMAIL}"#)
                .into(),
        ))
        .await
        .unwrap();
    let answer = ws.next_json().await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["error"]["code"], "malformed_json", "{answer}");

    // --- The PII was taken in, and stored redacted.
    let events = server.events(&csr, &call, 0).await;
    let log = serde_json::to_string(&events).unwrap();
    assert_eq!(leaks(&log), Vec::<&str>::new(), "the stored log: {log}");
    for (id, placeholder, kind) in [
        ("rest-phone", "[PHONE]", "phone"),
        ("rest-spoken", "[PHONE]", "phone"),
        ("rest-card", "[CARD]", "card"),
        ("rest-email", "[EMAIL]", "email"),
        ("rest-ssn", "[SSN]", "ssn"),
        ("rest-interim", "[PHONE]", "phone"),
        ("ws-phone", "[PHONE]", "phone"),
        ("ws-spoken", "[PHONE]", "phone"),
        ("ws-card", "[CARD]", "card"),
        ("ws-email", "[EMAIL]", "email"),
        ("ws-ssn", "[SSN]", "ssn"),
        ("ws-split-1", "[CARD]", "card"),
        ("ws-split-2", "[CARD]", "card"),
    ] {
        assert_redacted(&events, id, placeholder, kind);
    }
    let (status, state) = server.get(&format!("/api/v1/calls/{call}"), &csr).await;
    assert_eq!(status, 200);
    assert_eq!(leaks(&state.to_string()), Vec::<&str>::new(), "{state}");
    let (status, listing) = server.get("/api/v1/calls", &csr).await;
    assert_eq!(status, 200);
    assert_eq!(leaks(&listing.to_string()), Vec::<&str>::new(), "{listing}");

    // --- Stop, and read everything the process wrote.
    drop(ws);
    let Exited {
        status,
        stdout,
        stderr,
    } = server.stop().await;
    assert!(status.success(), "{backend}: exit {status:?}");
    assert!(
        stdout[0].contains(&format!("(store: {store} at ")),
        "{backend}: {}",
        stdout[0]
    );

    for (stream, lines) in [("stdout", &stdout), ("stderr", &stderr)] {
        let leaked: Vec<String> = lines
            .iter()
            .filter_map(|l| {
                let found = leaks(l);
                (!found.is_empty()).then(|| format!("{found:?} in {l}"))
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "{backend}: PII in the server's {stream}:\n{}",
            leaked.join("\n")
        );
    }
    // Credentials neither: the tokens made by the API never, the admin token only once, on
    // the console at the first start.
    let all = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    for token in [&source, &csr, &lead] {
        assert!(
            !all.contains(token.as_str()),
            "{backend}: a token in the output"
        );
    }
    assert_eq!(all.matches(admin.as_str()).count(), 1, "{backend}");

    // The log was on, at debug, and saw every path above: the test is not vacuous.
    let lines: Vec<Value> = stderr
        .iter()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|_| panic!("{backend}: not a JSON log line: {l}"))
        })
        .collect();
    assert!(
        lines.len() >= 100,
        "{backend}: only {} log lines",
        lines.len()
    );
    let has = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        assert!(
            lines.iter().any(pred),
            "{backend}: no log line {what}:\n{}",
            stderr.join("\n")
        );
    };
    let request = |l: &Value, route: &str, status: u64| {
        l["level"] == "DEBUG"
            && l["message"] == "request"
            && l["status"] == status
            && l["span"]["route"] == route
    };
    let segments_route = "/api/v1/calls/{call_id}/segments";
    has("of an accepted ingest", &|l| {
        request(l, segments_route, 200)
    });
    for status in [400, 401, 404, 409, 413, 422] {
        has(&format!("of an ingest refused with {status}"), &|l| {
            request(l, segments_route, status)
        });
    }
    has("of a refusal in the pipeline", &|l| {
        l["level"] == "INFO" && l["message"] == "ingest refused"
    });
    has("of the WebSocket", &|l| {
        l["level"] == "DEBUG" && l["message"] == "websocket open"
    });
    has("of sqlx statements", &|l| {
        l["level"] == "DEBUG"
            && l["target"] == "sqlx::query"
            && l["db.statement"]
                .as_str()
                .is_some_and(|s| s.contains("call_events"))
    });
}
