//! The offline assist provider: the default when no LLM key is configured. Deterministic,
//! pure functions of a call's [`CallState`](domain::state::CallState) (and optionally its
//! parsed [`Ruleset`](rules::Ruleset)); no IO, no clock, no randomness.
//!
//! - [`summarize`]: an **extractive** summary. The reason for the call is the customer's first
//!   substantive statement (greetings, fillers and "my name is …" skipped); actions taken are
//!   agent sentences reporting something done ("I've blocked that card", "you're all set");
//!   next steps are commitments about the future ("the technician will call you", "I'll call
//!   you back"). Every line carries the id of the segment it was copied from
//!   ([`Evidence`]). A call with no customer speech, or none that states a need, gets a stock
//!   sentence ([`NO_CUSTOMER_SPEECH`], [`NO_REASON`]).
//! - The same call gets a **disposition** (Booked, Lead, Spam, Resolved, Escalated, Other)
//!   from named features in `0..=1` ([`OfflineSummary::features`]), each disposition a fixed
//!   weighted sum of them ([`OfflineSummary::scores`]); `Other` has a constant baseline
//!   ([`OTHER_BASELINE`]) that the others must beat. The confidence is the margin between the
//!   best and the second-best score.
//! - [`suggest`] / [`suggest_with`]: one suggested reply for the latest customer segment, in
//!   this order: the guidance card shown for that segment (its body); a common objection in
//!   it (price, "think about it", "cancel") → a stock response; a required checklist item
//!   already missed → a phrasing that asks it; with a ruleset, a required item not yet covered
//!   → its title as a question. Titles come from the ruleset when given, else a generic
//!   phrasing keyed by the rule id.
//!
//! # Layout
//!
//! - `lib.rs`: this page and the re-exports.
//! - `summary`: [`summarize`], [`OfflineSummary`], [`Evidence`]; reason, action and next-step
//!   extraction.
//! - `disposition`: the feature phrase lists, the weights and the margin confidence.
//! - `suggest`: [`suggest`], [`suggest_with`], [`OfflineSuggestion`].
//! - `text`: folding, whole-word phrase matching, sentence splitting.
//!
//! # Limits
//!
//! This is keyword matching over a transcript, not understanding. Known ways it goes wrong:
//!
//! - **Negation and questions are mostly invisible.** "I *haven't* booked it" counts as
//!   booking language; "do you offer an extended warranty?" from a real customer counts
//!   towards Spam. Questions are skipped only as summary lines, not as features.
//! - **Tense is guessed from markers** ("will", "I'll", "I've"): "I have a technician
//!   available" is not an action, but "I'll send it, it's been sent" is both, and an agent's
//!   over-promise ("I guarantee we'll have it fixed today") is reported as a next step, as
//!   said. Nothing checks that a next step is allowed.
//! - **The reason is the first need-like statement**, so a caller who opens with small talk
//!   that happens to contain "my …" or "can you …" gets that as the reason; a reason spread
//!   over several turns with agent prompts in between is cut to its first part. ASR errors
//!   ("mr harper valley") pass straight through: the text is copied, never rewritten.
//! - **Dispositions are English phrase lists with hand-set weights**, tuned on the project's
//!   five transcripts and the Harper Valley sample, not learned. Other languages fall to
//!   `Other`/`Resolved` by accident. A retained angry customer is Escalated (the escalation
//!   language dominates) even if the agent saved the account; a booking made for a
//!   competitor ("Cool Breeze can come tomorrow") adds to Booked.
//! - **Confidence is a score margin, not a probability**: two weak scores far apart give a
//!   high confidence. Treat it as "how clear-cut the features were".
//! - **Objection responses are stock sentences**, the same for every business; a card or a
//!   rule title is only as good as the ruleset's text.

mod disposition;
mod suggest;
mod summary;
mod text;

pub use disposition::OTHER_BASELINE;
pub use suggest::{OfflineSuggestion, SuggestionKind, suggest, suggest_with};
pub use summary::{Evidence, MAX_LINES, NO_CUSTOMER_SPEECH, NO_REASON, OfflineSummary, summarize};

/// The provider name the offline provider's events carry.
pub const PROVIDER: &str = "offline";
/// The model name the offline provider's events carry (bump when the phrase lists or weights
/// change, so stored summaries say which rules made them).
pub const MODEL: &str = "extractive-v1";
