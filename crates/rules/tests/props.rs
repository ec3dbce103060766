//! Property tests: arbitrary Unicode never panics the engine, and the same input always gives
//! the same output, ids included, whether or not the state went through JSON on the way.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use common::{call, default_engine, lang};
use domain::event::{CallEvent, Speaker};
use domain::ids::SegmentId;
use proptest::prelude::*;
use rules::{CallRules, Engine, OwnedSegment, fold};

fn engines() -> &'static [Engine] {
    static ENGINES: OnceLock<Vec<Engine>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        vec![
            default_engine("banking.yaml"),
            default_engine("home-services.yaml"),
        ]
    })
}

/// Words and phrases the default rulesets react to, so generated calls do fire rules.
const VOCABULARY: &[&str] = &[
    "i guarantee",
    "can't",
    "no risk",
    "100% safe",
    "it won't cost more than",
    "that's the lowest price",
    "cancel",
    "this call may be recorded",
    "harper valley national bank",
    "northwind heating and air",
    "what is your phone number",
    "has been transferred",
    "you have",
    "dollars",
    "is there anything else",
    "thank you for calling",
    "confirm your address",
    "the diagnostic fee",
    "one two three four five six seven eight nine",
    "أضمن لك",
    "إلغاء الموعد",
    "मैं गारंटी देता हूँ",
    "गारंटी नहीं",
    "ridiculous",
    "lost my card",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything at all, including control characters and unpaired combining marks.
        any::<String>(),
        // Printable text in any script.
        "\\PC{0,60}",
        // Rule vocabulary mixed with punctuation and noise.
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(VOCABULARY).prop_map(str::to_owned),
                "[a-z]{1,8}",
                "[ .,!?'’-]{1,3}",
                "\\PC{1,4}",
            ],
            0..8
        )
        .prop_map(|parts| parts.join(" ")),
    ]
}

fn segments() -> impl Strategy<Value = Vec<OwnedSegment>> {
    prop::collection::vec((any::<bool>(), text(), 0u64..8_000, 0u64..6_000), 0..16).prop_map(
        |raw| {
            let mut at = 0;
            raw.into_iter()
                .enumerate()
                .map(|(i, (agent, text, gap, len))| {
                    at += gap;
                    OwnedSegment {
                        segment_id: SegmentId::parse(format!("p{i}")).unwrap(),
                        speaker: if agent {
                            Speaker::Agent
                        } else {
                            Speaker::Customer
                        },
                        text,
                        start_ms: at,
                        end_ms: at + len,
                    }
                })
                .collect()
        },
    )
}

/// Runs a call, optionally sending the state through JSON before segment `pause`.
fn run(
    engine: &Engine,
    language: &str,
    segments: &[OwnedSegment],
    pause: Option<usize>,
) -> Vec<CallEvent> {
    let call = call(77);
    let mut state = engine.new_call(&lang(language));
    let mut events = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        if Some(i) == pause {
            let json = serde_json::to_vec(&state).unwrap();
            state = serde_json::from_slice::<CallRules>(&json).unwrap();
        }
        events.extend(engine.on_clock(&mut state, call, s.start_ms));
        events.extend(engine.on_segment(&mut state, call, &s.as_input()));
    }
    events.extend(engine.on_call_end(&mut state, call));
    events
}

fn language() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["en-US", "ar-AE", "hi-IN", "fr"][..])
}

proptest! {
    // Failures print their minimal input; there is no regressions file to keep in tests/.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_and_is_deterministic(
        segments in segments(),
        language in language(),
        pause in 0usize..16,
    ) {
        for engine in engines() {
            let first = run(engine, language, &segments, None);
            let again = run(engine, language, &segments, None);
            let resumed = run(engine, language, &segments, Some(pause));
            prop_assert_eq!(&first, &again);
            prop_assert_eq!(&first, &resumed);
            prop_assert_eq!(
                serde_json::to_string(&first).unwrap(),
                serde_json::to_string(&again).unwrap()
            );

            // Every checklist item ends up at most once, completed or missed.
            let mut items = BTreeSet::new();
            for e in &first {
                let item = match e {
                    CallEvent::ChecklistItemCompleted(c) => Some(&c.item.rule_id),
                    CallEvent::ChecklistItemMissed(m) => Some(&m.item.rule_id),
                    _ => None,
                };
                if let Some(id) = item {
                    prop_assert!(items.insert(id.clone()), "{} resolved twice", id);
                }
            }
        }
    }

    #[test]
    fn fold_is_idempotent_and_tidy(s in prop_oneof![any::<String>(), "\\PC{0,80}"]) {
        let once = fold(&s);
        prop_assert_eq!(fold(&once), once.clone());
        prop_assert!(!once.starts_with(' ') && !once.ends_with(' '));
        prop_assert!(!once.contains("  "));
        prop_assert!(once.chars().all(|c| c.to_lowercase().eq([c]) && !c.is_ascii_punctuation()));
    }
}
