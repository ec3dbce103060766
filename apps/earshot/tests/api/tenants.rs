//! Tenants and roles: a token sees only its tenant's calls, over REST and over the
//! WebSocket; each role may do only its part.

use std::sync::Arc;

use domain::TenantId;
use secrecy::ExposeSecret;
use serde_json::json;
use store::Store;

use crate::helpers::spawn_app;
use crate::on_both_stores;

on_both_stores!(tenants_are_isolated, roles_limit_what_a_token_may_do);

async fn tenants_are_isolated(store: Arc<dyn Store>) {
    let app = spawn_app(store.clone()).await;
    let other = TenantId::parse("globex").unwrap();
    let other_admin = earshot::bootstrap::create_tenant(store.as_ref(), &other, "Globex")
        .await
        .unwrap();
    let other_admin = other_admin.expose_secret();

    // A call of tenant B, with a segment.
    let (status, started) = app
        .post("/api/v1/calls", other_admin, json!({"agent_id": "b-agent"}))
        .await;
    assert_eq!(status, 201, "{started}");
    let b_call = started["call_id"].as_str().unwrap().to_owned();
    app.say(other_admin, &b_call, "s1", "customer", "hello there", 0)
        .await;

    // Tenant A's tokens cannot see or touch it: it does not exist for them.
    let a_admin = app.admin.clone();
    let a_agent = app.token("agent", "a-agent").await;
    for token in [&a_admin, &a_agent] {
        for path in [
            format!("/api/v1/calls/{b_call}"),
            format!("/api/v1/calls/{b_call}/events"),
            format!("/api/v1/calls/{b_call}/summary"),
        ] {
            let (status, body) = app.get(&path, token).await;
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(body["error"]["code"], "not_found");
        }
    }
    let (status, body) = app
        .post(
            &format!("/api/v1/calls/{b_call}/segments"),
            &a_admin,
            json!({"segment_id": "x", "speaker": "agent", "text": "injected", "start_ms": 5000, "end_ms": 6000}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app
        .post(&format!("/api/v1/calls/{b_call}/end"), &a_admin, json!({}))
        .await;
    assert_eq!(status, 404);
    // Reusing B's call id to start a call of A is refused without revealing anything.
    let (status, body) = app
        .post(
            "/api/v1/calls",
            &a_admin,
            json!({"call_id": b_call, "agent_id": "a-agent"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // Over the WebSocket too: subscribing to B's call is an error, and nothing streams.
    let mut ws = app.ws(&a_agent).await;
    ws.send(json!({"type": "subscribe", "call_id": b_call, "ref": "r1"}))
        .await;
    let m = ws.next_json().await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["ref"], "r1");
    assert_eq!(m["error"]["code"], "not_found");
    // Ingest over the WebSocket into B's call: refused too.
    ws.send(json!({"type": "segments", "call_id": b_call, "segments": [
        {"segment_id": "y", "speaker": "agent", "text": "injected", "start_ms": 5000, "end_ms": 6000}
    ]}))
    .await;
    let m = ws.next_json().await;
    assert_eq!(m["type"], "error", "{m}");

    // B's call is untouched, and absent from A's list; present in B's.
    let (_, state) = app
        .get(&format!("/api/v1/calls/{b_call}"), other_admin)
        .await;
    assert_eq!(state["top_seq"], 2);
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let (_, b_list) = app.get("/api/v1/calls", other_admin).await;
        if !b_list["calls"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B's call never listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, a_list) = app.get("/api/v1/calls", &a_admin).await;
    assert!(
        a_list["calls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["call_id"] != b_call.as_str()),
        "{a_list}"
    );

    // A's supervisor board does not see B's traffic: the first update it gets is A's.
    let a_lead = app.token("supervisor", "a-lead").await;
    let mut board = app.ws(&a_lead).await;
    board.send(json!({"type": "subscribe_tenant"})).await;
    let snapshot = board.next_json().await;
    assert_eq!(snapshot["tenant"], "default");
    assert!(
        snapshot["calls"].as_array().unwrap().is_empty(),
        "{snapshot}"
    );
    app.say(other_admin, &b_call, "s2", "agent", "still B", 2000)
        .await;
    let a_call = app.start_call(&a_admin).await;
    let update = board.next_json().await;
    assert_eq!(update["type"], "call_updated");
    assert_eq!(update["call_id"], a_call.as_str(), "{update}");
    app.stop().await.unwrap();
}

async fn roles_limit_what_a_token_may_do(store: Arc<dyn Store>) {
    let app = spawn_app(store).await;
    let agent = app.token("agent", "agent-7").await;
    let lead = app.token("supervisor", "lead-1").await;
    let service = app.token("service", "dialer").await;
    let ruleset = "id: extra\nversion: 1\nrules:\n  - id: r1\n    kind: prohibited\n    message: no\n    match:\n      phrases: [\"never say this\"]\n";

    // Only admins edit rulesets and tokens.
    for token in [&agent, &lead, &service] {
        let r = app
            .http
            .post(app.url("/api/v1/rulesets"))
            .bearer_auth(token)
            .header("content-type", "application/yaml")
            .body(ruleset)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        let (status, _) = app
            .post(
                "/api/v1/rulesets/home-services/versions/1/activate",
                token,
                json!({}),
            )
            .await;
        assert_eq!(status, 403);
        let (status, _) = app
            .post(
                "/api/v1/tokens",
                token,
                json!({"role": "admin", "name": "me"}),
            )
            .await;
        assert_eq!(status, 403);
    }
    // Everyone may read them.
    let (status, list) = app.get("/api/v1/rulesets", &agent).await;
    assert_eq!(status, 200);
    assert_eq!(list["active"]["id"], "home-services");

    // A supervisor watches but does not feed transcripts.
    let call = app.start_call(&service).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/calls/{call}/segments"),
            &lead,
            json!({"segment_id": "s1", "speaker": "agent", "text": "hi", "start_ms": 0, "end_ms": 10}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // An agent may not follow the whole tenant.
    let mut ws = app.ws(&agent).await;
    ws.send(json!({"type": "subscribe_tenant"})).await;
    let m = ws.next_json().await;
    assert_eq!(m["error"]["code"], "forbidden", "{m}");

    // No token, a malformed one, an unknown one, a revoked one: 401 with a JSON reason.
    let r = app.http.get(app.url("/api/v1/calls")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (status, body) = app.get("/api/v1/calls", "nonsense").await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed")
    );
    let (status, _) = app
        .get(
            "/api/v1/calls",
            "esk_0000000000000000000000000000000000000000",
        )
        .await;
    assert_eq!(status, 401);
    let (status, made) = app
        .post(
            "/api/v1/tokens",
            &app.admin,
            json!({"role": "agent", "name": "temp"}),
        )
        .await;
    assert_eq!(status, 201);
    let temp = made["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/calls", temp).await.0, 200);
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{}", made["id"].as_str().unwrap()),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.get("/api/v1/calls", temp).await.0, 401);
    // The WebSocket upgrade is refused without a valid token.
    let refused = tokio_tungstenite::connect_async(
        app.ws_url("esk_0000000000000000000000000000000000000000"),
    )
    .await;
    assert!(refused.is_err(), "the upgrade must be refused");
    app.stop().await.unwrap();
}
