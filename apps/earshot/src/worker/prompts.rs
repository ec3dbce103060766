//! The prompts the worker sends, built from versioned files in `apps/earshot/prompts/`.
//!
//! A prompt file is a template: the part before the `----` line becomes the system message,
//! the part after it the user message, and `{{name}}` placeholders are filled in. Changing a
//! prompt means adding a new file (`reply.v2.md`) and pointing [`PROMPT_VERSION`] at it, so
//! the behaviour of a stored suggestion can always be traced to the text that produced it.
//!
//! Only the call's state goes in, and the state holds only redacted text: the raw transcript
//! never reaches this module, let alone a provider.
//!
//! (The filling is a few lines over a handful of fixed names, [`render`]: a template engine
//! would add a dependency and an escaping language for nothing.)

use domain::event::{EndReason, Speaker};
use domain::state::ChecklistStatus;
use domain::{CallState, CallStatus};
use llm::{ChatRequest, Message};
use rules::{RuleKind, Ruleset};
use serde_json::{Value, json};

/// The version of the prompt files in use.
pub const PROMPT_VERSION: &str = "v1";

const REPLY: &str = include_str!("../../prompts/reply.v1.md");
const SUMMARY: &str = include_str!("../../prompts/summary.v1.md");

/// The most transcript lines a reply prompt carries (the latest ones).
pub const REPLY_TRANSCRIPT_LINES: usize = 40;
/// The most cards, and the most alerts, a reply prompt names (the latest ones).
pub const REPLY_GUIDANCE_ITEMS: usize = 3;
/// The most transcript characters a summary prompt carries (the start and the end of a very
/// long call are kept; the middle is elided with a marker).
pub const SUMMARY_TRANSCRIPT_CHARS: usize = 24_000;

/// The request for a suggested reply to the latest customer segment.
pub fn reply_request(state: &CallState, ruleset: Option<&Ruleset>, max_tokens: u32) -> ChatRequest {
    let language = language(state);
    let guidance = guidance(state, ruleset);
    let transcript = transcript_lines(state, REPLY_TRANSCRIPT_LINES).join("\n");
    let (system, user) = render(
        REPLY,
        &[
            ("language", &language),
            ("guidance", &guidance),
            ("transcript", &transcript),
        ],
    );
    let mut req = ChatRequest::new(vec![Message::system(system), Message::user(user)]);
    req.max_tokens = Some(max_tokens);
    req.temperature = Some(0.3);
    req
}

/// The request for the end-of-call summary, with structured (JSON schema) output.
pub fn summary_request(state: &CallState, max_tokens: u32) -> ChatRequest {
    let lines = transcript_lines(state, usize::MAX);
    let segments = lines.len().to_string();
    let end_reason = match state.ended.as_ref().map(|e| e.reason) {
        Some(EndReason::Completed) => "completion",
        Some(EndReason::Transferred) => "a transfer",
        Some(EndReason::Dropped) => "the line dropping",
        Some(EndReason::Abandoned) => "the customer abandoning",
        None => "unknown",
    };
    let language = language(state);
    let transcript = elide(&lines.join("\n"), SUMMARY_TRANSCRIPT_CHARS);
    let (system, user) = render(
        SUMMARY,
        &[
            ("language", &language),
            ("segments", &segments),
            ("end_reason", end_reason),
            ("transcript", &transcript),
        ],
    );
    let mut req = ChatRequest::new(vec![Message::system(system), Message::user(user)])
        .with_json_schema("call_summary", summary_schema());
    req.max_tokens = Some(max_tokens);
    req.temperature = Some(0.0);
    req
}

/// The JSON schema of a summary answer (strict mode: every property required, no others).
pub fn summary_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["reason_for_call", "actions_taken", "next_steps", "disposition", "confidence"],
        "properties": {
            "reason_for_call": {"type": "string"},
            "actions_taken": {"type": "array", "items": {"type": "string"}},
            "next_steps": {"type": "array", "items": {"type": "string"}},
            "disposition": {
                "type": "string",
                "enum": ["booked", "lead", "spam", "resolved", "escalated", "other"]
            },
            "confidence": {"type": "number"}
        }
    })
}

/// Fills `{{name}}` placeholders and splits at the `----` line: (system, user), each trimmed.
///
/// One pass, straight into a string of the final size: a value is copied once and never
/// scanned for placeholders itself (a ruleset's card that says "{{transcript}}" stays as
/// written), and a name with no value is left as it is. Run for every reply request (~250 a
/// second at 500 calls), where one `str::replace` per name copied the whole prompt each time.
fn render(template: &str, values: &[(&str, &str)]) -> (String, String) {
    let (system, user) = template
        .split_once("\n----\n")
        .expect("every prompt file has a ---- line");
    let fill = |part: &str| {
        let part = part.trim();
        let mut out =
            String::with_capacity(part.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
        let mut rest = part;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let value = after.find("}}").and_then(|close| {
                let name = &after[..close];
                let (_, value) = values.iter().find(|(n, _)| *n == name)?;
                Some((value, close))
            });
            match value {
                Some((value, close)) => {
                    out.push_str(value);
                    rest = &after[close + 2..];
                }
                None => {
                    out.push_str("{{");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        // A value at either end may bring its own whitespace.
        out.truncate(out.trim_end().len());
        let lead = out.len() - out.trim_start().len();
        out.drain(..lead);
        out
    };
    (fill(system), fill(user))
}

fn language(state: &CallState) -> String {
    state
        .info
        .as_ref()
        .map(|i| i.language.to_string())
        .unwrap_or_else(|| "en".to_owned())
}

/// The last `last` final segments as `Agent: …` / `Customer: …` lines, oldest first. Taken
/// from the end: a reply's prompt carries the last 40 of a call of any length.
fn transcript_lines(state: &CallState, last: usize) -> Vec<String> {
    let mut lines: Vec<String> = state
        .segments
        .iter()
        .rev()
        .filter(|s| s.segment.is_final)
        .take(last)
        .map(|s| {
            let who = match s.segment.speaker {
                Speaker::Agent => "Agent",
                Speaker::Customer => "Customer",
            };
            format!("{who}: {}", s.segment.text.trim())
        })
        .collect();
    lines.reverse();
    lines
}

/// What the ruleset says about this call so far: cards shown, prohibited claims already
/// flagged, required questions missed or still open.
fn guidance(state: &CallState, ruleset: Option<&Ruleset>) -> String {
    let mut out = Vec::new();
    for card in state.cards.iter().rev().take(REPLY_GUIDANCE_ITEMS) {
        out.push(format!(
            "- Card shown: {}: {}",
            card.card.title, card.card.body
        ));
    }
    for alert in state.alerts.iter().rev().take(REPLY_GUIDANCE_ITEMS) {
        let mut line = format!("- The agent was warned: {}", alert.alert.message);
        if let Some(c) = &alert.alert.correction {
            line.push_str(&format!(" (say instead: {c})"));
        }
        out.push(line);
    }
    let title = |id: &domain::RuleId| -> String {
        ruleset
            .and_then(|r| r.rules().iter().find(|r| &r.id == id))
            .and_then(|r| match &r.kind {
                RuleKind::Required { title, .. } => Some(title.clone()),
                _ => None,
            })
            .unwrap_or_else(|| id.to_string())
    };
    for entry in state.checklist.values() {
        if matches!(entry.status, ChecklistStatus::Missed { .. }) {
            out.push(format!(
                "- Required question MISSED so far: {}",
                title(&entry.item.rule_id)
            ));
        }
    }
    if let Some(ruleset) = ruleset
        && state.status == CallStatus::Live
    {
        for rule in ruleset.rules() {
            if let RuleKind::Required { title, .. } = &rule.kind
                && !state.checklist.contains_key(&rule.id)
            {
                out.push(format!("- Required question not asked yet: {title}"));
            }
        }
    }
    if out.is_empty() {
        "(none)".to_owned()
    } else {
        out.join("\n")
    }
}

/// Keeps the start and the end of `text` within `max` characters.
fn elide(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max / 3).collect();
    let tail: String = text.chars().skip(n - (max - max / 3)).collect();
    format!(
        "{head}\n[… {} characters of the middle of the call left out …]\n{tail}",
        n - max
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let state = CallState::default();
        let req = reply_request(&state, None, 100);
        let summary = summary_request(&state, 100);
        for r in [&req, &summary] {
            for m in &r.messages {
                assert!(!m.content.contains("{{"), "unfilled: {}", m.content);
                assert!(!m.content.is_empty());
            }
        }
        assert!(summary.json_schema.is_some());
        assert!(req.json_schema.is_none());
    }

    /// The filling as it was before the one-pass `render`: a `str::replace` per name, then
    /// a trim.
    fn render_by_replace(template: &str, values: &[(&str, &str)]) -> (String, String) {
        let (system, user) = template.split_once("\n----\n").unwrap();
        let fill = |part: &str| {
            let mut out = part.to_owned();
            for (name, value) in values {
                out = out.replace(&format!("{{{{{name}}}}}"), value);
            }
            out.trim().to_owned()
        };
        (fill(system), fill(user))
    }

    #[test]
    fn render_fills_the_prompt_files_as_replace_did() {
        let transcript = "Customer: my heater is broken\nAgent: I can book a visit {today}.";
        for (template, values) in [
            (
                REPLY,
                vec![
                    ("language", "de-AT"),
                    ("guidance", "- Card shown: Pricing: from $89"),
                    ("transcript", transcript),
                ],
            ),
            (
                SUMMARY,
                vec![
                    ("language", "en"),
                    ("segments", "2"),
                    ("end_reason", "completion"),
                    ("transcript", transcript),
                ],
            ),
            // Values with their own whitespace at the ends of the parts.
            (
                "{{a}} x {{b}}\n----\n{{b}}",
                vec![("a", "  1 "), ("b", " 2\n")],
            ),
            ("{{a}}\n----\n", vec![("a", "")]),
        ] {
            assert_eq!(
                render(template, &values),
                render_by_replace(template, &values)
            );
        }
    }

    #[test]
    fn render_never_expands_a_value_and_keeps_unknown_names() {
        let (system, user) = render(
            "A {{x}} {{unknown}} {{y}} {{ and }}\n----\n{{y}}{{x}}}} {{",
            &[("x", "said {{y}}"), ("y", "Y")],
        );
        assert_eq!(system, "A said {{y}} {{unknown}} Y {{ and }}");
        assert_eq!(user, "Ysaid {{y}}}} {{");
    }

    #[test]
    fn a_reply_prompt_carries_the_last_final_segments_in_order() {
        use domain::testkit::{recorded, segment, started};
        let call = domain::CallId::new();
        let mut events = vec![recorded(call, 1, started("acme", "agent-7"))];
        for n in 1..=100 {
            // Every tenth an interim result, which no prompt carries.
            let event = segment(n, &format!("  line {n} "), n % 10 != 0);
            events.push(recorded(call, n + 1, event));
        }
        let state = CallState::replay(&events);
        let req = reply_request(&state, None, 100);
        let user = &req.messages[1].content;
        let lines: Vec<&str> = user
            .lines()
            .filter(|l| l.starts_with("Agent: ") || l.starts_with("Customer: "))
            .collect();
        let expected: Vec<String> = (1..=100u64)
            .filter(|n| n % 10 != 0)
            .map(|n| {
                let who = if n % 2 == 0 { "Agent" } else { "Customer" };
                format!("{who}: line {n}")
            })
            .collect();
        assert_eq!(lines, expected[expected.len() - REPLY_TRANSCRIPT_LINES..]);
        // The summary carries them all.
        let summary = summary_request(&state, 100);
        assert!(summary.messages[1].content.contains("Customer: line 1\n"));
        assert_eq!(
            summary.messages[1]
                .content
                .lines()
                .filter(|l| l.starts_with("Agent: ") || l.starts_with("Customer: "))
                .count(),
            90
        );
    }

    proptest::proptest! {
        /// The worker hands a reply's generation only [`CallState::recent`]: the prompt and
        /// the offline fallback made from it are those made from the whole call.
        #[test]
        fn a_reply_from_the_recent_part_of_a_call_is_the_reply_from_all_of_it(
            events in domain::testkit::call_events(400),
        ) {
            let call = domain::CallId::new();
            let recorded: Vec<_> = (1..)
                .zip(events)
                .map(|(seq, e)| domain::testkit::recorded(call, seq, e))
                .collect();
            let full = CallState::replay(&recorded);
            let recent = full.recent(REPLY_TRANSCRIPT_LINES, REPLY_GUIDANCE_ITEMS);
            let ruleset = rules::parse_ruleset(
                "home-services.yaml",
                include_str!("../../../../rulesets/home-services.yaml"),
            )
            .unwrap();
            for ruleset in [None, Some(&ruleset)] {
                proptest::prop_assert_eq!(
                    reply_request(&full, ruleset, 120),
                    reply_request(&recent, ruleset, 120)
                );
                proptest::prop_assert_eq!(
                    assist::suggest_with(&full, ruleset),
                    assist::suggest_with(&recent, ruleset)
                );
            }
        }
    }

    #[test]
    fn long_transcripts_keep_both_ends() {
        let text: String = (0..5_000).map(|i| format!("{i} ")).collect();
        let out = elide(&text, 1_000);
        assert!(out.starts_with("0 1 2"));
        assert!(out.ends_with("4999 "));
        assert!(out.contains("left out"));
        assert!(out.chars().count() < 1_100);
    }
}
