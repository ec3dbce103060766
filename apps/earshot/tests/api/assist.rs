//! The assist worker through the whole server: triggers from ingested segments, posts
//! through the pipeline, the offline provider by default, and a remote provider over real
//! HTTP (a local server speaking the Chat Completions wire protocol, [`FakeLlm`]): streamed
//! drafts, `Retry-After`, server errors, timeouts, malformed structured output, the circuit
//! breaker, cancellation of stale requests, and several workers on one log.

use std::sync::Arc;
use std::time::Duration;

use earshot::server::ServerConfig;
use earshot::worker::{AssistConfig, Worker};
use serde_json::{Value, json};
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::fake_llm::{FakeLlm, Step};
use crate::helpers::{TestApp, Ws, spawn_app, spawn_app_with};
use crate::on_both_stores;

/// The server with its assist worker, debounced briefly, on the offline provider.
fn offline() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.assist.worker.debounce = Duration::from_millis(50);
    c
}

/// The server with its assist worker on `llm`: short timeouts and backoffs, a breaker that
/// opens after 3 failed calls.
fn remote(llm: &FakeLlm) -> ServerConfig {
    let mut c = offline();
    let mut p = llm::OpenAiConfig::new(llm.base_url(), "fake-model");
    p.provider_name = "fake".into();
    p.first_byte_timeout = Duration::from_millis(700);
    p.request_timeout = Duration::from_secs(3);
    p.retry = llm::RetryPolicy {
        max_retries: 2,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(3),
    };
    p.breaker = llm::BreakerConfig {
        failure_threshold: 3,
        cool_down: Duration::from_secs(60),
    };
    c.assist.provider = Some(p);
    c
}

/// A valid structured summary, as a model would answer.
fn summary_json() -> String {
    json!({
        "reason_for_call": "The air conditioner stopped cooling; the customer's number is 415 555 0134.",
        "actions_taken": ["Booked a technician visit for Tuesday morning."],
        "next_steps": ["The technician calls before arriving."],
        "disposition": "booked",
        "confidence": 0.9
    })
    .to_string()
}

/// The call's events (up to 1000), in seq order.
async fn events(app: &TestApp, call: &str) -> Vec<Value> {
    app.events(call).await
}

/// A worker with its own pipeline on `store`, as a separate `earshot worker` process has.
fn standalone_worker(store: &Arc<dyn Store>, config: &AssistConfig) -> Arc<Worker> {
    let engines = Arc::new(earshot::engines::Engines::new(store.clone()));
    let pipeline = Arc::new(earshot::pipeline::Pipeline::new(
        store.clone(),
        engines.clone(),
        redact::Redactor::new(redact::Policy::default()).unwrap(),
        4_000,
    ));
    Worker::build(store.clone(), pipeline, engines, None, config).unwrap()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// Polls the call's events until `done` holds (10 s at most).
async fn wait_for(
    app: &TestApp,
    call: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let e = events(app, call).await;
        if done(&e) {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} within 10 s; events: {:#?}",
            e.iter().map(|e| e["kind"].clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn end(app: &TestApp, token: &str, call: &str) {
    let (status, body) = app
        .post(
            &format!("/api/v1/calls/{call}/end"),
            token,
            json!({"reason": "completed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn seq_of(resp: &Value) -> u64 {
    resp["results"][0]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("a written segment: {resp}"))
}

on_both_stores!(offline_provider_suggests_and_summarizes);

/// No key, no network: a customer segment gets a suggestion from the ruleset and the call's
/// state, the end of the call a summary and a disposition; a call ended before anyone spoke
/// still gets a sensible summary.
async fn offline_provider_suggests_and_summarizes(store: Arc<dyn Store>) {
    let app = spawn_app_with(store, offline()).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let said = app
        .say(
            &t,
            &call,
            "c1",
            "customer",
            "Hi, my AC stopped cooling last night and the unit is rattling.",
            0,
        )
        .await;
    let seq = seq_of(&said);
    let e = wait_for(&app, &call, "suggestion", |e| {
        !of_kind(e, "reply_suggested").is_empty()
    })
    .await;
    let s = &of_kind(&e, "reply_suggested")[0]["data"];
    assert_eq!(s["provider"], "offline");
    assert_eq!(s["model"], "extractive-v1");
    assert!(s["based_on_seq"].as_u64().unwrap() >= seq, "{s}");
    assert!(!s["text"].as_str().unwrap().is_empty());
    assert!(of_kind(&e, "generation_failed").is_empty());

    app.say(
        &t,
        &call,
        "a1",
        "agent",
        "I've booked a technician for Tuesday morning, you're all set.",
        5_000,
    )
    .await;
    end(&app, &t, &call).await;
    let e = wait_for(&app, &call, "summary", |e| {
        !of_kind(e, "summary_generated").is_empty()
    })
    .await;
    let summary = &of_kind(&e, "summary_generated")[0]["data"];
    assert_eq!(summary["provider"], "offline");
    assert_eq!(summary["disposition"], "booked", "{summary}");
    assert!(
        summary["summary"]["reason_for_call"]
            .as_str()
            .unwrap()
            .contains("AC stopped cooling")
    );
    let (status, body) = app.get(&format!("/api/v1/calls/{call}/summary"), &t).await;
    assert_eq!(status, 200, "{body}");

    // A call that ended before anyone spoke.
    let short = app.start_call(&t).await;
    end(&app, &t, &short).await;
    let e = wait_for(&app, &short, "summary", |e| {
        !of_kind(e, "summary_generated").is_empty()
    })
    .await;
    let summary = &of_kind(&e, "summary_generated")[0]["data"];
    assert_eq!(
        summary["summary"]["reason_for_call"],
        assist::NO_CUSTOMER_SPEECH
    );
    assert_eq!(summary["disposition"], "other");
    app.stop().await.unwrap();
}

/// The `suggestion_draft` messages a follower gets, up to the `reply_suggested` event, and
/// that event.
async fn drafts_until_reply(ws: &mut Ws) -> (Vec<Value>, Value) {
    let mut drafts = Vec::new();
    loop {
        let m = ws.next_json().await;
        match m["type"].as_str() {
            Some("suggestion_draft") => drafts.push(m),
            Some("event") if m["kind"] == "reply_suggested" => return (drafts, m),
            _ => {}
        }
    }
}

/// A streaming provider: the call's followers get the reply as drafts while it is generated,
/// then the stored suggestion with the provider, model, tokens and latency. Only redacted
/// text reaches the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_reply_reaches_followers_and_only_redacted_text_leaves() {
    let db = store::testkit::TestStore::sqlite();
    let llm = FakeLlm::start(
        vec![Step::stream(vec![
            "Sorry ",
            "to hear ",
            "that. ",
            "When did it start?",
        ])],
        vec![Step::Complete(summary_json())],
    )
    .await;
    // Every streamed piece on its own (coalescing has its own test below).
    let mut config = remote(&llm);
    config.assist.worker.draft_interval = Duration::ZERO;
    let app = spawn_app_with(db.open_store().await, config).await;
    let t = app.token("service", "dialer").await;
    let csr = app.token("agent", "agent-7").await;
    let call = app.start_call(&t).await;
    let mut ws = app.ws(&csr).await;
    ws.subscribe(&call, 0).await;
    let said = app
        .say(
            &t,
            &call,
            "c1",
            "customer",
            "my number is 415 555 0134 and the AC is broken",
            0,
        )
        .await;
    let seq = seq_of(&said);

    let (drafts, suggestion) = drafts_until_reply(&mut ws).await;
    let data = &suggestion["data"];
    assert_eq!(data["text"], "Sorry to hear that. When did it start?");
    assert_eq!(data["provider"], "fake");
    assert_eq!(data["model"], "fake-model");
    assert_eq!(data["prompt_tokens"], 321);
    assert_eq!(data["completion_tokens"], 45);
    assert!(data["based_on_seq"].as_u64().unwrap() >= seq);
    assert_eq!(drafts.len(), 4, "{drafts:?}");
    for (i, d) in drafts.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["suggestion_id"], data["suggestion_id"]);
        assert_eq!(d["call_id"], call.as_str());
    }
    let joined: String = drafts
        .iter()
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "Sorry to hear that. When did it start?");

    // The summary: structured output, redacted on the way back in too.
    app.say(
        &t,
        &call,
        "a1",
        "agent",
        "I booked a technician for Tuesday.",
        3_000,
    )
    .await;
    app.say(&t, &call, "c2", "customer", "Great, thanks.", 6_000)
        .await;
    end(&app, &t, &call).await;
    let e = wait_for(&app, &call, "summary", |e| {
        !of_kind(e, "summary_generated").is_empty()
    })
    .await;
    let summary = &of_kind(&e, "summary_generated")[0]["data"];
    assert_eq!(summary["provider"], "fake");
    assert_eq!(summary["disposition"], "booked");
    let reason = summary["summary"]["reason_for_call"].as_str().unwrap();
    assert!(
        reason.contains("[PHONE]") && !reason.contains("0134"),
        "{reason}"
    );

    let requests = llm.requests();
    let reply_req = &requests[0].1;
    assert_eq!(reply_req["stream"], true);
    assert_eq!(reply_req["model"], "fake-model");
    let structured: Vec<_> = requests
        .iter()
        .filter(|(_, r)| r.get("response_format").is_some())
        .collect();
    assert_eq!(structured.len(), 1);
    assert_eq!(structured[0].1["response_format"]["type"], "json_schema");
    for (_, r) in &requests {
        let text = r["messages"].to_string();
        assert!(text.contains("[PHONE]"), "{text}");
        assert!(
            !text.contains("0134") && !text.contains("415 555"),
            "raw PII sent: {text}"
        );
    }
    app.stop().await.unwrap();
    db.finish().await;
}

/// The reply the server streams for one customer segment, with pieces `gap` apart, and
/// drafts coalesced at `interval`: each draft as (index, delta), and the stored reply event.
async fn coalesced_reply(gap: Duration, interval: Duration) -> (Vec<(u64, String)>, Value) {
    let db = store::testkit::TestStore::sqlite();
    let llm = FakeLlm::start(
        vec![Step::Stream {
            deltas: vec!["Sorry ", "to hear ", "that. ", "When did it start?"],
            first_byte: Duration::ZERO,
            gap,
        }],
        vec![Step::Complete(summary_json())],
    )
    .await;
    let mut config = remote(&llm);
    config.assist.worker.draft_interval = interval;
    // A slow stream may take longer than the tests' usual request timeout.
    config.assist.provider.as_mut().unwrap().request_timeout = Duration::from_secs(20);
    let app = spawn_app_with(db.open_store().await, config).await;
    let t = app.token("service", "dialer").await;
    let csr = app.token("agent", "agent-7").await;
    let call = app.start_call(&t).await;
    let mut ws = app.ws(&csr).await;
    ws.subscribe(&call, 0).await;
    app.say(&t, &call, "c1", "customer", "the AC is broken", 0)
        .await;
    let (drafts, suggestion) = drafts_until_reply(&mut ws).await;
    for d in &drafts {
        assert_eq!(d["suggestion_id"], suggestion["data"]["suggestion_id"]);
    }
    let pieces = drafts
        .iter()
        .map(|d| {
            (
                d["index"].as_u64().unwrap(),
                d["delta"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    app.stop().await.unwrap();
    db.finish().await;
    (pieces, suggestion)
}

/// Streamed pieces are coalesced: the first goes out at once, the ones that follow within
/// the draft interval wait and go out together at the end of the stream, before the stored
/// reply; the pieces still add up to the reply, in index order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_pieces_are_coalesced_within_the_draft_interval() {
    // Longer than the whole stream: everything after the first piece is held to the end.
    let (pieces, suggestion) =
        coalesced_reply(Duration::from_millis(10), Duration::from_secs(60)).await;
    assert_eq!(
        pieces,
        [
            (0, "Sorry ".to_owned()),
            (1, "to hear that. When did it start?".to_owned())
        ]
    );
    assert_eq!(
        suggestion["data"]["text"],
        "Sorry to hear that. When did it start?"
    );
}

/// A held piece goes out when its interval is over, even while the provider pauses: pieces
/// 1 s apart with a 2.5 s interval come as the first (at 0 s), the second and third together
/// (due at 2.5 s, not held until the fourth at 3 s), then the fourth at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_piece_goes_out_when_its_interval_is_over() {
    let (pieces, suggestion) =
        coalesced_reply(Duration::from_secs(1), Duration::from_millis(2_500)).await;
    assert_eq!(
        pieces,
        [
            (0, "Sorry ".to_owned()),
            (1, "to hear that. ".to_owned()),
            (2, "When did it start?".to_owned())
        ]
    );
    assert_eq!(
        suggestion["data"]["text"],
        "Sorry to hear that. When did it start?"
    );
}

/// A 429 with `Retry-After: 1` is retried after (at least) that second, and the retry's
/// answer is posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let db = store::testkit::TestStore::sqlite();
    let llm = FakeLlm::start(
        vec![
            Step::Status(429, Some(1)),
            Step::stream(vec!["Let me check that."]),
        ],
        vec![Step::Complete(summary_json())],
    )
    .await;
    let app = spawn_app_with(db.open_store().await, remote(&llm)).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    app.say(
        &t,
        &call,
        "c1",
        "customer",
        "is the technician still coming today?",
        0,
    )
    .await;
    let e = wait_for(&app, &call, "suggestion", |e| {
        !of_kind(e, "reply_suggested").is_empty()
    })
    .await;
    let s = &of_kind(&e, "reply_suggested")[0]["data"];
    assert_eq!(s["provider"], "fake");
    assert_eq!(s["text"], "Let me check that.");
    assert!(of_kind(&e, "generation_failed").is_empty());
    let r = llm.requests();
    // (A third request is a retry after the tests' short first-byte timeout on a busy
    // machine; what matters is the wait between the 429 and the next try.)
    assert!(r.len() >= 2, "{} requests", r.len());
    let waited = r[1].0 - r[0].0;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    app.stop().await.unwrap();
    db.finish().await;
}

/// A provider answering 500 is retried (3 attempts), then the offline suggestion is posted
/// with a `generation_failed` that says what happened; after 3 such calls the circuit opens
/// and the provider is not called at all (attempts 0), still with an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_fall_back_to_offline_and_open_the_circuit() {
    let db = store::testkit::TestStore::sqlite();
    let llm = FakeLlm::start(vec![Step::Status(500, None)], vec![Step::Status(500, None)]).await;
    let app = spawn_app_with(db.open_store().await, remote(&llm)).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let lines = [
        "my furnace is making a banging noise",
        "that's too expensive, I need to think about it",
        "can you come tomorrow?",
        "and what about the thermostat?",
    ];
    for (i, line) in lines.iter().enumerate() {
        app.say(
            &t,
            &call,
            &format!("c{i}"),
            "customer",
            line,
            i as u64 * 5_000,
        )
        .await;
        let want = i + 1;
        wait_for(&app, &call, "fallback suggestion", |e| {
            of_kind(e, "reply_suggested").len() == want
        })
        .await;
    }
    let e = events(&app, &call).await;
    let failures = of_kind(&e, "generation_failed");
    let suggestions = of_kind(&e, "reply_suggested");
    assert_eq!(failures.len(), 4);
    for (i, (f, s)) in failures.iter().zip(&suggestions).enumerate() {
        let f = &f["data"];
        assert_eq!(f["task"], "reply");
        assert_eq!(f["provider"], "fake");
        assert_eq!(f["fallback"], "offline");
        assert_eq!(s["data"]["provider"], "offline");
        assert_eq!(f["based_on_seq"], s["data"]["based_on_seq"]);
        if i < 3 {
            assert_eq!(f["attempts"], 3, "{f}");
            assert!(f["error"].as_str().unwrap().contains("HTTP 500"), "{f}");
        } else {
            assert_eq!(f["attempts"], 0, "{f}");
            assert!(f["error"].as_str().unwrap().contains("circuit open"), "{f}");
        }
    }
    // The failure and its fallback are written together, the failure first.
    assert_eq!(
        failures[0]["seq"].as_u64().unwrap() + 1,
        suggestions[0]["seq"].as_u64().unwrap()
    );
    assert_eq!(llm.requests().len(), 9, "3 calls × 3 attempts, then none");

    // The summary falls back too (the circuit is open), and says so.
    end(&app, &t, &call).await;
    let e = wait_for(&app, &call, "summary", |e| {
        !of_kind(e, "summary_generated").is_empty()
    })
    .await;
    let f = of_kind(&e, "generation_failed");
    let last = &f.last().unwrap()["data"];
    assert_eq!(last["task"], "summary");
    assert_eq!(last["fallback"], "offline");
    assert_eq!(
        of_kind(&e, "summary_generated")[0]["data"]["provider"],
        "offline"
    );
    app.stop().await.unwrap();
    db.finish().await;
}

/// A provider that never answers: each attempt times out at the first-byte limit, and the
/// offline reply goes out with the timeout on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_fall_back_to_offline() {
    let db = store::testkit::TestStore::sqlite();
    let llm = FakeLlm::start(
        vec![Step::Hang(Duration::from_secs(30))],
        vec![Step::Complete(summary_json())],
    )
    .await;
    let app = spawn_app_with(db.open_store().await, remote(&llm)).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    app.say(&t, &call, "c1", "customer", "my water heater is leaking", 0)
        .await;
    let e = wait_for(&app, &call, "suggestion", |e| {
        !of_kind(e, "reply_suggested").is_empty()
    })
    .await;
    let f = &of_kind(&e, "generation_failed")[0]["data"];
    assert!(f["error"].as_str().unwrap().contains("timed out"), "{f}");
    assert_eq!(f["attempts"], 3);
    assert_eq!(
        of_kind(&e, "reply_suggested")[0]["data"]["provider"],
        "offline"
    );
    app.stop().await.unwrap();
    db.finish().await;
}

/// Structured output that is not valid JSON is asked for again; if the retry is good it is
/// posted with no failure, if it is bad too the offline summary goes out with a
/// `generation_failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_summaries_are_retried_then_fall_back() {
    let db = store::testkit::TestStore::sqlite();
    let llm = FakeLlm::start(
        vec![Step::stream(vec!["Sure."])],
        vec![
            Step::Complete("{\"reason_for_call\": \"cut off".into()),
            Step::Complete(summary_json()),
            Step::Complete("Here is your summary: the customer called.".into()),
        ],
    )
    .await;
    let mut config = remote(&llm);
    // Agents only: no replies in the way.
    config.assist.worker.debounce = Duration::from_millis(10);
    let app = spawn_app_with(db.open_store().await, config).await;
    let t = app.token("service", "dialer").await;
    let script = [
        "thanks for calling, how can I help?",
        "I see, the AC is not cooling.",
        "I booked a technician for Tuesday morning, you're all set.",
    ];
    let mut calls = Vec::new();
    for _ in 0..2 {
        let call = app.start_call(&t).await;
        for (i, line) in script.iter().enumerate() {
            app.say(&t, &call, &format!("a{i}"), "agent", line, i as u64 * 3_000)
                .await;
        }
        end(&app, &t, &call).await;
        wait_for(&app, &call, "summary", |e| {
            !of_kind(e, "summary_generated").is_empty()
        })
        .await;
        calls.push(call);
    }
    // First call: bad, then good.
    let e = events(&app, &calls[0]).await;
    assert!(
        of_kind(&e, "generation_failed").is_empty(),
        "{:?}",
        of_kind(&e, "generation_failed")
    );
    assert_eq!(
        of_kind(&e, "summary_generated")[0]["data"]["provider"],
        "fake"
    );
    // Second call: bad twice (the last step repeats).
    let e = events(&app, &calls[1]).await;
    let f = &of_kind(&e, "generation_failed")[0]["data"];
    assert_eq!(f["task"], "summary");
    assert_eq!(f["attempts"], 2);
    assert!(
        f["error"].as_str().unwrap().contains("not valid JSON"),
        "{f}"
    );
    assert_eq!(f["fallback"], "offline");
    let s = &of_kind(&e, "summary_generated")[0]["data"];
    assert_eq!(s["provider"], "offline");
    assert_eq!(s["disposition"], "booked");
    assert_eq!(llm.requests().len(), 4);
    app.stop().await.unwrap();
    db.finish().await;
}

/// A customer segment arriving while a reply is being generated cancels that request (the
/// provider sees the connection dropped); only the newer segment gets a suggestion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_segment_cancels_the_stale_request() {
    let db = store::testkit::TestStore::sqlite();
    let llm = FakeLlm::start(
        vec![
            Step::Stream {
                deltas: vec!["Stale ", "answer."],
                first_byte: Duration::from_millis(300),
                gap: Duration::from_millis(2_000),
            },
            Step::stream(vec!["Fresh answer."]),
        ],
        vec![Step::Complete(summary_json())],
    )
    .await;
    let app = spawn_app_with(db.open_store().await, remote(&llm)).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    app.say(&t, &call, "c1", "customer", "my AC is broken", 0)
        .await;
    llm.wait_for_requests(1).await;
    // The first answer has started streaming when the customer speaks again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = seq_of(
        &app.say(
            &t,
            &call,
            "c2",
            "customer",
            "actually it's the heater",
            2_000,
        )
        .await,
    );
    let e = wait_for(&app, &call, "suggestion", |e| {
        !of_kind(e, "reply_suggested").is_empty()
    })
    .await;
    let s = &of_kind(&e, "reply_suggested")[0]["data"];
    assert_eq!(s["text"], "Fresh answer.");
    assert!(s["based_on_seq"].as_u64().unwrap() >= second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while llm.dropped() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stale request was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Long after the stale answer would have finished, still one suggestion.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        of_kind(&events(&app, &call).await, "reply_suggested").len(),
        1
    );
    assert_eq!(llm.requests().len(), 2);
    app.stop().await.unwrap();
    db.finish().await;
}

on_both_stores!(competing_workers_post_each_trigger_once);

/// Three workers with their own pipelines (as three processes would be) on one log, all
/// taking every call: each trigger is posted once. The shared checkpoint moves past the work,
/// and a worker that re-reads the log from the start posts nothing new.
async fn competing_workers_post_each_trigger_once(store: Arc<dyn Store>) {
    // The server takes the segments; the workers are separate.
    let app = spawn_app(store.clone()).await;
    let shutdown = CancellationToken::new();
    let mut config = AssistConfig::default();
    config.worker.debounce = Duration::from_millis(0);
    let workers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(standalone_worker(&store, &config).run(shutdown.clone())))
        .collect();

    let t = app.token("service", "dialer").await;
    let mut calls = Vec::new();
    for c in 0..4 {
        let call = app.start_call(&t).await;
        for i in 0..3u64 {
            app.say(
                &t,
                &call,
                &format!("c{i}"),
                "customer",
                "that's too expensive, can you do better?",
                i * 4_000,
            )
            .await;
            app.say(
                &t,
                &call,
                &format!("a{i}"),
                "agent",
                "let me see what I can do",
                i * 4_000 + 2_000,
            )
            .await;
            // Let the workers answer the customer before the next line.
            wait_for(&app, &call, "suggestion", |e| {
                of_kind(e, "reply_suggested").len() as u64 > i
            })
            .await;
        }
        if c % 2 == 0 {
            end(&app, &t, &call).await;
        }
        calls.push(call);
    }
    for (c, call) in calls.iter().enumerate() {
        let e = if c % 2 == 0 {
            wait_for(&app, call, "summary", |e| {
                !of_kind(e, "summary_generated").is_empty()
            })
            .await
        } else {
            events(&app, call).await
        };
        let suggestions = of_kind(&e, "reply_suggested");
        assert_eq!(suggestions.len(), 3, "one per customer segment");
        let mut ids: Vec<_> = suggestions
            .iter()
            .map(|s| s["data"]["suggestion_id"].clone())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }
    // Give stragglers time to (wrongly) post again, then check once more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (c, call) in calls.iter().enumerate() {
        let e = events(&app, call).await;
        assert_eq!(of_kind(&e, "reply_suggested").len(), 3);
        assert_eq!(
            of_kind(&e, "summary_generated").len(),
            usize::from(c % 2 == 0)
        );
        assert!(of_kind(&e, "generation_failed").is_empty());
    }
    let head = store.head().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.load_checkpoint("assist").await.unwrap() < head {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the checkpoint stays behind the head"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    for w in workers {
        w.await.unwrap();
    }

    // A worker that re-reads the whole log (its checkpoint lost) finds every trigger
    // answered already: nothing new is written.
    store
        .save_checkpoint("assist", domain::GlobalPosition::ZERO)
        .await
        .unwrap();
    let again = CancellationToken::new();
    let task = tokio::spawn(standalone_worker(&store, &config).run(again.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.load_checkpoint("assist").await.unwrap() < head {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the re-read did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.head().await.unwrap(), head);
    again.cancel();
    task.await.unwrap();
    app.stop().await.unwrap();
}

on_both_stores!(sharded_workers_split_the_calls);

/// Two workers sharing the calls (`--assist-shard 1/2` and `2/2`): every ended call gets
/// exactly one summary, from whichever worker owns it, and each share keeps its own
/// checkpoint.
async fn sharded_workers_split_the_calls(store: Arc<dyn Store>) {
    let app = spawn_app(store.clone()).await;
    let shutdown = CancellationToken::new();
    let workers: Vec<_> = (1..=2)
        .map(|index| {
            let mut config = AssistConfig::default();
            config.worker.debounce = Duration::from_millis(0);
            config.worker.shard = earshot::worker::Shard { index, count: 2 };
            tokio::spawn(standalone_worker(&store, &config).run(shutdown.clone()))
        })
        .collect();
    let t = app.token("service", "dialer").await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        let call = app.start_call(&t).await;
        app.say(&t, &call, "c1", "customer", "my AC stopped cooling", 0)
            .await;
        end(&app, &t, &call).await;
        calls.push(call);
    }
    for call in &calls {
        wait_for(&app, call, "summary", |e| {
            !of_kind(e, "summary_generated").is_empty()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for call in &calls {
        let e = events(&app, call).await;
        assert_eq!(of_kind(&e, "summary_generated").len(), 1);
    }
    let head = store.head().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for name in ["assist-1-of-2", "assist-2-of-2"] {
        while store.load_checkpoint(name).await.unwrap() < head {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} stays behind the head"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        store.load_checkpoint("assist").await.unwrap(),
        domain::GlobalPosition::ZERO,
        "sharded workers do not use the unsharded checkpoint"
    );
    shutdown.cancel();
    for w in workers {
        w.await.unwrap();
    }
    app.stop().await.unwrap();
}
