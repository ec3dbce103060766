//! `earshot rules check FILE [--transcript T] [--json]`: validate a ruleset and show what it
//! does on a call — each segment redacted (as the ingest pipeline does before storing it),
//! then the rules run on it, with the alerts, checklist items and cards it causes.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, bail};
use domain::event::{CallEvent, MissReason, Speaker};
use domain::{CallId, LanguageTag, SegmentId};
use redact::{Policy, Redactor, SpeakerContext};
use rules::{Engine, RuleKind, Ruleset, SegmentInput};
use serde_json::json;

pub fn run(file: &Path, transcript: Option<&Path>, as_json: bool) -> anyhow::Result<String> {
    let yaml = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the ruleset {}", file.display()))?;
    let name = file.display().to_string();
    // Ruleset errors already name the file, the line and the rule: print them as they are.
    let ruleset = rules::parse_ruleset(&name, &yaml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = Engine::compile(&ruleset).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = String::new();
    if !as_json {
        writeln!(out, "{}", describe(&ruleset))?;
    }
    let Some(path) = transcript else {
        if as_json {
            let r = ruleset.reference();
            writeln!(
                out,
                "{}",
                json!({ "ruleset": { "id": r.id, "version": r.version }, "valid": true })
            )?;
        }
        return Ok(out);
    };
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the transcript {}", path.display()))?;
    let t = transcript::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let language = LanguageTag::parse(t.language.as_str())
        .with_context(|| format!("{}: language", path.display()))?;
    let redactor = Redactor::new(Policy::default()).context("the default redaction policy")?;

    // One call, as the pipeline runs it: redact with one context per speaker, then the clock,
    // then the rules, segment by segment; the call's end last.
    let call = CallId::new();
    let mut state = engine.new_call(&language);
    let (mut agent_ctx, mut customer_ctx) = (SpeakerContext::new(), SpeakerContext::new());
    let mut rows = Vec::with_capacity(t.segments.len());
    for seg in &t.segments {
        let ctx = match seg.speaker {
            Speaker::Agent => &mut agent_ctx,
            Speaker::Customer => &mut customer_ctx,
        };
        let redacted = redactor.redact_next(ctx, &seg.text);
        let segment_id = SegmentId::parse(seg.id.as_str())
            .with_context(|| format!("{}: segment {:?}", path.display(), seg.id))?;
        let mut events = engine.on_clock(&mut state, call, seg.start_ms);
        events.extend(engine.on_segment(
            &mut state,
            call,
            &SegmentInput {
                segment_id: &segment_id,
                speaker: seg.speaker,
                text: &redacted.text,
                start_ms: seg.start_ms,
                end_ms: seg.end_ms,
            },
        ));
        rows.push((seg, redacted, events));
    }
    let at_end = engine.on_call_end(&mut state, call);

    if as_json {
        let r = ruleset.reference();
        let segments: Vec<_> = rows
            .iter()
            .map(|(seg, red, events)| {
                json!({
                    "id": seg.id,
                    "speaker": seg.speaker,
                    "start_ms": seg.start_ms,
                    "end_ms": seg.end_ms,
                    "text": red.text,
                    "redactions": red.redactions,
                    "events": events,
                })
            })
            .collect();
        let doc = json!({
            "ruleset": { "id": r.id, "version": r.version },
            "transcript": { "title": t.title, "language": t.language },
            "segments": segments,
            "call_end": at_end,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(out);
    }

    writeln!(
        out,
        "transcript: {} ({} segments, {})",
        t.title,
        t.segments.len(),
        t.language
    )?;
    writeln!(out)?;
    let mut all = Vec::new();
    for (seg, red, events) in &rows {
        let who = match seg.speaker {
            Speaker::Agent => "agent",
            Speaker::Customer => "customer",
        };
        writeln!(out, "{} {who:>8}: {}", clock(seg.start_ms), red.text)?;
        for e in events {
            writeln!(out, "                  {}", line(e))?;
        }
        all.extend(events.iter());
    }
    writeln!(
        out,
        "{} call ended",
        clock(t.segments.last().map_or(0, |s| s.end_ms))
    )?;
    for e in &at_end {
        writeln!(out, "                  {}", line(e))?;
    }
    all.extend(at_end.iter());
    writeln!(out)?;
    writeln!(out, "{}", summary(&all))?;
    Ok(out)
}

/// `mm:ss.t` from the start of the call.
fn clock(ms: u64) -> String {
    format!(
        "{:02}:{:02}.{}",
        ms / 60_000,
        (ms / 1_000) % 60,
        (ms % 1_000) / 100
    )
}

fn describe(r: &Ruleset) -> String {
    let (mut prohibited, mut required, mut triggers) = (0, 0, 0);
    for rule in r.rules() {
        match rule.kind {
            RuleKind::Prohibited { .. } => prohibited += 1,
            RuleKind::Required { .. } => required += 1,
            RuleKind::Trigger { .. } => triggers += 1,
        }
    }
    format!(
        "ruleset {} v{} ({}): valid — {} rules: {prohibited} prohibited, {required} required, {triggers} triggers",
        r.id(),
        r.version(),
        r.file(),
        r.rules().len()
    )
}

fn line(e: &CallEvent) -> String {
    match e {
        CallEvent::AlertRaised(a) => format!(
            "ALERT {:?} {}: {}{}",
            a.severity,
            a.rule.rule_id,
            a.message,
            a.correction
                .as_deref()
                .map(|c| format!(" — try: {}", c.trim()))
                .unwrap_or_default()
        )
        .replace("Critical", "CRITICAL"),
        CallEvent::ChecklistItemCompleted(c) => format!("done  {}", c.item.rule_id),
        CallEvent::ChecklistItemMissed(m) => {
            format!("MISSED {} ({})", m.item.rule_id, miss_reason(&m.reason))
        }
        CallEvent::GuidanceCardShown(c) => format!("CARD  {}: {}", c.title, c.body.trim()),
        other => other.event_type().to_owned(),
    }
}

/// Why a required item was missed, in words (also printed by `replay`).
pub fn miss_reason(reason: &MissReason) -> String {
    match reason {
        MissReason::CallEnded => "the call ended without it".to_owned(),
        MissReason::Deadline { after_ms } => format!("not done within {} s", after_ms / 1_000),
        MissReason::PrecededBy { rule_id } => format!("{rule_id} came first"),
    }
}

fn summary(events: &[&CallEvent]) -> String {
    let mut alerts = [0usize; 3];
    let (mut done, mut missed, mut cards) = (0, 0, 0);
    for e in events {
        match e {
            CallEvent::AlertRaised(a) => alerts[a.severity as usize] += 1,
            CallEvent::ChecklistItemCompleted(_) => done += 1,
            CallEvent::ChecklistItemMissed(_) => missed += 1,
            CallEvent::GuidanceCardShown(_) => cards += 1,
            _ => {}
        }
    }
    format!(
        "summary: {} alerts ({} critical, {} warning, {} info); checklist {done} done, {missed} missed; {cards} cards",
        alerts.iter().sum::<usize>(),
        alerts[2],
        alerts[1],
        alerts[0]
    )
}

/// Checks an argument combination clap cannot express.
pub fn ensure_file(path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!("{} is not a file", path.display());
    }
    Ok(())
}
