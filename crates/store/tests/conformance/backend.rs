//! What each database itself refuses, whoever asks: the log is append-only below the store
//! code too, and the directory's rules hold below it as well. And a row this build cannot
//! decode is an error naming the event, not a panic.

use domain::{ActorId, CallId, EventId, RulesetId, Seq, TenantId};
use store::testkit::PgTestDb;
use store::{
    Directory, EventStore, ExpectedVersion, NewToken, PgEventStore, SqliteEventStore, StoreConfig,
    StoreError,
};

use crate::fixtures::{segment, started, tenant};

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

/// The committer and the log's reader keep their connections between uses. Backends killed
/// under them (as by a database restart) cost at most one failed attempt each when they were
/// in use, none once they sat idle for a second, and never an event twice.
#[tokio::test]
async fn postgres_kept_connections_are_replaced_after_their_backends_die() {
    let Some(db) = PgTestDb::create("postgres_kept_connections_are_replaced").await else {
        return;
    };
    let store = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    let call = CallId::new();
    let kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                WHERE datname = current_database() AND pid <> pg_backend_pid()";
    // Attempts an append (with the same event ids each time) and a read take.
    let append = async |event: domain::NewEvent| {
        for attempt in 1..=3 {
            match store
                .append(call, &tenant(), ExpectedVersion::Any, vec![event.clone()])
                .await
            {
                Ok(_) => return attempt,
                Err(e) => eprintln!("append attempt {attempt}: {e}"),
            }
        }
        panic!("three failed appends");
    };
    let read = async || {
        for attempt in 1..=3 {
            match store.read_all(domain::GlobalPosition::ZERO, 100).await {
                Ok(events) => return (attempt, events.len()),
                Err(e) => eprintln!("read attempt {attempt}: {e}"),
            }
        }
        panic!("three failed reads");
    };
    assert_eq!(append(started()).await, 1);
    assert_eq!(read().await, (1, 1));

    // Killed while in use: one failure at most, then a fresh connection.
    db.execute(kill).await;
    assert!(append(segment(1, "hello")).await <= 2);
    let (attempts, n) = read().await;
    assert!(attempts <= 2, "{attempts} reads");
    assert_eq!(n, 2);

    // Killed after a second of rest: the pool's check replaces them before any use.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    db.execute(kill).await;
    assert_eq!(append(segment(2, "again")).await, 1);
    assert_eq!(read().await, (1, 3));

    let seqs: Vec<u64> = store
        .read_stream(call, Seq::ZERO, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.meta.seq.get())
        .collect();
    assert_eq!(seqs, [1, 2, 3], "every event once");
    drop(store);
    db.drop_db().await;
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

/// Two tenants; only `acme-hvac` has a ruleset (`home-services@1`).
async fn directory_fixture(store: &dyn Directory) {
    for id in ["acme-hvac", "bolt-electric"] {
        store
            .create_tenant(&TenantId::parse(id).unwrap(), id)
            .await
            .unwrap();
    }
    store
        .insert_ruleset(
            &TenantId::parse("acme-hvac").unwrap(),
            &RulesetId::parse("home-services").unwrap(),
            1,
            "id: home-services\n",
            &ActorId::parse("alice").unwrap(),
        )
        .await
        .unwrap();
}

/// Each statement must fail with an error containing its text.
async fn refused(what: &str, failures: Vec<(&str, Result<(), sqlx::Error>)>) {
    for (expected, result) in failures {
        let err = result.expect_err(expected);
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }
}

#[tokio::test]
async fn postgres_directory_constraints() {
    let Some(db) = PgTestDb::create("postgres_directory_constraints").await else {
        return;
    };
    let store = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    directory_fixture(&store).await;
    let run = async |sql: &str| sqlx::query(sql).execute(store.pool()).await.map(|_| ());
    refused(
        "postgres",
        vec![
            (
                "tenants_active_ruleset_fkey",
                run("UPDATE tenants SET active_ruleset_id = 'home-services', \
                     active_ruleset_version = 1 WHERE id = 'bolt-electric'")
                .await,
            ),
            (
                "tenants_active_ruleset_check",
                run(
                    "UPDATE tenants SET active_ruleset_id = 'home-services' WHERE id = 'acme-hvac'",
                )
                .await,
            ),
            (
                "api_tokens_role_check",
                run(
                    "INSERT INTO api_tokens (id, tenant_id, role, name, secret_sha256, created_at) \
                     VALUES (gen_random_uuid(), 'acme-hvac', 'root', 'x', \
                     decode(repeat('ab', 32), 'hex'), now())",
                )
                .await,
            ),
            (
                "api_tokens_secret_sha256_check",
                run(
                    "INSERT INTO api_tokens (id, tenant_id, role, name, secret_sha256, created_at) \
                     VALUES (gen_random_uuid(), 'acme-hvac', 'admin', 'x', \
                     decode(repeat('ab', 31), 'hex'), now())",
                )
                .await,
            ),
            (
                "rulesets_version_check",
                run(
                    "INSERT INTO rulesets (tenant_id, id, version, source, created_at, created_by) \
                     VALUES ('acme-hvac', 'banking', 0, '', now(), 'alice')",
                )
                .await,
            ),
        ],
    )
    .await;
    // The tenant may activate its own version.
    run(
        "UPDATE tenants SET active_ruleset_id = 'home-services', active_ruleset_version = 1 \
         WHERE id = 'acme-hvac'",
    )
    .await
    .unwrap();
    drop(store);
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_directory_constraints() {
    let (_dir, store) = sqlite_store().await;
    directory_fixture(&store).await;
    let run = async |sql: &str| sqlx::query(sql).execute(store.pool()).await.map(|_| ());
    refused(
        "sqlite",
        vec![
            (
                "FOREIGN KEY constraint failed",
                run("UPDATE tenants SET active_ruleset_id = 'home-services', \
                     active_ruleset_version = 1 WHERE id = 'bolt-electric'")
                .await,
            ),
            (
                "tenants_active_ruleset_check",
                run(
                    "UPDATE tenants SET active_ruleset_id = 'home-services' WHERE id = 'acme-hvac'",
                )
                .await,
            ),
            (
                "api_tokens_role_check",
                run(
                    "INSERT INTO api_tokens (id, tenant_id, role, name, secret_sha256, created_at) \
                     VALUES ('0190a1b2-0000-7000-8000-000000000001', 'acme-hvac', 'root', 'x', \
                     randomblob(32), 0)",
                )
                .await,
            ),
            (
                "api_tokens_secret_sha256_check",
                run(
                    "INSERT INTO api_tokens (id, tenant_id, role, name, secret_sha256, created_at) \
                     VALUES ('0190a1b2-0000-7000-8000-000000000002', 'acme-hvac', 'admin', 'x', \
                     randomblob(31), 0)",
                )
                .await,
            ),
            (
                "api_tokens_secret_sha256_check",
                run(
                    "INSERT INTO api_tokens (id, tenant_id, role, name, secret_sha256, created_at) \
                     VALUES ('0190a1b2-0000-7000-8000-000000000003', 'acme-hvac', 'admin', 'x', \
                     hex(randomblob(16)), 0)",
                )
                .await,
            ),
            (
                "rulesets_version_check",
                run(
                    "INSERT INTO rulesets (tenant_id, id, version, source, created_at, created_by) \
                     VALUES ('acme-hvac', 'banking', 0, '', 0, 'alice')",
                )
                .await,
            ),
        ],
    )
    .await;
    run(
        "UPDATE tenants SET active_ruleset_id = 'home-services', active_ruleset_version = 1 \
         WHERE id = 'acme-hvac'",
    )
    .await
    .unwrap();
}

/// The production set-up again: with `infra/postgres/roles.sql`, the server's role can do every
/// directory operation, and still cannot delete tenants or tokens or rewrite a ruleset.
#[tokio::test]
async fn postgres_server_role_directory_grants() {
    use sqlx::{Connection, Executor, PgConnection};
    let Some(db) = PgTestDb::create("postgres_server_role_directory_grants").await else {
        return;
    };
    let owner = PgEventStore::connect(&db.url, StoreConfig::default())
        .await
        .unwrap();
    let role = format!("earshot_app_{}", uuid::Uuid::new_v4().simple());
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/postgres/roles.sql"
    ))
    .unwrap();
    let script = script
        .replace("earshot_app", &role)
        .replace(":app_password", "'app-pw'");
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    conn.execute(script.as_str()).await.unwrap();

    let config = StoreConfig {
        run_migrations: false,
        ..StoreConfig::default()
    };
    let app = PgEventStore::connect(&as_user(&db.url, &role, "app-pw"), config)
        .await
        .unwrap();
    assert_eq!(app.tenant_count().await.unwrap(), 0);
    directory_fixture(&app).await;
    let acme = TenantId::parse("acme-hvac").unwrap();
    let hs = RulesetId::parse("home-services").unwrap();
    assert_eq!(app.list_tenants().await.unwrap().len(), 2);
    assert!(app.tenant(&acme).await.unwrap().is_some());
    let token = NewToken {
        id: domain::TokenId::new(),
        tenant: acme.clone(),
        role: domain::Role::Admin,
        name: "alice".into(),
        secret_sha256: [5; 32],
    };
    app.create_token(token.clone()).await.unwrap();
    assert!(app.find_token(&[5; 32]).await.unwrap().is_some());
    assert_eq!(app.list_tokens(&acme).await.unwrap().len(), 1);
    assert!(app.revoke_token(&acme, token.id).await.unwrap());
    app.activate_ruleset(&acme, &hs, 1).await.unwrap();
    assert!(app.active_ruleset(&acme).await.unwrap().is_some());
    assert!(app.ruleset(&acme, &hs, 1).await.unwrap().unwrap().active);
    assert!(app.latest_ruleset(&acme, &hs).await.unwrap().is_some());
    assert_eq!(app.list_rulesets(&acme).await.unwrap().len(), 1);
    for sql in [
        "DELETE FROM tenants",
        "DELETE FROM api_tokens",
        "UPDATE rulesets SET source = ''",
        "DELETE FROM rulesets",
    ] {
        let err = sqlx::query(sql).execute(app.pool()).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
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

/// A migrated SQLite store in a temp dir (kept alive by the returned guard).
async fn sqlite_store() -> (tempfile::TempDir, SqliteEventStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("e.db").display());
    let store = SqliteEventStore::open(&url, StoreConfig::default())
        .await
        .unwrap();
    (dir, store)
}
