//! The OpenAI-compatible Chat Completions client.

use std::fmt;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::breaker::{BreakerConfig, CircuitBreaker, CircuitState};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::sse::SseParser;
use crate::{ChatRequest, Completion, LlmError, Provider};

/// Error bodies are cut to this many chars in [`LlmError::Status`].
const MAX_ERROR_BODY: usize = 512;

/// Azure OpenAI mode: `base_url` is the deployment URL
/// (`https://{resource}.openai.azure.com/openai/deployments/{deployment}`), `api-version`
/// is added as a query parameter and the key is sent as an `api-key` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureConfig {
    pub api_version: String,
}

/// Configuration of an [`OpenAiCompatible`] client. `Debug` prints neither the key nor
/// header values (only header names).
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The provider name recorded in events (`openai`, `openrouter`, `azure`, `ollama`…).
    pub provider_name: String,
    /// Up to and excluding `/chat/completions`, e.g. `https://api.openai.com/v1` or
    /// `http://localhost:11434/v1`.
    pub base_url: String,
    pub model: String,
    /// `None` for servers without auth (Ollama, a local vLLM).
    pub api_key: Option<SecretString>,
    /// Sent with every request (e.g. OpenRouter's `HTTP-Referer`, `X-Title`).
    pub headers: Vec<(String, String)>,
    pub azure: Option<AzureConfig>,
    /// Limit on one attempt, from sending the request to the end of the response.
    pub request_timeout: Duration,
    /// Limit on the wait for the response headers and (streaming) the first body chunk.
    pub first_byte_timeout: Duration,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
    /// Ask for token usage in streams (`stream_options.include_usage`).
    pub stream_usage: bool,
    /// Speak HTTP/2 from the first byte on `http://` URLs (h2c, "prior knowledge"), for a
    /// server or gateway that speaks it. Over `https://` HTTP/2 is negotiated anyway (ALPN).
    /// On HTTP/2 a request given up (a newer segment) resets its stream and the connection
    /// stays; on HTTP/1.1 the connection is closed and the next request opens a new one.
    pub http2_prior_knowledge: bool,
    /// Certificates (PEM, one or more) trusted beside the system's roots, for an `https://`
    /// provider whose certificate an internal CA signed, or that signed its own (a vLLM or
    /// Ollama behind a company's TLS proxy). Checked when the client is built.
    pub ca_certs_pem: Option<Vec<u8>>,
}

impl OpenAiConfig {
    /// Defaults: no key, no extra headers, 30 s per attempt, 10 s to the first byte, the
    /// default retry policy and breaker, usage in streams.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider_name: "openai".to_owned(),
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            headers: Vec::new(),
            azure: None,
            request_timeout: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            stream_usage: true,
            http2_prior_knowledge: false,
            ca_certs_pem: None,
        }
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("provider_name", &self.provider_name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("azure", &self.azure)
            .field("request_timeout", &self.request_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("stream_usage", &self.stream_usage)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field(
                "ca_certs_pem",
                &self
                    .ca_certs_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes", pem.len())),
            )
            .finish()
    }
}

/// A [`Provider`] speaking the OpenAI Chat Completions protocol.
pub struct OpenAiCompatible {
    name: String,
    model: String,
    url: reqwest::Url,
    /// Auth and extra headers; the auth value is marked sensitive.
    headers: HeaderMap,
    http: reqwest::Client,
    request_timeout: Duration,
    first_byte_timeout: Duration,
    retry: RetryPolicy,
    stream_usage: bool,
    breaker: CircuitBreaker,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("url", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("request_timeout", &self.request_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("retry", &self.retry)
            .field("circuit", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed.
enum Failure {
    Status {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    Timeout(&'static str),
    Transport(reqwest::Error),
    Protocol(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Timeout(_) | Self::Transport(_) => true,
            Self::Protocol(_) => false,
        }
    }

    fn into_error(self, attempts: u32) -> LlmError {
        match self {
            Self::Status { status, body, .. } => LlmError::Status {
                status,
                body,
                attempts,
            },
            Self::Timeout(what) => LlmError::Timeout { what, attempts },
            Self::Transport(source) => LlmError::Transport { source, attempts },
            Self::Protocol(msg) => LlmError::Protocol(msg),
        }
    }
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout("the HTTP client timed out")
        } else {
            Self::Transport(e)
        }
    }
}

/// What one successful attempt produced.
struct Output {
    text: String,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<ResponseChoice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ResponseChoice {
    message: ResponseMessage,
}

#[derive(Deserialize)]
struct ResponseMessage {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<StreamChoice>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct StreamChoice {
    #[serde(default)]
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
}

impl OpenAiCompatible {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let base = config.base_url.trim_end_matches('/');
        let mut url = reqwest::Url::parse(&format!("{base}/chat/completions"))
            .map_err(|e| LlmError::Config(format!("base_url {:?}: {e}", config.base_url)))?;
        if let Some(azure) = &config.azure {
            url.query_pairs_mut()
                .append_pair("api-version", &azure.api_version);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| LlmError::Config(format!("header name {name:?}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| LlmError::Config(format!("value of header {name}: {e}")))?;
            headers.insert(name, value);
        }
        if let Some(key) = &config.api_key {
            let (name, value) = match config.azure {
                Some(_) => (
                    HeaderName::from_static("api-key"),
                    key.expose_secret().to_owned(),
                ),
                None => (AUTHORIZATION, format!("Bearer {}", key.expose_secret())),
            };
            let mut value = HeaderValue::try_from(value)
                .map_err(|_| LlmError::Config("the API key is not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut http = reqwest::Client::builder();
        if config.http2_prior_knowledge {
            http = http.http2_prior_knowledge();
        }
        if let Some(pem) = &config.ca_certs_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| LlmError::Config(format!("CA certificates: {e}")))?;
            if certs.is_empty() {
                return Err(LlmError::Config(
                    "CA certificates: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
                        .into(),
                ));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| LlmError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            name: config.provider_name,
            model: config.model,
            url,
            headers,
            http,
            request_timeout: config.request_timeout,
            first_byte_timeout: config.first_byte_timeout,
            retry: config.retry,
            stream_usage: config.stream_usage,
            breaker: CircuitBreaker::new(config.breaker),
        })
    }

    /// The circuit breaker, for callers that want its state.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Whether calls currently fail at once with [`LlmError::CircuitOpen`]: fall back.
    pub fn is_open(&self) -> bool {
        self.breaker.is_open()
    }

    pub fn circuit_state(&self) -> CircuitState {
        self.breaker.state()
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({ "model": self.model, "messages": req.messages, "stream": stream });
        if let Some(max) = req.max_tokens {
            body["max_tokens"] = json!(max);
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(schema) = &req.json_schema {
            body["response_format"] = json!({ "type": "json_schema", "json_schema": schema });
        }
        if stream && self.stream_usage {
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    }

    /// Breaker, retries, then the structured-output check.
    async fn call<'f>(
        &self,
        req: &ChatRequest,
        mut on_delta: Option<&mut (dyn FnMut(&str) + Send + 'f)>,
    ) -> Result<Completion, LlmError> {
        if let Err(retry_in) = self.breaker.acquire() {
            return Err(LlmError::CircuitOpen { retry_in });
        }
        let stream = on_delta.is_some();
        let body = self.body(req, stream);
        let start = Instant::now();
        let mut first_token = None;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let mut emitted = false;
            let attempt = self.attempt(
                &body,
                start,
                on_delta.as_deref_mut(),
                &mut first_token,
                &mut emitted,
            );
            let failure = match tokio::time::timeout(self.request_timeout, attempt).await {
                Ok(Ok(output)) => break Ok(output),
                Ok(Err(failure)) => failure,
                Err(_) => Failure::Timeout("the attempt exceeded the request timeout"),
            };
            if emitted || !failure.retryable() || attempts > self.retry.max_retries {
                break Err(failure.into_error(attempts));
            }
            let retry_after = match &failure {
                Failure::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let delay = self.retry.delay(attempts - 1, retry_after);
            tracing::warn!(
                provider = %self.name,
                attempt = attempts,
                status = match &failure { Failure::Status { status, .. } => Some(*status), _ => None },
                delay_ms = delay.as_millis() as u64,
                "LLM request failed, retrying"
            );
            tokio::time::sleep(delay).await;
        };
        match &result {
            Ok(_) => self.breaker.on_success(),
            Err(e) if e.is_remote_failure() => self.breaker.on_failure(),
            Err(_) => self.breaker.on_neutral(),
        }
        let output = result?;
        let completion = Completion {
            text: output.text,
            prompt_tokens: output.prompt_tokens,
            completion_tokens: output.completion_tokens,
            latency: start.elapsed(),
            first_token,
            attempts,
        };
        if req.json_schema.is_some() {
            completion.parse_json::<Value>()?;
        }
        Ok(completion)
    }

    async fn attempt<'f>(
        &self,
        body: &Value,
        start: Instant,
        on_delta: Option<&mut (dyn FnMut(&str) + Send + 'f)>,
        first_token: &mut Option<Duration>,
        emitted: &mut bool,
    ) -> Result<Output, Failure> {
        let first_byte_deadline = tokio::time::Instant::now() + self.first_byte_timeout;
        let send = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .json(body)
            .send();
        let resp = tokio::time::timeout_at(first_byte_deadline, send)
            .await
            .map_err(|_| Failure::Timeout("no response within the first-byte timeout"))??;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let mut body = resp.text().await.unwrap_or_default();
            if let Some((i, _)) = body.char_indices().nth(MAX_ERROR_BODY) {
                body.truncate(i);
            }
            return Err(Failure::Status {
                status: status.as_u16(),
                body,
                retry_after,
            });
        }
        let Some(on_delta) = on_delta else {
            let bytes = resp.bytes().await?;
            let parsed: ChatResponse = serde_json::from_slice(&bytes)
                .map_err(|e| Failure::Protocol(format!("response body: {e}")))?;
            let message = &parsed
                .choices
                .first()
                .ok_or_else(|| Failure::Protocol("response has no choices".into()))?
                .message;
            let text = match (&message.content, &message.refusal) {
                (Some(text), _) => text.clone(),
                (None, Some(refusal)) => {
                    return Err(Failure::Protocol(format!("the model refused: {refusal}")));
                }
                (None, None) => return Err(Failure::Protocol("response has no content".into())),
            };
            return Ok(Output {
                text,
                prompt_tokens: parsed.usage.as_ref().and_then(|u| u.prompt_tokens),
                completion_tokens: parsed.usage.as_ref().and_then(|u| u.completion_tokens),
            });
        };

        let mut chunks = resp.bytes_stream();
        let mut parser = SseParser::default();
        let mut out = Output {
            text: String::new(),
            prompt_tokens: None,
            completion_tokens: None,
        };
        let mut finished = false;
        let mut first = true;
        loop {
            let next = if first {
                first = false;
                tokio::time::timeout_at(first_byte_deadline, chunks.next())
                    .await
                    .map_err(|_| Failure::Timeout("no body within the first-byte timeout"))?
            } else {
                chunks.next().await
            };
            let ended = next.is_none();
            let events = match next {
                Some(chunk) => parser.push(&chunk?),
                None => parser.finish().map(|e| e.into_iter().collect()),
            }
            .map_err(|e| Failure::Protocol(format!("stream is not UTF-8: {e}")))?;
            for data in events {
                if data.trim() == "[DONE]" {
                    return Ok(out);
                }
                let chunk: StreamChunk = serde_json::from_str(&data)
                    .map_err(|e| Failure::Protocol(format!("stream chunk: {e}")))?;
                if let Some(error) = chunk.error {
                    return Err(Failure::Protocol(format!("error in stream: {error}")));
                }
                if let Some(usage) = chunk.usage {
                    out.prompt_tokens = usage.prompt_tokens.or(out.prompt_tokens);
                    out.completion_tokens = usage.completion_tokens.or(out.completion_tokens);
                }
                let Some(choice) = chunk.choices.into_iter().next() else {
                    continue;
                };
                finished |= choice.finish_reason.is_some();
                let Some(delta) = choice.delta else { continue };
                if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
                    return Err(Failure::Protocol(format!("the model refused: {refusal}")));
                }
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    first_token.get_or_insert_with(|| start.elapsed());
                    *emitted = true;
                    on_delta(&text);
                    out.text.push_str(&text);
                }
            }
            if ended {
                // Lenient: a body that ends cleanly after a `finish_reason` is complete.
                return if finished {
                    Ok(out)
                } else {
                    Err(Failure::Protocol("the stream ended before [DONE]".into()))
                };
            }
        }
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiCompatible {
    async fn complete(&self, req: ChatRequest) -> Result<Completion, LlmError> {
        self.call(&req, None).await
    }

    async fn stream(
        &self,
        req: ChatRequest,
        on_delta: &mut (dyn for<'s> FnMut(&'s str) + Send),
    ) -> Result<Completion, LlmError> {
        self.call(&req, Some(on_delta)).await
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn model(&self) -> &str {
        &self.model
    }
}
