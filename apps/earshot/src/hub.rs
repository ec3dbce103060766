//! The hub: follows the log and fans each committed event out to the WebSocket
//! connections that follow its call (and to the supervisors of its tenant).
//!
//! One tail task per process reads the log in position order (`read_all`) whenever the store
//! wakes it, whichever node made the append: on Postgres a wake-up from another process
//! arrives over `LISTEN`, and carries only `{call, seq}`; the rows are always read from the
//! log (on Postgres, the events this node just committed are answered from the store's
//! memory, `crates/store/src/recent.rs`). Each event is serialized once into a [`Frame`]
//! shared by every receiver.
//!
//! # Invariants
//!
//! - Frames of one call are published in seq order (the log's position order preserves it).
//! - Nothing is skipped silently: a receiver that falls behind its broadcast channel gets
//!   `Lagged`, and its connection is closed with a code that tells the client to resume from
//!   its last seq (see `ws`).
//! - The tail never waits on a subscriber: broadcast sends do not block.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use domain::{
    CallEvent, CallId, CallListing, CallStatus, GlobalPosition, RecordedEvent, Seq, TenantId,
};
use serde::Serialize;
use store::{EventStore, Store, StoreError, Wakeup};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The version of the WebSocket protocol (docs/protocol.md).
pub const PROTOCOL_VERSION: u32 = 1;

/// Frames a call's channel holds for a slow receiver before it lags (the default).
pub const CALL_CHANNEL: usize = 512;
/// Frames a tenant's supervisor channel holds.
const TENANT_CHANNEL: usize = 4_096;
/// Events read from the log per query.
const PAGE: usize = 1_000;
/// The tail re-reads this often even without a wake-up (a safety net, cheap when idle).
const POLL: Duration = Duration::from_secs(1);

/// One serialized server message about one event.
///
/// Cloned once per receiver by the broadcast channel: the text is a reference-counted
/// buffer, so a clone is one atomic increment, and the clone's text moves into the socket's
/// queue as it is (no second handle to count up and down per subscriber).
#[derive(Clone, Debug)]
pub struct Frame {
    pub call_id: CallId,
    /// The seq of the event; for a draft, the seq it was based on.
    pub seq: Seq,
    pub text: Utf8Bytes,
    /// A `suggestion_draft`: live only, not in the log, never replayed or de-duplicated.
    pub draft: bool,
}

/// The JSON of an `event` message.
#[derive(Serialize)]
pub struct EventMessage<'a> {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind_of_message: &'static str,
    pub call_id: CallId,
    pub seq: Seq,
    pub position: GlobalPosition,
    pub recorded_at: &'a chrono::DateTime<chrono::Utc>,
    pub kind: &'static str,
    pub schema_version: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a domain::TraceId>,
    pub data: serde_json::Value,
}

/// Serializes one recorded event as the protocol's `event` message.
pub fn event_message(e: &RecordedEvent) -> Frame {
    let encoded = e.event.encode();
    let msg = EventMessage {
        v: PROTOCOL_VERSION,
        kind_of_message: "event",
        call_id: e.meta.call_id,
        seq: e.meta.seq,
        position: e.meta.global_position,
        recorded_at: &e.meta.recorded_at,
        kind: encoded.event_type,
        schema_version: encoded.schema_version,
        trace_id: e.meta.trace_id.as_ref(),
        data: encoded.payload,
    };
    Frame {
        call_id: e.meta.call_id,
        seq: e.meta.seq,
        text: serde_json::to_string(&msg)
            .expect("event messages serialize")
            .into(),
        draft: false,
    }
}

/// The JSON of a `suggestion_draft` message: one streamed piece of a suggested reply.
#[derive(Serialize)]
pub struct SuggestionDraft<'a> {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind_of_message: &'static str,
    pub call_id: CallId,
    pub suggestion_id: domain::SuggestionId,
    pub based_on_seq: Seq,
    /// 0, 1, 2… in the order the pieces were generated.
    pub index: u32,
    pub delta: &'a str,
}

#[derive(Serialize)]
struct CallUpdated<'a> {
    v: u32,
    #[serde(rename = "type")]
    kind_of_message: &'static str,
    call_id: CallId,
    seq: Seq,
    /// The event that changed the row.
    kind: &'static str,
    call: &'a CallListing,
}

pub struct Hub {
    store: Arc<dyn Store>,
    calls: RwLock<HashMap<CallId, broadcast::Sender<Frame>>>,
    tenants: RwLock<HashMap<TenantId, broadcast::Sender<Frame>>>,
    /// Call-list rows of the calls the hub has seen, for supervisors' live wallboards.
    listings: Mutex<HashMap<CallId, CallListing>>,
    position: AtomicU64,
    call_capacity: usize,
}

impl Hub {
    /// A hub whose per-call channels hold `call_capacity` frames.
    pub fn new(store: Arc<dyn Store>, call_capacity: usize) -> Self {
        Self {
            call_capacity: call_capacity.max(1),
            store,
            calls: RwLock::new(HashMap::new()),
            tenants: RwLock::new(HashMap::new()),
            listings: Mutex::new(HashMap::new()),
            position: AtomicU64::new(0),
        }
    }

    /// The log position the hub has published up to.
    pub fn position(&self) -> GlobalPosition {
        GlobalPosition::new(self.position.load(Ordering::Acquire))
    }

    /// A receiver of the call's frames from now on. Subscribe before reading the log's
    /// backlog, so no event falls between the two.
    pub fn follow_call(&self, call: CallId) -> broadcast::Receiver<Frame> {
        if let Some(tx) = self.calls.read().expect("hub calls").get(&call) {
            return tx.subscribe();
        }
        self.calls
            .write()
            .expect("hub calls")
            .entry(call)
            .or_insert_with(|| broadcast::channel(self.call_capacity).0)
            .subscribe()
    }

    /// A receiver of `call_updated` messages for every call of the tenant.
    pub fn follow_tenant(&self, tenant: &TenantId) -> broadcast::Receiver<Frame> {
        if let Some(tx) = self.tenants.read().expect("hub tenants").get(tenant) {
            return tx.subscribe();
        }
        self.tenants
            .write()
            .expect("hub tenants")
            .entry(tenant.clone())
            .or_insert_with(|| broadcast::channel(TENANT_CHANNEL).0)
            .subscribe()
    }

    /// Follows the log from its current head until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), StoreError> {
        let mut wakeups = self.store.subscribe();
        let head = loop {
            match self.store.head().await {
                Ok(h) => break h,
                Err(e) => {
                    tracing::warn!(error = %e, "hub: cannot read the log head; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        self.position.store(head.get(), Ordering::Release);
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.catch_up().await {
                Ok(()) => backoff = Duration::from_millis(50),
                Err(e) => {
                    tracing::warn!(error = %e, "hub: reading the log failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                w = wakeups.recv() => match w {
                    Ok(Wakeup::Appended { position, .. }) if position <= self.position() => {}
                    // A wake-up, a resync, or missed wake-ups: all mean "read from your
                    // position"; several pending ones are served by one read.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        tracing::warn!("hub: the store's wake-ups stopped; polling");
                        wakeups = self.store.subscribe();
                    }
                },
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Reads and publishes everything after the hub's position.
    async fn catch_up(&self) -> Result<(), StoreError> {
        loop {
            let after = self.position();
            let page = self.store.read_all(after, PAGE).await?;
            let full = page.len() == PAGE;
            for event in &page {
                self.publish(event).await;
                self.position
                    .store(event.meta.global_position.get(), Ordering::Release);
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn publish(&self, event: &RecordedEvent) {
        let call = event.meta.call_id;
        let tx = self.calls.read().expect("hub calls").get(&call).cloned();
        if let Some(tx) = tx {
            if tx.receiver_count() == 0 {
                self.calls
                    .write()
                    .expect("hub calls")
                    .retain(|_, t| t.receiver_count() > 0);
            } else {
                let _ = tx.send(event_message(event));
            }
        }
        self.update_listing(event).await;
    }

    /// Folds the event into its call's row and tells the tenant's supervisors.
    async fn update_listing(&self, event: &RecordedEvent) {
        let tenant = &event.meta.tenant;
        let tx = self
            .tenants
            .read()
            .expect("hub tenants")
            .get(tenant)
            .cloned();
        let Some(tx) = tx.filter(|t| t.receiver_count() > 0) else {
            // Nobody watches this tenant: keep no rows for it.
            self.listings
                .lock()
                .expect("hub listings")
                .remove(&event.meta.call_id);
            return;
        };
        let call = event.meta.call_id;
        let known = self
            .listings
            .lock()
            .expect("hub listings")
            .contains_key(&call);
        if !known && !matches!(event.event, CallEvent::CallStarted(_)) {
            // A call that started before anyone watched: rebuild its row from the log.
            match store::load_stream(
                self.store.as_ref() as &dyn EventStore,
                call,
                Some(event.meta.seq),
            )
            .await
            {
                Ok(events) => {
                    let mut row = None;
                    for e in &events {
                        CallListing::fold(&mut row, e);
                    }
                    if let Some(row) = row {
                        self.listings
                            .lock()
                            .expect("hub listings")
                            .insert(call, row);
                    }
                }
                Err(e) => tracing::warn!(%call, error = %e, "hub: cannot rebuild a call row"),
            }
        }
        let mut listings = self.listings.lock().expect("hub listings");
        let mut row = listings.remove(&call);
        CallListing::fold(&mut row, event);
        let Some(row) = row else { return };
        let msg = CallUpdated {
            v: PROTOCOL_VERSION,
            kind_of_message: "call_updated",
            call_id: call,
            seq: event.meta.seq,
            kind: event.event.event_type(),
            call: &row,
        };
        let frame = Frame {
            call_id: call,
            seq: event.meta.seq,
            text: serde_json::to_string(&msg)
                .expect("call rows serialize")
                .into(),
            draft: false,
        };
        let _ = tx.send(frame);
        if row.status != CallStatus::Ended || row.disposition.is_none() {
            listings.insert(call, row);
        }
    }

    /// Sends a piece of a suggestion being generated to the call's followers on this node
    /// (`suggestion_draft`, see docs/protocol.md). Drafts are not in the log: a subscriber
    /// that connects later, or follows the call on another node, sees only the final
    /// `reply_suggested` event. Nobody following the call: nothing to do.
    ///
    /// The worker calls this from its low-priority thread, which waits for a core as long as
    /// other threads want it: the map's lock is held for the lookup only and the frame is
    /// made outside it, so that the sweeper's write lock (and, queued behind it, every
    /// `publish` of the deterministic path) does not wait for that thread.
    pub fn publish_draft(&self, draft: &SuggestionDraft<'_>) {
        let Some(tx) = self
            .calls
            .read()
            .expect("hub calls")
            .get(&draft.call_id)
            .cloned()
        else {
            return;
        };
        let frame = Frame {
            call_id: draft.call_id,
            seq: draft.based_on_seq,
            text: serde_json::to_string(draft)
                .expect("drafts serialize")
                .into(),
            draft: true,
        };
        let _ = tx.send(frame);
    }

    /// Drops the channels nobody follows any more (and the frames they still buffer).
    pub fn prune(&self) -> usize {
        let mut calls = self.calls.write().expect("hub calls");
        let before = calls.len();
        calls.retain(|_, t| t.receiver_count() > 0);
        self.tenants
            .write()
            .expect("hub tenants")
            .retain(|_, t| t.receiver_count() > 0);
        before - calls.len()
    }

    /// Calls followed on this node, for the metrics.
    pub fn followed_calls(&self) -> usize {
        self.calls.read().expect("hub calls").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unfollowed_channels_are_pruned() {
        let db = store::testkit::TestStore::sqlite();
        let hub = Hub::new(db.open_store().await, 8);
        let (a, b) = (CallId::new(), CallId::new());
        let kept = hub.follow_call(a);
        drop(hub.follow_call(b));
        let _tenant = hub.follow_tenant(&TenantId::default_tenant());
        drop(hub.follow_tenant(&TenantId::parse("other").unwrap()));
        assert_eq!(hub.followed_calls(), 2);
        assert_eq!(hub.prune(), 1);
        assert_eq!(hub.followed_calls(), 1);
        assert_eq!(hub.tenants.read().unwrap().len(), 1);
        drop(kept);
        assert_eq!(hub.prune(), 1);
        db.finish().await;
    }
}
