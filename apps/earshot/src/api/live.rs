//! The live feeds of one WebSocket connection, read by the connection's writer itself.
//!
//! A subscription first queues its backlog from the log (in `ws`), then hands its hub
//! receiver to the writer as a [`Live`] feed, through the same queue, so the backlog and the
//! `subscribed` reply go out before any live frame. From then on a committed event reaches
//! the socket with one task wake-up per subscriber (the writer's) and no copy into a
//! per-connection queue: with 10,000 subscribers of one call, a second task per subscriber
//! and the queue between them were a fifth of the server's CPU per event.
//!
//! # Invariants
//!
//! - A call's frames go out in seq order, each once: frames at or below the seq the backlog
//!   ended at are skipped, and a gap (never expected: the hub publishes in order) ends the
//!   feed as a lag does, so the client resumes from the last seq it saw.
//! - A feed whose subscription has ended (its token is cancelled) is never started, so a
//!   feed handed over after an `unsubscribe` cannot outlive it.
//! - Nothing is skipped silently: a feed that falls behind its channel ends with
//!   [`Next::Behind`], and the writer closes the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use axum::extract::ws::Utf8Bytes;
use domain::{CallId, Seq};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;

use crate::hub::Frame;

/// Which feed: a call's, or the supervisor's feed of its tenant (one per connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedKey {
    Call(CallId),
    Tenant,
}

/// One subscription's live frames.
pub struct Live {
    key: FeedKey,
    frames: BroadcastStream<Frame>,
    /// The newest seq of the call sent to the client.
    last: Seq,
    token: CancellationToken,
}

impl Live {
    /// A feed that continues after `last` (a call's backlog ended there; unused for the
    /// tenant feed, which carries every frame). `token` is the subscription's.
    pub fn new(
        key: FeedKey,
        rx: broadcast::Receiver<Frame>,
        last: Seq,
        token: CancellationToken,
    ) -> Self {
        Self {
            key,
            frames: BroadcastStream::new(rx),
            last,
            token,
        }
    }

    fn accept(&mut self, frame: Frame) -> Accept {
        if self.key == FeedKey::Tenant || frame.draft {
            return Accept::Send(frame.text);
        }
        if frame.seq <= self.last {
            return Accept::Skip;
        }
        if frame.seq > self.last.next() {
            return Accept::Gap;
        }
        self.last = frame.seq;
        Accept::Send(frame.text)
    }
}

enum Accept {
    Send(Utf8Bytes),
    Skip,
    Gap,
}

/// What the feeds have for the writer.
#[derive(Debug)]
pub enum Next {
    Text(Utf8Bytes),
    /// The feed fell behind its channel (or saw a gap) and has ended: frames are missing,
    /// and the client must resume from the last seq it has.
    Behind(FeedKey),
}

/// Polls a source through a waker of its own, which notes that the source woke it before
/// waking the task; the source is polled again only once it has.
///
/// Written by hand because it is what makes idle sources cheap to leave alone: a `select!`
/// polls every branch each time the task wakes up, for whatever reason, and with thousands
/// of connections each poll of an idle source is a cache miss or worse (a pending poll of a
/// broadcast receiver takes the channel's shared lock, the one every subscriber of the call
/// and the hub's sends contend for). No crate offers a per-branch waker for `select!`.
#[derive(Default)]
pub struct Flagged {
    /// The flag and the waker the source holds (made on the first poll, from the task's
    /// waker, and made again if the task's waker changes).
    wake: Option<(Arc<FlagWake>, Waker)>,
}

struct FlagWake {
    woken: AtomicBool,
    task: Waker,
}

impl Wake for FlagWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl Flagged {
    /// Polls the source with `poll` if it has woken its waker since it last answered
    /// `Pending` (always on the first poll, or for a new task); `Pending` otherwise.
    pub fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let (wake, waker) = match self.wake.take() {
            Some((wake, waker)) if wake.task.will_wake(cx.waker()) => (wake, waker),
            _ => {
                let wake = Arc::new(FlagWake {
                    woken: AtomicBool::new(true),
                    task: cx.waker().clone(),
                });
                let waker = Waker::from(wake.clone());
                (wake, waker)
            }
        };
        // Cleared before polling: a wake-up during the poll sets it again.
        let out = if wake.woken.swap(false, Ordering::AcqRel) {
            let out = poll(&mut Context::from_waker(&waker));
            if out.is_ready() {
                // More may be waiting behind this item.
                wake.woken.store(true, Ordering::Release);
            }
            out
        } else {
            Poll::Pending
        };
        self.wake = Some((wake, waker));
        out
    }

    /// Makes the next poll look at the source (something new was added to it).
    pub fn set(&self) {
        if let Some((wake, _)) = &self.wake {
            wake.woken.store(true, Ordering::Release);
        }
    }
}

/// The feeds of one connection (usually one; a supervisor may follow several calls and its
/// tenant).
#[derive(Default)]
pub struct Feeds {
    list: Vec<Live>,
    /// Where the next poll starts, so that a busy feed cannot starve the others.
    start: usize,
    /// The feeds are polled again only after one of their channels woke them.
    flag: Flagged,
}

impl Feeds {
    /// Starts a feed, replacing the one with the same key; one whose subscription has
    /// already ended is dropped.
    pub fn start(&mut self, live: Live) {
        self.stop(live.key);
        if !live.token.is_cancelled() {
            self.list.push(live);
            self.flag.set();
        }
    }

    /// Ends the feed with this key, if there is one.
    pub fn stop(&mut self, key: FeedKey) {
        self.list.retain(|l| l.key != key);
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The next frame ready on any feed. `Pending` arranges for `cx` to be woken when one
    /// has a frame; with no feeds it is `Pending` for good (a new feed arrives through the
    /// writer's queue, and [`Feeds::start`] makes the next poll look).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut flag = std::mem::take(&mut self.flag);
        let next = flag.poll(cx, |cx| self.poll_feeds(cx));
        self.flag = flag;
        next
    }

    fn poll_feeds(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        'scan: loop {
            let n = self.list.len();
            for k in 0..n {
                let i = (self.start + k) % n;
                loop {
                    let live = &mut self.list[i];
                    match live.frames.poll_next_unpin(cx) {
                        Poll::Pending => break,
                        // The hub dropped the channel (it is shutting down): the feed ends.
                        Poll::Ready(None) => {
                            self.list.swap_remove(i);
                            continue 'scan;
                        }
                        Poll::Ready(Some(Err(_lagged))) => {
                            let key = live.key;
                            self.list.swap_remove(i);
                            return Poll::Ready(Next::Behind(key));
                        }
                        Poll::Ready(Some(Ok(frame))) => match live.accept(frame) {
                            Accept::Send(text) => {
                                self.start = i + 1;
                                return Poll::Ready(Next::Text(text));
                            }
                            Accept::Skip => {}
                            Accept::Gap => {
                                let key = live.key;
                                self.list.swap_remove(i);
                                return Poll::Ready(Next::Behind(key));
                            }
                        },
                    }
                }
            }
            return Poll::Pending;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use futures::FutureExt;

    use super::*;

    fn frame(call: CallId, seq: u64, text: &str) -> Frame {
        Frame {
            call_id: call,
            seq: Seq::new(seq),
            text: text.to_owned().into(),
            draft: false,
        }
    }

    /// A feed of a subscription that is on, continuing after `last`.
    fn on(key: FeedKey, rx: broadcast::Receiver<Frame>, last: u64) -> Live {
        Live::new(key, rx, Seq::new(last), CancellationToken::new())
    }

    /// What the feeds have ready now, in order, until they would wait.
    async fn ready(feeds: &mut Feeds) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(next) = poll_fn(|cx| feeds.poll_next(cx)).now_or_never() {
            out.push(match next {
                Next::Text(t) => t.as_str().to_owned(),
                Next::Behind(FeedKey::Call(_)) => "behind call".to_owned(),
                Next::Behind(FeedKey::Tenant) => "behind tenant".to_owned(),
            });
        }
        out
    }

    #[tokio::test]
    async fn a_flagged_source_is_polled_again_only_once_it_has_woken() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let mut flag = Flagged::default();
        let mut polls = 0;
        let mut poll = |flag: &mut Flagged| {
            poll_fn(|cx| {
                Poll::Ready(flag.poll(cx, |cx| {
                    polls += 1;
                    rx.poll_recv(cx)
                }))
            })
            .now_or_never()
            .expect("poll_fn is ready at once")
        };
        assert!(poll(&mut flag).is_pending(), "empty, polled once");
        assert!(poll(&mut flag).is_pending(), "not woken: not polled");
        tx.send(7).unwrap();
        assert_eq!(poll(&mut flag), Poll::Ready(Some(7)));
        assert!(poll(&mut flag).is_pending(), "looked again after an item");
        assert!(poll(&mut flag).is_pending());
        flag.set();
        assert!(poll(&mut flag).is_pending(), "set: polled");
        assert_eq!(polls, 4);
    }

    #[tokio::test]
    async fn the_backlog_is_skipped_and_drafts_pass() {
        let call = CallId::new();
        let (tx, rx) = broadcast::channel(16);
        let mut feeds = Feeds::default();
        // The backlog ended at seq 2; frames 1 and 2 also came through the channel.
        feeds.start(on(FeedKey::Call(call), rx, 2));
        for seq in 1..=4 {
            tx.send(frame(call, seq, &format!("e{seq}"))).unwrap();
        }
        let mut draft = frame(call, 3, "draft");
        draft.draft = true;
        tx.send(draft).unwrap();
        assert_eq!(ready(&mut feeds).await, ["e3", "e4", "draft"]);
        tx.send(frame(call, 5, "e5")).unwrap();
        assert_eq!(ready(&mut feeds).await, ["e5"]);
    }

    #[tokio::test]
    async fn a_gap_or_a_lag_ends_the_feed() {
        let call = CallId::new();
        let (tx, rx) = broadcast::channel(16);
        let mut feeds = Feeds::default();
        feeds.start(on(FeedKey::Call(call), rx, 0));
        tx.send(frame(call, 1, "e1")).unwrap();
        tx.send(frame(call, 3, "e3")).unwrap();
        assert_eq!(ready(&mut feeds).await, ["e1", "behind call"]);
        assert!(feeds.is_empty());

        let (tx, rx) = broadcast::channel(2);
        feeds.start(on(FeedKey::Tenant, rx, 0));
        for seq in 1..=3 {
            tx.send(frame(call, seq, "t")).unwrap();
        }
        assert_eq!(ready(&mut feeds).await, ["behind tenant"]);
        assert!(feeds.is_empty());
    }

    #[tokio::test]
    async fn an_ended_subscription_never_starts_and_a_new_one_replaces_the_old() {
        let call = CallId::new();
        let (tx, _) = broadcast::channel(16);
        let mut feeds = Feeds::default();
        let ended = CancellationToken::new();
        ended.cancel();
        feeds.start(Live::new(
            FeedKey::Call(call),
            tx.subscribe(),
            Seq::new(0),
            ended,
        ));
        assert!(feeds.is_empty());

        feeds.start(on(FeedKey::Call(call), tx.subscribe(), 0));
        feeds.start(on(FeedKey::Call(call), tx.subscribe(), 1));
        assert_eq!(feeds.len(), 1);
        tx.send(frame(call, 1, "e1")).unwrap();
        tx.send(frame(call, 2, "e2")).unwrap();
        assert_eq!(
            ready(&mut feeds).await,
            ["e2"],
            "the second feed, from seq 1"
        );
        feeds.stop(FeedKey::Call(call));
        // Nobody receives it now (the stopped feed's receiver is gone).
        assert!(tx.send(frame(call, 3, "e3")).is_err());
        assert!(ready(&mut feeds).await.is_empty());
    }

    #[tokio::test]
    async fn every_feed_gets_its_turn() {
        let (a, b) = (CallId::new(), CallId::new());
        let (ta, ra) = broadcast::channel(16);
        let (tb, rb) = broadcast::channel(16);
        let mut feeds = Feeds::default();
        feeds.start(on(FeedKey::Call(a), ra, 0));
        feeds.start(on(FeedKey::Call(b), rb, 0));
        for seq in 1..=2 {
            ta.send(frame(a, seq, &format!("a{seq}"))).unwrap();
            tb.send(frame(b, seq, &format!("b{seq}"))).unwrap();
        }
        assert_eq!(ready(&mut feeds).await, ["a1", "b1", "a2", "b2"]);
    }
}
