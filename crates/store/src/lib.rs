//! The `call_events` log and the directory beside it (tenants, API tokens, rulesets): the
//! only code in the workspace that speaks SQL.
//!
//! Two traits — [`EventStore`] (the log) and [`Directory`] — and two implementations of
//! both, with the same semantics, checked by one conformance suite (`tests/conformance`):
//!
//! - [`PgEventStore`]: PostgreSQL, for production and for several server nodes on one
//!   database.
//! - [`SqliteEventStore`]: an SQLite file in WAL mode, the embedded default.
//!
//! [`Store`] is both traits at once, what the server holds; [`open_store`] opens one.
//!
//! # Guarantees
//!
//! - **Per-call order and optimistic concurrency**: each call's events are numbered
//!   `seq = 1, 2, …` with no gaps (`UNIQUE (call_id, seq)`); an append names the version it
//!   expects and fails with [`StoreError::Conflict`], carrying the current version, if the
//!   stream moved.
//! - **Idempotency**: `UNIQUE (event_id)`. Re-appending events already in the log writes
//!   nothing and returns their original positions.
//! - **All or nothing**: the events of one append are written in one transaction.
//! - **No skipped events**: global positions become visible in increasing order, so a
//!   consumer that reads `position > checkpoint` never misses an event committed late.
//!   Appends are serialized (one committer task per process, and on Postgres a transaction
//!   advisory lock across processes); to keep throughput high the committer groups the
//!   appends waiting for it into one transaction (group commit). See ARCHITECTURE.md.
//! - **Append-only**: enforced by triggers in the database, not by convention.
//!
//! The directory is ordinary mutable data (tokens are revoked, rulesets activated) and is
//! not part of the log: its writes are single statements, independent of the committer.
//! Its invariants are constraints in the database: a token or ruleset belongs to an
//! existing tenant, a token's secret hash is unique, ruleset versions are never overwritten,
//! and a tenant's active ruleset is one of its own versions.
//!
//! # Layout
//!
//! - `lib.rs`: the log's trait, its argument and result types, [`StoreError`], [`Store`],
//!   [`open`] and [`open_store`].
//! - `batch`: the pure part of group commit: checks a batch of appends against the stream
//!   heads and the already-stored event ids, and assigns sequence numbers.
//! - `postgres`, `sqlite`: the two implementations of the log, each with its committer task.
//! - `directory`: the [`Directory`] trait and its types ([`Tenant`], [`NewToken`],
//!   [`TokenRecord`], [`StoredRuleset`]), what each named constraint of its tables means
//!   as a [`StoreError`], and (`directory/{postgres,sqlite}`) its two implementations.
//! - `testkit` (feature `testkit`): fresh Postgres databases for tests.
//! - `migrations/{postgres,sqlite}`: the schema, embedded with `sqlx::migrate!`:
//!   `0001` the log, `0002` the call list, `0003` the directory (`tenants`, `api_tokens`,
//!   `rulesets`).

mod batch;
mod directory;
mod heads;
mod postgres;
mod recent;
mod row;
mod sqlite;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    AgentId, CallId, CallListing, CallStatus, DecodeError, EventId, GlobalPosition, NewEvent,
    RecordedEvent, Seq, TenantId,
};
use tokio::sync::broadcast;

pub use directory::{Directory, NewToken, StoredRuleset, Tenant, TokenRecord};
pub use postgres::PgEventStore;
pub use sqlite::SqliteEventStore;

/// What an append expects the stream's version (the seq of its last event) to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must be at exactly this version; `Exact(Seq::ZERO)` means it must not exist.
    Exact(Seq),
}

/// The result of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    pub call_id: CallId,
    /// `(seq, global position)` of each event, in the order given.
    pub positions: Vec<(Seq, GlobalPosition)>,
    /// True when every event was already in the log: nothing was written and `positions`
    /// are the original ones.
    pub deduplicated: bool,
}

impl AppendOutcome {
    /// The stream version after the append.
    pub fn last_seq(&self) -> Seq {
        self.positions.last().map(|p| p.0).unwrap_or(Seq::ZERO)
    }

    pub fn last_position(&self) -> GlobalPosition {
        self.positions
            .last()
            .map(|p| p.1)
            .unwrap_or(GlobalPosition::ZERO)
    }
}

/// A wake-up sent after events are committed. It carries no payload: a consumer reads the
/// rows from its own position. On Postgres, wake-ups of appends made by other processes
/// arrive through `LISTEN call_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// The call's stream now reaches `seq`, and the log reaches at least `position`.
    Appended {
        call_id: CallId,
        seq: Seq,
        position: GlobalPosition,
    },
    /// Wake-ups may have been missed (the notification connection dropped and reconnected):
    /// every consumer should re-read from its position.
    Resync,
}

/// A page of the call list. Pages are keyed, not offset: pass the `(started_at, call_id)` of
/// the last row of a page as `before` to get the next.
#[derive(Clone, Debug)]
pub struct CallQuery {
    pub tenant: TenantId,
    pub status: Option<CallStatus>,
    pub agent: Option<AgentId>,
    pub since: Option<DateTime<Utc>>,
    pub before: Option<(DateTime<Utc>, CallId)>,
    pub limit: usize,
}

impl CallQuery {
    pub fn tenant(tenant: TenantId) -> Self {
        Self {
            tenant,
            status: None,
            agent: None,
            since: None,
            before: None,
            limit: 50,
        }
    }
}

pub(crate) fn status_str(s: CallStatus) -> &'static str {
    match s {
        CallStatus::NotStarted => "not_started",
        CallStatus::Live => "live",
        CallStatus::Ended => "ended",
    }
}

/// Limits and tuning shared by both implementations.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// An event whose JSON payload is larger than this is refused before any transaction.
    pub max_payload_bytes: usize,
    /// The most events the committer writes in one transaction. 1 turns group commit off.
    pub max_batch_events: usize,
    /// Connections in the read pool.
    pub max_connections: u32,
    /// Run the embedded migrations on open. Off when the server's database role may not
    /// change the schema (production); then open only checks that every migration has been
    /// applied (by `earshot migrate` as the owner role).
    pub run_migrations: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_payload_bytes: 64 * 1024,
            max_batch_events: 2_000,
            max_connections: 8,
            run_migrations: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("call {call_id}: expected version {expected}, but the stream is at {current}")]
    Conflict {
        call_id: CallId,
        expected: Seq,
        current: Seq,
    },
    #[error("call {call_id} belongs to another tenant")]
    TenantMismatch { call_id: CallId },
    #[error(
        "event {event_id} is already in the log, but the append does not repeat the original one \
         (a retry must resend the same events, for the same call, in the same order)"
    )]
    IdempotencyMismatch { event_id: EventId },
    #[error("event {event_id}: payload is {size} bytes, over the limit of {limit}")]
    PayloadTooLarge {
        event_id: EventId,
        size: usize,
        limit: usize,
    },
    #[error(
        "consumer {consumer:?} expected its checkpoint at {expected}, but it is at {current} \
         (another instance of it is running)"
    )]
    CheckpointMoved {
        consumer: String,
        expected: GlobalPosition,
        current: GlobalPosition,
    },
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("event {event_id} in the log cannot be read: {source}")]
    Decode {
        event_id: EventId,
        #[source]
        source: DecodeError,
    },
    #[error("corrupt row in the log: {0}")]
    Corrupt(String),
    #[error("the store's committer has stopped")]
    Closed,
    #[error("unsupported database URL {0:?}: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    #[error(
        "the database schema is behind this build (migrations {missing:?} not applied): \
         run `earshot migrate` with a role that owns the schema"
    )]
    SchemaBehind { missing: Vec<i64> },
    /// A directory entry with this id exists already (a tenant, a token, a ruleset version).
    #[error("{what} {id} already exists")]
    AlreadyExists { what: &'static str, id: String },
    /// The directory entry an operation names does not exist (for that tenant).
    #[error("no {what} {id}")]
    NotFound { what: &'static str, id: String },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The append-only event log.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to the call's stream in one transaction. See the crate docs for the
    /// concurrency and idempotency rules.
    async fn append(
        &self,
        call_id: CallId,
        tenant: &TenantId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Up to `limit` events of one call with `seq > after`, in seq order.
    async fn read_stream(
        &self,
        call_id: CallId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of all calls with `position > after`, in position order. A
    /// consumer that keeps the last position it saw never skips or repeats an event.
    async fn read_all(
        &self,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The call's version: the seq of its last event, `Seq::ZERO` if it has none.
    async fn stream_version(&self, call_id: CallId) -> Result<Seq, StoreError>;

    /// The position of the last committed event, `GlobalPosition::ZERO` if the log is empty.
    async fn head(&self) -> Result<GlobalPosition, StoreError>;

    /// Wake-ups for newly committed events. A lagging receiver gets
    /// `RecvError::Lagged`: it must re-read from its position, not stop.
    fn subscribe(&self) -> broadcast::Receiver<Wakeup>;

    /// The consumer's durable checkpoint (`GlobalPosition::ZERO` if it never saved one).
    async fn load_checkpoint(&self, consumer: &str) -> Result<GlobalPosition, StoreError>;

    async fn save_checkpoint(
        &self,
        consumer: &str,
        position: GlobalPosition,
    ) -> Result<(), StoreError>;

    /// The call-list rows of these calls; calls without a row are left out.
    async fn call_listings(&self, ids: &[CallId]) -> Result<Vec<CallListing>, StoreError>;

    /// Upserts call-list rows and moves `consumer`'s checkpoint from `from` to `to`, in one
    /// transaction. Fails with [`StoreError::CheckpointMoved`], writing nothing, if the
    /// checkpoint is not at `from` (another instance of the consumer got there first).
    async fn commit_call_listings(
        &self,
        rows: &[CallListing],
        consumer: &str,
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<(), StoreError>;

    /// A page of one tenant's call list, newest first.
    async fn list_calls(&self, query: &CallQuery) -> Result<Vec<CallListing>, StoreError>;

    /// Checks the database answers (for readiness probes).
    async fn ping(&self) -> Result<(), StoreError>;

    /// `"postgres"` or `"sqlite"`.
    fn backend(&self) -> &'static str;
}

/// Everything the server needs from its database: the log and the directory.
pub trait Store: EventStore + Directory {}

impl<T: EventStore + Directory> Store for T {}

/// Opens (and migrates) the store a URL names: `postgres://…`/`postgresql://…` or
/// `sqlite://PATH` (created if missing).
pub async fn open(url: &str, config: StoreConfig) -> Result<Arc<dyn EventStore>, StoreError> {
    let store: Arc<dyn EventStore> = open_store(url, config).await?;
    Ok(store)
}

/// Like [`open`], but the result is also a [`Directory`]. (An `Arc<dyn Store>` coerces to
/// an `Arc<dyn EventStore>`.)
pub async fn open_store(url: &str, config: StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgEventStore::connect(url, config).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteEventStore::open(url, config).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Fails with [`StoreError::SchemaBehind`] unless every migration of `migrator` is among the
/// `applied` versions.
pub(crate) fn check_migrated(
    migrator: &sqlx::migrate::Migrator,
    applied: &[i64],
) -> Result<(), StoreError> {
    let missing: Vec<i64> = migrator
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::SchemaBehind { missing })
    }
}

/// Runs the migrations a URL's backend needs, without keeping the store open.
pub async fn migrate(url: &str) -> Result<&'static str, StoreError> {
    let store = open(url, StoreConfig::default()).await?;
    Ok(store.backend())
}

/// A URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Reads a call's whole stream, in pages, up to and including `up_to` (all of it if `None`).
pub async fn load_stream(
    store: &dyn EventStore,
    call_id: CallId,
    up_to: Option<Seq>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    const PAGE: usize = 5_000;
    let mut out = Vec::new();
    let mut after = Seq::ZERO;
    loop {
        let page = store.read_stream(call_id, after, PAGE).await?;
        let full = page.len() == PAGE;
        for e in page {
            if up_to.is_some_and(|limit| e.meta.seq > limit) {
                return Ok(out);
            }
            after = e.meta.seq;
            out.push(e);
        }
        if !full {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db:5432/earshot"),
            "postgres://app:***@db:5432/earshot"
        );
        assert_eq!(
            super::redact_url("postgres://db/earshot"),
            "postgres://db/earshot"
        );
        assert_eq!(
            super::redact_url("sqlite://data/earshot.db"),
            "sqlite://data/earshot.db"
        );
    }
}
