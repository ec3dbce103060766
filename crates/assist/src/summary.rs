//! The extractive summary: reason for the call, actions taken and next steps, each line with
//! the segments it was taken from.

use domain::event::{Speaker, Summary};
use domain::ids::SegmentId;
use domain::state::{CallState, SegmentView};

use crate::disposition::{self, DispositionResult};
use crate::text::{any, content_words, fold, sentences, strip_tags, without_name};

/// The most action and next-step lines a summary keeps (the first ones said).
pub const MAX_LINES: usize = 5;

/// What the offline provider says about a call.
#[derive(Clone, Debug, PartialEq)]
pub struct OfflineSummary {
    pub summary: Summary,
    pub disposition: domain::event::Disposition,
    /// The margin between the best and the second-best disposition score, in `0..=1`.
    pub confidence: f32,
    /// Where each summary line came from.
    pub evidence: Evidence,
    /// The named features the disposition was scored from, each in `0..=1`.
    pub features: Vec<(&'static str, f32)>,
    /// Every disposition's score, best first (ties in declaration order).
    pub scores: Vec<(domain::event::Disposition, f32)>,
}

/// The segment ids behind each summary line: `reason_for_call` for the reason (empty when the
/// reason is a stock "ended before…" sentence), and one id per line of `actions_taken` and
/// `next_steps`, index for index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    pub reason_for_call: Vec<SegmentId>,
    pub actions_taken: Vec<SegmentId>,
    pub next_steps: Vec<SegmentId>,
}

/// The stock reason when no customer segment exists.
pub const NO_CUSTOMER_SPEECH: &str = "Call ended before the customer said anything.";
/// The stock reason when the customer spoke but never said why they called.
pub const NO_REASON: &str = "Call ended before the customer stated a reason.";

/// Customer words that announce why they are calling.
const NEED: &[&str] = &[
    "need*",
    "want*",
    "would like",
    "i'd like",
    "calling",
    "wondering",
    "can you",
    "could you",
    "lost",
    "lose",
    "stopped",
    "broke*",
    "not working",
    "isn't working",
    "doesn't work",
    "won't",
    "cancel*",
    "help with",
    "problem",
    "issue",
    "question",
    "trying to",
    "looking for",
    "left my",
    "stolen",
    "how much",
    "cost",
    "price",
    "quote",
    "check my",
    "reset",
    "replace*",
    "transfer",
    "pay",
    "schedule",
    "appointment",
    "leak*",
    "noise",
    "broken",
];

/// Agent phrases that report something already done.
const DONE: &[&str] = &[
    "i've",
    "we've",
    "has been",
    "have been",
    "all set",
    "you're verified",
    "went ahead",
    "is done",
    "taken care of",
    "i just",
];

/// Past-tense action verbs; count only in a sentence that is not about the future.
const DONE_VERBS: &[&str] = &[
    "booked",
    "scheduled",
    "blocked",
    "reset",
    "replaced",
    "cancelled",
    "canceled",
    "processed",
    "sent",
    "transferred",
    "updated",
    "refunded",
    "issued",
    "ordered",
    "paid",
    "fixed",
    "activated",
    "confirmed",
];

/// Markers of a commitment about the future.
const FUTURE: &[&str] = &[
    "will",
    "i'll",
    "we'll",
    "you'll",
    "he'll",
    "she'll",
    "they'll",
    "it'll",
    "going to",
    "call you back",
    "get back to you",
];

/// Customer commitments that are next steps too ("I'll call you back").
const CUSTOMER_NEXT: &[&str] = &[
    "call you back",
    "call back",
    "get back to you",
    "think about it",
    "talk to my",
];

/// Summarizes a call from its state: extractive, deterministic, no IO.
pub fn summarize(state: &CallState) -> OfflineSummary {
    let segments: Vec<&SegmentView> = state
        .segments
        .iter()
        .filter(|s| s.segment.text.chars().any(char::is_alphanumeric))
        .collect();
    let (reason_for_call, reason_ids) = reason(&segments);
    let (actions_taken, action_ids, next_steps, next_ids) = actions_and_next_steps(&segments);
    let DispositionResult {
        disposition,
        confidence,
        features,
        scores,
    } = disposition::score(&segments);
    OfflineSummary {
        summary: Summary {
            reason_for_call,
            actions_taken,
            next_steps,
        },
        disposition,
        confidence,
        evidence: Evidence {
            reason_for_call: reason_ids,
            actions_taken: action_ids,
            next_steps: next_ids,
        },
        features,
        scores,
    }
}

/// The customer's first substantive statement: the first customer segment with a need cue
/// (self-introductions taken out), else the first with three content words; its filler
/// sentences dropped; followed by the customer's next segment when it is short and nobody
/// spoke in between.
fn reason(segments: &[&SegmentView]) -> (String, Vec<SegmentId>) {
    let customer: Vec<(usize, &SegmentView)> = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.segment.speaker == Speaker::Customer)
        .map(|(i, s)| (i, *s))
        .collect();
    if customer.is_empty() {
        return (NO_CUSTOMER_SPEECH.to_owned(), vec![]);
    }
    let cleaned = |s: &SegmentView| without_name(&fold(&s.segment.text));
    let pick = customer
        .iter()
        .find(|(_, s)| any(&cleaned(s), NEED))
        .or_else(|| {
            customer
                .iter()
                .find(|(_, s)| content_words(&cleaned(s)).len() >= 3)
        });
    let Some(&(i, first)) = pick else {
        return (NO_REASON.to_owned(), vec![]);
    };
    let mut text = substantive_sentences(first);
    let mut ids = vec![first.segment.segment_id.clone()];
    if text.split_whitespace().count() < 6
        && let Some(next) = segments.get(i + 1)
        && next.segment.speaker == Speaker::Customer
    {
        let more = substantive_sentences(next);
        if !more.is_empty() {
            text = format!("{text} {more}");
            ids.push(next.segment.segment_id.clone());
        }
    }
    (text, ids)
}

/// A segment's sentences without the ones that are only greetings or fillers.
fn substantive_sentences(s: &SegmentView) -> String {
    let kept: Vec<String> = sentences(&s.segment.text)
        .into_iter()
        .filter(|t| !content_words(&without_name(&fold(t))).is_empty())
        .collect();
    if kept.is_empty() {
        strip_tags(&s.segment.text)
    } else {
        kept.join(" ")
    }
}

fn actions_and_next_steps(
    segments: &[&SegmentView],
) -> (Vec<String>, Vec<SegmentId>, Vec<String>, Vec<SegmentId>) {
    let mut actions: (Vec<String>, Vec<SegmentId>) = Default::default();
    let mut next: (Vec<String>, Vec<SegmentId>) = Default::default();
    for s in segments {
        for sentence in sentences(&s.segment.text) {
            if sentence.ends_with('?') {
                continue;
            }
            let f = fold(&sentence);
            let target = match s.segment.speaker {
                Speaker::Agent => {
                    let future = any(&f, FUTURE);
                    if any(&f, DONE) || (!future && any(&f, DONE_VERBS)) {
                        Some(&mut actions)
                    } else if future {
                        Some(&mut next)
                    } else {
                        None
                    }
                }
                Speaker::Customer if any(&f, CUSTOMER_NEXT) => Some(&mut next),
                Speaker::Customer => None,
            };
            if let Some((lines, ids)) = target
                && lines.len() < MAX_LINES
                && !lines.contains(&sentence)
            {
                lines.push(sentence);
                ids.push(s.segment.segment_id.clone());
            }
        }
    }
    (actions.0, actions.1, next.0, next.1)
}
