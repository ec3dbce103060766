//! The measured part: per call one ingest WebSocket sending on a schedule, and the
//! subscriber WebSockets that timestamp each `alert_raised` (and, with an LLM provider on
//! the server, each suggestion's first streamed draft and its `reply_suggested`) and check
//! the seqs.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Latency samples of one task, in microseconds. Tasks keep raw samples (a few dozen each)
/// rather than a histogram each: thousands of HdrHistograms would take gigabytes. The
/// report merges them into one histogram.
pub type Samples = Vec<u32>;

fn record(samples: &mut Samples, nanos: u64) {
    samples.push(u32::try_from((nanos / 1_000).max(1)).unwrap_or(u32::MAX));
}

/// What the tasks of one call share.
pub struct Call {
    pub id: String,
    /// Send instant of segment k, as nanoseconds since the run's epoch, plus one (0: unsent).
    sends: Vec<AtomicU64>,
    /// The seq of each segment whose seq is known (from its ack or its `segment_added`
    /// event) → the segment's index: suggestions name the seq they were based on.
    seqs: Mutex<BTreeMap<u64, usize>>,
    /// Segment k's seq plus one once noted in `seqs` (0: not yet): every subscriber sees
    /// every `segment_added`, and all but the first find it here without taking the lock.
    noted: Vec<AtomicU64>,
    /// The call's top seq once every segment is acknowledged (u64::MAX until then).
    target: AtomicU64,
}

impl Call {
    pub fn new(id: String, segments: usize) -> Self {
        Self {
            id,
            sends: (0..segments).map(|_| AtomicU64::new(0)).collect(),
            seqs: Mutex::new(BTreeMap::new()),
            noted: (0..segments).map(|_| AtomicU64::new(0)).collect(),
            target: AtomicU64::new(u64::MAX),
        }
    }

    pub fn set_target(&self, top_seq: u64) {
        self.target.store(top_seq, Ordering::Release);
    }

    pub(crate) fn target(&self) -> u64 {
        self.target.load(Ordering::Acquire)
    }

    fn sent_at(&self, k: usize) -> Option<u64> {
        match self.sends.get(k)?.load(Ordering::Acquire) {
            0 => None,
            n => Some(n - 1),
        }
    }

    /// Notes that segment `k` was written at `seq`.
    fn note_seq(&self, seq: u64, k: usize) {
        let Some(noted) = self.noted.get(k) else {
            return;
        };
        if noted.load(Ordering::Acquire) == seq + 1 {
            return;
        }
        self.seqs
            .lock()
            .expect("the seq map")
            .entry(seq)
            .or_insert(k);
        noted.store(seq + 1, Ordering::Release);
    }

    /// The send instant of the segment at `seq`, or of the newest segment before it.
    fn sent_at_or_before_seq(&self, seq: u64) -> Option<u64> {
        let k = self
            .seqs
            .lock()
            .expect("the seq map")
            .range(..=seq)
            .next_back()
            .map(|(_, k)| *k)?;
        self.sent_at(k)
    }
}

/// The phase of the run, watched by every task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Sending is over: finish what is in flight by the deadline.
    Draining(Instant),
}

impl Phase {
    fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Running => None,
            Phase::Draining(d) => Some(d),
        }
    }
}

/// The clock every timestamp is taken against.
#[derive(Clone, Copy)]
pub struct Clock {
    pub epoch: Instant,
    /// Sends before this (nanoseconds since the epoch) are not recorded in the histograms.
    pub record_from: u64,
}

impl Clock {
    pub(crate) fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// A server message, with the fields the tool reads. Strings borrow from the frame's text
/// (`Cow`: owned only when the JSON escapes something): 10,000 subscribers parse every event,
/// and an allocation per field per message is a measurable share of the tool's CPU, which
/// shares the machine with the server it measures.
#[derive(Deserialize)]
pub(crate) struct ServerMsg<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) ty: Cow<'a, str>,
    #[serde(default, borrow)]
    call_id: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    /// `suggestion_draft`: the seq the suggestion is based on, and the delta's index.
    #[serde(default)]
    based_on_seq: Option<u64>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<EventData<'a>>,
    #[serde(default, rename = "ref", borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    results: Option<Vec<AckResult<'a>>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(default, borrow)]
    segment_id: Option<Cow<'a, str>>,
    /// `reply_suggested`, `generation_failed`.
    #[serde(default)]
    based_on_seq: Option<u64>,
}

#[derive(Deserialize)]
struct AckResult<'a> {
    /// The segment's seq.
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default, borrow)]
    caused: Vec<Caused<'a>>,
}

/// Parses a server message. A message the tool cannot read is an error when it is not a
/// JSON object or is an `event` (the stream the checks are about); any other object (of a
/// type the tool does not know, or of a known type with an unexpected shape) is `None`, and
/// skipped.
pub(crate) fn parse(text: &str) -> Result<Option<ServerMsg<'_>>, serde_json::Error> {
    match serde_json::from_str::<ServerMsg>(text) {
        Ok(m) => Ok(Some(m)),
        Err(e) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) if v.is_object() && v.get("type").and_then(|t| t.as_str()) != Some("event") => {
                Ok(None)
            }
            _ => Err(e),
        },
    }
}

#[derive(Deserialize)]
struct Caused<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

/// Opens a WebSocket: Nagle off on the client's side, and small buffers (the default 128 KiB
/// read buffer would take 750 MB over 6,000 connections).
pub async fn connect(url: &str) -> anyhow::Result<Ws> {
    connect_with_buffers(url, 8 * 1024).await
}

/// [`connect`] with read and write buffers of `buffer` bytes. tungstenite zero-fills its
/// whole read buffer before every read, so with many sockets each getting a frame or two at
/// a time the buffer size costs CPU, not only memory.
pub async fn connect_with_buffers(url: &str, buffer: usize) -> anyhow::Result<Ws> {
    let config = WebSocketConfig::default()
        .read_buffer_size(buffer)
        .write_buffer_size(buffer);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .context("opening the WebSocket")?;
    Ok(ws)
}

fn segment_index(segment_id: &str) -> Option<usize> {
    segment_id.strip_prefix('s')?.parse().ok()
}

/// What one subscriber saw.
pub struct SubscriberStats {
    pub events: u64,
    pub last_seq: u64,
    /// Seqs skipped between two received events.
    pub gaps: u64,
    pub duplicates: u64,
    pub alerts: u64,
    /// `alert_raised` for a segment the tool has no send time for.
    pub unmatched: u64,
    pub latency: Samples,
    /// Segment → its own `segment_added` event (the first frame a segment causes).
    pub segment_latency: Samples,
    /// Events between the last one received and the call's top seq at the end.
    pub missing: u64,
    /// Why the connection ended early, if it did.
    pub closed: Option<String>,
    /// `suggestion_draft` messages received (every delta).
    pub drafts: u64,
    /// Drafts of index 0 (a suggestion's first token).
    pub first_tokens: u64,
    /// `reply_suggested` events.
    pub suggestions: u64,
    /// `generation_failed` events.
    pub generation_failures: u64,
    /// First drafts and `reply_suggested` events with no sent segment at or before their
    /// `based_on_seq`.
    pub suggestions_unmatched: u64,
    /// Segment → the suggestion's first draft.
    pub first_token_latency: Samples,
    /// Segment → its `reply_suggested` event.
    pub suggestion_latency: Samples,
    /// Seqs of the events the server's assist worker wrote (`reply_suggested`,
    /// `generation_failed`), for the check of the call's top seq.
    pub assist_seqs: Vec<u64>,
}

impl SubscriberStats {
    pub(crate) fn new() -> Self {
        Self {
            events: 0,
            last_seq: 0,
            gaps: 0,
            duplicates: 0,
            alerts: 0,
            unmatched: 0,
            latency: Samples::new(),
            segment_latency: Samples::new(),
            missing: 0,
            closed: None,
            drafts: 0,
            first_tokens: 0,
            suggestions: 0,
            generation_failures: 0,
            suggestions_unmatched: 0,
            first_token_latency: Samples::new(),
            suggestion_latency: Samples::new(),
            assist_seqs: Vec::new(),
        }
    }

    /// Assist events (`reply_suggested`, `generation_failed`) at or below `top`.
    pub fn assist_events_upto(&self, top: u64) -> u64 {
        self.assist_seqs.iter().filter(|s| **s <= top).count() as u64
    }

    pub(crate) fn on_message(
        &mut self,
        msg: &ServerMsg<'_>,
        arrived: u64,
        call: &Call,
        clock: &Clock,
    ) {
        match msg.ty.as_ref() {
            "event" => self.on_event(msg, arrived, call, clock),
            "suggestion_draft" => self.on_draft(msg, arrived, call, clock),
            _ => {}
        }
    }

    /// Records a suggestion's latency from the segment it was based on.
    fn record_suggestion(
        samples: &mut Samples,
        unmatched: &mut u64,
        based_on: Option<u64>,
        arrived: u64,
        call: &Call,
        clock: &Clock,
    ) {
        match based_on.and_then(|seq| call.sent_at_or_before_seq(seq)) {
            Some(sent) => {
                if sent >= clock.record_from {
                    record(samples, arrived.saturating_sub(sent));
                }
            }
            None => *unmatched += 1,
        }
    }

    /// A streamed delta of a suggestion: the first one (index 0) is timed.
    fn on_draft(&mut self, msg: &ServerMsg<'_>, arrived: u64, call: &Call, clock: &Clock) {
        if msg.call_id.as_deref().is_some_and(|id| id != call.id) {
            return;
        }
        self.drafts += 1;
        if msg.index != Some(0) {
            return;
        }
        self.first_tokens += 1;
        Self::record_suggestion(
            &mut self.first_token_latency,
            &mut self.suggestions_unmatched,
            msg.based_on_seq,
            arrived,
            call,
            clock,
        );
    }

    /// Checks the seq and, for an alert, records its latency.
    fn on_event(&mut self, msg: &ServerMsg<'_>, arrived: u64, call: &Call, clock: &Clock) {
        let Some(seq) = msg.seq else { return };
        self.events += 1;
        if seq <= self.last_seq {
            self.duplicates += 1;
            return;
        }
        if seq > self.last_seq + 1 {
            self.gaps += seq - self.last_seq - 1;
        }
        self.last_seq = seq;
        match msg.kind.as_deref() {
            Some("alert_raised") => {}
            Some("segment_added") => {
                if let Some(k) = msg
                    .data
                    .as_ref()
                    .and_then(|d| d.segment_id.as_deref())
                    .and_then(segment_index)
                {
                    call.note_seq(seq, k);
                    if let Some(sent) = call.sent_at(k)
                        && sent >= clock.record_from
                    {
                        record(&mut self.segment_latency, arrived.saturating_sub(sent));
                    }
                }
                return;
            }
            Some("reply_suggested") => {
                self.suggestions += 1;
                self.assist_seqs.push(seq);
                Self::record_suggestion(
                    &mut self.suggestion_latency,
                    &mut self.suggestions_unmatched,
                    msg.data.as_ref().and_then(|d| d.based_on_seq),
                    arrived,
                    call,
                    clock,
                );
                return;
            }
            Some("generation_failed") => {
                self.generation_failures += 1;
                self.assist_seqs.push(seq);
                return;
            }
            _ => return,
        }
        self.alerts += 1;
        let sent = msg
            .data
            .as_ref()
            .and_then(|d| d.segment_id.as_deref())
            .and_then(segment_index)
            .and_then(|k| call.sent_at(k));
        match sent {
            Some(sent) => {
                if sent >= clock.record_from {
                    record(&mut self.latency, arrived.saturating_sub(sent));
                }
            }
            None => self.unmatched += 1,
        }
    }
}

/// Subscribes `ws` to the call from seq 0 and waits for `subscribed` (the backlog comes
/// first and is checked like live events).
pub async fn subscribe(ws: &mut Ws, call: &Call, clock: &Clock) -> anyhow::Result<SubscriberStats> {
    let mut stats = SubscriberStats::new();
    ws.send(subscribe_message(call))
        .await
        .context("sending subscribe")?;
    let wait = async {
        while let Some(msg) = ws.next().await {
            let arrived = clock.now();
            if stats.until_subscribed(
                msg.context("reading the WebSocket")?,
                arrived,
                call,
                clock,
            )? {
                return Ok(());
            }
        }
        bail!("the server closed the WebSocket before `subscribed`")
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("no `subscribed` within 30 s")??;
    Ok(stats)
}

/// The subscription the tool's subscribers make: the call from seq 0.
pub(crate) fn subscribe_message(call: &Call) -> Message {
    Message::Text(
        json!({"type": "subscribe", "call_id": call.id, "since_seq": 0, "ref": "load"})
            .to_string()
            .into(),
    )
}

impl SubscriberStats {
    /// Takes one message while waiting for `subscribed` (the backlog is checked like live
    /// events); true once it has come, an error if the subscription was refused.
    pub(crate) fn until_subscribed(
        &mut self,
        msg: Message,
        arrived: u64,
        call: &Call,
        clock: &Clock,
    ) -> anyhow::Result<bool> {
        let Message::Text(text) = msg else {
            return Ok(false);
        };
        let Some(msg) = parse(&text).context("a server message")? else {
            return Ok(false);
        };
        match msg.ty.as_ref() {
            "subscribed" => Ok(true),
            "error" | "resync_required" => bail!("subscribe refused: {text}"),
            _ => {
                self.on_message(&msg, arrived, call, clock);
                Ok(false)
            }
        }
    }

    /// Takes one message of a subscribed socket; false when the connection is over (the
    /// server closed it, or sent something unreadable), with the reason in `closed`.
    pub(crate) fn on_frame(
        &mut self,
        msg: Message,
        arrived: u64,
        call: &Call,
        clock: &Clock,
    ) -> bool {
        match msg {
            Message::Text(text) => match parse(&text) {
                Ok(Some(m)) => self.on_message(&m, arrived, call, clock),
                Ok(None) => {}
                Err(e) => {
                    self.closed = Some(format!("unreadable message: {e}"));
                    return false;
                }
            },
            Message::Close(frame) => {
                self.closed = Some(match frame {
                    Some(f) => format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                    None => "closed by the server".to_owned(),
                });
                return false;
            }
            _ => {}
        }
        true
    }
}

/// A subscriber being read by its own task.
///
/// The task only awaits its socket: it watches no channel and no timer. A `select!` over the
/// socket and a run-phase channel polled the channel's future (a lock) on every wake-up, for
/// each of 10,000 subscribers on every event, on the two cores the server being measured
/// also runs on. The end of the run comes from [`Subscriber::finish`] instead.
pub struct Subscriber {
    task: tokio::task::JoinHandle<()>,
    /// The newest seq the subscriber has seen.
    last_seq: Arc<AtomicU64>,
    stats: oneshot::Receiver<SubscriberStats>,
    call: Arc<Call>,
}

/// Hands a subscriber's stats over when its task ends, however it ends (finished, or
/// aborted at the deadline): the events between its last seq and the call's top are missing.
struct StatsOut {
    stats: SubscriberStats,
    call: Arc<Call>,
    tx: Option<oneshot::Sender<SubscriberStats>>,
}

impl Drop for StatsOut {
    fn drop(&mut self) {
        let mut stats = std::mem::replace(&mut self.stats, SubscriberStats::new());
        let target = self.call.target();
        stats.missing = if target == u64::MAX {
            0
        } else {
            target.saturating_sub(stats.last_seq)
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(stats);
        }
    }
}

/// Starts reading a subscribed socket; see [`Subscriber`].
pub fn spawn_subscriber(
    ws: Ws,
    call: Arc<Call>,
    clock: Clock,
    stats: SubscriberStats,
) -> Subscriber {
    let (tx, rx) = oneshot::channel();
    let last_seq = Arc::new(AtomicU64::new(stats.last_seq));
    let out = StatsOut {
        stats,
        call: call.clone(),
        tx: Some(tx),
    };
    let task = tokio::spawn(read_subscriber(ws, clock, out, last_seq.clone()));
    Subscriber {
        task,
        last_seq,
        stats: rx,
        call,
    }
}

impl Subscriber {
    /// Waits until the subscriber has seen the call's top seq (set before this is called) or
    /// until `deadline`, then stops it and returns what it saw.
    pub async fn finish(mut self, deadline: Instant) -> anyhow::Result<SubscriberStats> {
        let target = self.call.target();
        while !self.task.is_finished()
            && self.last_seq.load(Ordering::Acquire) < target
            && Instant::now() < deadline
        {
            let _ = tokio::time::timeout(Duration::from_millis(5), &mut self.task).await;
        }
        self.task.abort();
        self.stats.await.context("a subscriber's stats were lost")
    }
}

/// Reads events until the socket ends or, once the call's top seq is known, the subscriber
/// has it.
async fn read_subscriber(mut ws: Ws, clock: Clock, mut out: StatsOut, last_seq: Arc<AtomicU64>) {
    let StatsOut { stats, call, .. } = &mut out;
    loop {
        let msg = ws.next().await;
        let arrived = clock.now();
        match msg {
            Some(Ok(msg)) => {
                if !stats.on_frame(msg, arrived, call, &clock) {
                    break;
                }
            }
            Some(Err(e)) => {
                stats.closed = Some(format!("WebSocket error: {e}"));
                break;
            }
            None => {
                stats.closed = Some("the connection ended".to_owned());
                break;
            }
        }
        last_seq.store(stats.last_seq, Ordering::Release);
        if stats.last_seq >= call.target() {
            break;
        }
    }
    let _ = ws.close(None).await;
}

/// What one call's ingest connection saw.
pub struct IngestStats {
    pub sent: u64,
    pub acked: u64,
    /// Acks whose segment did not cause an `alert_raised`.
    pub acked_without_alert: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Send → ack on the ingest socket (the append, without the hub).
    pub ack_latency: Samples,
    /// How late each send was against its schedule (the tool's own lag).
    pub send_lag: Samples,
    /// The first and the last send, in nanoseconds since the epoch.
    pub first_send: u64,
    pub last_send: u64,
}

/// The schedule of one call's segments.
#[derive(Clone, Copy)]
pub struct Schedule {
    pub first: Instant,
    pub period: Duration,
    pub segments: usize,
    /// Who says segment k.
    pub speaker: crate::SpeakerMode,
}

/// Sends the call's segments on schedule over `ws` (never waiting for an ack: the load is
/// open-loop) and reads the acks, until every segment is acknowledged or the drain deadline.
pub async fn run_ingest(
    ws: Ws,
    call: Arc<Call>,
    clock: Clock,
    schedule: Schedule,
    phase: watch::Receiver<Phase>,
) -> IngestStats {
    let (mut sink, mut stream) = ws.split();
    let text = crate::api::segment_text();
    let call_for_writer = call.clone();
    let writer = async move {
        let call = call_for_writer;
        let mut sent = 0u64;
        let mut lag = Samples::new();
        let mut first_send = 0;
        let mut last_send = 0;
        let mut error = None;
        for k in 0..schedule.segments {
            let due = schedule.first + schedule.period * k as u32;
            tokio::time::sleep_until(due).await;
            // Segment times follow the schedule (k periods into the call), as speech would.
            let period_ms = schedule.period.as_secs_f64() * 1_000.0;
            let start_ms = (period_ms * k as f64) as u64;
            let end_ms = start_ms + (period_ms * 0.9).max(1.0) as u64;
            let msg = json!({
                "type": "segments",
                "call_id": call.id,
                "ref": k.to_string(),
                "segments": [{
                    "segment_id": format!("s{k}"),
                    "speaker": schedule.speaker.of(k),
                    "text": text,
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                }],
            })
            .to_string();
            let now = clock.now();
            call.sends[k].store(now + 1, Ordering::Release);
            if now >= clock.record_from {
                record(
                    &mut lag,
                    Instant::now().saturating_duration_since(due).as_nanos() as u64,
                );
            }
            if let Err(e) = sink.send(Message::Text(msg.into())).await {
                error = Some(format!("sending a segment: {e}"));
                break;
            }
            if sent == 0 {
                first_send = now;
            }
            sent += 1;
            last_send = now;
        }
        (sink, sent, lag, (first_send, last_send), error)
    };
    let reader = async {
        let mut phase = phase;
        let mut acked = 0u64;
        let mut without_alert = 0u64;
        let mut errors = 0u64;
        let mut first_error = None;
        let mut ack_latency = Samples::new();
        let far = Instant::now() + Duration::from_secs(3600);
        loop {
            if acked + errors >= schedule.segments as u64 {
                break;
            }
            let deadline = phase.borrow_and_update().deadline();
            tokio::select! {
                msg = stream.next() => {
                    let arrived = clock.now();
                    let text = match msg {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => {
                            first_error.get_or_insert(format!("ingest socket closed: {frame:?}"));
                            break;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            first_error.get_or_insert(format!("ingest socket: {e}"));
                            break;
                        }
                        None => {
                            first_error.get_or_insert("ingest socket ended".to_owned());
                            break;
                        }
                    };
                    let Ok(m) = serde_json::from_str::<ServerMsg>(&text) else { continue };
                    match m.ty.as_ref() {
                        "ack" => {
                            acked += 1;
                            let alerted = m.results.as_deref().is_some_and(|r| {
                                r.iter().any(|r| r.caused.iter().any(|c| c.kind == "alert_raised"))
                            });
                            if !alerted {
                                without_alert += 1;
                            }
                            let k = m.reference.as_deref().and_then(|r| r.parse::<usize>().ok());
                            if let (Some(k), Some(seq)) = (
                                k,
                                m.results.as_deref().and_then(|r| r.first()).and_then(|r| r.seq),
                            ) {
                                call.note_seq(seq, k);
                            }
                            let sent = k.and_then(|k| call.sent_at(k));
                            if let Some(sent) = sent
                                && sent >= clock.record_from
                            {
                                record(&mut ack_latency, arrived.saturating_sub(sent));
                            }
                        }
                        "error" => {
                            errors += 1;
                            first_error.get_or_insert(format!(
                                "ingest error: {}",
                                m.error.unwrap_or_default()
                            ));
                        }
                        _ => {}
                    }
                }
                changed = phase.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => break,
            }
        }
        (
            stream,
            acked,
            without_alert,
            errors,
            first_error,
            ack_latency,
        )
    };
    let (
        (sink, sent, send_lag, (first_send, last_send), send_error),
        (stream, acked, without, errors, first_error, ack_latency),
    ) = tokio::join!(writer, reader);
    if let Ok(mut ws) = sink.reunite(stream) {
        let _ = ws.close(None).await;
    }
    IngestStats {
        sent,
        acked,
        acked_without_alert: without,
        errors: errors + u64::from(send_error.is_some()),
        first_error: send_error.or(first_error),
        ack_latency,
        send_lag,
        first_send,
        last_send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(v: serde_json::Value) -> ServerMsg<'static> {
        // Leaked: the message borrows its text, and a test's few messages may live forever.
        let text: &'static str = Box::leak(v.to_string().into_boxed_str());
        parse(text).unwrap().expect("a readable message")
    }

    #[test]
    fn unknown_or_odd_messages_are_skipped_and_bad_events_are_not() {
        for ok in [
            json!({"v": 1, "type": "something_new", "seq": "not a number"}),
            json!({"type": "suggestion_draft", "index": "zero", "delta": 3}),
            json!({"no_type": true}),
        ] {
            assert!(parse(&ok.to_string()).unwrap().is_none(), "{ok}");
        }
        assert!(parse(&json!({"type": "event", "seq": "x"}).to_string()).is_err());
        assert!(parse("not json").is_err());
        assert!(
            parse(&json!({"type": "pong", "extra": [1]}).to_string())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn suggestions_are_timed_from_the_segment_they_are_based_on() {
        let call = Call::new("c1".to_owned(), 4);
        // s0 sent at 1 ms, s1 at 2 ms (since the epoch); s2, s3 never sent.
        call.sends[0].store(1_000_000 + 1, Ordering::Release);
        call.sends[1].store(2_000_000 + 1, Ordering::Release);
        // s1's seq is known from its ack only; s0's from its event.
        call.note_seq(4, 1);
        let clock = Clock {
            epoch: Instant::now(),
            record_from: 0,
        };
        let mut stats = SubscriberStats::new();
        let ev = |seq: u64, kind: &str, data: serde_json::Value| {
            msg(
                json!({"v": 1, "type": "event", "call_id": "c1", "seq": seq, "kind": kind, "data": data}),
            )
        };
        let draft = |based: u64, index: u32, call_id: &str| {
            msg(
                json!({"v": 1, "type": "suggestion_draft", "call_id": call_id,
                "suggestion_id": "x", "based_on_seq": based, "index": index, "delta": "Hi "}),
            )
        };
        stats.on_message(&ev(1, "call_started", json!({})), 0, &call, &clock);
        stats.on_message(
            &ev(2, "segment_added", json!({"segment_id": "s0"})),
            1_500_000,
            &call,
            &clock,
        );
        stats.on_message(
            &ev(3, "alert_raised", json!({"segment_id": "s0"})),
            1_600_000,
            &call,
            &clock,
        );
        // Based on s0's seq: 4 ms after s0.
        stats.on_message(&draft(2, 0, "c1"), 5_000_000, &call, &clock);
        // Based on the alert after s0: the newest segment at or before it, s0 again.
        stats.on_message(&draft(3, 0, "c1"), 6_000_000, &call, &clock);
        // Later deltas, another call's draft and unknown messages are not timed.
        stats.on_message(&draft(2, 1, "c1"), 6_500_000, &call, &clock);
        stats.on_message(&draft(2, 0, "other"), 6_500_000, &call, &clock);
        stats.on_message(
            &msg(json!({"type": "mystery", "x": 1})),
            6_500_000,
            &call,
            &clock,
        );
        // Based on a seq before any segment: unmatched.
        stats.on_message(&draft(1, 0, "c1"), 7_000_000, &call, &clock);
        stats.on_message(
            &ev(4, "segment_added", json!({"segment_id": "s1"})),
            2_500_000,
            &call,
            &clock,
        );
        stats.on_message(
            &ev(5, "alert_raised", json!({"segment_id": "s1"})),
            2_600_000,
            &call,
            &clock,
        );
        // Posted, based on s1: 10 ms after s1.
        stats.on_message(
            &ev(
                6,
                "reply_suggested",
                json!({"suggestion_id": "x", "text": "Hi", "based_on_seq": 5,
                "provider": "openai", "model": "fake-3s", "latency_ms": 3000}),
            ),
            12_000_000,
            &call,
            &clock,
        );
        stats.on_message(
            &ev(
                7,
                "generation_failed",
                json!({"task": "reply", "based_on_seq": 5}),
            ),
            13_000_000,
            &call,
            &clock,
        );

        assert_eq!(stats.events, 7);
        assert_eq!(stats.gaps + stats.duplicates, 0);
        assert_eq!(stats.alerts, 2);
        assert_eq!(stats.unmatched, 0);
        assert_eq!(stats.drafts, 4);
        assert_eq!(stats.first_tokens, 3);
        assert_eq!(stats.suggestions, 1);
        assert_eq!(stats.generation_failures, 1);
        assert_eq!(stats.suggestions_unmatched, 1);
        assert_eq!(stats.first_token_latency, [4_000, 5_000]);
        assert_eq!(stats.suggestion_latency, [10_000]);
        assert_eq!(stats.assist_events_upto(6), 1);
        assert_eq!(stats.assist_events_upto(7), 2);
        assert_eq!(call.sent_at_or_before_seq(3), Some(1_000_000));
        assert_eq!(call.sent_at_or_before_seq(100), Some(2_000_000));
        assert_eq!(call.sent_at_or_before_seq(1), None);
    }

    #[test]
    fn speakers() {
        use crate::SpeakerMode;
        assert_eq!(SpeakerMode::Agent.of(1), "agent");
        assert_eq!(SpeakerMode::Customer.of(0), "customer");
        let alt: Vec<_> = (0..4).map(|k| SpeakerMode::Alternate.of(k)).collect();
        assert_eq!(alt, ["customer", "agent", "customer", "agent"]);
    }
}
