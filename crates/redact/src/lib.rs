//! PII redaction for transcript segments, before anything is stored or logged.
//!
//! Speech-to-text output is lower-case, mostly unpunctuated, and says numbers the way people
//! say them: "four one five double five five oh one three two", "john dot smith at gmail dot
//! com", "born on march fourteenth nineteen eighty five". Pattern-based redactors built for
//! written text (Presidio and the like) miss these spoken forms; this crate normalises them
//! and handles them together with the written ones (`(415) 555-0132`, `4111 1111 1111 1111`,
//! `078-05-1120`, `GB82 WEST 1234 5698 7654 32`, `john.smith@gmail.com`, `03/14/1985`).
//!
//! A [`Redactor`] is compiled once from a [`Policy`] and then run per segment; it is pure
//! (no IO, no async, no global state beyond precompiled tables) and takes microseconds.
//!
//! ```
//! use redact::{Policy, Redactor, SpeakerContext};
//! use domain::event::PiiKind;
//!
//! let r = Redactor::new(Policy::default()).expect("the default policy is valid");
//! let out = r.redact("sure it's four one five five five five oh one three two");
//! assert_eq!(out.text, "sure it's [PHONE]");
//! assert_eq!(out.redactions[0].kind, PiiKind::Phone);
//! assert_eq!((out.redactions[0].start, out.redactions[0].end), (10, 17));
//!
//! // One context per speaker: a number read across two segments.
//! let mut caller = SpeakerContext::new();
//! assert_eq!(r.redact_next(&mut caller, "my card number is four one one one").text,
//!            "my card number is [CARD]");
//! assert_eq!(r.redact_next(&mut caller, "one one one one one one one one one one one one").text,
//!            "[CARD]");
//! ```
//!
//! # Invariants
//!
//! - **A value never leaks through this crate's outputs.** [`Redacted`] holds the redacted
//!   text and, per placeholder, only its kind and span; [`SpeakerContext`] holds counts and
//!   kinds, never digits or a function of them; no `Debug` impl or error message prints
//!   input text.
//! - **Spans point at placeholders.** Each [`Redaction`](domain::event::Redaction) is the
//!   span, in `char`s of the *redacted* text, end exclusive, of exactly the placeholder that
//!   replaced the value. Spans are sorted, non-empty and non-overlapping, as the domain's
//!   segment validation requires.
//! - **Idempotent.** Redacting redacted text changes nothing and reports nothing:
//!   placeholders of the policy are recognised and left alone, and a placeholder consumes a
//!   pending cue exactly as the value it replaced did. Replacing a value can still change how
//!   its neighbours read (`14/13/12/1985` is no written date, `14/13/12/[DOB]` is), so
//!   [`Redactor::redact`] returns a fixed point: it redacts its own output again until a
//!   pass finds nothing, and reports every placeholder it inserted on the way.
//!   ([`Redactor::redact_next`] runs one pass: its context belongs to the original segment.)
//!
//! # What counts as a digit run
//!
//! Words and written digits are tokenised and number words mapped to digits ("oh" only
//! inside a run, "double"/"triple", tens and teens read phone-style). A chain of such
//! atoms is a *run* only if it has at least three digits spoken one by one or written:
//! that single rule keeps "at five thirty", "ninety nine dollars", "one or two", "two
//! units" and "nineteen eighty five" out, while "four one five fifty five …" is in. Written
//! amounts and clock times (`$129`, `1,250.00`, `2:30`) and written dates are never runs.
//! Runs of seven digits or more are always redacted; shorter ones need a cue ("my zip is
//! …", "card number", "social"), or the strict policy. The `classify` module documents
//! the order in which the kind is chosen.
//!
//! # Across segments
//!
//! Segment 1 is stored before segment 2 arrives, so it cannot be rewritten later. The rule
//! ([`Redactor::redact_next`] with one [`SpeakerContext`] per speaker):
//!
//! 1. A digit run at the **end** of a segment (only hesitations or `[noise]` after it) that
//!    is not already redacted on its own is redacted **pre-emptively** if a cue is waiting
//!    for it and it has two digits or more read one by one (its kind is the cue's), or if
//!    it is being read out — at least three digits and at least three atoms or five digits
//!    — as [`PiiKind::Number`](domain::event::PiiKind) since its kind is not known yet.
//!    "it's one four two" therefore becomes "it's \[NUMBER\]"; "since 2019" (one atom,
//!    four digits) and "call me at five" (one digit) do not.
//! 2. A run at the **start** of the next segment (nothing but hesitations before it)
//!    continues that run: it is classified with the *combined* length and the carried cue,
//!    and is always redacted if the part before it was. The combined run may itself end
//!    the segment and carry on.
//! 3. A cue at the end of a segment with no value after it yet ("my card number is")
//!    carries into the next segment, with what is left of its window.
//! 4. Anything else at the start of a segment drops the state; a segment of only
//!    hesitations or tags keeps it. The other speaker's segments do not touch it.
//!
//! The cost is honest over-redaction: a short number read at the end of a segment is
//! hidden even when nothing follows it. The leak that remains: a first part too short to
//! trigger rule 1 without a cue ("it's four one") stays in the clear; the rest of the
//! number is still redacted by rule 2. Because the context keeps no digits, a run split
//! across segments cannot be Luhn-checked: 13–19 combined digits count as a card.
//!
//! # Layout
//!
//! - [`policy`](Policy): [`Policy`], [`Placeholders`], [`PolicyError`].
//! - `redactor`: [`Redactor`], [`Redacted`], and the pass that ties the modules together.
//! - `context`: [`SpeakerContext`], the per-speaker cross-segment state.
//! - `token`: the tokeniser (words, digit runs, opaque placeholders, byte spans).
//! - `lexicon`: number words, months, ordinals, fillers, e-mail words.
//! - `spoken`: digit-run normalisation (spoken, written and mixed).
//! - `classify`: digit run + cue → kind; the pre-emptive rule.
//! - `cue`: cue phrases (aho-corasick) and their windows.
//! - `written`: regexes for written e-mails, IBANs, amounts, times and dates.
//! - `email`: spelled e-mail addresses.
//! - `date`: dates of birth after a DOB cue.
//! - `checksum`: Luhn, IBAN mod-97, SSN plausibility.
//!
//! # Not detected
//!
//! Names and street addresses (the [`PiiKind`](domain::event::PiiKind) variants exist for
//! placeholders but nothing produces them), IBANs read out loud, digits in scripts other
//! than ASCII (e.g. Arabic-Indic), and cues in languages other than English.

mod checksum;
mod classify;
mod context;
mod cue;
mod date;
mod email;
mod lexicon;
mod policy;
mod redactor;
mod spoken;
mod token;
mod written;

pub use context::SpeakerContext;
pub use policy::{ALL_KINDS, Placeholders, Policy, PolicyError};
pub use redactor::{Redacted, Redactor};
