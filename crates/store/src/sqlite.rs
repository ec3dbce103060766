//! SQLite implementation of [`EventStore`]: the embedded default, one file in WAL mode.
//!
//! Readers use a pool; all appends go through one committer task holding one write
//! connection, and each batch runs in `BEGIN IMMEDIATE`, which takes SQLite's write lock at
//! once. So appends are serialized — within a process by the committer, across processes by
//! the lock — and `AUTOINCREMENT` positions commit in increasing order. `synchronous = FULL`
//! makes a commit durable when `append` returns. Wake-ups are local to the process: SQLite
//! is the single-node store.
//!
//! Every write transaction of the process — the committer's, the call index's, checkpoints,
//! the directory's — first takes one in-process gate (an async mutex). Without it, two of
//! them would meet at SQLite's lock, and the loser would wait in SQLite's busy handler,
//! which sleeps in steps of up to 25–100 ms: an append stuck behind a call-index commit
//! took tens of milliseconds. Behind the gate they queue in order and none ever sleeps.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use domain::{
    CallId, CallListing, EventId, GlobalPosition, NewEvent, RecordedEvent, Seq, TenantId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::batch::{self, AppendRequest, Committer, Head, Plan, Stored};
use crate::row::{RawEvent, to_i64};
use crate::row::{listing_from_json, listing_to_json};
use crate::{
    AppendOutcome, CallQuery, EventStore, ExpectedVersion, StoreConfig, StoreError, Wakeup,
    status_str,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The in-process write gate (see the module docs).
pub(crate) type WriteGate = std::sync::Arc<tokio::sync::Mutex<()>>;

pub struct SqliteEventStore {
    pool: SqlitePool,
    gate: WriteGate,
    queue: mpsc::Sender<AppendRequest>,
    wakeups: broadcast::Sender<Wakeup>,
    config: StoreConfig,
}

impl SqliteEventStore {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .connect_with(options.clone())
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
        let writer = options.connect().await?;
        let gate = WriteGate::default();
        let (wakeups, _) = broadcast::channel(4_096);
        let (queue, rx) = mpsc::channel(4_096);
        tokio::spawn(batch::run_committer(
            SqliteCommitter {
                conn: writer,
                gate: gate.clone(),
            },
            rx,
            config.max_batch_events.max(1),
            wakeups.clone(),
        ));
        Ok(Self {
            pool,
            gate,
            queue,
            wakeups,
            config,
        })
    }

    /// Opens a write transaction on the pool, behind the process's write gate. Keep the
    /// guard until the transaction is committed or dropped.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<
        (
            tokio::sync::OwnedMutexGuard<()>,
            sqlx::Transaction<'static, sqlx::Sqlite>,
        ),
        StoreError,
    > {
        let guard = self.gate.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((guard, tx))
    }

    /// The read pool, for tests that must show what the database itself refuses.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

struct SqliteCommitter {
    conn: SqliteConnection,
    gate: WriteGate,
}

/// The body of a batch's transaction (rolled back by the caller on error). Three statements
/// whatever the batch size — the stream heads, the already-stored ids, the insert — each
/// taking the batch as one JSON array (`json_each`): a statement costs a round trip to
/// sqlx's SQLite worker thread, so per-row statements would dominate.
async fn write(
    conn: &mut SqliteConnection,
    batch: &[AppendRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let text = |u: Uuid| u.hyphenated().to_string();
    let mut call_ids: Vec<String> = batch.iter().map(|r| text(r.call_id.as_uuid())).collect();
    call_ids.sort_unstable();
    call_ids.dedup();
    let mut heads = HashMap::with_capacity(call_ids.len());
    let rows = sqlx::query(
        "SELECT e.call_id, e.seq, e.tenant_id FROM json_each(?1) AS j \
         JOIN call_events AS e ON e.call_id = j.value \
          AND e.seq = (SELECT max(seq) FROM call_events WHERE call_id = j.value)",
    )
    .bind(serde_json::to_string(&call_ids).expect("strings serialize"))
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let tenant: String = row.try_get("tenant_id")?;
        heads.insert(
            parse_id(&row, "call_id", CallId::from_uuid)?,
            Head {
                version: Seq::new(row.try_get::<i64, _>("seq")? as u64),
                tenant: TenantId::parse(tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            },
        );
    }

    let event_ids: Vec<String> = batch
        .iter()
        .flat_map(|r| r.events.iter().map(|e| text(e.event_id.as_uuid())))
        .collect();
    let mut stored = HashMap::new();
    let rows = sqlx::query(
        "SELECT event_id, call_id, seq, position FROM call_events \
         WHERE event_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(serde_json::to_string(&event_ids).expect("strings serialize"))
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        stored.insert(
            parse_id(&row, "event_id", EventId::from_uuid)?,
            Stored {
                call_id: parse_id(&row, "call_id", CallId::from_uuid)?,
                seq: Seq::new(row.try_get::<i64, _>("seq")? as u64),
                position: GlobalPosition::new(row.try_get::<i64, _>("position")? as u64),
            },
        );
    }

    let plans = batch::plan(batch, &heads, &stored);
    let mut rows_json = Vec::new();
    for (r, p) in batch.iter().zip(&plans) {
        if let Plan::Insert { first_seq } = p {
            for (i, e) in r.events.iter().enumerate() {
                rows_json.push(serde_json::json!({
                    "e": text(e.event_id.as_uuid()),
                    "t": r.tenant.as_str(),
                    "c": text(r.call_id.as_uuid()),
                    "s": first_seq.get() + i as u64,
                    "ty": e.event_type,
                    "v": e.schema_version,
                    "p": e.payload,
                    "tr": e.trace_id.as_ref().map(|t| t.as_str()),
                    "ca": e.causation_id.map(|c| text(c.as_uuid())),
                    "co": e.correlation_id.map(|c| text(c.as_uuid())),
                }));
            }
        }
    }
    let mut positions: HashMap<EventId, GlobalPosition> = HashMap::with_capacity(rows_json.len());
    if !rows_json.is_empty() {
        // `ORDER BY key` (the array index) makes AUTOINCREMENT follow seq order within a call.
        let rows = sqlx::query(
            "INSERT INTO call_events (event_id, tenant_id, call_id, seq, event_type, \
                 schema_version, payload, trace_id, causation_id, correlation_id, recorded_at) \
             SELECT value ->> 'e', value ->> 't', value ->> 'c', value ->> 's', value ->> 'ty', \
                 value ->> 'v', value ->> 'p', value ->> 'tr', value ->> 'ca', value ->> 'co', ?2 \
             FROM json_each(?1) ORDER BY key \
             RETURNING event_id, position",
        )
        .bind(serde_json::Value::Array(rows_json).to_string())
        .bind(Utc::now())
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            positions.insert(
                parse_id(&row, "event_id", EventId::from_uuid)?,
                GlobalPosition::new(row.try_get::<i64, _>("position")? as u64),
            );
        }
    }

    batch
        .iter()
        .zip(plans)
        .map(|(r, p)| match p {
            Plan::Answer(a) => Ok(a),
            Plan::Insert { first_seq } => {
                let mut out = Vec::with_capacity(r.events.len());
                for (i, e) in r.events.iter().enumerate() {
                    let pos = positions.get(&e.event_id).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "insert returned no position for {}",
                            e.event_id
                        ))
                    })?;
                    out.push((Seq::new(first_seq.get() + i as u64), *pos));
                }
                Ok(Ok(AppendOutcome {
                    call_id: r.call_id,
                    positions: out,
                    deduplicated: false,
                }))
            }
        })
        .collect()
}

#[async_trait]
impl Committer for SqliteCommitter {
    async fn commit(
        &mut self,
        batch: &[AppendRequest],
    ) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
        let _gate = self.gate.lock().await;
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        let answers = write(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(answers)
    }
}

fn parse_id<T>(
    row: &SqliteRow,
    column: &str,
    make: fn(Uuid) -> Result<T, domain::IdError>,
) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    let uuid = Uuid::parse_str(&text)
        .map_err(|_| StoreError::Corrupt(format!("{column} {text:?} is not a UUID")))?;
    make(uuid).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_opt_uuid(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        Uuid::parse_str(&t)
            .map_err(|_| StoreError::Corrupt(format!("{column} {t:?} is not a UUID")))
    })
    .transpose()
}

fn raw(row: &SqliteRow) -> Result<RawEvent, StoreError> {
    let event_id: String = row.try_get("event_id")?;
    let event_uuid = Uuid::parse_str(&event_id)
        .map_err(|_| StoreError::Corrupt(format!("event_id {event_id:?} is not a UUID")))?;
    Ok(RawEvent {
        position: row.try_get("position")?,
        event_id: event_uuid,
        tenant_id: row.try_get("tenant_id")?,
        call_id: parse_id(row, "call_id", Ok)?,
        seq: row.try_get("seq")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        payload: row.try_get("payload")?,
        trace_id: row.try_get("trace_id")?,
        causation_id: parse_opt_uuid(row, "causation_id")?,
        correlation_id: parse_opt_uuid(row, "correlation_id")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

fn listing_from_text(text: &str) -> Result<CallListing, StoreError> {
    let value = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("call_index row is not JSON: {e}")))?;
    listing_from_json(value)
}

fn decode_rows(rows: Vec<SqliteRow>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(|r| raw(r)?.into_recorded()).collect()
}

const SELECT_EVENTS: &str = "SELECT position, event_id, tenant_id, call_id, seq, event_type, \
     schema_version, payload, trace_id, causation_id, correlation_id, recorded_at FROM call_events";

#[async_trait]
impl EventStore for SqliteEventStore {
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
            "{SELECT_EVENTS} WHERE call_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(call_id.as_uuid().hyphenated().to_string())
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
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE position > ? ORDER BY position LIMIT ?"
        ))
        .bind(to_i64(after.get()))
        .bind(to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await?;
        decode_rows(rows)
    }

    async fn stream_version(&self, call_id: CallId) -> Result<Seq, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT max(seq) FROM call_events WHERE call_id = ?")
                .bind(call_id.as_uuid().hyphenated().to_string())
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
            sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE consumer = ?")
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
        let _gate = self.gate.lock().await;
        sqlx::query(
            "INSERT INTO consumer_checkpoints (consumer, position, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (consumer) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(consumer)
        .bind(to_i64(position.get()))
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn call_listings(&self, ids: &[CallId]) -> Result<Vec<CallListing>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<String> =
                sqlx::query_scalar("SELECT listing FROM call_index WHERE call_id = ?")
                    .bind(id.as_uuid().hyphenated().to_string())
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some(text) = row {
                out.push(listing_from_text(&text)?);
            }
        }
        Ok(out)
    }

    async fn commit_call_listings(
        &self,
        rows: &[CallListing],
        consumer: &str,
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock up front, so the checkpoint read below cannot be
        // overtaken; dropping the transaction on any error rolls it back.
        let (_gate, mut conn) = self.begin_write().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE consumer = ?")
                .bind(consumer)
                .fetch_optional(&mut *conn)
                .await?;
        let current = current.unwrap_or(0);
        if current != to_i64(from.get()) {
            return Err(StoreError::CheckpointMoved {
                consumer: consumer.to_owned(),
                expected: from,
                current: GlobalPosition::new(current as u64),
            });
        }
        for r in rows {
            sqlx::query(
                "INSERT INTO call_index (call_id, tenant_id, status, agent_id, started_at, listing) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (call_id) DO UPDATE SET status = excluded.status, \
                     agent_id = excluded.agent_id, listing = excluded.listing",
            )
            .bind(r.call_id.as_uuid().hyphenated().to_string())
            .bind(r.tenant.as_str())
            .bind(status_str(r.status))
            .bind(r.agent.as_str())
            .bind(r.started_at.timestamp_micros())
            .bind(listing_to_json(r))
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query(
            "INSERT INTO consumer_checkpoints (consumer, position, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (consumer) DO UPDATE SET position = excluded.position, \
                 updated_at = excluded.updated_at",
        )
        .bind(consumer)
        .bind(to_i64(to.get()))
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?;
        conn.commit().await?;
        Ok(())
    }

    async fn list_calls(&self, q: &CallQuery) -> Result<Vec<CallListing>, StoreError> {
        let (before_at, before_id) = match q.before {
            Some((at, id)) => (
                Some(at.timestamp_micros()),
                Some(id.as_uuid().hyphenated().to_string()),
            ),
            None => (None, None),
        };
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT listing FROM call_index \
             WHERE tenant_id = ?1 \
               AND (?2 IS NULL OR status = ?2) \
               AND (?3 IS NULL OR agent_id = ?3) \
               AND (?4 IS NULL OR started_at >= ?4) \
               AND (?5 IS NULL OR started_at < ?5 OR (started_at = ?5 AND call_id < ?6)) \
             ORDER BY started_at DESC, call_id DESC LIMIT ?7",
        )
        .bind(q.tenant.as_str())
        .bind(q.status.map(status_str))
        .bind(q.agent.as_ref().map(|a| a.as_str()))
        .bind(q.since.map(|t| t.timestamp_micros()))
        .bind(before_at)
        .bind(before_id)
        .bind(to_i64(q.limit as u64))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|t| listing_from_text(t)).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
