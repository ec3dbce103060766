//! The project's five transcripts (`transcripts/*.json`): disposition, summary lines and
//! evidence; plus edge cases and suggestions.

mod common;

use std::fs;

use assist::{NO_CUSTOMER_SPEECH, NO_REASON, SuggestionKind, suggest, suggest_with, summarize};
use domain::event::{
    CallEvent, ChecklistItemMissed, Disposition, GuidanceCardShown, MissReason, RuleRef,
    RulesetRef, Speaker,
};
use domain::ids::{CallId, CardId, RuleId, RulesetId, SegmentId};
use domain::testkit::recorded;

use common::{state_of, state_of_transcript};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../transcripts");

/// (file stem, disposition, has actions, has next steps, a word the reason must contain)
const EXPECTED: &[(&str, Disposition, bool, bool, &str)] = &[
    (
        "hvac-booking-guarantee",
        Disposition::Booked,
        true,
        true,
        "cooling",
    ),
    (
        "hvac-lead-no-booking",
        Disposition::Lead,
        false,
        true,
        "furnace",
    ),
    ("spam-call", Disposition::Spam, false, false, "listing"),
    (
        "bank-card-replacement",
        Disposition::Resolved,
        true,
        true,
        "card",
    ),
    (
        "angry-cancellation",
        Disposition::Escalated,
        false,
        true,
        "cancel",
    ),
];

#[test]
fn project_transcripts() {
    let mut seen = 0;
    for &(name, disposition, has_actions, has_next, word) in EXPECTED {
        let path = format!("{DIR}/{name}.json");
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let t = transcript::parse(&bytes).expect("a transcript");
        let state = state_of_transcript(&t);
        let out = summarize(&state);
        println!(
            "{name}: {:?} ({:.2}) reason={:?} actions={:?} next={:?} scores={:?}",
            out.disposition,
            out.confidence,
            out.summary.reason_for_call,
            out.summary.actions_taken,
            out.summary.next_steps,
            out.scores
        );
        assert_eq!(out.disposition, disposition, "{name}");
        assert!((0.0..=1.0).contains(&out.confidence), "{name}");
        assert!(out.confidence > 0.0, "{name}: a clear call has a margin");
        assert!(
            out.summary.reason_for_call.to_lowercase().contains(word),
            "{name}: reason {:?} lacks {word:?}",
            out.summary.reason_for_call
        );
        assert!(!out.evidence.reason_for_call.is_empty(), "{name}");
        assert_eq!(!out.summary.actions_taken.is_empty(), has_actions, "{name}");
        assert_eq!(!out.summary.next_steps.is_empty(), has_next, "{name}");
        assert_eq!(
            out.summary.actions_taken.len(),
            out.evidence.actions_taken.len()
        );
        assert_eq!(out.summary.next_steps.len(), out.evidence.next_steps.len());
        for id in out
            .evidence
            .reason_for_call
            .iter()
            .chain(&out.evidence.actions_taken)
            .chain(&out.evidence.next_steps)
        {
            assert!(
                state.segment(id).is_some(),
                "{name}: evidence {id} not in call"
            );
        }
        // Every summary line is copied from the segment it cites.
        for (line, id) in out
            .summary
            .actions_taken
            .iter()
            .zip(&out.evidence.actions_taken)
            .chain(out.summary.next_steps.iter().zip(&out.evidence.next_steps))
        {
            let seg = &state.segment(id).expect("cited").segment.text;
            assert!(
                seg.contains(line.as_str()),
                "{name}: {line:?} not in {seg:?}"
            );
        }
        // Deterministic.
        assert_eq!(summarize(&state), out, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 5);
}

fn segs(list: &[(Speaker, &str)]) -> Vec<(String, Speaker, String)> {
    list.iter()
        .enumerate()
        .map(|(i, (s, t))| (format!("seg-{}", i + 1), *s, (*t).to_owned()))
        .collect()
}

#[test]
fn empty_call() {
    let out = summarize(&state_of(&[]));
    assert_eq!(out.summary.reason_for_call, NO_CUSTOMER_SPEECH);
    assert!(out.summary.actions_taken.is_empty() && out.summary.next_steps.is_empty());
    assert_eq!(out.disposition, Disposition::Other);
    assert!(out.evidence.reason_for_call.is_empty());
    assert!(suggest(&state_of(&[])).is_none());
}

#[test]
fn one_segment() {
    let state = state_of(&segs(&[(Speaker::Customer, "Hi, my card was stolen.")]));
    let out = summarize(&state);
    assert_eq!(out.summary.reason_for_call, "Hi, my card was stolen.");
    assert_eq!(
        out.evidence.reason_for_call,
        vec![SegmentId::parse("seg-1").unwrap()]
    );

    let hello = summarize(&state_of(&segs(&[(Speaker::Customer, "Hello? Hello?")])));
    assert_eq!(hello.summary.reason_for_call, NO_REASON);
    assert_eq!(hello.disposition, Disposition::Other);
}

#[test]
fn only_agent_speech() {
    let state = state_of(&segs(&[
        (
            Speaker::Agent,
            "Thank you for calling Northwind, this is Dana.",
        ),
        (Speaker::Agent, "Hello? Are you there? I'll call you back."),
    ]));
    let out = summarize(&state);
    assert_eq!(out.summary.reason_for_call, NO_CUSTOMER_SPEECH);
    assert_eq!(out.summary.next_steps, vec!["I'll call you back."]);
    assert!(suggest(&state).is_none());
}

#[test]
fn short_reason_takes_the_next_customer_segment() {
    let state = state_of(&segs(&[
        (Speaker::Agent, "hello this is harper valley national bank"),
        (Speaker::Customer, "[noise] hi my name is linda wilson"),
        (Speaker::Customer, "uh i need a new card"),
    ]));
    let out = summarize(&state);
    assert!(out.summary.reason_for_call.contains("new card"));
}

fn rref(id: &str) -> RuleRef {
    RuleRef {
        rule_id: RuleId::parse(id).unwrap(),
        ruleset: RulesetRef {
            id: RulesetId::parse("home-services").unwrap(),
            version: 1,
        },
    }
}

#[test]
fn suggestions_in_order_card_objection_missed_open() {
    let call = CallId::new();
    let base = segs(&[
        (
            Speaker::Agent,
            "Thank you for calling Northwind Heating and Air.",
        ),
        (Speaker::Customer, "That's more than I expected, honestly."),
    ]);
    let mut state = state_of(&base);

    // An objection.
    let s = suggest(&state).expect("a suggestion");
    assert_eq!(s.kind, SuggestionKind::Objection);
    assert!(s.text.contains("price"));
    assert_eq!(s.based_on, SegmentId::parse("seg-2").unwrap());

    // A missed item outranks nothing but comes after objections; on a neutral segment it wins.
    let mut neutral = state_of(&segs(&[
        (Speaker::Agent, "Thank you for calling."),
        (Speaker::Customer, "It's the unit upstairs."),
    ]));
    neutral.apply(&recorded(
        call,
        10,
        CallEvent::ChecklistItemMissed(ChecklistItemMissed {
            item: rref("confirm-service-address"),
            reason: MissReason::Deadline { after_ms: 60_000 },
        }),
    ));
    let s = suggest(&neutral).expect("a suggestion");
    assert_eq!(s.kind, SuggestionKind::MissedItem);
    assert_eq!(s.text, "Can I confirm the service address for the visit?");
    assert_eq!(
        s.rule_id,
        Some(RuleId::parse("confirm-service-address").unwrap())
    );

    // A card shown for the latest segment outranks the objection.
    state.apply(&recorded(
        call,
        10,
        CallEvent::GuidanceCardShown(GuidanceCardShown {
            card_id: CardId::new(),
            rule: rref("price-objection"),
            title: "Quoting a price".into(),
            body: "Explain the diagnostic fee covers the visit.".into(),
            segment_id: Some(SegmentId::parse("seg-2").unwrap()),
        }),
    ));
    let s = suggest(&state).expect("a suggestion");
    assert_eq!(s.kind, SuggestionKind::Card);
    assert_eq!(s.text, "Explain the diagnostic fee covers the visit.");
}

#[test]
fn open_items_from_the_ruleset() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../rulesets/home-services.yaml"
    );
    let yaml = fs::read_to_string(path).expect("ruleset file");
    let ruleset = rules::parse_ruleset("home-services.yaml", &yaml).expect("valid ruleset");
    let state = state_of(&segs(&[
        (Speaker::Agent, "Hi."),
        (Speaker::Customer, "It's the unit upstairs."),
    ]));
    assert!(
        suggest(&state).is_none(),
        "nothing to suggest without a ruleset"
    );
    let s = suggest_with(&state, Some(&ruleset)).expect("an open item");
    assert_eq!(s.kind, SuggestionKind::OpenItem);
    assert!(s.rule_id.is_some());
    println!("open item: {:?} -> {}", s.rule_id, s.text);
}
