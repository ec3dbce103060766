//! `earshot events CALL [--at SEQ] [--json]`: a call's log, and the state rebuilt from it.

use std::fmt::Write;

use anyhow::bail;
use domain::event::Speaker;
use domain::state::ChecklistStatus;
use domain::{CallEvent, CallId, CallState, RecordedEvent, Seq};
use serde_json::json;
use store::EventStore;

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
    writeln!(
        out,
        "{:>5} {:>8}  {:<24} {:<24} detail",
        "seq", "position", "recorded at", "event"
    )?;
    for e in &events {
        writeln!(
            out,
            "{:>5} {:>8}  {:<24} {:<24} {}",
            e.meta.seq,
            e.meta.global_position,
            e.meta.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            e.event.event_type(),
            detail(e)
        )?;
    }
    writeln!(out)?;
    write_state(&mut out, &state)?;
    Ok(out)
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
