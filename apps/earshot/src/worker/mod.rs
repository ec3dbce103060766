//! The assist worker: follows the log and posts suggested replies and end-of-call summaries.
//!
//! It is a consumer of the log like any other, with a durable checkpoint, and it writes
//! through the same [`Pipeline`] as every command, so it can never write half a fact or
//! write to a call it should not. It runs inside `earshot serve` by default, or on its own
//! (`earshot worker`), as many instances as wanted.
//!
//! - **Triggers.** A final customer segment schedules a suggestion for its call, after a
//!   debounce; a newer customer segment cancels the scheduled or in-flight one (dropping its
//!   HTTP request), and so does the end of the call. `call_ended` schedules the summary.
//! - **Never in the way.** Ingest and the rules never wait for the worker. Its trigger loop,
//!   its jobs and their generations run on a runtime of its own whose thread has a lower
//!   scheduling priority (nice 10 and Linux's `SCHED_IDLE` by default), so on contended cores
//!   ingest gets the CPU first; only its store calls (reads of the log, the checkpoint, the
//!   posts) go back to the server's runtime, so the store's connections are never driven by
//!   that thread. The worker's only write is one short append per generation.
//! - **Idempotent.** Every event the worker writes has an id derived from the event that
//!   triggered it (and the suggestion id too), so a retry, a restart that re-reads from the
//!   checkpoint, or a second worker on the same trigger writes nothing new.
//! - **Several workers.** Instances either share the work by call (`--assist-shard 1/3`:
//!   each takes the calls whose id falls in its share, and keeps its own checkpoint), or all
//!   take every call, as competing consumers: then each trigger may cost several provider
//!   calls, but is still posted once.
//! - **Durable.** The checkpoint only passes a trigger once its job has finished: a summary
//!   whose post failed (the store was down) is retried, and after a crash it is redone.
//! - **Never silent.** A failed generation is posted as `generation_failed` together with the
//!   offline provider's output that replaced it.
//!
//! # Layout
//!
//! - `mod.rs`: [`Worker`], [`WorkerConfig`], [`Shard`], the trigger loop and the jobs.
//! - `generate`: [`Generator`], which asks the remote provider and falls back to offline.
//! - `background`: the low-priority runtime the worker runs on.
//! - `prompts`: the prompt templates (files in `apps/earshot/prompts/`).

mod background;
pub use background::Priority;
pub mod generate;
pub mod prompts;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::event::Speaker;
use domain::{
    CallEvent, CallId, CallState, CallStatus, Command, EventId, GlobalPosition, RecordedEvent, Seq,
    SuggestionId,
};
use store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use generate::{GenerateConfig, Generator};

use crate::hub::{Hub, PROTOCOL_VERSION, SuggestionDraft};
use crate::pipeline::{Pipeline, PipelineError};

/// The namespace of the ids the worker derives from trigger events. Never change it: a
/// restarted worker must derive the same ids.
const ASSIST_NAMESPACE: Uuid = Uuid::from_u128(0x1c5e_7a0b_4f62_4d1e_9a83_5b27_e0c4_f915);

/// Events read from the log per query.
const PAGE: usize = 1_000;
/// Jobs in flight before the worker stops reading the log until some finish.
const MAX_JOBS: usize = 4_096;
/// The shortest interval between two reads of the log. Each is a query, or inside `serve` on
/// Postgres a copy of the node's own recent commits from memory (`store::recent`), and each
/// costs this thread a wake-up and a hop to the server's runtime and back. The debounce of a
/// suggestion counts from its trigger's commit time, so the interval delays no suggestion
/// that waits longer than it. (Inside `serve` on Postgres the worker read every 5 ms until
/// 2026-11-23: chosen while its loop ran on the server's runtime, where small reads spread
/// its work; on its own low-priority thread that reason is gone, and 50 ms cut the server's
/// CPU by a third of the worker's share: docs/benchmarks.md, "The worker's wake-ups".)
const READ_EVERY: Duration = Duration::from_millis(50);
/// How often the checkpoint is saved while jobs are in flight.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Which share of the calls an instance takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Parses `I/N` (1 ≤ I ≤ N).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N, e.g. 1/3"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("{i:?} is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("{s}: need 1 ≤ I ≤ N"));
        }
        Ok(Shard { index, count })
    }

    /// Whether this share includes `call`. Call ids end in random bits, so shares are even.
    pub fn owns(&self, call: CallId) -> bool {
        self.count <= 1
            || (call.as_uuid().as_u128() % u128::from(self.count)) as u32 == self.index - 1
    }

    /// The checkpoint's name: one per share.
    pub fn consumer(&self) -> String {
        if self.count <= 1 {
            "assist".to_owned()
        } else {
            format!("assist-{}-of-{}", self.index, self.count)
        }
    }
}

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// How long a customer segment waits for the next one before a suggestion is generated.
    pub debounce: Duration,
    pub shard: Shard,
    /// Stream suggestion drafts to the call's WebSocket followers (in-process only).
    pub stream_drafts: bool,
    /// Generations running at once (the rest wait; a reply made stale while waiting is
    /// dropped without a request).
    pub max_concurrent: usize,
    /// The priority of the thread the generations run on.
    pub priority: Priority,
    /// Draft pieces that arrive sooner than this after the last `suggestion_draft` are sent
    /// together with the next one (zero: every piece as it comes). The first piece always
    /// goes out at once.
    pub draft_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(300),
            shard: Shard::ALL,
            stream_drafts: true,
            max_concurrent: 256,
            priority: Priority {
                nice: 10,
                idle: true,
            },
            draft_interval: Duration::from_millis(100),
        }
    }
}

/// Everything that configures assist in a process.
#[derive(Clone, Debug)]
pub struct AssistConfig {
    /// Run the worker in this process (`serve --no-assist` turns it off, for deployments
    /// that run `earshot worker` processes instead).
    pub enabled: bool,
    /// The remote provider; `None` for the offline provider only.
    pub provider: Option<llm::OpenAiConfig>,
    pub worker: WorkerConfig,
    pub generate: GenerateConfig,
}

impl Default for AssistConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            provider: None,
            worker: WorkerConfig::default(),
            generate: GenerateConfig::default(),
        }
    }
}

pub struct Worker {
    store: Arc<dyn Store>,
    pipeline: Arc<Pipeline>,
    generator: Arc<Generator>,
    /// Where the trigger loop, the jobs and the generations run: its own runtime, at a lower
    /// priority.
    background: background::Background,
    /// The runtime the worker was built on (the server's): where every store call runs.
    home: background::Home,
    /// Where drafts go; `None` in a standalone worker (no WebSockets in this process).
    hub: Option<Arc<Hub>>,
    config: WorkerConfig,
    permits: Arc<tokio::sync::Semaphore>,
    /// The state of each call the worker follows, folded from the events it reads, so a job
    /// does not re-read its call from the store.
    states: std::sync::Mutex<HashMap<CallId, Tracked>>,
}

struct Tracked {
    state: CallState,
    touched: Instant,
}

/// States untouched this long are dropped (a job reloads its call if it needs it again).
const STATE_IDLE: Duration = Duration::from_secs(600);

/// What a job is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Reply,
    Summary,
}

/// A job in flight: the position of its trigger.
struct Running {
    position: GlobalPosition,
    call: CallId,
}

/// The jobs in flight.
#[derive(Default)]
struct Jobs {
    set: JoinSet<()>,
    running: HashMap<tokio::task::Id, Running>,
    /// Trigger positions not finished yet: the checkpoint stays before the oldest.
    pending: BTreeSet<GlobalPosition>,
    /// Each call's reply job, to cancel when a newer trigger comes.
    replies: HashMap<CallId, (tokio::task::Id, CancellationToken)>,
}

impl Jobs {
    /// Everything before the oldest unfinished trigger, or all that was read.
    fn safe_checkpoint(&self, read_to: GlobalPosition) -> GlobalPosition {
        self.pending
            .first()
            .map(|p| GlobalPosition::new(p.get() - 1))
            .unwrap_or(read_to)
    }

    fn finished(&mut self, id: tokio::task::Id) {
        if let Some(r) = self.running.remove(&id) {
            self.pending.remove(&r.position);
            if self.replies.get(&r.call).is_some_and(|(rid, _)| *rid == id) {
                self.replies.remove(&r.call);
            }
        }
    }
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        pipeline: Arc<Pipeline>,
        generator: Arc<Generator>,
        hub: Option<Arc<Hub>>,
        config: WorkerConfig,
    ) -> std::io::Result<Self> {
        let home = background::Home::current()?;
        Ok(Self {
            background: background::Background::new(config.priority)?,
            home,
            permits: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent.max(1))),
            states: std::sync::Mutex::new(HashMap::new()),
            store,
            pipeline,
            generator,
            hub,
            config,
        })
    }

    /// A worker with the provider `config` names (or the offline one).
    pub fn build(
        store: Arc<dyn Store>,
        pipeline: Arc<Pipeline>,
        engines: Arc<crate::engines::Engines>,
        hub: Option<Arc<Hub>>,
        config: &AssistConfig,
    ) -> anyhow::Result<Arc<Worker>> {
        let remote: Option<Arc<dyn llm::Provider>> = match &config.provider {
            Some(c) => Some(Arc::new(
                llm::OpenAiCompatible::new(c.clone())
                    .map_err(|e| anyhow::anyhow!("the LLM provider: {e}"))?,
            )),
            None => None,
        };
        let redactor = redact::Redactor::new(redact::Policy::default())
            .map_err(|e| anyhow::anyhow!("compiling the redaction policy: {e}"))?;
        let generator = Arc::new(Generator::new(
            remote,
            engines,
            redactor,
            config.generate.clone(),
        ));
        Ok(Arc::new(
            Worker::new(store, pipeline, generator, hub, config.worker.clone())
                .map_err(|e| anyhow::anyhow!("starting the assist runtime: {e}"))?,
        ))
    }

    /// Follows the log from the checkpoint until `shutdown`. Store errors are retried (the
    /// worker never takes the server down); jobs still running at shutdown are abandoned and
    /// redone from the checkpoint on the next start.
    ///
    /// The loop, its jobs and their generations run on the low-priority runtime: on the
    /// server's they took CPU from ingest in every customer turn's job, most of them started
    /// only to be cancelled by the next turn (docs/benchmarks.md, "A quiet host, and the
    /// whole worker on the low-priority thread").
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        self.background.run(me.follow(shutdown)).await;
    }

    async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        let name = self.config.shard.consumer();
        let (provider, model) = self.generator.describe();
        let mut checkpoint = loop {
            let (store, consumer) = (self.store.clone(), name.clone());
            match self
                .home
                .run(async move { store.load_checkpoint(&consumer).await })
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "assist: cannot read the checkpoint; retrying");
                    if sleep_or_cancel(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                }
            }
        };
        tracing::info!(consumer = %name, %checkpoint, %provider, %model, "assist worker started");
        let mut read_to = checkpoint;
        let mut wake = self.store.subscribe();
        let mut jobs = Jobs::default();
        let mut poll = tokio::time::interval(Duration::from_secs(1));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut saved_at = Instant::now();
        let now = tokio::time::Instant::now();
        let mut read_at = now.checked_sub(READ_EVERY).unwrap_or(now);
        let mut dirty = true;
        loop {
            // Wake-ups come with every append; reading the log once per `READ_EVERY` at most
            // costs at most one read per interval instead of hundreds a second, and costs the
            // suggestions nothing: their debounce counts from the trigger's commit time.
            if dirty && read_at.elapsed() >= READ_EVERY {
                read_at = tokio::time::Instant::now();
                dirty = false;
                // The read below covers every wake-up so far.
                while !matches!(
                    wake.try_recv(),
                    Err(tokio::sync::broadcast::error::TryRecvError::Empty
                        | tokio::sync::broadcast::error::TryRecvError::Closed)
                ) {}
                // Read everything new, starting jobs for the triggers; with too many jobs in
                // flight (catching up on a long log), wait for some to finish first.
                while jobs.running.len() < MAX_JOBS {
                    let store = self.store.clone();
                    match self
                        .home
                        .run(async move { store.read_all(read_to, PAGE).await })
                        .await
                    {
                        Ok(page) => {
                            let full = page.len() == PAGE;
                            for e in page {
                                read_to = e.meta.global_position;
                                self.consider(e, &mut jobs);
                            }
                            if !full {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "assist: cannot read the log; retrying");
                            dirty = true;
                            break;
                        }
                    }
                }
                if jobs.running.len() >= MAX_JOBS {
                    dirty = true;
                }
            }
            // The checkpoint may pass everything before the oldest unfinished trigger. It is
            // saved at most once a second (a write per wake-up would compete with ingest),
            // and when the worker is idle, so a test or an operator sees it settle.
            let safe = jobs.safe_checkpoint(read_to);
            if safe > checkpoint
                && (jobs.running.is_empty() || saved_at.elapsed() >= CHECKPOINT_EVERY)
            {
                match self.save_checkpoint(&name, safe).await {
                    Ok(()) => {
                        checkpoint = safe;
                        saved_at = Instant::now();
                    }
                    Err(e) => tracing::warn!(error = %e, "assist: cannot save the checkpoint"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                // Only while nothing is known to be unread: once a read is due, later
                // wake-ups say nothing new. Listening to them then had appends wake this
                // thread (the committer, on a server thread, waking it across runtimes: a
                // lock of this runtime and a syscall each), ~200 times a second more in the
                // benchmark, only to find the read not due yet. They wait in the channel and
                // are drained before the next read.
                _ = wake.recv(), if !dirty => dirty = true,
                _ = tokio::time::sleep_until(read_at + READ_EVERY), if dirty => {}
                _ = poll.tick() => {
                    dirty = true;
                    self.states
                        .lock()
                        .expect("worker states")
                        .retain(|_, t| t.touched.elapsed() < STATE_IDLE);
                }
                Some(done) = jobs.set.join_next_with_id(), if !jobs.set.is_empty() => {
                    let id = match &done {
                        Ok((id, ())) => *id,
                        Err(e) => {
                            if e.is_panic() {
                                tracing::error!(error = %e, "assist: a job panicked");
                            }
                            e.id()
                        }
                    };
                    jobs.finished(id);
                }
            }
        }
        jobs.set.abort_all();
        while jobs.set.join_next().await.is_some() {}
        // What finished is not redone on the next start.
        let safe = jobs.safe_checkpoint(read_to);
        if safe > checkpoint
            && let Err(e) = self.save_checkpoint(&name, safe).await
        {
            tracing::warn!(error = %e, "assist: cannot save the checkpoint at shutdown");
        }
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        at: GlobalPosition,
    ) -> Result<(), store::StoreError> {
        let (store, name) = (self.store.clone(), name.to_owned());
        self.home
            .run(async move { store.save_checkpoint(&name, at).await })
            .await
    }

    /// Starts the job an event triggers, if any, cancelling the one it supersedes.
    fn consider(self: &Arc<Self>, e: RecordedEvent, jobs: &mut Jobs) {
        let call = e.meta.call_id;
        if !self.config.shard.owns(call) {
            return;
        }
        self.track(&e);
        let task = match &e.event {
            CallEvent::SegmentAdded(s) if s.is_final && s.speaker == Speaker::Customer => {
                Task::Reply
            }
            CallEvent::CallEnded(_) => Task::Summary,
            _ => return,
        };
        // A newer customer segment, or the end of the call, makes a reply in the works
        // stale. (Its trigger stays pending until the job has seen the cancel and finished.)
        if let Some((_, cancel)) = jobs.replies.remove(&call) {
            cancel.cancel();
        }
        let me = self.clone();
        let trigger = Trigger {
            call,
            event_id: e.meta.event_id,
            recorded_at: e.meta.recorded_at,
            seq: e.meta.seq,
        };
        let handle = match task {
            Task::Reply => {
                let cancel = CancellationToken::new();
                let job_cancel = cancel.clone();
                let handle = jobs
                    .set
                    .spawn(async move { me.reply_job(trigger, job_cancel).await });
                jobs.replies.insert(call, (handle.id(), cancel));
                handle
            }
            Task::Summary => jobs.set.spawn(async move { me.summary_job(trigger).await }),
        };
        jobs.pending.insert(e.meta.global_position);
        jobs.running.insert(
            handle.id(),
            Running {
                position: e.meta.global_position,
                call,
            },
        );
    }

    async fn reply_job(self: Arc<Self>, trigger: Trigger, cancel: CancellationToken) {
        let started = Instant::now();
        // The debounce counts from the commit, not from when this worker read the event.
        let age = (chrono::Utc::now() - trigger.recorded_at)
            .to_std()
            .unwrap_or_default();
        if sleep_or_cancel(self.config.debounce.saturating_sub(age), &cancel).await {
            return;
        }
        let suggestion_id =
            SuggestionId::from_uuid(trigger.derive("suggestion")).expect("a v5 UUID is never nil");
        // Checked on the whole state; the generation gets only the part a reply is made of.
        let recent = |state: &CallState| {
            // Stale: the call ended, or a newer customer segment has its own job.
            let latest = state
                .segments
                .iter()
                .rev()
                .find(|s| s.segment.speaker == Speaker::Customer && s.segment.is_final)
                .map(|s| s.seq);
            let posted = state
                .suggestions
                .iter()
                .any(|s| s.suggestion.suggestion_id == suggestion_id);
            (state.status == CallStatus::Live && latest == Some(trigger.seq) && !posted).then(
                || {
                    state.recent(
                        prompts::REPLY_TRANSCRIPT_LINES,
                        prompts::REPLY_GUIDANCE_ITEMS,
                    )
                },
            )
        };
        let Some(Some(state)) = self.state(trigger.call, trigger.seq, &cancel, recent).await else {
            return;
        };
        // The ruleset comes from the engines' cache, or else the store, read on the server's
        // runtime.
        let ruleset = match self.generator.cached_ruleset(&state) {
            Some(cached) => cached,
            None => {
                let (generator, state) = (self.generator.clone(), state.clone());
                self.home
                    .run(async move { generator.ruleset(&state).await })
                    .await
            }
        };
        let based_on_seq = state.version;
        let drafts = Drafts {
            hub: self.hub.clone().filter(|_| self.config.stream_drafts),
            call: trigger.call,
            suggestion_id,
            based_on_seq,
            interval: self.config.draft_interval,
            started,
            sent_at: None,
            index: 0,
            pending: String::new(),
        };
        let _permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = self.permits.acquire() => p.expect("the semaphore is never closed"),
        };
        let generator = &self.generator;
        let generation = async move {
            // Shared by the provider's callback and the timer below (never contended: both
            // run in this one future).
            let drafts = std::sync::Mutex::new(drafts);
            let lock = || drafts.lock().expect("drafts");
            // A piece held back goes out when its interval is over, even if the provider
            // pauses before the next one. The callback cannot arm the timer itself: it says
            // a piece was held, and the loop below arms it.
            let held = tokio::sync::Notify::new();
            let mut on_delta = |delta: &str| {
                let mut d = lock();
                d.push(delta);
                if d.due().is_some() {
                    held.notify_one();
                }
            };
            let reply = generator.reply(&state, ruleset.as_deref(), suggestion_id, &mut on_delta);
            tokio::pin!(reply);
            let reply = loop {
                let due = lock().due();
                tokio::select! {
                    r = &mut reply => break r,
                    _ = held.notified(), if due.is_none() => {}
                    _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                        lock().flush_due();
                    }
                }
            };
            lock().flush();
            reply
        };
        // A cancel drops the generation, and with it the provider's HTTP request.
        let reply = tokio::select! {
            _ = cancel.cancelled() => return,
            r = generation => r,
        };
        let mut posts = Vec::new();
        if let Some(f) = reply.failure {
            posts.push((
                trigger.event_id("reply-failed"),
                Command::ReportGenerationFailure(f),
            ));
        }
        if let Some(s) = reply.suggestion {
            posts.push((trigger.event_id("reply"), Command::PostSuggestion(s)));
        }
        // Posting is not cancelled: a generated reply is worth keeping, with its seq.
        self.post(trigger, based_on_seq, posts).await;
    }

    async fn summary_job(self: Arc<Self>, trigger: Trigger) {
        let never = CancellationToken::new();
        let Some(state) = self
            .state(trigger.call, trigger.seq, &never, CallState::clone)
            .await
        else {
            return;
        };
        // The call is over: nothing more to track once its summary is done.
        let _forget = Forget(&self.states, trigger.call);
        if state.summary.is_some() || state.status != CallStatus::Ended {
            return;
        }
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let version = state.version;
        let out = self.generator.summary(&state).await;
        drop(permit);
        let mut posts = Vec::new();
        if let Some(f) = out.failure {
            posts.push((
                trigger.event_id("summary-failed"),
                Command::ReportGenerationFailure(f),
            ));
        }
        posts.push((
            trigger.event_id("summary"),
            Command::PostSummary(out.summary),
        ));
        self.post(trigger, version, posts).await;
    }

    /// Folds an event into its call's tracked state. A call is tracked from its first
    /// event, or from when a job loaded it; a gap (events the worker skipped) drops it.
    fn track(&self, e: &RecordedEvent) {
        let mut states = self.states.lock().expect("worker states");
        let call = e.meta.call_id;
        match states.get_mut(&call) {
            Some(t) if e.meta.seq == t.state.version.next() => {
                t.state.apply(e);
                t.touched = Instant::now();
            }
            Some(t) if e.meta.seq <= t.state.version => {}
            Some(_) => {
                states.remove(&call);
            }
            None if e.meta.seq == Seq::new(1) => {
                let mut state = CallState::default();
                state.apply(e);
                states.insert(
                    call,
                    Tracked {
                        state,
                        touched: Instant::now(),
                    },
                );
            }
            None => {}
        }
    }

    /// `view` of the call's state at `seq` or later: the tracked one (under the lock, so
    /// `view` copies only what the job needs), else one read from the log.
    async fn state<T>(
        &self,
        call: CallId,
        seq: Seq,
        cancel: &CancellationToken,
        view: impl FnOnce(&CallState) -> T,
    ) -> Option<T> {
        if let Some(t) = self.states.lock().expect("worker states").get(&call)
            && t.state.version >= seq
        {
            return Some(view(&t.state));
        }
        let loaded = self.load(call, cancel).await?;
        let out = view(&loaded);
        let mut states = self.states.lock().expect("worker states");
        if states
            .get(&call)
            .is_none_or(|t| t.state.version < loaded.version)
        {
            states.insert(
                call,
                Tracked {
                    state: loaded,
                    touched: Instant::now(),
                },
            );
        }
        Some(out)
    }

    /// The call's state from the log, retrying store errors until `cancel`.
    async fn load(&self, call: CallId, cancel: &CancellationToken) -> Option<CallState> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let store = self.store.clone();
            match self
                .home
                .run(async move { store::load_stream(store.as_ref(), call, None).await })
                .await
            {
                Ok(events) => return Some(CallState::replay(&events)),
                Err(e) => {
                    tracing::warn!(%call, error = %e, "assist: cannot read the call; retrying");
                    if sleep_or_cancel(backoff, cancel).await {
                        return None;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Posts through the pipeline. Store errors are retried with backoff (the trigger stays
    /// pending meanwhile, so a crash redoes it); a refusal (the call ended before a reply
    /// was posted) is the end of it.
    async fn post(&self, trigger: Trigger, seen: Seq, posts: Vec<(EventId, Command)>) {
        if posts.is_empty() {
            return;
        }
        let cause = trigger.cause();
        let mut backoff = Duration::from_millis(100);
        loop {
            let (pipeline, posts) = (self.pipeline.clone(), posts.clone());
            match self
                .home
                .run(async move { pipeline.post_assist(trigger.call, seen, cause, posts).await })
                .await
            {
                Ok(_) => return,
                Err(PipelineError::Store(e)) => {
                    tracing::warn!(call = %trigger.call, error = %e, "assist: cannot post; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    tracing::debug!(call = %trigger.call, error = %e, "assist: the call no longer takes this post");
                    return;
                }
            }
        }
    }
}

/// The `suggestion_draft` messages of one generation. Pieces are coalesced: one that comes
/// less than `interval` after the last message is held until that interval is over (or the
/// stream ends) and goes out with whatever came meanwhile. A provider streams a token every few milliseconds; a panel
/// reads no faster than ten updates a second, and every message is a frame to every follower
/// of the call, on the cores ingest and the rules run on.
struct Drafts {
    hub: Option<Arc<Hub>>,
    call: CallId,
    suggestion_id: SuggestionId,
    based_on_seq: Seq,
    interval: Duration,
    /// When the job started, for the first-token metric.
    started: Instant,
    sent_at: Option<Instant>,
    index: u32,
    pending: String,
}

impl Drafts {
    fn push(&mut self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        if self.sent_at.is_none() && self.pending.is_empty() {
            metrics::histogram!("earshot_assist_first_token_seconds")
                .record(self.started.elapsed().as_secs_f64());
        }
        self.pending.push_str(delta);
        if self.sent_at.is_none_or(|at| at.elapsed() >= self.interval) {
            self.flush();
        }
    }

    /// When what is pending is due to go out (`None`: nothing is pending).
    fn due(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(
            self.sent_at
                .map_or_else(Instant::now, |at| at + self.interval),
        )
    }

    /// Sends what is pending if its interval is over.
    fn flush_due(&mut self) {
        if self.due().is_some_and(|due| due <= Instant::now()) {
            self.flush();
        }
    }

    /// Sends what is pending.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(hub) = &self.hub {
            hub.publish_draft(&SuggestionDraft {
                v: PROTOCOL_VERSION,
                kind_of_message: "suggestion_draft",
                call_id: self.call,
                suggestion_id: self.suggestion_id,
                based_on_seq: self.based_on_seq,
                index: self.index,
                delta: &self.pending,
            });
        }
        self.pending.clear();
        self.index += 1;
        self.sent_at = Some(Instant::now());
    }
}

/// The event a job answers.
#[derive(Clone, Copy, Debug)]
struct Trigger {
    call: CallId,
    event_id: EventId,
    seq: Seq,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

impl Trigger {
    fn derive(&self, what: &str) -> Uuid {
        let mut name = Vec::with_capacity(16 + what.len());
        name.extend_from_slice(self.event_id.as_uuid().as_bytes());
        name.extend_from_slice(what.as_bytes());
        Uuid::new_v5(&ASSIST_NAMESPACE, &name)
    }

    fn event_id(&self, what: &str) -> EventId {
        EventId::from_uuid(self.derive(what)).expect("a v5 UUID is never nil")
    }

    fn cause(&self) -> EventId {
        self.event_id
    }
}

/// Drops a call's tracked state when dropped.
struct Forget<'a>(&'a std::sync::Mutex<HashMap<CallId, Tracked>>, CallId);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("worker states").remove(&self.1);
    }
}

/// Sleeps; true if cancelled first.
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_calls_evenly() {
        assert_eq!(Shard::parse("1/1").unwrap(), Shard::ALL);
        assert_eq!(
            Shard::parse(" 2 / 3 ").unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (1..=3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut counts = [0usize; 3];
        for _ in 0..3_000 {
            let call = CallId::new();
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(call)).collect();
            assert_eq!(owners.len(), 1, "each call has exactly one owner");
            counts[owners[0]] += 1;
        }
        for c in counts {
            assert!((800..1_200).contains(&c), "uneven shares: {counts:?}");
        }
        assert_eq!(Shard::ALL.consumer(), "assist");
        assert_eq!(shards[1].consumer(), "assist-2-of-3");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let t = Trigger {
            call: CallId::new(),
            event_id: EventId::new(),
            seq: Seq::new(3),
            recorded_at: chrono::Utc::now(),
        };
        assert_eq!(t.event_id("reply"), t.event_id("reply"));
        assert_ne!(t.event_id("reply"), t.event_id("reply-failed"));
        assert_ne!(t.derive("suggestion"), t.derive("reply"));
    }
}
