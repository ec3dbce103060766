//! One suggested reply for the latest customer segment, from the call's cards, checklist and
//! a short list of common objections.

use domain::event::Speaker;
use domain::ids::{RuleId, SegmentId, Seq};
use domain::state::{CallState, ChecklistStatus};
use rules::{RuleKind, Ruleset};

use crate::text::{any, fold};

/// What a suggestion was drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuggestionKind {
    /// The body of the guidance card shown for the latest customer segment.
    Card,
    /// A stock response to an objection in the latest customer segment.
    Objection,
    /// A required checklist item the call already missed.
    MissedItem,
    /// A required item of the ruleset not covered yet (only with a ruleset).
    OpenItem,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OfflineSuggestion {
    pub kind: SuggestionKind,
    pub text: String,
    /// The customer segment it answers, and the seq that segment was written at.
    pub based_on: SegmentId,
    pub based_on_seq: Seq,
    /// The rule behind a card or a checklist item.
    pub rule_id: Option<RuleId>,
}

/// Objection cues and the stock response to each, checked in this order.
const OBJECTIONS: &[(&[&str], &str)] = &[
    (
        &[
            "cancel*",
            "close my account",
            "i'm done",
            "i'm leaving",
            "switching to",
        ],
        "I'm sorry we let you down. Before I make any change, can I tell you what I can do \
         to make this right?",
    ),
    (
        &[
            "too expensive",
            "too much",
            "more than i expected",
            "can't afford",
            "cheaper",
            "quoted me",
            "a bit less",
            "lower price",
            "out of my budget",
        ],
        "I understand the price matters. Can I walk you through what's included, and the \
         options we have, like a free estimate or financing?",
    ),
    (
        &[
            "think about it",
            "talk to my",
            "call you back",
            "let me think",
            "not sure yet",
            "get back to you",
            "sleep on it",
        ],
        "Of course, take your time. What would help you decide? I can send you the details \
         or set a time to follow up.",
    ),
];

/// [`suggest_with`] without a ruleset: cards, objections and missed items only, with
/// generic phrasings for the items.
pub fn suggest(state: &CallState) -> Option<OfflineSuggestion> {
    suggest_with(state, None)
}

/// A suggestion for the latest customer segment, or `None` when there is no customer segment
/// or nothing to suggest. See the crate docs for the order of the sources.
pub fn suggest_with(state: &CallState, ruleset: Option<&Ruleset>) -> Option<OfflineSuggestion> {
    let latest = state
        .segments
        .iter()
        .rev()
        .find(|s| s.segment.speaker == Speaker::Customer)?;
    let id = &latest.segment.segment_id;
    let make = |kind, text: String, rule_id: Option<RuleId>| OfflineSuggestion {
        kind,
        text,
        based_on: id.clone(),
        based_on_seq: latest.seq,
        rule_id,
    };

    if let Some(card) = state
        .cards
        .iter()
        .rev()
        .find(|c| c.card.segment_id.as_ref() == Some(id) || c.seq > latest.seq)
    {
        return Some(make(
            SuggestionKind::Card,
            card.card.body.clone(),
            Some(card.card.rule.rule_id.clone()),
        ));
    }

    let folded = fold(&latest.segment.text);
    if let Some((_, reply)) = OBJECTIONS.iter().find(|(cues, _)| any(&folded, cues)) {
        return Some(make(SuggestionKind::Objection, (*reply).to_owned(), None));
    }

    if let Some(entry) = state
        .checklist
        .values()
        .find(|e| matches!(e.status, ChecklistStatus::Missed { .. }))
    {
        let rule_id = &entry.item.rule_id;
        return Some(make(
            SuggestionKind::MissedItem,
            ask(rule_id, title(ruleset, rule_id)),
            Some(rule_id.clone()),
        ));
    }

    let ruleset = ruleset?;
    let open = ruleset.rules().iter().find(|r| {
        matches!(r.kind, RuleKind::Required { .. })
            && r.speaker.accepts(Speaker::Agent)
            && !state.checklist.contains_key(&r.id)
    })?;
    Some(make(
        SuggestionKind::OpenItem,
        ask(&open.id, title(Some(ruleset), &open.id)),
        Some(open.id.clone()),
    ))
}

fn title<'a>(ruleset: Option<&'a Ruleset>, id: &RuleId) -> Option<&'a str> {
    ruleset?
        .rules()
        .iter()
        .find(|r| &r.id == id)
        .and_then(|r| match &r.kind {
            RuleKind::Required { title, .. } | RuleKind::Trigger { title, .. } => {
                Some(title.as_str())
            }
            RuleKind::Prohibited { .. } => None,
        })
}

/// Phrasings for well-known checklist items, keyed by a word of the rule id.
const KNOWN_ITEMS: &[(&str, &str)] = &[
    (
        "identity",
        "Before we go on, can I verify your identity? Please give me your full name and date of birth.",
    ),
    (
        "address",
        "Can I confirm the service address for the visit?",
    ),
    (
        "callback",
        "What's the best callback number for you, in case we get disconnected?",
    ),
    (
        "appointment",
        "Would you like me to book a visit? I can check the next available times.",
    ),
    (
        "recording",
        "Just so you know, this call may be recorded for quality and training.",
    ),
    (
        "anything-else",
        "Is there anything else I can help you with today?",
    ),
    (
        "further-help",
        "Is there anything else I can help you with today?",
    ),
    ("thanks", "Thank you for calling, and have a great day."),
];

/// A phrasing that covers the item: a known phrasing by rule id, else the rule's title,
/// else the rule id in words.
fn ask(id: &RuleId, title: Option<&str>) -> String {
    if let Some((_, phrase)) = KNOWN_ITEMS.iter().find(|(k, _)| id.as_str().contains(k)) {
        return (*phrase).to_owned();
    }
    match title {
        Some(t) => format!("Before we continue: {}.", t.trim_end_matches('.')),
        None => format!(
            "Before we continue, let's cover one more thing: {}.",
            id.as_str().replace(['-', '_'], " ")
        ),
    }
}
