//! The sending side of one replayed call: which segment goes out when, and which are still
//! waiting for their acknowledgement (those are resent, with the same ids, after a
//! reconnect: the server answers a resent final segment with its original seq).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::CallId;
use tokio::sync::mpsc;
use tokio::time::Instant;
use transcript::Transcript;

use super::client::{Failure, Server, WireSegment, retrying, speaker_name};

/// When a segment that starts `start_ms` into the call is sent, counted from the moment the
/// replay started: its start scaled by 1/`speed`. `None` at speed 0, "as fast as possible":
/// then each segment goes as soon as the previous one is acknowledged.
pub fn due_after(start_ms: u64, speed: f64) -> Option<Duration> {
    (speed > 0.0).then(|| Duration::from_secs_f64(start_ms as f64 / 1_000.0 / speed))
}

/// The id the replay gives the k-th segment (from 0): `s0001`, `s0002`, …
pub fn segment_id(k: usize) -> String {
    format!("s{:04}", k + 1)
}

/// The index of a segment from its id, if it is one of ours.
pub fn segment_index(id: &str) -> Option<usize> {
    let n: usize = id.strip_prefix('s')?.parse().ok()?;
    n.checked_sub(1)
}

/// The transcript's segments as they go on the wire.
pub fn wire_segments(t: &Transcript) -> Vec<WireSegment> {
    t.segments
        .iter()
        .enumerate()
        .map(|(k, s)| WireSegment {
            segment_id: segment_id(k),
            speaker: speaker_name(s.speaker),
            text: s.text.clone(),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
        })
        .collect()
}

/// When each segment was first sent, shared with whoever measures latencies.
pub type SendTimes = Arc<Mutex<Vec<Option<Instant>>>>;

/// Totals across calls, for a progress bar.
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub calls_done: AtomicU64,
}

/// Segments posted one after the other over REST by a task of their own (so the order is
/// kept and the WebSocket is read meanwhile); acks come back on `acks`.
pub struct Rest {
    queue: mpsc::UnboundedSender<usize>,
    pub acks: mpsc::UnboundedReceiver<(usize, Result<u64, Failure>)>,
}

impl Rest {
    pub fn spawn(server: Arc<Server>, call: CallId, segments: Vec<WireSegment>) -> Self {
        let (queue, mut todo) = mpsc::unbounded_channel::<usize>();
        let (done, acks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(k) = todo.recv().await {
                let seg = &segments[k];
                let r = retrying(|| server.post_segment(call, seg)).await;
                let failed = r.is_err();
                if done.send((k, r)).is_err() || failed {
                    break;
                }
            }
        });
        Self { queue, acks }
    }
}

pub struct Feed {
    pub segments: Vec<WireSegment>,
    speed: f64,
    start: Option<Instant>,
    /// The next segment never sent yet.
    next: usize,
    acked: Vec<bool>,
    n_acked: usize,
    pub sent_at: SendTimes,
    /// Segments sent again after a reconnect.
    pub resent: u64,
    /// The highest seq the acknowledged segments were written at or caused.
    pub top_acked_seq: u64,
    /// Set when the segments go over REST rather than the WebSocket.
    pub rest: Option<Rest>,
    counters: Option<Arc<Counters>>,
}

impl Feed {
    pub fn new(segments: Vec<WireSegment>, speed: f64) -> Self {
        let n = segments.len();
        Self {
            segments,
            speed,
            start: None,
            next: 0,
            acked: vec![false; n],
            n_acked: 0,
            sent_at: Arc::new(Mutex::new(vec![None; n])),
            resent: 0,
            top_acked_seq: 0,
            rest: None,
            counters: None,
        }
    }

    pub fn with_counters(mut self, counters: Arc<Counters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Starts the clock: segment k is due `due_after(start_ms_k)` from now.
    pub fn start(&mut self, now: Instant) {
        self.start.get_or_insert(now);
    }

    /// When the next segment should go out: `None` before the start, when every segment is
    /// sent, or at speed 0 while one is still unacknowledged.
    pub fn next_due(&self) -> Option<Instant> {
        let start = self.start?;
        let seg = self.segments.get(self.next)?;
        match due_after(seg.start_ms, self.speed) {
            Some(after) => Some(start + after),
            None if self.n_acked == self.next => Some(start),
            None => None,
        }
    }

    /// Marks the next segment sent at `now` and answers its index.
    pub fn take_next(&mut self, now: Instant) -> usize {
        let k = self.next;
        self.next += 1;
        self.sent_at.lock().expect("send times")[k].get_or_insert(now);
        if let Some(c) = &self.counters {
            c.sent.fetch_add(1, Ordering::Relaxed);
        }
        k
    }

    /// Records the acknowledgement of segment `k`; false if it was already acknowledged or
    /// is not one of ours.
    pub fn ack(&mut self, k: usize) -> bool {
        match self.acked.get_mut(k) {
            Some(a) if !*a && k < self.next => {
                *a = true;
                self.n_acked += 1;
                if let Some(c) = &self.counters {
                    c.acked.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            _ => false,
        }
    }

    /// Sent and not acknowledged, in order.
    pub fn unacked(&self) -> Vec<usize> {
        (0..self.next).filter(|k| !self.acked[*k]).collect()
    }

    pub fn all_acked(&self) -> bool {
        self.n_acked == self.segments.len()
    }

    pub fn sent(&self) -> usize {
        self.next
    }

    pub fn acked(&self) -> usize {
        self.n_acked
    }

    /// The `segments` message for segment `k`.
    pub fn message(&self, call: CallId, k: usize) -> serde_json::Value {
        let seg = &self.segments[k];
        serde_json::json!({
            "type": "segments",
            "call_id": call,
            "ref": seg.segment_id,
            "segments": [seg],
        })
    }

    /// Hands segment `k` to the REST sender.
    pub fn post(&self, k: usize) {
        if let Some(rest) = &self.rest {
            // The sender only stops after a failure, which the feed's owner sees first.
            let _ = rest.queue.send(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(k: usize, start_ms: u64) -> WireSegment {
        WireSegment {
            segment_id: segment_id(k),
            speaker: "agent",
            text: "hello".into(),
            start_ms,
            end_ms: start_ms + 500,
        }
    }

    #[test]
    fn the_schedule_scales_start_times_by_one_over_the_speed() {
        // (start_ms, speed) → due after
        let table: &[(u64, f64, Option<u64>)] = &[
            (0, 1.0, Some(0)),
            (1_500, 1.0, Some(1_500)),
            (1_500, 2.0, Some(750)),
            (2_000, 4.0, Some(500)),
            (60_000, 0.5, Some(120_000)),
            (3_000, 0.0, None),
        ];
        for (start_ms, speed, want) in table {
            assert_eq!(
                due_after(*start_ms, *speed).map(|d| d.as_millis() as u64),
                *want,
                "{start_ms} ms at {speed}x"
            );
        }
    }

    #[test]
    fn segments_go_out_on_the_clock_and_wait_for_acks_at_speed_zero() {
        let t0 = Instant::now();
        let mut f = Feed::new(vec![seg(0, 0), seg(1, 1_000), seg(2, 3_000)], 2.0);
        assert_eq!(f.next_due(), None, "not before the start");
        f.start(t0);
        assert_eq!(f.next_due(), Some(t0));
        assert_eq!(f.take_next(t0), 0);
        // At 2x, 1 s into the call is half a second into the replay, acked or not.
        assert_eq!(f.next_due(), Some(t0 + Duration::from_millis(500)));
        f.take_next(t0);
        assert_eq!(f.next_due(), Some(t0 + Duration::from_millis(1_500)));
        f.take_next(t0);
        assert_eq!(f.next_due(), None, "all sent");
        assert_eq!(f.unacked(), [0, 1, 2]);
        assert!(f.ack(1) && !f.ack(1), "an ack counts once");
        assert_eq!(f.unacked(), [0, 2]);
        assert!(!f.all_acked());
        f.ack(0);
        f.ack(2);
        assert!(f.all_acked());

        // Speed 0: the next one only once the previous one is acknowledged.
        let mut f = Feed::new(vec![seg(0, 0), seg(1, 1_000)], 0.0);
        f.start(t0);
        assert_eq!(f.next_due(), Some(t0));
        f.take_next(t0);
        assert_eq!(f.next_due(), None, "waiting for the ack");
        assert!(!f.ack(1), "an ack for a segment not sent is ignored");
        f.ack(0);
        assert_eq!(f.next_due(), Some(t0));
    }

    #[test]
    fn segment_ids() {
        assert_eq!(segment_id(0), "s0001");
        assert_eq!(segment_id(11_999), "s12000");
        assert_eq!(segment_index("s0001"), Some(0));
        assert_eq!(segment_index("s12000"), Some(11_999));
        assert_eq!(segment_index("s0000"), None);
        assert_eq!(segment_index("seg-1"), None);
    }
}
