//! The write path: every command on a call goes through here.
//!
//! Per segment: validate → redact → evaluate the rules against the call's live state → append
//! the segment and the events it caused in one transaction. Publishing is not done here: the
//! hub follows the log (it is woken by the append), so a subscriber sees exactly what was
//! committed, on this node or any other.
//!
//! # Invariants
//!
//! - **One writer per call per node.** Each call has a session (its state, its rules state
//!   and its per-speaker redaction contexts) behind an async mutex; commands on one call run
//!   one at a time, commands on different calls in parallel. Across nodes the append's
//!   expected version is the guard: a node that lost a race reloads the call from the log and
//!   runs the command again.
//! - **All or nothing.** A batch of segments is checked in full (every segment decided, every
//!   rule evaluated on copies of the session's state) before anything is written, and written
//!   in one append. The session changes only after the append succeeds.
//! - **Raw text goes nowhere but the redactor.** It is never logged, stored or echoed in an
//!   error message.
//! - **Retries are idempotent.** A final segment's event id is derived from the call and the
//!   segment id; resending a final segment with the same id, speaker and times answers with
//!   the original seq and writes nothing.
//!
//! The rules' state is rebuilt on load by running the call's final segments through the
//! engine again (it is deterministic, so it lands in the same state); the redactor's
//! per-speaker context, which only bridges a number read across two segments, starts afresh.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::event::{CallSource, CallStarted, RulesetRef, SegmentAdded, Speaker};
use domain::{
    ActorId, AgentId, CallEvent, CallId, CallState, CallStatus, Command, CorrelationId,
    DomainError, EventId, EventMetadata, LanguageTag, NewEvent, RecordedEvent, SegmentId, Seq,
    TenantId, TraceId, decide,
};
use redact::{Redactor, SpeakerContext};
use rules::{CallRules, Engine, SegmentInput};
use store::{ExpectedVersion, Store, StoreError};
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::engines::Engines;

/// The namespace of derived event ids (final segments). Never change it: retries across a
/// restart must derive the same id.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_0c2e_93d4_4b8a_b7e5_2f90_c1d3_a846);

/// How often a command is re-run after losing an append race to another node.
const MAX_ATTEMPTS: usize = 4;

/// The most segments in one ingest request.
pub const MAX_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("segment {index}: {error}")]
    Segment {
        index: usize,
        error: Box<DomainError>,
    },
    #[error("no such call")]
    NotFound,
    #[error("the call's ruleset is unavailable: {0}")]
    Rules(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", .0.message)]
    Api(Box<ApiError>),
}

/// A transcript segment as a source sends it: raw text, not yet redacted.
#[derive(Clone, Debug)]
pub struct RawSegment {
    pub segment_id: SegmentId,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub is_final: bool,
    pub confidence: Option<f32>,
}

/// Who asked, and the request's trace id (written into the events' metadata).
#[derive(Clone, Debug)]
pub struct Origin {
    pub tenant: TenantId,
    pub actor: ActorId,
    pub trace: Option<TraceId>,
}

/// An event a command wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub seq: Seq,
    pub kind: &'static str,
}

#[derive(Clone, Debug)]
pub struct SegmentOutcome {
    pub segment_id: SegmentId,
    /// The seq of the segment's event (the original one, for a retry).
    pub seq: Seq,
    /// True when this was a retry of a segment already in the log: nothing was written.
    pub deduplicated: bool,
    /// The events the segment caused (alerts, checklist items, cards), in seq order.
    pub caused: Vec<Written>,
}

#[derive(Clone, Debug)]
pub struct CommandOutcome {
    pub written: Vec<Written>,
    /// The call's version after the command.
    pub version: Seq,
}

pub struct StartCall {
    pub call_id: CallId,
    pub source: CallSource,
    pub agent: AgentId,
    pub ruleset: RulesetRef,
    pub language: LanguageTag,
}

pub struct StartOutcome {
    pub version: Seq,
    /// False when the call already existed with the same tenant and agent (a retried start).
    pub created: bool,
    pub ruleset: RulesetRef,
}

struct Session {
    state: CallState,
    /// The engine and its state for the call; `None` before the call starts.
    rules: Option<(Arc<Engine>, CallRules)>,
    speakers: HashMap<Speaker, SpeakerContext>,
    /// The start of the last final segment: finals must not go back in time.
    last_final_start: u64,
    last_used: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// Runs `$body` (with `$session` bound to the loaded session) until its append does not
/// conflict with another node's, reloading the call between attempts. A store error also
/// drops the session: it may be behind the log now. (A macro rather than a method taking an
/// async closure: such closures' futures are not provably `Send`.)
macro_rules! with_session {
    ($self:ident, $call:expr, |$session:ident| $body:expr) => {{
        let mut guard = $self.lock($call).await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let $session = $self.loaded(&mut guard, $call).await?;
            match $body {
                Err(PipelineError::Store(StoreError::Conflict { .. })) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(call = %$call, attempt, "lost an append race; reloading the call");
                    *guard = None;
                }
                Err(e) => {
                    if matches!(e, PipelineError::Store(_)) {
                        *guard = None;
                    }
                    break Err(e);
                }
                Ok(v) => break Ok(v),
            }
        }
    }};
}

pub struct Pipeline {
    store: Arc<dyn Store>,
    engines: Arc<Engines>,
    redactor: Redactor,
    sessions: Mutex<HashMap<CallId, Slot>>,
    /// The longest raw segment text accepted, in characters.
    pub max_segment_chars: usize,
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        engines: Arc<Engines>,
        redactor: Redactor,
        max_segment_chars: usize,
    ) -> Self {
        Self {
            store,
            engines,
            redactor,
            sessions: Mutex::new(HashMap::new()),
            max_segment_chars,
        }
    }

    fn slot(&self, call: CallId) -> Slot {
        self.sessions
            .lock()
            .expect("session map")
            .entry(call)
            .or_default()
            .clone()
    }

    /// Drops the sessions nobody used for `idle` (they reload from the log on next use).
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let mut map = self.sessions.lock().expect("session map");
        let before = map.len();
        map.retain(|_, slot| match slot.try_lock() {
            Ok(s) => s.as_ref().is_some_and(|s| s.last_used.elapsed() < idle),
            Err(_) => true,
        });
        before - map.len()
    }

    /// Redacts free text a person typed (a disposition note), as segments are redacted.
    pub fn redact_text(&self, text: &str) -> String {
        self.redactor.redact(text).text
    }

    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().expect("session map").len()
    }

    /// Loads the call's session from the log.
    async fn load(&self, call: CallId) -> Result<Session, PipelineError> {
        let events = store::load_stream(self.store.as_ref(), call, None).await?;
        let state = CallState::replay(&events);
        let mut session = Session {
            rules: None,
            speakers: HashMap::new(),
            last_final_start: 0,
            last_used: Instant::now(),
            state,
        };
        if let Some(info) = &session.state.info {
            let engine = self
                .engines
                .get(&info.tenant, &info.ruleset)
                .await
                .map_err(|e| PipelineError::Rules(e.to_string()))?;
            let mut rules = engine.new_call(&info.language);
            for e in &events {
                match &e.event {
                    CallEvent::SegmentAdded(s) if s.is_final => {
                        session.last_final_start = session.last_final_start.max(s.start_ms);
                        engine.on_segment(&mut rules, call, &input(s));
                    }
                    CallEvent::CallEnded(_) => {
                        engine.on_call_end(&mut rules, call);
                    }
                    _ => {}
                }
            }
            session.rules = Some((engine, rules));
        }
        Ok(session)
    }

    /// Locks the call's session for one command.
    async fn lock(&self, call: CallId) -> tokio::sync::OwnedMutexGuard<Option<Session>> {
        self.slot(call).lock_owned().await
    }

    /// The locked session, loaded from the log if needed.
    async fn loaded<'g>(
        &self,
        guard: &'g mut Option<Session>,
        call: CallId,
    ) -> Result<&'g mut Session, PipelineError> {
        if guard.is_none() {
            *guard = Some(self.load(call).await?);
        }
        let session = guard.as_mut().expect("loaded above");
        session.last_used = Instant::now();
        Ok(session)
    }

    /// Starts a call. Retrying a start (same id, tenant and agent) answers with the existing
    /// call instead of a conflict.
    pub async fn start(
        &self,
        origin: &Origin,
        start: StartCall,
    ) -> Result<StartOutcome, PipelineError> {
        let call = start.call_id;
        let engine = self
            .engines
            .get(&origin.tenant, &start.ruleset)
            .await
            .map_err(|e| PipelineError::Api(Box::new(ApiError::field("ruleset", e.to_string()))))?;
        with_session!(self, call, |session| async {
            if let Some(info) = &session.state.info {
                if info.tenant == origin.tenant && info.agent == start.agent {
                    return Ok(StartOutcome {
                        version: session.state.version,
                        created: false,
                        ruleset: info.ruleset.clone(),
                    });
                }
                if info.tenant != origin.tenant {
                    // Another tenant's call: say nothing about it.
                    return Err(PipelineError::Api(Box::new(
                        ApiError::conflict("call_id is taken; omit it to get a fresh one")
                            .with_field("call_id"),
                    )));
                }
            }
            let events = decide(
                &session.state,
                Command::StartCall {
                    tenant: origin.tenant.clone(),
                    source: start.source,
                    agent: start.agent.clone(),
                    ruleset: start.ruleset.clone(),
                    language: start.language.clone(),
                },
            )?;
            let new = events
                .into_iter()
                .map(|e| stamp(NewEvent::new(e), origin, None))
                .collect();
            let written = self.append(session, call, &origin.tenant, new).await?;
            let rules = engine.new_call(&start.language);
            session.rules = Some((engine.clone(), rules));
            Ok(StartOutcome {
                version: written.last().map(|w| w.seq).unwrap_or(Seq::ZERO),
                created: true,
                ruleset: start.ruleset.clone(),
            })
        }
        .await)
    }

    /// Ingests a batch of segments into a live call, all or nothing.
    pub async fn ingest(
        &self,
        origin: &Origin,
        call: CallId,
        segments: &[RawSegment],
    ) -> Result<Vec<SegmentOutcome>, PipelineError> {
        let started = Instant::now();
        let result: Result<_, PipelineError> = with_session!(self, call, |session| {
            self.ingest_in(session, origin, call, segments).await
        });
        let outcome = if result.is_ok() { "ok" } else { "refused" };
        metrics::histogram!("earshot_ingest_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("earshot_ingest_segments_total", "outcome" => outcome)
            .increment(segments.len() as u64);
        if let Err(e) = &result {
            tracing::info!(%call, error = %e, "ingest refused");
        }
        result
    }

    async fn ingest_in(
        &self,
        session: &mut Session,
        origin: &Origin,
        call: CallId,
        segments: &[RawSegment],
    ) -> Result<Vec<SegmentOutcome>, PipelineError> {
        owned_by(session, &origin.tenant)?;
        match session.state.status {
            CallStatus::NotStarted => return Err(PipelineError::NotFound),
            CallStatus::Ended => return Err(DomainError::CallEnded.into()),
            CallStatus::Live => {}
        }
        let (engine, rules) = session
            .rules
            .as_ref()
            .expect("a started call has its rules");
        let engine = engine.clone();
        let mut rules = rules.clone();
        let mut speakers = session.speakers.clone();
        let mut last_final_start = session.last_final_start;
        let correlation = CorrelationId::new();

        enum Plan {
            Retry(Seq),
            /// Index of the segment's event in `events`, and how many events it caused.
            New(usize, usize),
        }
        let mut plans = Vec::with_capacity(segments.len());
        let mut events: Vec<NewEvent> = Vec::with_capacity(segments.len() * 2);
        let mut seen = HashSet::with_capacity(segments.len());
        for (index, raw) in segments.iter().enumerate() {
            let fail = |error: DomainError| PipelineError::Segment {
                index,
                error: Box::new(error),
            };
            if !seen.insert(&raw.segment_id) {
                return Err(fail(DomainError::Invalid {
                    field: "segment_id",
                    reason: "appears twice in this batch".into(),
                }));
            }
            if let Some(existing) = session.state.segment(&raw.segment_id)
                && existing.segment.is_final
            {
                let s = &existing.segment;
                if raw.is_final
                    && s.speaker == raw.speaker
                    && s.start_ms == raw.start_ms
                    && s.end_ms == raw.end_ms
                {
                    plans.push(Plan::Retry(existing.seq));
                    continue;
                }
                return Err(fail(DomainError::DuplicateSegment(raw.segment_id.clone())));
            }
            if raw.is_final && raw.start_ms < last_final_start {
                return Err(fail(DomainError::Invalid {
                    field: "start_ms",
                    reason: format!(
                        "{} is before the start of the previous final segment ({last_final_start} ms): \
                         segments must arrive in the order they were spoken",
                        raw.start_ms
                    ),
                }));
            }
            // Interim hypotheses are redacted on their own: they are replaced by the final
            // segment, which is the one that carries the speaker's context forward.
            let redacted = if raw.is_final {
                let ctx = speakers.entry(raw.speaker).or_default();
                self.redactor.redact_next(ctx, &raw.text)
            } else {
                self.redactor.redact(&raw.text)
            };
            let added = SegmentAdded {
                segment_id: raw.segment_id.clone(),
                speaker: raw.speaker,
                text: redacted.text,
                start_ms: raw.start_ms,
                end_ms: raw.end_ms,
                is_final: raw.is_final,
                confidence: raw.confidence,
                redactions: redacted.redactions,
            };
            let decided = decide(&session.state, Command::AddSegment(added)).map_err(fail)?;
            let at = events.len();
            for event in decided {
                let id = if raw.is_final {
                    segment_event_id(call, &raw.segment_id)
                } else {
                    EventId::new()
                };
                let caused = match &event {
                    CallEvent::SegmentAdded(s) if s.is_final => {
                        last_final_start = s.start_ms;
                        engine.on_segment(&mut rules, call, &input(s))
                    }
                    _ => Vec::new(),
                };
                events.push(
                    stamp(NewEvent::new(event).with_id(id), origin, None).correlated(correlation),
                );
                for c in caused {
                    events.push(stamp(NewEvent::new(c), origin, Some(id)).correlated(correlation));
                }
            }
            plans.push(Plan::New(at, events.len() - at - 1));
        }

        let written = if events.is_empty() {
            Vec::new()
        } else {
            self.append(session, call, &origin.tenant, events).await?
        };
        session.speakers = speakers;
        session.last_final_start = last_final_start;
        if let Some((_, r)) = session.rules.as_mut() {
            *r = rules;
        }
        Ok(plans
            .into_iter()
            .zip(segments)
            .map(|(plan, raw)| match plan {
                Plan::Retry(seq) => SegmentOutcome {
                    segment_id: raw.segment_id.clone(),
                    seq,
                    deduplicated: true,
                    caused: Vec::new(),
                },
                Plan::New(at, n) => SegmentOutcome {
                    segment_id: raw.segment_id.clone(),
                    seq: written[at].seq,
                    deduplicated: false,
                    caused: written[at + 1..at + 1 + n].to_vec(),
                },
            })
            .collect())
    }

    /// Runs a command other than start and ingest (end, acknowledge, feedback, disposition).
    pub async fn execute(
        &self,
        origin: &Origin,
        call: CallId,
        command: Command,
    ) -> Result<CommandOutcome, PipelineError> {
        let ending = matches!(command, Command::EndCall { .. });
        let outcome: CommandOutcome = with_session!(self, call, |session| async {
            owned_by(session, &origin.tenant)?;
            let decided = decide(&session.state, command.clone())?;
            let mut rules = session.rules.as_ref().map(|(e, r)| (e.clone(), r.clone()));
            let mut events: Vec<NewEvent> = Vec::new();
            for event in decided {
                let ended = matches!(event, CallEvent::CallEnded(_));
                let new = stamp(NewEvent::new(event), origin, None);
                let cause = new.event_id;
                events.push(new);
                // What the agent never covered is missed when the call ends.
                if ended && let Some((engine, r)) = rules.as_mut() {
                    for missed in engine.on_call_end(r, call) {
                        events.push(stamp(NewEvent::new(missed), origin, Some(cause)));
                    }
                }
            }
            let written = if events.is_empty() {
                Vec::new()
            } else {
                self.append(session, call, &origin.tenant, events).await?
            };
            if let (Some((_, r)), Some((_, new))) = (session.rules.as_mut(), rules) {
                *r = new;
            }
            Ok(CommandOutcome {
                version: session.state.version,
                written,
            })
        }
        .await)?;
        if ending {
            // The call takes no more segments: free its session (feedback after the end
            // reloads it from the log).
            self.sessions.lock().expect("session map").remove(&call);
        }
        Ok(outcome)
    }

    /// Posts what the assist worker generated (a suggestion, a summary, a failure and its
    /// fallback): every command is decided against the call's state and the events are
    /// written in one append, each with the id the worker derived from its trigger, so a
    /// retry or a competing worker posting for the same trigger writes nothing. Commands the
    /// state already satisfies decide to nothing.
    ///
    /// `seen` is the version of the call the worker generated from: a session behind it (the
    /// segments were written by another process) is reloaded first.
    pub async fn post_assist(
        &self,
        call: CallId,
        seen: Seq,
        cause: EventId,
        posts: Vec<(EventId, Command)>,
    ) -> Result<CommandOutcome, PipelineError> {
        with_session!(self, call, |session| async {
            if session.state.version < seen {
                return Err(PipelineError::Store(StoreError::Conflict {
                    call_id: call,
                    expected: session.state.version,
                    current: seen,
                }));
            }
            let tenant = match &session.state.info {
                Some(info) => info.tenant.clone(),
                None => return Err(PipelineError::NotFound),
            };
            let mut events = Vec::new();
            for (id, command) in &posts {
                for event in decide(&session.state, command.clone())? {
                    events.push(NewEvent::new(event).with_id(*id).caused_by(cause));
                }
            }
            let written = if events.is_empty() {
                Vec::new()
            } else {
                self.append(session, call, &tenant, events).await?
            };
            Ok(CommandOutcome {
                version: session.state.version,
                written,
            })
        }
        .await)
    }

    /// Appends `events` at the session's version and applies them to the session.
    ///
    /// If the store answers that the events are already in the log (their ids were written
    /// by another node, or by an earlier attempt whose answer was lost), the session is
    /// behind the log: that is reported as a conflict, so the command is re-run on the
    /// reloaded call (where it decides to nothing, or to a retry answer).
    async fn append(
        &self,
        session: &mut Session,
        call: CallId,
        tenant: &TenantId,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Written>, PipelineError> {
        let outcome = self
            .store
            .append(
                call,
                tenant,
                ExpectedVersion::Exact(session.state.version),
                events.clone(),
            )
            .await?;
        if outcome.deduplicated {
            return Err(PipelineError::Store(StoreError::Conflict {
                call_id: call,
                expected: session.state.version,
                current: outcome.last_seq(),
            }));
        }
        let now = Utc::now();
        let mut written = Vec::with_capacity(events.len());
        for (new, (seq, position)) in events.into_iter().zip(outcome.positions) {
            written.push(Written {
                seq,
                kind: new.event.event_type(),
            });
            let recorded = RecordedEvent {
                meta: EventMetadata {
                    event_id: new.event_id,
                    tenant: tenant.clone(),
                    call_id: call,
                    seq,
                    global_position: position,
                    recorded_at: now,
                    trace_id: new.trace_id,
                    causation_id: new.causation_id,
                    correlation_id: new.correlation_id,
                    schema_version: new.event.schema_version(),
                },
                event: new.event,
            };
            session.state.apply(&recorded);
        }
        Ok(written)
    }

    /// The tenant a call belongs to, read from the log (for access checks outside the write
    /// path); `None` if the call has not started.
    pub async fn call_tenant(&self, call: CallId) -> Result<Option<TenantId>, StoreError> {
        if let Some(slot) = self.sessions.lock().expect("session map").get(&call)
            && let Ok(s) = slot.try_lock()
            && let Some(info) = s.as_ref().and_then(|s| s.state.info.as_ref())
        {
            return Ok(Some(info.tenant.clone()));
        }
        let first = self.store.read_stream(call, Seq::ZERO, 1).await?;
        Ok(first.into_iter().find_map(|e| match e.event {
            CallEvent::CallStarted(CallStarted { tenant, .. }) => Some(tenant),
            _ => None,
        }))
    }
}

/// Refuses a call of another tenant as if it did not exist.
fn owned_by(session: &Session, tenant: &TenantId) -> Result<(), PipelineError> {
    match &session.state.info {
        Some(info) if &info.tenant == tenant => Ok(()),
        _ => Err(PipelineError::NotFound),
    }
}

fn stamp(event: NewEvent, origin: &Origin, cause: Option<EventId>) -> NewEvent {
    let event = event.with_trace(origin.trace.clone());
    match cause {
        Some(c) => event.caused_by(c),
        None => event,
    }
}

fn input(s: &SegmentAdded) -> SegmentInput<'_> {
    SegmentInput {
        segment_id: &s.segment_id,
        speaker: s.speaker,
        text: &s.text,
        start_ms: s.start_ms,
        end_ms: s.end_ms,
    }
}

/// The event id of a call's final segment: the same on every retry, on every node.
fn segment_event_id(call: CallId, segment: &SegmentId) -> EventId {
    let mut name = Vec::with_capacity(16 + segment.as_str().len());
    name.extend_from_slice(call.as_uuid().as_bytes());
    name.extend_from_slice(segment.as_str().as_bytes());
    EventId::from_uuid(Uuid::new_v5(&EVENT_NAMESPACE, &name)).expect("a v5 UUID is never nil")
}
