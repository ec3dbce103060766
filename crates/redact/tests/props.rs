//! Property tests: no card survives, redaction is idempotent, nothing panics, spans point at
//! placeholders.
//!
//! Idempotence, as decided: redacting the output again returns the same text and reports
//! no redactions at all (placeholders already in the text are recognised and skipped, not
//! re-reported).

use proptest::prelude::*;
use redact::{Policy, Redacted, Redactor, SpeakerContext};

const WORDS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

fn default_redactor() -> Redactor {
    Redactor::new(Policy::default()).expect("valid")
}

fn luhn_check_digit(body: &[u8]) -> u8 {
    // The check digit is the one that makes the full number pass; body digits are doubled
    // from the right starting with the last body digit.
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    u8::try_from((10 - sum % 10) % 10).expect("a digit")
}

fn luhn_valid(d: &[u8]) -> bool {
    d.len() > 1 && luhn_check_digit(&d[..d.len() - 1]) == d[d.len() - 1]
}

prop_compose! {
    fn card()(len in 13usize..=19, first in 1u8..=9, seed in prop::collection::vec(0u8..=9, 18)) -> Vec<u8> {
        let mut body = vec![first];
        body.extend_from_slice(&seed[..len - 2]);
        let check = luhn_check_digit(&body);
        body.push(check);
        body
    }
}

/// The card written with a separator between groups of 3–5 digits.
fn written(card: &[u8], groups: &[usize], sep: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut g = 0;
    while i < card.len() {
        let n = groups[g % groups.len()].min(card.len() - i);
        if i > 0 {
            out.push_str(sep);
        }
        for d in &card[i..i + n] {
            out.push(char::from(b'0' + d));
        }
        i += n;
        g += 1;
    }
    out
}

/// The card read out: digit words, "oh"/"o" for zero, "double X" for a repeated digit,
/// written blocks mixed in, hesitations between some digits.
fn spoken(card: &[u8], style: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < card.len() {
        let s = style[i % style.len()];
        let d = card[i];
        if s == 0 && i + 1 < card.len() && card[i + 1] == d {
            parts.push(format!("double {}", WORDS[usize::from(d)]));
            i += 2;
            continue;
        }
        if s == 1 && i + 3 <= card.len() {
            parts.push(
                card[i..i + 3]
                    .iter()
                    .map(|d| char::from(b'0' + d))
                    .collect(),
            );
            i += 3;
            continue;
        }
        let word = match (d, s) {
            (0, 2) => "oh",
            (0, 3) => "o",
            _ => WORDS[usize::from(d)],
        };
        parts.push(word.to_owned());
        if s == 4 {
            parts.push("uh".to_owned());
        }
        i += 1;
    }
    parts.join(" ")
}

const FILLER: &[&str] = &[
    "okay", "my", "card", "number", "is", "the", "and", "uh", "thanks", "so", "yes", "it's",
    "dollars", "at", "phone", "please", "i", "think", "right", "born", "social", "zip", "[noise]",
    "hmm", "one", "two", "oh", "march", "gmail", "dot", "com", "twenty",
];

fn filler() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FILLER), 0..6).prop_map(|w| w.join(" "))
}

/// Digit sequences of `text` as an independent, naive reader sees them: digit words, "oh",
/// "o", "double"/"triple" X and written digits, broken by anything else.
fn digit_runs(text: &str) -> Vec<Vec<u8>> {
    let mut runs = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut repeat = 1;
    for tok in text.split(|c: char| c.is_whitespace() || c == '-' || c == ',') {
        if tok.is_empty() {
            continue;
        }
        let digit = match tok {
            "oh" | "o" => Some(vec![0]),
            w if WORDS.contains(&w) => WORDS.iter().position(|x| *x == w).map(|p| vec![p as u8]),
            w if w.bytes().all(|b| b.is_ascii_digit()) => {
                Some(w.bytes().map(|b| b - b'0').collect())
            }
            _ => None,
        };
        match (tok, digit) {
            ("double", _) => repeat = 2,
            ("triple", _) => repeat = 3,
            ("uh" | "[noise]", _) => {}
            (_, Some(ds)) => {
                for _ in 0..repeat {
                    cur.extend_from_slice(&ds);
                }
                repeat = 1;
            }
            (_, None) => {
                repeat = 1;
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Sorted, non-overlapping, non-empty spans, each exactly its kind's placeholder.
fn assert_spans_point_at_placeholders(r: &Redactor, out: &Redacted) -> Result<(), TestCaseError> {
    let chars: Vec<char> = out.text.chars().collect();
    let mut last_end = 0;
    for red in &out.redactions {
        prop_assert!(red.start < red.end, "empty span");
        prop_assert!(red.start >= last_end, "overlapping or unsorted spans");
        prop_assert!((red.end as usize) <= chars.len(), "span past the end");
        let got: String = chars[red.start as usize..red.end as usize].iter().collect();
        prop_assert_eq!(got.as_str(), r.policy().placeholders.get(red.kind));
        last_end = red.end;
    }
    Ok(())
}

/// The reader must see the card in the input, or the property below would hold vacuously.
fn assert_card_readable(card: &[u8], text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        digit_runs(text).iter().any(|run| contains(run, card)),
        "generator or reader broken: no card in {:?}",
        text
    );
    Ok(())
}

fn assert_no_card_survives(card: &[u8], text: &str) -> Result<(), TestCaseError> {
    for run in digit_runs(text) {
        prop_assert!(
            !contains(&run, card),
            "the card's digits survive in {:?}",
            text
        );
        for len in 13..=19 {
            for w in run.windows(len) {
                prop_assert!(!luhn_valid(w), "a Luhn-valid run survives in {:?}", text);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_written_card_survives(
        card in card(),
        groups in prop::collection::vec(3usize..=5, 1..4),
        sep in prop::sample::select(&[" ", "-", "", " - "][..]),
        before in filler(),
        after in filler(),
    ) {
        let r = default_redactor();
        let text = format!("{before} {} {after}", written(&card, &groups, sep));
        assert_card_readable(&card, &text)?;
        let out = r.redact(&text);
        assert_no_card_survives(&card, &out.text)?;
        assert_spans_point_at_placeholders(&r, &out)?;
    }

    #[test]
    fn no_spoken_card_survives(
        card in card(),
        style in prop::collection::vec(0u8..=7, 1..8),
        before in filler(),
        after in filler(),
    ) {
        let r = default_redactor();
        let text = format!("{before} {} {after}", spoken(&card, &style));
        assert_card_readable(&card, &text)?;
        let out = r.redact(&text);
        assert_no_card_survives(&card, &out.text)?;
        assert_spans_point_at_placeholders(&r, &out)?;
    }

    #[test]
    fn no_card_survives_when_split_across_two_segments(
        card in card(),
        style in prop::collection::vec(0u8..=7, 1..8),
        cut in 5usize..=10,
        before in filler(),
    ) {
        // The split falls inside the number, so the first part ends its segment. Five
        // digits or more at the end of a segment are redacted pre-emptively whatever the
        // words before them, so neither half may survive on its own.
        let r = default_redactor();
        let mut ctx = SpeakerContext::new();
        let one = format!("{before} {}", spoken(&card[..cut], &style));
        let two = spoken(&card[cut..], &style);
        assert_card_readable(&card, &format!("{one} {two}"))?;
        let first = r.redact_next(&mut ctx, &one);
        let second = r.redact_next(&mut ctx, &two);
        for (half, out) in [(&card[..cut], &first.text), (&card[cut..], &second.text)] {
            for run in digit_runs(out) {
                prop_assert!(!contains(&run, half), "part of the card survives in {:?}", out);
            }
        }
        assert_no_card_survives(&card, &format!("{} {}", first.text, second.text))?;
    }
}

const PIECES: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "oh",
    "o",
    "double",
    "triple",
    "twenty",
    "fifteen",
    "hundred",
    "thirty",
    "eleven",
    "415",
    "555",
    "0132",
    "4111",
    "1111",
    "2019",
    "12",
    "7",
    "phone number",
    "my card number is",
    "social",
    "born on",
    "date of birth",
    "zip",
    "at",
    "gmail",
    "dot",
    "com",
    "john",
    "underscore",
    "dollars",
    "$5",
    "$129",
    "2:30",
    "03/14/1985",
    "1,250.00",
    "GB82 WEST 1234 5698 7654 32",
    "john.smith@gmail.com",
    "march",
    "fourteenth",
    "nineteen",
    "eighty",
    "the",
    "of",
    "in",
    "uh",
    "[noise]",
    "[PHONE]",
    "[NUMBER]",
    "(",
    ")",
    "+",
    "-",
    ",",
    ".",
    "and",
    "is",
    "a",
    "call me at",
    "number",
    "بطاقة",
    "संख्या",
    "😀",
];

fn piecewise() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(PIECES),
            prop::sample::select(&[" ", " ", " ", "", "-", ", "][..]),
        ),
        0..24,
    )
    .prop_map(|v| v.into_iter().map(|(p, s)| format!("{p}{s}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn redaction_is_idempotent(text in piecewise(), strict in prop::option::of(3usize..8)) {
        let policy = strict.map_or_else(Policy::default, Policy::strict);
        let r = Redactor::new(policy).expect("valid");
        let first = r.redact(&text);
        let second = r.redact(&first.text);
        prop_assert_eq!(&second.text, &first.text, "input {:?}", text);
        prop_assert!(second.redactions.is_empty(), "second pass reported {:?}", second.redactions);
        assert_spans_point_at_placeholders(&r, &first)?;
    }

    #[test]
    fn never_panics_and_spans_hold_on_arbitrary_unicode(text in any::<String>()) {
        let r = default_redactor();
        let out = r.redact(&text);
        assert_spans_point_at_placeholders(&r, &out)?;
        let mut ctx = SpeakerContext::new();
        let out = r.redact_next(&mut ctx, &text);
        assert_spans_point_at_placeholders(&r, &out)?;
    }

    #[test]
    fn never_panics_on_mixed_scripts_and_pii(
        parts in prop::collection::vec(
            prop_oneof![
                "[\\u{0600}-\\u{06FF} ]{0,12}",
                "[\\u{0900}-\\u{097F} ]{0,12}",
                "[\\u{1F300}-\\u{1F6FF} ]{0,6}",
                "[0-9 ()+\\-.,/:@$]{0,12}",
                piecewise(),
            ],
            0..6,
        ),
    ) {
        let text: String = parts.concat();
        let r = Redactor::new(Policy::strict(3)).expect("valid");
        let out = r.redact(&text);
        assert_spans_point_at_placeholders(&r, &out)?;
        let mut ctx = SpeakerContext::new();
        for piece in &parts {
            let out = r.redact_next(&mut ctx, piece);
            assert_spans_point_at_placeholders(&r, &out)?;
        }
    }
}
