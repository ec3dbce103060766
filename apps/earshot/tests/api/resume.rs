//! The WebSocket hub's delivery promises: resume after a dropped connection with no loss and
//! no duplicates; a slow consumer is closed with a code, never skipped silently; a silent
//! client is dropped by the heartbeat; shutdown says "going away".

use std::sync::Arc;
use std::time::Duration;

use earshot::api::ws::{CLOSE_GOING_AWAY, CLOSE_HEARTBEAT, CLOSE_SLOW};
use earshot::server::ServerConfig;
use futures::StreamExt;
use serde_json::json;
use store::Store;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, Ws, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    resume_after_a_dropped_connection,
    slow_consumer_is_closed_then_resumes,
    a_write_that_waits_too_long_ends_the_connection
);

async fn resume_after_a_dropped_connection(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let mut ws = app.ws(&t).await;
    ws.subscribe(&call, 0).await;
    for i in 0..3 {
        app.say(
            &t,
            &call,
            &format!("s{i}"),
            "customer",
            "my heater is broken",
            i * 1000,
        )
        .await;
    }
    let seen = ws.events_until("segment_added").await;
    let mut last = seen.last().unwrap()["seq"].as_u64().unwrap();
    // Read what is already there, then drop the connection mid-call.
    while last < 4 {
        let m = ws.next_json().await;
        last = m["seq"].as_u64().unwrap();
    }
    drop(ws);

    // While the client is away: more segments, one with an alert.
    app.say(
        &t,
        &call,
        "s3",
        "agent",
        "I guarantee it will be fixed",
        3000,
    )
    .await;
    app.say(&t, &call, "s4", "customer", "great", 4000).await;

    let mut ws = app.ws(&t).await;
    let (replayed, subscribed) = ws.subscribe(&call, last).await;
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let top = subscribed["top_seq"].as_u64().unwrap();
    assert_eq!(
        seqs,
        (last + 1..=top).collect::<Vec<_>>(),
        "exactly the gap, in order"
    );
    assert_eq!(subscribed["recovered"], seqs.len());
    assert!(replayed.iter().any(|e| e["kind"] == "alert_raised"));

    // Then live, continuing after the replay, with nothing twice.
    app.say(&t, &call, "s5", "agent", "see you tuesday", 5000)
        .await;
    let m = ws.next_json().await;
    assert_eq!(m["seq"], top + 1, "{m}");
    assert_eq!(m["data"]["segment_id"], "s5");

    // since_seq at the top: nothing replayed.
    let mut ws2 = app.ws(&t).await;
    let (replayed, subscribed) = ws2.subscribe(&call, top + 1).await;
    assert!(replayed.is_empty());
    assert_eq!(subscribed["recovered"], 0);
    app.stop().await.unwrap();
}

/// A client that stops reading while events pour in is closed with CLOSE_SLOW once its
/// queue is full; reconnecting from the last seq it saw gets everything else.
async fn slow_consumer_is_closed_then_resumes(store: Arc<dyn Store>) {
    let mut config = crate::helpers::config();
    config.ws.max_queued_bytes = 32 * 1024;
    // Ingesting 3,000 long segments may take more than the 10 s a write may wait on a busy
    // test machine: that would close the client for the wait, not for falling behind.
    config.ws.write_timeout = Duration::from_secs(120);
    let app = spawn_app_with(store, config).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let mut ws = app.ws(&t).await;
    ws.subscribe(&call, 0).await;

    // ~12 MB of events while the client reads nothing: more than the socket buffers hold.
    let total = flood(&app, &t, &call).await;

    // Now read: what was buffered, then the close.
    let (last, code) = ws.events_until_close(1).await;
    assert_eq!(code, CLOSE_SLOW);
    assert!(
        last < total,
        "the client was closed before the end (got {last} of {total})"
    );

    resumes_from(&app, &t, &call, last, total).await;
    app.stop().await.unwrap();
}

/// A client whose socket takes nothing for longer than the write timeout is disconnected:
/// the writer gives up, tries a 4008 close (which a client that still reads nothing cannot
/// receive) and ends the connection, instead of leaving it open and silent. Reading then
/// yields what was buffered and the end, and resuming from the last seq loses nothing.
async fn a_write_that_waits_too_long_ends_the_connection(store: Arc<dyn Store>) {
    let mut config = crate::helpers::config();
    config.ws.write_timeout = Duration::from_secs(1);
    // Neither the queue's limit nor the live buffer may close it first: the live frames
    // reach the writer from the broadcast, and a writer stuck in a write never sees a lag.
    config.ws.max_queued_bytes = 64 * 1024 * 1024;
    let app = spawn_app_with(store, config).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let mut ws = app.ws(&t).await;
    let (_, subscribed) = ws.subscribe(&call, 0).await;

    // ~12 MB of events while the client reads nothing: more than the socket buffers hold.
    let total = flood(&app, &t, &call).await;
    // The writer waits 1 s, then 2 s for its close frame, then lets the socket go.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let mut last = subscribed["top_seq"].as_u64().unwrap();
    let end = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.stream.next())
            .await
            .expect("the connection ends instead of staying open and silent");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let m: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(m["seq"], last + 1, "no gaps before the end: {m}");
                last += 1;
            }
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => {}
            // The socket closed after the last whole frame, or inside one.
            Some(Err(_)) | None => break None,
        }
    };
    if let Some(code) = end {
        assert_eq!(code, CLOSE_SLOW, "closed with {code}");
    }
    assert!(last < total, "the client got all {total} events");

    resumes_from(&app, &t, &call, last, total).await;
    app.stop().await.unwrap();
}

/// Ingests 3,000 segments of ~3.8 KB (~12 MB of events); returns the call's top seq.
async fn flood(app: &TestApp, t: &str, call: &str) -> u64 {
    let text = "the unit is making a loud rattling noise again ".repeat(80);
    let mut n = 0u64;
    for batch in 0..6 {
        let segments: Vec<_> = (0..500)
            .map(|i| {
                n += 1;
                json!({"segment_id": format!("b{batch}-{i}"), "speaker": "customer", "text": text, "start_ms": n * 10, "end_ms": n * 10 + 5})
            })
            .collect();
        app.ingest(t, call, segments).await;
    }
    n + 1
}

/// A new connection subscribing from `last` gets every event after it, up to `total`.
async fn resumes_from(app: &TestApp, t: &str, call: &str, last: u64, total: u64) {
    let mut again = app.ws(t).await;
    let (replayed, subscribed) = again.subscribe(call, last).await;
    assert_eq!(subscribed["top_seq"], total);
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (last + 1..=total).collect::<Vec<_>>());
}

/// After `unsubscribed`, no live frame of that call arrives, even when the unsubscribe comes
/// while the subscribe is still replaying a long backlog (before its live feed has started);
/// other subscriptions on the socket go on, and subscribing again resumes from the last seq.
#[tokio::test]
async fn nothing_live_of_a_call_follows_its_unsubscribe() {
    let db = store::testkit::TestStore::sqlite();
    let app = spawn_app(db.open_store().await).await;
    let t = app.token("service", "dialer").await;
    let (a, b) = (app.start_call(&t).await, app.start_call(&t).await);
    // A backlog of several replay pages: the unsubscribe is handled while it is read.
    let mut top = 0;
    for batch in 0..3 {
        let segments: Vec<_> = (0..500u64)
            .map(|i| {
                let n = batch * 500 + i;
                json!({"segment_id": format!("old{n}"), "speaker": "agent", "text": "one moment", "start_ms": n * 10, "end_ms": n * 10 + 5})
            })
            .collect();
        top = top_after(&app.ingest(&t, &a, segments).await);
    }
    let mut ws = app.ws(&t).await;
    ws.subscribe(&b, 0).await;

    let mut resume_from = 0;
    for round in 0..4u64 {
        ws.send(json!({"type": "subscribe", "call_id": a, "since_seq": 0}))
            .await;
        if round == 0 {
            // Once live: the backlog and `subscribed` first, then a live frame.
            loop {
                let m = ws.next_json().await;
                if m["type"] == "subscribed" {
                    break;
                }
            }
            let said = app
                .say(&t, &a, "live", "agent", "thanks for calling", 100_000)
                .await;
            let seen = ws.events_until("segment_added").await;
            assert_eq!(seen.last().unwrap()["data"]["segment_id"], "live");
            top = top_after(&said);
            resume_from = top;
        }
        ws.send(json!({"type": "unsubscribe", "call_id": a, "ref": format!("u{round}")}))
            .await;
        // Until the reply (the backlog may still be arriving before it: the unsubscribe is
        // handled while it is replayed), only frames of `a` up to the top it had.
        loop {
            let m = ws.next_json().await;
            if m["type"] == "unsubscribed" {
                assert_eq!(m["ref"], format!("u{round}"));
                break;
            }
            if m["call_id"] == a.as_str() && m["type"] == "event" {
                assert!(
                    m["seq"].as_u64().unwrap() <= top,
                    "a live frame of the unsubscribed call: {m}"
                );
            }
        }
        // After it, nothing of `a` at all, while `b` goes on: until `b`'s new segment (the hub
        // publishes in log order, so a frame of `a`'s new segment would come before it).
        let n = 200 + round;
        let said = app
            .say(
                &t,
                &a,
                &format!("a{n}"),
                "agent",
                "one more moment",
                n * 1000,
            )
            .await;
        app.say(&t, &b, &format!("b{n}"), "customer", "hello", n * 1000)
            .await;
        loop {
            let m = ws.next_json().await;
            assert!(
                m["call_id"] != a.as_str(),
                "a frame of `a` after `unsubscribed`: {m}"
            );
            if m["call_id"] == b.as_str() && m["kind"] == "segment_added" {
                break;
            }
        }
        top = top_after(&said);
    }

    // Subscribing again from the last seq seen gets what was missed, then live frames.
    let (missed, subscribed) = ws.subscribe(&a, resume_from).await;
    let ids: Vec<&str> = missed
        .iter()
        .filter(|e| e["kind"] == "segment_added")
        .map(|e| e["data"]["segment_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a200", "a201", "a202", "a203"]);
    assert_eq!(subscribed["top_seq"], top);
    app.say(&t, &a, "a999", "agent", "goodbye", 999_000).await;
    let live = ws.events_until("segment_added").await;
    assert_eq!(live.last().unwrap()["data"]["segment_id"], "a999");
    app.stop().await.unwrap();
    db.finish().await;
}

/// The highest seq an ingest wrote: its segments' and the events they caused.
fn top_after(body: &serde_json::Value) -> u64 {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|r| {
            let caused = r["caused"].as_array().expect("caused").iter();
            std::iter::once(&r["seq"]).chain(caused.map(|c| &c["seq"]))
        })
        .map(|seq| seq.as_u64().expect("a seq"))
        .max()
        .expect("a segment")
}

#[tokio::test]
async fn a_silent_client_is_dropped_by_the_heartbeat() {
    let db = store::testkit::TestStore::sqlite();
    let mut config = crate::helpers::config();
    config.ws.ping_interval = Duration::from_millis(300);
    config.ws.pong_timeout = Duration::from_millis(300);
    let app = spawn_app_with(db.open_store().await, config).await;
    let t = app.token("agent", "agent-7").await;

    // A client that reads (and so answers pings) stays connected past several intervals.
    let call = app.start_call(&app.admin).await;
    let mut alive = app.ws(&t).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(50), alive.stream.next()).await {
            assert!(matches!(m, Some(Ok(Message::Ping(_)))), "{m:?}");
        }
    }
    alive.subscribe(&call, 0).await;
    drop(alive);

    // A client that reads nothing never pongs: closed with CLOSE_HEARTBEAT.
    let mut silent = Ws::connect(&app.ws_url(&t)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(silent.closed_with().await, CLOSE_HEARTBEAT);

    // Shutdown tells connected clients to go elsewhere and resume.
    let mut open = app.ws(&t).await;
    let stop = tokio::spawn(app.stop());
    assert_eq!(open.closed_with().await, CLOSE_GOING_AWAY);
    stop.await.unwrap().unwrap();
    db.finish().await;
}

/// A subscription that falls behind its call's broadcast buffer is closed with CLOSE_LAGGED
/// (never skipped silently) and resumes from its last seq with nothing lost. On this
/// single-threaded test runtime the hub publishes a whole batch before the subscription runs
/// again, so a buffer of 4 frames lags on a batch of 40 segments every time.
#[tokio::test]
async fn a_lagging_subscription_is_closed_then_resumes() {
    let db = store::testkit::TestStore::sqlite();
    let config = ServerConfig {
        hub_call_capacity: 4,
        ..crate::helpers::config()
    };
    let app = spawn_app_with(db.open_store().await, config).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let mut ws = app.ws(&t).await;
    ws.subscribe(&call, 0).await;
    let segments: Vec<_> = (0..40u64)
        .map(|i| json!({"segment_id": format!("s{i}"), "speaker": "customer", "text": "still no heat", "start_ms": i * 100, "end_ms": i * 100 + 50}))
        .collect();
    app.ingest(&t, &call, segments).await;
    let (last, code) = ws.events_until_close(1).await;
    assert_eq!(code, earshot::api::ws::CLOSE_LAGGED);
    let mut again = app.ws(&t).await;
    let (replayed, subscribed) = again.subscribe(&call, last).await;
    assert_eq!(subscribed["top_seq"], 41);
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (last + 1..=41).collect::<Vec<_>>());
    app.stop().await.unwrap();
    db.finish().await;
}
