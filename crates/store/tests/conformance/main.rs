//! One conformance suite, run against every `EventStore` implementation: each case in
//! `suite.rs` runs once on SQLite (a temp file) and once on Postgres (a fresh database).
//! Backend-specific checks (what the database itself refuses) are in `backend.rs`.

mod backend;
mod fixtures;
mod suite;

use std::sync::Arc;

use store::EventStore;
use store::testkit::TestStore;

/// Two store instances on one database, as two server nodes would have.
pub struct Harness {
    pub store: Arc<dyn EventStore>,
    pub other_node: Arc<dyn EventStore>,
    db: TestStore,
}

impl Harness {
    async fn on(db: TestStore) -> Harness {
        Harness {
            store: db.open().await,
            other_node: db.open().await,
            db,
        }
    }

    pub async fn sqlite() -> Harness {
        Harness::on(TestStore::sqlite()).await
    }

    pub async fn postgres(test: &str) -> Option<Harness> {
        Some(Harness::on(TestStore::postgres(test).await?).await)
    }

    pub async fn finish(self) {
        drop(self.store);
        drop(self.other_node);
        self.db.finish().await;
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = crate::Harness::sqlite().await;
                    crate::suite::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(h) = crate::Harness::postgres(concat!("postgres::", stringify!($case))).await else {
                        return;
                    };
                    crate::suite::$case(&h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

conformance!(
    append_and_read_back,
    wrong_expected_version_is_a_conflict,
    idempotent_retry_returns_original_positions,
    partial_or_foreign_retry_is_refused,
    racing_retries_write_once,
    read_ordering_and_paging,
    read_all_from_a_checkpoint,
    other_tenant_cannot_append,
    bad_appends_write_nothing,
    wakeups_follow_commits,
    concurrent_writers_and_a_tailing_consumer,
);
