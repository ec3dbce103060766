//! The banking ruleset over the 15 Harper Valley bank calls (shared/data/harper-valley).
//!
//! The expected events were worked out by reading each transcript before running the engine:
//! every agent opens with "harper valley national bank", offers further help and thanks the
//! caller; nobody mentions recording; only the two password-reset agents ask a verification
//! question ("what is your phone number"), and every other agent who shares a balance, moves
//! money, pays a bill or orders a card does so without one.

mod common;

use std::collections::BTreeSet;

use common::{DATA, call, default_engine, lang, render_all};
use domain::event::{CallEvent, MissReason};
use rules::{OwnedSegment, run_transcript};
use serde::Deserialize;

const EXPECTED: &[(&str, &[&str])] = &[
    (
        // replace card: "i lost my debit card"
        "0002f70f7386445b",
        &[
            "done greeting-bank-name @hv-1",
            "card lost-or-stolen-card @hv-6",
            "done offer-further-help @hv-14",
            "done closing-thanks @hv-16",
            "missed recording-disclosure call_ended",
            "missed verify-identity call_ended",
        ],
    ),
    (
        // branch hours
        "0126ffdce48049a9",
        &[
            "done greeting-bank-name @hv-2",
            "card branch-hours @hv-9",
            "done offer-further-help @hv-19",
            "done closing-thanks @hv-23",
            "missed recording-disclosure call_ended",
            "missed verify-identity call_ended",
        ],
    ),
    (
        // reset password: the agent asks for the phone number before sending the link
        "0224c92b64d144d4",
        &[
            "done greeting-bank-name @hv-1",
            "card password-reset @hv-5",
            "done verify-identity @hv-9",
            "card account-action @hv-14",
            "done offer-further-help @hv-15",
            "done closing-thanks @hv-18",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // transfer: "eighty six dollars has been transferred"
        "0377245f73a54480",
        &[
            "done greeting-bank-name @hv-1",
            "card account-action @hv-9",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-10",
            "done closing-thanks @hv-12",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // branch hours
        "04a1020bb9bc4a45",
        &[
            "done greeting-bank-name @hv-1",
            "card branch-hours @hv-6",
            "done offer-further-help @hv-15",
            "done closing-thanks @hv-19",
            "missed recording-disclosure call_ended",
            "missed verify-identity call_ended",
        ],
    ),
    (
        // check balance: "your savings account balances eighty four dollars"
        "05c6e20d983b4804",
        &[
            "done greeting-bank-name @hv-1",
            "card account-action @hv-5",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-7",
            "done closing-thanks @hv-9",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // transfer: "… from your savings account into your checking account" (the regex)
        "076cd53656c64dc5",
        &[
            "done greeting-bank-name @hv-2",
            "card account-action @hv-17",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-20",
            "done closing-thanks @hv-24",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // pay bill: "we will send your payment to fossil gas"
        "084d8144809747cc",
        &[
            "done greeting-bank-name @hv-1",
            "card account-action @hv-19",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-20",
            "done closing-thanks @hv-23",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // pay bill; the payment and the offer of more help are one utterance, in that order
        "099f482838ef469e",
        &[
            "done greeting-bank-name @hv-1",
            "card account-action @hv-19",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-19",
            "done closing-thanks @hv-21",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // replace card: "and ordered a replacement debit card"
        "0a76782d6ee84f73",
        &[
            "done greeting-bank-name @hv-1",
            "card account-action @hv-9",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-11",
            "done closing-thanks @hv-13",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // check balance, split across two agent utterances: "okay it looks like you have" |
        // "twenty five hundred dollars in there is there anything else …"
        "0b5d3de182a04159",
        &[
            "done greeting-bank-name @hv-2",
            "card account-action @hv-10",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-10",
            "done closing-thanks @hv-13",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // transfer: "hello" | "this is harper valley national bank"; "i've transferred …"
        "0bf0d8398c574373",
        &[
            "done greeting-bank-name @hv-3",
            "card account-action @hv-17",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-19",
            "done closing-thanks @hv-23",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // replace card: "i lost my card"; "i've ordered your replacement credit card"
        "0ceef853f1264ddf",
        &[
            "done greeting-bank-name @hv-2",
            "card lost-or-stolen-card @hv-8",
            "card account-action @hv-16",
            "missed verify-identity preceded_by account-action",
            "done offer-further-help @hv-17",
            "done closing-thanks @hv-21",
            "missed recording-disclosure call_ended",
        ],
    ),
    (
        // schedule appointment: nothing on the account is touched
        "0df279dab5a44e6c",
        &[
            "done greeting-bank-name @hv-1",
            "done offer-further-help @hv-12",
            "done closing-thanks @hv-17",
            "missed recording-disclosure call_ended",
            "missed verify-identity call_ended",
        ],
    ),
    (
        // reset password
        "0ece8b36d4c148b0",
        &[
            "done greeting-bank-name @hv-3",
            "card password-reset @hv-8",
            "done verify-identity @hv-9",
            "card account-action @hv-18",
            "done offer-further-help @hv-19",
            "done closing-thanks @hv-21",
            "missed recording-disclosure call_ended",
        ],
    ),
];

/// The raw utterance, read independently of the crate's loader.
#[derive(Deserialize)]
struct Utterance {
    speaker_role: String,
    human_transcript: String,
}

struct Call {
    sid: String,
    raw: Vec<Utterance>,
    segments: Vec<OwnedSegment>,
    events: Vec<CallEvent>,
}

fn calls() -> Vec<Call> {
    let engine = default_engine("banking.yaml");
    let sids = std::fs::read_to_string(format!("{DATA}/harper-valley/sids.txt")).unwrap();
    let mut out = Vec::new();
    for (n, sid) in sids.split_whitespace().enumerate() {
        let json =
            std::fs::read_to_string(format!("{DATA}/harper-valley/transcript/{sid}.json")).unwrap();
        let raw: Vec<Utterance> = serde_json::from_str(&json).unwrap();
        let segments = common::segments_of(&transcript::parse(json.as_bytes()).unwrap());
        let id = u128::try_from(n).unwrap() + 1;
        let events = run_transcript(&engine, call(id), &lang("en-US"), &segments);
        out.push(Call {
            sid: sid.to_owned(),
            raw,
            segments,
            events,
        });
    }
    out
}

#[test]
fn each_call_gives_the_expected_events() {
    let calls = calls();
    assert_eq!(calls.len(), 15);
    let mut failures = Vec::new();
    for c in &calls {
        let want = EXPECTED
            .iter()
            .find(|(sid, _)| *sid == c.sid)
            .map(|(_, w)| *w)
            .unwrap_or_else(|| panic!("no expectation for {}", c.sid));
        let got = render_all(&c.events);
        if got != want {
            failures.push(format!("{}:\n  want {want:?}\n  got  {got:?}", c.sid));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn agent_lines(c: &Call) -> impl Iterator<Item = &str> {
    c.raw
        .iter()
        .filter(|u| u.speaker_role == "agent")
        .map(|u| u.human_transcript.as_str())
}

#[test]
fn greeting_completes_where_the_agent_says_the_bank_name() {
    for c in calls() {
        let says_name = agent_lines(&c).any(|t| t.contains("harper valley national bank"));
        let completed = c.events.iter().any(|e| {
            matches!(e, CallEvent::ChecklistItemCompleted(x)
                if x.item.rule_id.as_str() == "greeting-bank-name")
        });
        assert_eq!(completed, says_name, "{}", c.sid);
    }
}

#[test]
fn calls_without_a_recording_disclosure_miss_it_at_call_end() {
    for c in calls() {
        let mentions = c.raw.iter().any(|u| u.human_transcript.contains("record"));
        assert!(!mentions, "{} mentions recording: update this test", c.sid);
        let missed_at_end = c.events.iter().any(|e| {
            matches!(e, CallEvent::ChecklistItemMissed(x)
                if x.item.rule_id.as_str() == "recording-disclosure"
                    && x.reason == MissReason::CallEnded)
        });
        assert!(missed_at_end, "{}", c.sid);
    }
}

#[test]
fn no_prohibited_alert_on_these_normal_calls() {
    // Words any of the prohibited rules needs; if an agent said one, an alert could be right.
    let needed: BTreeSet<&str> = [
        "guarantee",
        "guaranteed",
        "approved",
        "approval",
        "fee",
        "fees",
        "risk",
        "pin",
        "lose",
        "free",
    ]
    .into();
    for c in calls() {
        let words: BTreeSet<&str> = agent_lines(&c).flat_map(str::split_whitespace).collect();
        let said: Vec<_> = words.intersection(&needed).collect();
        let long_digit_run = agent_lines(&c).any(|t| t.contains("number is"));
        assert!(
            said.is_empty() && !long_digit_run,
            "{}: agent said {said:?}",
            c.sid
        );
        let alerts: Vec<_> = c
            .events
            .iter()
            .filter(|e| matches!(e, CallEvent::AlertRaised(_)))
            .collect();
        assert!(alerts.is_empty(), "{}: {alerts:?}", c.sid);
    }
}

#[test]
fn digits_read_out_across_utterances_are_joined() {
    // In this password-reset call the caller reads the phone number in pieces, twice:
    // "my phone number is one four two" | "six four one" | "nine eight four two", and later
    // "it's one four two" | "six four one" | "nine eight" | "four two". The banking rule
    // against reading out long numbers listens to agents only, so it stays quiet; the same
    // regex listening to anyone catches each reading once, where the ninth digit arrives.
    let sid = "0ece8b36d4c148b0";
    let c = calls().into_iter().find(|c| c.sid == sid).unwrap();
    assert!(
        !c.events
            .iter()
            .any(|e| matches!(e, CallEvent::AlertRaised(_)))
    );

    let any_speaker = common::engine(
        "digits.yaml",
        r#"
id: digits
version: 1
rules:
  - id: long-number
    kind: prohibited
    speaker: any
    message: A long number was read out.
    match:
      regex:
        - '(?:\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|\d)\b ){8,}\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|\d)\b'
"#,
    );
    let events = run_transcript(&any_speaker, call(99), &lang("en-US"), &c.segments);
    assert_eq!(
        render_all(&events),
        [
            "alert long-number warning @hv-12",
            "alert long-number warning @hv-17"
        ]
    );
}
