//! `earshot events CALL [--at SEQ] [--json] [--step] [--follow]`: a call's log, and the
//! state rebuilt from it — at the end, at a seq, after every event (`--step`), or live as
//! new events are committed (`--follow`).
//!
//! Reads the store directly (no server needed). `--follow` wakes on the store's append
//! notifications (in this process, or from other processes on Postgres) and also re-reads
//! every 500 ms, which is what catches another process's appends on SQLite.

use std::fmt::Write;
use std::time::Duration;

use anyhow::bail;
use domain::event::Speaker;
use domain::state::ChecklistStatus;
use domain::{CallEvent, CallId, CallState, CallStatus, RecordedEvent, Seq};
use serde::Serialize;
use serde_json::json;
use store::{EventStore, Wakeup};
use tokio_util::sync::CancellationToken;

/// How often `--follow` re-reads the log without a wake-up.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// Events read per query while following.
const PAGE: usize = 500;

pub async fn render(
    store: &dyn EventStore,
    call_id: CallId,
    at: Option<Seq>,
    as_json: bool,
) -> anyhow::Result<String> {
    let top = store.stream_version(call_id).await?;
    if top == Seq::ZERO {
        bail!("call {call_id} has no events in this store");
    }
    let (state, events) = projection::rebuild(store, call_id, at).await?;
    if as_json {
        let doc = json!({
            "call_id": call_id,
            "top_seq": top,
            "as_of": state.version,
            "events": events,
            "state": state,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    let mut out = String::new();
    let shown = if at.is_some_and(|s| s < top) {
        format!("up to seq {} of {top}", state.version)
    } else {
        format!("all {top}")
    };
    writeln!(out, "call {call_id}: {shown} events")?;
    writeln!(out)?;
    writeln!(out, "{}", table_header())?;
    for e in &events {
        writeln!(out, "{}", table_line(e))?;
    }
    writeln!(out)?;
    write_state(&mut out, &state)?;
    Ok(out)
}

fn table_header() -> String {
    format!(
        "{:>5} {:>8}  {:<24} {:<24} detail",
        "seq", "position", "recorded at", "event"
    )
}

fn table_line(e: &RecordedEvent) -> String {
    format!(
        "{:>5} {:>8}  {:<24} {:<24} {}",
        e.meta.seq,
        e.meta.global_position,
        e.meta.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
        e.event.event_type(),
        detail(e)
    )
}

/// `--step` and `--follow`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Stop after this seq (not with `follow`).
    pub at: Option<Seq>,
    /// One JSON document per event, one per line.
    pub json: bool,
    /// After each event, what it changed in the state.
    pub step: bool,
    /// Keep printing new events until the call has ended and its summary arrived, or `stop`.
    pub follow: bool,
}

/// The call's events with `--step` and/or `--follow`, written to `out` as they are read.
pub async fn run(
    store: &dyn EventStore,
    call_id: CallId,
    opts: &Options,
    out: &mut dyn std::io::Write,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Listen before reading, so that nothing committed in between goes unnoticed.
    let mut wakeups = opts.follow.then(|| store.subscribe());
    let top = store.stream_version(call_id).await?;
    if top == Seq::ZERO {
        bail!("call {call_id} has no events in this store");
    }
    let mut state = CallState::default();
    if !opts.json {
        let upto = opts.at.filter(|a| *a < top);
        writeln!(
            out,
            "call {call_id}: {} events{}{}",
            match upto {
                Some(a) => format!("up to seq {a} of {top}"),
                None => format!("all {top}"),
            },
            if opts.step { ", step by step" } else { "" },
            if opts.follow {
                ", then new ones as they come"
            } else {
                ""
            }
        )?;
        writeln!(out)?;
        if opts.step {
            writeln!(out, "{:>5} {:<24} state after the event", "seq", "event")?;
        } else {
            writeln!(out, "{}", table_header())?;
        }
    }
    let mut last = Seq::ZERO;
    let upto = opts.at.unwrap_or(top);
    'backlog: loop {
        let page = store.read_stream(call_id, last, PAGE).await?;
        for e in &page {
            if e.meta.seq > upto {
                break 'backlog;
            }
            print_event(out, &mut state, e, opts)?;
            last = e.meta.seq;
        }
        if page.len() < PAGE || last >= upto {
            break;
        }
    }
    if opts.follow {
        eprintln!("following call {call_id} (Ctrl-C to stop)");
        loop {
            if finished(&state) {
                break;
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = wake(&mut wakeups, call_id) => {}
            }
            loop {
                let page = store.read_stream(call_id, last, PAGE).await?;
                for e in &page {
                    print_event(out, &mut state, e, opts)?;
                    last = e.meta.seq;
                }
                if page.len() < PAGE {
                    break;
                }
            }
        }
    }
    if !opts.json {
        writeln!(out)?;
        let mut text = String::new();
        write_state(&mut text, &state)?;
        write!(out, "{text}")?;
    }
    out.flush()?;
    Ok(())
}

/// Ended, and its summary is in: nothing more will come from the assist worker.
fn finished(state: &CallState) -> bool {
    state.status == CallStatus::Ended && state.summary.is_some()
}

/// Resolves on a wake-up for this call (or a resync), or after [`FOLLOW_POLL`].
async fn wake(wakeups: &mut Option<tokio::sync::broadcast::Receiver<Wakeup>>, call_id: CallId) {
    let poll = tokio::time::sleep(FOLLOW_POLL);
    tokio::pin!(poll);
    loop {
        let Some(rx) = wakeups.as_mut() else {
            return poll.await;
        };
        tokio::select! {
            _ = &mut poll => return,
            w = rx.recv() => match w {
                Ok(Wakeup::Appended { call_id: c, .. }) if c != call_id => continue,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => *wakeups = None,
            },
        }
    }
}

fn print_event(
    out: &mut dyn std::io::Write,
    state: &mut CallState,
    e: &RecordedEvent,
    opts: &Options,
) -> anyhow::Result<()> {
    let before = Digest::of(state);
    state.apply(e);
    let after = Digest::of(state);
    match (opts.json, opts.step) {
        (true, true) => writeln!(
            out,
            "{}",
            json!({"seq": e.meta.seq, "event": e, "state": after})
        )?,
        (true, false) => writeln!(out, "{}", json!({"seq": e.meta.seq, "event": e}))?,
        (false, true) => writeln!(
            out,
            "{:>5} {:<24} {}",
            e.meta.seq,
            e.event.event_type(),
            step_line(&before, &after, e)
        )?,
        (false, false) => writeln!(out, "{}", table_line(e))?,
    }
    // Followers read line by line.
    out.flush()?;
    Ok(())
}

/// The counts `--step` compares before and after each event.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Digest {
    pub status: CallStatus,
    pub segments: usize,
    pub alerts: usize,
    pub open_alerts: usize,
    pub checklist_done: usize,
    pub checklist_missed: usize,
    pub cards: usize,
    pub suggestions: usize,
    pub failed_generations: usize,
    pub summary: bool,
    pub disposition: Option<String>,
}

impl Digest {
    pub fn of(s: &CallState) -> Self {
        let done = s
            .checklist
            .values()
            .filter(|c| matches!(c.status, ChecklistStatus::Completed { .. }))
            .count();
        Self {
            status: s.status,
            segments: s.segments.len(),
            alerts: s.alerts.len(),
            open_alerts: s.unacknowledged_alerts(),
            checklist_done: done,
            checklist_missed: s.checklist.len() - done,
            cards: s.cards.len(),
            suggestions: s.suggestions.len(),
            failed_generations: s.generation_failures.len(),
            summary: s.summary.is_some(),
            disposition: s.disposition.as_ref().map(|d| {
                let name = json!(d.disposition);
                let name = name.as_str().unwrap_or("?");
                match (&d.overridden_by, &s.summary) {
                    (Some(by), _) => format!("{name} (set by {by})"),
                    (None, Some(sum)) => format!("{name} ({:.0}%)", sum.confidence * 100.0),
                    (None, None) => name.to_owned(),
                }
            }),
        }
    }
}

/// What an event changed, compactly: each part of the state that moved, with its new value,
/// then what the event says (`--step`).
pub fn step_line(before: &Digest, after: &Digest, e: &RecordedEvent) -> String {
    let mut parts = Vec::new();
    if before.status != after.status {
        parts.push(
            match after.status {
                CallStatus::NotStarted => "not started",
                CallStatus::Live => "live",
                CallStatus::Ended => "ended",
            }
            .to_owned(),
        );
    }
    if before.segments != after.segments {
        parts.push(format!("transcript {}", after.segments));
    }
    if (before.alerts, before.open_alerts) != (after.alerts, after.open_alerts) {
        parts.push(format!(
            "alerts {} ({} open)",
            after.alerts, after.open_alerts
        ));
    }
    if (before.checklist_done, before.checklist_missed)
        != (after.checklist_done, after.checklist_missed)
    {
        parts.push(format!(
            "checklist {} done, {} missed",
            after.checklist_done, after.checklist_missed
        ));
    }
    if before.cards != after.cards {
        parts.push(format!("cards {}", after.cards));
    }
    if before.suggestions != after.suggestions {
        parts.push(format!("suggestions {}", after.suggestions));
    }
    if before.failed_generations != after.failed_generations {
        parts.push(format!("failed generations {}", after.failed_generations));
    }
    if before.summary != after.summary {
        parts.push("summary".to_owned());
    }
    if before.disposition != after.disposition
        && let Some(d) = &after.disposition
    {
        parts.push(format!("disposition {d}"));
    }
    let what = short(&detail(e), 100);
    if parts.is_empty() {
        format!("(no change) {what}")
    } else {
        format!("{} — {what}", parts.join(" · "))
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

fn detail(e: &RecordedEvent) -> String {
    match &e.event {
        CallEvent::CallStarted(s) => format!(
            "tenant={} agent={} source={:?} ruleset={}@v{} lang={}",
            s.tenant, s.agent, s.source, s.ruleset.id, s.ruleset.version, s.language
        ),
        CallEvent::SegmentAdded(s) => format!(
            "{} {}{}: {}",
            s.segment_id,
            speaker(s.speaker),
            if s.is_final { "" } else { " (interim)" },
            s.text
        ),
        CallEvent::AlertRaised(a) => format!(
            "{:?} {}: {} [{}@v{}]",
            a.severity, a.rule.rule_id, a.message, a.rule.ruleset.id, a.rule.ruleset.version
        ),
        CallEvent::ChecklistItemCompleted(c) => format!("{} by {}", c.item.rule_id, c.segment_id),
        CallEvent::ChecklistItemMissed(c) => format!("{} ({:?})", c.item.rule_id, c.reason),
        CallEvent::GuidanceCardShown(c) => format!("{}: {}", c.title, c.body),
        CallEvent::ReplySuggested(s) => format!("{} ({}/{})", s.text, s.provider, s.model),
        CallEvent::SuggestionFeedback(f) => {
            format!("{} {:?} by {}", f.suggestion_id, f.verdict, f.by)
        }
        CallEvent::AlertAcknowledged(a) => format!("{} by {}", a.alert_id, a.by),
        CallEvent::CallEnded(c) => format!("{:?} by {}", c.reason, c.by),
        CallEvent::SummaryGenerated(s) => format!(
            "{:?} ({:.0}%): {}",
            s.disposition,
            s.confidence * 100.0,
            s.summary.reason_for_call
        ),
        CallEvent::DispositionOverridden(d) => format!("{:?} -> {:?} by {}", d.from, d.to, d.by),
        CallEvent::GenerationFailed(f) => format!(
            "{:?} from {}/{} at seq {} after {} attempt(s): {}{}",
            f.task,
            f.provider,
            f.model,
            f.based_on_seq,
            f.attempts,
            f.error,
            f.fallback
                .as_deref()
                .map(|p| format!("; fell back to {p}"))
                .unwrap_or_default()
        ),
    }
}

fn speaker(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "agent",
        Speaker::Customer => "customer",
    }
}

fn write_state(out: &mut String, s: &CallState) -> std::fmt::Result {
    writeln!(out, "state at seq {}: {:?}", s.version, s.status)?;
    if let Some(info) = &s.info {
        writeln!(
            out,
            "  agent {} · {:?} · ruleset {}@v{} · {} · started {}",
            info.agent,
            info.source,
            info.ruleset.id,
            info.ruleset.version,
            info.language,
            info.started_at.format("%Y-%m-%d %H:%M:%S")
        )?;
    }
    writeln!(out, "  transcript ({} segments)", s.segments.len())?;
    for seg in s.segments.iter() {
        writeln!(
            out,
            "    {:>8}: {}",
            speaker(seg.segment.speaker),
            seg.segment.text
        )?;
    }
    writeln!(
        out,
        "  alerts: {} ({} unacknowledged)",
        s.alerts.len(),
        s.unacknowledged_alerts()
    )?;
    for a in &s.alerts {
        writeln!(
            out,
            "    [{:?}] {}: {}{}",
            a.alert.severity,
            a.alert.rule.rule_id,
            a.alert.message,
            if a.acknowledged_by.is_some() {
                " (acknowledged)"
            } else {
                ""
            }
        )?;
    }
    if !s.checklist.is_empty() {
        writeln!(out, "  checklist")?;
        for (rule, entry) in &s.checklist {
            let mark = match entry.status {
                ChecklistStatus::Completed { .. } => "done",
                ChecklistStatus::Missed { .. } => "MISSED",
            };
            writeln!(out, "    {mark:>6} {rule}")?;
        }
    }
    if !s.cards.is_empty() {
        writeln!(out, "  guidance cards: {}", s.cards.len())?;
    }
    if !s.suggestions.is_empty() {
        writeln!(out, "  suggestions: {}", s.suggestions.len())?;
    }
    if !s.generation_failures.is_empty() {
        writeln!(
            out,
            "  failed generations: {} (see generation_failed above)",
            s.generation_failures.len()
        )?;
    }
    if let Some(sum) = &s.summary {
        writeln!(
            out,
            "  summary ({}/{}): {}",
            sum.provider, sum.model, sum.summary.reason_for_call
        )?;
    }
    if let Some(d) = &s.disposition {
        match &d.overridden_by {
            Some(by) => writeln!(out, "  disposition: {:?} (set by {by})", d.disposition)?,
            None => writeln!(out, "  disposition: {:?}", d.disposition)?,
        }
    }
    Ok(())
}
