//! The inline rules engine. While an agent talks to a customer, each (already redacted)
//! transcript segment goes through the engine, which answers with domain events:
//!
//! - **prohibited** rules raise an [`AlertRaised`](domain::event::AlertRaised) when the speaker
//!   says something they must not ("I guarantee…", "no risk"), with a suggested correction;
//! - **required** rules are checklist items: [`ChecklistItemCompleted`](domain::event::ChecklistItemCompleted)
//!   the first time the agent covers them, [`ChecklistItemMissed`](domain::event::ChecklistItemMissed)
//!   when the call ends without them, when their time deadline passes, or when a rule they
//!   must precede fires first ("confirm the address before quoting a price");
//! - **trigger** rules show a [`GuidanceCardShown`](domain::event::GuidanceCardShown) card
//!   (the customer says "cancel" → retention guidance).
//!
//! Rulesets are YAML data ([`parse_ruleset`]); the format is described by
//! `rulesets/schema/ruleset.schema.json` and the default rulesets live next to it in
//! `rulesets/`. Every event records the rule id and ruleset version that caused it
//! ([`RuleRef`](domain::event::RuleRef)).
//!
//! # Invariants
//!
//! - **One pass per segment.** All phrases of all rules (alternatives, exclusions and
//!   proximity terms included) are compiled into one Aho-Corasick automaton over folded text,
//!   and all regexes into one `RegexSet`; a segment is searched once by each, and matches are
//!   mapped back to their rules. The cost of a segment grows with its length and the number
//!   of matches, not with the number of rules. (The regex set comes in two builds: without
//!   Unicode classes for all-ASCII text, where it matches identically and far faster, and
//!   Unicode-aware for other text, holding only the regexes of rules that apply to the call's
//!   language. A segment runs one of them.)
//! - **Deterministic.** The same ruleset version, call id and segments give the same events,
//!   ids included: alert and card ids are UUIDv5 of the call, rule, segment and fire count.
//!   There is no clock, randomness or IO inside; time comes in with the segments and
//!   [`Engine::on_clock`].
//! - **State is data.** Everything the engine remembers about a call is a [`CallRules`]
//!   (`Clone`, `PartialEq`, serde): serialize it mid-call, deserialize it elsewhere and carry
//!   on with the same events as if nothing happened.
//! - **Matching is on folded text** ([`fold()`]): case, punctuation, accents, apostrophes and
//!   Arabic spelling variants are folded away, Unicode-aware (Arabic and Devanagari work),
//!   and phrases match whole words only. A phrase split across two consecutive segments of
//!   the same speaker is found once, in the second.
//!
//! # Format
//!
//! One rule of each kind (the full format, with every field, is the JSON Schema):
//!
//! ```
//! use domain::event::{CallEvent, Speaker};
//! use domain::ids::{CallId, LanguageTag, SegmentId};
//!
//! let yaml = r#"
//! id: home-services
//! version: 3
//! rules:
//!   - id: no-guarantee
//!     kind: prohibited            # said by the agent (the default speaker) -> alert
//!     severity: critical
//!     message: Don't guarantee outcomes.
//!     correction: "I can't guarantee that, but the technician will confirm on site."
//!     match:
//!       phrases: ["guarantee*"]   # `*`: guaranteed, guarantees, ...
//!       except: ["(can't|cannot) guarantee*"]
//!     cooldown_ms: 30000
//!   - id: confirm-address
//!     kind: required              # checklist item
//!     title: Confirm the service address
//!     match:
//!       phrases: ["confirm (your|the) address"]
//!     deadline: { within_ms: 120000, before: [price-quote] }
//!   - id: price-quote
//!     kind: trigger               # guidance card
//!     speaker: agent
//!     title: Quoting a price
//!     body: Confirm the address first; quote the $89 diagnostic visit.
//!     match:
//!       near: [{ a: [dollars], b: ["cost*", price], within: 3 }]
//!     max_fires: 1
//! "#;
//! let ruleset = rules::parse_ruleset("home-services.yaml", yaml)?;
//! let engine = rules::Engine::compile(&ruleset)?;
//! let call = CallId::new();
//! let mut state = engine.new_call(&LanguageTag::parse("en-US")?);
//! let segment_id = SegmentId::parse("seg-1")?;
//! let events = engine.on_segment(&mut state, call, &rules::SegmentInput {
//!     segment_id: &segment_id,
//!     speaker: Speaker::Agent,
//!     text: "It'll cost 89 dollars, and I guarantee it's fixed today.",
//!     start_ms: 5_000,
//!     end_ms: 9_000,
//! });
//! let kinds: Vec<_> = events.iter().map(|e| e.event_type()).collect();
//! assert_eq!(
//!     kinds,
//!     ["guidance_card_shown", "checklist_item_missed", "alert_raised"]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - `ruleset.rs`: the YAML format, parsing and validation into a [`Ruleset`].
//! - `error.rs`: [`RulesetError`] (file, line, rule id) and locating YAML nodes.
//! - `fold.rs`: text folding, shared by phrases and segments.
//! - `compile.rs`: [`Engine::compile`], the automaton, the `RegexSet` and the lookup tables.
//! - `engine.rs`: [`Engine::on_segment`], [`Engine::on_clock`], [`Engine::on_call_end`].
//! - `state.rs`: [`CallRules`], the per-call state.
//! - `transcript.rs`: [`OwnedSegment`] and [`run_transcript`].

mod compile;
mod engine;
mod error;
mod fold;
mod ruleset;
mod state;
mod transcript;

pub use compile::Engine;
pub use engine::SegmentInput;
pub use error::RulesetError;
pub use fold::fold;
pub use ruleset::{
    DEFAULT_SPLIT_WINDOW_MS, Deadline, Matcher, Near, Phrase, Rule, RuleKind, Ruleset,
    SpeakerFilter, parse_ruleset,
};
pub use state::{CallRules, Fires, ItemState, Tail};
pub use transcript::{OwnedSegment, run_transcript};
