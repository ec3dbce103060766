//! The pure parts of the load report: seq checking per subscriber, latency percentiles, and
//! the report as text or JSON.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// What a subscriber's next event is, given the seqs it saw before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The next seq, as it should be.
    Next,
    /// A new event, but this many seqs before it never arrived.
    AfterGap(u64),
    /// At or below the last seq seen: already had it.
    Duplicate,
}

/// Checks that a subscriber's events come in contiguous seq order, each once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqTracker {
    /// The highest seq seen (0: none).
    pub last: u64,
    /// Events received, duplicates included.
    pub received: u64,
    /// Seqs skipped between two received events.
    pub gaps: u64,
    pub duplicates: u64,
}

impl SeqTracker {
    pub fn observe(&mut self, seq: u64) -> Seen {
        self.received += 1;
        if seq <= self.last {
            self.duplicates += 1;
            return Seen::Duplicate;
        }
        let missing = seq - self.last - 1;
        self.last = seq;
        if missing == 0 {
            Seen::Next
        } else {
            self.gaps += missing;
            Seen::AfterGap(missing)
        }
    }

    /// Events lost once the call's log ends at `top`: the gaps, and the tail never received.
    pub fn lost(&self, top: u64) -> u64 {
        self.gaps + top.saturating_sub(self.last)
    }
}

/// Percentiles of latency samples (microseconds in, milliseconds out).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(samples_us: &[u64]) -> Self {
        // 1 µs to 10 minutes, 3 significant digits.
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
        for s in samples_us {
            h.saturating_record((*s).max(1));
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        if h.is_empty() {
            return Self {
                count: 0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }

    fn json(&self) -> Value {
        json!({"count": self.count, "p50_ms": self.p50, "p90_ms": self.p90,
               "p99_ms": self.p99, "max_ms": self.max})
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (n = {})",
            self.p50, self.p90, self.p99, self.max, self.count
        )
    }
}

/// What one call of a load run saw.
#[derive(Clone, Debug, Default)]
pub struct CallOutcome {
    pub call_id: Option<String>,
    pub file: String,
    pub segments: u64,
    pub sent: u64,
    pub acked: u64,
    pub resent: u64,
    pub reconnects: u64,
    pub events: u64,
    pub alerts: u64,
    pub suggestions: u64,
    pub summaries: u64,
    /// The call's top seq at the end (0 if never read).
    pub top_seq: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Segment sent → its `segment_added` seen by the subscriber, µs.
    pub segment_latency: Vec<u64>,
    /// Segment sent → an alert it raised seen by the subscriber, µs.
    pub alert_latency: Vec<u64>,
    /// Why the call did not finish, if it did not.
    pub error: Option<String>,
}

pub struct LoadReport {
    pub calls: Vec<CallOutcome>,
    pub files: usize,
    pub speed: f64,
    pub seconds: f64,
    pub segment_latency: Latency,
    pub alert_latency: Latency,
}

impl LoadReport {
    pub fn new(calls: Vec<CallOutcome>, files: usize, speed: f64, seconds: f64) -> Self {
        let all = |f: fn(&CallOutcome) -> &Vec<u64>| -> Vec<u64> {
            calls.iter().flat_map(|c| f(c).iter().copied()).collect()
        };
        Self {
            segment_latency: Latency::of(&all(|c| &c.segment_latency)),
            alert_latency: Latency::of(&all(|c| &c.alert_latency)),
            calls,
            files,
            speed,
            seconds,
        }
    }

    fn sum(&self, f: fn(&CallOutcome) -> u64) -> u64 {
        self.calls.iter().map(f).sum()
    }

    pub fn lost(&self) -> u64 {
        self.sum(|c| c.lost)
    }

    pub fn duplicated(&self) -> u64 {
        self.sum(|c| c.duplicated)
    }

    pub fn failed(&self) -> usize {
        self.calls.iter().filter(|c| c.error.is_some()).count()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "calls": self.calls.len(),
            "files": self.files,
            "speed": self.speed,
            "seconds": self.seconds,
            "segments": {
                "total": self.sum(|c| c.segments),
                "sent": self.sum(|c| c.sent),
                "acked": self.sum(|c| c.acked),
                "resent": self.sum(|c| c.resent),
            },
            "events": self.sum(|c| c.events),
            "alerts": self.sum(|c| c.alerts),
            "suggestions": self.sum(|c| c.suggestions),
            "summaries": self.sum(|c| c.summaries),
            "reconnects": self.sum(|c| c.reconnects),
            "latency": {
                "segment_to_event": self.segment_latency.json(),
                "segment_to_alert": (self.alert_latency.count > 0).then(|| self.alert_latency.json()),
            },
            "lost": self.lost(),
            "duplicated": self.duplicated(),
            "failed_calls": self.failed(),
            "per_call": self.calls.iter().map(|c| json!({
                "call_id": c.call_id, "file": c.file, "segments": c.segments, "acked": c.acked,
                "events": c.events, "top_seq": c.top_seq, "lost": c.lost,
                "duplicated": c.duplicated, "reconnects": c.reconnects, "error": c.error,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let n = self.calls.len();
        let _ = writeln!(
            out,
            "{n} calls from {} file(s) at {}, in {:.1} s",
            self.files,
            speed_label(self.speed),
            self.seconds
        );
        let _ = writeln!(
            out,
            "segments: {} sent, {} acked of {} ({} resent after a reconnect)",
            self.sum(|c| c.sent),
            self.sum(|c| c.acked),
            self.sum(|c| c.segments),
            self.sum(|c| c.resent),
        );
        let _ = writeln!(
            out,
            "events seen by subscribers: {} — alerts {}, suggestions {}, summaries {}; reconnects {}",
            self.sum(|c| c.events),
            self.sum(|c| c.alerts),
            self.sum(|c| c.suggestions),
            self.sum(|c| c.summaries),
            self.sum(|c| c.reconnects),
        );
        let _ = writeln!(
            out,
            "latency, segment sent → its event seen: {}",
            self.segment_latency.line()
        );
        if self.alert_latency.count > 0 {
            let _ = writeln!(
                out,
                "latency, segment sent → alert seen:     {}",
                self.alert_latency.line()
            );
        }
        let _ = writeln!(
            out,
            "loss check: {} lost, {} duplicated (every subscriber against its call's top seq)",
            self.lost(),
            self.duplicated()
        );
        for c in &self.calls {
            if c.lost > 0 || c.duplicated > 0 {
                let _ = writeln!(
                    out,
                    "  call {}: {} lost, {} duplicated (top seq {})",
                    c.call_id.as_deref().unwrap_or("?"),
                    c.lost,
                    c.duplicated,
                    c.top_seq
                );
            }
        }
        if self.failed() > 0 {
            let _ = writeln!(out, "failed calls: {} of {n}", self.failed());
            for c in self.calls.iter().filter(|c| c.error.is_some()) {
                let _ = writeln!(
                    out,
                    "  {} ({}): {}",
                    c.call_id.as_deref().unwrap_or("(not started)"),
                    c.file,
                    c.error.as_deref().unwrap_or_default()
                );
            }
        }
        out
    }
}

pub fn speed_label(speed: f64) -> String {
    if speed == 0.0 {
        "full speed (--speed 0)".to_owned()
    } else {
        format!("{speed}x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_gaps_and_duplicates_are_counted() {
        /// seqs in → what each is; the top seq; then lost against it, and duplicates.
        type Row<'a> = (&'a [u64], &'a [Seen], u64, u64, u64);
        let table: &[Row] = &[
            (&[1, 2, 3], &[Seen::Next, Seen::Next, Seen::Next], 3, 0, 0),
            (
                &[1, 2, 5, 6],
                &[Seen::Next, Seen::Next, Seen::AfterGap(2), Seen::Next],
                6,
                2,
                0,
            ),
            (
                &[1, 2, 2, 1, 3],
                &[
                    Seen::Next,
                    Seen::Next,
                    Seen::Duplicate,
                    Seen::Duplicate,
                    Seen::Next,
                ],
                3,
                0,
                2,
            ),
            // The tail never arrived: the top seq is 7, the last seen 4.
            (&[1, 2, 3, 4], &[Seen::Next; 4], 7, 3, 0),
            (&[], &[], 2, 2, 0),
            (&[3], &[Seen::AfterGap(2)], 3, 2, 0),
        ];
        for (seqs, want, top, lost, dups) in table {
            let mut t = SeqTracker::default();
            let seen: Vec<Seen> = seqs.iter().map(|s| t.observe(*s)).collect();
            assert_eq!(&seen, want, "{seqs:?}");
            assert_eq!(t.lost(*top), *lost, "{seqs:?} up to {top}");
            assert_eq!(t.duplicates, *dups, "{seqs:?}");
            assert_eq!(t.received, seqs.len() as u64);
        }
    }

    #[test]
    fn percentiles_of_samples() {
        // 1..=100 ms: p50 50 ms, p90 90 ms, p99 99 ms, max 100 ms (3 significant digits).
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1_000).collect();
        let l = Latency::of(&samples);
        assert_eq!(l.count, 100);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.001 + 0.001;
        assert!(close(l.p50, 50.0), "{l:?}");
        assert!(close(l.p90, 90.0), "{l:?}");
        assert!(close(l.p99, 99.0), "{l:?}");
        assert!(close(l.max, 100.0), "{l:?}");
        // One slow outlier among fast samples shows at p99 and max only.
        let mut samples = vec![2_000; 199];
        samples.push(900_000);
        let l = Latency::of(&samples);
        assert!(close(l.p50, 2.0) && close(l.p90, 2.0), "{l:?}");
        assert!(close(l.max, 900.0), "{l:?}");
        assert_eq!(Latency::of(&[]).count, 0);
    }

    #[test]
    fn the_report_sums_calls_and_names_losses() {
        let call = |id: &str, lost: u64| CallOutcome {
            call_id: Some(id.into()),
            file: "a.json".into(),
            segments: 3,
            sent: 3,
            acked: 3,
            events: 9,
            alerts: 1,
            summaries: 1,
            top_seq: 9,
            lost,
            segment_latency: vec![1_000, 2_000, 3_000],
            alert_latency: vec![2_500],
            ..Default::default()
        };
        let r = LoadReport::new(vec![call("c1", 0), call("c2", 2)], 1, 0.0, 1.5);
        assert_eq!(r.lost(), 2);
        assert_eq!(r.segment_latency.count, 6);
        let text = r.to_text();
        assert!(
            text.contains("2 calls from 1 file(s) at full speed"),
            "{text}"
        );
        assert!(text.contains("loss check: 2 lost, 0 duplicated"), "{text}");
        assert!(text.contains("call c2: 2 lost"), "{text}");
        assert!(text.contains("segment sent → alert seen"), "{text}");
        let doc = r.to_json();
        assert_eq!(doc["lost"], 2);
        assert_eq!(doc["segments"]["acked"], 6);
        assert_eq!(doc["latency"]["segment_to_event"]["count"], 6);
        assert_eq!(doc["per_call"][1]["lost"], 2);
    }
}
