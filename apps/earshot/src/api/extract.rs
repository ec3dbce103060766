//! Request extractors that turn bad input into [`ApiError`]s naming the field.
//!
//! axum's own `Json` rejects with a plain-text body and, for a type error, a message that does
//! not say where; here the body is parsed with `serde_path_to_error`, so an unknown field or a
//! wrong type answers `{"error": {"field": "segments[1].speaker", …}}`.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body, parsed strictly (request types deny unknown fields).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The body as bytes, for handlers that parse it themselves. axum's own `Bytes` refuses a body
/// over the server's limit with a plain-text 413; this answers our JSON error.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                let status = e.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        status,
                        "too_large",
                        "the body is larger than the server accepts",
                    )
                } else {
                    ApiError::new(
                        status,
                        "unreadable_body",
                        format!("the body could not be read: {}", e.body_text()),
                    )
                }
            })
    }
}

/// Refuses a body not declared as JSON.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let mime = ct.split(';').next().unwrap_or("").trim();
            mime == "application/json" || mime.ends_with("+json")
        });
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with Content-Type: application/json",
        ))
    }
}

/// Parses `bytes` as a `T`, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = inner.to_string();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {reason}"),
            )
        } else {
            // serde_path_to_error's path already ends at an unknown field; a missing field is
            // reported at its parent, with the name only in the message.
            let reason = without_values(&strip_position(&reason));
            let field = match field_in_message(&reason) {
                Some(f) if reason.starts_with("missing field") => {
                    if path == "." {
                        f
                    } else {
                        format!("{path}.{f}")
                    }
                }
                // The body itself is of the wrong type (`null`, a list, a number): no field is
                // to blame, and serde's "expected struct …" names a Rust type, not ours. (An
                // object can fail at "." too: inside an internally tagged enum, such as a
                // WebSocket message, serde cannot say which field; its reason still can.)
                _ if path == "." && bytes.trim_ascii_start().first() != Some(&b'{') => {
                    return ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_body",
                        "the body must be a JSON object",
                    );
                }
                _ => path,
            };
            ApiError::field(field, reason)
        }
    })
}

/// serde's messages end with " at line L column C": the field path says more.
fn strip_position(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m.to_owned(),
    }
}

/// serde quotes the offending value in type errors ("invalid type: integer `4111…`,
/// expected a string"): a client may have put PII there, so it is not echoed. Field names
/// (quoted the same way in "unknown field `x`") are kept.
fn without_values(m: &str) -> String {
    // "invalid length N, expected …" holds a count, not a value.
    let Some((prefix, rest)) = ["invalid type: ", "invalid value: "]
        .into_iter()
        .find_map(|p| m.strip_prefix(p).map(|rest| (p, rest)))
    else {
        return m.to_owned();
    };
    // `KIND `VALUE`, expected WHAT`, or `string "VALUE", …`: keep the kind and what was
    // expected. The value may itself hold quotes, backticks or ", expected " (fuzzing found
    // that toggling on quotes let the rest of such a value through), so the last one splits.
    let (unexpected, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
    let kind = unexpected.split(['`', '"']).next().unwrap_or("").trim_end();
    if expected.is_empty() {
        format!("{prefix}{kind}")
    } else {
        format!("{prefix}{kind}, expected {expected}")
    }
}

/// The quoted field name in "unknown field `x`, expected …" / "missing field `x`".
fn field_in_message(m: &str) -> Option<String> {
    let start = m.find('`')? + 1;
    let len = m[start..].find('`')?;
    Some(m[start..start + len].to_owned())
}

/// Query parameters, parsed strictly with the parameter named on error. Query types hold
/// strings (parsed by the handler with [`param`], which names the parameter); this extractor
/// refuses unknown parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_deserializer(query);
        de.map(ApiQuery)
    }
}

fn serde_urlencoded_deserializer<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    // axum's Query uses serde_urlencoded; go through it to get its parsing, then name the
    // parameter from its message.
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::bad_request("the query string is malformed"))?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        let reason = e.body_text();
        let reason = reason
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&reason)
            .to_owned();
        match field_in_message(&reason) {
            Some(f) => ApiError::field(f, reason),
            None => ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", reason),
        }
    })
}

/// Parses one query parameter, naming it on error.
pub fn param<T, E: std::fmt::Display>(
    name: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => parse(v)
            .map(Some)
            .map_err(|e| ApiError::field(name, format!("{v:?} is not valid: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(tag = "type", rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Tagged {
        Subscribe { call_id: String },
    }

    #[test]
    fn a_type_error_inside_a_tagged_object_keeps_its_reason() {
        let e = parse_json::<Tagged>(br#"{"type": "subscribe", "call_id": 5}"#).unwrap_err();
        assert_eq!(e.code, "invalid_field");
        assert!(e.message.contains("invalid type"), "{}", e.message);
        // Not an object at all: the body is to blame.
        let e = parse_json::<Tagged>(b" 5").unwrap_err();
        assert_eq!(e.code, "invalid_body");
        assert_eq!(e.message, "the body must be a JSON object");
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Seg {
        text: String,
        start_ms: u64,
    }

    #[test]
    fn refusals_name_the_field_and_never_echo_the_value() {
        let cases = [
            (
                r#"{"text": 4111111111111111, "start_ms": 1}"#,
                "text",
                "4111",
            ),
            (
                r#"{"text": "x", "start_ms": "john.smith@example.com"}"#,
                "start_ms",
                "john",
            ),
            (
                r#"{"text": "x", "start_ms": -4155550132}"#,
                "start_ms",
                "4155",
            ),
        ];
        for (body, field, secret) in cases {
            let e = parse_json::<Seg>(body.as_bytes()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{body}");
            assert!(!e.message.contains(secret), "{}", e.message);
            assert!(e.message.contains("invalid"), "{}", e.message);
        }
        let e = parse_json::<Seg>(br#"{"text": "x", "start_ms": 1, "colour": 2}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("colour"));
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
        let e = parse_json::<Seg>(br#"{"start_ms": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("text"));
        let e = parse_json::<Seg>(br#"{"text": "#).unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    /// Found by `cargo fuzz run ingest_body` (docs/fuzzing.md): a backtick or quote inside
    /// the value turned the quote-stripping inside out, so the message lost its "expected …"
    /// and, with the backtick mid-value, showed the rest of the value.
    #[test]
    fn fuzz_regression_quotes_inside_a_value_are_not_echoed() {
        let fuzzed = br#"{"confidence":"srees airs`","start_msnsegmentce":5.5}"#;
        let e = crate::api::ingest::parse_body(fuzzed).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("confidence"));
        assert_eq!(e.message, "confidence: invalid type: string, expected f32");
        for body in [
            r#"{"text": "x", "start_ms": "4111`1111 1111"}"#,
            r#"{"text": "x", "start_ms": "4111\"1111 1111"}"#,
            r#"{"text": "x", "start_ms": "4111, expected 1111 1111"}"#,
        ] {
            let e = parse_json::<Seg>(body.as_bytes()).unwrap_err();
            assert_eq!(
                e.message, "start_ms: invalid type: string, expected u64",
                "{body}"
            );
        }
    }
}
