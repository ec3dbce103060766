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
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the body could not be read: {e}"),
                )
            })?;
        parse_json(&bytes).map(ApiJson)
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
            let reason = strip_position(&reason);
            let field = match field_in_message(&reason) {
                Some(f) if reason.starts_with("missing field") => {
                    if path == "." {
                        f
                    } else {
                        format!("{path}.{f}")
                    }
                }
                _ if path == "." => String::new(),
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
