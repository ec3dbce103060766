//! One conformance suite, run against every `Store` implementation: each case in
//! `suite.rs` (the log) and `directory.rs` (tenants, tokens, rulesets) runs once on SQLite (a
//! temp file) and once on Postgres (a fresh database). Backend-specific checks (what the
//! database itself refuses) are in `backend.rs`.

mod backend;
mod directory;
mod fixtures;
mod suite;

use std::sync::Arc;

use store::Store;
use store::testkit::TestStore;

/// Two store instances on one database, as two server nodes would have.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub other_node: Arc<dyn Store>,
    /// Whether one node hears of the other's commits (Postgres: `LISTEN`; SQLite has no
    /// second node in practice and sends none).
    pub wakes_across_nodes: bool,
    db: TestStore,
}

impl Harness {
    async fn on(db: TestStore, wakes_across_nodes: bool) -> Harness {
        Harness {
            store: db.open_store().await,
            other_node: db.open_store().await,
            wakes_across_nodes,
            db,
        }
    }

    pub async fn sqlite() -> Harness {
        Harness::on(TestStore::sqlite(), false).await
    }

    pub async fn postgres(test: &str) -> Option<Harness> {
        Some(Harness::on(TestStore::postgres(test).await?, true).await)
    }

    /// A third node that has committed nothing and heard of nothing: every read it makes
    /// is answered by the database.
    pub async fn fresh_node(&self) -> Arc<dyn Store> {
        self.db.open_store().await
    }

    pub async fn finish(self) {
        drop(self.store);
        drop(self.other_node);
        self.db.finish().await;
    }
}

/// `conformance!(module: [case, …], …)` runs each `crate::module::case(&Harness)` as
/// `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        mod sqlite {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = crate::Harness::sqlite().await;
                    crate::$module::$case(&h).await;
                    h.finish().await;
                }
            )*)*
        }
        mod postgres {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(h) = crate::Harness::postgres(concat!("postgres::", stringify!($case))).await else {
                        return;
                    };
                    crate::$module::$case(&h).await;
                    h.finish().await;
                }
            )*)*
        }
    };
}

conformance!(
    suite: [
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
        read_all_on_the_writing_node_is_the_logs,
        one_call_written_from_two_nodes,
    ],
    directory: [
        tenants_create_count_list_and_refuse_duplicates,
        tokens_are_found_by_hash_until_revoked,
        token_for_unknown_tenant_is_not_found,
        token_roles_round_trip,
        token_id_and_secret_are_unique,
        rulesets_versions_latest_and_order,
        ruleset_activation,
        ruleset_for_unknown_tenant_or_bad_version_is_refused,
        tenants_are_isolated,
    ],
);
