//! The HTTP layer's one error type. A client error says exactly what was wrong, in one JSON
//! shape (`{"error": {"code", "message", "field"?}}`); an internal error is logged with the
//! request's trace id and answered as a bare 500 that leaks nothing.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::DomainError;
use serde::Serialize;
use store::StoreError;
use utoipa::ToSchema;

use crate::pipeline::PipelineError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// For ruleset errors: where in the YAML, and which rule.
    pub location: Option<Box<Location>>,
}

/// A place in an uploaded document.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// The body of every 4xx and 5xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema, Debug, Clone)]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `invalid_field`, `not_found`, `conflict`.
    pub code: &'static str,
    /// What was wrong, for a person.
    pub message: String,
    /// The offending field as a JSON path (`segments[2].text`), when one field is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            location: None,
        }
    }

    /// 422: one field has a bad value.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        let reason = reason.into();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: format!("{field}: {reason}"),
            field: Some(field),
            location: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details under this request's trace id",
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message.clone(),
            field: self.field.clone(),
            location: self.location.as_deref().cloned(),
        }
    }

    /// Prefixes the field path, e.g. `text` → `segments[2].text`.
    pub fn under(mut self, prefix: &str) -> Self {
        if let Some(f) = self.field.take() {
            let path = if f.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{f}")
            };
            self.message = match self.message.split_once(": ") {
                Some((_, reason)) => format!("{path}: {reason}"),
                None => self.message,
            };
            self.field = Some(path);
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.detail(),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let msg = e.to_string();
        match e {
            DomainError::Invalid { field, reason } => ApiError::field(field, reason),
            DomainError::CallNotStarted => ApiError::not_found("call"),
            DomainError::CallAlreadyStarted => {
                ApiError::new(StatusCode::CONFLICT, "call_already_started", msg)
                    .with_field("call_id")
            }
            DomainError::CallEnded => {
                ApiError::new(StatusCode::CONFLICT, "call_ended", msg).with_field("call_id")
            }
            DomainError::CallNotEnded => {
                ApiError::new(StatusCode::CONFLICT, "call_not_ended", msg).with_field("call_id")
            }
            DomainError::DuplicateSegment(_) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_segment", msg)
                    .with_field("segment_id")
            }
            DomainError::UnknownAlert(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", msg).with_field("alert_id")
            }
            DomainError::UnknownSuggestion(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", msg).with_field("suggestion_id")
            }
            DomainError::FeedbackAlreadyGiven(_) => {
                ApiError::new(StatusCode::CONFLICT, "feedback_already_given", msg)
                    .with_field("suggestion_id")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::PayloadTooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            StoreError::AlreadyExists { .. } => ApiError::conflict(e.to_string()),
            StoreError::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            StoreError::Closed => ApiError::unavailable("the server is shutting down"),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Domain(d) => d.into(),
            PipelineError::Store(s) => s.into(),
            PipelineError::NotFound => ApiError::not_found("call"),
            PipelineError::Segment { index, error } => {
                ApiError::from(*error).under(&format!("segments[{index}]"))
            }
            PipelineError::Rules(m) => {
                tracing::error!(error = %m, "ruleset unavailable");
                ApiError::internal()
            }
            PipelineError::Api(a) => *a,
        }
    }
}
