//! Group commit, shared by both backends.
//!
//! `append` validates its events ([`prepare`]), hands them to the process's one committer
//! task and waits for the answer. The committer takes every append waiting in its queue (up
//! to a limit), and a backend's [`Committer::commit`] writes them in one transaction: it
//! reads the heads of the streams involved and the already-stored ids, lets [`plan`] decide
//! each append (insert at which seq, deduplicate, or refuse), and inserts the rows (on
//! Postgres, a batch to calls whose heads the node knows is planned from those and written
//! as one statement instead, `heads.rs`). One
//! append's refusal never affects another's: refused appends write nothing, and if the
//! transaction itself fails with several appends in it, each is retried alone.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use domain::{CallId, CorrelationId, EventId, GlobalPosition, NewEvent, Seq, TenantId, TraceId};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{AppendOutcome, ExpectedVersion, StoreConfig, StoreError, Wakeup};

/// An event ready for the database: encoded, size-checked.
pub(crate) struct PreparedEvent {
    pub event_id: EventId,
    pub event_type: &'static str,
    pub schema_version: u16,
    pub payload: String,
    pub trace_id: Option<TraceId>,
    pub causation_id: Option<EventId>,
    pub correlation_id: Option<CorrelationId>,
}

pub(crate) struct AppendRequest {
    pub call_id: CallId,
    pub tenant: TenantId,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// Encodes and checks an append's events before it is queued, so a bad append never reaches
/// a transaction.
pub(crate) fn prepare(
    events: Vec<NewEvent>,
    config: &StoreConfig,
) -> Result<Vec<PreparedEvent>, StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidAppend("no events to append".into()));
    }
    let mut seen = HashSet::with_capacity(events.len());
    events
        .into_iter()
        .map(|e| {
            if !seen.insert(e.event_id) {
                return Err(StoreError::InvalidAppend(format!(
                    "event id {} appears twice in one append",
                    e.event_id
                )));
            }
            let encoded = e.event.encode();
            let payload = encoded.payload.to_string();
            if payload.len() > config.max_payload_bytes {
                return Err(StoreError::PayloadTooLarge {
                    event_id: e.event_id,
                    size: payload.len(),
                    limit: config.max_payload_bytes,
                });
            }
            Ok(PreparedEvent {
                event_id: e.event_id,
                event_type: encoded.event_type,
                schema_version: encoded.schema_version,
                payload,
                trace_id: e.trace_id,
                causation_id: e.causation_id,
                correlation_id: e.correlation_id,
            })
        })
        .collect()
}

/// The last event of a stream, as the committer reads it under its lock.
#[derive(Clone)]
pub(crate) struct Head {
    pub version: Seq,
    pub tenant: TenantId,
}

/// Where an already-stored event id sits.
pub(crate) struct Stored {
    pub call_id: CallId,
    pub seq: Seq,
    pub position: GlobalPosition,
}

pub(crate) enum Plan {
    /// Insert the request's events at `first_seq, first_seq + 1, …`.
    Insert { first_seq: Seq },
    /// Answer without writing: a deduplicated retry or a refusal.
    Answer(Result<AppendOutcome, StoreError>),
}

/// Decides every request of a batch, in order, as if each were appended alone after the
/// ones before it.
pub(crate) fn plan(
    requests: &[AppendRequest],
    heads: &HashMap<CallId, Head>,
    stored: &HashMap<EventId, Stored>,
) -> Vec<Plan> {
    // Versions and tenants as the batch moves them.
    let mut versions: HashMap<CallId, (Seq, &TenantId)> = heads
        .iter()
        .map(|(id, h)| (*id, (h.version, &h.tenant)))
        .collect();
    requests
        .iter()
        .map(|r| {
            if let Some(answer) = deduplicate(r, stored) {
                return Plan::Answer(answer);
            }
            let (current, owner) = versions
                .get(&r.call_id)
                .copied()
                .unwrap_or((Seq::ZERO, &r.tenant));
            if owner != &r.tenant {
                return Plan::Answer(Err(StoreError::TenantMismatch { call_id: r.call_id }));
            }
            if let ExpectedVersion::Exact(expected) = r.expected
                && expected != current
            {
                return Plan::Answer(Err(StoreError::Conflict {
                    call_id: r.call_id,
                    expected,
                    current,
                }));
            }
            let last = Seq::new(current.get() + r.events.len() as u64);
            versions.insert(r.call_id, (last, &r.tenant));
            Plan::Insert {
                first_seq: current.next(),
            }
        })
        .collect()
}

fn deduplicate(
    r: &AppendRequest,
    stored: &HashMap<EventId, Stored>,
) -> Option<Result<AppendOutcome, StoreError>> {
    let found: Vec<Option<&Stored>> = r.events.iter().map(|e| stored.get(&e.event_id)).collect();
    let first_found = r.events.iter().zip(&found).find(|(_, s)| s.is_some())?.0;
    // Every event must be there, in this call, consecutively and in the same order.
    let mut positions = Vec::with_capacity(found.len());
    for s in &found {
        match s {
            Some(s)
                if s.call_id == r.call_id
                    && positions
                        .last()
                        .is_none_or(|(prev, _): &(Seq, GlobalPosition)| s.seq == prev.next()) =>
            {
                positions.push((s.seq, s.position));
            }
            _ => {
                return Some(Err(StoreError::IdempotencyMismatch {
                    event_id: first_found.event_id,
                }));
            }
        }
    }
    Some(Ok(AppendOutcome {
        call_id: r.call_id,
        positions,
        deduplicated: true,
    }))
}

/// One backend's transaction for a batch. Returns one answer per request, in order; an `Err`
/// means the whole transaction failed and nothing was written.
#[async_trait]
pub(crate) trait Committer: Send + 'static {
    async fn commit(
        &mut self,
        batch: &[AppendRequest],
    ) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError>;
}

/// The committer task: drains the queue into batches and commits them until every sender is
/// gone.
pub(crate) async fn run_committer<C: Committer>(
    mut committer: C,
    mut queue: mpsc::Receiver<AppendRequest>,
    max_batch_events: usize,
    wakeups: broadcast::Sender<Wakeup>,
) {
    let mut carry: Vec<AppendRequest> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carry);
        if batch.is_empty() {
            match queue.recv().await {
                Some(r) => batch.push(r),
                None => return,
            }
        }
        let mut events: usize = batch.iter().map(|r| r.events.len()).sum();
        // Gather what is waiting. Writers answered by the previous batch are runnable but may
        // not have re-queued yet: yield so they can, and keep yielding while that brings
        // more (a lone writer costs one yield; many writers fill the batch). This is what
        // makes group commit pay: one transaction, one WAL flush, for all of them.
        let mut grew = true;
        while grew && events < max_batch_events {
            tokio::task::yield_now().await;
            let before = batch.len();
            while events < max_batch_events {
                match queue.try_recv() {
                    Ok(r) => {
                        events += r.events.len();
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            grew = batch.len() > before;
        }
        // Two appends with a common event id (a retry racing its original) must not share a
        // transaction: the later one waits for the next batch and then deduplicates.
        let mut ids = HashSet::new();
        let (batch, later): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|r| r.events.iter().all(|e| ids.insert(e.event_id)));
        carry = later;

        let answers = match committer.commit(&batch).await {
            Ok(answers) => answers,
            Err(e) if batch.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(error = %e, appends = batch.len(), "group commit failed; retrying each append alone");
                let mut answers = Vec::with_capacity(batch.len());
                for one in batch.chunks(1) {
                    answers.push(match committer.commit(one).await {
                        Ok(mut a) => a.pop().unwrap_or(Err(StoreError::Closed)),
                        Err(e) => Err(e),
                    });
                }
                answers
            }
        };
        let mut woken: Vec<Wakeup> = answers
            .iter()
            .filter_map(|a| match a {
                Ok(o) if !o.deduplicated => Some(Wakeup::Appended {
                    call_id: o.call_id,
                    seq: o.last_seq(),
                    position: o.last_position(),
                }),
                _ => None,
            })
            .collect();
        woken.sort_by_key(|w| match w {
            Wakeup::Appended { position, .. } => *position,
            Wakeup::Resync => GlobalPosition::ZERO,
        });
        for (request, answer) in batch.into_iter().zip(answers) {
            // The caller may have given up waiting; its events are committed all the same.
            let _ = request.reply.send(answer);
        }
        for w in woken {
            // No receivers is fine: nobody is tailing the log right now.
            let _ = wakeups.send(w);
        }
    }
}

/// Sends a prepared append to the committer and waits for its answer.
pub(crate) async fn submit(
    queue: &mpsc::Sender<AppendRequest>,
    call_id: CallId,
    tenant: &TenantId,
    expected: ExpectedVersion,
    events: Vec<PreparedEvent>,
) -> Result<AppendOutcome, StoreError> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(AppendRequest {
            call_id,
            tenant: tenant.clone(),
            expected,
            events,
            reply,
        })
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}
