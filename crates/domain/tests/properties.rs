//! Properties of the pure fold over random valid event sequences.

use domain::testkit;
use domain::{CallEvent, CallId, CallListing, CallState, RecordedEvent};
use proptest::prelude::*;

fn record(call_id: CallId, events: Vec<CallEvent>) -> Vec<RecordedEvent> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| testkit::recorded(call_id, i as u64 + 1, event))
        .collect()
}

proptest! {
    /// The call list row and the full state never disagree on what they both show.
    #[test]
    fn listing_agrees_with_state(events in testkit::call_events(60)) {
        let recorded = record(CallId::new(), events);
        let mut listing = None;
        let mut state = CallState::default();
        for e in &recorded {
            CallListing::fold(&mut listing, e);
            state.apply(e);
            let l = listing.as_ref().expect("the first event starts the call");
            prop_assert_eq!(l.status, state.status);
            prop_assert_eq!(l.last_seq, state.version);
            prop_assert_eq!(l.alerts as usize, state.alerts.len());
            prop_assert_eq!(l.unacknowledged_alerts as usize, state.unacknowledged_alerts());
            prop_assert_eq!(l.segments as usize, state.segments.iter().filter(|s| s.segment.is_final).count());
            prop_assert_eq!(l.disposition, state.disposition.as_ref().map(|d| d.disposition));
        }
    }

    /// Folding is deterministic, and a state serialized and read back is the same state
    /// (what the CLI's `--json` and the API print can be trusted).
    #[test]
    fn replay_is_deterministic_and_serializable(events in testkit::call_events(60)) {
        let recorded = record(CallId::new(), events);
        let a = CallState::replay(&recorded);
        let b = CallState::replay(&recorded);
        prop_assert_eq!(&a, &b);
        let json = serde_json::to_string(&a).unwrap();
        let back: CallState = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, a);
        // Every event survives the stored encoding.
        for e in &recorded {
            let enc = e.event.encode();
            prop_assert_eq!(&domain::decode(enc.event_type, enc.schema_version, enc.payload).unwrap(), &e.event);
        }
    }
}
