//! From a digit run (its length, checksum, written shape) and the cue before it, to a kind.
//!
//! Order matters and is deliberate:
//!
//! 1. A cue names the kind: after "card number" it is a card, after "social" an SSN, after
//!    "date of birth" a DOB, whatever the length. After a phone cue it is a phone, unless
//!    the run is a Luhn-valid 13–19-digit card. After a generic cue ("account number",
//!    "zip") the shape decides, and failing that it is a [`PiiKind::Number`].
//! 2. Without a cue the shape decides: a `+` prefix with 7–15 digits is a phone; a written
//!    3-2-4 grouping that could be an issued SSN is an SSN; a Luhn-valid 13–19-digit run is
//!    a card; any other 7–15 digits is a phone (the E.164 maximum is 15); 16–19 digits is a
//!    card even when the checksum fails (speech-to-text flips digits, and a misheard card
//!    number is still a card number); 20 or more is a [`PiiKind::Number`]. Shorter runs
//!    without a cue are not redacted by the default policy.
//!
//! Across segments the checksum is unknown (see [`SpeakerContext`](crate::SpeakerContext),
//! which never keeps digits), so there a 13–19-digit run counts as a card.

use domain::event::PiiKind;

use crate::cue::Cue;

/// A digit run needs this many literal digits; see [`spoken`](crate::spoken).
pub(crate) const MIN_RUN_LITERAL: u32 = 3;

/// Uncued digit runs at least this long are always redacted.
pub(crate) const ALWAYS_DIGITS: u32 = 7;

/// What classification needs to know about a (possibly cross-segment) digit run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub digits: u32,
    pub literal: u32,
    pub atoms: u32,
    pub plus: bool,
    /// The Luhn verdict, when all the digits were seen in this segment.
    pub luhn: Option<bool>,
    pub ssn_shape: bool,
}

impl Run {
    pub(crate) fn is_run(&self) -> bool {
        self.literal >= MIN_RUN_LITERAL
    }
}

pub(crate) fn cue_kind(cue: Cue) -> PiiKind {
    match cue {
        Cue::Phone => PiiKind::Phone,
        Cue::Card => PiiKind::Card,
        Cue::Ssn => PiiKind::Ssn,
        Cue::Dob => PiiKind::Dob,
        Cue::Generic => PiiKind::Number,
    }
}

fn card_length(d: u32) -> bool {
    (13..=19).contains(&d)
}

/// The kind of a complete digit run, before the policy has its say.
pub(crate) fn kind(run: &Run, cue: Option<Cue>) -> Option<PiiKind> {
    if !run.is_run() {
        return None;
    }
    let luhn_card = card_length(run.digits) && run.luhn == Some(true);
    match cue {
        Some(Cue::Phone) if luhn_card => Some(PiiKind::Card),
        Some(Cue::Generic) => Some(by_shape(run).unwrap_or(PiiKind::Number)),
        Some(c) => Some(cue_kind(c)),
        None => by_shape(run),
    }
}

fn by_shape(run: &Run) -> Option<PiiKind> {
    let d = run.digits;
    if run.plus && (7..=15).contains(&d) {
        Some(PiiKind::Phone)
    } else if run.ssn_shape {
        Some(PiiKind::Ssn)
    } else if card_length(d) && run.luhn != Some(false) {
        Some(PiiKind::Card)
    } else if (ALWAYS_DIGITS..=15).contains(&d) {
        Some(PiiKind::Phone)
    } else if card_length(d) {
        Some(PiiKind::Card)
    } else if d >= 20 {
        Some(PiiKind::Number)
    } else {
        None
    }
}

/// The kind to give a run at the very end of a segment that [`kind`] left alone, because it
/// may be the first part of a number the speaker finishes in the next segment: a cue is
/// waiting for it and it has two digits read one by one, or it is a run being read out
/// (three atoms, or five digits). The kind is the cue's, or [`PiiKind::Number`] since
/// nothing more is known yet. A cue with a single digit after it ("call me at five") is far
/// more often a time or a count than the first digit of a number, so it is left alone.
pub(crate) fn pre_emptive(run: &Run, cue: Option<Cue>) -> Option<PiiKind> {
    match cue {
        Some(c) if run.literal >= 2 => Some(cue_kind(c)),
        Some(_) => None,
        None if run.is_run() && (run.atoms >= 3 || run.digits >= 5) => Some(PiiKind::Number),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(digits: u32) -> Run {
        Run {
            digits,
            literal: digits,
            atoms: digits,
            plus: false,
            luhn: Some(false),
            ssn_shape: false,
        }
    }

    #[test]
    fn shape_without_cue() {
        assert_eq!(kind(&run(6), None), None);
        assert_eq!(kind(&run(7), None), Some(PiiKind::Phone));
        assert_eq!(kind(&run(10), None), Some(PiiKind::Phone));
        assert_eq!(kind(&run(16), None), Some(PiiKind::Card));
        assert_eq!(kind(&run(22), None), Some(PiiKind::Number));
        let luhn = Run {
            luhn: Some(true),
            ..run(15)
        };
        assert_eq!(kind(&luhn, None), Some(PiiKind::Card));
        let plus = Run {
            plus: true,
            luhn: Some(true),
            ..run(13)
        };
        assert_eq!(kind(&plus, None), Some(PiiKind::Phone));
        let ssn = Run {
            ssn_shape: true,
            ..run(9)
        };
        assert_eq!(kind(&ssn, None), Some(PiiKind::Ssn));
    }

    #[test]
    fn cue_decides_and_needs_a_run() {
        assert_eq!(kind(&run(3), Some(Cue::Card)), Some(PiiKind::Card));
        assert_eq!(kind(&run(9), Some(Cue::Ssn)), Some(PiiKind::Ssn));
        assert_eq!(kind(&run(4), Some(Cue::Generic)), Some(PiiKind::Number));
        assert_eq!(kind(&run(2), Some(Cue::Card)), None);
        let luhn = Run {
            luhn: Some(true),
            ..run(16)
        };
        assert_eq!(kind(&luhn, Some(Cue::Phone)), Some(PiiKind::Card));
    }

    #[test]
    fn pre_emption_needs_a_cue_or_a_read_out() {
        assert_eq!(pre_emptive(&run(3), None), Some(PiiKind::Number));
        let year = Run { atoms: 1, ..run(4) };
        assert_eq!(pre_emptive(&year, None), None);
        assert_eq!(pre_emptive(&run(2), Some(Cue::Phone)), Some(PiiKind::Phone));
        assert_eq!(pre_emptive(&run(1), Some(Cue::Phone)), None);
    }
}
