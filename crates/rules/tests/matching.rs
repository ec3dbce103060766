//! Data-driven matching tests: a call's segments, clock ticks and end go in, the rule events
//! that come out are compared line by line.

mod common;

use common::{call, engine, lang, render, render_all, seg};
use domain::event::{CallEvent, Severity, Speaker};
use rules::Engine;

const RULESET: &str = r#"
id: test-rules
version: 7
rules:
  - id: no-guarantee
    kind: prohibited
    severity: critical
    message: Don't guarantee outcomes.
    correction: Say the technician will confirm on site.
    match:
      phrases: [guarantee*]
      except: ["(can't|cannot|can not) guarantee*", "no guarantee*"]

  - id: no-risk
    kind: prohibited
    message: Don't say there is no risk.
    match:
      phrases: [no risk, risk free]
    cooldown_ms: 10000

  - id: lowest-price
    kind: prohibited
    severity: info
    message: Don't claim the lowest price.
    match:
      phrases: ["(that's|that is) the lowest price"]
    max_fires: 2

  - id: cost-cap
    kind: prohibited
    message: Don't promise a maximum price.
    match:
      near:
        - a: [cost*]
          b: [more than]
          within: 2

  - id: card-number
    kind: prohibited
    message: Don't read out card numbers.
    match:
      regex: ['\b\d{9,}\b']

  - id: say-hello
    kind: required
    title: Greet with the company name
    languages: [en]
    match:
      phrases: [acme heating]
    deadline:
      within_ms: 30000

  - id: confirm-address
    kind: required
    title: Confirm the address
    match:
      phrases: ["confirm (your|the) address"]
    deadline:
      before: [quote]

  - id: consent
    kind: required
    title: Recording disclosure
    match:
      phrases: ["call (is|may be) recorded", "هذه المكالمة مسجلة", "यह कॉल रिकॉर्ड की जा रही है"]

  - id: quote
    kind: trigger
    speaker: agent
    title: Quoting a price
    body: Confirm the address first.
    match:
      phrases: ["(the|our) price is"]

  - id: cancel
    kind: trigger
    title: Customer wants to cancel
    body: Offer to reschedule.
    match:
      phrases: [cancel*]
      except: ["(not|don't want to) cancel*"]
    max_fires: 1

  - id: supervisor
    kind: trigger
    speaker: any
    title: Supervisor mentioned
    body: Offer a callback.
    match:
      phrases: [supervisor]

  - id: guarantee-ar
    kind: prohibited
    languages: [ar]
    message: لا تضمن النتائج
    match:
      phrases: [أضمن لك, بدون أي مخاطر]
      except: [لا أضمن لك]

  - id: guarantee-hi
    kind: prohibited
    languages: [hi]
    message: गारंटी न दें
    match:
      phrases: [गारंटी]
      except: [गारंटी नहीं]
"#;

#[derive(Clone, Copy)]
enum Step {
    /// The agent speaks, from this millisecond for one second.
    A(u64, &'static str),
    /// The customer speaks.
    C(u64, &'static str),
    Clock(u64),
    End,
}
use Step::{A, C, Clock, End};

struct Case {
    name: &'static str,
    language: &'static str,
    steps: &'static [Step],
    want: &'static [&'static str],
}

/// Runs the steps; segments are named s1, s2, … in order.
fn run(engine: &Engine, language: &str, steps: &[Step]) -> Vec<CallEvent> {
    let call = call(1);
    let mut state = engine.new_call(&lang(language));
    let mut events = Vec::new();
    let mut n = 0;
    for step in steps {
        match *step {
            A(at, text) | C(at, text) => {
                n += 1;
                let speaker = if matches!(step, A(..)) {
                    Speaker::Agent
                } else {
                    Speaker::Customer
                };
                let s = seg(&format!("s{n}"), speaker, at, at + 1000, text);
                events.extend(engine.on_segment(&mut state, call, &s.as_input()));
            }
            Clock(ms) => events.extend(engine.on_clock(&mut state, call, ms)),
            End => events.extend(engine.on_call_end(&mut state, call)),
        }
    }
    events
}

fn check(cases: &[Case]) {
    let engine = engine("test.yaml", RULESET);
    let mut failures = Vec::new();
    for case in cases {
        let got = render_all(&run(&engine, case.language, case.steps));
        if got != case.want {
            failures.push(format!(
                "{}:\n  want {:?}\n  got  {:?}",
                case.name, case.want, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn phrases_exclusions_and_boundaries() {
    check(&[
        Case {
            name: "a guarantee by the agent",
            language: "en-US",
            steps: &[A(0, "i guarantee it will work")],
            want: &["alert no-guarantee critical @s1"],
        },
        Case {
            name: "case and punctuation fold",
            language: "en-US",
            steps: &[
                A(0, "I GUARANTEE, it works!"),
                A(9000, "No-risk! Trust me."),
            ],
            want: &[
                "alert no-guarantee critical @s1",
                "alert no-risk warning @s2",
            ],
        },
        Case {
            name: "a trailing * lets the word go on",
            language: "en-US",
            steps: &[A(0, "it's guaranteed to last")],
            want: &["alert no-guarantee critical @s1"],
        },
        Case {
            name: "whole words only",
            language: "en-US",
            steps: &[A(0, "that's unguaranteeable"), A(9000, "no risky business")],
            want: &[],
        },
        Case {
            name: "exclusions: can't, cannot, can not, no guarantee",
            language: "en-US",
            steps: &[
                A(0, "I can't guarantee that"),
                A(6000, "i cannot guarantee it"),
                A(12000, "i can not guarantee anything"),
                A(18000, "there's no guarantee, sorry"),
                A(24000, "I can’t guarantee it (curly apostrophe)"),
            ],
            want: &[],
        },
        Case {
            name: "an exclusion only covers the match it overlaps",
            language: "en-US",
            steps: &[A(0, "i can't guarantee the part but i guarantee the labor")],
            want: &["alert no-guarantee critical @s1"],
        },
        Case {
            name: "one alert per rule per segment",
            language: "en-US",
            steps: &[A(0, "i guarantee it, i guarantee it, i guarantee it")],
            want: &["alert no-guarantee critical @s1"],
        },
        Case {
            name: "alternatives",
            language: "en-US",
            steps: &[
                A(0, "that's the lowest price"),
                A(9000, "That is the lowest price."),
            ],
            want: &["alert lowest-price info @s1", "alert lowest-price info @s2"],
        },
        Case {
            name: "regex over folded text",
            language: "en-US",
            steps: &[A(0, "the card is 4111-1111-1"), A(9000, "it's 123456789")],
            want: &["alert card-number warning @s2"],
        },
    ]);
}

#[test]
fn proximity() {
    check(&[
        Case {
            name: "a within 2 words of b",
            language: "en-US",
            steps: &[A(0, "it won't cost you more than two hundred")],
            want: &["alert cost-cap warning @s1"],
        },
        Case {
            name: "either order",
            language: "en-US",
            steps: &[A(0, "no more than the costs of parts")],
            want: &["alert cost-cap warning @s1"],
        },
        Case {
            name: "too far apart",
            language: "en-US",
            steps: &[A(0, "the cost is way way way more than that")],
            want: &[],
        },
        Case {
            name: "only one side",
            language: "en-US",
            steps: &[A(0, "it costs a lot"), A(9000, "more than i thought")],
            want: &[],
        },
    ]);
}

#[test]
fn speaker_filter() {
    check(&[
        Case {
            name: "prohibited listens to the agent by default",
            language: "en-US",
            steps: &[C(0, "can you guarantee it")],
            want: &[],
        },
        Case {
            name: "triggers listen to the customer by default",
            language: "en-US",
            steps: &[
                A(0, "you can cancel any time"),
                C(2000, "I want to cancel my appointment"),
            ],
            want: &["card cancel @s2"],
        },
        Case {
            name: "a trigger exclusion",
            language: "en-US",
            steps: &[C(0, "no no i don't want to cancel")],
            want: &[],
        },
        Case {
            name: "speaker any",
            language: "en-US",
            steps: &[
                C(0, "get me a supervisor"),
                A(1000, "my supervisor will call you"),
            ],
            want: &["card supervisor @s1", "card supervisor @s2"],
        },
        Case {
            name: "required items count only when the agent covers them",
            language: "en-US",
            steps: &[
                C(0, "is this call recorded"),
                C(1000, "this call is recorded right"),
            ],
            want: &[],
        },
    ]);
}

#[test]
fn cooldown_and_max_fires() {
    check(&[
        Case {
            name: "cooldown of 10 s between alerts",
            language: "en-US",
            steps: &[
                A(0, "there's no risk"),
                A(5000, "really no risk"),
                A(9999, "it's risk free"),
                A(10000, "risk free i said"),
            ],
            want: &["alert no-risk warning @s1", "alert no-risk warning @s4"],
        },
        Case {
            name: "at most two fires per call",
            language: "en-US",
            steps: &[
                A(0, "that's the lowest price"),
                A(10000, "that's the lowest price"),
                A(20000, "that's the lowest price"),
            ],
            want: &["alert lowest-price info @s1", "alert lowest-price info @s2"],
        },
        Case {
            name: "a card at most once",
            language: "en-US",
            steps: &[C(0, "cancel it"), C(20000, "just cancel")],
            want: &["card cancel @s1"],
        },
    ]);
}

#[test]
fn phrases_split_across_segments() {
    check(&[
        Case {
            name: "caught once, in the second segment",
            language: "en-US",
            steps: &[
                A(0, "well that's the lowest"),
                A(1500, "price you'll find"),
                A(3000, "anywhere in town"),
            ],
            want: &["alert lowest-price info @s2"],
        },
        Case {
            name: "a whole phrase is not caught again in the next segment",
            language: "en-US",
            steps: &[A(0, "that's the lowest price"), A(1500, "okay")],
            want: &["alert lowest-price info @s1"],
        },
        Case {
            name: "the other speaker in between does not break it",
            language: "en-US",
            steps: &[
                A(0, "that's the lowest"),
                C(1000, "uh huh"),
                A(2000, "price around"),
            ],
            want: &["alert lowest-price info @s3"],
        },
        Case {
            name: "not joined across speakers",
            language: "en-US",
            steps: &[A(0, "that's the lowest"), C(1500, "price?")],
            want: &[],
        },
        Case {
            name: "not joined across a long pause",
            language: "en-US",
            steps: &[A(0, "that's the lowest"), A(7000, "price")],
            want: &[],
        },
        Case {
            name: "an exclusion split across segments",
            language: "en-US",
            steps: &[A(0, "i can't"), A(1500, "guarantee that")],
            want: &[],
        },
        Case {
            name: "proximity split across segments",
            language: "en-US",
            steps: &[A(0, "and the cost"), A(1500, "is no more than that")],
            want: &["alert cost-cap warning @s2"],
        },
        Case {
            name: "noise in between keeps the tail",
            language: "en-US",
            steps: &[A(0, "that's the lowest"), A(1500, "..."), A(3000, "price")],
            want: &["alert lowest-price info @s3"],
        },
    ]);
}

#[test]
fn checklist_deadlines_and_call_end() {
    check(&[
        Case {
            name: "completed once, then the others missed at the end in file order",
            language: "en-US",
            steps: &[
                A(0, "hi, this call is recorded"),
                A(2000, "this call may be recorded"),
                End,
            ],
            want: &[
                "done consent @s1",
                "missed say-hello call_ended",
                "missed confirm-address call_ended",
            ],
        },
        Case {
            name: "time deadline on the clock",
            language: "en-US",
            steps: &[
                Clock(30000),
                Clock(30001),
                A(31000, "acme heating, hello"),
                End,
            ],
            want: &[
                "missed say-hello deadline 30000",
                "missed confirm-address call_ended",
                "missed consent call_ended",
            ],
        },
        Case {
            name: "time deadline checked at a segment's start",
            language: "en-US",
            steps: &[A(40000, "acme heating here")],
            want: &["missed say-hello deadline 30000"],
        },
        Case {
            name: "said in time",
            language: "en-US",
            steps: &[A(29000, "thanks for calling acme heating"), Clock(60000)],
            want: &["done say-hello @s1"],
        },
        Case {
            name: "preceded by another rule",
            language: "en-US",
            steps: &[
                A(0, "our price is 89 dollars"),
                A(5000, "let me confirm your address"),
            ],
            want: &["card quote @s1", "missed confirm-address preceded_by quote"],
        },
        Case {
            name: "covered before the other rule",
            language: "en-US",
            steps: &[
                A(0, "let me confirm your address"),
                A(5000, "the price is 89"),
            ],
            want: &["done confirm-address @s1", "card quote @s2"],
        },
        Case {
            name: "in one segment, the spoken order decides",
            language: "en-US",
            steps: &[A(0, "let me confirm the address, and the price is 89")],
            want: &["done confirm-address @s1", "card quote @s1"],
        },
        Case {
            name: "in one segment, price first",
            language: "en-US",
            steps: &[A(0, "the price is 89, let me confirm the address")],
            want: &["card quote @s1", "missed confirm-address preceded_by quote"],
        },
        Case {
            name: "nothing after the end",
            language: "en-US",
            steps: &[End, A(1000, "i guarantee it"), Clock(90000), End],
            want: &[
                "missed say-hello call_ended",
                "missed confirm-address call_ended",
                "missed consent call_ended",
            ],
        },
    ]);
}

#[test]
fn languages_arabic_and_hindi() {
    check(&[
        Case {
            name: "Arabic: a guarantee",
            language: "ar-AE",
            steps: &[A(0, "أضمن لك أن الجهاز سيعمل بدون مشاكل")],
            want: &["alert guarantee-ar warning @s1"],
        },
        Case {
            name: "Arabic: with harakat and tatweel",
            language: "ar-AE",
            steps: &[A(0, "أَضْمَنُ لَكَ ذلك"), A(20000, "بـدون أي مخاطر")],
            want: &[
                "alert guarantee-ar warning @s1",
                "alert guarantee-ar warning @s2",
            ],
        },
        Case {
            name: "Arabic: the exclusion",
            language: "ar",
            steps: &[A(0, "لا أضمن لك النتيجة، لكن الفني سيفحص الجهاز")],
            want: &[],
        },
        Case {
            name: "Arabic rule silent on an English call",
            language: "en-US",
            steps: &[A(0, "أضمن لك أن الجهاز سيعمل")],
            want: &[],
        },
        Case {
            name: "Arabic: recording disclosure, and English-only items are not expected",
            language: "ar-AE",
            steps: &[A(0, "مرحبا، هذه المكالمة مسجلة."), End],
            want: &["done consent @s1", "missed confirm-address call_ended"],
        },
        Case {
            name: "rules without a language filter apply to every call",
            language: "ar-AE",
            steps: &[A(0, "okay i guarantee it")],
            want: &["alert no-guarantee critical @s1"],
        },
        Case {
            name: "Hindi: a guarantee",
            language: "hi-IN",
            steps: &[A(0, "मैं गारंटी देता हूँ कि यह ठीक से चलेगा।")],
            want: &["alert guarantee-hi warning @s1"],
        },
        Case {
            name: "Hindi: the exclusion",
            language: "hi-IN",
            steps: &[A(0, "मैं इसकी गारंटी नहीं दे सकता।")],
            want: &[],
        },
        Case {
            name: "Hindi: recording disclosure split across two segments",
            language: "hi",
            steps: &[A(0, "नमस्ते, यह कॉल रिकॉर्ड"), A(1500, "की जा रही है।")],
            want: &["done consent @s2"],
        },
        Case {
            name: "Hindi rule silent on an Arabic call",
            language: "ar",
            steps: &[A(0, "गारंटी")],
            want: &[],
        },
    ]);
}

#[test]
fn events_carry_rule_ruleset_version_and_texts() {
    let engine = engine("test.yaml", RULESET);
    let events = run(
        &engine,
        "en-US",
        &[A(0, "i guarantee it"), C(1000, "cancel please")],
    );
    assert_eq!(events.len(), 2, "{:?}", render_all(&events));
    let CallEvent::AlertRaised(alert) = &events[0] else {
        panic!("{}", render(&events[0]));
    };
    assert_eq!(alert.rule.rule_id.as_str(), "no-guarantee");
    assert_eq!(alert.rule.ruleset.id.as_str(), "test-rules");
    assert_eq!(alert.rule.ruleset.version, 7);
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.message, "Don't guarantee outcomes.");
    assert_eq!(
        alert.correction.as_deref(),
        Some("Say the technician will confirm on site.")
    );
    assert_eq!(alert.segment_id.as_ref().unwrap().as_str(), "s1");
    let CallEvent::GuidanceCardShown(card) = &events[1] else {
        panic!("{}", render(&events[1]));
    };
    assert_eq!(card.rule.rule_id.as_str(), "cancel");
    assert_eq!(card.title, "Customer wants to cancel");
    assert_eq!(card.body, "Offer to reschedule.");
    assert_eq!(engine.ruleset_ref(), &alert.rule.ruleset);
}

#[test]
fn regexes_on_ascii_and_non_ascii_text_and_by_language() {
    // ASCII text runs the regexes compiled without Unicode classes; other text runs the
    // Unicode set of the regexes whose rules apply to the call's language. Both must agree
    // with the rules' filters.
    let engine = engine(
        "regex.yaml",
        r#"
id: regex-paths
version: 1
rules:
  - id: account-number-en
    kind: prohibited
    languages: [en]
    message: m
    match: { regex: ['\baccount number\b'] }
  - id: account-number-ar
    kind: prohibited
    languages: [ar]
    message: m
    match: { regex: ['\bرقم (?:ال)?حساب\w*'] }
  - id: long-number
    kind: prohibited
    message: m
    match: { regex: ['\b\d{9,}\b'] }
  - id: unicode-class
    kind: prohibited
    message: m
    match: { regex: ['\bpin \p{Nd}{4}\b'] }
"#,
    );
    let table: &[(&str, &str, &[&str])] = &[
        (
            "en-US",
            "your account number is 123456789",
            &["account-number-en", "long-number"],
        ),
        (
            "en-US",
            "account number 123456789 شكرا",
            &["account-number-en", "long-number"],
        ),
        (
            "ar-AE",
            "رقم الحساب ١٢٣٤٥٦٧٨٩",
            &["account-number-ar", "long-number"],
        ),
        (
            "ar-AE",
            "your account number is 123456789",
            &["long-number"],
        ),
        ("ar", "رقم حسابك هو", &["account-number-ar"]),
        ("en", "رقم الحساب", &[]),
        ("en-GB", "my pin 1234", &["unicode-class"]),
        ("hi-IN", "मेरा pin 1234 है", &["unicode-class"]),
    ];
    for (language, text, want) in table {
        let events = run(&engine, language, &[A(0, text)]);
        let got: Vec<String> = events
            .iter()
            .map(|e| render(e).split(' ').nth(1).unwrap_or("").to_owned())
            .collect();
        assert_eq!(&got, want, "{language} {text:?}");
    }
}
