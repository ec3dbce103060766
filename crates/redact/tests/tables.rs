//! Data-driven tables: every written and spoken form that must be redacted, and the
//! everyday numbers, times, prices and dates that must come out untouched.

use domain::event::PiiKind::{self, *};
use redact::{Policy, PolicyError, Redacted, Redactor};

fn redactor() -> Redactor {
    Redactor::new(Policy::default()).expect("the default policy is valid")
}

/// Every span is exactly a placeholder of its kind, checked in chars.
fn assert_spans(r: &Redactor, out: &Redacted) {
    let chars: Vec<char> = out.text.chars().collect();
    for red in &out.redactions {
        let got: String = chars[red.start as usize..red.end as usize].iter().collect();
        assert_eq!(
            got,
            r.policy().placeholders.get(red.kind),
            "span in {:?}",
            out.text
        );
    }
}

fn check(r: &Redactor, input: &str, want: &str, kinds: &[PiiKind]) {
    let out = r.redact(input);
    assert_eq!(out.text, want, "input: {input:?}");
    let got: Vec<PiiKind> = out.redactions.iter().map(|x| x.kind).collect();
    assert_eq!(got, kinds, "kinds for input: {input:?}");
    assert_spans(r, &out);
}

const POSITIVES: &[(&str, &str, &[PiiKind])] = &[
    // Written phone numbers.
    (
        "call me on 415-555-0132 please",
        "call me on [PHONE] please",
        &[Phone],
    ),
    ("it's (415) 555-0132", "it's [PHONE]", &[Phone]),
    (
        "the office is +44 20 7946 0958",
        "the office is [PHONE]",
        &[Phone],
    ),
    ("dial 1 800 555 0199 now", "dial [PHONE] now", &[Phone]),
    ("reach me at 415.555.0132", "reach me at [PHONE]", &[Phone]),
    ("4155550132", "[PHONE]", &[Phone]),
    // Spoken phone numbers.
    (
        "four one five five five five zero one three two",
        "[PHONE]",
        &[Phone],
    ),
    (
        "yeah it's four one five five five five oh one three two okay",
        "yeah it's [PHONE] okay",
        &[Phone],
    ),
    (
        "four one five double five five oh one three two",
        "[PHONE]",
        &[Phone],
    ),
    (
        "triple seven four five six one two one two",
        "[PHONE]",
        &[Phone],
    ),
    ("four one five 555 oh one three two", "[PHONE]", &[Phone]),
    (
        "four one five five five five oh one thirty two",
        "[PHONE]",
        &[Phone],
    ),
    (
        "one eight hundred five five five oh one nine nine",
        "[PHONE]",
        &[Phone],
    ),
    (
        "four one five uh five five five um oh one three two",
        "[PHONE]",
        &[Phone],
    ),
    (
        "my phone number is two four five",
        "my phone number is [PHONE]",
        &[Phone],
    ),
    (
        "call me at five five five one two one two",
        "call me at [PHONE]",
        &[Phone],
    ),
    // E-mail, written and spelled.
    (
        "send it to john.smith@gmail.com thanks",
        "send it to [EMAIL] thanks",
        &[Email],
    ),
    (
        "it's john dot smith at gmail dot com",
        "it's [EMAIL]",
        &[Email],
    ),
    (
        "john underscore smith at gmail dot com",
        "[EMAIL]",
        &[Email],
    ),
    (
        "my email is j smith eighty five at yahoo dot co dot uk",
        "my email is j smith [EMAIL]",
        &[Email],
    ),
    ("it's mary at hotmail", "it's [EMAIL]", &[Email]),
    // Payment cards: Luhn-checked, 13-19 digits, spaces or dashes, or read in blocks.
    ("4111 1111 1111 1111", "[CARD]", &[Card]),
    (
        "card is 4111-1111-1111-1111 exp",
        "card is [CARD] exp",
        &[Card],
    ),
    (
        "the amex is 3782 822463 10005",
        "the amex is [CARD]",
        &[Card],
    ),
    (
        "four one one one one one one one one one one one one one one one",
        "[CARD]",
        &[Card],
    ),
    (
        "it's four one one one one one one one one one one one one one one one thanks",
        "it's [CARD] thanks",
        &[Card],
    ),
    (
        "my card number is four one one one",
        "my card number is [CARD]",
        &[Card],
    ),
    (
        "the security code is one two three",
        "the security code is [CARD]",
        &[Card],
    ),
    // SSN.
    ("it's 078-05-1120", "it's [SSN]", &[Ssn]),
    (
        "my social is oh seven eight oh five one one two oh",
        "my social is [SSN]",
        &[Ssn],
    ),
    (
        "last four of my social are one two three four",
        "last four of my social are [SSN]",
        &[Ssn],
    ),
    // IBAN, with its mod-97 checksum.
    (
        "my iban is GB82 WEST 1234 5698 7654 32 okay",
        "my iban is [IBAN] okay",
        &[Iban],
    ),
    ("iban de89370400440532013000", "iban [IBAN]", &[Iban]),
    // Dates of birth, only with a cue.
    (
        "my date of birth is 03/14/1985",
        "my date of birth is [DOB]",
        &[Dob],
    ),
    (
        "i was born on march fourteenth nineteen eighty five",
        "i was born on [DOB]",
        &[Dob],
    ),
    (
        "date of birth is the fourteenth of march nineteen eighty five",
        "date of birth is the [DOB]",
        &[Dob],
    ),
    ("born in 1985", "born in [DOB]", &[Dob]),
    ("my birthday is june 3rd", "my birthday is [DOB]", &[Dob]),
    ("dob oh three one four eight five", "dob [DOB]", &[Dob]),
    // Generic cues: the kind comes from the shape, else Number.
    (
        "and the zip is seven eight six five four",
        "and the zip is [NUMBER]",
        &[Number],
    ),
    (
        "account number one two three four five six seven eight",
        "account number [PHONE]",
        &[Phone],
    ),
    ("my pin is 4321", "my pin is [NUMBER]", &[Number]),
    ("my pin is oh oh oh oh", "my pin is [NUMBER]", &[Number]),
    // Several values in one segment.
    (
        "phone 415 555 0132 and email mary at gmail dot com",
        "phone [PHONE] and email [EMAIL]",
        &[Phone, Email],
    ),
    // Non-ASCII text around a value: spans are in chars, not bytes.
    ("رقمي 415 555 0132 😀", "رقمي [PHONE] 😀", &[Phone]),
];

#[test]
fn positives_are_redacted() {
    let r = redactor();
    for (input, want, kinds) in POSITIVES {
        check(&r, input, want, kinds);
    }
}

const NEGATIVES: &[&str] = &[
    "i'll call you at five thirty",
    "around 2:30 if that works",
    "between nine and eleven",
    "the branch hours are nine thirty a m to five o'clock p m",
    "that's ninety nine dollars",
    "it was $129",
    "about a hundred and fifty bucks",
    "maybe one or two",
    "we need two units",
    "it has three bedrooms",
    "the appointment is on the fourteenth",
    "next tuesday the 3rd",
    "march 5th works",
    "i've been a customer since 2019",
    "the balance is 1,250.00",
    "i'll take this one",
    "oh okay",
    "oh no",
    "oh",
    "oh oh",
    "one moment please",
    "twenty five hundred dollars in there",
    "eight forty five a m",
    "a hundred and one dollar",
    "three to five business days",
    "i was born and raised here",
    "meet me at the branch at nine",
    "i lost my debit card two weeks ago",
    "it's 2024-03-14 today",
    "on 03/14/2024 we spoke",
    "room 415",
    "the twenty twenty one model",
    "we're open seven days a week",
    "call me back at five",
    "double check that please",
    "",
    "   ",
];

#[test]
fn negatives_survive_the_default_policy() {
    let r = redactor();
    for input in NEGATIVES {
        let out = r.redact(input);
        assert_eq!(out.text, *input);
        assert!(out.redactions.is_empty(), "{input:?}");
    }
}

#[test]
fn strict_policy_redacts_shorter_runs_as_number_but_not_quantities() {
    let r = Redactor::new(Policy::strict(4)).expect("valid");
    check(&r, "since 2019", "since [NUMBER]", &[Number]);
    check(&r, "it's four five six seven", "it's [NUMBER]", &[Number]);
    check(&r, "room 415", "room 415", &[]);
    check(&r, "4155550132", "[PHONE]", &[Phone]);
    for input in [
        "at five thirty",
        "ninety nine dollars",
        "one or two",
        "the balance is 1,250.00",
        "it was $1299",
        "around 2:30",
    ] {
        check(&r, input, input, &[]);
    }
    let r3 = Redactor::new(Policy::strict(3)).expect("valid");
    check(&r3, "room 415", "room [NUMBER]", &[Number]);
}

#[test]
fn placeholders_and_kinds_are_configurable() {
    let policy = Policy::default()
        .with_placeholder(Phone, "<phone>")
        .without(Email);
    let r = Redactor::new(policy).expect("valid");
    check(&r, "415 555 0132", "<phone>", &[Phone]);
    check(&r, "john at gmail dot com", "john at gmail dot com", &[]);

    // A disabled kind still falls to the strict threshold.
    let r = Redactor::new(Policy::strict(5).without(Phone)).expect("valid");
    check(&r, "415 555 0132", "[NUMBER]", &[Number]);
}

#[test]
fn invalid_policies_are_rejected_without_echoing_anything_but_settings() {
    for bad in ["", "PHONE", "[PHONE 1]", "[a b]", "[x@y]", "x]"] {
        let err = Redactor::new(Policy::default().with_placeholder(Phone, bad))
            .expect_err("invalid placeholder");
        assert!(
            matches!(err, PolicyError::Placeholder { kind: Phone, .. }),
            "{bad:?}"
        );
    }
    assert_eq!(
        Redactor::new(Policy::strict(2)).expect_err("too small"),
        PolicyError::StrictTooSmall(2)
    );
}

#[test]
fn policy_round_trips_through_json_and_fills_defaults() {
    let p: Policy = serde_json::from_str(r#"{"strict_min_digits": 6}"#).expect("valid json");
    assert_eq!(p, Policy::strict(6));
    let json = serde_json::to_string(&Policy::default().without(Dob)).expect("serialises");
    assert!(json.contains(r#""disabled":["dob"]"#), "{json}");
}

#[test]
fn redacting_twice_changes_nothing_on_inputs_that_once_broke_it() {
    let r = redactor();
    for input in [
        // A cue glued to the token before it, which a placeholder replaces.
        "call me at 415call me at march 415 ",
        // A cue hidden inside a longer cue that fails its word boundary.
        "john.smith@gmail.comphone number 415 ",
    ] {
        let first = r.redact(input);
        let second = r.redact(&first.text);
        assert_eq!(second.text, first.text, "{input:?}");
        assert!(second.redactions.is_empty(), "{input:?}");
    }
}

#[test]
fn redactor_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Redactor>();
}

#[test]
fn debug_output_never_contains_the_input() {
    let r = redactor();
    let secret = "4111 1111 1111 1111 and john.smith@gmail.com";
    let out = r.redact(secret);
    for shown in [format!("{r:?}"), format!("{out:?}")] {
        assert!(!shown.contains("4111"), "{shown}");
        assert!(!shown.contains("john"), "{shown}");
    }
}
