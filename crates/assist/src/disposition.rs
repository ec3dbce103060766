//! The disposition from named, transparent features: each feature is a number in `0..=1`
//! computed from phrase counts, each disposition's score a fixed weighted sum of features,
//! and the confidence the margin between the best score and the runner-up.

use domain::event::{Disposition, Speaker};
use domain::state::SegmentView;

use crate::text::{any, count, fold};

/// Agent phrases that confirm a booking.
const BOOKING_CONFIRMED: &[&str] = &[
    "you're all set",
    "all set for",
    "booked",
    "i've scheduled",
    "i have scheduled",
    "appointment is confirmed",
    "confirmed for",
    "you're scheduled",
    "is scheduled",
    "see you on",
    "we'll see you",
];
/// Weaker booking language (anyone).
const BOOKING_TALK: &[&str] = &[
    "appointment",
    "schedule*",
    "technician available",
    "visit",
    "book",
    "slot",
    "arrival window",
    "which works better",
    "come out",
];
/// Date and time words.
const TIME_WORDS: &[&str] = &[
    "today",
    "tonight",
    "tomorrow",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "morning",
    "afternoon",
    "evening",
    "between",
    "o'clock",
    "am",
    "pm",
    "next week",
    "noon",
];
/// Customer interest and price questions.
const PRICE: &[&str] = &[
    "cost*",
    "price*",
    "how much",
    "quote*",
    "estimate",
    "expensive",
    "more than i expected",
    "financing",
    "cheaper",
    "rate*",
    "discount",
];
const INTEREST: &[&str] = &[
    "interested in",
    "think about it",
    "talk to my",
    "call you back",
    "get back to you",
    "let me think",
    "not sure yet",
    "shopping around",
    "get a rough idea",
    "thinking about",
];
/// Robocall and cold-sales phrases.
const SPAM: &[&str] = &[
    "press one",
    "press 1",
    "press nine",
    "press 9",
    "press two",
    "extended warranty",
    "business listing",
    "google listing",
    "important message",
    "this is not a sales call",
    "final notice",
    "limited time offer",
    "you've been selected",
    "remove us from",
    "vehicle's warranty",
    "car's warranty",
    "listing specialist",
    "avoid suspension",
];
/// Customer statements of a need of their own.
const NEED: &[&str] = &[
    "i need",
    "i want",
    "i would like",
    "i'd like",
    "my ",
    "can you",
    "could you",
    "lost",
    "stopped",
    "broken",
    "not working",
    "cancel*",
    "help me",
    "calling to",
    "wondering",
];
/// Escalation language from the customer.
const ESCALATION: &[&str] = &[
    "supervisor",
    "manager",
    "complaint",
    "complain*",
    "cancel*",
    "ridiculous",
    "unacceptable",
    "i'm done",
    "i'm gone",
    "frustrat*",
    "never showed",
    "speak to someone",
    "this is how you treat",
    "going with",
    "lawyer",
    "report you",
    "fed up",
];
/// Customer closings that mean the need was met.
const CLOSING: &[&str] = &[
    "that's all",
    "that's it",
    "thank you",
    "thanks",
    "great",
    "perfect",
    "that helps",
    "that's everything",
    "appreciate it",
    "awesome",
];
/// Agent phrases that answer or fix something.
const FIXED: &[&str] = &[
    "i've",
    "we've",
    "has been",
    "have been",
    "you're verified",
    "will arrive",
    "your balance",
    "balance is",
    "are open",
    "hours are",
    "is done",
    "taken care of",
    "reset",
    "blocked",
    "replaced",
    "transferred",
    "paid",
    "here you go",
    "i see",
];

/// The baseline score of `Other`: the winner must beat it.
pub const OTHER_BASELINE: f32 = 0.25;

pub(crate) struct DispositionResult {
    pub disposition: Disposition,
    pub confidence: f32,
    pub features: Vec<(&'static str, f32)>,
    pub scores: Vec<(Disposition, f32)>,
}

fn sat(n: usize, full: usize) -> f32 {
    (n as f32 / full as f32).min(1.0)
}

pub(crate) fn score(segments: &[&SegmentView]) -> DispositionResult {
    let join = |who: Option<Speaker>| -> String {
        segments
            .iter()
            .filter(|s| who.is_none_or(|w| s.segment.speaker == w))
            .map(|s| fold(&s.segment.text))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let agent = join(Some(Speaker::Agent));
    let customer = join(Some(Speaker::Customer));
    let all = join(None);

    let booking_confirmed = sat(count(&agent, BOOKING_CONFIRMED), 1);
    let booking_talk = sat(count(&all, BOOKING_TALK), 2);
    let time_word = if any(&all, TIME_WORDS) { 1.0 } else { 0.0 };
    let price_question = sat(count(&customer, PRICE) + count(&agent, &["financing"]), 2);
    let interest = sat(
        count(&customer, INTEREST) + count(&agent, &["interested in"]),
        2,
    );
    let spam_phrases = sat(count(&all, SPAM), 2);
    let short_call = if segments.len() <= 8 { 1.0 } else { 0.0 };
    let customer_need = if any(&customer, NEED) { 1.0 } else { 0.0 };
    let escalation = sat(count(&customer, ESCALATION), 3);
    let customer_closing = sat(count(&customer, CLOSING), 1);
    let agent_fixed = sat(count(&agent, FIXED), 2);
    let unresolved = 1.0 - customer_closing;

    let features = vec![
        ("booking_confirmed", booking_confirmed),
        ("booking_talk", booking_talk),
        ("time_word", time_word),
        ("price_question", price_question),
        ("interest", interest),
        ("spam_phrases", spam_phrases),
        ("short_call", short_call),
        ("customer_need", customer_need),
        ("escalation", escalation),
        ("customer_closing", customer_closing),
        ("agent_fixed", agent_fixed),
        ("unresolved", unresolved),
    ];

    let booked = (0.7 * booking_confirmed + 0.3 * booking_talk) * (0.4 + 0.6 * time_word);
    let lead = (0.5 * price_question + 0.5 * interest) * (1.0 - booking_confirmed);
    let spam = if spam_phrases > 0.0 {
        0.6 * spam_phrases + 0.2 * short_call + 0.2 * (1.0 - customer_need)
    } else {
        0.0
    };
    let escalated = if escalation > 0.0 {
        0.8 * escalation + 0.2 * unresolved
    } else {
        0.0
    };
    let resolved = 0.5 * customer_closing + 0.5 * agent_fixed;

    let mut scores = vec![
        (Disposition::Booked, booked),
        (Disposition::Lead, lead),
        (Disposition::Spam, spam),
        (Disposition::Resolved, resolved),
        (Disposition::Escalated, escalated),
        (Disposition::Other, OTHER_BASELINE),
    ];
    // Stable: ties keep declaration order, so the result is deterministic.
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (disposition, best) = scores[0];
    let second = scores.get(1).map_or(0.0, |s| s.1);
    DispositionResult {
        disposition,
        confidence: (best - second).clamp(0.0, 1.0),
        features,
        scores,
    }
}
