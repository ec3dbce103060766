//! The default rulesets in rulesets/: they load, they validate against the JSON Schema, the
//! schema and the parser agree on the format, and scripted calls give the expected events.

mod common;

use common::{RULESETS, call, default_engine, lang, render_all, seg};
use domain::event::Speaker;
use rules::{OwnedSegment, RuleKind, parse_ruleset, run_transcript};
use serde_json::Value;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{RULESETS}/{name}")).unwrap()
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&read("schema/ruleset.schema.json")).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the schema is invalid: {e}"))
}

fn schema_errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let instance: Value = serde_yaml_ng::from_str(yaml).unwrap();
    validator
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect()
}

/// (prohibited, required, trigger)
fn counts(name: &str) -> (usize, usize, usize) {
    let ruleset = parse_ruleset(name, &read(name)).unwrap_or_else(|e| panic!("{e}"));
    let mut c = (0, 0, 0);
    for r in ruleset.rules() {
        match r.kind {
            RuleKind::Prohibited { .. } => c.0 += 1,
            RuleKind::Required { .. } => c.1 += 1,
            RuleKind::Trigger { .. } => c.2 += 1,
        }
    }
    c
}

#[test]
fn default_rulesets_parse_and_compile() {
    assert_eq!(counts("home-services.yaml"), (9, 5, 7));
    assert_eq!(counts("banking.yaml"), (5, 5, 6));
    for name in ["home-services.yaml", "banking.yaml"] {
        let engine = default_engine(name);
        assert_eq!(engine.ruleset_ref().version, 1);
        assert_eq!(format!("{}.yaml", engine.ruleset_ref().id), name);
        assert!(
            engine.pattern_count() > 50,
            "{name}: {}",
            engine.pattern_count()
        );
        assert!(engine.regex_count() >= 2, "{name}");
    }
}

#[test]
fn default_rulesets_validate_against_the_schema() {
    let v = validator();
    for name in ["home-services.yaml", "banking.yaml"] {
        let errors = schema_errors(&v, &read(name));
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

/// Every field the format has, once. The parser and the schema must both accept it.
const KITCHEN_SINK: &str = r#"
id: sink
version: 2
name: Every field
description: Exercises the whole format.
split_window_ms: 3000
rules:
  - id: p
    kind: prohibited
    description: d
    speaker: any
    languages: [en, ar-AE]
    severity: info
    message: m
    correction: c
    cooldown_ms: 1000
    max_fires: 3
    match:
      phrases: ["(a|b) c*"]
      regex: ['\bd\b']
      near: [{ a: [e], b: [f], within: 2 }]
      except: [g c]
  - id: r
    kind: required
    description: d
    speaker: agent
    languages: [hi]
    title: t
    match: { phrases: [h] }
    deadline: { within_ms: 5000, before: [t] }
  - id: t
    kind: trigger
    speaker: customer
    title: t
    body: b
    cooldown_ms: 0
    max_fires: 1
    match: { phrases: [i] }
"#;

#[test]
fn schema_and_parser_agree_on_the_format() {
    let v = validator();
    let sink = parse_ruleset("sink.yaml", KITCHEN_SINK).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sink.split_window_ms(), 3000);
    assert!(
        schema_errors(&v, KITCHEN_SINK).is_empty(),
        "{:#?}",
        schema_errors(&v, KITCHEN_SINK)
    );

    // Each change makes the file invalid for both.
    let broken: &[(&str, &str, &str)] = &[
        (
            "unknown top-level field",
            "split_window_ms: 3000",
            "split_window: 3000",
        ),
        (
            "unknown rule field",
            "    correction: c",
            "    corection: c",
        ),
        (
            "unknown match field",
            "      except: [g c]",
            "      exclude: [g c]",
        ),
        (
            "unknown deadline field",
            "within_ms: 5000",
            "after_ms: 5000",
        ),
        ("unknown kind", "kind: trigger", "kind: nudge"),
        ("unknown speaker", "speaker: customer", "speaker: caller"),
        ("unknown severity", "severity: info", "severity: fatal"),
        (
            "a field of another kind",
            "    title: t\n    body: b",
            "    title: t\n    body: b\n    severity: info",
        ),
        ("a missing field the kind needs", "    message: m\n", ""),
        (
            "an empty match",
            "    match: { phrases: [i] }",
            "    match: { except: [i] }",
        ),
        ("max_fires of zero", "max_fires: 1", "max_fires: 0"),
        ("version zero", "version: 2", "version: 0"),
        ("a bad ruleset id", "id: sink", "id: Sink"),
        ("a bad rule id", "  - id: p\n", "  - id: p q\n"),
        ("a bad language tag", "[en, ar-AE]", "[en, 'ar AE']"),
    ];
    for (what, from, to) in broken {
        assert!(
            KITCHEN_SINK.contains(from),
            "{what}: {from:?} not in the sample"
        );
        let yaml = KITCHEN_SINK.replacen(from, to, 1);
        assert!(
            parse_ruleset("sink.yaml", &yaml).is_err(),
            "the parser accepts {what}"
        );
        assert!(
            !schema_errors(&v, &yaml).is_empty(),
            "the schema accepts {what}"
        );
    }
}

fn agent(id: &str, at: u64, text: &str) -> OwnedSegment {
    seg(id, Speaker::Agent, at, at + 4000, text)
}

fn customer(id: &str, at: u64, text: &str) -> OwnedSegment {
    seg(id, Speaker::Customer, at, at + 4000, text)
}

/// A booking call that goes wrong in the middle.
pub fn hvac_call() -> Vec<OwnedSegment> {
    vec![
        agent(
            "h1",
            0,
            "Thank you for calling Northwind Heating and Air, this is Dana. This call may be recorded for quality.",
        ),
        customer(
            "h2",
            6000,
            "Hi, my furnace is making a banging noise and I want someone to look at it.",
        ),
        agent(
            "h3",
            12000,
            "I'm sorry to hear that. Can I get the address where you need the service?",
        ),
        customer("h4", 18000, "It's 42 Elm Street."),
        agent(
            "h5",
            22000,
            "Thanks. And what's the best number to reach you?",
        ),
        customer("h6", 26000, "555 0134."),
        customer(
            "h7",
            30000,
            "How much is this going to cost? Another company quoted me 300 dollars.",
        ),
        agent(
            "h8",
            36000,
            "The diagnostic fee is 89 dollars, and I guarantee it won't cost more than 300.",
        ),
        agent(
            "h9",
            42000,
            "Sorry, I can't guarantee the final price, the technician will give you a quote.",
        ),
        agent(
            "h10",
            48000,
            "I can schedule a technician for tomorrow morning.",
        ),
        customer(
            "h11",
            54000,
            "Honestly this is ridiculous, I've been waiting all week. Just cancel it.",
        ),
        agent(
            "h12",
            60000,
            "I understand. It's totally safe to run it until then.",
        ),
        customer("h13", 66000, "No, I'm not going to cancel, fine."),
    ]
}

#[test]
fn home_services_booking_call() {
    let engine = default_engine("home-services.yaml");
    let events = run_transcript(&engine, call(7), &lang("en-US"), &hvac_call());
    assert_eq!(
        render_all(&events),
        [
            "done greeting-company-name @h1",
            "done recording-consent @h1",
            "done confirm-service-address @h3",
            "done confirm-callback-number @h5",
            "card competitor-mention @h7",
            "card price-quote @h8",
            "alert no-guarantee critical @h8",
            "alert no-price-ceiling-promise warning @h8",
            "done offer-appointment @h10",
            "card angry-customer @h11",
            "card cancel-retention @h11",
            "alert no-absolute-safety critical @h12",
        ]
    );
}

#[test]
fn home_services_misses() {
    let engine = default_engine("home-services.yaml");
    let segments = [
        agent("m1", 0, "Hello?"),
        customer("m2", 2000, "Hi, how much is a tune-up?"),
        agent("m3", 5000, "A tune-up costs 129 dollars."),
        agent(
            "m4",
            35000,
            "This is Northwind Heating, by the way. What's the address?",
        ),
    ];
    let events = run_transcript(&engine, call(8), &lang("en-US"), &segments);
    assert_eq!(
        render_all(&events),
        [
            "card price-quote @m3",
            "missed confirm-service-address preceded_by price-quote",
            "missed greeting-company-name deadline 30000",
            "missed recording-consent call_ended",
            "missed confirm-callback-number call_ended",
            "missed offer-appointment call_ended",
        ]
    );
}

#[test]
fn home_services_prohibited_phrases_and_their_negations() {
    let engine = default_engine("home-services.yaml");
    let table: &[(&str, Option<&str>)] = &[
        ("I guarantee it'll be fixed today", Some("no-guarantee")),
        ("it's guaranteed to work", Some("no-guarantee")),
        ("i can't guarantee that", None),
        ("we don't guarantee same-day service", None),
        ("all work has a one-year labor guarantee", None),
        ("there's no risk at all", Some("no-risk-claim")),
        ("it's completely risk-free", Some("no-risk-claim")),
        (
            "it's not risk free, there's always some risk with gas",
            None,
        ),
        ("it's 100% safe", Some("no-absolute-safety")),
        ("it is one hundred percent safe", Some("no-absolute-safety")),
        ("it's not 100% safe to run it like that", None),
        (
            "it won't cost more than 200",
            Some("no-price-ceiling-promise"),
        ),
        (
            "the repair shouldn't cost you more than that",
            Some("no-price-ceiling-promise"),
        ),
        (
            "the bill will not go over 500",
            Some("no-price-ceiling-promise"),
        ),
        (
            "a new unit runs 5000 at most",
            Some("no-price-ceiling-promise"),
        ),
        ("that's the lowest price", Some("no-lowest-price-claim")),
        (
            "you're getting the best price in town",
            Some("no-lowest-price-claim"),
        ),
        ("it's not the lowest price but it includes parts", None),
        (
            "it's definitely the capacitor",
            Some("no-diagnosis-over-phone"),
        ),
        (
            "he'll be there at exactly 9",
            Some("no-exact-arrival-promise"),
        ),
        (
            "we'll be there at nine sharp",
            Some("no-exact-arrival-promise"),
        ),
        ("we'll be there between eight and ten", None),
    ];
    let mut failures = Vec::new();
    for (i, (text, want)) in table.iter().enumerate() {
        let s = agent(&format!("p{i}"), 0, text);
        let events = run_transcript(&engine, call(9), &lang("en-US"), &[s]);
        let alerts: Vec<String> = render_all(&events)
            .into_iter()
            .filter(|e| e.starts_with("alert"))
            .collect();
        let got: Vec<&str> = alerts
            .iter()
            .map(|a| a.split(' ').nth(1).unwrap_or(""))
            .collect();
        if got != want.iter().copied().collect::<Vec<_>>() {
            failures.push(format!("{text:?}: want {want:?}, got {alerts:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn home_services_in_arabic_and_hindi() {
    let engine = default_engine("home-services.yaml");
    let arabic = [
        agent("a1", 0, "مرحباً بك، قد يتم تسجيل هذه المكالمة لأغراض الجودة."),
        agent("a2", 5000, "أضمن لك أن المكيف سيعمل بعد الزيارة."),
        agent("a3", 40000, "لا أستطيع أن أضمن لك ذلك قبل الفحص."),
        customer("a4", 45000, "أريد إلغاء الموعد من فضلك."),
        customer("a5", 50000, "هناك رائحة غاز في المطبخ!"),
    ];
    let events = run_transcript(&engine, call(10), &lang("ar-AE"), &arabic);
    assert_eq!(
        render_all(&events),
        [
            "done recording-consent @a1",
            "alert no-guarantee-ar critical @a2",
            "card cancel-retention-ar @a4",
            "card gas-emergency @a5",
        ]
    );

    let hindi = [
        agent("i1", 0, "नमस्ते, यह कॉल रिकॉर्ड की जा रही है।"),
        agent("i2", 5000, "मैं गारंटी देता हूँ कि एसी आज ठीक हो जाएगा।"),
        agent("i3", 40000, "माफ़ कीजिए, मैं इसकी गारंटी नहीं दे सकता।"),
        customer("i4", 45000, "मुझे अपॉइंटमेंट रद्द करना है।"),
    ];
    let events = run_transcript(&engine, call(11), &lang("hi-IN"), &hindi);
    assert_eq!(
        render_all(&events),
        [
            "done recording-consent @i1",
            "alert no-guarantee-hi critical @i2",
            "card cancel-retention-hi @i4",
        ]
    );
}
