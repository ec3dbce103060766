//! Bad input gets a 4xx with a JSON body naming the field and the reason, and writes nothing.

use std::sync::Arc;

use earshot::server::ServerConfig;
use futures::SinkExt;
use serde_json::{Value, json};
use store::Store;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    bad_input_is_refused_and_writes_nothing,
    limits_hold_on_what_was_sent_though_redaction_lengthens_it
);

async fn raw(
    app: &TestApp,
    token: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn seg(id: &str, start_ms: u64) -> Value {
    json!({"segment_id": id, "speaker": "agent", "text": "hello", "start_ms": start_ms, "end_ms": start_ms + 500})
}

async fn bad_input_is_refused_and_writes_nothing(store: Arc<dyn Store>) {
    let config = ServerConfig {
        max_segment_chars: 200,
        ..crate::helpers::config()
    };
    let app = spawn_app_with(store, config).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let path = format!("/api/v1/calls/{call}/segments");
    app.say(&t, &call, "s1", "agent", "first", 1_000).await;

    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        // (what, body, status, code, field)
        (
            "unknown field",
            json!({"segment_id": "a", "speaker": "agent", "text": "x", "start_ms": 2000, "end_ms": 2100, "colour": "red"}),
            422,
            "invalid_field",
            "colour",
        ),
        (
            "unknown nested field",
            json!({"segments": [seg("a", 2000), {"segment_id": "b", "speaker": "agent", "text": "x", "start_ms": 2000, "end_ms": 2100, "colour": 1}]}),
            422,
            "invalid_field",
            "segments[1].colour",
        ),
        (
            "missing field",
            json!({"segment_id": "a", "speaker": "agent", "start_ms": 2000, "end_ms": 2100}),
            422,
            "invalid_field",
            "text",
        ),
        (
            "wrong type",
            json!({"segment_id": "a", "speaker": "agent", "text": "x", "start_ms": "soon", "end_ms": 2100}),
            422,
            "invalid_field",
            "start_ms",
        ),
        (
            "bad speaker",
            json!({"segments": [seg("a", 2000), {"segment_id": "b", "speaker": "robot", "text": "x", "start_ms": 2000, "end_ms": 2100}]}),
            422,
            "invalid_field",
            "segments[1].speaker",
        ),
        (
            "empty segment id",
            json!({"segment_id": "", "speaker": "agent", "text": "x", "start_ms": 2000, "end_ms": 2100}),
            422,
            "invalid_field",
            "segments[0].segment_id",
        ),
        (
            "end before start",
            json!({"segment_id": "a", "speaker": "agent", "text": "x", "start_ms": 2000, "end_ms": 1000}),
            422,
            "invalid_field",
            "segments[0].end_ms",
        ),
        (
            "empty text",
            json!({"segment_id": "a", "speaker": "agent", "text": "   ", "start_ms": 2000, "end_ms": 2100}),
            422,
            "invalid_field",
            "segments[0].text",
        ),
        (
            "oversized",
            json!({"segments": [seg("a", 2000), {"segment_id": "b", "speaker": "agent", "text": "x".repeat(201), "start_ms": 2000, "end_ms": 2100}]}),
            413,
            "too_large",
            "segments[1].text",
        ),
        (
            "empty batch",
            json!({"segments": []}),
            422,
            "invalid_field",
            "segments",
        ),
        (
            "duplicate ids in a batch",
            json!({"segments": [seg("a", 2000), seg("a", 3000)]}),
            422,
            "invalid_field",
            "segments[1].segment_id",
        ),
        (
            "out of order",
            json!({"segments": [seg("a", 2000), seg("b", 500)]}),
            422,
            "invalid_field",
            "segments[1].start_ms",
        ),
        (
            "reused final id",
            json!({"segments": [seg("a", 2000), {"segment_id": "s1", "speaker": "customer", "text": "x", "start_ms": 1000, "end_ms": 1500}]}),
            409,
            "duplicate_segment",
            "segments[1].segment_id",
        ),
    ];
    for (what, body, status, code, field) in cases {
        let (got, answer) = app.post(&path, &t, body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{what}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().len() > 5,
            "{what}: a reason"
        );
    }

    let (status, body) = raw(&app, &t, &path, "application/json", "{\"segment_id\": ").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "malformed_json");
    let (status, body) = raw(&app, &t, &path, "text/plain", "hello").await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = raw(&app, &t, "/api/v1/calls", "text/plain", "{}").await;
    assert_eq!(status, 415, "{body}");

    // Invalid ids in paths and parameters.
    let (status, body) = app
        .post("/api/v1/calls/not-a-uuid/segments", &t, seg("a", 2000))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "call_id");
    let (status, body) = app
        .get(&format!("/api/v1/calls/{call}?as_of=minus"), &t)
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "as_of");
    let (status, body) = app.get(&format!("/api/v1/calls/{call}?asof=1"), &t).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "asof");
    let (status, body) = app.get("/api/v1/calls?limit=0", &t).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "limit");
    let (status, body) = app.get("/api/v1/calls?status=sleeping", &t).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "status");
    let (status, body) = app
        .post(
            "/api/v1/calls",
            &t,
            json!({"agent_id": "a", "language": "not a tag!"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "language");
    let (status, body) = app
        .post(
            "/api/v1/calls",
            &t,
            json!({"agent_id": "a", "ruleset": {"id": "home-services", "version": 99}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "ruleset");

    // An unknown call.
    let unknown = uuid::Uuid::now_v7();
    let (status, body) = app
        .post(
            &format!("/api/v1/calls/{unknown}/segments"),
            &t,
            seg("a", 0),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    // Nothing of all that was written: the call holds its start and one segment.
    let (_, state) = app.get(&format!("/api/v1/calls/{call}"), &t).await;
    assert_eq!(state["top_seq"], 2, "{state}");

    // An ended call takes no more segments.
    let (status, _) = app
        .post(&format!("/api/v1/calls/{call}/end"), &t, json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.post(&path, &t, seg("z", 9_000)).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "call_ended");
    let (status, body) = app
        .post(&format!("/api/v1/calls/{call}/end"), &t, json!({}))
        .await;
    assert_eq!(status, 409, "{body}");

    // The same over the WebSocket: an error message naming the field, the socket stays up.
    let mut ws = app.ws(&t).await;
    ws.send(json!({"type": "subscribe", "call_id": "nope"}))
        .await;
    let m = ws.next_json().await;
    assert_eq!(m["error"]["field"], "call_id", "{m}");
    ws.send(json!({"type": "dance"})).await;
    let m = ws.next_json().await;
    assert_eq!(m["type"], "error", "{m}");
    ws.stream
        .send(tokio_tungstenite::tungstenite::Message::Text(
            "{not json".into(),
        ))
        .await
        .unwrap();
    let m = ws.next_json().await;
    assert_eq!(m["error"]["code"], "malformed_json", "{m}");
    ws.send(json!({"type": "subscribe", "call_id": call, "since_seq": 0}))
        .await;
    let m = ws.next_json().await;
    assert_eq!(m["type"], "event", "still serving after errors: {m}");
    app.stop().await.unwrap();
}

/// The length limits are on what the client sent. Redaction can lengthen a text (`my pin is
/// 4321` → `my pin is [NUMBER]`): a segment of exactly the 4,000 characters allowed, and a
/// disposition note of exactly 2,000, are stored redacted, longer than that, not refused.
async fn limits_hold_on_what_was_sent_though_redaction_lengthens_it(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let call = app.start_call(&app.admin).await;
    let text = "my pin is 4321. ".repeat(domain::command::MAX_SEGMENT_CHARS / 16);
    assert_eq!(text.chars().count(), domain::command::MAX_SEGMENT_CHARS);
    let said = app
        .say(&app.admin, &call, "long", "customer", &text, 0)
        .await;
    assert_eq!(said["results"][0]["deduplicated"], false, "{said}");
    let (status, state) = app.get(&format!("/api/v1/calls/{call}"), &app.admin).await;
    assert_eq!(status, 200, "{state}");
    let stored = state["state"]["segments"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{state}"));
    assert!(!stored.contains("4321"), "redacted: {stored}");
    assert!(
        stored.chars().count() > domain::command::MAX_SEGMENT_CHARS,
        "longer once redacted: {} characters",
        stored.chars().count()
    );
    // One character more is still refused at the edge, and writes nothing.
    let (status, body) = app
        .post(
            &format!("/api/v1/calls/{call}/segments"),
            &app.admin,
            json!({"segment_id": "longer", "speaker": "customer", "text": format!("{text}x"),
                   "start_ms": 2_000, "end_ms": 3_000}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["field"], "segments[0].text", "{body}");
    let (_, after) = app.get(&format!("/api/v1/calls/{call}"), &app.admin).await;
    assert_eq!(
        after["top_seq"], state["top_seq"],
        "nothing written: {after}"
    );

    let (status, body) = app
        .post(&format!("/api/v1/calls/{call}/end"), &app.admin, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let note = "my pin is 4321. ".repeat(domain::command::MAX_NOTE_CHARS / 16);
    assert_eq!(note.chars().count(), domain::command::MAX_NOTE_CHARS);
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/calls/{call}/disposition"),
            &app.admin,
            Some(json!({"disposition": "lead", "note": note})),
        )
        .await;
    assert_eq!(status, 200, "a note of 2000 characters is accepted: {body}");
    app.stop().await.unwrap();
}
