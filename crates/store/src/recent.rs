//! The events this process committed last, kept so that the log's readers on the same node
//! get them without a round trip to the database.
//!
//! Why: on Postgres the hub reads the log back after every commit (`read_all` from its
//! position), and under load a commit holds one or two appends: one query per commit, with
//! its rows decoded again, for events this process had in hand a moment before. The assist
//! worker and the call list read the same recent events a few times a second.
//!
//! A read is answered from here only when that is exactly what the database would answer,
//! now or a moment later:
//!
//! - The events from `after + 1` on are here without a gap (positions `after + 1`,
//!   `after + 2`, …). Appends are serialized by the advisory lock, so no position below a
//!   committed one can commit later: a run without gaps is a prefix of what follows `after`.
//! - The run reaches the highest position this node knows to be committed ([`Recent::known`]:
//!   its own commits and other nodes' notices, noted before their wake-up is sent), or it
//!   fills the page. A commit of another node that lies in between leaves a gap here, and a
//!   notice of one beyond the run sends the read to the database.
//! - After anything that may hide a commit from this cache (lost notices, a commit whose
//!   outcome is unknown), it is emptied, so readers go to the database until it fills again.
//!
//! Anything else (a gap, a position older than the oldest kept) reads the database. Written
//! by hand: it is a bounded, position-ordered window of the log with these rules, which no
//! cache crate expresses.

use std::collections::VecDeque;
use std::sync::Mutex;

use domain::RecordedEvent;

/// Events kept (a few seconds of a busy node; each one is a decoded event).
pub(crate) const CAPACITY: usize = 4_096;

pub(crate) struct Recent {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    /// In increasing position order, not necessarily contiguous.
    events: VecDeque<RecordedEvent>,
    /// The highest position known to be committed; `None` until this node commits or hears
    /// of a commit, and again after [`Recent::forget`].
    known: Option<u64>,
}

impl Recent {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// Keeps the events of a committed transaction (any order; they are sorted here).
    pub(crate) fn committed(&self, mut events: Vec<RecordedEvent>) {
        events.sort_by_key(|e| e.meta.global_position);
        let mut inner = self.inner.lock().expect("recent events");
        for e in events {
            let position = e.meta.global_position.get();
            inner.known = Some(inner.known.map_or(position, |k| k.max(position)));
            if inner
                .events
                .back()
                .is_some_and(|last| last.meta.global_position.get() >= position)
            {
                // Out of order (never expected: commits are serialized): start over rather
                // than keep a window that is not sorted.
                inner.events.clear();
            }
            inner.events.push_back(e);
        }
        let excess = inner.events.len().saturating_sub(self.capacity);
        inner.events.drain(..excess);
    }

    /// Another node committed up to `position`.
    pub(crate) fn noticed(&self, position: u64) {
        let mut inner = self.inner.lock().expect("recent events");
        inner.known = Some(inner.known.map_or(position, |k| k.max(position)));
    }

    /// Commits may have happened that this cache cannot account for: forget what it holds
    /// and how far the log reaches.
    pub(crate) fn forget(&self) {
        let mut inner = self.inner.lock().expect("recent events");
        inner.events.clear();
        inner.known = None;
    }

    /// The events after `after` (at most `limit`), if this cache can answer exactly what the
    /// database would; `None` sends the read to the database.
    pub(crate) fn read(&self, after: u64, limit: usize) -> Option<Vec<RecordedEvent>> {
        let inner = self.inner.lock().expect("recent events");
        let known = inner.known?;
        let start = inner
            .events
            .partition_point(|e| e.meta.global_position.get() <= after);
        let mut out = Vec::new();
        let mut next = after + 1;
        for e in inner.events.range(start..) {
            if out.len() == limit || e.meta.global_position.get() != next {
                break;
            }
            out.push(e.clone());
            next += 1;
        }
        let reached = next - 1;
        if out.len() == limit || reached == known {
            // A full page, or everything up to the newest commit known (an empty answer only
            // when the reader is there already).
            Some(out)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{CallId, EventId, EventMetadata, GlobalPosition, Seq, TenantId};

    use super::*;

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            meta: EventMetadata {
                event_id: EventId::new(),
                tenant: TenantId::parse("acme").unwrap(),
                call_id: CallId::new(),
                seq: Seq::new(1),
                global_position: GlobalPosition::new(position),
                recorded_at: chrono::Utc::now(),
                trace_id: None,
                causation_id: None,
                correlation_id: None,
                schema_version: 1,
            },
            event: domain::testkit::alert(),
        }
    }

    fn positions(events: Option<Vec<RecordedEvent>>) -> Option<Vec<u64>> {
        events.map(|v| v.iter().map(|e| e.meta.global_position.get()).collect())
    }

    fn with(positions: &[u64]) -> Recent {
        let r = Recent::new(8);
        r.committed(positions.iter().map(|p| event(*p)).collect());
        r
    }

    #[test]
    fn a_run_without_gaps_up_to_the_newest_commit_is_answered() {
        let r = with(&[3, 4, 5]);
        assert_eq!(positions(r.read(2, 100)), Some(vec![3, 4, 5]));
        assert_eq!(positions(r.read(3, 100)), Some(vec![4, 5]));
        // At the newest position: nothing more, without asking the database.
        assert_eq!(positions(r.read(5, 100)), Some(vec![]));
        // A full page may stop anywhere.
        assert_eq!(positions(r.read(2, 2)), Some(vec![3, 4]));
    }

    #[test]
    fn what_is_not_held_without_a_gap_goes_to_the_database() {
        let r = with(&[3, 4, 6]);
        // 5 belongs to another node, or its transaction failed: only the database knows.
        assert_eq!(positions(r.read(4, 100)), None);
        assert_eq!(positions(r.read(2, 100)), None);
        // Older than the oldest kept, or ahead of everything known.
        assert_eq!(positions(r.read(1, 100)), None);
        assert_eq!(positions(r.read(7, 100)), None);
        // But a full page before the gap is exact.
        assert_eq!(positions(r.read(2, 2)), Some(vec![3, 4]));
        assert_eq!(positions(r.read(5, 100)), Some(vec![6]));
    }

    #[test]
    fn another_nodes_notice_beyond_the_run_sends_the_read_to_the_database() {
        let r = with(&[3, 4]);
        r.noticed(5);
        assert_eq!(positions(r.read(2, 100)), None);
        assert_eq!(positions(r.read(4, 100)), None);
        // An older notice changes nothing.
        let r = with(&[3, 4]);
        r.noticed(2);
        assert_eq!(positions(r.read(2, 100)), Some(vec![3, 4]));
    }

    #[test]
    fn forgetting_and_the_capacity_bound_what_is_answered() {
        let r = with(&[1, 2, 3]);
        r.forget();
        assert_eq!(positions(r.read(0, 100)), None);
        // Notices may have been lost: even the newest position is asked of the database.
        assert_eq!(positions(r.read(3, 100)), None);
        r.committed(vec![event(5)]);
        assert_eq!(positions(r.read(4, 100)), Some(vec![5]));
        assert_eq!(positions(r.read(3, 100)), None);
        let r = with(&(1..=20).collect::<Vec<_>>());
        assert_eq!(positions(r.read(11, 100)), None, "13 is the oldest kept");
        assert_eq!(positions(r.read(12, 100)), Some((13..=20).collect()));
    }

    #[test]
    fn a_node_that_has_seen_no_commit_answers_nothing() {
        // The log may hold what earlier processes wrote.
        let r = Recent::new(8);
        assert_eq!(positions(r.read(0, 100)), None);
        assert_eq!(positions(r.read(4, 100)), None);
        // A notice alone says how far the log reaches.
        r.noticed(4);
        assert_eq!(positions(r.read(4, 100)), Some(vec![]));
        assert_eq!(positions(r.read(3, 100)), None);
    }
}
