//! PostgreSQL implementation of [`EventStore`].
//!
//! Appends are serialized with a transaction-scoped advisory lock taken before any position
//! is drawn from the identity sequence, so positions commit in increasing order on every
//! node sharing the database and `position > checkpoint` readers never skip a late commit.
//! Within a process, one committer task groups concurrent appends into one transaction (one
//! lock, one WAL flush) to keep throughput high. Each committed transaction sends one
//! `NOTIFY call_events` per call it touched, carrying only `{node, call, seq, position}`:
//! other nodes' listeners turn it into a local [`Wakeup`] and read the rows themselves.
//! The events a node committed itself are also kept for a moment ([`Recent`]), so its own
//! readers (the hub, after every commit) do not read them back from the database.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use domain::{
    CallId, CallListing, EventId, GlobalPosition, NewEvent, RecordedEvent, Seq, TenantId,
};
use serde::{Deserialize, Serialize};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Row, Transaction};
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::batch::{self, AppendRequest, Committer, Head, Plan, Stored};
use crate::heads::{self, KnownHeads};
use crate::recent::{self, Recent};
use crate::row::{RawEvent, to_i64};
use crate::row::{listing_from_json, listing_to_json};
use crate::{
    AppendOutcome, CallQuery, EventStore, ExpectedVersion, StoreConfig, StoreError, Wakeup,
    status_str,
};

/// The key of the advisory lock that serializes appends: "earshot" + 1 in ASCII
/// (0x6561_7273_686f_7401).
macro_rules! append_lock {
    () => {
        "pg_advisory_xact_lock(7305245910570595329)"
    };
}

/// Opens an append transaction and takes the lock, in one round trip.
const BEGIN_APPEND: &str = concat!("BEGIN; SELECT ", append_lock!());

/// The batch's insert: one statement for the whole batch. WITH ORDINALITY + ORDER BY makes
/// the identity values follow the order of the arrays, i.e. seq order within a call. The
/// same statement sends one NOTIFY per call (delivered at commit, never before). `$with` (a
/// CTE) and `$from` (a relation joined with the rows) are empty inside the append
/// transaction, which holds the lock already; for the statement on its own they take it.
macro_rules! insert_events {
    ($with:expr, $from:expr) => {
        concat!(
            "WITH ", $with, "ins AS ( \
                 INSERT INTO call_events (event_id, tenant_id, call_id, seq, event_type, \
                     schema_version, payload, trace_id, causation_id, correlation_id, recorded_at) \
                 SELECT u.event_id, u.tenant_id, u.call_id, u.seq, u.event_type, \
                     u.schema_version, u.payload::jsonb, u.trace_id, u.causation_id, \
                     u.correlation_id, $11 \
                 FROM ", $from, "UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::int8[], $5::text[], \
                     $6::int2[], $7::text[], $8::text[], $9::uuid[], $10::uuid[]) \
                     WITH ORDINALITY AS u(event_id, tenant_id, call_id, seq, event_type, \
                     schema_version, payload, trace_id, causation_id, correlation_id, ord) \
                 ORDER BY u.ord \
                 RETURNING event_id, call_id, seq, position), \
             notices AS ( \
                 SELECT pg_notify($12, json_build_object('node', $13::uuid, 'call', call_id, \
                     'seq', max(seq), 'position', max(position))::text) \
                 FROM ins GROUP BY call_id) \
             SELECT event_id, position, (SELECT count(*) FROM notices) AS notices FROM ins"
        )
    };
}

/// The insert inside the append transaction, after `BEGIN_APPEND`.
const INSERT_IN_TRANSACTION: &str = insert_events!("", "");

/// The insert as a transaction of its own (autocommit): the lock is taken before any row
/// reaches the insert, so before any position is drawn (every row is joined with the lock's
/// one row, and the sort takes them all before the first is inserted), and it is held until
/// the statement's commit, as in the append transaction.
const INSERT_ALONE: &str = insert_events!(
    concat!("lock AS MATERIALIZED (SELECT ", append_lock!(), "), "),
    "lock, "
);
const CHANNEL: &str = "call_events";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgEventStore {
    pool: PgPool,
    /// The connection `read_all` keeps between reads, for whichever reader finds it free
    /// (the hub's tail, on every commit, most of the time).
    reader: Mutex<Held>,
    /// What this node committed last, for `read_all`.
    recent: Arc<Recent>,
    queue: mpsc::Sender<AppendRequest>,
    wakeups: broadcast::Sender<Wakeup>,
    config: StoreConfig,
    listener: JoinHandle<()>,
}

impl PgEventStore {
    /// Connects, runs the embedded migrations (safe to race: sqlx takes its own lock) and
    /// starts the committer and the notification listener.
    pub async fn connect(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        // Plan every statement for its actual parameters. sqlx prepares statements once per
        // connection; Postgres then switches to a generic plan chosen with the statistics of
        // that moment, and a plan chosen while `call_events` was nearly empty (a sequential
        // scan) is kept as the table grows, until the next ANALYZE: appends slowed down
        // several-fold within a minute in the benchmark. Planning these small statements
        // costs tens of microseconds.
        let options =
            PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(2))
            .connect_with(options)
            .await?;
        if config.run_migrations {
            MIGRATOR.run(&pool).await?;
        } else {
            let applied: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(&pool)
                    .await
                    .map_err(|_| StoreError::SchemaBehind {
                        missing: MIGRATOR.iter().map(|m| m.version).collect(),
                    })?;
            crate::check_migrated(&MIGRATOR, &applied)?;
        }
        let (wakeups, _) = broadcast::channel(4_096);
        let (queue, rx) = mpsc::channel(4_096);
        let node = Uuid::new_v4();
        let recent = Arc::new(Recent::new(recent::CAPACITY));
        let heads = Arc::new(KnownHeads::new(heads::CAPACITY));
        let committer = PgCommitter {
            pool: pool.clone(),
            node,
            held: Held::default(),
            recent: recent.clone(),
            heads: heads.clone(),
        };
        tokio::spawn(batch::run_committer(
            committer,
            rx,
            config.max_batch_events.max(1),
            wakeups.clone(),
        ));
        let listener = tokio::spawn(listen(
            pool.clone(),
            node,
            wakeups.clone(),
            recent.clone(),
            heads,
        ));
        Ok(Self {
            pool,
            reader: Mutex::new(Held::default()),
            recent,
            queue,
            wakeups,
            config,
            listener,
        })
    }

    /// The pool, for tests that must show what the database itself refuses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Drop for PgEventStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[derive(Serialize, Deserialize)]
struct Notice {
    node: Uuid,
    call: Uuid,
    seq: u64,
    position: u64,
}

/// Relays other nodes' NOTIFYs as local wake-ups. When the connection drops, sqlx
/// reconnects; notifications sent meanwhile are lost, so consumers are told to re-read (and
/// the recent events, which could no longer tell what is missing, are forgotten). A notice
/// is noted in the recent events before its wake-up goes out.
async fn listen(
    pool: PgPool,
    node: Uuid,
    wakeups: broadcast::Sender<Wakeup>,
    recent: Arc<Recent>,
    heads: Arc<KnownHeads>,
) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect the call_events listener; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN call_events failed; retrying");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        recent.forget();
        heads.forget();
        let _ = wakeups.send(Wakeup::Resync);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match serde_json::from_str::<Notice>(n.payload()) {
                    Ok(notice) if notice.node != node => {
                        recent.noticed(notice.position);
                        if let Ok(call_id) = CallId::from_uuid(notice.call) {
                            heads.moved(&call_id);
                            let _ = wakeups.send(Wakeup::Appended {
                                call_id,
                                seq: Seq::new(notice.seq),
                                position: GlobalPosition::new(notice.position),
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed call_events notice"),
                },
                // The connection was lost and re-established: notices may be gone.
                Ok(None) => {
                    recent.forget();
                    heads.forget();
                    let _ = wakeups.send(Wakeup::Resync);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "call_events listener failed; reconnecting");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

/// How long a kept connection may sit unused before it goes back to the pool.
const HELD_IDLE: Duration = Duration::from_secs(1);

/// A pool connection kept between uses by a task that queries back to back (the committer,
/// the log's reader). sqlx's pool checks a connection with a round trip (`ping`) when it hands
/// it out and again when it takes it back: two round trips around every group commit and
/// every read of the log, a thousand or more a second under load, each a wake-up of a
/// database backend. Kept, the connection skips both. One unused for `HELD_IDLE` goes back
/// to the pool, whose check on the next acquire replaces it if the database restarted
/// meanwhile; one whose last use failed is not kept (sqlx's check on its return closes it if
/// it is broken). Under load, a restart of the database fails the statements in flight on
/// kept connections, as it does those on pooled ones: an append's error is retried by its
/// client with the same event ids, a read is retried by its reader.
#[derive(Default)]
struct Held {
    conn: Option<(PoolConnection<Postgres>, Instant)>,
}

impl Held {
    /// The kept connection if it was used within `HELD_IDLE`, else one from the pool.
    async fn take(&mut self, pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        match self.conn.take() {
            Some((conn, used)) if used.elapsed() < HELD_IDLE => Ok(conn),
            // An idle one is dropped, i.e. given back to the pool.
            _ => pool.acquire().await,
        }
    }

    /// Keeps a connection whose last use succeeded.
    fn keep(&mut self, conn: PoolConnection<Postgres>) {
        self.conn = Some((conn, Instant::now()));
    }
}

struct PgCommitter {
    pool: PgPool,
    node: Uuid,
    held: Held,
    recent: Arc<Recent>,
    heads: Arc<KnownHeads>,
}

#[async_trait]
impl Committer for PgCommitter {
    async fn commit(
        &mut self,
        batch: &[AppendRequest],
    ) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
        let mut conn = self.held.take(&self.pool).await?;
        match self.commit_on(&mut conn, batch).await {
            Ok(answers) => {
                self.held.keep(conn);
                Ok(answers)
            }
            Err(e) => {
                // The transaction may have committed all the same (a lost COMMIT reply):
                // only the database can tell what the log now holds.
                self.recent.forget();
                self.heads.forget();
                Err(e)
            }
        }
    }
}

/// Why the insert on its own did not write the batch.
enum Alone {
    /// A head known here was stale, or an event id is already stored: nothing was written,
    /// and the batch must be planned from the database's heads.
    Stale,
    Failed(StoreError),
}

impl PgCommitter {
    async fn commit_on(
        &self,
        conn: &mut PoolConnection<Postgres>,
        batch: &[AppendRequest],
    ) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
        // Every call's head known here and every append an insert: one statement, one round
        // trip (heads.rs). Refusals and deduplications are only ever decided on the
        // database's heads, in the transaction below.
        if let Some(heads) = self.heads.of(batch) {
            let plans = batch::plan(batch, &heads, &HashMap::new());
            if plans.iter().all(|p| matches!(p, Plan::Insert { .. })) {
                match self.insert_alone(conn, batch, plans).await {
                    Ok(answers) => return Ok(answers),
                    Err(Alone::Stale) => {
                        for r in batch {
                            self.heads.moved(&r.call_id);
                        }
                    }
                    Err(Alone::Failed(e)) => return Err(e),
                }
            }
        }
        self.commit_in_transaction(conn, batch).await
    }

    async fn insert_alone(
        &self,
        conn: &mut PoolConnection<Postgres>,
        batch: &[AppendRequest],
        plans: Vec<Plan>,
    ) -> Result<Vec<Result<AppendOutcome, StoreError>>, Alone> {
        let (cols, now) = columns(batch, &plans);
        let positions = match self.insert(conn, INSERT_ALONE, &cols, now).await {
            Ok(positions) => positions,
            Err(sqlx::Error::Database(db))
                if matches!(
                    db.constraint(),
                    Some("call_events_call_seq_key" | "call_events_event_id_key")
                ) =>
            {
                return Err(Alone::Stale);
            }
            Err(e) => return Err(Alone::Failed(e.into())),
        };
        let answers = answers(batch, plans, &positions);
        self.committed(batch, &answers, cols, &positions, now);
        Ok(answers)
    }

    async fn commit_in_transaction(
        &self,
        conn: &mut PoolConnection<Postgres>,
        batch: &[AppendRequest],
    ) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
        let mut tx = conn.begin_with(BEGIN_APPEND).await?;

        let mut call_ids: Vec<Uuid> = batch.iter().map(|r| r.call_id.as_uuid()).collect();
        call_ids.sort_unstable();
        call_ids.dedup();
        let event_ids: Vec<Uuid> = batch
            .iter()
            .flat_map(|r| r.events.iter().map(|e| e.event_id.as_uuid()))
            .collect();
        let (heads, stored) = read_heads_and_stored(&mut tx, &call_ids, &event_ids).await?;
        let plans = batch::plan(batch, &heads, &stored);

        let (cols, now) = columns(batch, &plans);
        let positions = if cols.event_id.is_empty() {
            HashMap::new()
        } else {
            self.insert(&mut tx, INSERT_IN_TRANSACTION, &cols, now)
                .await
                .map_err(map_insert_error)?
        };
        let answers = answers(batch, plans, &positions);
        tx.commit().await?;
        // Read under the lock, so true at the commit; the batch's own appends move them on.
        self.heads.learned(heads);
        self.committed(batch, &answers, cols, &positions, now);
        Ok(answers)
    }

    /// Inserts the columns; the positions the rows were given, by event id.
    async fn insert(
        &self,
        conn: &mut sqlx::PgConnection,
        sql: &'static str,
        cols: &Columns,
        now: DateTime<Utc>,
    ) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
        let rows = sqlx::query(sql)
            .bind(&cols.event_id)
            .bind(&cols.tenant)
            .bind(&cols.call_id)
            .bind(&cols.seq)
            .bind(&cols.event_type)
            .bind(&cols.schema_version)
            .bind(&cols.payload)
            .bind(&cols.trace_id)
            .bind(&cols.causation_id)
            .bind(&cols.correlation_id)
            .bind(now)
            .bind(CHANNEL)
            .bind(self.node)
            .fetch_all(conn)
            .await?;
        let mut positions = HashMap::with_capacity(rows.len());
        for row in rows {
            positions.insert(row.try_get("event_id")?, row.try_get("position")?);
        }
        Ok(positions)
    }

    /// After a commit: the heads it moved, and its events for `read_all`.
    fn committed(
        &self,
        batch: &[AppendRequest],
        answers: &[Result<AppendOutcome, StoreError>],
        cols: Columns,
        positions: &HashMap<Uuid, i64>,
        now: DateTime<Utc>,
    ) {
        self.heads
            .learned(batch.iter().zip(answers).filter_map(|(r, a)| match a {
                Ok(o) if !o.deduplicated => Some((
                    r.call_id,
                    Head {
                        version: o.last_seq(),
                        tenant: r.tenant.clone(),
                    },
                )),
                _ => None,
            }));
        self.keep_recent(cols, positions, now);
    }

    /// Hands the events just committed to the recent events, decoded as a read of their rows
    /// would decode them: the columns that were inserted, with the positions the insert
    /// returned.
    fn keep_recent(
        &self,
        mut cols: Columns,
        positions: &HashMap<Uuid, i64>,
        recorded_at: DateTime<Utc>,
    ) {
        let mut events = Vec::with_capacity(cols.event_id.len());
        for (i, event_id) in cols.event_id.iter().enumerate() {
            let raw = positions.get(event_id).map(|position| RawEvent {
                position: *position,
                event_id: *event_id,
                tenant_id: std::mem::take(&mut cols.tenant[i]),
                call_id: cols.call_id[i],
                seq: cols.seq[i],
                event_type: std::mem::take(&mut cols.event_type[i]),
                schema_version: cols.schema_version[i].into(),
                payload: std::mem::take(&mut cols.payload[i]),
                trace_id: cols.trace_id[i].take(),
                causation_id: cols.causation_id[i],
                correlation_id: cols.correlation_id[i],
                recorded_at,
            });
            match raw.map(RawEvent::into_recorded) {
                Some(Ok(event)) => events.push(event),
                _ => {
                    // Committed but not kept: readers must find it in the database.
                    self.recent.forget();
                    return;
                }
            }
        }
        self.recent.committed(events);
    }
}

#[derive(Default)]
struct Columns {
    event_id: Vec<Uuid>,
    tenant: Vec<String>,
    call_id: Vec<Uuid>,
    seq: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i16>,
    payload: Vec<String>,
    trace_id: Vec<Option<String>>,
    causation_id: Vec<Option<Uuid>>,
    correlation_id: Vec<Option<Uuid>>,
}

/// The rows of the batch's inserts, and the time they are recorded at: microseconds, as the
/// column keeps it, so the recent events carry exactly what a read of the rows gives.
fn columns(batch: &[AppendRequest], plans: &[Plan]) -> (Columns, DateTime<Utc>) {
    let mut cols = Columns::default();
    for (r, p) in batch.iter().zip(plans) {
        if let Plan::Insert { first_seq } = p {
            for (i, e) in r.events.iter().enumerate() {
                cols.event_id.push(e.event_id.as_uuid());
                cols.tenant.push(r.tenant.as_str().to_owned());
                cols.call_id.push(r.call_id.as_uuid());
                cols.seq.push(to_i64(first_seq.get() + i as u64));
                cols.event_type.push(e.event_type.to_owned());
                cols.schema_version.push(e.schema_version as i16);
                cols.payload.push(e.payload.clone());
                cols.trace_id
                    .push(e.trace_id.as_ref().map(|t| t.as_str().to_owned()));
                cols.causation_id.push(e.causation_id.map(|c| c.as_uuid()));
                cols.correlation_id
                    .push(e.correlation_id.map(|c| c.as_uuid()));
            }
        }
    }
    (cols, Utc::now().trunc_subsecs(6))
}

/// Each append's answer: its plan's, or the seqs and positions its rows were given.
fn answers(
    batch: &[AppendRequest],
    plans: Vec<Plan>,
    positions: &HashMap<Uuid, i64>,
) -> Vec<Result<AppendOutcome, StoreError>> {
    batch
        .iter()
        .zip(plans)
        .map(|(r, p)| match p {
            Plan::Answer(a) => a,
            Plan::Insert { first_seq } => {
                let mut out = Vec::with_capacity(r.events.len());
                for (i, e) in r.events.iter().enumerate() {
                    let pos = positions.get(&e.event_id.as_uuid()).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "insert returned no position for {}",
                            e.event_id
                        ))
                    })?;
                    out.push((
                        Seq::new(first_seq.get() + i as u64),
                        GlobalPosition::new(*pos as u64),
                    ));
                }
                Ok(AppendOutcome {
                    call_id: r.call_id,
                    positions: out,
                    deduplicated: false,
                })
            }
        })
        .collect()
}

/// The last event of each call in the batch, and where any of the batch's event ids are
/// already stored — one round trip.
async fn read_heads_and_stored(
    tx: &mut Transaction<'_, Postgres>,
    call_ids: &[Uuid],
    event_ids: &[Uuid],
) -> Result<(HashMap<CallId, Head>, HashMap<EventId, Stored>), StoreError> {
    let rows = sqlx::query(
        "SELECT c.call_id, h.seq, h.tenant_id, NULL::uuid AS event_id, NULL::int8 AS position \
         FROM UNNEST($1::uuid[]) AS c(call_id) \
         CROSS JOIN LATERAL ( \
             SELECT seq, tenant_id FROM call_events e \
             WHERE e.call_id = c.call_id ORDER BY seq DESC LIMIT 1) h \
         UNION ALL \
         SELECT call_id, seq, tenant_id, event_id, position FROM call_events \
         WHERE event_id = ANY($2)",
    )
    .bind(call_ids)
    .bind(event_ids)
    .fetch_all(&mut **tx)
    .await?;
    let corrupt = |e: domain::IdError| StoreError::Corrupt(e.to_string());
    let mut heads = HashMap::with_capacity(call_ids.len());
    let mut stored = HashMap::new();
    for row in rows {
        let call_id = CallId::from_uuid(row.try_get("call_id")?).map_err(corrupt)?;
        let seq = Seq::new(row.try_get::<i64, _>("seq")? as u64);
        match row.try_get::<Option<Uuid>, _>("event_id")? {
            None => {
                let tenant: String = row.try_get("tenant_id")?;
                heads.insert(
                    call_id,
                    Head {
                        version: seq,
                        tenant: TenantId::parse(tenant).map_err(corrupt)?,
                    },
                );
            }
            Some(event_id) => {
                stored.insert(
                    EventId::from_uuid(event_id).map_err(corrupt)?,
                    Stored {
                        call_id,
                        seq,
                        position: GlobalPosition::new(row.try_get::<i64, _>("position")? as u64),
                    },
                );
            }
        }
    }
    Ok((heads, stored))
}

/// Under the append lock these constraints cannot fire; if they do, a writer bypassed the
/// store. Name what happened instead of passing on a bare database error.
fn map_insert_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        match db.constraint() {
            Some("call_events_call_seq_key") => {
                return StoreError::InvalidAppend(
                    "another writer appended to the stream outside the store's lock".into(),
                );
            }
            Some("call_events_event_id_key") => {
                return StoreError::InvalidAppend(
                    "an event id was inserted concurrently outside the store's lock".into(),
                );
            }
            _ => {}
        }
    }
    StoreError::Database(e)
}

const SELECT_EVENTS: &str = "SELECT position, event_id, tenant_id, call_id, seq, event_type, \
     schema_version, payload::text AS payload, trace_id, causation_id, correlation_id, recorded_at FROM call_events";

fn raw(row: &sqlx::postgres::PgRow) -> Result<RawEvent, sqlx::Error> {
    Ok(RawEvent {
        position: row.try_get("position")?,
        event_id: row.try_get("event_id")?,
        tenant_id: row.try_get("tenant_id")?,
        call_id: row.try_get("call_id")?,
        seq: row.try_get("seq")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get::<i16, _>("schema_version")?.into(),
        payload: row.try_get("payload")?,
        trace_id: row.try_get("trace_id")?,
        causation_id: row.try_get("causation_id")?,
        correlation_id: row.try_get("correlation_id")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

fn decode_rows(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(|r| raw(r)?.into_recorded()).collect()
}

#[async_trait]
impl EventStore for PgEventStore {
    #[tracing::instrument(skip_all, fields(call_id = %call_id, events = events.len()))]
    async fn append(
        &self,
        call_id: CallId,
        tenant: &TenantId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let prepared = batch::prepare(events, &self.config)?;
        batch::submit(&self.queue, call_id, tenant, expected, prepared).await
    }

    async fn read_stream(
        &self,
        call_id: CallId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE call_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(call_id.as_uuid())
        .bind(to_i64(after.get()))
        .bind(to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await?;
        decode_rows(rows)
    }

    async fn read_all(
        &self,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if let Some(events) = self.recent.read(after.get(), limit) {
            return Ok(events);
        }
        let sql = format!("{SELECT_EVENTS} WHERE position > $1 ORDER BY position LIMIT $2");
        let query = sqlx::query(&sql)
            .bind(to_i64(after.get()))
            .bind(to_i64(limit as u64));
        let rows = match self.reader.try_lock() {
            Ok(mut held) => {
                let mut conn = held.take(&self.pool).await?;
                let rows = query.fetch_all(&mut *conn).await?;
                held.keep(conn);
                rows
            }
            // Another reader has it: this one takes its turn in the pool.
            Err(_) => query.fetch_all(&self.pool).await?,
        };
        decode_rows(rows)
    }

    async fn stream_version(&self, call_id: CallId) -> Result<Seq, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT max(seq) FROM call_events WHERE call_id = $1")
                .bind(call_id.as_uuid())
                .fetch_one(&self.pool)
                .await?;
        Ok(Seq::new(v.unwrap_or(0) as u64))
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM call_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(GlobalPosition::new(v.unwrap_or(0) as u64))
    }

    fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        self.wakeups.subscribe()
    }

    async fn load_checkpoint(&self, consumer: &str) -> Result<GlobalPosition, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?;
        Ok(GlobalPosition::new(v.unwrap_or(0) as u64))
    }

    async fn save_checkpoint(
        &self,
        consumer: &str,
        position: GlobalPosition,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consumer_checkpoints (consumer, position, updated_at) VALUES ($1, $2, now()) \
             ON CONFLICT (consumer) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        )
        .bind(consumer)
        .bind(to_i64(position.get()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn call_listings(&self, ids: &[CallId]) -> Result<Vec<CallListing>, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(|c| c.as_uuid()).collect();
        let rows: Vec<serde_json::Value> =
            sqlx::query_scalar("SELECT listing FROM call_index WHERE call_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(listing_from_json).collect()
    }

    async fn commit_call_listings(
        &self,
        rows: &[CallListing],
        consumer: &str,
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO consumer_checkpoints (consumer, position) VALUES ($1, 0) \
             ON CONFLICT (consumer) DO NOTHING",
        )
        .bind(consumer)
        .execute(&mut *tx)
        .await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT position FROM consumer_checkpoints WHERE consumer = $1 FOR UPDATE",
        )
        .bind(consumer)
        .fetch_one(&mut *tx)
        .await?;
        if current != to_i64(from.get()) {
            return Err(StoreError::CheckpointMoved {
                consumer: consumer.to_owned(),
                expected: from,
                current: GlobalPosition::new(current as u64),
            });
        }
        if !rows.is_empty() {
            let mut call_id = Vec::with_capacity(rows.len());
            let mut tenant = Vec::with_capacity(rows.len());
            let mut status = Vec::with_capacity(rows.len());
            let mut agent = Vec::with_capacity(rows.len());
            let mut started_at = Vec::with_capacity(rows.len());
            let mut listing = Vec::with_capacity(rows.len());
            for r in rows {
                call_id.push(r.call_id.as_uuid());
                tenant.push(r.tenant.as_str().to_owned());
                status.push(status_str(r.status));
                agent.push(r.agent.as_str().to_owned());
                started_at.push(r.started_at);
                listing.push(listing_to_json(r));
            }
            sqlx::query(
                "INSERT INTO call_index (call_id, tenant_id, status, agent_id, started_at, listing) \
                 SELECT u.c, u.t, u.s, u.a, u.st, u.l::jsonb \
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) \
                     AS u(c, t, s, a, st, l) \
                 ON CONFLICT (call_id) DO UPDATE SET status = EXCLUDED.status, \
                     agent_id = EXCLUDED.agent_id, listing = EXCLUDED.listing",
            )
            .bind(&call_id)
            .bind(&tenant)
            .bind(&status)
            .bind(&agent)
            .bind(&started_at)
            .bind(&listing)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE consumer_checkpoints SET position = $2, updated_at = now() WHERE consumer = $1",
        )
        .bind(consumer)
        .bind(to_i64(to.get()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_calls(&self, q: &CallQuery) -> Result<Vec<CallListing>, StoreError> {
        let (before_at, before_id) = match q.before {
            Some((at, id)) => (Some(at), Some(id.as_uuid())),
            None => (None, None),
        };
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT listing FROM call_index \
             WHERE tenant_id = $1 \
               AND ($2::text IS NULL OR status = $2) \
               AND ($3::text IS NULL OR agent_id = $3) \
               AND ($4::timestamptz IS NULL OR started_at >= $4) \
               AND ($5::timestamptz IS NULL OR (started_at, call_id) < ($5, $6)) \
             ORDER BY started_at DESC, call_id DESC LIMIT $7",
        )
        .bind(q.tenant.as_str())
        .bind(q.status.map(status_str))
        .bind(q.agent.as_ref().map(|a| a.as_str()))
        .bind(q.since)
        .bind(before_at)
        .bind(before_id)
        .bind(to_i64(q.limit as u64))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(listing_from_json).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
