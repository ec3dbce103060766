//! The WebSocket at `/api/v1/ws` (the protocol is docs/protocol.md).
//!
//! A connection is two tasks: this reader, which handles the client's messages, and a
//! writer, which owns the socket's sink and sends the heartbeat. Everything bound for the
//! client goes through one [`Outbox`], bounded in bytes: a live frame that would overflow it
//! closes the connection with [`CLOSE_SLOW`] rather than being dropped, and a subscription
//! whose hub channel lagged closes it with [`CLOSE_LAGGED`]. Either way the client resumes
//! each call from the last seq it saw, and the server replays the gap from the log.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use domain::{CallId, CallStatus, Role, Seq};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::CallQuery;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::error::{ApiError, ErrorDetail};
use super::extract::parse_json;
use super::ingest::{INGEST_ROLES, SegmentBody, SegmentResult, validate_batch};
use super::{TraceCtx, new_trace_id, origin};
use crate::auth::Principal;
use crate::hub::{Frame, PROTOCOL_VERSION, event_message};
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
}

/// The state an [`Outbox`]'s clones share (one allocation: the hot path of a frame touches
/// one cache line of it, which matters when one event goes out to thousands of sockets).
struct OutboxState {
    queued: AtomicUsize,
    /// Set once the connection is ending: nothing more is queued, the writer sends the close
    /// frame and stops.
    stopped: AtomicBool,
    close: Mutex<Option<(u16, String)>>,
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

    /// Queues a message, waiting while the queue is over half full (for backlog replay,
    /// which must not overflow a healthy client).
    async fn push_paced(&self, text: Utf8Bytes) -> bool {
        let started = Instant::now();
        while self.state.queued.load(Ordering::Acquire) > self.limit / 2 {
            if self.is_stopped() || started.elapsed() > WRITE_TIMEOUT {
                return self.push(text);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.push(text)
    }

    fn json(&self, value: &impl Serialize) -> bool {
        self.push(
            serde_json::to_string(value)
                .expect("messages serialize")
                .into(),
        )
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
    let mut batch = Vec::with_capacity(1);
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
            out = rx.recv() => {
                let Some(out) = out else { break };
                // Everything already queued goes out with one flush (a segment and the alert
                // it raised usually arrive together): fewer syscalls, often one TCP segment.
                batch.clear();
                if let Out::Text(text) = out {
                    batch.push(text);
                }
                while batch.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(Out::Text(text)) => batch.push(text),
                        Ok(Out::Wake) => {}
                        Err(_) => break,
                    }
                }
                if outbox.is_stopped() {
                    break;
                }
                if batch.is_empty() {
                    continue;
                }
                let write = async {
                    for text in batch.drain(..) {
                        outbox.state.queued.fetch_sub(text.len(), Ordering::AcqRel);
                        sink.feed(Message::Text(text)).await?;
                    }
                    sink.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
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
                if tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Default::default()))).await.is_err() {
                    return;
                }
                pong_deadline = Some(tokio::time::Instant::now() + cfg.pong_timeout);
                next_ping = tokio::time::Instant::now() + jitter(cfg.ping_interval);
            }
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

async fn handle(
    state: &AppState,
    principal: &Principal,
    outbox: &Outbox,
    subs: &mut HashMap<CallId, CancellationToken>,
    tenant_sub: &mut Option<CancellationToken>,
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
                old.cancel();
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
                    if let Some(t) = subs.remove(&call) {
                        t.cancel();
                    }
                    outbox.json(&json!({"v": PROTOCOL_VERSION, "type": "unsubscribed", "call_id": call, "ref": r}));
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
                old.cancel();
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
                let trace = TraceCtx(new_trace_id());
                let outcomes = state
                    .pipeline
                    .ingest(&origin(principal, &trace), call, &segments)
                    .await?;
                Ok::<_, ApiError>((call, outcomes))
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
    let mut rx = state.hub.follow_call(call);
    let r = reference.as_deref();
    let top = match state.store.stream_version(call).await {
        Ok(t) => t,
        Err(e) => {
            outbox.json(&error_message(r, e.into()));
            return;
        }
    };
    if top.get().saturating_sub(since.get()) > MAX_REPLAY {
        outbox.json(&json!({
            "v": PROTOCOL_VERSION, "type": "resync_required", "ref": r, "call_id": call,
            "top_seq": top, "reason": "the gap is too large to replay: load the state, then subscribe from its seq",
        }));
        return;
    }
    let mut last = since;
    let mut recovered = 0u64;
    match replay(&state, call, &mut last, None, &outbox, &mut recovered).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            outbox.json(&error_message(r, e.into()));
            return;
        }
    }
    outbox.json(&json!({
        "v": PROTOCOL_VERSION, "type": "subscribed", "ref": r, "call_id": call,
        "since_seq": since, "top_seq": last, "recovered": recovered,
    }));
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    while let Some(frame) = next_frame(&mut rx, cancelled.as_mut(), &outbox, "the live feed").await
    {
        if frame.draft {
            if !outbox.push(frame.text) {
                return;
            }
            continue;
        }
        if frame.seq <= last {
            continue;
        }
        if frame.seq > last.next() {
            // Never expected (the hub publishes in order), but a gap is read from the log
            // rather than skipped.
            let upto = Seq::new(frame.seq.get() - 1);
            let mut n = 0;
            if !matches!(
                replay(&state, call, &mut last, Some(upto), &outbox, &mut n).await,
                Ok(true)
            ) {
                return;
            }
        }
        let seq = frame.seq;
        if !outbox.push(frame.text) {
            return;
        }
        last = seq;
    }
}

/// The next frame of a hub channel; `None` when the subscription ends: cancelled, the channel
/// closed, or the receiver lagged (then the connection is closed with [`CLOSE_LAGGED`] so the
/// client resumes from its last seq: a lagging receiver is never skipped silently).
///
/// `cancelled` is the subscription's `CancellationToken::cancelled()`, pinned once by the
/// caller rather than made again for every frame.
async fn next_frame(
    rx: &mut broadcast::Receiver<Frame>,
    cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
    outbox: &Outbox,
    feed: &str,
) -> Option<Frame> {
    // The channel first: the token's future takes two locks each time it is polled, so it
    // is polled only when no frame is waiting (once per wake-up, not once per frame).
    let frame = tokio::select! {
        biased;
        f = rx.recv() => f,
        _ = cancelled => return None,
    };
    match frame {
        Ok(frame) => Some(frame),
        Err(broadcast::error::RecvError::Lagged(_)) => {
            outbox.close_with(
                CLOSE_LAGGED,
                &format!("fell behind {feed}; resubscribe with since_seq"),
            );
            None
        }
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// Sends the log's events after `last` (up to `upto`), advancing `last`. False when the
/// connection is closing.
async fn replay(
    state: &AppState,
    call: CallId,
    last: &mut Seq,
    upto: Option<Seq>,
    outbox: &Outbox,
    count: &mut u64,
) -> Result<bool, store::StoreError> {
    loop {
        let page = state.store.read_stream(call, *last, REPLAY_PAGE).await?;
        let full = page.len() == REPLAY_PAGE;
        for e in &page {
            if upto.is_some_and(|u| e.meta.seq > u) {
                return Ok(true);
            }
            if !outbox.push_paced(event_message(e).text).await {
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
    let mut rx: broadcast::Receiver<Frame> = state.hub.follow_tenant(&principal.tenant);
    let r = reference.as_deref();
    let mut query = CallQuery::tenant(principal.tenant.clone());
    query.status = Some(CallStatus::Live);
    query.limit = 1_000;
    match state.store.list_calls(&query).await {
        Ok(calls) => {
            outbox.json(&json!({
                "v": PROTOCOL_VERSION, "type": "calls", "ref": r,
                "tenant": principal.tenant, "calls": calls,
            }));
        }
        Err(e) => {
            outbox.json(&error_message(r, e.into()));
            return;
        }
    }
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    while let Some(frame) =
        next_frame(&mut rx, cancelled.as_mut(), &outbox, "the tenant feed").await
    {
        if !outbox.push(frame.text) {
            return;
        }
    }
}
