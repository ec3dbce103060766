//! What a replay prints for each event, in the layout of `rules check`: a segment on a line
//! of its own (`mm:ss.t  speaker: text`), what it caused indented under it.

use domain::CallEvent;
use domain::event::Severity;

use super::client::speaker_name;
use super::link::EventMsg;

/// The indent of the lines under a segment (the width of `00:14.6    agent: `).
const INDENT: &str = "                  ";

/// `mm:ss.t` from the start of the call.
pub fn clock(ms: u64) -> String {
    format!(
        "{:02}:{:02}.{}",
        ms / 60_000,
        (ms / 1_000) % 60,
        (ms % 1_000) / 100
    )
}

/// A serde enum's wire name, e.g. `booked` (the way the API spells it).
fn name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

/// The lines an event prints.
pub fn lines(e: &EventMsg) -> Vec<String> {
    let Some(event) = &e.event else {
        return vec![format!("{INDENT}({} at seq {})", e.kind, e.seq)];
    };
    let one = |s: String| vec![s];
    match event {
        CallEvent::CallStarted(s) => one(format!(
            "call started: agent {}, ruleset {}@v{}, {}, source {}",
            s.agent,
            s.ruleset.id,
            s.ruleset.version,
            s.language,
            name(&s.source)
        )),
        CallEvent::SegmentAdded(s) => one(format!(
            "{} {:>8}: {}{}",
            clock(s.start_ms),
            speaker_name(s.speaker),
            s.text,
            if s.is_final { "" } else { " (interim)" }
        )),
        CallEvent::AlertRaised(a) => one(format!(
            "{INDENT}ALERT {} {}: {}{}",
            severity(a.severity),
            a.rule.rule_id,
            a.message,
            a.correction
                .as_deref()
                .map(|c| format!(" — try: {}", c.trim()))
                .unwrap_or_default()
        )),
        CallEvent::ChecklistItemCompleted(c) => one(format!("{INDENT}done  {}", c.item.rule_id)),
        CallEvent::ChecklistItemMissed(m) => one(format!(
            "{INDENT}MISSED {} ({})",
            m.item.rule_id,
            crate::rules_check::miss_reason(&m.reason)
        )),
        CallEvent::GuidanceCardShown(c) => {
            one(format!("{INDENT}CARD  {}: {}", c.title, c.body.trim()))
        }
        CallEvent::ReplySuggested(s) => one(format!(
            "{INDENT}SUGGESTED ({}): {}",
            s.provider,
            s.text.trim()
        )),
        CallEvent::GenerationFailed(f) => one(format!(
            "{INDENT}generation failed ({} from {}/{}, {} attempt(s)): {}{}",
            name(&f.task),
            f.provider,
            f.model,
            f.attempts,
            f.error,
            f.fallback
                .as_deref()
                .map(|p| format!("; {p} answered instead"))
                .unwrap_or_default()
        )),
        CallEvent::SuggestionFeedback(f) => one(format!(
            "{INDENT}suggestion {} {} by {}",
            f.suggestion_id,
            name(&f.verdict),
            f.by
        )),
        CallEvent::AlertAcknowledged(a) => one(format!(
            "{INDENT}alert {} acknowledged by {}",
            a.alert_id, a.by
        )),
        CallEvent::CallEnded(c) => one(format!("call ended ({}) by {}", name(&c.reason), c.by)),
        CallEvent::SummaryGenerated(s) => {
            let list = |items: &[String]| -> Vec<String> {
                if items.is_empty() {
                    vec!["(none)".to_owned()]
                } else {
                    items.iter().map(|i| format!("- {}", i.trim())).collect()
                }
            };
            let mut out = vec![
                format!("summary ({}/{}):", s.provider, s.model),
                format!("  reason:      {}", s.summary.reason_for_call.trim()),
            ];
            for (label, items) in [
                ("actions:", &s.summary.actions_taken),
                ("next steps:", &s.summary.next_steps),
            ] {
                for (i, item) in list(items).into_iter().enumerate() {
                    let label = if i == 0 { label } else { "" };
                    out.push(format!("  {label:<12} {item}"));
                }
            }
            out.push(format!(
                "  disposition: {} (confidence {:.0}%, {})",
                name(&s.disposition),
                s.confidence * 100.0,
                s.provider
            ));
            out
        }
        CallEvent::DispositionOverridden(d) => {
            one(format!("disposition set to {} by {}", name(&d.to), d.by))
        }
    }
}

/// Counts for the closing line of a replayed call.
#[derive(Debug, Default)]
pub struct Tally {
    pub segments: u64,
    pub alerts: u64,
    pub done: u64,
    pub missed: u64,
    pub cards: u64,
    pub suggestions: u64,
    pub disposition: Option<String>,
}

impl Tally {
    pub fn add(&mut self, e: &EventMsg) {
        match &e.event {
            Some(CallEvent::SegmentAdded(_)) => self.segments += 1,
            Some(CallEvent::AlertRaised(_)) => self.alerts += 1,
            Some(CallEvent::ChecklistItemCompleted(_)) => self.done += 1,
            Some(CallEvent::ChecklistItemMissed(_)) => self.missed += 1,
            Some(CallEvent::GuidanceCardShown(_)) => self.cards += 1,
            Some(CallEvent::ReplySuggested(_)) => self.suggestions += 1,
            Some(CallEvent::SummaryGenerated(s)) => self.disposition = Some(name(&s.disposition)),
            Some(CallEvent::DispositionOverridden(d)) => self.disposition = Some(name(&d.to)),
            _ => {}
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} segments; {} alerts; checklist {} done, {} missed; {} cards; {} suggestions; disposition {}",
            self.segments,
            self.alerts,
            self.done,
            self.missed,
            self.cards,
            self.suggestions,
            self.disposition.as_deref().unwrap_or("none")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(seq: u64, kind: &str, data: serde_json::Value) -> EventMsg {
        EventMsg {
            seq,
            kind: kind.into(),
            event: domain::decode(kind, 1, data).ok(),
            raw: String::new(),
        }
    }

    #[test]
    fn each_event_prints_compactly() {
        let rule =
            |id: &str| json!({"rule_id": id, "ruleset": {"id": "home-services", "version": 1}});
        // event in → lines out
        let table: Vec<(EventMsg, Vec<&str>)> = vec![
            (
                msg(
                    2,
                    "segment_added",
                    json!({"segment_id": "s0003", "speaker": "agent",
                    "text": "I guarantee it. Call [PHONE].", "start_ms": 14_600, "end_ms": 17_000,
                    "is_final": true, "confidence": null, "redactions": []}),
                ),
                vec!["00:14.6    agent: I guarantee it. Call [PHONE]."],
            ),
            (
                msg(
                    3,
                    "alert_raised",
                    json!({"alert_id": "0193a0c4-0000-7000-8000-000000000001",
                    "rule": rule("no-guarantee"), "severity": "critical",
                    "message": "Don't guarantee outcomes.", "correction": "Say what you can do.",
                    "segment_id": "s0003"}),
                ),
                vec![
                    "                  ALERT CRITICAL no-guarantee: Don't guarantee outcomes. — try: Say what you can do.",
                ],
            ),
            (
                msg(
                    4,
                    "checklist_item_completed",
                    json!({"item": rule("greeting"), "segment_id": "s0001"}),
                ),
                vec!["                  done  greeting"],
            ),
            (
                msg(
                    5,
                    "checklist_item_missed",
                    json!({"item": rule("confirm-address"), "reason": {"kind": "call_ended"}}),
                ),
                vec!["                  MISSED confirm-address (the call ended without it)"],
            ),
            (
                msg(
                    6,
                    "reply_suggested",
                    json!({"suggestion_id": "0193a0c4-0000-7000-8000-000000000002",
                    "text": "Can I get the address? ", "based_on_seq": 5, "provider": "offline",
                    "model": "extractive-v1", "latency_ms": 1, "prompt_tokens": null, "completion_tokens": null}),
                ),
                vec!["                  SUGGESTED (offline): Can I get the address?"],
            ),
            (
                msg(
                    9,
                    "summary_generated",
                    json!({"summary": {"reason_for_call": "AC not cooling",
                    "actions_taken": ["Booked a visit", "Quoted $89"], "next_steps": []},
                    "disposition": "booked", "confidence": 0.85, "provider": "offline", "model": "extractive-v1"}),
                ),
                vec![
                    "summary (offline/extractive-v1):",
                    "  reason:      AC not cooling",
                    "  actions:     - Booked a visit",
                    "               - Quoted $89",
                    "  next steps:  (none)",
                    "  disposition: booked (confidence 85%, offline)",
                ],
            ),
            (
                msg(10, "mood_detected", json!({})),
                vec!["                  (mood_detected at seq 10)"],
            ),
        ];
        let mut tally = Tally::default();
        for (e, want) in &table {
            assert_eq!(lines(e), *want, "{}", e.kind);
            tally.add(e);
        }
        assert_eq!(
            tally.line(),
            "1 segments; 1 alerts; checklist 1 done, 1 missed; 0 cards; 1 suggestions; disposition booked"
        );
        assert_eq!(clock(68_100), "01:08.1");
    }
}
