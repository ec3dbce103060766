//! Rulesets over the API: an invalid upload names the line and the rule; a new version is
//! used by calls started after it is activated, never by calls already in flight.

use std::sync::Arc;

use serde_json::{Value, json};
use store::Store;

use crate::helpers::{TestApp, spawn_app};
use crate::on_both_stores;

on_both_stores!(ruleset_versions_and_calls_in_flight);

async fn upload(app: &TestApp, yaml: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/api/v1/rulesets"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

const V2: &str = r#"
id: home-services
version: 2
rules:
  - id: no-cheap-talk
    kind: prohibited
    severity: warning
    message: Don't call the service cheap.
    match:
      phrases: ["cheap"]
"#;

async fn ruleset_versions_and_calls_in_flight(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let t = app.token("service", "dialer").await;

    // Errors name the line and the rule.
    let broken = "id: home-services\nversion: 2\nrules:\n  - id: ok-rule\n    kind: prohibited\n    message: fine\n    match:\n      phrases: [fine]\n  - id: bad-regex\n    kind: prohibited\n    message: broken\n    match:\n      regex: ['(unclosed']\n";
    let (status, body) = upload(&app, broken).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_ruleset");
    assert_eq!(body["error"]["rule"], "bad-regex", "{body}");
    assert!(body["error"]["line"].as_u64().unwrap() >= 9, "{body}");
    let (status, body) = upload(&app, "id: x\nversion: [1\n").await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["line"].is_u64(), "{body}");

    // A call in flight on version 1.
    let old = app.start_call(&t).await;
    let (_, state) = app.get(&format!("/api/v1/calls/{old}"), &t).await;
    assert_eq!(
        state["state"]["info"]["ruleset"],
        json!({"id": "home-services", "version": 1})
    );

    let (status, body) = upload(&app, V2).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["active"], false);
    let (status, body) = upload(&app, V2).await;
    assert_eq!(status, 409, "the same version twice: {body}");
    assert_eq!(body["error"]["field"], "version");

    // Uploading does not activate: a new call still gets version 1.
    let (_, list) = app.get("/api/v1/rulesets", &t).await;
    assert_eq!(list["active"]["version"], 1);
    let (status, body) = app
        .post(
            "/api/v1/rulesets/home-services/versions/2/activate",
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"]["version"], 2);
    let (status, _) = app
        .post(
            "/api/v1/rulesets/home-services/versions/7/activate",
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 404);

    let new = app.start_call(&t).await;
    let (_, state) = app.get(&format!("/api/v1/calls/{new}"), &t).await;
    assert_eq!(state["state"]["info"]["ruleset"]["version"], 2);

    // The old call keeps running version 1; the new one runs version 2.
    let line = "I guarantee this cheap fix will hold";
    let old_result = app.say(&t, &old, "s1", "agent", line, 0).await;
    let new_result = app.say(&t, &new, "s1", "agent", line, 0).await;
    let (_, old_state) = app.get(&format!("/api/v1/calls/{old}"), &t).await;
    let (_, new_state) = app.get(&format!("/api/v1/calls/{new}"), &t).await;
    let rules = |s: &Value| -> Vec<(String, u64)> {
        s["state"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["rule"]["rule_id"].as_str().unwrap().to_owned(),
                    a["rule"]["ruleset"]["version"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        rules(&old_state),
        [("no-guarantee".to_owned(), 1)],
        "{old_result}"
    );
    assert_eq!(
        rules(&new_state),
        [("no-cheap-talk".to_owned(), 2)],
        "{new_result}"
    );

    // The stored YAML is served back as uploaded.
    let (status, v2) = app
        .get("/api/v1/rulesets/home-services/versions/2", &t)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v2["source"], V2);
    assert_eq!(v2["created_by"], "admin");
    let (_, latest) = app.get("/api/v1/rulesets/home-services", &t).await;
    assert_eq!(latest["version"], 2);
    app.stop().await.unwrap();
}

/// /metrics speaks Prometheus text with the ingest, WebSocket and lag series.
#[tokio::test]
async fn metrics_are_exposed() {
    let db = store::testkit::TestStore::sqlite();
    let app = spawn_app(db.open_store().await).await;
    let t = app.token("service", "dialer").await;
    let call = app.start_call(&t).await;
    let _ws = app.ws(&t).await;
    app.say(&t, &call, "s1", "agent", "hello", 0).await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for series in [
        "earshot_ingest_segments_total",
        "earshot_ingest_seconds_bucket",
        "earshot_ws_connections",
        "earshot_consumer_lag_events{consumer=\"hub\"}",
        "earshot_consumer_lag_events{consumer=\"call-index\"}",
        "earshot_http_requests_total",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    app.stop().await.unwrap();
    db.finish().await;
}
