//! What the rules imply for a transcript, computed away from the server: `earshot rules
//! check RULESET --transcript FILE --json` redacts each segment and runs the rules engine
//! over the call offline, with no log, no session and no restart. Each rules event becomes a
//! [`RuleKey`]: the kind, the rule, and the segment that caused it in the replay's ids
//! (`s0001` is the transcript's first segment) — or, for an item missed, why. Alert and card
//! ids are not compared: they are derived from the call id, which differs.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

/// One rules event, as comparable between the offline run and a call's log.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleKey {
    pub kind: String,
    pub rule: String,
    /// The segment id (`s0001`, …), or the canonical JSON of a miss's reason.
    pub at: String,
}

impl RuleKey {
    pub fn is_alert(&self) -> bool {
        self.kind == "alert_raised"
    }
}

impl std::fmt::Display for RuleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} at {}", self.kind, self.rule, self.at)
    }
}

/// What one transcript is expected to cause.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub segments: usize,
    /// The last segment's start, ms into the call (the length of the send schedule).
    pub last_start_ms: u64,
    /// Sorted.
    pub rules: Vec<RuleKey>,
}

/// The rules key of a logged (or offline) event, if it is a rules event. `segment_id` maps
/// the segment ids in its data to the replay's.
pub fn rule_key(
    kind: &str,
    data: &Value,
    segment_id: impl Fn(&str) -> Option<String>,
) -> Option<RuleKey> {
    let (rule, at) = match kind {
        "alert_raised" | "guidance_card_shown" => (
            &data["rule"]["rule_id"],
            data["segment_id"]
                .as_str()
                .map_or(Some(String::new()), &segment_id)?,
        ),
        "checklist_item_completed" => (
            &data["item"]["rule_id"],
            segment_id(data["segment_id"].as_str()?)?,
        ),
        "checklist_item_missed" => (&data["item"]["rule_id"], canonical(&data["reason"])),
        _ => return None,
    };
    Some(RuleKey {
        kind: kind.to_owned(),
        rule: rule.as_str()?.to_owned(),
        at,
    })
}

/// JSON with object keys sorted, so that documents equal as values print the same.
pub fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// Runs `earshot rules check` over one transcript and reads what it expects.
pub async fn expected(
    earshot: &Path,
    ruleset: &Path,
    transcript: &Path,
) -> anyhow::Result<Expected> {
    let out = tokio::process::Command::new(earshot)
        .args(["rules", "check"])
        .arg(ruleset)
        .arg("--transcript")
        .arg(transcript)
        .arg("--json")
        .env("EARSHOT_LOG_FORMAT", "json")
        .output()
        .await
        .context("running earshot rules check")?;
    if !out.status.success() {
        bail!(
            "earshot rules check {} --transcript {} failed: {}",
            ruleset.display(),
            transcript.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: Value = serde_json::from_slice(&out.stdout).context("rules check --json output")?;
    from_rules_check(&doc)
}

/// Reads `rules check --json`: segments (with their events) and the events at the call's end.
pub fn from_rules_check(doc: &Value) -> anyhow::Result<Expected> {
    let segments = doc["segments"]
        .as_array()
        .context("rules check: no segments")?;
    // The transcript's segment ids, in order: the replay sends the k-th as s000k.
    let ids: Vec<&str> = segments.iter().filter_map(|s| s["id"].as_str()).collect();
    if ids.len() != segments.len() {
        bail!("rules check: a segment without an id");
    }
    let replay_id = |id: &str| {
        ids.iter()
            .position(|s| *s == id)
            .map(|k| format!("s{:04}", k + 1))
    };
    let events = segments
        .iter()
        .flat_map(|s| s["events"].as_array().into_iter().flatten())
        .chain(doc["call_end"].as_array().into_iter().flatten());
    let mut rules = Vec::new();
    for e in events {
        let kind = e["type"]
            .as_str()
            .context("rules check: an event without a type")?;
        if let Some(key) = rule_key(kind, &e["data"], replay_id) {
            rules.push(key);
        } else if matches!(
            kind,
            "alert_raised"
                | "guidance_card_shown"
                | "checklist_item_completed"
                | "checklist_item_missed"
        ) {
            bail!("rules check: cannot read {e}");
        }
    }
    rules.sort();
    Ok(Expected {
        segments: segments.len(),
        last_start_ms: segments
            .iter()
            .filter_map(|s| s["start_ms"].as_u64())
            .max()
            .unwrap_or(0),
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_check_output_in_replay_ids() {
        let rule =
            |id: &str| json!({"rule_id": id, "ruleset": {"id": "home-services", "version": 1}});
        let doc = json!({
            "segments": [
                {"id": "a1", "start_ms": 0, "events": [
                    {"type": "checklist_item_completed", "schema_version": 1,
                     "data": {"item": rule("greeting"), "segment_id": "a1"}}]},
                {"id": "c2", "start_ms": 4200, "events": [
                    {"type": "alert_raised", "schema_version": 1,
                     "data": {"alert_id": "x", "rule": rule("no-guarantee"), "severity": "critical",
                              "message": "m", "correction": null, "segment_id": "c2"}},
                    {"type": "guidance_card_shown", "schema_version": 1,
                     "data": {"card_id": "y", "rule": rule("price"), "title": "t", "body": "b",
                              "segment_id": "c2"}}]},
            ],
            "call_end": [
                {"type": "checklist_item_missed", "schema_version": 1,
                 "data": {"item": rule("consent"), "reason": {"kind": "not_said"}}}],
        });
        let e = from_rules_check(&doc).unwrap();
        assert_eq!(e.segments, 2);
        assert_eq!(e.last_start_ms, 4200);
        let keys: Vec<String> = e.rules.iter().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            [
                "alert_raised no-guarantee at s0002",
                "checklist_item_completed greeting at s0001",
                r#"checklist_item_missed consent at {"kind":"not_said"}"#,
                "guidance_card_shown price at s0002",
            ]
        );
        assert_eq!(e.rules.iter().filter(|k| k.is_alert()).count(), 1);
    }

    #[test]
    fn only_rules_events_have_keys() {
        let same = |s: &str| Some(s.to_owned());
        assert!(rule_key("segment_added", &json!({"segment_id": "s0001"}), same).is_none());
        assert!(rule_key("reply_suggested", &json!({}), same).is_none());
        let k = rule_key(
            "alert_raised",
            &json!({"rule": {"rule_id": "r"}, "segment_id": "s0003"}),
            same,
        )
        .unwrap();
        assert_eq!(k.to_string(), "alert_raised r at s0003");
        assert_eq!(
            canonical(&json!({"b": 1, "a": [{"d": 2, "c": 3}]})),
            r#"{"a":[{"c":3,"d":2}],"b":1}"#
        );
    }
}
