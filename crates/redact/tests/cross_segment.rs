//! Numbers split over consecutive segments of one speaker.

use domain::event::PiiKind::{self, *};
use redact::{Policy, Redactor, SpeakerContext};

fn redactor() -> Redactor {
    Redactor::new(Policy::default()).expect("the default policy is valid")
}

/// Runs `segments` through one context; returns (text, kinds) per segment.
fn run(r: &Redactor, ctx: &mut SpeakerContext, segments: &[&str]) -> Vec<(String, Vec<PiiKind>)> {
    segments
        .iter()
        .map(|s| {
            let out = r.redact_next(ctx, s);
            (out.text, out.redactions.iter().map(|x| x.kind).collect())
        })
        .collect()
}

fn texts(out: &[(String, Vec<PiiKind>)]) -> Vec<&str> {
    out.iter().map(|(t, _)| t.as_str()).collect()
}

#[test]
fn phone_split_after_a_cue() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    let out = run(
        &r,
        &mut ctx,
        &[
            "my phone number is two four five",
            "four nine six",
            "nine eight six three",
        ],
    );
    assert_eq!(
        texts(&out),
        ["my phone number is [PHONE]", "[PHONE]", "[PHONE]"]
    );
    assert!(out.iter().all(|(_, k)| k == &[Phone]));
}

#[test]
fn phone_split_without_a_cue_is_redacted_pre_emptively_then_classified_by_combined_length() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    let out = run(
        &r,
        &mut ctx,
        &[
            "it's one four two",
            "six four one",
            "nine eight",
            "four two",
        ],
    );
    assert_eq!(
        texts(&out),
        ["it's [NUMBER]", "[NUMBER]", "[PHONE]", "[PHONE]"]
    );
    // Without the context, the pieces are short runs and stay in the clear: this is what
    // the context is for.
    assert_eq!(r.redact("six four one").text, "six four one");
    assert_eq!(r.redact("nine eight").text, "nine eight");
}

#[test]
fn written_phone_split_in_two() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    let out = run(&r, &mut ctx, &["call me on 415 555", "0132 thanks"]);
    assert_eq!(texts(&out), ["call me on [PHONE]", "[PHONE] thanks"]);
}

#[test]
fn card_read_in_blocks_of_four_across_segments() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    let out = run(
        &r,
        &mut ctx,
        &[
            "sure the card number is four one one one",
            "one one one one",
            "uh one one one one",
            "one one one one and that's it",
        ],
    );
    assert_eq!(
        texts(&out),
        [
            "sure the card number is [CARD]",
            "[CARD]",
            "uh [CARD]",
            "[CARD] and that's it"
        ]
    );
    assert!(out.iter().all(|(_, k)| k == &[Card]));
    assert!(ctx.is_idle());
}

#[test]
fn card_without_a_cue_becomes_a_card_by_combined_length() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    let out = run(
        &r,
        &mut ctx,
        &[
            "okay it's four one one one one one one one",
            "one one one one one one one one",
        ],
    );
    assert_eq!(texts(&out), ["okay it's [PHONE]", "[CARD]"]);
    assert_eq!(out[1].1, [Card]);
}

#[test]
fn a_cue_at_the_end_of_a_segment_carries_into_the_next() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    let out = run(
        &r,
        &mut ctx,
        &["my card number is", "four one one one and the rest later"],
    );
    assert_eq!(
        texts(&out),
        ["my card number is", "[CARD] and the rest later"]
    );
    let mut ctx = SpeakerContext::new();
    let out = run(
        &r,
        &mut ctx,
        &[
            "my date of birth is",
            "march fourteenth nineteen eighty five",
        ],
    );
    assert_eq!(texts(&out)[1], "[DOB]");
}

#[test]
fn noise_segments_and_the_other_speaker_do_not_break_the_number() {
    let r = redactor();
    let mut caller = SpeakerContext::new();
    let mut agent = SpeakerContext::new();
    assert_eq!(
        r.redact_next(&mut caller, "my number is four one five")
            .text,
        "my number is [NUMBER]"
    );
    assert_eq!(r.redact_next(&mut agent, "okay go on").text, "okay go on");
    assert_eq!(r.redact_next(&mut caller, "[noise]").text, "[noise]");
    assert_eq!(r.redact_next(&mut caller, "").text, "");
    let out = r.redact_next(&mut caller, "five five five oh one three two");
    assert_eq!(out.text, "[PHONE]");
}

#[test]
fn state_is_dropped_when_the_next_segment_starts_with_words() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    assert_eq!(
        r.redact_next(&mut ctx, "it's one four two").text,
        "it's [NUMBER]"
    );
    assert!(!ctx.is_idle());
    assert_eq!(
        r.redact_next(&mut ctx, "no wait two units").text,
        "no wait two units"
    );
    assert!(ctx.is_idle());
    // A quantity at the end of a segment is not a read-out and is not pre-empted.
    assert_eq!(r.redact_next(&mut ctx, "since 2019").text, "since 2019");
    assert_eq!(
        r.redact_next(&mut ctx, "at five thirty").text,
        "at five thirty"
    );
    // A cue followed by one digit is a time or a count far more often than a number.
    assert_eq!(
        r.redact_next(&mut ctx, "call me back at five").text,
        "call me back at five"
    );
}

#[test]
fn context_is_plain_replayable_data_without_digits() {
    let r = redactor();
    let mut ctx = SpeakerContext::new();
    r.redact_next(&mut ctx, "my card number is four one one seven");
    let json = serde_json::to_string(&ctx).expect("serialises");
    let shown = format!("{ctx:?}");
    for s in [&json, &shown] {
        assert!(!s.contains("4117") && !s.contains("four"), "{s}");
    }
    let mut replay: SpeakerContext = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(replay, ctx);
    let mut clone = ctx.clone();
    let next = "one one one one";
    assert_eq!(
        r.redact_next(&mut replay, next),
        r.redact_next(&mut clone, next)
    );
    assert_eq!(replay.pending(), Some(Card));
    replay.reset();
    assert!(replay.is_idle());
}
