//! The WebSocket at `/api/v1/ws` (the protocol is docs/protocol.md).
//!
//! A connection is two tasks: this reader, which handles the client's messages, and a
//! writer, which owns the socket's sink and sends the heartbeat. Replies, errors and each
//! subscription's backlog go through one [`Outbox`], bounded in bytes: a message that would
//! overflow it closes the connection with [`CLOSE_SLOW`] rather than being dropped. Once its
//! backlog is queued, a subscription hands its hub receiver to the writer, which reads the
//! live frames straight from the hub's channel ([`super::live`]). A writer that falls
//! behind that channel closes the connection: with [`CLOSE_SLOW`] when its socket was
//! pushing back (the client reads too slowly), otherwise with [`CLOSE_LAGGED`]. Either way
//! the client resumes each call from the last seq it saw, and the server replays the gap
//! from the log.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use domain::{CallId, CallStatus, Role, SegmentId, Seq};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::task::Poll;
use store::CallQuery;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, ErrorDetail};
use super::extract::parse_json;
use super::ingest::{INGEST_ROLES, SegmentBody, SegmentResult, validate_batch};
use super::live::{FeedKey, Feeds, Flagged, Live, Next};
use super::{TraceCtx, new_trace_id, origin};
use crate::auth::Principal;
use crate::hub::{PROTOCOL_VERSION, event_message};
use crate::server::AppState;

/// The client did not answer pings.
pub const CLOSE_HEARTBEAT: u16 = 4000;
/// The client read too slowly: its send queue overflowed.
pub const CLOSE_SLOW: u16 = 4008;
/// A subscription fell behind the hub's channel.
pub const CLOSE_LAGGED: u16 = 4009;
/// The server is shutting down (the standard "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The most events replayed for one subscription; a larger gap gets `resync_required`.
const MAX_REPLAY: u64 = 10_000;
const REPLAY_PAGE: usize = 500;
/// The most queued messages written before one flush.
const WRITE_BATCH: usize = 64;
/// A send to the socket that takes longer than this means the client is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The close reason after a write waited past its timeout.
const WRITE_TIMED_OUT: &str = "slow consumer: the socket took no data; resubscribe with since_seq";

/// Per-connection limits and timings (small buffers keep an idle connection cheap).
#[derive(Clone, Debug)]
pub struct WsConfig {
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    /// Bytes queued for a client before it counts as slow.
    pub max_queued_bytes: usize,
    pub read_buffer: usize,
    pub write_buffer: usize,
    pub max_message_bytes: usize,
    /// How long one write may wait for a client that does not read before the connection is
    /// closed as a slow consumer.
    pub write_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            max_queued_bytes: 1024 * 1024,
            read_buffer: 4 * 1024,
            write_buffer: 4 * 1024,
            max_message_bytes: 1024 * 1024,
            write_timeout: WRITE_TIMEOUT,
        }
    }
}

/// Upgrades to the WebSocket. The token comes in `Authorization: Bearer` or, from a browser,
/// `?access_token=`.
pub async fn upgrade(
    State(state): State<AppState>,
    principal: Principal,
    ws: WebSocketUpgrade,
) -> Response {
    let cfg = state.ws.clone();
    ws.read_buffer_size(cfg.read_buffer)
        .write_buffer_size(cfg.write_buffer)
        .max_write_buffer_size(cfg.max_queued_bytes.max(cfg.write_buffer + 1))
        .max_message_size(cfg.max_message_bytes)
        .on_upgrade(move |socket| connection(socket, principal, state))
}

/// What the client may send.
#[derive(Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe {
        call_id: String,
        #[serde(default)]
        since_seq: Option<u64>,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Unsubscribe {
        call_id: String,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    SubscribeTenant {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
    Segments {
        call_id: String,
        segments: Vec<SegmentBody>,
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
}

/// Parses one text frame from the client. Public so that `fuzz/` exercises the exact code
/// the connection runs; segments are validated later, per message type.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ApiError> {
    parse_json(text.as_bytes())
}

/// What a connection's writer takes from its queue.
enum Out {
    Text(Utf8Bytes),
    /// Look at the stop flag: sent by [`Outbox::stop`], carries nothing for the client.
    Wake,
    /// A subscription's live feed, after its backlog (boxed: the queue's slots stay small).
    Follow(Box<Live>),
    /// End a subscription's live feed (sent before the reply to `unsubscribe`, so no frame
    /// of the call follows the reply).
    Unfollow(FeedKey),
}

/// The state an [`Outbox`]'s clones share (one allocation: the hot path of a frame touches
/// one cache line of it, which matters when one event goes out to thousands of sockets).
struct OutboxState {
    queued: AtomicUsize,
    /// Set once the connection is ending: nothing more is queued, the writer sends the close
    /// frame and stops.
    stopped: AtomicBool,
    close: Mutex<Option<(u16, String)>>,
    /// Held while a subscription queues something, and while one is ended: what a
    /// subscription queues after the check that it is still on cannot follow the reply that
    /// ended it. Taken per message of a backlog, never per live frame.
    order: Mutex<()>,
}

/// The queue of messages bound for one client, bounded in bytes.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    state: Arc<OutboxState>,
    limit: usize,
    /// The connection's token: its subscriptions' tokens are children of it.
    closing: CancellationToken,
}

impl Outbox {
    fn is_stopped(&self) -> bool {
        self.state.stopped.load(Ordering::Acquire)
    }

    /// Queues a message; on overflow closes the connection (slow consumer) and returns false.
    fn push(&self, text: Utf8Bytes) -> bool {
        // An atomic flag, not the token: `CancellationToken::is_cancelled` takes a lock, on
        // every frame of every subscriber.
        if self.is_stopped() {
            return false;
        }
        let len = text.len();
        let before = self.state.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.limit {
            self.state.queued.fetch_sub(len, Ordering::AcqRel);
            self.close_with(
                CLOSE_SLOW,
                "slow consumer: send queue full; resubscribe with since_seq",
            );
            return false;
        }
        self.tx.send(Out::Text(text)).is_ok()
    }

    /// Queues a message of the subscription `sub`, waiting while the queue is over half
    /// full (for backlog replay, which must not overflow a healthy client). False when the
    /// subscription or the connection has ended.
    async fn push_paced(&self, sub: &CancellationToken, text: Utf8Bytes) -> bool {
        let started = Instant::now();
        while self.state.queued.load(Ordering::Acquire) > self.limit / 2 {
            if self.is_stopped() || started.elapsed() > WRITE_TIMEOUT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.push_for(sub, text)
    }

    /// Queues a message of the subscription `sub` unless it has ended (see
    /// [`Outbox::end_subscription`]).
    fn push_for(&self, sub: &CancellationToken, text: Utf8Bytes) -> bool {
        let _order = self.state.order.lock().expect("subscription order");
        !sub.is_cancelled() && self.push(text)
    }

    fn json_for(&self, sub: &CancellationToken, value: &impl Serialize) -> bool {
        self.push_for(sub, encode(value))
    }

    /// Hands a subscription's live feed to the writer, unless the subscription has ended.
    fn follow(&self, sub: &CancellationToken, live: Live) {
        let _order = self.state.order.lock().expect("subscription order");
        if !sub.is_cancelled() {
            let _ = self.tx.send(Out::Follow(Box::new(live)));
        }
    }

    /// Ends a subscription: its backlog stops, its live feed ends in the writer, and then
    /// `reply` (if any) is queued: nothing of the subscription comes after it.
    fn end_subscription(
        &self,
        sub: CancellationToken,
        key: FeedKey,
        reply: Option<&serde_json::Value>,
    ) {
        let _order = self.state.order.lock().expect("subscription order");
        sub.cancel();
        let _ = self.tx.send(Out::Unfollow(key));
        if let Some(reply) = reply {
            self.json(reply);
        }
    }

    fn json(&self, value: &impl Serialize) -> bool {
        self.push(encode(value))
    }

    /// Closes the connection with `code` and `reason`, unless another reason came first.
    fn close_with(&self, code: u16, reason: &str) {
        let mut close = self.state.close.lock().expect("close reason");
        if close.is_none() {
            *close = Some((code, reason.to_owned()));
        }
        drop(close);
        self.stop();
    }

    /// Ends the connection: the writer sends the close frame (the first reason given, or
    /// 1000) instead of what is still queued, and the subscriptions and the reader stop.
    fn stop(&self) {
        self.state.stopped.store(true, Ordering::Release);
        let _ = self.tx.send(Out::Wake);
        self.closing.cancel();
    }
}

fn encode(value: &impl Serialize) -> Utf8Bytes {
    serde_json::to_string(value)
        .expect("messages serialize")
        .into()
}

async fn connection(socket: WebSocket, principal: Principal, state: AppState) {
    let cfg = state.ws.clone();
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let closing = state.shutdown.child_token();
    let outbox = Outbox {
        tx,
        state: Arc::new(OutboxState {
            queued: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            close: Mutex::new(None),
            order: Mutex::new(()),
        }),
        limit: cfg.max_queued_bytes,
        closing: closing.clone(),
    };
    let awaiting_pong = Arc::new(AtomicBool::new(false));
    metrics::gauge!("earshot_ws_connections").increment(1.0);
    let connection_id = new_trace_id();
    tracing::debug!(connection = %connection_id, tenant = %principal.tenant, role = %principal.role, "websocket open");

    outbox.json(&json!({
        "v": PROTOCOL_VERSION,
        "type": "hello",
        "tenant": principal.tenant,
        "role": principal.role,
        "heartbeat_ms": cfg.ping_interval.as_millis() as u64,
    }));

    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        outbox.clone(),
        cfg.clone(),
        awaiting_pong.clone(),
    ));

    let mut subs: HashMap<CallId, CancellationToken> = HashMap::new();
    let mut tenant_sub: Option<CancellationToken> = None;
    let mut failed = FailedIngest::default();
    loop {
        let msg = tokio::select! {
            _ = closing.cancelled() => break,
            m = stream.next() => m,
        };
        let Some(Ok(msg)) = msg else { break };
        match msg {
            Message::Text(text) => {
                // Boxed: the connection's task lives as long as the socket, and its future
                // is as large as the largest thing it awaits; the ingest path inside
                // `handle` would more than double it for every idle subscriber.
                Box::pin(handle(
                    &state,
                    &principal,
                    &outbox,
                    &mut subs,
                    &mut tenant_sub,
                    &mut failed,
                    &closing,
                    text.as_str(),
                ))
                .await;
            }
            Message::Pong(_) => {
                awaiting_pong.store(false, Ordering::Release);
            }
            Message::Close(_) => break,
            Message::Binary(_) => {
                outbox.json(&error_message(
                    None,
                    ApiError::bad_request(
                        "binary messages are not part of the protocol; send JSON text",
                    ),
                ));
            }
            Message::Ping(_) => {}
        }
    }
    if state.shutdown.is_cancelled() {
        // Kept only if no other reason came first (as before the shutdown).
        outbox.close_with(
            CLOSE_GOING_AWAY,
            "server shutting down; reconnect and resume",
        );
    } else {
        outbox.stop();
    }
    for (_, s) in subs.drain() {
        s.cancel();
    }
    if let Some(t) = tenant_sub {
        t.cancel();
    }
    let _ = writer.await;
    metrics::gauge!("earshot_ws_connections").decrement(1.0);
    tracing::debug!(connection = %connection_id, "websocket closed");
}

async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    outbox: Outbox,
    cfg: WsConfig,
    awaiting_pong: Arc<AtomicBool>,
) {
    let jitter = |base: Duration| {
        let spread = base.as_millis() as u64 / 5;
        base + Duration::from_millis(rand::rng().random_range(0..=spread.max(1)))
    };
    let mut next_ping = tokio::time::Instant::now() + jitter(cfg.ping_interval);
    let mut pong_deadline: Option<tokio::time::Instant> = None;
    // The timer lives across iterations: a fresh `Sleep` per message would register with (and
    // leave) the timer wheel for every frame, which is measurable when one event goes out to
    // thousands of sockets. For the same reason the writer watches no cancellation token (a
    // token's future takes two locks each time it is polled, and a `select!` polls it on
    // every wake-up): whoever ends the connection sets the outbox's stop flag and wakes the
    // writer through its queue (`Outbox::stop`; the reader does it on shutdown).
    let timer = tokio::time::sleep_until(next_ping);
    tokio::pin!(timer);
    let mut batch: Vec<Utf8Bytes> = Vec::with_capacity(1);
    let mut feeds = Feeds::default();
    // The queue is polled again only once a message has woken it: a subscriber's writer
    // wakes up for the live feed, and an empty queue's poll is a cache miss per connection.
    let mut queue = Flagged::default();
    // Whether the last write had to wait for the socket: a writer that falls behind its live
    // feed while the socket pushes back has a slow client, not a busy server.
    let mut backed_up = false;
    // Takes one item of the queue: text into the batch, feeds started and ended in order.
    let take = |out: Out, batch: &mut Vec<Utf8Bytes>, feeds: &mut Feeds| match out {
        Out::Text(text) => {
            outbox.state.queued.fetch_sub(text.len(), Ordering::AcqRel);
            batch.push(text);
        }
        Out::Wake => {}
        Out::Follow(live) => feeds.start(*live),
        Out::Unfollow(key) => feeds.stop(key),
    };
    let live = |next: Next, batch: &mut Vec<Utf8Bytes>, backed_up: bool| match next {
        Next::Text(text) => batch.push(text),
        Next::Behind(_) if backed_up => outbox.close_with(
            CLOSE_SLOW,
            "slow consumer: fell behind the live feed; resubscribe with since_seq",
        ),
        Next::Behind(FeedKey::Call(_)) => outbox.close_with(
            CLOSE_LAGGED,
            "fell behind the live feed; resubscribe with since_seq",
        ),
        Next::Behind(FeedKey::Tenant) => outbox.close_with(
            CLOSE_LAGGED,
            "fell behind the tenant feed; resubscribe with since_seq",
        ),
    };
    loop {
        if outbox.is_stopped() {
            break;
        }
        let deadline = pong_deadline.unwrap_or(next_ping);
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            biased;
            out = poll_fn(|cx| queue.poll(cx, |cx| rx.poll_recv(cx))) => {
                let Some(out) = out else { break };
                take(out, &mut batch, &mut feeds);
            }
            next = poll_fn(|cx| feeds.poll_next(cx)) => live(next, &mut batch, backed_up),
            _ = &mut timer => {
                if pong_deadline.is_some() {
                    if awaiting_pong.load(Ordering::Acquire) {
                        outbox.close_with(CLOSE_HEARTBEAT, "no pong within the timeout");
                        break;
                    }
                    pong_deadline = None;
                    continue;
                }
                awaiting_pong.store(true, Ordering::Release);
                match tokio::time::timeout(cfg.write_timeout, sink.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return outbox.stop(),
                    Err(_) => {
                        outbox.close_with(CLOSE_SLOW, WRITE_TIMED_OUT);
                        break;
                    }
                }
                pong_deadline = Some(tokio::time::Instant::now() + cfg.pong_timeout);
                next_ping = tokio::time::Instant::now() + jitter(cfg.ping_interval);
                continue;
            }
        }
        // Everything else already there goes out with one flush (a segment and the alert it
        // raised usually arrive together): fewer syscalls, often one TCP segment. The queue
        // first: a feed handed over in it starts after the backlog and `subscribed` before it.
        // Both through their flags: a source that has not woken the task is not touched.
        poll_fn(|cx| {
            while batch.len() < WRITE_BATCH {
                match queue.poll(cx, |cx| rx.poll_recv(cx)) {
                    Poll::Ready(Some(out)) => take(out, &mut batch, &mut feeds),
                    // Closed: the select above sees it next.
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            while !feeds.is_empty() && batch.len() < WRITE_BATCH && !outbox.is_stopped() {
                match feeds.poll_next(cx) {
                    Poll::Ready(next) => live(next, &mut batch, backed_up),
                    Poll::Pending => break,
                }
            }
            Poll::Ready(())
        })
        .await;
        if outbox.is_stopped() {
            break;
        }
        if batch.is_empty() {
            continue;
        }
        let mut write = pin!(async {
            for text in batch.drain(..) {
                sink.feed(Message::Text(text)).await?;
            }
            sink.flush().await
        });
        // The write is tried once before a timeout is armed: most writes complete at once,
        // and a timer per write would register with the timer wheel for every frame.
        let written = match poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(r) => {
                backed_up = false;
                r
            }
            Poll::Pending => {
                backed_up = true;
                match tokio::time::timeout(cfg.write_timeout, write).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Closed, not left open and silent: the reader stops too, and the
                        // close frame below goes out if the client reads within its time.
                        outbox.close_with(CLOSE_SLOW, WRITE_TIMED_OUT);
                        break;
                    }
                }
            }
        };
        if written.is_err() {
            // The socket failed: end the connection, reader and subscriptions included.
            return outbox.stop();
        }
        if pong_deadline.is_some() && !awaiting_pong.load(Ordering::Acquire) {
            pong_deadline = None;
        }
    }
    let (code, reason) = outbox
        .state
        .close
        .lock()
        .expect("close reason")
        .clone()
        .unwrap_or((1000, String::new()));
    if code != 1000 {
        tracing::info!(code, reason = %reason, "closing a websocket");
        metrics::counter!("earshot_ws_closed_total", "code" => code.to_string()).increment(1);
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        sink.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))),
    )
    .await;
}

fn error_message(reference: Option<&str>, e: ApiError) -> serde_json::Value {
    let detail: ErrorDetail = e.detail();
    json!({
        "v": PROTOCOL_VERSION,
        "type": "error",
        "ref": reference,
        "error": detail,
    })
}

/// The calls whose ingest failed on this connection with a server error, each with the first
/// segment of the batch that failed.
///
/// A client may send a call's next segments before the answer to the previous ones arrives.
/// If a batch fails (`internal`, `unavailable`: the database restarting, say) and the next
/// one, already on its way, goes through, the failed segments can never be sent again: they
/// come before a stored one. So after such a failure the connection takes no segment of that
/// call until the batch holding the failed first segment is sent again; the ones in between
/// are answered `unavailable`, to be resent after it (docs/protocol.md).
#[derive(Default)]
struct FailedIngest(HashMap<CallId, SegmentId>);

impl FailedIngest {
    /// Whether a batch of `call` with these segment ids may go to the pipeline now.
    fn admit<'a>(
        &mut self,
        call: CallId,
        mut ids: impl Iterator<Item = &'a SegmentId>,
    ) -> Result<(), ApiError> {
        let Some(first) = self.0.get(&call) else {
            return Ok(());
        };
        if !ids.any(|id| id == first) {
            return Err(ApiError::unavailable(format!(
                "segment {first} of this call failed on this connection; send it again, then \
                 the segments after it"
            )));
        }
        self.0.remove(&call);
        Ok(())
    }

    /// Notes the answer to a batch of `call` that starts with `first`.
    fn answered(&mut self, call: CallId, first: &SegmentId, error: &ApiError) {
        if error.status.is_server_error() {
            self.0.insert(call, first.clone());
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    principal: &Principal,
    outbox: &Outbox,
    subs: &mut HashMap<CallId, CancellationToken>,
    tenant_sub: &mut Option<CancellationToken>,
    failed: &mut FailedIngest,
    closing: &CancellationToken,
    text: &str,
) {
    let msg = match parse_client_message(text) {
        Ok(m) => m,
        Err(e) => {
            outbox.json(&error_message(None, e));
            return;
        }
    };
    match msg {
        ClientMessage::Subscribe {
            call_id,
            since_seq,
            reference,
        } => {
            let r = reference.as_deref();
            let call = match super::call_id(&call_id) {
                Ok(c) => c,
                Err(e) => {
                    outbox.json(&error_message(r, e));
                    return;
                }
            };
            match state.pipeline.call_tenant(call).await {
                Ok(Some(t)) if t == principal.tenant => {}
                Ok(_) => {
                    outbox.json(&error_message(
                        r,
                        ApiError::not_found("call").with_field("call_id"),
                    ));
                    return;
                }
                Err(e) => {
                    outbox.json(&error_message(r, e.into()));
                    return;
                }
            }
            if let Some(old) = subs.remove(&call) {
                outbox.end_subscription(old, FeedKey::Call(call), None);
            }
            let token = closing.child_token();
            subs.insert(call, token.clone());
            tokio::spawn(follow_call(
                state.clone(),
                call,
                Seq::new(since_seq.unwrap_or(0)),
                reference,
                outbox.clone(),
                token,
            ));
        }
        ClientMessage::Unsubscribe { call_id, reference } => {
            let r = reference.as_deref();
            match super::call_id(&call_id) {
                Ok(call) => {
                    let reply = json!({"v": PROTOCOL_VERSION, "type": "unsubscribed", "call_id": call, "ref": r});
                    match subs.remove(&call) {
                        Some(sub) => {
                            outbox.end_subscription(sub, FeedKey::Call(call), Some(&reply))
                        }
                        None => {
                            outbox.json(&reply);
                        }
                    }
                }
                Err(e) => {
                    outbox.json(&error_message(r, e));
                }
            }
        }
        ClientMessage::SubscribeTenant { reference } => {
            let r = reference.as_deref();
            if let Err(e) = principal.require(&[Role::Supervisor, Role::Admin], "follow all calls")
            {
                outbox.json(&error_message(r, e));
                return;
            }
            if let Some(old) = tenant_sub.take() {
                outbox.end_subscription(old, FeedKey::Tenant, None);
            }
            let token = closing.child_token();
            *tenant_sub = Some(token.clone());
            tokio::spawn(follow_tenant(
                state.clone(),
                principal.clone(),
                reference,
                outbox.clone(),
                token,
            ));
        }
        ClientMessage::Segments {
            call_id,
            segments,
            reference,
        } => {
            let r = reference.as_deref();
            let result = async {
                principal.require(INGEST_ROLES, "ingest segments")?;
                let call = super::call_id(&call_id)?;
                let segments = validate_batch(segments, state.pipeline.max_segment_chars)?;
                failed.admit(call, segments.iter().map(|s| &s.segment_id))?;
                let trace = TraceCtx(new_trace_id());
                let ingested = state
                    .pipeline
                    .ingest(&origin(principal, &trace), call, &segments)
                    .await;
                match ingested {
                    Ok(outcomes) => Ok::<_, ApiError>((call, outcomes)),
                    Err(e) => {
                        let e = ApiError::from(e);
                        failed.answered(call, &segments[0].segment_id, &e);
                        Err(e)
                    }
                }
            }
            .await;
            match result {
                Ok((call, outcomes)) => {
                    let results: Vec<SegmentResult> = outcomes
                        .into_iter()
                        .map(SegmentResult::from_outcome)
                        .collect();
                    outbox.json(&json!({
                        "v": PROTOCOL_VERSION,
                        "type": "ack",
                        "ref": r,
                        "call_id": call,
                        "results": results,
                    }));
                }
                Err(e) => {
                    outbox.json(&error_message(r, e));
                }
            }
        }
    }
}

/// One subscription: the backlog after `since` from the log, then the live frames.
async fn follow_call(
    state: AppState,
    call: CallId,
    since: Seq,
    reference: Option<String>,
    outbox: Outbox,
    cancel: CancellationToken,
) {
    // Follow first, then read the backlog: an event committed in between arrives both ways
    // and is sent once (frames at or below `last` are skipped).
    let rx = state.hub.follow_call(call);
    let r = reference.as_deref();
    let top = match state.store.stream_version(call).await {
        Ok(t) => t,
        Err(e) => {
            outbox.json_for(&cancel, &error_message(r, e.into()));
            return;
        }
    };
    if top.get().saturating_sub(since.get()) > MAX_REPLAY {
        outbox.json_for(&cancel, &json!({
            "v": PROTOCOL_VERSION, "type": "resync_required", "ref": r, "call_id": call,
            "top_seq": top, "reason": "the gap is too large to replay: load the state, then subscribe from its seq",
        }));
        return;
    }
    let mut last = since;
    let mut recovered = 0u64;
    match replay(&state, call, &mut last, &outbox, &cancel, &mut recovered).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            outbox.json_for(&cancel, &error_message(r, e.into()));
            return;
        }
    }
    outbox.json_for(
        &cancel,
        &json!({
            "v": PROTOCOL_VERSION, "type": "subscribed", "ref": r, "call_id": call,
            "since_seq": since, "top_seq": last, "recovered": recovered,
        }),
    );
    outbox.follow(
        &cancel,
        Live::new(FeedKey::Call(call), rx, last, cancel.clone()),
    );
}

/// Sends the log's events after `last`, advancing `last`. False when the subscription `sub`
/// or the connection has ended.
async fn replay(
    state: &AppState,
    call: CallId,
    last: &mut Seq,
    outbox: &Outbox,
    sub: &CancellationToken,
    count: &mut u64,
) -> Result<bool, store::StoreError> {
    loop {
        let page = state.store.read_stream(call, *last, REPLAY_PAGE).await?;
        let full = page.len() == REPLAY_PAGE;
        for e in &page {
            if !outbox.push_paced(sub, event_message(e).text).await {
                return Ok(false);
            }
            *last = e.meta.seq;
            *count += 1;
        }
        if !full {
            return Ok(true);
        }
    }
}

/// A supervisor's feed: the tenant's live calls now, then every change to any of its calls.
async fn follow_tenant(
    state: AppState,
    principal: Principal,
    reference: Option<String>,
    outbox: Outbox,
    cancel: CancellationToken,
) {
    let rx = state.hub.follow_tenant(&principal.tenant);
    let r = reference.as_deref();
    let mut query = CallQuery::tenant(principal.tenant.clone());
    query.status = Some(CallStatus::Live);
    query.limit = 1_000;
    match state.store.list_calls(&query).await {
        Ok(calls) => {
            outbox.json_for(
                &cancel,
                &json!({
                    "v": PROTOCOL_VERSION, "type": "calls", "ref": r,
                    "tenant": principal.tenant, "calls": calls,
                }),
            );
        }
        Err(e) => {
            outbox.json_for(&cancel, &error_message(r, e.into()));
            return;
        }
    }
    outbox.follow(
        &cancel,
        Live::new(FeedKey::Tenant, rx, Seq::new(0), cancel.clone()),
    );
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn ids(ids: &[&str]) -> Vec<SegmentId> {
        ids.iter()
            .map(|id| SegmentId::parse(*id).unwrap())
            .collect()
    }

    #[test]
    fn after_a_server_error_a_call_takes_nothing_before_the_failed_segment_again() {
        let (call, other) = (CallId::new(), CallId::new());
        let mut failed = FailedIngest::default();
        assert!(failed.admit(call, ids(&["s2"]).iter()).is_ok());
        failed.answered(call, &ids(&["s2"])[0], &ApiError::internal());
        // s3 was already on its way: refused, so it cannot be stored before s2.
        let refused = failed.admit(call, ids(&["s3"]).iter()).unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            refused.detail().message.contains("s2"),
            "{:?}",
            refused.detail()
        );
        assert!(failed.admit(call, ids(&["s3", "s4"]).iter()).is_err());
        // Other calls on the connection are not held up.
        assert!(failed.admit(other, ids(&["s3"]).iter()).is_ok());
        // The failed segment again (with what follows it): admitted, and the call is free.
        assert!(failed.admit(call, ids(&["s2", "s3"]).iter()).is_ok());
        assert!(failed.admit(call, ids(&["s4"]).iter()).is_ok());
    }

    #[test]
    fn a_refusal_holds_nothing_up() {
        let call = CallId::new();
        let mut failed = FailedIngest::default();
        failed.answered(
            call,
            &ids(&["s2"])[0],
            &ApiError::field("segments[0].start_ms", "before the previous segment"),
        );
        assert!(failed.admit(call, ids(&["s3"]).iter()).is_ok());
    }
}
