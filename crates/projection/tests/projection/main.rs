//! The call-list projection and the runner, on both backends.

use std::sync::Arc;
use std::time::Duration;

use domain::event::{
    AlertAcknowledged, CallEnded, Disposition, DispositionOverridden, EndReason, Summary,
    SummaryGenerated,
};
use domain::testkit;
use domain::{
    ActorId, AgentId, CallEvent, CallId, CallListing, CallStatus, GlobalPosition, NewEvent,
    RecordedEvent, Seq, TenantId,
};
use projection::{CallIndex, Projection, ProjectionError, Runner};
use store::testkit::TestStore;
use store::{CallQuery, EventStore, ExpectedVersion};
use tokio_util::sync::CancellationToken;

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = store::testkit::TestStore::sqlite();
                    super::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = store::testkit::TestStore::postgres(concat!("projection::", stringify!($case))).await else {
                        return;
                    };
                    super::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

on_both!(
    call_list_follows_the_log,
    competing_instances_apply_each_event_once,
    runner_follows_wakeups_until_shutdown,
    runner_reads_at_most_once_per_interval,
    state_rebuilt_at_any_seq,
);

fn actor() -> ActorId {
    ActorId::parse("lead-1").unwrap()
}

async fn append(store: &dyn EventStore, call: CallId, tenant: &str, events: Vec<CallEvent>) {
    store
        .append(
            call,
            &TenantId::parse(tenant).unwrap(),
            ExpectedVersion::Any,
            events.into_iter().map(NewEvent::new).collect(),
        )
        .await
        .unwrap();
}

async fn call_list_follows_the_log(db: &TestStore) {
    let store = db.open().await;
    let s = store.as_ref();
    let (booked, live, other) = (CallId::new(), CallId::new(), CallId::new());
    let first_alert = testkit::alert();
    let CallEvent::AlertRaised(raised) = &first_alert else {
        unreachable!()
    };
    append(
        s,
        booked,
        "acme-hvac",
        vec![
            testkit::started("acme-hvac", "agent-7"),
            testkit::segment(1, "my ac stopped cooling", true),
            first_alert.clone(),
            testkit::alert(),
            CallEvent::AlertAcknowledged(AlertAcknowledged {
                alert_id: raised.alert_id,
                by: actor(),
            }),
            CallEvent::CallEnded(CallEnded {
                reason: EndReason::Completed,
                by: actor(),
            }),
            CallEvent::SummaryGenerated(SummaryGenerated {
                summary: Summary {
                    reason_for_call: "AC not cooling".into(),
                    actions_taken: vec!["Booked a visit".into()],
                    next_steps: vec![],
                },
                disposition: Disposition::Booked,
                confidence: 0.9,
                provider: "offline".into(),
                model: "extractive-v1".into(),
            }),
            CallEvent::DispositionOverridden(DispositionOverridden {
                from: Some(Disposition::Booked),
                to: Disposition::Lead,
                by: actor(),
                note: None,
            }),
        ],
    )
    .await;
    // Started later: first in the list.
    tokio::time::sleep(Duration::from_millis(5)).await;
    append(
        s,
        live,
        "acme-hvac",
        vec![
            testkit::started("acme-hvac", "agent-9"),
            testkit::segment(1, "hello i", false),
            testkit::segment(1, "hello i need a plumber", true),
        ],
    )
    .await;
    append(
        s,
        other,
        "other-co",
        vec![testkit::started("other-co", "agent-7")],
    )
    .await;

    let runner = Runner::new(store.clone()).batch_size(4);
    let reached = runner.catch_up(&mut CallIndex).await.unwrap();
    assert_eq!(reached, s.head().await.unwrap());
    assert_eq!(s.load_checkpoint(CallIndex::NAME).await.unwrap(), reached);

    let acme = TenantId::parse("acme-hvac").unwrap();
    let all = s
        .list_calls(&CallQuery::tenant(acme.clone()))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|l| l.call_id).collect::<Vec<_>>(),
        vec![live, booked]
    );
    let (l, b) = (&all[0], &all[1]);
    assert_eq!(
        (l.status, l.segments, l.alerts, l.last_seq),
        (CallStatus::Live, 1, 0, Seq::new(3))
    );
    assert_eq!(l.agent, AgentId::parse("agent-9").unwrap());
    assert_eq!(b.status, CallStatus::Ended);
    assert!(b.ended_at.is_some());
    assert_eq!((b.segments, b.alerts, b.unacknowledged_alerts), (1, 2, 1));
    assert_eq!(
        b.disposition,
        Some(Disposition::Lead),
        "the human override wins"
    );

    // Filters and keyed pages.
    let q = |f: &dyn Fn(&mut CallQuery)| {
        let mut q = CallQuery::tenant(acme.clone());
        f(&mut q);
        q
    };
    let ids = |v: Vec<domain::CallListing>| v.into_iter().map(|l| l.call_id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .list_calls(&q(&|q| q.status = Some(CallStatus::Live)))
            .await
            .unwrap()),
        vec![live]
    );
    assert_eq!(
        ids(s
            .list_calls(&q(&|q| q.status = Some(CallStatus::Ended)))
            .await
            .unwrap()),
        vec![booked]
    );
    assert_eq!(
        ids(s
            .list_calls(&q(&|q| q.agent = Some(AgentId::parse("agent-7").unwrap())))
            .await
            .unwrap()),
        vec![booked]
    );
    assert!(
        s.list_calls(&q(
            &|q| q.since = Some(chrono::Utc::now() + chrono::Duration::hours(1))
        ))
        .await
        .unwrap()
        .is_empty()
    );
    let page1 = s.list_calls(&q(&|q| q.limit = 1)).await.unwrap();
    assert_eq!(ids(page1.clone()), vec![live]);
    let cursor = (page1[0].started_at, page1[0].call_id);
    let page2 = s
        .list_calls(&q(&|q| {
            q.limit = 1;
            q.before = Some(cursor);
        }))
        .await
        .unwrap();
    assert_eq!(ids(page2), vec![booked]);
    let other_tenant = s
        .list_calls(&CallQuery::tenant(TenantId::parse("other-co").unwrap()))
        .await
        .unwrap();
    assert_eq!(ids(other_tenant), vec![other]);

    // A restarted projection resumes from its checkpoint: nothing is counted twice.
    drop(runner);
    let store2 = db.open().await;
    append(store2.as_ref(), live, "acme-hvac", vec![testkit::alert()]).await;
    Runner::new(store2.clone())
        .catch_up(&mut CallIndex)
        .await
        .unwrap();
    let rows = store2.call_listings(&[booked, live]).await.unwrap();
    let by_id = |id| rows.iter().find(|l| l.call_id == id).unwrap();
    assert_eq!(by_id(live).alerts, 1);
    assert_eq!(by_id(booked).alerts, 2);
}

/// Two nodes each run the projection while calls stream in: every alert is counted once.
async fn competing_instances_apply_each_event_once(db: &TestStore) {
    let nodes: Vec<Arc<dyn EventStore>> = vec![db.open().await, db.open().await];
    let shutdown = CancellationToken::new();
    let mut runners = Vec::new();
    for node in &nodes {
        let (node, shutdown) = (node.clone(), shutdown.clone());
        runners.push(tokio::spawn(async move {
            Runner::new(node)
                .batch_size(7)
                .run(&mut CallIndex, shutdown)
                .await;
        }));
    }
    let calls: Vec<CallId> = (0..10).map(|_| CallId::new()).collect();
    for (i, c) in calls.iter().enumerate() {
        append(
            nodes[i % 2].as_ref(),
            *c,
            "acme-hvac",
            vec![testkit::started("acme-hvac", "agent-1")],
        )
        .await;
    }
    for round in 0..30 {
        for (i, c) in calls.iter().enumerate() {
            append(
                nodes[(i + round) % 2].as_ref(),
                *c,
                "acme-hvac",
                vec![testkit::alert()],
            )
            .await;
        }
    }
    // Let both runners finish what they see, then stop them and catch up once more.
    let head = nodes[0].head().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while nodes[0].load_checkpoint(CallIndex::NAME).await.unwrap() < head {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the runners caught up");
    shutdown.cancel();
    for r in runners {
        r.await.unwrap();
    }
    let rows = nodes[0].call_listings(&calls).await.unwrap();
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|l| l.alerts == 30 && l.last_seq == Seq::new(31)),
        "{rows:?}"
    );
}

async fn runner_follows_wakeups_until_shutdown(db: &TestStore) {
    let store = db.open().await;
    let shutdown = CancellationToken::new();
    let task = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tokio::spawn(async move { Runner::new(store).run(&mut CallIndex, shutdown).await })
    };
    let call = CallId::new();
    append(
        store.as_ref(),
        call,
        "acme-hvac",
        vec![testkit::started("acme-hvac", "agent-1")],
    )
    .await;
    append(
        store.as_ref(),
        call,
        "acme-hvac",
        vec![testkit::segment(1, "hello", true)],
    )
    .await;
    let row = listed_with(store.as_ref(), call, 1).await;
    assert_eq!(row.status, CallStatus::Live);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the runner stops on shutdown")
        .unwrap();
    // The checkpoint it left is the head: a restart has nothing to redo.
    assert_eq!(
        store.load_checkpoint(CallIndex::NAME).await.unwrap(),
        store.head().await.unwrap()
    );
}

/// The call's row once the live runner has indexed `segments` segments (within 10 s).
async fn listed_with(store: &dyn EventStore, call: CallId, segments: u32) -> CallListing {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(l) = store.call_listings(&[call]).await.unwrap().pop()
                && l.segments == segments
            {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the live runner indexed {segments} segments of the call"))
}

/// The call index, counting the batches the runner hands it.
struct Counted {
    inner: CallIndex,
    batches: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl Projection for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn checkpoint(
        &mut self,
        store: &dyn EventStore,
    ) -> Result<GlobalPosition, ProjectionError> {
        self.inner.checkpoint(store).await
    }

    async fn apply(
        &mut self,
        store: &dyn EventStore,
        batch: &[RecordedEvent],
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<(), ProjectionError> {
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.apply(store, batch, from, to).await
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// Appends one at a time, each with its wake-up, are applied a read interval's worth at a
/// time: the number of batches is bounded by the time taken, not by the appends.
async fn runner_reads_at_most_once_per_interval(db: &TestStore) {
    let store = db.open().await;
    let every = Duration::from_millis(200);
    let batches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let task = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        let mut counted = Counted {
            inner: CallIndex,
            batches: batches.clone(),
        };
        tokio::spawn(async move {
            Runner::new(store)
                .read_every(every)
                .run(&mut counted, shutdown)
                .await
        })
    };
    let started = tokio::time::Instant::now();
    let call = CallId::new();
    append(
        store.as_ref(),
        call,
        "acme-hvac",
        vec![testkit::started("acme-hvac", "agent-1")],
    )
    .await;
    const SEGMENTS: u64 = 60;
    for i in 1..=SEGMENTS {
        append(
            store.as_ref(),
            call,
            "acme-hvac",
            vec![testkit::segment(i, "hello", true)],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    listed_with(store.as_ref(), call, SEGMENTS as u32).await;
    let elapsed = started.elapsed();
    shutdown.cancel();
    task.await.unwrap();
    // One catch-up when the runner starts, then one per interval at most (the first append
    // may fall into the first catch-up's interval, the last into a new one).
    let most = 2 + (elapsed.as_millis() / every.as_millis()) as usize;
    let got = batches.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (1..=most).contains(&got),
        "{got} batches for {} appends in {elapsed:?} (at most {most})",
        SEGMENTS + 1
    );
}

/// Random valid event sequences, appended in chunks as ingest would: the state `rebuild`
/// gives at every seq (read by another node) equals the state the live path held right
/// after appending that seq.
async fn state_rebuilt_at_any_seq(db: &TestStore) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    let (live_node, other_node) = (db.open().await, db.open().await);
    let tenant = TenantId::parse("default").unwrap();
    let mut runner = TestRunner::deterministic();
    let strategy = testkit::call_events(40);
    for _case in 0..12 {
        let events = strategy.new_tree(&mut runner).unwrap().current();
        let call = CallId::new();
        let mut live = domain::CallState::default();
        let mut live_states = vec![live.clone()];
        let mut i = 0;
        while i < events.len() {
            let n = 1 + (i * 7 + 3) % 3;
            let chunk: Vec<NewEvent> = events[i..(i + n).min(events.len())]
                .iter()
                .cloned()
                .map(NewEvent::new)
                .collect();
            let out = live_node
                .append(call, &tenant, ExpectedVersion::Exact(live.version), chunk)
                .await
                .unwrap();
            // The live path applies what it appended, with the metadata the store assigned.
            for e in &live_node
                .read_stream(call, live.version, out.positions.len())
                .await
                .unwrap()
            {
                live.apply(e);
                live_states.push(live.clone());
            }
            i += n;
        }
        for (seq, want) in live_states.iter().enumerate() {
            let (state, events) =
                projection::rebuild(other_node.as_ref(), call, Some(Seq::new(seq as u64)))
                    .await
                    .unwrap();
            assert_eq!(events.len(), seq);
            assert_eq!(&state, want, "state at seq {seq}");
        }
        let (latest, _) = projection::rebuild(other_node.as_ref(), call, None)
            .await
            .unwrap();
        assert_eq!(&latest, live_states.last().unwrap());
    }
}
