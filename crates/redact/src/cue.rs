//! Cue phrases: words that announce what the next number is ("my phone number is …").
//!
//! A cue changes two things: a digit run that follows it closely is redacted whatever its
//! length (three digits after "my card number is" are part of a card), and it names the
//! kind. Dates are redacted only after a date-of-birth cue, which is what keeps "on the
//! fourteenth" or "since 2019" in the clear.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use serde::{Deserialize, Serialize};

/// What a cue announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Cue {
    Phone,
    Card,
    Ssn,
    Dob,
    /// A number of some other kind (account, zip, PIN …): redacted, but by its shape or as
    /// [`PiiKind::Number`](domain::event::PiiKind::Number).
    Generic,
}

/// How many words may separate a cue from the value it announces ("my phone number is uh
/// it's …"). Fillers are not counted.
pub(crate) const WINDOW: u8 = 4;

/// A longer window for dates: "my date of birth is the fourteenth of …" puts more words
/// between the cue and the first token of the date, and a date still has to parse.
pub(crate) const DOB_WINDOW: u8 = 6;

const CUES: &[(&str, Cue)] = &[
    ("phone", Cue::Phone),
    ("phone number", Cue::Phone),
    ("telephone", Cue::Phone),
    ("cell", Cue::Phone),
    ("cell phone", Cue::Phone),
    ("mobile", Cue::Phone),
    ("mobile number", Cue::Phone),
    ("call me at", Cue::Phone),
    ("call me on", Cue::Phone),
    ("call me back at", Cue::Phone),
    ("reach me at", Cue::Phone),
    ("text me at", Cue::Phone),
    ("callback number", Cue::Phone),
    ("call back number", Cue::Phone),
    ("contact number", Cue::Phone),
    ("fax", Cue::Phone),
    ("card", Cue::Card),
    ("card number", Cue::Card),
    ("credit card", Cue::Card),
    ("debit card", Cue::Card),
    ("visa", Cue::Card),
    ("mastercard", Cue::Card),
    ("amex", Cue::Card),
    ("american express", Cue::Card),
    ("security code", Cue::Card),
    ("cvv", Cue::Card),
    ("cvc", Cue::Card),
    ("expiration date", Cue::Card),
    ("expiry date", Cue::Card),
    ("social", Cue::Ssn),
    ("social security", Cue::Ssn),
    ("social security number", Cue::Ssn),
    ("ssn", Cue::Ssn),
    ("s s n", Cue::Ssn),
    ("date of birth", Cue::Dob),
    ("birth date", Cue::Dob),
    ("birthdate", Cue::Dob),
    ("birthday", Cue::Dob),
    ("born", Cue::Dob),
    ("dob", Cue::Dob),
    ("d o b", Cue::Dob),
    ("number", Cue::Generic),
    ("account", Cue::Generic),
    ("account number", Cue::Generic),
    ("routing number", Cue::Generic),
    ("member number", Cue::Generic),
    ("member id", Cue::Generic),
    ("customer id", Cue::Generic),
    ("policy number", Cue::Generic),
    ("reference number", Cue::Generic),
    ("confirmation number", Cue::Generic),
    ("pin", Cue::Generic),
    ("passcode", Cue::Generic),
    ("zip", Cue::Generic),
    ("zip code", Cue::Generic),
    ("postal code", Cue::Generic),
    ("postcode", Cue::Generic),
    ("passport", Cue::Generic),
    ("license number", Cue::Generic),
    ("licence number", Cue::Generic),
    ("tax id", Cue::Generic),
    ("verification code", Cue::Generic),
];

static MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(CUES.iter().map(|(p, _)| p))
        .expect("the cue table is a fixed, valid pattern set")
});

pub(crate) fn warm_up() {
    LazyLock::force(&MATCHER);
}

/// Cue matches in `text` that sit on word boundaries and that `accept` maps to a value, as
/// those values, in order.
///
/// A placeholder (`placeholders`: sorted, non-overlapping byte ranges) is no boundary either:
/// it stands for a value that was glued to the cue ("4155550132debit card" became
/// "[PHONE]debit card"), and the second pass must find the cues the first one did.
///
/// `accept` gets each match as (byte start, byte end, cue) and refuses it with `None` (the
/// caller's own checks: the match lies over an e-mail address, or is glued to a token).
pub(crate) fn find<T>(
    text: &str,
    placeholders: &[(usize, usize)],
    mut accept: impl FnMut(usize, usize, Cue) -> Option<T>,
    out: &mut Vec<T>,
) {
    let is_word = |c: char| c.is_alphanumeric();
    let placeholder_ends_at =
        |at: usize| placeholders.binary_search_by_key(&at, |&(_, e)| e).is_ok();
    let placeholder_starts_at =
        |at: usize| placeholders.binary_search_by_key(&at, |&(s, _)| s).is_ok();
    let mut pos = 0;
    while let Some(m) = MATCHER.find(Input::new(text).range(pos..)) {
        let before_ok = !(text[..m.start()].chars().next_back().is_some_and(is_word)
            || placeholder_ends_at(m.start()));
        let after_ok = !(text[m.end()..].chars().next().is_some_and(is_word)
            || placeholder_starts_at(m.end()));
        let accepted = (before_ok && after_ok)
            .then(|| accept(m.start(), m.end(), CUES[m.pattern().as_usize()].1))
            .flatten();
        if let Some(value) = accepted {
            out.push(value);
            pos = m.end();
        } else {
            // A refused match ("phone number" inside "comphone number", or whose "phone"
            // ends an e-mail address) must not hide a shorter cue inside it ("number"):
            // resume right after its first character instead of after the whole match. The
            // second pass, where the address is a placeholder, finds that shorter cue too.
            pos = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_cue_wins_and_boundaries_are_respected() {
        let mut out = Vec::new();
        let all = |s, e, c| Some((s, e, c));
        find(
            "my Social Security Number is … phones cardinal card",
            &[],
            all,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].2, Cue::Ssn);
        assert_eq!(out[1].2, Cue::Card);
        out.clear();
        find("x@gmail.comphone number is", &[], all, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2, Cue::Generic);
        // Refused by the caller, a match gives way to the shorter cue inside it.
        out.clear();
        let not_phone = |s, e, c| (c != Cue::Phone).then_some((s, e, c));
        find("my phone number is", &[], not_phone, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2, Cue::Generic);
    }
}
