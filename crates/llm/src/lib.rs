//! Language-model providers for the LLM worker: one [`Provider`] trait and an
//! [`OpenAiCompatible`] client for the Chat Completions wire protocol.
//!
//! The worker asks a provider for a suggested reply (streamed, so the first words reach the
//! CSR early) or for an end-of-call summary (structured JSON output). Providers only ever see
//! the redacted transcript; that is the caller's job, this crate sends what it is given.
//!
//! [`OpenAiCompatible`] speaks `POST {base}/chat/completions`, so OpenAI, OpenRouter, Ollama,
//! vLLM and Azure OpenAI (deployment URL, `api-version`, `api-key` header) work by
//! configuration alone ([`OpenAiConfig`]). It has:
//!
//! - **timeouts**: a first-byte timeout (until the response headers and, when streaming, the
//!   first body chunk) and an overall timeout per attempt;
//! - **bounded retries** ([`RetryPolicy`]) with exponential backoff and jitter on 429, 5xx,
//!   timeouts and connection errors, honouring `Retry-After` (seconds) up to a cap; other 4xx
//!   are not retried. A stream that has already delivered text is never retried (the caller
//!   would see it twice);
//! - **a circuit breaker** ([`CircuitBreaker`]): after N consecutive failed calls it opens
//!   and calls fail at once with [`LlmError::CircuitOpen`], so the caller falls back to the
//!   offline provider; after a cool-down one probe call is let through (half-open), and its
//!   outcome closes or re-opens the circuit.
//!
//! Over TLS the client offers HTTP/2 (ALPN) and uses it where the provider does: the worker
//! cancels a reply whenever the customer speaks again, and with HTTP/2 a cancelled request is
//! one reset stream on a kept connection, where HTTP/1.1 must close the connection and the
//! next request pays a new TCP and TLS handshake.
//!
//! The API key is a [`secrecy::SecretString`]: it is sent as `Authorization: Bearer …` (or
//! `api-key` for Azure), marked sensitive in the header map, and never printed by a `Debug`
//! impl or an error.
//!
//! # Layout
//!
//! - `lib.rs`: the [`Provider`] trait, [`ChatRequest`], [`Message`], [`Completion`],
//!   [`LlmError`].
//! - `openai.rs`: [`OpenAiCompatible`] and its [`OpenAiConfig`] / [`AzureConfig`]; request
//!   building, the retry loop, response and stream handling.
//! - `sse.rs`: an incremental Server-Sent-Events parser (chunks may split lines anywhere,
//!   even inside a UTF-8 sequence).
//! - `retry.rs`: [`RetryPolicy`], backoff with jitter, `Retry-After` parsing.
//! - `breaker.rs`: [`CircuitBreaker`], [`BreakerConfig`], [`CircuitState`].

mod breaker;
mod openai;
mod retry;
mod sse;

use std::time::Duration;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use breaker::{BreakerConfig, CircuitBreaker, CircuitState};
pub use openai::{AzureConfig, OpenAiCompatible, OpenAiConfig};
pub use retry::RetryPolicy;

/// Who said a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What to ask a provider.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Structured output: the `json_schema` object of
    /// `response_format: {"type": "json_schema", "json_schema": …}`, i.e.
    /// `{"name": …, "schema": {…}, "strict": true}` (see [`ChatRequest::with_json_schema`]).
    /// When set, the completion text must parse as JSON, else [`LlmError::MalformedJson`].
    pub json_schema: Option<serde_json::Value>,
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// Asks for output matching `schema` (strict mode), under the name `name`.
    #[must_use]
    pub fn with_json_schema(mut self, name: &str, schema: serde_json::Value) -> Self {
        self.json_schema =
            Some(serde_json::json!({ "name": name, "schema": schema, "strict": true }));
        self
    }
}

/// A finished completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// From the call to the end of the response, retries and waits included.
    pub latency: Duration,
    /// From the call to the first non-empty text delta (streaming only).
    pub first_token: Option<Duration>,
    /// HTTP attempts made (1 when the first one succeeded).
    pub attempts: u32,
}

impl Completion {
    /// Parses the text as structured output.
    pub fn parse_json<T: DeserializeOwned>(&self) -> Result<T, LlmError> {
        serde_json::from_str(&self.text).map_err(|source| LlmError::MalformedJson {
            len: self.text.len(),
            source,
        })
    }
}

/// A language-model backend.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// One completion, returned whole.
    async fn complete(&self, req: ChatRequest) -> Result<Completion, LlmError>;

    /// One completion, with each text delta passed to `on_delta` as it arrives; returns the
    /// whole completion at the end. (The `for<'s>` is what `dyn FnMut(&str)` means; it is
    /// spelled out because `async_trait` would otherwise give the `&str` a fixed lifetime.)
    async fn stream(
        &self,
        req: ChatRequest,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send),
    ) -> Result<Completion, LlmError>;

    /// The provider's name as recorded in events (e.g. `openai`, `azure`, `ollama`).
    fn name(&self) -> &str;

    /// The model as recorded in events.
    fn model(&self) -> &str;
}

/// Why a completion failed. Never contains the API key or the prompt.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The circuit breaker is open: the remote kept failing. Fall back.
    #[error("circuit open: the provider kept failing; next probe in {retry_in:?}")]
    CircuitOpen { retry_in: Duration },
    /// The remote answered with a non-success status (after retries, for retryable ones).
    #[error("HTTP {status} after {attempts} attempt(s): {body}")]
    Status {
        status: u16,
        body: String,
        attempts: u32,
    },
    /// No response (headers or first chunk) within the first-byte timeout, or the attempt
    /// exceeded the request timeout.
    #[error("timed out after {attempts} attempt(s): {what}")]
    Timeout { what: &'static str, attempts: u32 },
    /// Connection refused, reset, DNS, TLS…
    #[error("transport error after {attempts} attempt(s): {source}")]
    Transport {
        source: reqwest::Error,
        attempts: u32,
    },
    /// The response did not follow the wire protocol (bad JSON envelope, no choices, an
    /// `error` object in the stream, a stream cut before `[DONE]`…).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Structured output was requested but the text is not valid JSON (or not the
    /// expected shape). The text itself is not included; `len` is its length in bytes.
    #[error("structured output is not valid JSON ({len} bytes): {source}")]
    MalformedJson {
        len: usize,
        source: serde_json::Error,
    },
    /// The configuration cannot work (bad URL, bad header).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl LlmError {
    /// Whether this is a failure of the remote (it counts towards opening the circuit), as
    /// opposed to a request the remote refused as invalid or a bad output.
    pub fn is_remote_failure(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Timeout { .. } | Self::Transport { .. } | Self::Protocol(_) => true,
            Self::CircuitOpen { .. } | Self::MalformedJson { .. } | Self::Config(_) => false,
        }
    }
}
