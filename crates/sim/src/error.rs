//! Error types of the simulator, each rendering Salesforce's own wire shape.
//!
//! REST errors are a JSON array `[{"message","errorCode","fields"}]`; OAuth errors a JSON object
//! `{"error","error_description"}`; inside collection results the same record error uses `statusCode`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One record-level failure (validation, lookup), as Salesforce reports it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RecordError {
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn new(code: &'static str, message: impl Into<String>, fields: Vec<String>) -> Self {
        RecordError {
            code,
            message: message.into(),
            fields,
        }
    }

    pub fn not_found() -> Self {
        Self::new("NOT_FOUND", "The requested resource does not exist", vec![])
    }

    pub fn deleted() -> Self {
        Self::new("ENTITY_IS_DELETED", "entity is deleted", vec![])
    }

    pub fn malformed_id(id: &str) -> Self {
        Self::new(
            "MALFORMED_ID",
            format!("Invalid id: {id}"),
            vec!["Id".into()],
        )
    }

    pub fn invalid_type(object: &str) -> Self {
        Self::new(
            "INVALID_TYPE",
            format!("sObject type '{object}' is not supported."),
            vec![],
        )
    }

    pub fn json_parser(message: impl Into<String>) -> Self {
        Self::new("JSON_PARSER_ERROR", message, vec![])
    }

    /// The HTTP status a single-record REST call answers this error with.
    pub fn status(&self) -> StatusCode {
        match self.code {
            "NOT_FOUND" => StatusCode::NOT_FOUND,
            "REQUEST_LIMIT_EXCEEDED" => StatusCode::FORBIDDEN,
            "SERVER_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            "INVALID_SESSION_ID" | "INVALID_AUTH_HEADER" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The REST envelope element (`errorCode`).
    pub fn rest_json(&self) -> Value {
        json!({"message": self.message, "errorCode": self.code, "fields": self.fields})
    }

    /// The collections result element (`statusCode`).
    pub fn collection_json(&self) -> Value {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }
}

/// A REST failure: status plus the array body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {error}")]
pub struct ApiError {
    pub status: StatusCode,
    pub error: RecordError,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error: RecordError::new(code, message, vec![]),
        }
    }

    pub fn session_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<RecordError> for ApiError {
    fn from(error: RecordError) -> Self {
        ApiError {
            status: error.status(),
            error,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // INVALID_SESSION_ID has no `fields` key in the real body, and simple-salesforce compares it exactly.
        let body = if self.error.fields.is_empty() && self.status == StatusCode::UNAUTHORIZED {
            json!([{"message": self.error.message, "errorCode": self.error.code}])
        } else {
            json!([self.error.rest_json()])
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// An OAuth endpoint failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    pub const fn grant(description: &'static str) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description,
        }
    }

    pub const fn new(error: &'static str, description: &'static str) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (self.status, axum::Json(body)).into_response()
    }
}
