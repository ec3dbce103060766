//! The cases every `EventStore` must pass.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use domain::{CallId, CorrelationId, EventId, GlobalPosition, NewEvent, Seq, TenantId, TraceId};
use store::{EventStore, ExpectedVersion, StoreError, Wakeup};
use tokio::sync::broadcast::error::RecvError;

use crate::Harness;
use crate::fixtures::{alert, segment, started, tenant, wakeup_for};

const ANY: ExpectedVersion = ExpectedVersion::Any;

fn exact(n: u64) -> ExpectedVersion {
    ExpectedVersion::Exact(Seq::new(n))
}

pub async fn append_and_read_back(h: &Harness) {
    let s = &h.store;
    let call = CallId::new();
    let trace = TraceId::parse("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let correlation = CorrelationId::new();
    let first = started()
        .with_trace(Some(trace.clone()))
        .correlated(correlation);
    let cause = first.event_id;
    let events = vec![
        first,
        segment(1, "my ac stopped cooling").correlated(correlation),
        alert().caused_by(cause),
    ];
    let out = s
        .append(call, &tenant(), exact(0), events.clone())
        .await
        .unwrap();
    assert!(!out.deduplicated);
    assert_eq!(
        out.positions.iter().map(|p| p.0.get()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(out.positions.windows(2).all(|w| w[0].1 < w[1].1));

    let read = s.read_stream(call, Seq::ZERO, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    for ((got, want), (seq, pos)) in read.iter().zip(&events).zip(&out.positions) {
        assert_eq!(got.event, want.event);
        assert_eq!(got.meta.event_id, want.event_id);
        assert_eq!(got.meta.seq, *seq);
        assert_eq!(got.meta.global_position, *pos);
        assert_eq!(got.meta.call_id, call);
        assert_eq!(got.meta.tenant, tenant());
        assert_eq!(got.meta.schema_version, 1);
    }
    assert_eq!(read[0].meta.trace_id, Some(trace));
    assert_eq!(read[0].meta.correlation_id, Some(correlation));
    assert_eq!(read[1].meta.correlation_id, Some(correlation));
    assert_eq!(read[1].meta.trace_id, None);
    assert_eq!(read[2].meta.causation_id, Some(cause));
    let age = chrono::Utc::now() - read[0].meta.recorded_at;
    assert!(
        age.num_seconds().abs() < 60,
        "recorded_at is now-ish: {age}"
    );

    assert_eq!(s.stream_version(call).await.unwrap(), Seq::new(3));
    assert_eq!(s.stream_version(CallId::new()).await.unwrap(), Seq::ZERO);
    assert_eq!(s.head().await.unwrap(), out.last_position());
    // The other node sees the same log.
    assert_eq!(
        h.other_node
            .read_stream(call, Seq::ZERO, 100)
            .await
            .unwrap(),
        read
    );
}

pub async fn wrong_expected_version_is_a_conflict(h: &Harness) {
    let s = &h.store;
    let call = CallId::new();
    s.append(call, &tenant(), exact(0), vec![started()])
        .await
        .unwrap();
    s.append(call, &tenant(), exact(1), vec![segment(1, "hello")])
        .await
        .unwrap();

    for expected in [0, 1, 5] {
        let err = s
            .append(call, &tenant(), exact(expected), vec![segment(9, "late")])
            .await
            .unwrap_err();
        match err {
            StoreError::Conflict {
                call_id,
                expected: e,
                current,
            } => {
                assert_eq!(call_id, call);
                assert_eq!(e, Seq::new(expected));
                assert_eq!(
                    current,
                    Seq::new(2),
                    "the error carries the current version"
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    // Nothing was written by the refused appends; the right version still works.
    assert_eq!(s.stream_version(call).await.unwrap(), Seq::new(2));
    let out = s
        .append(
            call,
            &tenant(),
            exact(2),
            vec![segment(2, "ok"), segment(3, "ok")],
        )
        .await
        .unwrap();
    assert_eq!(out.last_seq(), Seq::new(4));
    // A conflict seen from the other node, too.
    let err = h
        .other_node
        .append(call, &tenant(), exact(2), vec![segment(4, "x")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { current, .. } if current == Seq::new(4)));
}

pub async fn idempotent_retry_returns_original_positions(h: &Harness) {
    let s = &h.store;
    let call = CallId::new();
    let batch = vec![started(), segment(1, "hello"), segment(2, "hi there")];
    let first = s
        .append(call, &tenant(), exact(0), batch.clone())
        .await
        .unwrap();
    s.append(call, &tenant(), ANY, vec![segment(3, "after")])
        .await
        .unwrap();
    let head = s.head().await.unwrap();

    // The retry carries the expected version of the original attempt: still not a conflict.
    for store in [&h.store, &h.other_node] {
        let retry = store
            .append(call, &tenant(), exact(0), batch.clone())
            .await
            .unwrap();
        assert!(retry.deduplicated);
        assert_eq!(retry.positions, first.positions);
    }
    // A retry of a suffix of the original append is a retry too.
    let tail = s
        .append(call, &tenant(), ANY, batch[1..].to_vec())
        .await
        .unwrap();
    assert!(tail.deduplicated);
    assert_eq!(tail.positions, first.positions[1..].to_vec());

    assert_eq!(s.head().await.unwrap(), head, "no new rows");
    assert_eq!(s.read_stream(call, Seq::ZERO, 100).await.unwrap().len(), 4);
}

pub async fn partial_or_foreign_retry_is_refused(h: &Harness) {
    let s = &h.store;
    let call = CallId::new();
    let a = started();
    let b = segment(1, "hello");
    s.append(call, &tenant(), exact(0), vec![a.clone(), b.clone()])
        .await
        .unwrap();
    let head = s.head().await.unwrap();

    let cases: Vec<(&str, CallId, Vec<NewEvent>)> = vec![
        (
            "old id with a new one",
            call,
            vec![b.clone(), segment(2, "new")],
        ),
        (
            "new id then an old one",
            call,
            vec![segment(2, "new"), a.clone()],
        ),
        ("old ids out of order", call, vec![b.clone(), a.clone()]),
        ("old id on another call", CallId::new(), vec![a.clone()]),
    ];
    for (name, target, events) in cases {
        let err = s.append(target, &tenant(), ANY, events).await.unwrap_err();
        assert!(
            matches!(err, StoreError::IdempotencyMismatch { .. }),
            "{name}: {err:?}"
        );
    }
    assert_eq!(s.head().await.unwrap(), head, "nothing written");
}

pub async fn racing_retries_write_once(h: &Harness) {
    let call = CallId::new();
    h.store
        .append(call, &tenant(), exact(0), vec![started()])
        .await
        .unwrap();
    let batch = vec![segment(1, "my furnace is making a noise"), alert()];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 {
            h.store.clone()
        } else {
            h.other_node.clone()
        };
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(call, &tenant(), exact(1), batch)
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| !o.deduplicated).count(), 1);
    assert!(
        outcomes
            .iter()
            .all(|o| o.positions == outcomes[0].positions)
    );
    assert_eq!(h.store.stream_version(call).await.unwrap(), Seq::new(3));
}

pub async fn read_ordering_and_paging(h: &Harness) {
    let s = &h.store;
    let calls: Vec<CallId> = (0..3).map(|_| CallId::new()).collect();
    let start = s.head().await.unwrap();
    for c in &calls {
        s.append(*c, &tenant(), exact(0), vec![started()])
            .await
            .unwrap();
    }
    // Interleave the calls' segments.
    for n in 1..=10 {
        for c in &calls {
            s.append(*c, &tenant(), ANY, vec![segment(n, "words")])
                .await
                .unwrap();
        }
    }
    // Stream reads: in seq order, paged by `after` and `limit`.
    let mut seen = Vec::new();
    let mut after = Seq::ZERO;
    loop {
        let page = s.read_stream(calls[1], after, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().unwrap().meta.seq;
        seen.extend(page.into_iter().map(|e| e.meta.seq.get()));
    }
    assert_eq!(seen, (1..=11).collect::<Vec<_>>());
    assert!(
        s.read_stream(calls[1], Seq::new(11), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Read-all: strictly increasing positions, each call in seq order.
    let all = s.read_all(start, 1_000).await.unwrap();
    assert_eq!(all.len(), 33);
    assert!(
        all.windows(2)
            .all(|w| w[0].meta.global_position < w[1].meta.global_position)
    );
    let mut last: HashMap<CallId, Seq> = HashMap::new();
    for e in &all {
        let prev = last.insert(e.meta.call_id, e.meta.seq).unwrap_or(Seq::ZERO);
        assert_eq!(e.meta.seq, prev.next());
    }
    let page = s.read_all(all[9].meta.global_position, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.meta.event_id).collect::<Vec<_>>(),
        all[10..15]
            .iter()
            .map(|e| e.meta.event_id)
            .collect::<Vec<_>>()
    );
}

pub async fn read_all_from_a_checkpoint(h: &Harness) {
    let s = &h.store;
    assert_eq!(
        s.load_checkpoint("call-index").await.unwrap(),
        GlobalPosition::ZERO
    );
    let call = CallId::new();
    let out = s
        .append(
            call,
            &tenant(),
            exact(0),
            vec![started(), segment(1, "a"), segment(2, "b")],
        )
        .await
        .unwrap();
    s.save_checkpoint("call-index", out.positions[1].1)
        .await
        .unwrap();
    // A restarted consumer (on either node) resumes exactly after its checkpoint.
    for store in [&h.store, &h.other_node] {
        let from = store.load_checkpoint("call-index").await.unwrap();
        assert_eq!(from, out.positions[1].1);
        let rest = store.read_all(from, 100).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].meta.seq, Seq::new(3));
    }
    s.save_checkpoint("call-index", out.positions[2].1)
        .await
        .unwrap();
    assert_eq!(
        s.load_checkpoint("call-index").await.unwrap(),
        out.positions[2].1
    );
    assert_eq!(
        s.load_checkpoint("llm-worker").await.unwrap(),
        GlobalPosition::ZERO
    );
}

pub async fn other_tenant_cannot_append(h: &Harness) {
    let s = &h.store;
    let call = CallId::new();
    s.append(call, &tenant(), exact(0), vec![started()])
        .await
        .unwrap();
    let intruder = TenantId::parse("other-co").unwrap();
    let err = s
        .append(call, &intruder, ANY, vec![segment(1, "hi")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TenantMismatch { call_id } if call_id == call));
    assert_eq!(s.stream_version(call).await.unwrap(), Seq::new(1));
}

pub async fn bad_appends_write_nothing(h: &Harness) {
    let s = &h.store;
    let call = CallId::new();
    let head = s.head().await.unwrap();

    let err = s.append(call, &tenant(), ANY, vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidAppend(_)), "{err:?}");

    let e = started();
    let err = s
        .append(call, &tenant(), ANY, vec![e.clone(), e])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");

    // Over the payload limit (64 KiB by default): refused before the transaction, and the
    // valid events in the same append are not written either.
    let huge = segment(1, &"lorem ipsum ".repeat(7_000));
    let huge_id = huge.event_id;
    let err = s
        .append(call, &tenant(), exact(0), vec![started(), huge])
        .await
        .unwrap_err();
    match err {
        StoreError::PayloadTooLarge {
            event_id,
            size,
            limit,
        } => {
            assert_eq!(event_id, huge_id);
            assert!(size > limit);
            assert_eq!(limit, 64 * 1024);
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert_eq!(s.head().await.unwrap(), head);
    assert_eq!(s.stream_version(call).await.unwrap(), Seq::ZERO);
}

pub async fn wakeups_follow_commits(h: &Harness) {
    let mut rx = h.store.subscribe();
    let call = CallId::new();
    let events = vec![started(), segment(1, "hi")];
    let out_ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
    let out = h
        .store
        .append(call, &tenant(), exact(0), events)
        .await
        .unwrap();
    let w = wakeup_for(&mut rx, call).await;
    assert_eq!(w, (Seq::new(2), out.last_position()));
    // The rows are there when the wake-up arrives.
    let rows = h
        .store
        .read_all(GlobalPosition::new(w.1.get() - 1), 10)
        .await
        .unwrap();
    assert_eq!(rows[0].meta.global_position, w.1);
    // A deduplicated retry wakes nobody: the next wake-up is for the next real append.
    let retry = h
        .store
        .append(
            call,
            &tenant(),
            ANY,
            vec![segment(1, "hi")]
                .into_iter()
                .map(|mut e| {
                    e.event_id = out_ids[1];
                    e
                })
                .collect(),
        )
        .await
        .unwrap();
    assert!(retry.deduplicated);
    let other = CallId::new();
    h.store
        .append(other, &tenant(), exact(0), vec![started()])
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Ok(Wakeup::Appended { call_id, .. }) => return call_id,
                Ok(Wakeup::Resync) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => panic!("wake-ups closed"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(next, other);
}

/// 16 writers (on two store instances, i.e. two nodes) append at least 2,000 events each to
/// their own calls while a consumer tails read-all: the consumer sees every event exactly
/// once, in global order, and each call in seq order.
pub async fn concurrent_writers_and_a_tailing_consumer(h: &Harness) {
    const WRITERS: usize = 16;
    const PER_WRITER: usize = 2_000;
    const CALLS_PER_WRITER: usize = 4;
    let start = h.store.head().await.unwrap();
    let total = WRITERS * PER_WRITER;

    let consumer = {
        let store = h.store.clone();
        let mut wake = store.subscribe();
        tokio::spawn(async move {
            let mut seen: Vec<(EventId, CallId, Seq, GlobalPosition)> = Vec::with_capacity(total);
            let mut after = start;
            while seen.len() < total {
                let page = store.read_all(after, 500).await.unwrap();
                if page.is_empty() {
                    // Wait for a wake-up, but poll too: wake-ups are hints, rows are truth.
                    let _ = tokio::time::timeout(Duration::from_millis(50), wake.recv()).await;
                    continue;
                }
                for e in page {
                    after = e.meta.global_position;
                    seen.push((e.meta.event_id, e.meta.call_id, e.meta.seq, after));
                }
            }
            seen
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store: Arc<dyn EventStore> = if w % 2 == 0 {
            h.store.clone()
        } else {
            h.other_node.clone()
        };
        writers.push(tokio::spawn(async move {
            let calls: Vec<CallId> = (0..CALLS_PER_WRITER).map(|_| CallId::new()).collect();
            let mut versions = [Seq::ZERO; CALLS_PER_WRITER];
            let mut written = Vec::with_capacity(PER_WRITER);
            let mut n = 0usize;
            let mut rng = w as u64 * 7919 + 1;
            while n < PER_WRITER {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let c = (rng >> 33) as usize % CALLS_PER_WRITER;
                let size = (1 + (rng >> 40) as usize % 4).min(PER_WRITER - n);
                let events: Vec<NewEvent> = (0..size)
                    .map(|k| {
                        if versions[c] == Seq::ZERO && k == 0 {
                            started()
                        } else {
                            segment((n + k) as u64, "can you confirm the service address")
                        }
                    })
                    .collect();
                written.extend(events.iter().map(|e| e.event_id));
                let out = store
                    .append(
                        calls[c],
                        &tenant(),
                        ExpectedVersion::Exact(versions[c]),
                        events,
                    )
                    .await
                    .unwrap();
                versions[c] = out.last_seq();
                n += size;
            }
            written
        }));
    }
    let mut written = HashSet::with_capacity(total);
    for w in writers {
        for id in w.await.unwrap() {
            assert!(written.insert(id));
        }
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), consumer)
        .await
        .expect("the consumer caught up")
        .unwrap();

    assert_eq!(seen.len(), total);
    let ids: HashSet<EventId> = seen.iter().map(|s| s.0).collect();
    assert_eq!(ids.len(), total, "no event seen twice");
    assert_eq!(ids, written, "every written event seen");
    assert!(
        seen.windows(2).all(|w| w[0].3 < w[1].3),
        "global order is strictly increasing"
    );
    let mut last: HashMap<CallId, Seq> = HashMap::new();
    for (_, call, seq, _) in &seen {
        let prev = last.insert(*call, *seq).unwrap_or(Seq::ZERO);
        assert_eq!(*seq, prev.next(), "each call in seq order, no gaps");
    }
    assert_eq!(last.len(), WRITERS * CALLS_PER_WRITER);
}

/// A node may answer `read_all` from the events it committed itself (Postgres: `recent.rs`).
/// Whatever it answers from must be the log as the database holds it, field for field,
/// whichever position a reader starts at and however small its page: with another node's
/// commits between this node's, a retried append deduplicated and a refused one.
pub async fn read_all_on_the_writing_node_is_the_logs(h: &Harness) {
    let start = h.store.head().await.unwrap();
    let mut heard = h.other_node.subscribe();
    let (mine, theirs) = (CallId::new(), CallId::new());
    let trace = TraceId::parse("0af7651916cd43dd8448eb211c80319c").unwrap();
    let correlation = CorrelationId::new();
    let first = started().with_trace(Some(trace)).correlated(correlation);
    let cause = first.event_id;
    let a = |call, expected, events| async move {
        h.store
            .append(call, &tenant(), expected, events)
            .await
            .unwrap()
    };
    let b = |call, expected, events| async move {
        h.other_node
            .append(call, &tenant(), expected, events)
            .await
            .unwrap()
    };
    let opening = vec![first, segment(1, "my heat pump is icing up")];
    let retry = opening.clone();
    a(mine, exact(0), opening).await;
    b(theirs, exact(0), vec![started()]).await;
    a(mine, exact(2), vec![alert().caused_by(cause)]).await;
    assert!(a(mine, ANY, retry).await.deduplicated);
    let refused = h
        .store
        .append(mine, &tenant(), exact(1), vec![segment(9, "stale")])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    b(
        theirs,
        exact(1),
        vec![segment(1, "a second node's segment")],
    )
    .await;
    let last = a(
        mine,
        exact(3),
        vec![
            segment(2, "since monday"),
            segment(3, "the unit is outside"),
        ],
    )
    .await;
    let end = last.last_position();

    // Where nodes hear of each other's commits, the other node waits for the last one: from
    // then on it knows how far the log reaches (before, it may answer up to its own newest
    // commit, and its wake-up sends its readers back for the rest).
    if h.wakes_across_nodes {
        while wakeup_for(&mut heard, mine).await.1 != end {}
    }
    let truth = h.fresh_node().await;
    // Positions increase but need not be consecutive (a statement refused by the database
    // may have drawn some).
    let written = truth.read_all(start, 100).await.unwrap();
    assert_eq!(written.len(), 7, "seven events were written");
    assert_eq!(written.last().unwrap().meta.global_position, end);
    for node in [&h.store, &h.other_node] {
        for after in start.get()..=end.get() {
            for limit in [1, 2, 3, 100] {
                let after = GlobalPosition::new(after);
                let got = node.read_all(after, limit).await.unwrap();
                let want = truth.read_all(after, limit).await.unwrap();
                assert_eq!(got, want, "read_all after {after:?}, {limit} at most");
            }
        }
    }
}

/// Two nodes append to the same call, each planning from what its own commits told it of the
/// call's head (Postgres, `heads.rs`), so each node's knowledge goes stale whenever the other
/// writes: every answer is still the one the log gives (a conflict only where the log's head
/// differs, a retry deduplicated to the positions the other node was given), and after both
/// have written at once the call's seqs are 1, 2, 3… with every event once, where each
/// answer said it is.
pub async fn one_call_written_from_two_nodes(h: &Harness) {
    let call = CallId::new();
    let on = move |node: &Arc<dyn store::Store>, expected, events| {
        let node = node.clone();
        async move { node.append(call, &tenant(), expected, events).await }
    };
    let (a, b) = (&h.store, &h.other_node);
    let mut answers = Vec::new();
    let mut keep = |out: Result<store::AppendOutcome, StoreError>| {
        let out = out.unwrap();
        answers.push(out.clone());
        out
    };

    keep(on(a, exact(0), vec![started()]).await);
    keep(on(a, exact(1), vec![segment(1, "my heat pump is icing up")]).await);
    let theirs = vec![segment(2, "since monday"), segment(3, "it is outside")];
    let retry = theirs.clone();
    let by_b = keep(on(b, ANY, theirs).await);
    assert_eq!(by_b.last_seq(), Seq::new(4));
    // A last wrote seq 2: its expectation is stale, whatever it heard of B's commit.
    match on(a, exact(2), vec![segment(4, "stale")]).await {
        Err(StoreError::Conflict {
            expected, current, ..
        }) => assert_eq!((expected, current), (Seq::new(2), Seq::new(4))),
        other => panic!("a conflict at the log's head, not {other:?}"),
    }
    let by_a = keep(on(a, ANY, vec![alert()]).await);
    assert_eq!(by_a.last_seq(), Seq::new(5));
    // B last wrote seq 4 but is told the log's head: it is not refused on stale knowledge.
    let by_b = keep(on(b, exact(5), vec![segment(5, "the unit is new")]).await);
    assert_eq!(by_b.last_seq(), Seq::new(6));
    // A resends B's append: the same events, where B put them.
    let again = on(a, ANY, retry).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.positions, answers[2].positions);
    match on(b, exact(4), vec![segment(6, "stale too")]).await {
        Err(StoreError::Conflict { current, .. }) => assert_eq!(current, Seq::new(6)),
        other => panic!("a conflict at the log's head, not {other:?}"),
    }

    // Both nodes at once, each knowing a head the other keeps moving.
    let writer = move |node: Arc<dyn store::Store>, salt: u64| async move {
        let mut out = Vec::new();
        for i in 0..40u64 {
            let events = (0..1 + (i * 7 + salt) % 3)
                .map(|k| segment(100 * salt + 10 * i + k, "both nodes at once"))
                .collect();
            out.push(on(&node, ANY, events).await.unwrap());
        }
        out
    };
    let (from_a, from_b) = tokio::join!(
        tokio::spawn(writer(a.clone(), 1)),
        tokio::spawn(writer(b.clone(), 2))
    );
    answers.extend(from_a.unwrap());
    answers.extend(from_b.unwrap());

    let log = store::load_stream(h.fresh_node().await.as_ref(), call, None)
        .await
        .unwrap();
    let seqs: Vec<u64> = log.iter().map(|e| e.meta.seq.get()).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>(), "1, 2, 3…");
    let given: HashMap<Seq, GlobalPosition> = answers
        .iter()
        .flat_map(|o| o.positions.iter().copied())
        .collect();
    assert_eq!(
        given.len(),
        log.len(),
        "every stored event was answered once"
    );
    for e in &log {
        assert_eq!(
            given[&e.meta.seq], e.meta.global_position,
            "seq {}",
            e.meta.seq
        );
    }
    assert!(
        log.windows(2)
            .all(|w| w[0].meta.global_position < w[1].meta.global_position)
    );
}
