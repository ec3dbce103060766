//! Projections: everything the product shows, derived from the `call_events` log.
//!
//! Two ways to look at the log:
//!
//! - **On demand, for one call**: [`rebuild`] folds a call's stream into a
//!   [`CallState`] — the whole stream, or only up to a position (`as_of`), which is how the
//!   API's `?as_of=` and the CLI's `events --at` show a call as it was at any moment.
//! - **Continuously, for all calls**: a [`Runner`] feeds the log, in global order, to a
//!   [`Projection`] that keeps a durable checkpoint. [`CallIndex`] is the one built in: the
//!   call list (status, agent, alert counts, disposition per call), whose rows and checkpoint
//!   are written in one transaction, so a crash never applies an event twice or skips one.
//!
//! # Layout
//!
//! - `lib.rs`: [`Projection`], [`Runner`], [`rebuild`], [`ProjectionError`].
//! - `call_index`: [`CallIndex`].
//!
//! Invariant: projections only read the log; they never append to it.

mod call_index;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::{CallId, CallState, GlobalPosition, RecordedEvent, Seq};
use store::{EventStore, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

pub use call_index::CallIndex;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A consumer of the whole log with a durable checkpoint.
#[async_trait]
pub trait Projection: Send {
    /// The checkpoint's name; unique per projection.
    fn name(&self) -> &'static str;

    /// The position up to which this projection's effects are durable.
    async fn checkpoint(
        &mut self,
        store: &dyn EventStore,
    ) -> Result<GlobalPosition, ProjectionError>;

    /// Applies `batch` (events with positions in `(from, to]`, in order) and makes its effect
    /// and the new checkpoint `to` durable together. Fails with
    /// [`StoreError::CheckpointMoved`] if another instance got there first; the runner then
    /// calls [`Projection::reset`] and resumes from the stored checkpoint.
    async fn apply(
        &mut self,
        store: &dyn EventStore,
        batch: &[RecordedEvent],
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<(), ProjectionError>;

    /// Forgets anything cached in memory.
    fn reset(&mut self) {}
}

/// How often a [`Runner`] reads the log at most, by default.
pub const READ_EVERY: Duration = Duration::from_millis(100);

/// Feeds the log to a projection: catches up, then follows wake-ups (with a slow poll as a
/// safety net, since wake-ups are hints and may be lost), until shut down.
///
/// A wake-up comes with every append, hundreds a second under load, and each catch-up is a
/// read and a write transaction on the database ingest commits to. So the runner catches up
/// at most once per `read_every` (100 ms by default): one catch-up then covers every append
/// of that interval, and the projection trails the log by at most about that much.
pub struct Runner {
    store: Arc<dyn EventStore>,
    batch_size: usize,
    poll_every: Duration,
    read_every: Duration,
}

impl Runner {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            batch_size: 500,
            poll_every: Duration::from_secs(2),
            read_every: READ_EVERY,
        }
    }

    /// The shortest time between two catch-ups (zero: one per wake-up).
    pub fn read_every(mut self, every: Duration) -> Self {
        self.read_every = every;
        self
    }

    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Applies everything committed before the call; returns the position reached.
    pub async fn catch_up<P: Projection + ?Sized>(
        &self,
        projection: &mut P,
    ) -> Result<GlobalPosition, ProjectionError> {
        let store = self.store.as_ref();
        let mut from = projection.checkpoint(store).await?;
        loop {
            let batch = store.read_all(from, self.batch_size).await?;
            let Some(last) = batch.last() else {
                return Ok(from);
            };
            let to = last.meta.global_position;
            // A short page reached the head as it was when read: what was appended since
            // waits for the next catch-up, rather than one more transaction each for the
            // few events that came while this one was applied.
            let reached_head = batch.len() < self.batch_size;
            match projection.apply(store, &batch, from, to).await {
                Ok(()) if reached_head => return Ok(to),
                Ok(()) => from = to,
                Err(ProjectionError::Store(StoreError::CheckpointMoved { current, .. })) => {
                    tracing::debug!(projection = projection.name(), %current, "checkpoint moved by another instance; resuming there");
                    projection.reset();
                    from = projection.checkpoint(store).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs until `shutdown` is cancelled. Store errors (a database restart, say) are logged
    /// and retried with backoff; they never end the runner.
    #[tracing::instrument(skip_all, fields(projection = projection.name()))]
    pub async fn run<P: Projection + ?Sized>(
        &self,
        projection: &mut P,
        shutdown: CancellationToken,
    ) {
        // Subscribe before the first catch-up so no wake-up falls between the two.
        let mut wakeups = self.store.subscribe();
        let mut backoff = Duration::from_millis(100);
        loop {
            let read_at = tokio::time::Instant::now();
            // The catch-up below covers every wake-up so far.
            while !matches!(
                wakeups.try_recv(),
                Err(TryRecvError::Empty | TryRecvError::Closed)
            ) {}
            match self.catch_up(projection).await {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "projection failed; retrying");
                    projection.reset();
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                woke = wakeups.recv() => match woke {
                    // Lagged only means several wake-ups were merged: read the log either way.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => {
                        tracing::warn!("the store's wake-ups closed; polling only");
                        wakeups = self.store.subscribe();
                    }
                },
                _ = tokio::time::sleep(self.poll_every) => {}
            }
            // What was appended meanwhile waits for the interval's end, and one read.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(read_at + self.read_every) => {}
            }
        }
    }
}

/// A call's state rebuilt from the log, at its latest position or `as_of` a seq (the state
/// right after that event). Also returns the events folded.
pub async fn rebuild(
    store: &dyn EventStore,
    call_id: CallId,
    as_of: Option<Seq>,
) -> Result<(CallState, Vec<RecordedEvent>), StoreError> {
    let events = store::load_stream(store, call_id, as_of).await?;
    let state = CallState::replay(&events);
    Ok((state, events))
}
