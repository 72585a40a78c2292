//! [`ApiError`]: what bank API handlers and extractors return, and the one place that turns an error into
//! a log line and a problem document.
//!
//! The split is deliberate: the *cause* (with its whole `source()` chain) goes to the log, next to the
//! request id; the *client* gets only the [`Problem`] the variant maps to. Client errors are logged at
//! `debug` (they are the client's to fix and would flood the log), unavailability at `warn`, internal
//! errors at `error`. Causes must not carry tokens or national ids; the types that hold them redact their
//! `Debug`/`Display`, and this module logs `Display` only.

use std::error::Error as StdError;
use std::time::Duration;

use axum::response::{IntoResponse, Response};

use super::body::BodyError;
use super::headers::{BearerError, IdempotencyKeyError};
use super::problem::{FieldError, Problem, sentence};
use super::request_id::current_request_id;

/// A boxed cause, for the variants whose source is some other module's error.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body refused: {0}")]
    Body(#[from] BodyError),
    #[error("Idempotency-Key refused: {0}")]
    IdempotencyKey(#[from] IdempotencyKeyError),
    #[error("no usable bearer token: {0}")]
    Credentials(#[from] BearerError),
    /// The token was well-formed but introspection said it is not active (expired, revoked, unknown).
    /// `reason` is for the log only.
    #[error("bearer token rejected: {reason}")]
    TokenRejected { reason: String },
    /// A header or parameter other than the body is malformed; `detail` is shown to the client.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Authenticated but not allowed; `detail` is shown to the client.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Unknown route or resource.
    #[error("not found")]
    NotFound,
    /// Unknown report request id, or an id of another bank: the same answer for both.
    #[error("report request not found (or not visible to this caller)")]
    RequestNotFound,
    /// The request has no report to download; `status` is its lifecycle state.
    #[error("no report: the request is {status}")]
    ReportNotAvailable {
        status: String,
        reason: Option<String>,
    },
    #[error("method not allowed")]
    MethodNotAllowed { allow: Option<String> },
    /// Announced but not built; `detail` is shown to the client.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    #[error("{} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("Idempotency-Key reused with a different body")]
    IdempotencyKeyReused,
    #[error("the request with this Idempotency-Key is still in flight")]
    RequestInFlight,
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    /// A dependency (store, Salesforce) cannot serve now; the client should retry.
    #[error("service unavailable")]
    Unavailable {
        retry_after: Option<Duration>,
        #[source]
        source: BoxError,
    },
    /// A bug or an unexpected failure. The client sees a generic 500 with the request id.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn unavailable(retry_after: Option<Duration>, cause: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            retry_after,
            source: cause.into(),
        }
    }

    /// The problem document sent for this error.
    pub fn problem(&self) -> Problem {
        match self {
            Self::Body(err) => err.to_problem(),
            Self::IdempotencyKey(err) => {
                Problem::idempotency_key_invalid(sentence(&err.to_string()))
            }
            Self::Credentials(BearerError::Missing) => Problem::unauthenticated(),
            Self::Credentials(_) | Self::TokenRejected { .. } => Problem::invalid_token(),
            Self::InvalidRequest(detail) => Problem::invalid_request(detail.clone()),
            Self::Forbidden(detail) => Problem::forbidden(detail.clone()),
            Self::NotFound => Problem::not_found(),
            Self::RequestNotFound => Problem::request_not_found(),
            Self::ReportNotAvailable { status, reason } => {
                Problem::report_not_available(status, reason.as_deref())
            }
            Self::MethodNotAllowed { allow } => Problem::method_not_allowed(allow.as_deref()),
            Self::NotImplemented(detail) => Problem::not_implemented(detail.clone()),
            Self::Validation(errors) => Problem::validation(errors.clone()),
            Self::IdempotencyKeyReused => Problem::idempotency_key_reused(),
            Self::RequestInFlight => Problem::request_in_flight(),
            Self::RateLimited { retry_after } => Problem::too_many_requests(*retry_after),
            Self::Unavailable { retry_after, .. } => Problem::service_unavailable(*retry_after),
            Self::Internal(_) => Problem::internal(),
        }
    }

    /// Logs the error with its cause chain at the level its class deserves.
    pub fn log(&self) {
        let request_id = current_request_id()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let chain = cause_chain(self);
        match self {
            Self::Internal(_) => tracing::error!(%request_id, error = %chain, "request failed"),
            Self::Unavailable { .. } => {
                tracing::warn!(%request_id, error = %chain, "request refused: unavailable")
            }
            _ => tracing::debug!(%request_id, error = %chain, "request refused"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        self.problem().into_response()
    }
}

/// `outer: cause: root cause`, from `Display` of each error in the `source()` chain.
pub fn cause_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        // thiserror's `{0}` formats often repeat the cause already: skip exact repeats.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct Disk;

    #[derive(Debug, thiserror::Error)]
    #[error("store write failed")]
    struct Store(#[source] Disk);

    #[test]
    fn chain_names_every_cause_once() {
        let err = ApiError::internal(Store(Disk));
        assert_eq!(
            cause_chain(&err),
            "internal error: store write failed: disk full"
        );
        assert_eq!(
            cause_chain(&ApiError::from(BearerError::Missing)),
            "no usable bearer token: no Authorization header"
        );
    }

    #[test]
    fn internal_problem_reveals_nothing_of_the_cause() {
        let doc = ApiError::internal(Store(Disk)).problem().to_json(None);
        assert_eq!(doc["status"], 500);
        assert!(!doc.to_string().contains("disk"));
    }
}
