//! Helpers shared by the integration tests.
#![allow(dead_code)]

use domain::event::{CallEvent, MissReason, Speaker};
use domain::ids::{CallId, LanguageTag, SegmentId};
use rules::{Engine, OwnedSegment, parse_ruleset};
use uuid::Uuid;

pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
pub const RULESETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rulesets");

pub fn engine(file: &str, yaml: &str) -> Engine {
    let ruleset = parse_ruleset(file, yaml).unwrap_or_else(|e| panic!("{e}"));
    Engine::compile(&ruleset).unwrap_or_else(|e| panic!("{e}"))
}

pub fn default_engine(name: &str) -> Engine {
    let path = format!("{RULESETS}/{name}");
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    engine(name, &yaml)
}

pub fn call(n: u128) -> CallId {
    CallId::from_uuid(Uuid::from_u128(n)).unwrap()
}

pub fn lang(tag: &str) -> LanguageTag {
    LanguageTag::parse(tag).unwrap()
}

pub fn seg(id: &str, speaker: Speaker, start_ms: u64, end_ms: u64, text: &str) -> OwnedSegment {
    OwnedSegment {
        segment_id: SegmentId::parse(id).unwrap(),
        speaker,
        text: text.to_owned(),
        start_ms,
        end_ms,
    }
}

/// One line per rule event: `alert RULE SEVERITY @SEG`, `done RULE @SEG`, `card RULE @SEG`,
/// `missed RULE call_ended | deadline MS | preceded_by RULE`.
pub fn render(e: &CallEvent) -> String {
    let at = |s: &Option<SegmentId>| s.as_ref().map_or("-".to_owned(), |s| s.to_string());
    match e {
        CallEvent::AlertRaised(a) => format!(
            "alert {} {} @{}",
            a.rule.rule_id,
            format!("{:?}", a.severity).to_lowercase(),
            at(&a.segment_id)
        ),
        CallEvent::ChecklistItemCompleted(c) => {
            format!("done {} @{}", c.item.rule_id, c.segment_id)
        }
        CallEvent::ChecklistItemMissed(m) => {
            let why = match &m.reason {
                MissReason::CallEnded => "call_ended".to_owned(),
                MissReason::Deadline { after_ms } => format!("deadline {after_ms}"),
                MissReason::PrecededBy { rule_id } => format!("preceded_by {rule_id}"),
            };
            format!("missed {} {why}", m.item.rule_id)
        }
        CallEvent::GuidanceCardShown(c) => {
            format!("card {} @{}", c.rule.rule_id, at(&c.segment_id))
        }
        other => format!("unexpected {}", other.event_type()),
    }
}

pub fn render_all(events: &[CallEvent]) -> Vec<String> {
    events.iter().map(render).collect()
}

/// A transcript file's segments (read by the `transcript` crate) as engine input.
pub fn segments_of(t: &transcript::Transcript) -> Vec<OwnedSegment> {
    t.segments
        .iter()
        .map(|s| OwnedSegment {
            segment_id: SegmentId::parse(s.id.as_str()).unwrap(),
            speaker: s.speaker,
            text: s.text.clone(),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
        })
        .collect()
}
