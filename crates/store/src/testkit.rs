//! Fresh PostgreSQL databases for tests.
//!
//! With `DATABASE_URL` set (any database on the server; the role must be allowed to create
//! databases), each test gets a new, empty database on that server, dropped by
//! [`PgTestDb::drop_db`]. Without it, a throw-away Postgres container is started with
//! testcontainers. If neither works the test is skipped with a loud message — unless
//! `EARSHOT_REQUIRE_POSTGRES=1`, as CI sets it, in which case it fails: a CI run never passes
//! by skipping the Postgres tests.

use std::sync::Arc;

use sqlx::{Connection, Executor, PgConnection};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

use crate::{EventStore, Store, StoreConfig};

pub const REQUIRE_ENV: &str = "EARSHOT_REQUIRE_POSTGRES";

/// A database made for one test.
pub struct PgTestDb {
    /// Connect here.
    pub url: String,
    admin_url: String,
    name: String,
    _container: Option<ContainerAsync<Postgres>>,
}

impl PgTestDb {
    /// Creates a fresh database, or returns `None` (after saying so on stderr) when no
    /// Postgres can be had and it is not required. `test` names the test in that message.
    pub async fn create(test: &str) -> Option<PgTestDb> {
        let (admin_url, container) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => match Postgres::default().start().await {
                Ok(c) => {
                    let host = c.get_host().await.ok()?;
                    let port = c.get_host_port_ipv4(5432).await.ok()?;
                    (
                        format!("postgres://postgres:postgres@{host}:{port}/postgres"),
                        Some(c),
                    )
                }
                Err(e) => {
                    return skip(
                        test,
                        &format!("no DATABASE_URL and no container runtime ({e})"),
                    );
                }
            },
        };
        let name = format!("earshot_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => return skip(test, &format!("cannot connect to DATABASE_URL: {e}")),
        };
        if let Err(e) = admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
        {
            return skip(test, &format!("cannot create a test database: {e}"));
        }
        Some(PgTestDb {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
            _container: container,
        })
    }

    /// A URL of the server's administrative database (to create roles, say).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Runs `sql` (one or more statements) on the test's database: for a test that
    /// changes it under a running server (a trigger that makes appends fail, say).
    pub async fn execute(&self, sql: &str) {
        let mut conn = PgConnection::connect(&self.url)
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Drops the database (closing any connection still open to it).
    pub async fn drop_db(self) {
        if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(e) = admin.execute(sql.as_str()).await {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
        }
    }
}

/// An empty store of either backend for one test: an SQLite file in a temp dir, or a fresh
/// Postgres database. Open it as many times as the test needs nodes.
pub struct TestStore {
    pub url: String,
    db: Option<PgTestDb>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    pub fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().expect("a temp dir");
        TestStore {
            url: format!("sqlite://{}", dir.path().join("events.db").display()),
            db: None,
            _dir: Some(dir),
        }
    }

    /// `None` when Postgres is unavailable and not required (see [`PgTestDb::create`]).
    pub async fn postgres(test: &str) -> Option<TestStore> {
        let db = PgTestDb::create(test).await?;
        Some(TestStore {
            url: db.url.clone(),
            db: Some(db),
            _dir: None,
        })
    }

    /// Opens (and migrates) the store: one more "node" on the same database.
    pub async fn open(&self) -> Arc<dyn EventStore> {
        crate::open(&self.url, StoreConfig::default())
            .await
            .expect("open the test store")
    }

    /// Like [`TestStore::open`], with the directory too.
    pub async fn open_store(&self) -> Arc<dyn Store> {
        crate::open_store(&self.url, StoreConfig::default())
            .await
            .expect("open the test store")
    }

    /// Drops the Postgres database (the SQLite temp dir goes with `self`). Close every store
    /// opened on it first.
    pub async fn finish(self) {
        if let Some(db) = self.db {
            db.drop_db().await;
        }
    }
}

fn skip(test: &str, why: &str) -> Option<PgTestDb> {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v == "true") {
        panic!("{test}: Postgres is required ({REQUIRE_ENV} is set) but {why}");
    }
    // Straight to stderr, not `eprintln!`: the test harness captures the macros' output of a
    // passing test, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!! SKIPPED Postgres test {test}: {why}.\n!!!!!! Set DATABASE_URL=postgres://… to run it.\n"
    );
    None
}

/// `postgres://u@h:5432/db?x=y` with `db` replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        use super::with_database as w;
        assert_eq!(
            w("postgres://p@127.0.0.1:5432/test", "x"),
            "postgres://p@127.0.0.1:5432/x"
        );
        assert_eq!(
            w("postgres://p@h/test?sslmode=disable", "x"),
            "postgres://p@h/x?sslmode=disable"
        );
        assert_eq!(w("postgres://p@h", "x"), "postgres://p@h/x");
    }
}
