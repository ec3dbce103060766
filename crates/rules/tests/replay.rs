//! Replays: the same call gives byte-identical events, and a state serialized mid-call and
//! read back carries on exactly like the original.

mod common;

use std::collections::BTreeSet;

use common::{DATA, call, default_engine, lang, render_all, seg};
use domain::event::{CallEvent, Speaker};
use domain::ids::{CallId, LanguageTag};
use rules::{CallRules, Engine, OwnedSegment, run_transcript};

/// Every Harper Valley call, plus a scripted HVAC call, each with its engine.
fn corpora() -> Vec<(Engine, Vec<Vec<OwnedSegment>>)> {
    let sids = std::fs::read_to_string(format!("{DATA}/harper-valley/sids.txt")).unwrap();
    let bank_calls = sids
        .split_whitespace()
        .map(|sid| {
            let json =
                std::fs::read_to_string(format!("{DATA}/harper-valley/transcript/{sid}.json"))
                    .unwrap();
            common::segments_of(&transcript::parse(json.as_bytes()).unwrap())
        })
        .collect();
    let a = |id: &str, at: u64, text: &str| seg(id, Speaker::Agent, at, at + 3000, text);
    let c = |id: &str, at: u64, text: &str| seg(id, Speaker::Customer, at, at + 3000, text);
    let hvac = vec![
        a("h1", 0, "Northwind Heating and Air, this is Sam."),
        c("h2", 4000, "My AC quit. Can you guarantee someone today?"),
        a(
            "h3",
            8000,
            "I guarantee we'll get someone out, and there's no",
        ),
        a(
            "h4",
            11500,
            "risk at all. The diagnostic fee is 89 dollars.",
        ),
        c("h5", 16000, "Another company said 60. This is ridiculous."),
        a("h6", 20000, "I guarantee that's the lowest price"),
        c("h7", 26000, "Then cancel it. Cancel!"),
        a("h8", 70000, "Can I confirm your address before you go?"),
        c("h9", 90000, "I said cancel."),
    ];
    vec![
        (default_engine("banking.yaml"), bank_calls),
        (default_engine("home-services.yaml"), vec![hvac]),
    ]
}

/// Runs a call step by step, sending the state through JSON after `pause` segments.
fn run_with_pause(
    engine: &Engine,
    call: CallId,
    language: &LanguageTag,
    segments: &[OwnedSegment],
    pause: usize,
) -> (Vec<CallEvent>, CallRules) {
    let mut state = engine.new_call(language);
    let mut events = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        if i == pause {
            let json = serde_json::to_string(&state).unwrap();
            let back: CallRules = serde_json::from_str(&json).unwrap();
            assert_eq!(back, state);
            state = back;
        }
        events.extend(engine.on_clock(&mut state, call, s.start_ms));
        events.extend(engine.on_segment(&mut state, call, &s.as_input()));
    }
    events.extend(engine.on_call_end(&mut state, call));
    (events, state)
}

#[test]
fn replays_are_byte_identical() {
    for (engine, calls) in corpora() {
        for (n, segments) in calls.iter().enumerate() {
            let id = call(1000 + u128::try_from(n).unwrap());
            let first = run_transcript(&engine, id, &lang("en-US"), segments);
            let second = run_transcript(&engine, id, &lang("en-US"), segments);
            assert!(!first.is_empty());
            assert_eq!(first, second);
            assert_eq!(
                serde_json::to_string(&first).unwrap(),
                serde_json::to_string(&second).unwrap()
            );
        }
    }
}

#[test]
fn state_serialized_mid_call_carries_on_identically() {
    for (engine, calls) in corpora() {
        for segments in &calls {
            let id = call(42);
            let (straight, end_state) =
                run_with_pause(&engine, id, &lang("en-US"), segments, usize::MAX);
            for pause in 0..=segments.len() {
                let (paused, state) = run_with_pause(&engine, id, &lang("en-US"), segments, pause);
                assert_eq!(paused, straight, "pause after {pause} segments");
                assert_eq!(state, end_state);
            }
        }
    }
}

#[test]
fn the_scripted_call_exercises_split_cooldown_and_max_fires() {
    // Guards the replay tests above against replaying a call where nothing happens.
    let corpora = corpora();
    let (engine, calls) = &corpora[1];
    let events = run_transcript(engine, call(5), &lang("en-US"), &calls[0]);
    assert_eq!(
        render_all(&events),
        [
            "done greeting-company-name @h1",
            "alert no-guarantee critical @h3",
            "alert no-risk-claim critical @h4",
            "card price-quote @h4",
            "missed confirm-service-address preceded_by price-quote",
            "card competitor-mention @h5",
            "card angry-customer @h5",
            "alert no-lowest-price-claim warning @h6",
            "card cancel-retention @h7",
            "missed recording-consent deadline 60000",
            "card cancel-retention @h9",
            "missed confirm-callback-number call_ended",
            "missed offer-appointment call_ended",
        ]
    );
}

#[test]
fn ids_are_deterministic_and_distinct() {
    let corpora = corpora();
    let (engine, calls) = &corpora[1];
    let ids = |call_id: CallId| -> Vec<String> {
        run_transcript(engine, call_id, &lang("en-US"), &calls[0])
            .iter()
            .filter_map(|e| match e {
                CallEvent::AlertRaised(a) => Some(a.alert_id.to_string()),
                CallEvent::GuidanceCardShown(c) => Some(c.card_id.to_string()),
                _ => None,
            })
            .collect()
    };
    let a = ids(call(1));
    assert_eq!(a.len(), 8);
    assert_eq!(a, ids(call(1)), "same call, same ids");
    let unique: BTreeSet<_> = a.iter().collect();
    assert_eq!(unique.len(), a.len(), "every alert and card has its own id");
    let b = ids(call(2));
    assert!(
        a.iter().all(|id| !b.contains(id)),
        "another call, other ids"
    );
    for id in &a {
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 5);
    }
}

#[test]
fn another_ruleset_version_gives_other_ids() {
    let yaml = |version: u32| {
        format!(
            "id: v\nversion: {version}\nrules:\n  - id: g\n    kind: prohibited\n    message: m\n    match: {{ phrases: [guarantee] }}\n"
        )
    };
    let run = |version| {
        let engine = common::engine("v.yaml", &yaml(version));
        let s = seg("s1", Speaker::Agent, 0, 1000, "i guarantee it");
        match run_transcript(&engine, call(3), &lang("en"), &[s]).remove(0) {
            CallEvent::AlertRaised(a) => (a.alert_id, a.rule.ruleset.version),
            other => panic!("{other:?}"),
        }
    };
    let (id1, v1) = run(1);
    let (id2, v2) = run(2);
    assert_eq!((v1, v2), (1, 2));
    assert_ne!(id1, id2);
}

#[test]
fn state_is_readable_data() {
    let corpora = corpora();
    let (engine, calls) = &corpora[1];
    let (_, state) = run_with_pause(engine, call(4), &lang("en-US"), &calls[0], usize::MAX);
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["language"], "en-US");
    assert_eq!(json["ruleset"]["id"], "home-services");
    assert_eq!(
        json["items"]["greeting-company-name"]["status"],
        "completed"
    );
    assert_eq!(json["items"]["greeting-company-name"]["segment_id"], "h1");
    assert_eq!(
        json["items"]["confirm-service-address"]["reason"]["kind"],
        "preceded_by"
    );
    assert_eq!(json["fires"]["cancel-retention"]["count"], 2);
    assert_eq!(json["ended"], true);
    assert!(state.is_ended());
}
