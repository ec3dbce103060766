//! Redaction of arbitrary text under an arbitrary valid policy.
//!
//! Input: a flags byte, optional policy bytes, then UTF-8 text whose lines are the segments
//! of one speaker (`fuzz/seed.sh` writes `\0` + a transcript's lines). Flags: `0x80` strict
//! with `3 + (flags & 0x0f)` digits; `0x40` nine bytes follow, one placeholder per kind from
//! [`PLACEHOLDERS`]; `0x20` two bytes follow, a bit mask of disabled kinds.
//!
//! Asserts what the crate docs promise (crates/redact/src/lib.rs, policy.rs):
//! - spans point at placeholders: sorted, non-empty, non-overlapping, inside the text, each
//!   exactly its kind's placeholder, for `redact` and `redact_next` alike;
//! - only enabled kinds are reported;
//! - `redact` is idempotent: the output redacted again is unchanged and reports nothing;
//! - with every kind enabled, no run of seven or more written digits survives (amounts, times
//!   and dates are exempt by design, so inputs with `$£€.,:` are not checked);
//! - with the strict option, no written run of that many digits survives (inputs that could
//!   hold an amount or a date are not checked).

#![no_main]

use std::collections::BTreeMap;
use std::sync::Mutex;

use domain::event::{PiiKind, Redaction};
use libfuzzer_sys::fuzz_target;
use redact::{ALL_KINDS, Policy, PolicyError, Redacted, Redactor, SpeakerContext};

/// Placeholders, most of them valid; some made of the characters the detectors look at,
/// which the policy must refuse (inputs with a refused policy stop there).
const PLACEHOLDERS: &[&str] = &[
    "[PHONE]",
    "[EMAIL]",
    "[CARD]",
    "[SSN]",
    "[IBAN]",
    "[DOB]",
    "[ADDRESS]",
    "[NAME]",
    "[NUMBER]",
    "<pii>",
    "#",
    "##",
    "*",
    "-",
    "+",
    "(",
    ")",
    ".",
    ",",
    "$",
    "€",
    "'",
    "[",
    "]",
    "«x»",
    "_x_",
    "[[",
    "]]",
    "-x-",
    "(x)",
    "<",
    "/",
    ":",
];

const CURRENCY_WORDS: &[&str] = &[
    "dollar", "buck", "cent", "pound", "euro", "quid", "percent", "grand",
];

fn policy(data: &[u8]) -> Option<(Policy, &[u8])> {
    let (&flags, mut rest) = data.split_first()?;
    let mut policy = Policy::default();
    if flags & 0x80 != 0 {
        policy.strict_min_digits = Some(3 + usize::from(flags & 0x0f));
    }
    if flags & 0x40 != 0 {
        let (bytes, more) = rest.split_at_checked(ALL_KINDS.len())?;
        for (&kind, &b) in ALL_KINDS.iter().zip(bytes) {
            policy
                .placeholders
                .set(kind, PLACEHOLDERS[usize::from(b) % PLACEHOLDERS.len()]);
        }
        rest = more;
    }
    if flags & 0x20 != 0 {
        let (bytes, more) = rest.split_at_checked(2)?;
        let mask = u16::from_le_bytes([bytes[0], bytes[1]]);
        for (i, &kind) in ALL_KINDS.iter().enumerate() {
            if mask & (1 << i) != 0 {
                policy = policy.without(kind);
            }
        }
        rest = more;
    }
    Some((policy, rest))
}

fn check_spans(r: &Redactor, out: &Redacted, input: &str) {
    let chars: Vec<char> = out.text.chars().collect();
    let mut last_end = 0;
    for red in &out.redactions {
        let Redaction { kind, start, end } = *red;
        assert!(start < end, "empty span {red:?} for {input:?}");
        assert!(
            start >= last_end,
            "unsorted or overlapping spans for {input:?}"
        );
        assert!(
            end as usize <= chars.len(),
            "span past the end for {input:?}"
        );
        let got: String = chars[start as usize..end as usize].iter().collect();
        assert_eq!(got, r.policy().placeholders.get(kind), "span of {input:?}");
        assert!(
            r.policy().is_enabled(kind),
            "disabled kind {kind:?} reported"
        );
        last_end = end;
    }
}

/// Maximal runs of ASCII digits.
fn digit_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
}

fn check_no_long_runs(r: &Redactor, input: &str, output: &str) {
    let policy = r.policy();
    if input.contains(['$', '£', '€', '.', ',', ':']) {
        return;
    }
    if policy.disabled.is_empty()
        && let Some(run) = digit_runs(output).find(|d| d.len() >= 7)
    {
        panic!(
            "a run of {} digits survives in {output:?} (input {input:?})",
            run.len()
        );
    }
    if let Some(n) = policy.strict_min_digits
        && policy.is_enabled(PiiKind::Number)
        && !input.contains(['/', '-'])
    {
        let lower = input.to_ascii_lowercase();
        if CURRENCY_WORDS.iter().any(|w| lower.contains(w)) {
            return;
        }
        if let Some(run) = digit_runs(output).find(|d| d.len() >= n) {
            panic!(
                "strict {n}: a run of {} digits survives in {output:?} (input {input:?})",
                run.len()
            );
        }
    }
}

/// Compiled redactors by the input bytes that chose their policy: compiling one per input
/// would cost more than the redaction.
fn redactor(header: &[u8], policy: Policy) -> Option<Redactor> {
    static CACHE: Mutex<BTreeMap<Vec<u8>, Option<Redactor>>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().expect("not poisoned");
    if cache.len() > 1024 {
        cache.clear();
    }
    cache
        .entry(header.to_vec())
        .or_insert_with(|| match Redactor::new(policy) {
            Ok(r) => Some(r),
            // Only placeholders can be invalid here (the strict threshold is at least 3).
            Err(PolicyError::Placeholder { .. }) => None,
            Err(e) => panic!("unexpected policy error {e:?}"),
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((policy, rest)) = policy(data) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Some(r) = redactor(&data[..data.len() - rest.len()], policy) else {
        return;
    };
    let mut ctx = SpeakerContext::new();
    for segment in text.split('\n') {
        let out = r.redact(segment);
        check_spans(&r, &out, segment);
        check_no_long_runs(&r, segment, &out.text);
        let again = r.redact(&out.text);
        assert_eq!(again.text, out.text, "not idempotent on {segment:?}");
        assert!(
            again.redactions.is_empty(),
            "second pass over {:?} reported {:?}",
            out.text,
            again.redactions
        );

        let next = r.redact_next(&mut ctx, segment);
        check_spans(&r, &next, segment);
        check_no_long_runs(&r, segment, &next.text);
    }
});
