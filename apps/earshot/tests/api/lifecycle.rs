//! A whole call through the real HTTP and WebSocket interfaces: start, a subscriber, segments
//! with PII and a prohibited claim, feedback, the end, the log and the state at any seq.

use std::sync::Arc;

use serde_json::json;
use store::Store;

use crate::helpers::spawn_app;
use crate::on_both_stores;

on_both_stores!(
    full_call_lifecycle,
    idempotent_retries,
    concurrent_ingest_keeps_per_call_order
);

async fn full_call_lifecycle(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let source = app.token("service", "dialer").await;
    let csr = app.token("agent", "agent-7").await;
    let lead = app.token("supervisor", "lead-1").await;

    let mut board = app.ws(&lead).await;
    board.send(json!({"type": "subscribe_tenant"})).await;
    let snapshot = board.next_json().await;
    assert_eq!(snapshot["type"], "calls", "{snapshot}");

    let call = app.start_call(&source).await;
    let mut panel = app.ws(&csr).await;
    let (replayed, subscribed) = panel.subscribe(&call, 0).await;
    assert_eq!(replayed.len(), 1, "the backlog is the start: {replayed:?}");
    assert_eq!(replayed[0]["kind"], "call_started");
    assert_eq!(subscribed["top_seq"], 1);
    assert_eq!(subscribed["recovered"], 1);

    // The customer gives a card number; the agent makes a prohibited claim.
    let body = app
        .say(
            &source,
            &call,
            "s1",
            "customer",
            "my card is 4111 1111 1111 1111 and my ac is broken",
            0,
        )
        .await;
    assert_eq!(body["results"][0]["seq"], 2);
    let body = app
        .say(
            &source,
            &call,
            "s2",
            "agent",
            "I guarantee we will fix it today",
            2_000,
        )
        .await;
    let caused = &body["results"][0]["caused"];
    assert!(
        caused
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "alert_raised"),
        "{body}"
    );

    let live = panel.events_until("alert_raised").await;
    let kinds: Vec<&str> = live.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["segment_added", "segment_added"], "{kinds:?}");
    let seqs: Vec<u64> = live.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (2..2 + seqs.len() as u64).collect::<Vec<_>>(),
        "in order, no gaps"
    );
    let first = &live[0]["data"];
    assert!(!first["text"].as_str().unwrap().contains("4111"), "{first}");
    assert_eq!(first["redactions"][0]["kind"], "card");
    let alert = live.last().unwrap();
    assert_eq!(alert["data"]["rule"]["rule_id"], "no-guarantee");
    assert!(
        alert["trace_id"].is_string(),
        "the request's trace id is in the event"
    );
    let alert_id = alert["data"]["alert_id"].as_str().unwrap().to_owned();

    // The supervisor's board saw the call and its alert count change.
    let mut alerts_on_board = 0;
    while alerts_on_board == 0 {
        let m = board.next_json().await;
        assert_eq!(m["type"], "call_updated", "{m}");
        assert_eq!(m["call_id"], call.as_str());
        alerts_on_board = m["call"]["alerts"].as_u64().unwrap();
    }

    // The CSR acknowledges the alert: an event, by them, delivered like any other.
    let (status, ack) = app
        .post(
            &format!("/api/v1/calls/{call}/alerts/{alert_id}/ack"),
            &csr,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["written"][0]["kind"], "alert_acknowledged");
    let acked = panel.events_until("alert_acknowledged").await;
    assert_eq!(acked.last().unwrap()["data"]["by"], "agent-7");

    // The disposition can only be set once the call ended.
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/calls/{call}/disposition"),
            &lead,
            Some(json!({"disposition": "booked"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "call_not_ended");

    let (status, end) = app
        .post(
            &format!("/api/v1/calls/{call}/end"),
            &source,
            json!({"reason": "completed"}),
        )
        .await;
    assert_eq!(status, 200, "{end}");
    let written: Vec<&str> = end["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(written[0], "call_ended");
    assert!(
        written[1..].iter().all(|k| *k == "checklist_item_missed") && written.len() > 1,
        "required items never covered are missed at the end: {written:?}"
    );
    panel.events_until("call_ended").await;

    let (status, body) = app
        .get(&format!("/api/v1/calls/{call}/summary"), &csr)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_ready");
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/calls/{call}/disposition"),
            &lead,
            Some(json!({"disposition": "booked", "note": "booked for Tuesday"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, summary) = app
        .get(&format!("/api/v1/calls/{call}/summary"), &csr)
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["disposition"]["disposition"], "booked");
    assert_eq!(summary["disposition"]["overridden_by"], "lead-1");

    // The state now, and as it was right after the first segment.
    let (status, now) = app.get(&format!("/api/v1/calls/{call}"), &csr).await;
    assert_eq!(status, 200);
    let top = now["top_seq"].as_u64().unwrap();
    assert_eq!(now["seq"], top);
    assert_eq!(now["state"]["status"], "ended");
    assert_eq!(now["state"]["alerts"][0]["acknowledged_by"], "agent-7");
    let (_, then) = app
        .get(&format!("/api/v1/calls/{call}?as_of=2"), &csr)
        .await;
    assert_eq!(then["seq"], 2);
    assert_eq!(then["state"]["status"], "live");
    assert_eq!(then["state"]["alerts"], json!([]));
    let (status, body) = app
        .get(&format!("/api/v1/calls/{call}?as_of={}", top + 1), &csr)
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "as_of");

    // The raw log, in pages.
    let (_, page) = app
        .get(&format!("/api/v1/calls/{call}/events?limit=2"), &csr)
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_after"], 2);
    let (_, rest) = app
        .get(
            &format!("/api/v1/calls/{call}/events?after=2&limit=1000"),
            &csr,
        )
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len() as u64, top - 2);
    assert_eq!(rest["next_after"], serde_json::Value::Null);

    // The call list (a projection: it catches up within moments).
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let (status, list) = app
            .get("/api/v1/calls?status=ended&agent=agent-7", &lead)
            .await;
        assert_eq!(status, 200, "{list}");
        if list["calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["call_id"] == call.as_str())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never reached the list"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Segments after the end are refused, and nothing is written.
    let (status, body) = app
        .post(&format!("/api/v1/calls/{call}/segments"), &source, json!({"segment_id": "late", "speaker": "agent", "text": "hello?", "start_ms": 9_000, "end_ms": 9_500}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "call_ended");
    let (_, after) = app.get(&format!("/api/v1/calls/{call}"), &csr).await;
    assert_eq!(after["top_seq"], top);
    app.stop().await.unwrap();
}

/// A retried segment, a retried batch and a retried start write nothing new and answer the
/// original positions.
async fn idempotent_retries(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let source = app.token("service", "dialer").await;
    let call_id = uuid::Uuid::now_v7().to_string();
    let start = json!({"call_id": call_id, "agent_id": "agent-7"});
    let (status, first) = app.post("/api/v1/calls", &source, start.clone()).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = app.post("/api/v1/calls", &source, start).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["seq"], 1);

    let batch = json!({"segments": [
        {"segment_id": "a", "speaker": "customer", "text": "hi, my heater is out", "start_ms": 0, "end_ms": 900},
        {"segment_id": "b", "speaker": "agent", "text": "I guarantee a tech today", "start_ms": 1000, "end_ms": 1900},
    ]});
    let path = format!("/api/v1/calls/{call_id}/segments");
    let (status, one) = app.post(&path, &source, batch.clone()).await;
    assert_eq!(status, 200, "{one}");
    let (status, two) = app.post(&path, &source, batch).await;
    assert_eq!(status, 200, "{two}");
    for i in 0..2 {
        assert_eq!(two["results"][i]["deduplicated"], true);
        assert_eq!(two["results"][i]["seq"], one["results"][i]["seq"]);
    }
    let (_, state) = app.get(&format!("/api/v1/calls/{call_id}"), &source).await;
    let alerts = state["state"]["alerts"].as_array().unwrap().len();
    assert_eq!(alerts, 1, "the retry raised no second alert");
    assert_eq!(state["top_seq"], one["results"][1]["caused"][0]["seq"]);

    // Same id, other content: a conflict naming the field.
    let (status, body) = app
        .post(&path, &source, json!({"segment_id": "a", "speaker": "agent", "text": "something else", "start_ms": 0, "end_ms": 900}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["field"], "segments[0].segment_id");
    app.stop().await.unwrap();
}

/// Many calls ingested at once, and two sources racing on one call: every subscriber sees
/// each call's events once, in seq order, each segment exactly once.
async fn concurrent_ingest_keeps_per_call_order(store: Arc<dyn Store>) {
    let app = Arc::new(spawn_app(store).await);
    let t = app.token("service", "dialer").await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        calls.push(app.start_call(&t).await);
    }
    let mut subscribers = Vec::new();
    for call in &calls {
        let mut ws = app.ws(&t).await;
        ws.subscribe(call, 0).await;
        subscribers.push(ws);
    }
    const PER_SOURCE: u64 = 15;
    let mut tasks = tokio::task::JoinSet::new();
    for call in &calls {
        // Two sources per call (agent and customer legs), each sending its own segments.
        for leg in ["agent", "customer"] {
            let (app, t, call) = (app.clone(), t.clone(), call.clone());
            tasks.spawn(async move {
                for i in 0..PER_SOURCE {
                    let (status, body) = app
                        .post(
                            &format!("/api/v1/calls/{call}/segments"),
                            &t,
                            json!({"segment_id": format!("{leg}-{i}"), "speaker": leg, "text": "interim", "start_ms": i, "end_ms": i + 1, "is_final": false}),
                        )
                        .await;
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    for (call, ws) in calls.iter().zip(subscribers.iter_mut()) {
        let mut seen = std::collections::HashSet::new();
        let mut last = 1;
        while seen.len() < 2 * PER_SOURCE as usize {
            let m = ws.next_json().await;
            assert_eq!(m["call_id"], call.as_str());
            assert_eq!(m["seq"], last + 1, "in order, no gaps, no repeats");
            last += 1;
            assert!(seen.insert(m["data"]["segment_id"].as_str().unwrap().to_owned()));
        }
        let (_, state) = app.get(&format!("/api/v1/calls/{call}"), &t).await;
        assert_eq!(state["top_seq"], last);
    }
    Arc::try_unwrap(app).ok().unwrap().stop().await.unwrap();
}

/// Shutdown drains: an ingest the server took is answered and written whole; a request that
/// came too late (refused, or reset while still in the listen queue) wrote nothing. A
/// server that dropped requests mid-way would leave written-but-unanswered ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_ingests() {
    let db = store::testkit::TestStore::sqlite();
    let store = db.open_store().await;
    let app = spawn_app(store.clone()).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let text = "the condenser fan stopped and the breaker keeps tripping ".repeat(20);
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..40u64 {
        let (http, url, t, text) = (
            reqwest::Client::new(),
            app.url(&format!("/api/v1/calls/{call}/segments")),
            t.clone(),
            text.clone(),
        );
        tasks.spawn(async move {
            let segments: Vec<_> = (0..50u64)
                .map(|i| json!({"segment_id": format!("r{r}-{i}"), "speaker": "customer", "text": text, "start_ms": 0, "end_ms": 1, "is_final": false}))
                .collect();
            let res = http.post(url).bearer_auth(t).json(&json!({"segments": segments})).send().await;
            (r, res.map(|r| r.status().as_u16()))
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    app.stop().await.unwrap();

    let mut answered = std::collections::HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (r, res) = joined.unwrap();
        // An error means the request never reached a handler (checked below: it wrote nothing).
        if let Ok(status) = res {
            assert_eq!(
                status, 200,
                "an in-flight ingest was answered with {status}"
            );
            answered.insert(r);
        }
    }
    assert!(
        !answered.is_empty(),
        "some ingests were in flight at shutdown"
    );
    // Exactly the answered requests are in the log, each whole.
    let events = store::load_stream(store.as_ref(), call.parse().unwrap(), None)
        .await
        .unwrap();
    let mut per_request = std::collections::HashMap::<u64, usize>::new();
    for e in &events {
        if let domain::CallEvent::SegmentAdded(s) = &e.event {
            let r: u64 = s.segment_id.as_str()[1..]
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            *per_request.entry(r).or_default() += 1;
        }
    }
    assert_eq!(
        per_request
            .keys()
            .copied()
            .collect::<std::collections::HashSet<_>>(),
        answered
    );
    assert!(per_request.values().all(|n| *n == 50), "{per_request:?}");
    db.finish().await;
}
