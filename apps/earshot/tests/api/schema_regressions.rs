//! What schemathesis (scripts/schemathesis.sh, docs/schemathesis.md) found, each pinned by
//! the request it sent: the server's answer, and that /openapi.json documents that answer.
//! A finding was either a handler that let bad input through or refused good input, or a
//! document that did not say what the server (rightly) does.

use std::sync::{Arc, LazyLock};

use serde_json::{Value, json};
use store::Store;

use earshot::server::ServerConfig;

use crate::helpers::{TestApp, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(schemathesis_findings);

/// One request as schemathesis sent it, and what must come back.
struct Case {
    what: &'static str,
    method: &'static str,
    /// `{call}` is replaced with a live call's id, `{ended}` with an ended call's.
    path: &'static str,
    /// The operation in the document.
    operation: &'static str,
    content_type: Option<&'static str>,
    body: Option<&'static str>,
    with_token: bool,
    status: u16,
    code: &'static str,
    /// The field the error names (`None`: it must name none).
    field: Option<&'static str>,
}

impl Case {
    const fn new(
        what: &'static str,
        method: &'static str,
        path: &'static str,
        operation: &'static str,
    ) -> Self {
        Case {
            what,
            method,
            path,
            operation,
            content_type: None,
            body: None,
            with_token: true,
            status: 0,
            code: "",
            field: None,
        }
    }

    const fn body(mut self, content_type: &'static str, body: &'static str) -> Self {
        self.content_type = Some(content_type);
        self.body = Some(body);
        self
    }

    const fn without_token(mut self) -> Self {
        self.with_token = false;
        self
    }

    const fn answers(
        mut self,
        status: u16,
        code: &'static str,
        field: Option<&'static str>,
    ) -> Self {
        self.status = status;
        self.code = code;
        self.field = field;
        self
    }
}

/// Sends the request exactly (no JSON re-encoding); answers (status, content type, body).
async fn send(app: &TestApp, case: &Case, path: &str) -> (u16, String, Value) {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut req = app.http.request(method, app.url(path));
    if case.with_token {
        req = req.bearer_auth(&app.admin);
    }
    if let Some(ct) = case.content_type {
        req = req.header("content-type", ct);
    }
    if let Some(b) = case.body {
        req = req.body(b.to_owned());
    }
    let r = req.send().await.expect("the request is answered");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{}: not JSON: {text}", case.what))
    };
    (status, content_type, body)
}

/// The statuses the document declares for an operation.
fn documented(doc: &Value, method: &str, operation: &str) -> Vec<String> {
    doc["paths"][operation][method.to_lowercase()]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("no operation {method} {operation} in the document"))
        .keys()
        .cloned()
        .collect()
}

/// Every `$ref` in the document, with where it is.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push((at.to_owned(), x.as_str().unwrap_or_default().to_owned()));
                } else {
                    refs(x, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// 500 kB, over the 400 kB body limit of the test's server.
static BIG: LazyLock<String> = LazyLock::new(|| "a".repeat(500_000));

fn cases() -> Vec<Case> {
    const CALL: &str = "/api/v1/calls/{call_id}";
    vec![
        // The document said nothing of 401, which every operation answers without a token.
        Case::new(
            "no token",
            "DELETE",
            "/api/v1/tokens/0",
            "/api/v1/tokens/{token_id}",
        )
        .without_token()
        .answers(401, "unauthorized", None),
        Case::new("no token", "GET", "/api/v1/rulesets", "/api/v1/rulesets")
            .without_token()
            .answers(401, "unauthorized", None),
        // Nor of 422 for an id that is not one.
        Case::new(
            "bad token id",
            "DELETE",
            "/api/v1/tokens/0",
            "/api/v1/tokens/{token_id}",
        )
        .answers(422, "invalid_field", Some("token_id")),
        Case::new("bad call id", "GET", "/api/v1/calls/0", CALL).answers(
            422,
            "invalid_field",
            Some("call_id"),
        ),
        Case::new(
            "bad call id",
            "GET",
            "/api/v1/calls/0/summary",
            "/api/v1/calls/{call_id}/summary",
        )
        .answers(422, "invalid_field", Some("call_id")),
        Case::new(
            "bad call id",
            "POST",
            "/api/v1/calls/0/end",
            "/api/v1/calls/{call_id}/end",
        )
        .answers(422, "invalid_field", Some("call_id")),
        Case::new(
            "bad call id",
            "POST",
            "/api/v1/calls/0/alerts/0/ack",
            "/api/v1/calls/{call_id}/alerts/{alert_id}/ack",
        )
        .answers(422, "invalid_field", Some("call_id")),
        Case::new(
            "bad call id",
            "PUT",
            "/api/v1/calls/0/disposition",
            "/api/v1/calls/{call_id}/disposition",
        )
        .body("application/json", r#"{"disposition": ""}"#)
        .answers(422, "invalid_field", Some("call_id")),
        Case::new(
            "bad call id",
            "POST",
            "/api/v1/calls/0/suggestions/0/feedback",
            "/api/v1/calls/{call_id}/suggestions/{suggestion_id}/feedback",
        )
        .body("application/json", r#"{"verdict": ""}"#)
        .answers(422, "invalid_field", Some("call_id")),
        Case::new(
            "bad ruleset id",
            "GET",
            "/api/v1/rulesets/%10%5E%C2%82q%5E%C3%95-",
            "/api/v1/rulesets/{ruleset_id}",
        )
        .answers(422, "invalid_field", Some("ruleset_id")),
        Case::new(
            "bad ruleset id",
            "POST",
            "/api/v1/rulesets/Y%F3%BE%A3%99%C2%B8%C3%B6%03%C3%B5/versions/1/activate",
            "/api/v1/rulesets/{ruleset_id}/versions/{version}/activate",
        )
        .answers(422, "invalid_field", Some("ruleset_id")),
        Case::new(
            "unknown query parameter",
            "GET",
            "/api/v1/calls/{call}/events?limit=&x-schemathesis-unknown-property=42",
            "/api/v1/calls/{call_id}/events",
        )
        .answers(
            422,
            "invalid_field",
            Some("x-schemathesis-unknown-property"),
        ),
        // Nor of 400 (malformed JSON) and 415 (not JSON) where a JSON body is read.
        Case::new("no content type", "POST", "/api/v1/calls", "/api/v1/calls").answers(
            415,
            "unsupported_media_type",
            None,
        ),
        Case::new("a NUL for a body", "POST", "/api/v1/calls", "/api/v1/calls")
            .body("application/json", "\0")
            .answers(400, "malformed_json", None),
        Case::new(
            "no content type",
            "POST",
            "/api/v1/calls/{call}/segments",
            "/api/v1/calls/{call_id}/segments",
        )
        .answers(415, "unsupported_media_type", None),
        Case::new(
            "a NUL for a body",
            "POST",
            "/api/v1/rulesets",
            "/api/v1/rulesets",
        )
        .body("application/json", "\0")
        .answers(400, "malformed_json", None),
        Case::new(
            "no content type",
            "POST",
            "/api/v1/tokens",
            "/api/v1/tokens",
        )
        .answers(415, "unsupported_media_type", None),
        Case::new(
            "a NUL for a body",
            "POST",
            "/api/v1/tokens",
            "/api/v1/tokens",
        )
        .body("application/json", "\0")
        .answers(400, "malformed_json", None),
        Case::new(
            "no content type",
            "PUT",
            "/api/v1/calls/{ended}/disposition",
            "/api/v1/calls/{call_id}/disposition",
        )
        .answers(415, "unsupported_media_type", None),
        // A seq past what the stores hold (the document says int64) was taken as "the end".
        Case::new(
            "after past i64::MAX",
            "GET",
            "/api/v1/calls/{call}/events?after=9223372036854775808",
            "/api/v1/calls/{call_id}/events",
        )
        .answers(422, "invalid_field", Some("after")),
        Case::new(
            "as_of past i64::MAX",
            "GET",
            "/api/v1/calls/{call}?as_of=9223372036854775808",
            CALL,
        )
        .answers(422, "invalid_field", Some("as_of")),
        // The body of POST …/end is optional and may be `null`; any other non-object is
        // refused without blaming a field "" or naming a Rust type.
        Case::new(
            "a number for a body",
            "POST",
            "/api/v1/calls/{call}/end",
            "/api/v1/calls/{call_id}/end",
        )
        .body("application/json", "1")
        .answers(422, "invalid_body", None),
        Case::new(
            "null for a body",
            "POST",
            "/api/v1/calls/{call}/end",
            "/api/v1/calls/{call_id}/end",
        )
        .body("application/json", "null")
        .answers(200, "", None),
        // Over the body limit, the handlers that read raw bytes answered axum's plain text.
        Case::new(
            "a body over the limit",
            "POST",
            "/api/v1/calls/{call}/segments",
            "/api/v1/calls/{call_id}/segments",
        )
        .body("application/json", &BIG)
        .answers(413, "too_large", None),
        Case::new(
            "a body over the limit",
            "POST",
            "/api/v1/calls/{call}/end",
            "/api/v1/calls/{call_id}/end",
        )
        .body("application/json", &BIG)
        .answers(413, "too_large", None),
        Case::new(
            "a body over the limit",
            "POST",
            "/api/v1/rulesets",
            "/api/v1/rulesets",
        )
        .body("application/yaml", &BIG)
        .answers(413, "too_large", None),
    ]
}

async fn schemathesis_findings(store: Arc<dyn Store>) {
    // A small segment limit makes the server's body limit (segment limit × 4 bytes × the
    // largest batch) small enough to send a body over it: 400 kB.
    let config = ServerConfig {
        max_segment_chars: 200,
        ..crate::helpers::config()
    };
    let app = spawn_app_with(store, config).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Every $ref resolves: schemas named only by query parameters are not collected by
    // utoipa, and schemathesis skips a parameter whose schema it cannot find.
    let mut found = Vec::new();
    refs(&doc, "#", &mut found);
    assert!(found.len() > 20, "the document uses $refs: {}", found.len());
    for (at, target) in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{at}: unexpected $ref {target}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{at}: $ref {target} points to nothing"
        );
    }

    let ended = app.start_call(&app.admin).await;
    let (status, body) = app
        .post(&format!("/api/v1/calls/{ended}/end"), &app.admin, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    for case in cases() {
        // Each case that ends a call gets a live one of its own.
        let live = app.start_call(&app.admin).await;
        let path = case
            .path
            .replace("{call}", &live)
            .replace("{ended}", &ended);
        let (status, content_type, body) = send(&app, &case, &path).await;
        let what = format!("{}: {} {path}", case.what, case.method);
        assert_eq!(status, case.status, "{what}: {body}");
        assert!(
            documented(&doc, case.method, case.operation).contains(&status.to_string()),
            "{what}: {status} is not in the document"
        );
        if status >= 400 {
            assert_eq!(content_type, "application/json", "{what}");
            assert_eq!(body["error"]["code"], case.code, "{what}: {body}");
            assert_eq!(
                body["error"]["field"].as_str(),
                case.field,
                "{what}: {body}"
            );
            assert!(
                body["error"]["message"].as_str().unwrap().len() > 5,
                "{what}: a reason: {body}"
            );
        }
    }

    // A note over 2000 characters was let through when redaction shortened it (2001 digits
    // become one placeholder): the limit is on what the client sent.
    let note = "0".repeat(2001);
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/calls/{ended}/disposition"),
            &app.admin,
            Some(json!({"disposition": "lead", "note": note})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "note", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2000 characters"),
        "{body}"
    );
    let (_, state) = app.get(&format!("/api/v1/calls/{ended}"), &app.admin).await;
    let top = state["top_seq"].as_u64().unwrap();
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/calls/{ended}/disposition"),
            &app.admin,
            Some(json!({"disposition": "lead", "note": "0".repeat(2000)})),
        )
        .await;
    assert_eq!(status, 200, "2000 characters are accepted: {body}");
    assert_eq!(body["seq"], top + 1, "one event: {body}");

    // A call with a person's disposition and no summary answers `"summary": null`, which the
    // document called an object.
    let (status, body) = app
        .get(&format!("/api/v1/calls/{ended}/summary"), &app.admin)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["summary"].is_null(), "{body}");
    assert_eq!(body["disposition"]["disposition"], "lead", "{body}");
    let summary = &doc["components"]["schemas"]["SummaryResponse"]["properties"];
    for field in ["summary", "disposition"] {
        let types = &summary[field]["type"];
        assert!(
            types.as_array().is_some_and(|t| t.contains(&json!("null"))),
            "SummaryResponse.{field} must allow null: {types}"
        );
    }
    app.stop().await.unwrap();
}
