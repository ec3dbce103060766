//! The run's report, as text or JSON.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::run::{IngestStats, Samples, SubscriberStats};

/// One histogram (microseconds, up to a minute, 3 significant digits) of many tasks' samples.
pub(crate) fn histogram<'a>(samples: impl Iterator<Item = &'a Samples>) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    for s in samples.flatten() {
        h.saturating_record(u64::from(*s));
    }
    h
}

/// What was asked for.
pub struct Setup {
    pub url: String,
    pub calls: usize,
    pub subscribers_per_call: usize,
    pub rate: f64,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub segments_per_call: usize,
    /// agent, customer or alternate.
    pub speaker: &'static str,
    pub measure_suggestions: bool,
    pub suggestion_wait_s: u64,
}

/// Percentiles of one histogram, in milliseconds.
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1_000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1_000.0,
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "count": self.count, "p50": self.p50, "p90": self.p90, "p99": self.p99,
            "p99_9": self.p999, "max": self.max, "mean": self.mean,
        })
    }

    pub(crate) fn line(&self) -> String {
        format!(
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (n = {})",
            self.p50, self.p90, self.p99, self.p999, self.max, self.count
        )
    }
}

pub struct Report {
    pub setup: Setup,
    pub subscriber_connections: usize,
    pub segments_sent: u64,
    pub segments_acked: u64,
    pub acked_without_alert: u64,
    pub ingest_errors: u64,
    pub first_ingest_error: Option<String>,
    pub alerts_expected: u64,
    pub alerts_received: u64,
    pub alerts_unmatched: u64,
    pub events_received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub disconnected: usize,
    pub first_disconnect: Option<String>,
    /// Calls whose top seq is not 1 (the start) + 2 per acked segment (segment, alert) + the
    /// events the server's assist worker wrote (reply_suggested, generation_failed).
    pub calls_with_unexpected_top: usize,
    pub send_seconds: f64,
    pub segment_rate: f64,
    pub alert_latency: Latency,
    pub ack_latency: Latency,
    pub send_lag: Latency,
    /// `suggestion_draft` messages at subscribers (every streamed delta).
    pub suggestion_drafts: u64,
    /// Drafts of index 0 at subscribers (one per suggestion per subscriber).
    pub suggestion_first_tokens: u64,
    /// `reply_suggested` events at subscribers.
    pub suggestions_posted: u64,
    /// `generation_failed` events at subscribers.
    pub generation_failures: u64,
    /// First drafts and `reply_suggested` events with no sent segment at or before their
    /// `based_on_seq`.
    pub suggestions_unmatched: u64,
    /// Segment → the first streamed token of the suggestion based on it.
    pub first_token_latency: Latency,
    /// Segment → the `reply_suggested` event based on it.
    pub suggestion_latency: Latency,
}

impl Report {
    pub fn build(
        setup: Setup,
        ingest: &[IngestStats],
        subscribers: &[SubscriberStats],
        tops: &[u64],
        assist_events: &[u64],
    ) -> Self {
        let alert = histogram(subscribers.iter().map(|s| &s.latency));
        let first_token = histogram(subscribers.iter().map(|s| &s.first_token_latency));
        let suggestion = histogram(subscribers.iter().map(|s| &s.suggestion_latency));
        let ack = histogram(ingest.iter().map(|i| &i.ack_latency));
        let lag = histogram(ingest.iter().map(|i| &i.send_lag));
        let segments_sent: u64 = ingest.iter().map(|i| i.sent).sum();
        let segments_acked: u64 = ingest.iter().map(|i| i.acked).sum();
        // Sends per second between the first send and the last one.
        let first_send = ingest
            .iter()
            .filter(|i| i.sent > 0)
            .map(|i| i.first_send)
            .min()
            .unwrap_or(0);
        let last_send = ingest.iter().map(|i| i.last_send).max().unwrap_or(0);
        let send_seconds = last_send.saturating_sub(first_send) as f64 / 1e9;
        let disconnected: Vec<&SubscriberStats> =
            subscribers.iter().filter(|s| s.closed.is_some()).collect();
        let calls_with_unexpected_top = ingest
            .iter()
            .zip(tops)
            .enumerate()
            .filter(|(c, (i, top))| {
                **top != 1 + 2 * i.acked + assist_events.get(*c).copied().unwrap_or(0)
            })
            .count();
        Self {
            subscriber_connections: subscribers.len(),
            segments_sent,
            segments_acked,
            acked_without_alert: ingest.iter().map(|i| i.acked_without_alert).sum(),
            ingest_errors: ingest.iter().map(|i| i.errors).sum(),
            first_ingest_error: ingest.iter().find_map(|i| i.first_error.clone()),
            alerts_expected: segments_sent * setup.subscribers_per_call as u64,
            alerts_received: subscribers.iter().map(|s| s.alerts).sum(),
            alerts_unmatched: subscribers.iter().map(|s| s.unmatched).sum(),
            events_received: subscribers.iter().map(|s| s.events).sum(),
            lost: subscribers.iter().map(|s| s.gaps + s.missing).sum(),
            duplicated: subscribers.iter().map(|s| s.duplicates).sum(),
            disconnected: disconnected.len(),
            first_disconnect: disconnected.first().and_then(|s| s.closed.clone()),
            calls_with_unexpected_top,
            segment_rate: if send_seconds > 0.0 {
                segments_sent.saturating_sub(1) as f64 / send_seconds
            } else {
                0.0
            },
            send_seconds,
            alert_latency: Latency::of(&alert),
            ack_latency: Latency::of(&ack),
            send_lag: Latency::of(&lag),
            suggestion_drafts: subscribers.iter().map(|s| s.drafts).sum(),
            suggestion_first_tokens: subscribers.iter().map(|s| s.first_tokens).sum(),
            suggestions_posted: subscribers.iter().map(|s| s.suggestions).sum(),
            generation_failures: subscribers.iter().map(|s| s.generation_failures).sum(),
            suggestions_unmatched: subscribers.iter().map(|s| s.suggestions_unmatched).sum(),
            first_token_latency: Latency::of(&first_token),
            suggestion_latency: Latency::of(&suggestion),
            setup,
        }
    }

    /// Nothing lost, duplicated or refused, and every expected alert arrived.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.ingest_errors == 0
            && self.disconnected == 0
            && self.alerts_unmatched == 0
            && self.acked_without_alert == 0
            && self.segments_acked == self.segments_sent
            && self.alerts_received == self.alerts_expected
            && self.calls_with_unexpected_top == 0
    }

    pub fn to_text(&self) -> String {
        let s = &self.setup;
        let mut out = String::new();
        let _ = writeln!(out, "earshot-load report ({})", s.url);
        let _ = writeln!(
            out,
            "  calls                {} × {} subscribers = {} subscriber sockets (+ {} ingest sockets, WebSocket)",
            s.calls, s.subscribers_per_call, self.subscriber_connections, s.calls
        );
        let _ = writeln!(
            out,
            "  load                 {} segment/s per call for {} s ({} segments a call; warm-up {} s left out of latencies)",
            s.rate, s.duration_s, s.segments_per_call, s.warmup_s
        );
        let _ = writeln!(
            out,
            "  segments             sent {}, acked {}, ingest errors {}",
            self.segments_sent, self.segments_acked, self.ingest_errors
        );
        let _ = writeln!(
            out,
            "  achieved rate        {:.1} segments/s over {:.1} s",
            self.segment_rate, self.send_seconds
        );
        let _ = writeln!(
            out,
            "  alerts               expected {}, received {} (unmatched {}, acks without an alert {})",
            self.alerts_expected,
            self.alerts_received,
            self.alerts_unmatched,
            self.acked_without_alert
        );
        let _ = writeln!(
            out,
            "  events at subscribers {} received; lost {}, duplicated {}, subscribers disconnected {}, calls with an unexpected top seq {}",
            self.events_received,
            self.lost,
            self.duplicated,
            self.disconnected,
            self.calls_with_unexpected_top
        );
        let _ = writeln!(out, "  segment → alert (ms) {}", self.alert_latency.line());
        let _ = writeln!(out, "  segment → ack (ms)   {}", self.ack_latency.line());
        let _ = writeln!(out, "  send lag (ms)        {}", self.send_lag.line());
        if self.shows_suggestions() {
            let _ = writeln!(
                out,
                "  suggestions          speaker {}; first tokens {}, posted {}, generation failures {}, unmatched {} ({} draft deltas)",
                s.speaker,
                self.suggestion_first_tokens,
                self.suggestions_posted,
                self.generation_failures,
                self.suggestions_unmatched,
                self.suggestion_drafts
            );
            let _ = writeln!(
                out,
                "  segment → first suggestion token (ms) {}",
                self.first_token_latency.line()
            );
            let _ = writeln!(
                out,
                "  segment → suggestion posted (ms)      {}",
                self.suggestion_latency.line()
            );
        }
        if let Some(e) = &self.first_ingest_error {
            let _ = writeln!(out, "  first ingest error   {e}");
        }
        if let Some(e) = &self.first_disconnect {
            let _ = writeln!(out, "  first disconnect     {e}");
        }
        let _ = writeln!(
            out,
            "  result               {}",
            if self.passed() {
                "PASS (nothing lost or duplicated)"
            } else {
                "FAIL"
            }
        );
        out
    }

    /// Whether the text report has the suggestion lines: asked for, or something arrived.
    fn shows_suggestions(&self) -> bool {
        self.setup.measure_suggestions
            || self.suggestion_drafts > 0
            || self.suggestions_posted > 0
            || self.generation_failures > 0
    }

    pub fn to_json(&self) -> Value {
        let s = &self.setup;
        json!({
            "url": s.url,
            "ingest": "websocket",
            "calls": s.calls,
            "subscribers_per_call": s.subscribers_per_call,
            "subscriber_connections": self.subscriber_connections,
            "rate_per_call": s.rate,
            "duration_s": s.duration_s,
            "warmup_s": s.warmup_s,
            "speaker": s.speaker,
            "measure_suggestions": s.measure_suggestions,
            "suggestion_wait_s": if s.measure_suggestions { Some(s.suggestion_wait_s) } else { None },
            "segments_sent": self.segments_sent,
            "segments_acked": self.segments_acked,
            "ingest_errors": self.ingest_errors,
            "first_ingest_error": self.first_ingest_error,
            "achieved_segment_rate": self.segment_rate,
            "send_seconds": self.send_seconds,
            "alerts_expected": self.alerts_expected,
            "alerts_received": self.alerts_received,
            "alerts_unmatched": self.alerts_unmatched,
            "acked_without_alert": self.acked_without_alert,
            "events_received": self.events_received,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "subscribers_disconnected": self.disconnected,
            "first_disconnect": self.first_disconnect,
            "calls_with_unexpected_top_seq": self.calls_with_unexpected_top,
            "suggestions": {
                "draft_deltas": self.suggestion_drafts,
                "first_tokens": self.suggestion_first_tokens,
                "posted": self.suggestions_posted,
                "generation_failed": self.generation_failures,
                "unmatched": self.suggestions_unmatched,
            },
            "latency_ms": {
                "segment_to_alert": self.alert_latency.json(),
                "segment_to_ack": self.ack_latency.json(),
                "send_lag": self.send_lag.json(),
                "segment_to_first_suggestion_token": self.first_token_latency.json(),
                "segment_to_suggestion_posted": self.suggestion_latency.json(),
            },
            "passed": self.passed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(measure_suggestions: bool) -> Setup {
        Setup {
            url: "http://127.0.0.1:1".to_owned(),
            calls: 2,
            subscribers_per_call: 1,
            rate: 1.0,
            duration_s: 2,
            warmup_s: 0,
            segments_per_call: 2,
            speaker: "customer",
            measure_suggestions,
            suggestion_wait_s: 10,
        }
    }

    fn ingest() -> IngestStats {
        IngestStats {
            sent: 2,
            acked: 2,
            acked_without_alert: 0,
            errors: 0,
            first_error: None,
            ack_latency: vec![1_000, 2_000],
            send_lag: vec![10, 20],
            first_send: 0,
            last_send: 1_000_000_000,
        }
    }

    fn subscriber(suggest: bool) -> SubscriberStats {
        let mut s = SubscriberStats::new();
        s.events = 5;
        s.last_seq = 5;
        s.alerts = 2;
        s.latency = vec![3_000, 4_000];
        if suggest {
            s.events += 1;
            s.last_seq += 1;
            s.drafts = 20;
            s.first_tokens = 1;
            s.suggestions = 1;
            s.first_token_latency = vec![3_300_000];
            s.suggestion_latency = vec![3_800_000];
            s.assist_seqs = vec![6];
        }
        s
    }

    #[test]
    fn without_suggestions_the_report_is_as_before_plus_fields() {
        let r = Report::build(
            setup(false),
            &[ingest(), ingest()],
            &[subscriber(false), subscriber(false)],
            &[5, 5],
            &[0, 0],
        );
        assert!(r.passed(), "{}", r.to_text());
        let text = r.to_text();
        assert!(text.contains("segment → alert (ms)"));
        assert!(!text.contains("suggestion"), "{text}");
        let j = r.to_json();
        assert_eq!(j["latency_ms"]["segment_to_alert"]["count"], 4);
        assert_eq!(
            j["latency_ms"]["segment_to_first_suggestion_token"]["count"],
            0
        );
        assert_eq!(j["suggestions"]["posted"], 0);
        assert_eq!(j["speaker"], "customer");
        assert_eq!(j["passed"], true);
    }

    #[test]
    fn suggestions_are_reported_and_allowed_for_in_the_top_seq() {
        let subs = [subscriber(true), subscriber(false)];
        // Call 0 has the reply_suggested at seq 6, call 1 none.
        let r = Report::build(setup(true), &[ingest(), ingest()], &subs, &[6, 5], &[1, 0]);
        assert_eq!(r.calls_with_unexpected_top, 0);
        assert!(r.passed(), "{}", r.to_text());
        let text = r.to_text();
        // 3 significant digits.
        assert!(
            text.contains("segment → first suggestion token (ms) p50 330"),
            "{text}"
        );
        assert!(
            text.contains("segment → suggestion posted (ms)      p50 380"),
            "{text}"
        );
        assert!(text.contains("first tokens 1, posted 1"));
        let j = r.to_json();
        let l = &j["latency_ms"];
        assert_eq!(l["segment_to_first_suggestion_token"]["count"], 1);
        let near = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < want * 1e-3;
        assert!(near(&l["segment_to_first_suggestion_token"]["p99"], 3300.0));
        assert!(near(&l["segment_to_suggestion_posted"]["max"], 3800.0));
        assert_eq!(j["suggestions"]["first_tokens"], 1);
        assert_eq!(j["suggestions"]["draft_deltas"], 20);
        assert_eq!(j["suggestion_wait_s"], 10);

        // Not allowing for it: the call's top is unexpected.
        let r = Report::build(setup(true), &[ingest(), ingest()], &subs, &[6, 5], &[0, 0]);
        assert_eq!(r.calls_with_unexpected_top, 1);
        assert!(!r.passed());
    }
}
