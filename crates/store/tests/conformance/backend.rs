//! What each database itself refuses, whoever asks: the log is append-only below the store
//! code too. And a row this build cannot decode is an error naming the event, not a panic.

use domain::{CallId, EventId, Seq};
use store::testkit::PgTestDb;
use store::{EventStore, ExpectedVersion, PgEventStore, SqliteEventStore, StoreConfig, StoreError};

use crate::fixtures::{started, tenant};

#[tokio::test]
async fn postgres_refuses_update_delete_and_truncate() {
    let Some(db) = PgTestDb::create("postgres_refuses_update_delete_and_truncate").await else {
        return;
    };
    let store = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    let call = CallId::new();
    store
        .append(call, &tenant(), ExpectedVersion::Any, vec![started()])
        .await
        .unwrap();
    for sql in [
        "UPDATE call_events SET event_type = 'call_ended'",
        "DELETE FROM call_events",
        "TRUNCATE call_events",
        "TRUNCATE call_events CASCADE",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("call_events is append-only"), "{sql}: {msg}");
    }
    assert_eq!(store.stream_version(call).await.unwrap(), Seq::new(1));
    drop(store);
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_refuses_update_and_delete() {
    let (_dir, store) = sqlite_store().await;
    let call = CallId::new();
    store
        .append(call, &tenant(), ExpectedVersion::Any, vec![started()])
        .await
        .unwrap();
    for sql in [
        "UPDATE call_events SET event_type = 'call_ended'",
        "DELETE FROM call_events",
        "DELETE FROM call_events WHERE seq = 1",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
        assert!(
            err.to_string().contains("call_events is append-only"),
            "{sql}: {err}"
        );
    }
    assert_eq!(store.stream_version(call).await.unwrap(), Seq::new(1));
}

/// Rows written by a newer build (an unknown type, a newer schema version) or damaged by
/// hand: reads fail with an error that names the event, and other calls still read.
async fn undecodable(store: &dyn EventStore, insert: impl AsyncFn(EventId, CallId, &str, i64)) {
    let good = CallId::new();
    store
        .append(good, &tenant(), ExpectedVersion::Any, vec![started()])
        .await
        .unwrap();
    for (event_type, version) in [("call_teleported", 1), ("call_started", 7)] {
        let id = EventId::new();
        let call = CallId::new();
        insert(id, call, event_type, version).await;
        let err = store.read_stream(call, Seq::ZERO, 10).await.unwrap_err();
        match &err {
            StoreError::Decode { event_id, .. } => assert_eq!(*event_id, id),
            other => panic!("expected a decode error, got {other:?}"),
        }
        assert!(err.to_string().contains(&id.to_string()));
        assert!(err.to_string().contains(event_type), "{err}");
    }
    assert_eq!(
        store.read_stream(good, Seq::ZERO, 10).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn postgres_undecodable_rows_are_named_errors() {
    let Some(db) = PgTestDb::create("postgres_undecodable_rows_are_named_errors").await else {
        return;
    };
    let store = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    let pool = store.pool().clone();
    let insert = async |id: EventId, call: CallId, ty: &str, v: i64| {
        sqlx::query(
            "INSERT INTO call_events (event_id, tenant_id, call_id, seq, event_type, schema_version, payload, recorded_at) \
             VALUES ($1, 'acme-hvac', $2, 1, $3, $4, '{}', now())",
        )
        .bind(id.as_uuid())
        .bind(call.as_uuid())
        .bind(ty)
        .bind(v as i16)
        .execute(&pool)
        .await
        .unwrap();
    };
    undecodable(&store, insert).await;
    drop(store);
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_undecodable_rows_are_named_errors() {
    let (_dir, store) = sqlite_store().await;
    let pool = store.pool().clone();
    let insert = async |id: EventId, call: CallId, ty: &str, v: i64| {
        sqlx::query(
            "INSERT INTO call_events (event_id, tenant_id, call_id, seq, event_type, schema_version, payload, recorded_at) \
             VALUES (?, 'acme-hvac', ?, 1, ?, ?, '{}', '2026-01-01T00:00:00Z')",
        )
        .bind(id.to_string())
        .bind(call.to_string())
        .bind(ty)
        .bind(v)
        .execute(&pool)
        .await
        .unwrap();
    };
    undecodable(&store, insert).await;
}

/// `url` with its user and password replaced.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let scheme_end = url.find("://").expect("a URL") + 3;
    let rest = &url[scheme_end..];
    let host = rest.rfind('@').map(|at| &rest[at + 1..]).unwrap_or(rest);
    format!("{}{user}:{password}@{host}", &url[..scheme_end])
}

/// The production set-up: the owner migrates, the server runs as the role of
/// `infra/postgres/roles.sql`, which can append and read but neither change the schema nor
/// get around the append-only triggers.
#[tokio::test]
async fn postgres_restricted_server_role() {
    use sqlx::{Connection, Executor, PgConnection};
    let Some(db) = PgTestDb::create("postgres_restricted_server_role").await else {
        return;
    };
    // An unmigrated database: a store that may not migrate says what to do.
    let config = StoreConfig {
        run_migrations: false,
        ..StoreConfig::default()
    };
    let err = PgEventStore::connect(&db.url, config.clone())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("run `earshot migrate`"), "{err}");

    let owner = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    let role = format!("earshot_app_{}", uuid::Uuid::new_v4().simple());
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/postgres/roles.sql"
    ))
    .unwrap()
    .replace("earshot_app", &role)
    .replace(":app_password", "'app-pw'");
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    conn.execute(script.as_str()).await.unwrap();

    let app_url = as_user(&db.url, &role, "app-pw");
    let err = PgEventStore::connect(&app_url, StoreConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, StoreError::Migrate(_)),
        "the app role cannot migrate: {err}"
    );
    let app = PgEventStore::connect(&app_url, config).await.unwrap();
    let call = CallId::new();
    app.append(
        call,
        &tenant(),
        ExpectedVersion::Exact(Seq::ZERO),
        vec![started()],
    )
    .await
    .unwrap();
    assert_eq!(owner.stream_version(call).await.unwrap(), Seq::new(1));
    app.save_checkpoint("call-index", domain::GlobalPosition::new(1))
        .await
        .unwrap();
    for sql in [
        "ALTER TABLE call_events DISABLE TRIGGER ALL",
        "DROP TRIGGER call_events_no_update_or_delete ON call_events",
        "DELETE FROM call_events",
    ] {
        let err = sqlx::query(sql).execute(app.pool()).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("must be owner") || msg.contains("permission denied"),
            "{sql}: {msg}"
        );
    }
    drop(app);
    drop(owner);
    drop(conn);
    let admin = db.admin_url().to_owned();
    db.drop_db().await;
    let mut admin = PgConnection::connect(&admin).await.unwrap();
    admin
        .execute(format!("DROP ROLE \"{role}\"").as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_unmigrated_file_is_refused_without_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("e.db").display());
    let config = StoreConfig {
        run_migrations: false,
        ..StoreConfig::default()
    };
    let err = SqliteEventStore::open(&url, config.clone())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::SchemaBehind { .. }), "{err}");
    drop(
        SqliteEventStore::open(&url, StoreConfig::default())
            .await
            .unwrap(),
    );
    SqliteEventStore::open(&url, config).await.unwrap();
}

/// A node hears the other nodes' appends (LISTEN/NOTIFY), with the call, seq and position —
/// and only once the rows are committed and readable.
#[tokio::test]
async fn postgres_wakes_other_nodes() {
    use store::Wakeup;
    let Some(db) = PgTestDb::create("postgres_wakes_other_nodes").await else {
        return;
    };
    let a = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    let b = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    let mut rx = b.subscribe();
    // The listener says Resync once it is listening; wait for that so no notice is missed.
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !matches!(rx.recv().await, Ok(Wakeup::Resync)) {}
    })
    .await
    .expect("b's listener started");
    let call = CallId::new();
    let out = a
        .append(
            call,
            &tenant(),
            ExpectedVersion::Exact(Seq::ZERO),
            vec![started(), crate::fixtures::segment(1, "hi")],
        )
        .await
        .unwrap();
    let (seq, position) = crate::fixtures::wakeup_for(&mut rx, call).await;
    assert_eq!((seq, position), (out.last_seq(), out.last_position()));
    assert_eq!(b.read_stream(call, Seq::ZERO, 10).await.unwrap().len(), 2);
    drop((a, b));
    db.drop_db().await;
}

/// A migrated SQLite store in a temp dir (kept alive by the returned guard).
async fn sqlite_store() -> (tempfile::TempDir, SqliteEventStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("e.db").display());
    let store = SqliteEventStore::open(&url, StoreConfig::default())
        .await
        .unwrap();
    (dir, store)
}
