//! What the worker asks of a provider, and what it falls back to.
//!
//! [`Generator::reply`] and [`Generator::summary`] always produce something to post when the
//! offline provider has something to say: the remote provider first (when one is configured),
//! the offline one ([`assist`]) when the remote fails, times out, answers something unusable
//! or has its circuit open, and then a [`GenerationFailed`] goes with the fallback so the
//! failure is on the record. Remote output passes through the redactor before it is posted:
//! a model can invent a phone number as easily as it can repeat one.

use std::sync::Arc;
use std::time::Instant;

use domain::command::{MAX_SUGGESTION_CHARS, MAX_SUMMARY_LINE_CHARS, MAX_SUMMARY_LINES};
use domain::event::{
    AssistTask, Disposition, GenerationFailed, ReplySuggested, Summary, SummaryGenerated,
};
use domain::{CallState, SuggestionId};
use llm::{LlmError, Provider};
use redact::Redactor;
use rules::Ruleset;
use serde::Deserialize;

use super::prompts;
use crate::engines::Engines;

/// Limits of the generations.
#[derive(Clone, Debug)]
pub struct GenerateConfig {
    pub reply_max_tokens: u32,
    pub summary_max_tokens: u32,
    /// Remote attempts at a summary whose output was unusable (malformed JSON, an empty
    /// reason, a confidence out of range). Failures of the remote itself are retried by the
    /// client ([`llm::RetryPolicy`]), not again here.
    pub summary_attempts: u32,
    /// Calls with fewer final segments than this are summarized offline: a model asked to
    /// summarize "hello?" invents a call.
    pub min_remote_summary_segments: usize,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            reply_max_tokens: 120,
            summary_max_tokens: 700,
            summary_attempts: 2,
            min_remote_summary_segments: 3,
        }
    }
}

pub struct Generator {
    remote: Option<Arc<dyn Provider>>,
    engines: Arc<Engines>,
    redactor: Redactor,
    config: GenerateConfig,
}

/// A reply generation: the suggestion to post (if any provider had one) and the remote's
/// failure (if it failed).
#[derive(Debug)]
pub struct Reply {
    pub suggestion: Option<ReplySuggested>,
    pub failure: Option<GenerationFailed>,
}

#[derive(Debug)]
pub struct SummaryOutcome {
    pub summary: SummaryGenerated,
    pub failure: Option<GenerationFailed>,
}

/// A summary as the remote answers it (the prompt's JSON schema).
#[derive(Deserialize)]
struct RemoteSummary {
    reason_for_call: String,
    actions_taken: Vec<String>,
    next_steps: Vec<String>,
    disposition: Disposition,
    confidence: f32,
}

impl Generator {
    pub fn new(
        remote: Option<Arc<dyn Provider>>,
        engines: Arc<Engines>,
        redactor: Redactor,
        config: GenerateConfig,
    ) -> Self {
        Self {
            remote,
            engines,
            redactor,
            config,
        }
    }

    /// The remote provider's name and model, or the offline provider's.
    pub fn describe(&self) -> (String, String) {
        match &self.remote {
            Some(r) => (r.name().to_owned(), r.model().to_owned()),
            None => (assist::PROVIDER.to_owned(), assist::MODEL.to_owned()),
        }
    }

    /// What [`Generator::ruleset`] answers, if it needs no store read (the call has no
    /// ruleset, or the engines' cache has it); `None` when it must be read.
    pub fn cached_ruleset(&self, state: &CallState) -> Option<Option<Arc<Ruleset>>> {
        let Some(info) = state.info.as_ref() else {
            return Some(None);
        };
        self.engines
            .cached_ruleset(&info.tenant, &info.ruleset)
            .map(Some)
    }

    /// The call's ruleset (from the engines' cache, else the store); `None` (logged) when it
    /// cannot be had: the reply is made without it.
    pub async fn ruleset(&self, state: &CallState) -> Option<Arc<Ruleset>> {
        let info = state.info.as_ref()?;
        match self.engines.ruleset(&info.tenant, &info.ruleset).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(ruleset = %info.ruleset.id, error = %e, "assist: the call's ruleset is unavailable; suggesting without it");
                None
            }
        }
    }

    /// A suggested reply to the latest customer segment of `state`, streamed through
    /// `on_delta` when a remote provider answers.
    pub async fn reply(
        &self,
        state: &CallState,
        ruleset: Option<&Ruleset>,
        suggestion_id: SuggestionId,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send),
    ) -> Reply {
        let based_on_seq = state.version;
        let started = Instant::now();
        let mut failure = None;
        if let Some(remote) = &self.remote {
            let req = prompts::reply_request(state, ruleset, self.config.reply_max_tokens);
            let result = remote.stream(req, on_delta).await;
            let outcome: Result<(), (String, u32)> = match result {
                Ok(c) => {
                    let text = clean_reply(&self.redactor.redact(&c.text).text);
                    if text.is_empty() {
                        Err(("the reply was empty".to_owned(), c.attempts))
                    } else {
                        metrics::histogram!("earshot_assist_generation_seconds", "task" => "reply", "provider" => "remote")
                            .record(c.latency.as_secs_f64());
                        return Reply {
                            suggestion: Some(ReplySuggested {
                                suggestion_id,
                                text,
                                based_on_seq,
                                provider: remote.name().to_owned(),
                                model: remote.model().to_owned(),
                                latency_ms: millis(c.latency),
                                prompt_tokens: c.prompt_tokens,
                                completion_tokens: c.completion_tokens,
                            }),
                            failure: None,
                        };
                    }
                }
                Err(e) => Err((short(&e), attempts(&e))),
            };
            if let Err((error, attempts)) = outcome {
                metrics::counter!("earshot_assist_failures_total", "task" => "reply").increment(1);
                tracing::warn!(call = ?state.info.as_ref().map(|i| i.call_id), %error, "assist: the provider failed a reply; falling back to offline");
                failure = Some(GenerationFailed {
                    task: AssistTask::Reply,
                    based_on_seq,
                    provider: remote.name().to_owned(),
                    model: remote.model().to_owned(),
                    error,
                    attempts,
                    fallback: None,
                });
            }
        }
        let offline = assist::suggest_with(state, ruleset).map(|s| ReplySuggested {
            suggestion_id,
            text: s.text,
            based_on_seq,
            provider: assist::PROVIDER.to_owned(),
            model: assist::MODEL.to_owned(),
            latency_ms: millis(started.elapsed()),
            prompt_tokens: None,
            completion_tokens: None,
        });
        if let (Some(f), Some(_)) = (failure.as_mut(), &offline) {
            f.fallback = Some(assist::PROVIDER.to_owned());
        }
        Reply {
            suggestion: offline,
            failure,
        }
    }

    /// The end-of-call summary of `state` (an ended call). Never fails: the offline
    /// summary is the floor.
    pub async fn summary(&self, state: &CallState) -> SummaryOutcome {
        let finals = state.segments.iter().filter(|s| s.segment.is_final).count();
        let mut failure = None;
        if let Some(remote) = &self.remote
            && finals >= self.config.min_remote_summary_segments
        {
            let req = prompts::summary_request(state, self.config.summary_max_tokens);
            let mut tries = 0;
            let mut last = String::new();
            for _ in 0..self.config.summary_attempts.max(1) {
                match remote.complete(req.clone()).await {
                    Ok(c) => {
                        tries += c.attempts;
                        match c
                            .parse_json::<RemoteSummary>()
                            .map_err(|e| short(&e))
                            .and_then(|s| self.check_summary(s, remote.as_ref()))
                        {
                            Ok(summary) => {
                                metrics::histogram!("earshot_assist_generation_seconds", "task" => "summary", "provider" => "remote")
                                    .record(c.latency.as_secs_f64());
                                return SummaryOutcome {
                                    summary,
                                    failure: None,
                                };
                            }
                            // An unusable answer: ask again.
                            Err(e) => last = e,
                        }
                    }
                    // Not JSON: an unusable answer, ask again.
                    Err(e @ LlmError::MalformedJson { .. }) => {
                        tries += attempts(&e);
                        last = short(&e);
                    }
                    Err(e) => {
                        tries += attempts(&e);
                        last = short(&e);
                        // The client already retried what can be retried.
                        break;
                    }
                }
            }
            metrics::counter!("earshot_assist_failures_total", "task" => "summary").increment(1);
            tracing::warn!(call = ?state.info.as_ref().map(|i| i.call_id), error = %last, "assist: the provider failed a summary; falling back to offline");
            failure = Some(GenerationFailed {
                task: AssistTask::Summary,
                based_on_seq: state.version,
                provider: remote.name().to_owned(),
                model: remote.model().to_owned(),
                error: last,
                attempts: tries,
                fallback: Some(assist::PROVIDER.to_owned()),
            });
        }
        let offline = assist::summarize(state);
        SummaryOutcome {
            summary: SummaryGenerated {
                summary: offline.summary,
                disposition: offline.disposition,
                confidence: offline.confidence.clamp(0.0, 1.0),
                provider: assist::PROVIDER.to_owned(),
                model: assist::MODEL.to_owned(),
            },
            failure,
        }
    }

    /// Checks and tidies a remote summary: redacted, trimmed, within the log's limits.
    fn check_summary(
        &self,
        s: RemoteSummary,
        remote: &dyn Provider,
    ) -> Result<SummaryGenerated, String> {
        let line = |t: &str| {
            truncate(
                self.redactor.redact(t.trim()).text.trim(),
                MAX_SUMMARY_LINE_CHARS,
            )
        };
        let reason = line(&s.reason_for_call);
        if reason.is_empty() {
            return Err("the summary's reason_for_call is empty".to_owned());
        }
        if !s.confidence.is_finite() || !(0.0..=1.0).contains(&s.confidence) {
            return Err(format!(
                "the summary's confidence {} is not between 0 and 1",
                s.confidence
            ));
        }
        let lines = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|t| line(t))
                .filter(|t| !t.is_empty())
                .take(MAX_SUMMARY_LINES)
                .collect()
        };
        Ok(SummaryGenerated {
            summary: Summary {
                reason_for_call: reason,
                actions_taken: lines(&s.actions_taken),
                next_steps: lines(&s.next_steps),
            },
            disposition: s.disposition,
            confidence: s.confidence,
            provider: remote.name().to_owned(),
            model: remote.model().to_owned(),
        })
    }
}

/// A model's reply as the agent would say it: trimmed, without wrapping quotes or a
/// "Agent:" label, within the log's limit.
fn clean_reply(text: &str) -> String {
    let mut t = text.trim();
    for label in ["Agent:", "agent:", "AGENT:"] {
        if let Some(rest) = t.strip_prefix(label) {
            t = rest.trim_start();
        }
    }
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"'))
            || (t.starts_with('\u{201c}') && t.ends_with('\u{201d}')))
    {
        let mut chars = t.chars();
        chars.next();
        chars.next_back();
        t = chars.as_str().trim();
    }
    truncate(t, MAX_SUGGESTION_CHARS)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A provider error as an event records it: its message, at most 300 characters (an
/// upstream error body can be long).
fn short(e: &LlmError) -> String {
    truncate(&e.to_string(), 300)
}

/// How many calls to the provider an error took.
fn attempts(e: &LlmError) -> u32 {
    match e {
        LlmError::Status { attempts, .. }
        | LlmError::Timeout { attempts, .. }
        | LlmError::Transport { attempts, .. } => *attempts,
        LlmError::CircuitOpen { .. } | LlmError::Config(_) => 0,
        LlmError::Protocol(_) | LlmError::MalformedJson { .. } => 1,
    }
}

fn millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_cleaned() {
        assert_eq!(
            clean_reply("  \"Sure, I can help.\"  "),
            "Sure, I can help."
        );
        assert_eq!(clean_reply("Agent: Sure."), "Sure.");
        assert_eq!(clean_reply("\u{201c}Of course.\u{201d}"), "Of course.");
        assert_eq!(clean_reply("\""), "\"");
        assert_eq!(clean_reply("   "), "");
        assert_eq!(
            clean_reply(&"x".repeat(MAX_SUGGESTION_CHARS + 10)).len(),
            MAX_SUGGESTION_CHARS
        );
    }
}
