//! Inputs found by `cargo fuzz run redact` (docs/fuzzing.md), each with the behaviour it must
//! keep.

use domain::event::PiiKind;
use redact::{Policy, Redactor};

/// Redacting the output again changes nothing and reports nothing (the crate's idempotence
/// invariant).
fn assert_idempotent(r: &Redactor, input: &str) -> String {
    let first = r.redact(input);
    let second = r.redact(&first.text);
    assert_eq!(second.text, first.text, "input {input:?}");
    assert!(second.redactions.is_empty(), "{:?}", second.redactions);
    first.text
}

/// A written IBAN glued to a number before it ("…0132GB63 WEST…") is not an IBAN on the first
/// pass (no word boundary), but was on the second, once the number had become a placeholder
/// (`[PHONE]GB63 WEST…`), so redacting twice redacted more.
#[test]
fn an_iban_glued_to_a_redacted_number_stays_as_it_was() {
    let r = Redactor::new(Policy::default()).unwrap();
    let text = assert_idempotent(&r, "call 4155550132GB63 WEST 12AB 34CD 56 thanks");
    assert_eq!(text, "call [PHONE]GB63 WEST 12AB 34CD 56 thanks");
    // Not glued, the same IBAN is one.
    assert_eq!(
        r.redact("call 4155550132 GB63 WEST 12AB 34CD 56 thanks")
            .text,
        "call [PHONE] [IBAN] thanks"
    );
}

/// The input as the fuzzer found it: flags 0xe0 (strict 3, custom placeholders, disabled
/// kinds), the placeholder bytes 01 02 03 04 05 28 38 39 09 and the mask 0x0100 (Number
/// disabled, so the 20 digits after the IBAN's letters stay), then the text.
#[test]
fn fuzz_input_with_custom_placeholders() {
    let mut policy = Policy::strict(3)
        .with_placeholder(PiiKind::Phone, "[EMAIL]")
        .with_placeholder(PiiKind::Email, "[CARD]")
        .with_placeholder(PiiKind::Card, "[SSN]")
        .with_placeholder(PiiKind::Ssn, "[IBAN]")
        .with_placeholder(PiiKind::Iban, "[DOB]")
        .with_placeholder(PiiKind::Dob, "[NUMBER]")
        .with_placeholder(PiiKind::Address, "«x»")
        .with_placeholder(PiiKind::Name, "_x_")
        .with_placeholder(PiiKind::Number, "<pii>");
    policy = policy.without(PiiKind::Number);
    let r = Redactor::new(policy).unwrap();
    let text = assert_idempotent(
        &r,
        "(425) 555-0132 or@11 1111 11GB82 WEST 1234 5698 7608 3211 1111, social 078-05-1120",
    );
    assert_eq!(
        text,
        "[EMAIL] or@[EMAIL]GB82 WEST 1234 5698 7608 3211 1111, social [IBAN]"
    );
}
