use std::time::Duration;

use store::testkit::{PgTestDb, TestStore};

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_on_the_embedded_store() {
    let db = TestStore::sqlite();
    let app = spawn_app(db.open_store().await).await;
    let client = reqwest::Client::new();

    let r = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], "ok");

    let r = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"], "sqlite");

    assert_eq!(
        client.get(app.url("/nope")).send().await.unwrap().status(),
        404
    );
    app.stop().await.unwrap();
}

/// On Postgres, readiness follows the database: ready while it answers, 503 with a JSON
/// reason once it is gone — while liveness stays 200.
#[tokio::test]
async fn readyz_reports_a_lost_postgres() {
    let Some(db) = PgTestDb::create("api::readyz_reports_a_lost_postgres").await else {
        return;
    };
    let store = store::open_store(&db.url, store::StoreConfig::default())
        .await
        .unwrap();
    let app = spawn_app(store).await;
    let client = reqwest::Client::new();
    let r = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["store"],
        "postgres"
    );

    db.drop_db().await; // FORCE: terminates the app's connections and removes the database
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let r = client.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == 503 {
            break r.json::<serde_json::Value>().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz never noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["store"], "postgres");
    assert!(body["reason"].as_str().unwrap().contains("store"));
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await.unwrap();
}

/// The server runs the call-index projection: calls appended while it runs are indexed.
#[tokio::test]
async fn serve_keeps_the_call_index_current() {
    let db = TestStore::sqlite();
    let store = db.open_store().await;
    let app = spawn_app(store.clone()).await;
    let call = crate::helpers::seed_call(&db).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Seeded through another store instance: the index catches up by its poll.
        if let Some(l) = store.call_listings(&[call]).await.unwrap().pop()
            && l.alerts == 1
        {
            assert_eq!(l.segments, 2);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call was never indexed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await.unwrap();
}

/// The OpenAPI 3.1 document describes every route of the API, and the docs UI is served from
/// the binary itself (no network needed).
#[tokio::test]
async fn openapi_document_and_docs_ui() {
    let db = TestStore::sqlite();
    let app = spawn_app(db.open_store().await).await;
    let client = reqwest::Client::new();
    let doc: serde_json::Value = client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/calls", "post"),
        ("/api/v1/calls", "get"),
        ("/api/v1/calls/{call_id}", "get"),
        ("/api/v1/calls/{call_id}/end", "post"),
        ("/api/v1/calls/{call_id}/events", "get"),
        ("/api/v1/calls/{call_id}/summary", "get"),
        ("/api/v1/calls/{call_id}/disposition", "put"),
        ("/api/v1/calls/{call_id}/segments", "post"),
        ("/api/v1/calls/{call_id}/alerts/{alert_id}/ack", "post"),
        (
            "/api/v1/calls/{call_id}/suggestions/{suggestion_id}/feedback",
            "post",
        ),
        ("/api/v1/rulesets", "post"),
        (
            "/api/v1/rulesets/{ruleset_id}/versions/{version}/activate",
            "post",
        ),
        ("/api/v1/tokens", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    let r = client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("swagger"));
    let r = client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the UI's script is in the binary");
    app.stop().await.unwrap();
    db.finish().await;
}
