//! Ruleset YAML, as uploaded by a tenant admin, through `rules::parse_ruleset`.
//!
//! Asserts: it never panics and answers `Ok` or a typed `RulesetError` that names the file it
//! was given, with a 1-based line and column inside the document when it has one and a
//! non-empty message, displayed as `FILE[:LINE[:COLUMN]]: …`. An accepted ruleset has a
//! version of at least 1, unique rule ids and a non-empty, folded `match` on every rule; it
//! compiles, or fails to with a typed error, and a compiled engine runs a short call the same
//! way twice.

#![no_main]

use std::collections::BTreeSet;

use domain::event::Speaker;
use domain::ids::{CallId, LanguageTag, SegmentId};
use libfuzzer_sys::fuzz_target;
use rules::{Engine, RulesetError, fold, parse_ruleset};

const FILE: &str = "fuzz.yaml";

const CALL: &[(Speaker, &str)] = &[
    (
        Speaker::Agent,
        "Thank you for calling Harper Valley National Bank, this call may be recorded.",
    ),
    (
        Speaker::Customer,
        "I lost my card and I want to cancel, it's ridiculous",
    ),
    (
        Speaker::Agent,
        "I guarantee there's no risk, it won't cost more than 100 dollars",
    ),
    (Speaker::Customer, "أريد إلغاء الموعد"),
    (
        Speaker::Agent,
        "मैं गारंटी देता हूँ. Is there anything else I can help you with?",
    ),
];

/// The last line a position can be on, as YAML counts lines: `\r\n`, `\r`, `\n`, NEL, LS and
/// PS each end one, and libyaml puts the end of a document that does not end with a line
/// break at the start of one line more.
fn yaml_lines(yaml: &str) -> usize {
    let breaks = yaml
        .replace("\r\n", "\n")
        .matches(['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}'])
        .count();
    breaks + 2
}

fn check_error(e: &RulesetError, yaml: &str) {
    assert_eq!(e.file, FILE);
    assert!(!e.message.is_empty(), "an empty message: {e:?}");
    let shown = e.to_string();
    assert!(shown.starts_with(FILE), "{shown}");
    if let Some(line) = e.line {
        let lines = yaml_lines(yaml);
        assert!(
            (1..=lines).contains(&line),
            "line {line} of {lines}: {shown}"
        );
        assert!(shown.starts_with(&format!("{FILE}:{line}")), "{shown}");
    } else {
        assert!(e.column.is_none(), "a column without a line: {e:?}");
    }
    if let Some(column) = e.column {
        assert!(column >= 1, "{shown}");
    }
}

fn run(engine: &Engine) -> Vec<domain::event::CallEvent> {
    let call = CallId::from_uuid(uuid::Uuid::from_u128(1)).expect("not nil");
    let lang = LanguageTag::parse("en-US").expect("a valid tag");
    let mut state = engine.new_call(&lang);
    let mut events = Vec::new();
    for (i, (speaker, text)) in CALL.iter().enumerate() {
        let id = SegmentId::parse(format!("s{i}")).expect("a valid id");
        let at = 4_000 * i as u64;
        events.extend(engine.on_clock(&mut state, call, at));
        events.extend(engine.on_segment(
            &mut state,
            call,
            &rules::SegmentInput {
                segment_id: &id,
                speaker: *speaker,
                text,
                start_ms: at,
                end_ms: at + 3_000,
            },
        ));
    }
    events.extend(engine.on_call_end(&mut state, call));
    events
}

fuzz_target!(|data: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(data) else {
        return;
    };
    let ruleset = match parse_ruleset(FILE, yaml) {
        Ok(r) => r,
        Err(e) => {
            check_error(&e, yaml);
            return;
        }
    };
    assert!(ruleset.version() >= 1);
    let mut ids = BTreeSet::new();
    for rule in ruleset.rules() {
        assert!(
            ids.insert(rule.id.clone()),
            "duplicate id {} accepted",
            rule.id
        );
        let m = &rule.matcher;
        assert!(
            !(m.phrases.is_empty() && m.regexes.is_empty() && m.near.is_empty()),
            "{} has an empty match",
            rule.id
        );
        let all = m
            .phrases
            .iter()
            .chain(&m.except)
            .chain(m.near.iter().flat_map(|n| n.a.iter().chain(&n.b)));
        for p in all {
            assert!(!p.words.is_empty(), "{}: an empty phrase", rule.id);
            assert_eq!(
                fold(&p.words),
                p.words,
                "{}: a phrase is not folded",
                rule.id
            );
        }
    }
    let engine = match Engine::compile(&ruleset) {
        Ok(engine) => engine,
        Err(e) => {
            check_error(&e, yaml);
            return;
        }
    };
    assert_eq!(run(&engine), run(&engine), "not deterministic");
});
