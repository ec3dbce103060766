//! The verdict, from the log alone: what the harness read from `call_events` after the run,
//! what each client received, and what the rules imply. Pure: no IO, so each check is
//! tested here against data made to break it, and [`corruptions`] breaks copies of a real
//! run's data to show, on every run, that each check still fails when it should.
//!
//! The invariants, per call a client streamed:
//!
//! - **Segments**: every segment the client sent is in the log (`segment_added` with its id
//!   `s0001`…), and no other.
//! - **Duplicates**: no event is in the log twice: no `event_id` twice, no segment id, alert
//!   id, card id, suggestion id or checklist item twice, one `call_started`, one
//!   `call_ended`, one `summary_generated`.
//! - **Seqs**: the call's seqs are 1, 2, 3… with no gap, in log order.
//! - **Alerts / rule events**: the alerts (and checklist items and cards) in the log are
//!   exactly those the rules imply for the transcript, as a multiset of (kind, rule,
//!   segment).
//! - **Lifecycle**: the call was started and ended once, and has its one summary.
//! - **Views**: the events the client received over its WebSocket (across every reconnect,
//!   de-duplicated by seq as the protocol asks) are the log of its call: the same seqs,
//!   positions (the log's primary key), kinds and data, in the same order, nothing missing
//!   at the end.
//!
//! And across the run: every call in the log belongs to a client, and every client
//! finished without an error.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::expect::{Expected, RuleKey, rule_key};

/// One row of `call_events`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    pub seq: u64,
    pub position: i64,
    pub event_id: String,
    pub kind: String,
    pub data: Value,
}

/// One `event` message a client applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewEvent {
    pub seq: u64,
    pub position: i64,
    pub kind: String,
    pub data: Value,
}

impl ViewEvent {
    /// Reads one line of a `--dump-views` file.
    pub fn parse(line: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        match (
            v["seq"].as_u64(),
            v["position"].as_i64(),
            v["kind"].as_str(),
        ) {
            (Some(seq), Some(position), Some(kind)) if v["type"] == "event" => Ok(Self {
                seq,
                position,
                kind: kind.to_owned(),
                data: v["data"].clone(),
            }),
            _ => Err(format!("not an event message: {line}")),
        }
    }
}

/// One simulated call, as its client reported it.
#[derive(Clone, Debug)]
pub struct Client {
    pub call_id: String,
    /// The transcript it streamed (a key of [`Inputs::expected`]).
    pub file: String,
    /// Segments acknowledged by the server.
    pub acked: u64,
    pub error: Option<String>,
    /// What it received; `None` when it left no view.
    pub view: Option<Vec<ViewEvent>>,
}

#[derive(Clone, Debug)]
pub struct Inputs {
    pub clients: Vec<Client>,
    /// Every call in the log, its events in log order.
    pub log: BTreeMap<String, Vec<LogEvent>>,
    pub expected: HashMap<String, Expected>,
}

/// Which invariant a problem breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    Clients,
    Calls,
    Segments,
    Duplicates,
    Seqs,
    Alerts,
    RuleEvents,
    Lifecycle,
    Views,
}

#[derive(Clone, Debug)]
pub struct Problem {
    pub check: Check,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub calls_in_log: u64,
    pub events_in_log: u64,
    pub segments_expected: u64,
    pub segments_acked: u64,
    pub segments_in_log: u64,
    pub duplicates: u64,
    pub seq_gaps: u64,
    pub alerts_expected: u64,
    pub alerts_found: u64,
    pub rule_events_expected: u64,
    pub rule_events_found: u64,
    pub summaries: u64,
    pub views_equal: u64,
    pub view_mismatches: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Verdict {
    pub counts: Counts,
    pub problems: Vec<Problem>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn breaks(&self, check: Check) -> bool {
        self.problems.iter().any(|p| p.check == check)
    }

    fn problem(&mut self, check: Check, detail: String) {
        self.problems.push(Problem { check, detail });
    }
}

/// What makes an event unique within its call (events without one: `None`).
fn identity(kind: &str, data: &Value) -> Option<String> {
    let field = |k: &str| data[k].as_str().map(|v| format!("{kind} {v}"));
    match kind {
        "call_started" | "call_ended" | "summary_generated" => Some(kind.to_owned()),
        "segment_added" => field("segment_id"),
        "alert_raised" => field("alert_id"),
        "guidance_card_shown" => field("card_id"),
        "reply_suggested" => field("suggestion_id"),
        // An item is completed or missed, once.
        "checklist_item_completed" | "checklist_item_missed" => data["item"]["rule_id"]
            .as_str()
            .map(|r| format!("checklist item {r}")),
        _ => None,
    }
}

/// `want` minus `got` and `got` minus `want`, both sorted multisets.
fn multiset_diff<'a>(
    want: &'a [RuleKey],
    got: &'a [RuleKey],
) -> (Vec<&'a RuleKey>, Vec<&'a RuleKey>) {
    let (mut missing, mut unexpected) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(w), Some(g)) if w == g => {
                i += 1;
                j += 1;
            }
            (Some(w), Some(g)) if w < g => {
                missing.push(w);
                i += 1;
            }
            (Some(w), None) => {
                missing.push(w);
                i += 1;
            }
            (_, Some(g)) => {
                unexpected.push(g);
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    (missing, unexpected)
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    const SHOWN: usize = 5;
    let mut s: Vec<String> = items.iter().take(SHOWN).map(ToString::to_string).collect();
    if items.len() > SHOWN {
        s.push(format!("… {} more", items.len() - SHOWN));
    }
    s.join(", ")
}

pub fn verify(inputs: &Inputs) -> Verdict {
    let mut v = Verdict::default();
    v.counts.calls = inputs.clients.len() as u64;
    v.counts.calls_in_log = inputs.log.len() as u64;
    v.counts.events_in_log = inputs.log.values().map(|e| e.len() as u64).sum();

    let mut seen_event_ids = HashSet::new();
    for (call, events) in &inputs.log {
        for e in events {
            if !seen_event_ids.insert(&e.event_id) {
                v.counts.duplicates += 1;
                v.problem(
                    Check::Duplicates,
                    format!("call {call}: event id {} twice", e.event_id),
                );
            }
        }
    }
    let clients: HashSet<&str> = inputs.clients.iter().map(|c| c.call_id.as_str()).collect();
    for call in inputs.log.keys() {
        if !clients.contains(call.as_str()) {
            v.problem(
                Check::Calls,
                format!("call {call} is in the log but no client streamed it"),
            );
        }
    }

    for c in &inputs.clients {
        verify_call(inputs, c, &mut v);
    }
    v
}

fn verify_call(inputs: &Inputs, c: &Client, v: &mut Verdict) {
    let call = &c.call_id;
    if let Some(e) = &c.error {
        v.problem(Check::Clients, format!("call {call} ({}): {e}", c.file));
    }
    v.counts.segments_acked += c.acked;
    let Some(expected) = inputs.expected.get(&c.file) else {
        v.problem(
            Check::Clients,
            format!("call {call}: no expectation for {}", c.file),
        );
        return;
    };
    v.counts.segments_expected += expected.segments as u64;
    v.counts.alerts_expected += expected.rules.iter().filter(|k| k.is_alert()).count() as u64;
    v.counts.rule_events_expected += expected.rules.iter().filter(|k| !k.is_alert()).count() as u64;
    let empty = Vec::new();
    let log = match inputs.log.get(call) {
        Some(l) => l,
        None => {
            v.problem(Check::Calls, format!("call {call} is not in the log"));
            &empty
        }
    };

    // Seqs: 1, 2, 3… in log order.
    let mut want_seq = 1;
    for e in log {
        if e.seq != want_seq {
            v.counts.seq_gaps += 1;
            v.problem(
                Check::Seqs,
                format!("call {call}: seq {} where {want_seq} was due", e.seq),
            );
        }
        want_seq = e.seq + 1;
    }

    // Duplicates, by what makes each event unique.
    let mut seen: HashMap<String, u64> = HashMap::new();
    for e in log {
        if let Some(id) = identity(&e.kind, &e.data) {
            let n = seen.entry(id.clone()).or_default();
            *n += 1;
            if *n > 1 {
                v.counts.duplicates += 1;
                v.problem(
                    Check::Duplicates,
                    format!("call {call}: {id} logged again at seq {}", e.seq),
                );
            }
        }
    }

    // Segments: exactly the ids the client sent.
    let logged: HashSet<&str> = log
        .iter()
        .filter(|e| e.kind == "segment_added")
        .filter_map(|e| e.data["segment_id"].as_str())
        .collect();
    v.counts.segments_in_log += log.iter().filter(|e| e.kind == "segment_added").count() as u64;
    let sent: Vec<String> = (1..=expected.segments)
        .map(|k| format!("s{k:04}"))
        .collect();
    let missing: Vec<&String> = sent
        .iter()
        .filter(|s| !logged.contains(s.as_str()))
        .collect();
    let sent_set: HashSet<&str> = sent.iter().map(String::as_str).collect();
    let mut extra: Vec<&str> = logged.difference(&sent_set).copied().collect();
    extra.sort();
    if !missing.is_empty() {
        v.problem(
            Check::Segments,
            format!(
                "call {call}: segments missing from the log: {}",
                list(&missing)
            ),
        );
    }
    if !extra.is_empty() {
        v.problem(
            Check::Segments,
            format!(
                "call {call}: segments in the log never sent: {}",
                list(&extra)
            ),
        );
    }

    // Rules: the same multiset of (kind, rule, segment) as offline.
    let mut found: Vec<RuleKey> = log
        .iter()
        .filter_map(|e| rule_key(&e.kind, &e.data, |s| Some(s.to_owned())))
        .collect();
    found.sort();
    v.counts.alerts_found += found.iter().filter(|k| k.is_alert()).count() as u64;
    v.counts.rule_events_found += found.iter().filter(|k| !k.is_alert()).count() as u64;
    let (missing, unexpected) = multiset_diff(&expected.rules, &found);
    for (what, keys) in [
        ("missing from the log", missing),
        ("not implied by the rules", unexpected),
    ] {
        let (alerts, others): (Vec<_>, Vec<_>) = keys.into_iter().partition(|k| k.is_alert());
        if !alerts.is_empty() {
            v.problem(
                Check::Alerts,
                format!("call {call}: alerts {what}: {}", list(&alerts)),
            );
        }
        if !others.is_empty() {
            v.problem(
                Check::RuleEvents,
                format!("call {call}: rules events {what}: {}", list(&others)),
            );
        }
    }

    // Lifecycle: started, ended, summarised, once each.
    let count = |kind: &str| log.iter().filter(|e| e.kind == kind).count();
    v.counts.summaries += count("summary_generated") as u64;
    for kind in ["call_started", "call_ended", "summary_generated"] {
        let n = count(kind);
        if n != 1 {
            v.problem(
                Check::Lifecycle,
                format!("call {call}: {n} × {kind}, want 1"),
            );
        }
    }

    // The client's view against the log.
    match &c.view {
        None => {
            v.counts.view_mismatches += 1;
            v.problem(
                Check::Views,
                format!("call {call}: the client left no view"),
            );
        }
        Some(view) => match view_difference(view, log) {
            None => v.counts.views_equal += 1,
            Some(why) => {
                v.counts.view_mismatches += 1;
                v.problem(
                    Check::Views,
                    format!("call {call}: the client's view {why}"),
                );
            }
        },
    }
}

/// `None` when the view is the log; else where they part.
fn view_difference(view: &[ViewEvent], log: &[LogEvent]) -> Option<String> {
    let show =
        |seq: u64, position: i64, kind: &str| format!("seq {seq} (position {position}, {kind})");
    for (i, pair) in view.iter().zip(log).enumerate() {
        let (a, b) = pair;
        if (a.seq, a.position, &a.kind) != (b.seq, b.position, &b.kind) {
            return Some(format!(
                "differs at its event {}: it has {}, the log {}",
                i + 1,
                show(a.seq, a.position, &a.kind),
                show(b.seq, b.position, &b.kind)
            ));
        }
        if a.data != b.data {
            return Some(format!(
                "differs at {}: other data than the log's",
                show(a.seq, a.position, &a.kind)
            ));
        }
    }
    match view.len().cmp(&log.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => {
            let next = &log[view.len()];
            Some(format!(
                "ends after {} events; the log has {} (first missing: {})",
                view.len(),
                log.len(),
                show(next.seq, next.position, &next.kind)
            ))
        }
        std::cmp::Ordering::Greater => Some(format!(
            "has {} events; the log only {}",
            view.len(),
            log.len()
        )),
    }
}

/// Copies of `inputs`, each with one invariant broken, and the check that must catch it: a
/// run shows its checks can fail, on its own data. Corruptions that need something the run
/// does not have (an alert) are left out.
pub fn corruptions(inputs: &Inputs) -> Vec<(&'static str, Check, Inputs)> {
    let mut out = Vec::new();
    let Some(first) = inputs.clients.first().map(|c| c.call_id.clone()) else {
        return out;
    };
    let with = |f: &dyn Fn(&mut Inputs)| {
        let mut copy = inputs.clone();
        f(&mut copy);
        copy
    };
    let has_view = inputs.clients[0].view.as_ref().is_some_and(|v| v.len() > 2);
    if has_view {
        out.push((
            "one event dropped from a client's view",
            Check::Views,
            with(&|i| {
                let view = i.clients[0].view.as_mut().expect("a view");
                view.remove(view.len() / 2);
            }),
        ));
        out.push((
            "one event repeated in a client's view",
            Check::Views,
            with(&|i| {
                let view = i.clients[0].view.as_mut().expect("a view");
                let e = view[1].clone();
                view.insert(1, e);
            }),
        ));
        out.push((
            "the last event missing from a client's view",
            Check::Views,
            with(&|i| {
                i.clients[0].view.as_mut().expect("a view").pop();
            }),
        ));
    }
    let log = inputs.log.get(&first).cloned().unwrap_or_default();
    let last = log.last().cloned();
    if let (Some(seg), Some(last)) = (log.iter().find(|e| e.kind == "segment_added"), &last) {
        let seg = seg.clone();
        let last = last.clone();
        let call = first.clone();
        out.push((
            "a segment in the log twice",
            Check::Duplicates,
            with(&|i| {
                i.log.get_mut(&call).expect("the call").push(LogEvent {
                    seq: last.seq + 1,
                    position: last.position + 1_000_000,
                    event_id: format!("{}-again", seg.event_id),
                    ..seg.clone()
                });
            }),
        ));
        out.push((
            "a segment missing from the log",
            Check::Segments,
            with(&|i| {
                i.log
                    .get_mut(&call)
                    .expect("the call")
                    .retain(|e| e.event_id != seg.event_id);
            }),
        ));
        out.push((
            "a seq skipped in the log",
            Check::Seqs,
            with(&|i| {
                i.log
                    .get_mut(&call)
                    .expect("the call")
                    .last_mut()
                    .expect("events")
                    .seq += 1;
            }),
        ));
        out.push((
            "an event id twice in the log",
            Check::Duplicates,
            with(&|i| {
                let events = i.log.get_mut(&call).expect("the call");
                let id = events[0].event_id.clone();
                events.last_mut().expect("events").event_id = id;
            }),
        ));
    }
    // An alert: dropped from the log, and one more implied than raised.
    let alerted = inputs.clients.iter().find_map(|c| {
        let log = inputs.log.get(&c.call_id)?;
        let a = log.iter().find(|e| e.kind == "alert_raised")?;
        Some((c.call_id.clone(), a.event_id.clone()))
    });
    if let Some((call, alert)) = alerted {
        out.push((
            "an alert missing from the log",
            Check::Alerts,
            with(&|i| {
                i.log
                    .get_mut(&call)
                    .expect("the call")
                    .retain(|e| e.event_id != alert);
            }),
        ));
    }
    let file = inputs.clients[0].file.clone();
    out.push((
        "an alert the rules imply that was never raised",
        Check::Alerts,
        with(&|i| {
            let e = i.expected.get_mut(&file).expect("the file's expectation");
            e.rules.push(RuleKey {
                kind: "alert_raised".into(),
                rule: "chaos-self-check".into(),
                at: "s0001".into(),
            });
            e.rules.sort();
        }),
    ));
    out.push((
        "a call in the log that no client streamed",
        Check::Calls,
        with(&|i| {
            let events = i.log.get(&first).cloned().unwrap_or_default();
            i.log
                .insert("00000000-0000-0000-0000-000000000000".into(), events);
        }),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CALL: &str = "0193aaaa-0000-7000-8000-000000000001";

    fn ev(seq: u64, kind: &str, data: Value) -> LogEvent {
        LogEvent {
            seq,
            position: 100 + seq as i64,
            event_id: format!("e{seq}"),
            kind: kind.into(),
            data,
        }
    }

    fn rule(id: &str) -> Value {
        json!({"rule_id": id, "ruleset": {"id": "home-services", "version": 1}})
    }

    /// A clean call: two segments, the second raising an alert, ended, summarised.
    fn clean() -> Inputs {
        let log = vec![
            ev(1, "call_started", json!({})),
            ev(2, "segment_added", json!({"segment_id": "s0001"})),
            ev(
                3,
                "checklist_item_completed",
                json!({"item": rule("greeting"), "segment_id": "s0001"}),
            ),
            ev(4, "segment_added", json!({"segment_id": "s0002"})),
            ev(
                5,
                "alert_raised",
                json!({"alert_id": "a1", "rule": rule("no-guarantee"), "segment_id": "s0002"}),
            ),
            ev(6, "call_ended", json!({})),
            ev(
                7,
                "checklist_item_missed",
                json!({"item": rule("consent"), "reason": {"kind": "not_said"}}),
            ),
            ev(8, "summary_generated", json!({})),
        ];
        let view = log
            .iter()
            .map(|e| ViewEvent {
                seq: e.seq,
                position: e.position,
                kind: e.kind.clone(),
                data: e.data.clone(),
            })
            .collect();
        let key = |kind: &str, rule: &str, at: &str| RuleKey {
            kind: kind.into(),
            rule: rule.into(),
            at: at.into(),
        };
        let mut rules = vec![
            key("checklist_item_completed", "greeting", "s0001"),
            key("alert_raised", "no-guarantee", "s0002"),
            key("checklist_item_missed", "consent", r#"{"kind":"not_said"}"#),
        ];
        rules.sort();
        Inputs {
            clients: vec![Client {
                call_id: CALL.into(),
                file: "t.json".into(),
                acked: 2,
                error: None,
                view: Some(view),
            }],
            log: BTreeMap::from([(CALL.to_owned(), log)]),
            expected: HashMap::from([(
                "t.json".to_owned(),
                Expected {
                    segments: 2,
                    last_start_ms: 1_000,
                    rules,
                },
            )]),
        }
    }

    #[test]
    fn a_clean_run_passes_with_its_counts() {
        let v = verify(&clean());
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(
            v.counts,
            Counts {
                calls: 1,
                calls_in_log: 1,
                events_in_log: 8,
                segments_expected: 2,
                segments_acked: 2,
                segments_in_log: 2,
                alerts_expected: 1,
                alerts_found: 1,
                rule_events_expected: 2,
                rule_events_found: 2,
                summaries: 1,
                views_equal: 1,
                ..Default::default()
            }
        );
    }

    /// Each way of breaking a clean run, and the check that must say so.
    #[test]
    fn each_broken_invariant_is_caught() {
        type Break = fn(&mut Inputs);
        let table: Vec<(&str, Check, Break)> = vec![
            ("client error", Check::Clients, |i| {
                i.clients[0].error = Some("gave up".into())
            }),
            ("segment lost", Check::Segments, |i| {
                let l = i.log.get_mut(CALL).unwrap();
                l.retain(|e| e.data["segment_id"] != "s0002" || e.kind != "segment_added");
            }),
            ("segment never sent", Check::Segments, |i| {
                let l = i.log.get_mut(CALL).unwrap();
                l[3].data = json!({"segment_id": "s0009"});
            }),
            ("segment twice", Check::Duplicates, |i| {
                let l = i.log.get_mut(CALL).unwrap();
                let mut again = l[1].clone();
                again.seq = 9;
                again.event_id = "e9".into();
                l.push(again);
            }),
            ("summary twice", Check::Duplicates, |i| {
                let l = i.log.get_mut(CALL).unwrap();
                l.push(ev(9, "summary_generated", json!({})));
            }),
            ("no summary", Check::Lifecycle, |i| {
                i.log.get_mut(CALL).unwrap().pop();
            }),
            ("seq gap", Check::Seqs, |i| {
                i.log.get_mut(CALL).unwrap()[4].seq = 6
            }),
            ("alert lost", Check::Alerts, |i| {
                i.log
                    .get_mut(CALL)
                    .unwrap()
                    .retain(|e| e.kind != "alert_raised");
            }),
            ("alert on another segment", Check::Alerts, |i| {
                i.log.get_mut(CALL).unwrap()[4].data["segment_id"] = json!("s0001");
            }),
            ("card not implied", Check::RuleEvents, |i| {
                i.log.get_mut(CALL).unwrap().push(ev(
                    9,
                    "guidance_card_shown",
                    json!({"card_id": "c", "rule": rule("price"), "segment_id": "s0002"}),
                ));
            }),
            ("call no client streamed", Check::Calls, |i| {
                let l = i.log[CALL].clone();
                i.log.insert("other".into(), l);
            }),
            ("no view", Check::Views, |i| i.clients[0].view = None),
            ("view misses the tail", Check::Views, |i| {
                i.clients[0].view.as_mut().unwrap().pop();
            }),
            ("view has other data", Check::Views, |i| {
                i.clients[0].view.as_mut().unwrap()[1].data = json!({"segment_id": "s0002"});
            }),
            ("view out of order", Check::Views, |i| {
                i.clients[0].view.as_mut().unwrap().swap(2, 3);
            }),
        ];
        for (name, check, corrupt) in table {
            let mut inputs = clean();
            corrupt(&mut inputs);
            let v = verify(&inputs);
            assert!(
                v.breaks(check),
                "{name}: want {check:?}, got {:?}",
                v.problems
            );
        }
    }

    #[test]
    fn the_corruptions_of_a_clean_run_are_each_caught() {
        let inputs = clean();
        let all = corruptions(&inputs);
        assert_eq!(all.len(), 10, "every corruption applies to this run");
        for (name, check, corrupted) in all {
            let v = verify(&corrupted);
            assert!(
                v.breaks(check),
                "{name}: want {check:?}, got {:?}",
                v.problems
            );
        }
    }

    #[test]
    fn view_lines_are_read() {
        let e = ViewEvent::parse(
            r#"{"v":1,"type":"event","call_id":"c","seq":3,"position":17,"kind":"segment_added","data":{"segment_id":"s0002"}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.seq, e.position, e.kind.as_str()),
            (3, 17, "segment_added")
        );
        assert!(ViewEvent::parse(r#"{"type":"ack"}"#).is_err());
        assert!(ViewEvent::parse("nope").is_err());
    }
}
