//! The REST calls the tool makes around a run: the ruleset, the tokens, starting calls,
//! reading a call's top seq and ending it. None of them is timed.

use anyhow::{Context, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

/// The ruleset the tool uploads.
pub const RULESET_ID: &str = "loadtest";
/// The word every segment carries; the ruleset's only rule matches it.
pub const MARKER: &str = "zqxjv";

/// A client of the server's REST API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The WebSocket URL for a token.
    pub fn ws_url(&self, token: &str) -> String {
        let base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.base.clone()
        };
        format!("{base}/api/v1/ws?access_token={token}")
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("{what}: request failed"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{what}: reading the answer"))?;
        if !status.is_success() {
            bail!("{what}: HTTP {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: the answer is not JSON"))
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {token}"));
        self.send(req, &format!("GET {path}")).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(body);
        self.send(req, &format!("POST {path}")).await
    }

    /// Uploads the load-test ruleset at the next free version and returns that version.
    pub async fn upload_ruleset(&self, admin: &str) -> anyhow::Result<u32> {
        let list = self.get("/api/v1/rulesets", admin).await?;
        let latest = list["versions"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .filter(|v| v["id"] == RULESET_ID)
                    .filter_map(|v| v["version"].as_u64())
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let version = u32::try_from(latest + 1).context("ruleset version overflow")?;
        let req = self
            .http
            .post(format!("{}/api/v1/rulesets", self.base))
            .header(AUTHORIZATION, format!("Bearer {admin}"))
            .header(CONTENT_TYPE, "application/yaml")
            .body(ruleset_yaml(version));
        self.send(req, "POST /api/v1/rulesets").await?;
        Ok(version)
    }

    /// Makes a token of `role` and returns it.
    pub async fn token(&self, admin: &str, role: &str, name: &str) -> anyhow::Result<String> {
        let answer = self
            .post(
                "/api/v1/tokens",
                admin,
                &json!({ "role": role, "name": name }),
            )
            .await?;
        answer["token"]
            .as_str()
            .map(str::to_owned)
            .context("POST /api/v1/tokens: no token in the answer")
    }

    /// Starts a call on the load-test ruleset and returns its id.
    pub async fn start_call(
        &self,
        token: &str,
        agent: &str,
        version: u32,
    ) -> anyhow::Result<String> {
        let answer = self
            .post(
                "/api/v1/calls",
                token,
                &json!({
                    "agent_id": agent,
                    "source": "replay",
                    "ruleset": { "id": RULESET_ID, "version": version },
                }),
            )
            .await?;
        answer["call_id"]
            .as_str()
            .map(str::to_owned)
            .context("POST /api/v1/calls: no call_id in the answer")
    }

    /// The call's latest seq, read from its log.
    pub async fn top_seq(&self, token: &str, call: &str) -> anyhow::Result<u64> {
        let answer = self.get(&format!("/api/v1/calls/{call}"), token).await?;
        answer["top_seq"]
            .as_u64()
            .context("GET /api/v1/calls/{id}: no top_seq in the answer")
    }

    pub async fn end_call(&self, token: &str, call: &str) -> anyhow::Result<()> {
        self.post(&format!("/api/v1/calls/{call}/end"), token, &json!({}))
            .await
            .map(|_| ())
    }
}

/// One prohibited rule on the marker, for any speaker, with no cooldown and no cap on fires:
/// every segment that carries the marker raises exactly one alert.
pub fn ruleset_yaml(version: u32) -> String {
    format!(
        "id: {RULESET_ID}\n\
         version: {version}\n\
         name: Load test (earshot-load)\n\
         description: One rule that fires on every segment carrying the marker word.\n\
         rules:\n  \
           - id: loadtest-marker\n    \
             kind: prohibited\n    \
             severity: info\n    \
             speaker: any\n    \
             message: The load-test marker was said.\n    \
             match:\n      \
               phrases:\n        \
                 - {MARKER}\n"
    )
}

/// The text of every segment: ordinary words around the marker (no digits, so redaction
/// leaves it alone).
pub fn segment_text() -> String {
    format!("thanks for holding I can book the visit for you {MARKER} is the code word today")
}
