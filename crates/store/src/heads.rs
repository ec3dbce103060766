//! The heads of the calls a node appended to, as its own commits left them.
//!
//! The Postgres committer's transaction reads each call's head under the append lock before
//! it plans a batch: `BEGIN` + lock, the heads, the insert, `COMMIT`, four round trips. For a
//! call this node wrote last, its own last commit already told it the head: the committer
//! plans with these heads and writes the batch in one statement that takes the lock itself,
//! one round trip, and takes the transaction only when a call is not known here, the plan
//! refuses or deduplicates something, or the statement was refused.
//!
//! # Invariant
//!
//! A known head is never newer than the log's: the log is append-only, so a head can only
//! have moved on since it was noted, never back. When another node appended to the call
//! meanwhile, the statement inserts a seq that is already taken (or an event id that is
//! already stored, for a retry), the database refuses it whole (`UNIQUE (call_id, seq)`,
//! `UNIQUE (event_id)`), and the batch is planned again from the heads the database gives.
//! So a stale head costs a round trip, never a wrong answer: nothing is refused or
//! deduplicated on the strength of a head known here. Whatever may be stale is dropped as
//! soon as this node hears of it (another node's notice for the call), and everything is
//! dropped when a commit's outcome is unknown.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use domain::CallId;

use crate::batch::{AppendRequest, Head};

/// Calls whose heads are kept; past it, every head is dropped at once (a dropped head costs
/// the call's next append the transaction, which reads it again under the lock).
pub(crate) const CAPACITY: usize = 65_536;

pub(crate) struct KnownHeads {
    heads: Mutex<HashMap<CallId, Head>>,
    capacity: usize,
}

impl KnownHeads {
    pub fn new(capacity: usize) -> Self {
        Self {
            heads: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The heads of every call in the batch, or `None` if any of them is not known here.
    pub fn of(&self, batch: &[AppendRequest]) -> Option<HashMap<CallId, Head>> {
        let heads = self.heads.lock().expect("known heads");
        let mut out = HashMap::with_capacity(batch.len());
        for r in batch {
            if let Entry::Vacant(slot) = out.entry(r.call_id) {
                slot.insert(heads.get(&r.call_id)?.clone());
            }
        }
        Some(out)
    }

    /// Notes heads that are true now: read under the append lock, or just committed.
    pub fn learned(&self, learned: impl IntoIterator<Item = (CallId, Head)>) {
        let mut heads = self.heads.lock().expect("known heads");
        for (call, head) in learned {
            if heads.len() >= self.capacity && !heads.contains_key(&call) {
                heads.clear();
            }
            heads.insert(call, head);
        }
    }

    /// Another node appended to the call (or may have): its head is no longer known here.
    pub fn moved(&self, call: &CallId) {
        self.heads.lock().expect("known heads").remove(call);
    }

    /// Forgets every head: a commit's outcome is unknown, or notices may have been lost.
    pub fn forget(&self) {
        self.heads.lock().expect("known heads").clear();
    }
}

#[cfg(test)]
mod tests {
    use domain::{Seq, TenantId};
    use tokio::sync::oneshot;

    use super::*;
    use crate::ExpectedVersion;

    fn request(call: CallId) -> AppendRequest {
        AppendRequest {
            call_id: call,
            tenant: TenantId::default_tenant(),
            expected: ExpectedVersion::Any,
            events: Vec::new(),
            reply: oneshot::channel().0,
        }
    }

    fn head(version: u64) -> Head {
        Head {
            version: Seq::new(version),
            tenant: TenantId::default_tenant(),
        }
    }

    #[test]
    fn a_batch_is_known_only_when_every_call_in_it_is() {
        let known = KnownHeads::new(8);
        let (a, b) = (CallId::new(), CallId::new());
        known.learned([(a, head(3))]);
        let of = known.of(&[request(a), request(a)]).unwrap();
        assert_eq!(of.len(), 1);
        assert_eq!(of[&a].version, Seq::new(3));
        assert!(known.of(&[request(a), request(b)]).is_none());
        known.learned([(a, head(5)), (b, head(1))]);
        let of = known.of(&[request(b), request(a)]).unwrap();
        assert_eq!((of[&a].version, of[&b].version), (Seq::new(5), Seq::new(1)));
    }

    #[test]
    fn moved_and_forgotten_heads_are_not_known() {
        let known = KnownHeads::new(8);
        let (a, b) = (CallId::new(), CallId::new());
        known.learned([(a, head(1)), (b, head(2))]);
        known.moved(&a);
        assert!(known.of(&[request(a)]).is_none());
        assert!(known.of(&[request(b)]).is_some());
        known.forget();
        assert!(known.of(&[request(b)]).is_none());
    }

    #[test]
    fn past_its_capacity_it_starts_over() {
        let known = KnownHeads::new(2);
        let calls: Vec<CallId> = (0..3).map(|_| CallId::new()).collect();
        known.learned([(calls[0], head(1)), (calls[1], head(1))]);
        // Updating a known call does not count against the capacity.
        known.learned([(calls[1], head(2))]);
        assert!(known.of(&[request(calls[0]), request(calls[1])]).is_some());
        known.learned([(calls[2], head(1))]);
        assert!(known.of(&[request(calls[0])]).is_none());
        assert!(known.of(&[request(calls[2])]).is_some());
    }
}
