//! The fan-out mode's subscribers, read by two plain event loops (`mio`, i.e. epoll, and
//! `tungstenite` on non-blocking sockets) instead of one tokio task each.
//!
//! Why: the tool runs on the machine of the server it measures, and a segment's delivery to
//! 10,000 subscribers is CPU-bound on both sides, so every microsecond the tool spends per
//! read is taken from the server and shows up in the latency being measured. With a task per
//! socket the tool spent ~8 µs of CPU per subscriber per segment, two thirds of it in user
//! space: the task's wake-up and scheduling, the async adapter's waker registrations on
//! every poll, a second read to learn the socket is drained. Here a thread takes the ready
//! sockets from `epoll_wait` in batches and reads each until it would block. The checks are
//! the same code as the load mode's (`SubscriberStats::on_message`).

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, WebSocket};

use crate::run::{self, Call, Clock, SubscriberStats};

pub type SyncWs = WebSocket<Socket>;

/// A subscriber's socket as tungstenite reads it. Once non-blocking, a read that returned
/// less than it asked for has drained the socket, so the next read answers "would block"
/// without a system call until epoll reports the socket readable again: epoll here is
/// edge-triggered, and data that arrives after that read raises a new event. This saves the
/// read that would only learn `EAGAIN`, one per subscriber per segment.
pub struct Socket {
    stream: TcpStream,
    /// Reads are tracked (the socket is non-blocking).
    tracking: bool,
    drained: bool,
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(ErrorKind::WouldBlock.into());
        }
        match self.stream.read(buf) {
            Ok(n) => {
                self.drained = self.tracking && n > 0 && n < buf.len();
                Ok(n)
            }
            Err(e) => {
                self.drained = self.tracking && e.kind() == ErrorKind::WouldBlock;
                Err(e)
            }
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// How long a reader waits in `epoll_wait` before looking for new sockets and the end.
const TICK: Duration = Duration::from_millis(10);

/// Opens a subscriber's WebSocket (blocking: run it on the blocking pool), with Nagle off and
/// `buffer`-byte read and write buffers, subscribes to the call from seq 0 and reads until
/// `subscribed` (the backlog is checked like live events). The socket is then non-blocking,
/// ready for [`Readers::add`].
pub fn connect_and_subscribe(
    url: &str,
    buffer: usize,
    call: &Call,
    clock: &Clock,
) -> anyhow::Result<(SyncWs, SubscriberStats)> {
    let request = url.into_client_request().context("the WebSocket URL")?;
    if request.uri().scheme_str() != Some("ws") {
        bail!("the fan-out subscribers speak plain ws://, not {url}");
    }
    let host = request
        .uri()
        .host()
        .context("a host in the URL")?
        .to_owned();
    let port = request.uri().port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host.as_str(), port)).context("connecting")?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let config = WebSocketConfig::default()
        .read_buffer_size(buffer)
        .write_buffer_size(buffer);
    let socket = Socket {
        stream,
        tracking: false,
        drained: false,
    };
    let (mut ws, _) = tungstenite::client::client_with_config(request, socket, Some(config))
        .map_err(|e| anyhow::anyhow!("the WebSocket handshake: {e}"))?;
    ws.send(run::subscribe_message(call))
        .context("sending subscribe")?;
    let mut stats = SubscriberStats::new();
    loop {
        let msg = ws.read().context("reading until `subscribed`")?;
        let arrived = clock.now();
        if stats.until_subscribed(msg, arrived, call, clock)? {
            break;
        }
    }
    let socket = ws.get_mut();
    socket.stream.set_read_timeout(None)?;
    socket.stream.set_nonblocking(true)?;
    socket.tracking = true;
    Ok((ws, stats))
}

/// The scheduling policy of the reader threads.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReaderSched {
    /// `SCHED_BATCH`: a reader woken by the server's send does not preempt it.
    #[default]
    Batch,
    /// The default policy (`SCHED_OTHER`), as the tool's other threads.
    Normal,
}

impl ReaderSched {
    pub fn name(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Normal => "normal",
        }
    }
}

/// Puts the calling thread under `sched`, at the nice value it had, and answers whether it
/// now is.
fn apply(sched: ReaderSched) -> bool {
    use rustix::process::{getpriority_process, setpriority_process};
    use thread_priority::{
        NormalThreadSchedulePolicy as Normal, ThreadPriority, ThreadSchedulePolicy as Policy,
    };
    let policy = match sched {
        ReaderSched::Batch => Policy::Normal(Normal::Batch),
        ReaderSched::Normal => Policy::Normal(Normal::Other),
    };
    // Linux applies PRIO_PROCESS with a thread id to that one thread.
    let tid = Some(rustix::thread::gettid());
    let Ok(nice) = getpriority_process(tid) else {
        return false;
    };
    // No unsafe code here (the workspace forbids it): the crate wraps
    // pthread_setschedparam, then sets the nice value from the priority it is given. `Max`
    // asks for nice -20: refused without the privilege (the nice value stays as it was),
    // and with it put back below, which raising a nice value always allows. (`Min`, nice
    // 19, could not be put back without the privilege: the readers would starve.)
    let _ = thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        ThreadPriority::Max,
        policy,
    );
    if getpriority_process(tid).is_ok_and(|now| now != nice) {
        let _ = setpriority_process(tid, nice);
    }
    thread_priority::thread_schedule_policy().is_ok_and(|now| now == policy)
        && getpriority_process(tid).is_ok_and(|now| now == nice)
}

/// The reader threads; subscribers are spread over them as they are added.
pub struct Readers {
    threads: Vec<(mpsc::Sender<Command>, Reader)>,
    next: usize,
    /// Whether every reader thread runs under the policy asked for.
    pub sched_applied: bool,
}

/// A reader thread, which answers its subscribers' stats.
type Reader = JoinHandle<anyhow::Result<Vec<SubscriberStats>>>;

enum Command {
    Add(Box<(SyncWs, SubscriberStats)>),
    /// The call's top seq is set: stop each subscriber once it has it, and all at `deadline`.
    Finish(Instant),
}

impl Readers {
    pub fn start(
        threads: usize,
        call: Arc<Call>,
        clock: Clock,
        sched: ReaderSched,
    ) -> anyhow::Result<Self> {
        let (applied_tx, applied_rx) = mpsc::channel();
        let threads: Vec<_> = (0..threads.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel();
                let call = call.clone();
                let applied = applied_tx.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("fanout-reader-{i}"))
                    .spawn(move || {
                        let _ = applied.send(apply(sched));
                        read_loop(&rx, &call, &clock)
                    })
                    .context("starting a reader thread")?;
                Ok((tx, handle))
            })
            .collect::<anyhow::Result<_>>()?;
        drop(applied_tx);
        // Each thread reports once, before it reads anything.
        let sched_applied = applied_rx.iter().take(threads.len()).all(|ok| ok);
        Ok(Self {
            threads,
            next: 0,
            sched_applied,
        })
    }

    /// Hands a subscribed socket to the next reader: from now on its messages are read (and
    /// the server's pings answered).
    pub fn add(&mut self, ws: SyncWs, stats: SubscriberStats) -> anyhow::Result<()> {
        let (tx, _) = &self.threads[self.next % self.threads.len()];
        self.next += 1;
        tx.send(Command::Add(Box::new((ws, stats))))
            .map_err(|_| anyhow::anyhow!("a reader thread has ended"))
    }

    /// Waits (blocking) until every subscriber has the call's top seq, set before this is
    /// called, or until `deadline`; events short of the top count as missing.
    pub fn finish(self, deadline: Instant) -> anyhow::Result<Vec<SubscriberStats>> {
        for (tx, _) in &self.threads {
            let _ = tx.send(Command::Finish(deadline));
        }
        let mut all = Vec::new();
        for (_, handle) in self.threads {
            let stats = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a reader thread panicked"))??;
            all.extend(stats);
        }
        Ok(all)
    }
}

struct Sub {
    ws: SyncWs,
    stats: SubscriberStats,
}

fn read_loop(
    commands: &mpsc::Receiver<Command>,
    call: &Call,
    clock: &Clock,
) -> anyhow::Result<Vec<SubscriberStats>> {
    let mut poll = Poll::new().context("epoll")?;
    let mut events = Events::with_capacity(1024);
    let mut subs: Vec<Option<Sub>> = Vec::new();
    let mut done = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        loop {
            match commands.try_recv() {
                Ok(Command::Add(sub)) => {
                    let (ws, stats) = *sub;
                    let token = Token(subs.len());
                    let fd = ws.get_ref().stream.as_raw_fd();
                    poll.registry()
                        .register(&mut SourceFd(&fd), token, Interest::READABLE)
                        .context("registering a socket")?;
                    subs.push(Some(Sub { ws, stats }));
                    // What arrived with `subscribed` may already be in tungstenite's buffer,
                    // where no readiness event will announce it.
                    read_ready(&mut subs, token.0, &poll, call, clock, &mut done);
                }
                Ok(Command::Finish(at)) => {
                    deadline = Some(at);
                    // Those already at the top stop now: nothing more will wake them.
                    for i in 0..subs.len() {
                        if subs[i]
                            .as_ref()
                            .is_some_and(|s| s.stats.last_seq >= call.target())
                        {
                            stop(&mut subs, i, &poll, &mut done);
                        }
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                // The tool is going away without finishing (an error elsewhere).
                Err(mpsc::TryRecvError::Disconnected) => return Ok(done),
            }
        }
        if let Some(at) = deadline
            && (subs.iter().all(Option::is_none) || Instant::now() >= at)
        {
            break;
        }
        poll.poll(&mut events, Some(TICK)).context("epoll_wait")?;
        for event in &events {
            let i = event.token().0;
            if let Some(sub) = subs[i].as_mut() {
                sub.ws.get_mut().drained = false;
            }
            read_ready(&mut subs, i, &poll, call, clock, &mut done);
        }
    }
    for i in 0..subs.len() {
        stop(&mut subs, i, &poll, &mut done);
    }
    let target = call.target();
    for stats in &mut done {
        stats.missing = if target == u64::MAX {
            0
        } else {
            target.saturating_sub(stats.last_seq)
        };
    }
    Ok(done)
}

/// Reads subscriber `i` until its socket would block; stops it at the call's top seq or when
/// the connection ends.
fn read_ready(
    subs: &mut [Option<Sub>],
    i: usize,
    poll: &Poll,
    call: &Call,
    clock: &Clock,
    done: &mut Vec<SubscriberStats>,
) {
    let Some(sub) = subs[i].as_mut() else { return };
    let ended = loop {
        match sub.ws.read() {
            Ok(msg) => {
                let arrived = clock.now();
                if !sub.stats.on_frame(msg, arrived, call, clock) {
                    break true;
                }
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(e) => {
                sub.stats.closed = Some(format!("WebSocket error: {e}"));
                break true;
            }
        }
    };
    // Pongs to the server's pings are queued by `read`; send them (or leave them queued if
    // the socket is full: the next read's flush sends them).
    let _ = sub.ws.flush();
    if ended || sub.stats.last_seq >= call.target() {
        stop(subs, i, poll, done);
    }
}

fn stop(subs: &mut [Option<Sub>], i: usize, poll: &Poll, done: &mut Vec<SubscriberStats>) {
    let Some(mut sub) = subs[i].take() else {
        return;
    };
    let fd = sub.ws.get_ref().stream.as_raw_fd();
    let _ = poll.registry().deregister(&mut SourceFd(&fd));
    let _ = sub.ws.close(None);
    let _ = sub.ws.flush();
    done.push(sub.stats);
}

#[cfg(test)]
mod tests {
    use thread_priority::{NormalThreadSchedulePolicy as Normal, ThreadSchedulePolicy as Policy};

    use super::*;

    fn policy() -> Policy {
        thread_priority::thread_schedule_policy().expect("the thread's policy")
    }

    fn nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).expect("nice")
    }

    #[test]
    fn a_reader_runs_under_the_policy_asked_for_at_its_nice_and_its_starter_does_not() {
        let starter = (policy(), nice());
        // A nice value of the reader's own (raising it needs no privilege), which must survive.
        const NICE: i32 = 3;
        let (batch, normal) = std::thread::spawn(|| {
            rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE)
                .expect("nice 3");
            assert!(apply(ReaderSched::Batch), "SCHED_BATCH needs no privilege");
            let batch = (policy(), nice());
            assert!(apply(ReaderSched::Normal));
            (batch, (policy(), nice()))
        })
        .join()
        .expect("the thread");
        assert_eq!(batch, (Policy::Normal(Normal::Batch), NICE));
        assert_eq!(normal, (Policy::Normal(Normal::Other), NICE));
        assert_eq!(
            (policy(), nice()),
            starter,
            "only the reader's own thread changes"
        );
    }

    #[test]
    fn readers_report_whether_their_policy_was_applied() {
        let call = Arc::new(Call::new("c".into(), 1));
        let clock = Clock {
            epoch: tokio::time::Instant::now(),
            record_from: 0,
        };
        let readers =
            Readers::start(2, call.clone(), clock, ReaderSched::Batch).expect("the readers");
        assert!(readers.sched_applied);
        call.set_target(0);
        let stats = readers
            .finish(Instant::now() + Duration::from_secs(5))
            .expect("the readers end");
        assert!(stats.is_empty());
    }
}
