//! The rules engine, with an arbitrary ruleset (built from structured input with `arbitrary`,
//! written out as YAML and read back through `rules::parse_ruleset`) over an arbitrary call.
//!
//! Asserts what the crate promises (crates/rules/src/lib.rs, ruleset.rs, engine.rs):
//! - deterministic: the same call twice gives the same events, ids included, and so does a
//!   call whose state went through JSON half-way ("state is data");
//! - every event names a rule of the ruleset, of the right kind, with the ruleset's id and
//!   version; alerts and cards name the segment that fired them, whose speaker the rule
//!   listens to, in a language the rule applies to;
//! - `max_fires` and `cooldown_ms` hold; a deadline miss comes only after its time;
//! - every checklist item is resolved once at most, and every applicable one is resolved by
//!   the end of the call; nothing happens after the end;
//! - for a rule made only of phrases, the engine fires on a lone segment exactly when a
//!   naive search finds one of its phrases, on whole words, in the segment's folded text.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use domain::event::{CallEvent, MissReason, Speaker};
use domain::ids::{CallId, LanguageTag, RuleId, SegmentId};
use libfuzzer_sys::fuzz_target;
use rules::{CallRules, Engine, Phrase, RuleKind, Ruleset, fold, parse_ruleset};
use serde_json::{Value, json};

/// Words of the default rulesets and transcripts, and some that fold in interesting ways.
const VOCAB: &[&str] = &[
    "i",
    "guarantee",
    "guaranteed",
    "can't",
    "cannot",
    "no",
    "risk",
    "free",
    "100%",
    "safe",
    "cancel",
    "cancellation",
    "refund",
    "this",
    "call",
    "may",
    "be",
    "recorded",
    "monitored",
    "for",
    "quality",
    "training",
    "verify",
    "your",
    "identity",
    "account",
    "number",
    "card",
    "lost",
    "stolen",
    "anything",
    "else",
    "thank",
    "you",
    "calling",
    "harper",
    "valley",
    "bank",
    "dollars",
    "cost",
    "price",
    "confirm",
    "address",
    "the",
    "a",
    "is",
    "it",
    "won't",
    "will",
    "not",
    "more",
    "than",
    "fee",
    "today",
    "Café",
    "NAÏVE",
    "ＦＵＬＬ",
    "أضمن",
    "لك",
    "إلغاء",
    "الموعد",
    "मैं",
    "गारंटी",
    "देता",
    "हूँ",
    "१००",
    "٣",
    "o'clock",
    "it’s",
    "x",
    "[PHONE]",
    "[CARD]",
    "uh",
    "-",
    "...",
    "?",
    "",
];

const REGEXES: &[&str] = &[
    r"\bguarantee\w*",
    r"\d{3,}",
    r"(?i)refund",
    r" no risk ",
    r"[a-z]+ed\b",
    r"\p{Arabic}+",
    r"\bcan ?t\b",
    r"^ thank",
    r"calling $",
    r"(?:lost|stolen) (?:my |)card",
    r"\w",
];

const LANGS: &[&str] = &["en-US", "en", "EN-gb", "ar-AE", "ar", "hi-IN", "fr"];

#[derive(Arbitrary, Debug)]
enum PhraseSpec {
    /// Vocabulary words, optionally with a trailing `*`.
    Words(Vec<u8>, bool),
    /// Words, then a `(a|b)` group of words, then words.
    Group(Vec<u8>, Vec<u8>, Vec<u8>, bool),
    /// Anything (mostly rejected by validation, which is exercised too).
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum KindSpec {
    Prohibited {
        severity: u8,
        correction: bool,
        cooldown_ms: Option<u16>,
        max_fires: Option<u8>,
    },
    Required {
        within_ms: Option<u16>,
        before: Vec<u8>,
    },
    Trigger {
        cooldown_ms: Option<u16>,
        max_fires: Option<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct NearSpec {
    a: Vec<PhraseSpec>,
    b: Vec<PhraseSpec>,
    within: u8,
}

#[derive(Arbitrary, Debug)]
enum RegexSpec {
    Known(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct RuleSpec {
    kind: KindSpec,
    speaker: Option<u8>,
    languages: Vec<u8>,
    phrases: Vec<PhraseSpec>,
    regexes: Vec<RegexSpec>,
    near: Vec<NearSpec>,
    except: Vec<PhraseSpec>,
}

#[derive(Arbitrary, Debug)]
enum TextSpec {
    Words(Vec<(u8, u8)>),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct SegmentSpec {
    agent: bool,
    text: TextSpec,
    gap_ms: u16,
    len_ms: u16,
}

#[derive(Arbitrary, Debug)]
struct Input {
    split_window_ms: Option<u16>,
    language: u8,
    rules: Vec<RuleSpec>,
    segments: Vec<SegmentSpec>,
    pause: u8,
}

fn word(i: u8) -> &'static str {
    VOCAB[usize::from(i) % VOCAB.len()]
}

fn words(ids: &[u8]) -> String {
    ids.iter()
        .take(6)
        .map(|&i| word(i))
        .collect::<Vec<_>>()
        .join(" ")
}

fn phrase(p: &PhraseSpec) -> String {
    match p {
        PhraseSpec::Words(ids, star) => {
            format!("{}{}", words(ids), if *star { "*" } else { "" })
        }
        PhraseSpec::Group(before, alts, after, star) => {
            let alts: Vec<&str> = alts.iter().take(4).map(|&i| word(i)).collect();
            format!(
                "{} ({}) {}{}",
                words(before),
                alts.join("|"),
                words(after),
                if *star { "*" } else { "" }
            )
        }
        PhraseSpec::Raw(s) => s.clone(),
    }
}

fn phrases(ps: &[PhraseSpec]) -> Vec<String> {
    ps.iter().take(4).map(phrase).collect()
}

fn ruleset_yaml(input: &Input) -> String {
    let n = input.rules.len().min(6);
    let rules: Vec<Value> = input.rules[..n]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut m = serde_json::Map::new();
            if !r.phrases.is_empty() {
                m.insert("phrases".into(), json!(phrases(&r.phrases)));
            }
            if !r.regexes.is_empty() {
                let list: Vec<String> = r
                    .regexes
                    .iter()
                    .take(3)
                    .map(|x| match x {
                        RegexSpec::Known(k) => REGEXES[usize::from(*k) % REGEXES.len()].to_owned(),
                        RegexSpec::Raw(s) => s.clone(),
                    })
                    .collect();
                m.insert("regex".into(), json!(list));
            }
            if !r.near.is_empty() {
                let near: Vec<Value> = r
                    .near
                    .iter()
                    .take(2)
                    .map(
                        |n| json!({"a": phrases(&n.a), "b": phrases(&n.b), "within": n.within % 8}),
                    )
                    .collect();
                m.insert("near".into(), json!(near));
            }
            if !r.except.is_empty() {
                m.insert("except".into(), json!(phrases(&r.except)));
            }
            let mut rule = json!({"id": format!("r{i}"), "match": Value::Object(m)});
            let o = rule.as_object_mut().expect("an object");
            match &r.kind {
                KindSpec::Prohibited {
                    severity,
                    correction,
                    cooldown_ms,
                    max_fires,
                } => {
                    o.insert("kind".into(), json!("prohibited"));
                    let severity = ["info", "warning", "critical"][usize::from(*severity % 3)];
                    o.insert("severity".into(), json!(severity));
                    o.insert("message".into(), json!(format!("rule {i}")));
                    if *correction {
                        o.insert("correction".into(), json!("say it differently"));
                    }
                    if let Some(c) = cooldown_ms {
                        o.insert("cooldown_ms".into(), json!(c));
                    }
                    if let Some(m) = max_fires {
                        o.insert("max_fires".into(), json!(m));
                    }
                }
                KindSpec::Required { within_ms, before } => {
                    o.insert("kind".into(), json!("required"));
                    o.insert("title".into(), json!(format!("item {i}")));
                    let before: Vec<String> = before
                        .iter()
                        .take(3)
                        .map(|b| format!("r{}", usize::from(*b) % n))
                        .collect();
                    if within_ms.is_some() || !before.is_empty() {
                        let mut d = serde_json::Map::new();
                        if let Some(w) = within_ms {
                            d.insert("within_ms".into(), json!(w));
                        }
                        if !before.is_empty() {
                            d.insert("before".into(), json!(before));
                        }
                        o.insert("deadline".into(), Value::Object(d));
                    }
                }
                KindSpec::Trigger {
                    cooldown_ms,
                    max_fires,
                } => {
                    o.insert("kind".into(), json!("trigger"));
                    o.insert("title".into(), json!(format!("card {i}")));
                    o.insert("body".into(), json!("do this"));
                    if let Some(c) = cooldown_ms {
                        o.insert("cooldown_ms".into(), json!(c));
                    }
                    if let Some(m) = max_fires {
                        o.insert("max_fires".into(), json!(m));
                    }
                }
            }
            if let Some(s) = r.speaker {
                o.insert(
                    "speaker".into(),
                    json!(["agent", "customer", "any"][usize::from(s % 3)]),
                );
            }
            if !r.languages.is_empty() {
                let langs: Vec<&str> = r
                    .languages
                    .iter()
                    .take(3)
                    .map(|&l| LANGS[usize::from(l) % LANGS.len()])
                    .collect();
                o.insert("languages".into(), json!(langs));
            }
            rule
        })
        .collect();
    let mut doc = json!({"id": "fuzz", "version": 1, "rules": rules});
    if let Some(w) = input.split_window_ms {
        doc["split_window_ms"] = json!(w);
    }
    // JSON is YAML: no escaping to get wrong.
    doc.to_string()
}

struct Segment {
    id: SegmentId,
    speaker: Speaker,
    text: String,
    start_ms: u64,
    end_ms: u64,
}

impl Segment {
    fn input(&self) -> rules::SegmentInput<'_> {
        rules::SegmentInput {
            segment_id: &self.id,
            speaker: self.speaker,
            text: &self.text,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
        }
    }
}

fn segments(specs: &[SegmentSpec]) -> Vec<Segment> {
    let mut at = 0u64;
    specs
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, s)| {
            at += u64::from(s.gap_ms);
            let text = match &s.text {
                TextSpec::Words(ws) => ws
                    .iter()
                    .take(40)
                    .map(|&(w, sep)| {
                        format!(
                            "{}{}",
                            word(w),
                            [" ", " ", ", ", ". ", "-", ""][usize::from(sep % 6)]
                        )
                    })
                    .collect(),
                TextSpec::Raw(t) => t.clone(),
            };
            Segment {
                id: SegmentId::parse(format!("s{i}")).expect("a valid segment id"),
                speaker: if s.agent {
                    Speaker::Agent
                } else {
                    Speaker::Customer
                },
                text,
                start_ms: at,
                end_ms: at + u64::from(s.len_ms),
            }
        })
        .collect()
}

/// What happened at each step of a call: the clock and segment of step `i < n`, then the end.
type Steps = Vec<Vec<CallEvent>>;

fn run(engine: &Engine, lang: &LanguageTag, segs: &[Segment], pause: Option<usize>) -> Steps {
    let call = CallId::from_uuid(uuid(7)).expect("not nil");
    let mut state = engine.new_call(lang);
    let mut steps = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if Some(i) == pause {
            let json = serde_json::to_vec(&state).expect("state serializes");
            state = serde_json::from_slice::<CallRules>(&json).expect("state deserializes");
        }
        let mut events = engine.on_clock(&mut state, call, s.start_ms);
        events.extend(engine.on_segment(&mut state, call, &s.input()));
        steps.push(events);
    }
    let mut end = engine.on_call_end(&mut state, call);
    assert!(
        engine.on_call_end(&mut state, call).is_empty(),
        "call end twice"
    );
    if let Some(s) = segs.first() {
        assert!(
            engine.on_segment(&mut state, call, &s.input()).is_empty(),
            "a segment after the end"
        );
    }
    end.extend(engine.on_clock(&mut state, call, u64::MAX));
    steps.push(end);
    steps
}

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

/// Whether a rule limited to `tags` applies to a call in `call` (the rule in `Rule::languages`).
fn applies(tags: &[LanguageTag], call: &LanguageTag) -> bool {
    tags.is_empty()
        || tags.iter().any(|t| {
            let (t, c) = (
                t.as_str().to_ascii_lowercase(),
                call.as_str().to_ascii_lowercase(),
            );
            c == t || c.strip_prefix(&t).is_some_and(|rest| rest.starts_with('-'))
        })
}

fn rule_of(e: &CallEvent) -> Option<(&RuleId, &domain::event::RulesetRef)> {
    match e {
        CallEvent::AlertRaised(a) => Some((&a.rule.rule_id, &a.rule.ruleset)),
        CallEvent::GuidanceCardShown(c) => Some((&c.rule.rule_id, &c.rule.ruleset)),
        CallEvent::ChecklistItemCompleted(c) => Some((&c.item.rule_id, &c.item.ruleset)),
        CallEvent::ChecklistItemMissed(m) => Some((&m.item.rule_id, &m.item.ruleset)),
        _ => None,
    }
}

fn check_call(
    ruleset: &Ruleset,
    engine: &Engine,
    lang: &LanguageTag,
    segs: &[Segment],
    steps: &Steps,
) {
    let by_id: BTreeMap<&RuleId, &rules::Rule> =
        ruleset.rules().iter().map(|r| (&r.id, r)).collect();
    let mut resolved = BTreeSet::new();
    let mut fires: BTreeMap<&RuleId, Vec<u64>> = BTreeMap::new();
    for (i, events) in steps.iter().enumerate() {
        let seg = segs.get(i);
        for e in events {
            let (id, rs) = rule_of(e).unwrap_or_else(|| panic!("not a rule event: {e:?}"));
            assert_eq!(rs, engine.ruleset_ref(), "ruleset ref of {e:?}");
            let rule = by_id
                .get(id)
                .unwrap_or_else(|| panic!("unknown rule in {e:?}"));
            assert!(applies(&rule.languages, lang), "{id} fired in {lang}");
            match (e, &rule.kind) {
                (CallEvent::AlertRaised(a), RuleKind::Prohibited { .. }) => {
                    let seg = seg.expect("an alert outside a segment");
                    assert_eq!(a.segment_id.as_ref(), Some(&seg.id));
                    assert!(
                        rule.speaker.accepts(seg.speaker),
                        "{id} heard the wrong speaker"
                    );
                    fires.entry(id).or_default().push(seg.start_ms);
                }
                (CallEvent::GuidanceCardShown(c), RuleKind::Trigger { .. }) => {
                    let seg = seg.expect("a card outside a segment");
                    assert_eq!(c.segment_id.as_ref(), Some(&seg.id));
                    assert!(
                        rule.speaker.accepts(seg.speaker),
                        "{id} heard the wrong speaker"
                    );
                    fires.entry(id).or_default().push(seg.start_ms);
                }
                (CallEvent::ChecklistItemCompleted(c), RuleKind::Required { .. }) => {
                    let seg = seg.expect("an item completed outside a segment");
                    assert_eq!(&c.segment_id, &seg.id);
                    assert!(
                        rule.speaker.accepts(seg.speaker),
                        "{id} heard the wrong speaker"
                    );
                    assert!(resolved.insert(id), "{id} resolved twice");
                }
                (CallEvent::ChecklistItemMissed(m), RuleKind::Required { deadline, .. }) => {
                    assert!(resolved.insert(id), "{id} resolved twice");
                    match &m.reason {
                        MissReason::Deadline { after_ms } => {
                            assert_eq!(Some(*after_ms), deadline.within_ms);
                            if let Some(seg) = seg {
                                assert!(seg.start_ms > *after_ms, "{id} missed early");
                            }
                        }
                        MissReason::PrecededBy { rule_id } => {
                            assert!(
                                deadline.before.contains(rule_id),
                                "{id} preceded by {rule_id}"
                            );
                        }
                        MissReason::CallEnded => assert_eq!(i, segs.len(), "{id} ended early"),
                    }
                }
                _ => panic!("event of the wrong kind for {id}: {e:?}"),
            }
        }
    }
    for rule in ruleset.rules() {
        if matches!(rule.kind, RuleKind::Required { .. }) && applies(&rule.languages, lang) {
            assert!(
                resolved.contains(&rule.id),
                "{} still open after the end",
                rule.id
            );
        }
        let times = fires.get(&rule.id).map_or(&[][..], Vec::as_slice);
        if let Some(max) = rule.max_fires {
            assert!(
                times.len() <= max as usize,
                "{} fired {} times",
                rule.id,
                times.len()
            );
        }
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= rule.cooldown_ms || rule.cooldown_ms == 0,
                "{} fired within its cooldown",
                rule.id
            );
        }
    }
}

fn pattern(p: &Phrase) -> String {
    format!(" {}{}", p.words, if p.prefix { "" } else { " " })
}

/// Each segment alone in a new call: phrase-only rules fire exactly when a naive search says.
fn check_oracle(ruleset: &Ruleset, engine: &Engine, lang: &LanguageTag, segs: &[Segment]) {
    let call = CallId::from_uuid(uuid(9)).expect("not nil");
    for seg in segs {
        let mut state = engine.new_call(lang);
        let events = engine.on_segment(&mut state, call, &seg.input());
        let hay = format!(" {} ", fold(&seg.text));
        for rule in ruleset.rules() {
            let m = &rule.matcher;
            let simple = matches!(
                rule.kind,
                RuleKind::Prohibited { .. } | RuleKind::Trigger { .. }
            ) && m.regexes.is_empty()
                && m.near.is_empty()
                && m.except.is_empty();
            if !simple || !rule.speaker.accepts(seg.speaker) || !applies(&rule.languages, lang) {
                continue;
            }
            let want = m.phrases.iter().any(|p| hay.contains(&pattern(p)));
            let got = events
                .iter()
                .any(|e| rule_of(e).is_some_and(|(id, _)| *id == rule.id));
            assert_eq!(
                got, want,
                "rule {} on {:?} (folded {hay:?}): {:?}",
                rule.id, seg.text, m.phrases
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let yaml = ruleset_yaml(&input);
    let Ok(ruleset) = parse_ruleset("fuzz.yaml", &yaml) else {
        return;
    };
    let engine = Engine::compile(&ruleset).expect("a small ruleset compiles");
    let lang =
        LanguageTag::parse(LANGS[usize::from(input.language) % LANGS.len()]).expect("a valid tag");
    let segs = segments(&input.segments);

    let first = run(&engine, &lang, &segs, None);
    let again = run(&engine, &lang, &segs, None);
    assert_eq!(first, again, "not deterministic");
    let pause = usize::from(input.pause) % (segs.len() + 1);
    let resumed = run(&engine, &lang, &segs, Some(pause));
    assert_eq!(
        first, resumed,
        "state through JSON before segment {pause} changed the call"
    );

    check_call(&ruleset, &engine, &lang, &segs, &first);
    check_oracle(&ruleset, &engine, &lang, &segs);
});
