//! One WebSocket of a replay, kept alive: it follows the call (subscribed from seq 0), sends
//! a [`Feed`]'s segments, or both, and when the connection drops it reconnects, resubscribes
//! with `since_seq` = the last seq seen and resends the segments not yet acknowledged.
//!
//! A server error on the socket (`internal`, `unavailable`: what REST answers with a 5xx,
//! e.g. while the server's database restarts) is handled the same way, after a pause that
//! doubles while the server keeps failing: the request was not done, so it is done again.
//! Only a refusal (a 4xx code) ends the replay. The link gives up after
//! [`RESUME_WITHIN`] without progress (an event, an ack or a subscription).

use std::sync::Arc;
use std::time::Duration;

use domain::{CallEvent, CallId};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::client::{Failure, RESUME_WITHIN, Server, ServerError, Ws, send_json};
use super::feed::{Feed, segment_index};
use super::report::{Seen, SeqTracker};

/// An `event` message: its seq and kind, the event decoded (absent for a kind this build
/// does not know), and the text as received.
#[derive(Clone, Debug)]
pub struct EventMsg {
    pub seq: u64,
    pub kind: String,
    pub event: Option<CallEvent>,
    pub raw: String,
}

/// A server message, as far as the replay cares.
#[derive(Debug)]
pub enum Incoming {
    Event(EventMsg),
    Subscribed,
    Ack {
        segment_ids: Vec<String>,
        /// The highest seq the acknowledged segments were written at or caused.
        top_seq: u64,
    },
    Error {
        reference: Option<String>,
        error: ServerError,
    },
    Draft {
        suggestion_id: String,
        index: u64,
        delta: String,
    },
    ResyncRequired(String),
    Other,
}

/// Reads a server message; an `event` the tool cannot read is an error.
pub fn parse(text: &str) -> Result<Incoming, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    Ok(match v["type"].as_str().unwrap_or_default() {
        "event" => {
            let (Some(seq), Some(kind)) = (v["seq"].as_u64(), s("kind")) else {
                return Err(format!("an event without seq or kind: {text}"));
            };
            let version = v["schema_version"].as_u64().unwrap_or(1) as u16;
            let event = domain::decode(&kind, version, v["data"].clone()).ok();
            Incoming::Event(EventMsg {
                seq,
                kind,
                event,
                raw: text.to_owned(),
            })
        }
        "subscribed" => Incoming::Subscribed,
        "ack" => {
            let results = v["results"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            Incoming::Ack {
                segment_ids: results
                    .iter()
                    .filter_map(|r| r["segment_id"].as_str().map(str::to_owned))
                    .collect(),
                top_seq: results.iter().map(top_seq_of_result).max().unwrap_or(0),
            }
        }
        "error" => Incoming::Error {
            reference: s("ref"),
            error: ServerError::from_value(None, &v["error"])
                .unwrap_or_else(|| ServerError::from_body(None, text)),
        },
        "suggestion_draft" => Incoming::Draft {
            suggestion_id: s("suggestion_id").unwrap_or_default(),
            index: v["index"].as_u64().unwrap_or_default(),
            delta: s("delta").unwrap_or_default(),
        },
        "resync_required" => Incoming::ResyncRequired(s("reason").unwrap_or_default()),
        _ => Incoming::Other,
    })
}

/// The highest seq in one result of an ingest answer: the segment's, or one it caused.
pub fn top_seq_of_result(r: &Value) -> u64 {
    let caused = r["caused"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    caused
        .iter()
        .filter_map(|c| c["seq"].as_u64())
        .chain(r["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Close codes after which the client reconnects and resumes (docs/protocol.md).
pub fn resumable(code: u16) -> bool {
    matches!(code, 1001 | 4000 | 4008 | 4009)
}

/// Error codes of a server that could not do it now (REST answers them with a 5xx): the
/// request is made again, unlike a refusal.
pub fn transient(code: &str) -> bool {
    matches!(code, "internal" | "unavailable")
}

/// The first pause before resuming after a server error; it doubles up to [`MAX_PAUSE`]
/// while the server keeps failing.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What a link reports to its owner.
pub trait Observer {
    /// An event with a seq above every one seen before on this link.
    fn event(&mut self, e: &EventMsg, arrived: Instant);
    /// Seqs that never arrived before the event at `seq`.
    fn gap(&mut self, _missing: u64, _seq: u64) {}
    fn draft(&mut self, _suggestion_id: &str, _index: u64, _delta: &str) {}
    fn reconnecting(&mut self, _why: &str) {}
}

/// What [`Link::drive`] runs until.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// The first `subscribed` (the backlog has been received).
    Subscribed,
    /// Every segment of the feed is acknowledged (and, on a link that follows the call,
    /// the events they were written at and caused have arrived).
    AllAcked,
    /// The call's `summary_generated` event has been received.
    Summary,
    /// An event at or above this seq has been received.
    Seq(u64),
}

pub struct Link {
    server: Arc<Server>,
    call: CallId,
    ws: Option<Ws>,
    follows: bool,
    pub seqs: SeqTracker,
    pub subscribed: bool,
    pub summary_seen: bool,
    pub reconnects: u64,
    /// Since when the link has been trying to get back (cleared by progress: an event, an
    /// ack, a subscription).
    lost_since: Option<Instant>,
    /// After a server error: how long to wait before resuming (`None`: at once).
    pause: Option<Duration>,
    /// The next pause after a server error.
    next_pause: Duration,
}

enum Step {
    Message(Message),
    Dropped(String),
    Due,
    RestAck(usize, Result<u64, Failure>),
}

impl Link {
    /// Connects (without retrying: the server must be there when a replay starts) and, if
    /// `follows`, subscribes to the call from seq 0.
    pub async fn open(server: Arc<Server>, call: CallId, follows: bool) -> Result<Self, Failure> {
        let mut ws = server.connect().await?;
        if follows {
            subscribe(&mut ws, call, 0)
                .await
                .map_err(|e| Failure::Fatal(format!("subscribing: {e}")))?;
        }
        Ok(Self {
            server,
            call,
            ws: Some(ws),
            follows,
            seqs: SeqTracker::default(),
            subscribed: false,
            summary_seen: false,
            reconnects: 0,
            lost_since: None,
            pause: None,
            next_pause: FIRST_PAUSE,
        })
    }

    /// A link with no socket, for a feed sent over REST that nobody follows here.
    pub fn rest_only(server: Arc<Server>, call: CallId) -> Self {
        Self {
            server,
            call,
            ws: None,
            follows: false,
            seqs: SeqTracker::default(),
            subscribed: false,
            summary_seen: false,
            reconnects: 0,
            lost_since: None,
            pause: None,
            next_pause: FIRST_PAUSE,
        }
    }

    fn reached(&self, until: Until, feed: Option<&Feed>) -> bool {
        match until {
            Until::Subscribed => self.subscribed,
            Until::AllAcked => feed.is_none_or(|f| {
                f.all_acked() && (!self.follows || self.seqs.last >= f.top_acked_seq)
            }),
            Until::Summary => self.summary_seen,
            Until::Seq(s) => self.seqs.last >= s,
        }
    }

    fn needs_socket(&self, feed: Option<&Feed>) -> bool {
        self.follows || feed.is_some_and(|f| f.rest.is_none())
    }

    /// Reads the socket, sends the feed's segments when they are due, and reconnects as
    /// needed, until `until` holds.
    pub async fn drive(
        &mut self,
        mut feed: Option<&mut Feed>,
        obs: &mut impl Observer,
        until: Until,
    ) -> Result<(), Failure> {
        loop {
            if self.reached(until, feed.as_deref()) {
                return Ok(());
            }
            if self.ws.is_none() && self.needs_socket(feed.as_deref()) {
                self.resume(feed.as_deref_mut()).await?;
                continue;
            }
            let due = feed.as_deref().and_then(Feed::next_due);
            let rest = feed.as_deref_mut().and_then(|f| f.rest.as_mut());
            let step = tokio::select! {
                m = next_message(&mut self.ws) => m,
                _ = sleep_until(due), if due.is_some() => Step::Due,
                a = recv_ack(rest) => match a {
                    Some((k, r)) => Step::RestAck(k, r),
                    None => return Err(Failure::Fatal("the REST sender stopped".into())),
                },
            };
            match step {
                Step::Message(msg) => self.on_message(msg, feed.as_deref_mut(), obs)?,
                Step::Dropped(why) => {
                    self.ws = None;
                    obs.reconnecting(&why);
                    self.lost_since.get_or_insert_with(Instant::now);
                }
                Step::Due => {
                    let f = feed.as_deref_mut().expect("due only with a feed");
                    let k = f.take_next(Instant::now());
                    if f.rest.is_some() {
                        f.post(k);
                    } else if let Some(ws) = self.ws.as_mut()
                        && let Err(e) = send_json(ws, &f.message(self.call, k)).await
                    {
                        // Resent after the reconnect: it is not acknowledged.
                        self.ws = None;
                        obs.reconnecting(&format!("sending a segment: {e}"));
                        self.lost_since.get_or_insert_with(Instant::now);
                    }
                }
                Step::RestAck(k, r) => {
                    let top = r?;
                    if let Some(f) = feed.as_deref_mut() {
                        f.top_acked_seq = f.top_acked_seq.max(top);
                        f.ack(k);
                    }
                }
            }
        }
    }

    fn on_message(
        &mut self,
        msg: Message,
        feed: Option<&mut Feed>,
        obs: &mut impl Observer,
    ) -> Result<(), Failure> {
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => {
                // No close code at all is an abrupt end, like a broken socket: resume.
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                if resumable(code) || code == 1005 {
                    self.ws = None;
                    obs.reconnecting(&format!(
                        "the server closed the WebSocket ({code} {reason})"
                    ));
                    self.lost_since.get_or_insert_with(Instant::now);
                    return Ok(());
                }
                return Err(Failure::Fatal(format!(
                    "the server closed the WebSocket: {code} {reason}"
                )));
            }
            _ => return Ok(()),
        };
        let arrived = Instant::now();
        let incoming =
            parse(text.as_str()).map_err(|e| Failure::Fatal(format!("from the server: {e}")))?;
        if matches!(
            incoming,
            Incoming::Event(_) | Incoming::Subscribed | Incoming::Ack { .. }
        ) {
            self.lost_since = None;
            self.next_pause = FIRST_PAUSE;
        }
        match incoming {
            Incoming::Event(e) => match self.seqs.observe(e.seq) {
                Seen::Duplicate => {}
                seen => {
                    if let Seen::AfterGap(missing) = seen {
                        obs.gap(missing, e.seq);
                    }
                    match &e.event {
                        Some(CallEvent::SummaryGenerated(_)) => self.summary_seen = true,
                        Some(CallEvent::GenerationFailed(f))
                            if f.task == domain::event::AssistTask::Summary
                                && f.fallback.is_none() =>
                        {
                            obs.event(&e, arrived);
                            return Err(Failure::Fatal(format!(
                                "the summary could not be generated: {} ({}/{})",
                                f.error, f.provider, f.model
                            )));
                        }
                        _ => {}
                    }
                    obs.event(&e, arrived);
                }
            },
            Incoming::Subscribed => self.subscribed = true,
            Incoming::Ack {
                segment_ids,
                top_seq,
            } => {
                if let Some(f) = feed {
                    f.top_acked_seq = f.top_acked_seq.max(top_seq);
                    for id in segment_ids {
                        if let Some(k) = segment_index(&id) {
                            f.ack(k);
                        }
                    }
                }
            }
            Incoming::Error { reference, error } => {
                let what = match reference.as_deref() {
                    Some(r) if segment_index(r).is_some() => format!("sending segment {r}"),
                    Some("subscribe") => format!("following call {}", self.call),
                    _ => "the WebSocket".to_owned(),
                };
                if !transient(&error.code) {
                    return Err(Failure::Refused { what, error });
                }
                // Not done: done again on a fresh connection, after a pause. Nothing more is
                // sent on this one, so segments still go out in order.
                self.ws = None;
                self.pause = Some(self.next_pause);
                self.next_pause = (self.next_pause * 2).min(MAX_PAUSE);
                obs.reconnecting(&format!("{what}: the server failed: {error}"));
                self.lost_since.get_or_insert_with(Instant::now);
            }
            Incoming::Draft {
                suggestion_id,
                index,
                delta,
            } => obs.draft(&suggestion_id, index, &delta),
            Incoming::ResyncRequired(reason) => {
                return Err(Failure::Fatal(format!(
                    "the server asks for a resync of call {}: {reason}",
                    self.call
                )));
            }
            Incoming::Other => {}
        }
        Ok(())
    }

    /// Reconnects, resubscribes after the last seq seen, resends what is unacknowledged.
    async fn resume(&mut self, feed: Option<&mut Feed>) -> Result<(), Failure> {
        let since = *self.lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() > RESUME_WITHIN {
            return Err(Failure::Fatal(format!(
                "lost the connection to {} and could not resume it within {} s",
                self.server.base(),
                RESUME_WITHIN.as_secs()
            )));
        }
        if let Some(pause) = self.pause.take() {
            tokio::time::sleep(pause).await;
        }
        self.reconnects += 1;
        let mut ws = self.server.reconnect().await?;
        let sent = async {
            if self.follows {
                subscribe(&mut ws, self.call, self.seqs.last).await?;
            }
            if let Some(f) = feed
                && f.rest.is_none()
            {
                for k in f.unacked() {
                    send_json(&mut ws, &f.message(self.call, k)).await?;
                    f.resent += 1;
                }
            }
            Ok::<_, String>(())
        }
        .await;
        // If that failed the socket is gone again: the next turn reconnects once more.
        if sent.is_ok() {
            self.ws = Some(ws);
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// Closes the socket politely.
    pub async fn close(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        }
    }
}

async fn subscribe(ws: &mut Ws, call: CallId, since: u64) -> Result<(), String> {
    send_json(
        ws,
        &json!({"type": "subscribe", "call_id": call, "since_seq": since, "ref": "subscribe"}),
    )
    .await
}

async fn next_message(ws: &mut Option<Ws>) -> Step {
    let Some(ws) = ws.as_mut() else {
        return std::future::pending().await;
    };
    match ws.next().await {
        Some(Ok(m)) => Step::Message(m),
        Some(Err(e)) => Step::Dropped(format!("the WebSocket failed: {e}")),
        None => Step::Dropped("the WebSocket ended".into()),
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn recv_ack(rest: Option<&mut super::feed::Rest>) -> Option<(usize, Result<u64, Failure>)> {
    match rest {
        Some(r) => r.acks.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages() {
        let ev = parse(
            &json!({"v": 1, "type": "event", "call_id": "x", "seq": 4, "position": 9,
                "recorded_at": "2026-01-01T00:00:00Z", "kind": "checklist_item_completed",
                "schema_version": 1, "data": {"item": {"rule_id": "greeting",
                "ruleset": {"id": "home-services", "version": 1}}, "segment_id": "s0001"}})
            .to_string(),
        )
        .unwrap();
        let Incoming::Event(e) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!((e.seq, e.kind.as_str()), (4, "checklist_item_completed"));
        assert!(matches!(
            e.event,
            Some(CallEvent::ChecklistItemCompleted(_))
        ));

        // A kind from a newer server is shown by name, not refused.
        let Incoming::Event(e) = parse(
            r#"{"type": "event", "seq": 5, "kind": "mood_detected", "schema_version": 1, "data": {}}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert!(e.event.is_none());
        assert!(parse(r#"{"type": "event", "seq": "five"}"#).is_err());

        let ack = parse(r#"{"type": "ack", "ref": "s0002", "results": [{"segment_id": "s0002", "seq": 7, "deduplicated": true, "caused": []}]}"#).unwrap();
        assert!(
            matches!(ack, Incoming::Ack { segment_ids, top_seq: 7 } if segment_ids == ["s0002"])
        );
        let ack = parse(r#"{"type": "ack", "results": [{"segment_id": "s0003", "seq": 8, "caused": [{"seq": 9, "kind": "alert_raised"}, {"seq": 10, "kind": "checklist_item_completed"}]}]}"#).unwrap();
        assert!(matches!(ack, Incoming::Ack { top_seq: 10, .. }));
        let err = parse(r#"{"v": 1, "type": "error", "ref": "s0003", "error": {"code": "call_ended", "message": "the call has ended", "field": "call_id"}}"#).unwrap();
        let Incoming::Error { reference, error } = err else {
            panic!()
        };
        assert_eq!(reference.as_deref(), Some("s0003"));
        assert_eq!(error.code, "call_ended");
        assert!(matches!(
            parse(r#"{"type": "hello", "tenant": "default"}"#).unwrap(),
            Incoming::Other
        ));
        assert!(parse("nope").is_err());
    }

    #[test]
    fn server_errors_are_retried_refusals_are_not() {
        for code in ["internal", "unavailable"] {
            assert!(transient(code), "{code}");
        }
        for code in [
            "invalid_field",
            "not_found",
            "forbidden",
            "conflict",
            "call_ended",
            "duplicate_segment",
            "too_large",
            "unknown",
        ] {
            assert!(!transient(code), "{code}");
        }
    }

    #[test]
    fn which_closes_are_resumed() {
        for code in [1001, 4000, 4008, 4009] {
            assert!(resumable(code), "{code}");
        }
        for code in [1000, 1008, 1011, 4001] {
            assert!(!resumable(code), "{code}");
        }
    }
}
