//! The catalogue of problem types: every `type` URI the bank API can answer with, its status and title.

use axum::http::StatusCode;

/// The catalogue: every kind of problem the bank API answers with, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    /// 400: the body (or a header) is not syntactically acceptable.
    MalformedBody,
    /// 400: a request header or parameter is malformed (other than the ones below).
    InvalidRequest,
    /// 400: `Idempotency-Key` missing where required, or not 1-255 printable ASCII characters.
    IdempotencyKeyInvalid,
    /// 401: no usable bearer token.
    Unauthorized,
    /// 403: authenticated, but not allowed to do this.
    Forbidden,
    /// 404: no such resource, or it belongs to another bank.
    NotFound,
    /// 405: the resource exists but not with this method (`Allow` lists the ones it has).
    MethodNotAllowed,
    /// 409: the first request with this idempotency key is still being processed.
    RequestInFlight,
    /// 409: the request has no report (yet): not completed, rejected, waiting for the bank, or failed.
    ReportNotAvailable,
    /// 413: the body exceeds the configured size limit.
    BodyTooLarge,
    /// 415: the body's media type is not accepted here.
    UnsupportedMediaType,
    /// 422: the body is well-formed but its content is invalid.
    Validation,
    /// 422: the idempotency key was used before with a different body.
    IdempotencyKeyReused,
    /// 429: the caller sends too fast; `Retry-After` says when to come back.
    RateLimited,
    /// 503: a dependency (store, Salesforce) is unavailable; retry later.
    ServiceUnavailable,
    /// 500: a bug or an unexpected failure; details are in the log, not here.
    Internal,
    /// 501: an endpoint that is announced but not built yet.
    NotImplemented,
}

impl ProblemType {
    /// Every problem type, for documentation (the OpenAPI document lists them).
    pub const ALL: [ProblemType; 17] = [
        Self::MalformedBody,
        Self::InvalidRequest,
        Self::IdempotencyKeyInvalid,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestInFlight,
        Self::ReportNotAvailable,
        Self::BodyTooLarge,
        Self::UnsupportedMediaType,
        Self::Validation,
        Self::IdempotencyKeyReused,
        Self::RateLimited,
        Self::ServiceUnavailable,
        Self::Internal,
        Self::NotImplemented,
    ];

    /// The stable `type` URI.
    pub const fn uri(self) -> &'static str {
        match self {
            Self::MalformedBody => "https://creditlink.dev/problems/malformed-body",
            Self::InvalidRequest => "https://creditlink.dev/problems/invalid-request",
            Self::IdempotencyKeyInvalid => {
                "https://creditlink.dev/problems/idempotency-key-invalid"
            }
            Self::Unauthorized => "https://creditlink.dev/problems/unauthorized",
            Self::Forbidden => "https://creditlink.dev/problems/forbidden",
            Self::NotFound => "https://creditlink.dev/problems/not-found",
            Self::MethodNotAllowed => "https://creditlink.dev/problems/method-not-allowed",
            Self::RequestInFlight => "https://creditlink.dev/problems/request-in-flight",
            Self::ReportNotAvailable => "https://creditlink.dev/problems/report-not-available",
            Self::BodyTooLarge => "https://creditlink.dev/problems/body-too-large",
            Self::UnsupportedMediaType => "https://creditlink.dev/problems/unsupported-media-type",
            Self::Validation => "https://creditlink.dev/problems/validation",
            Self::IdempotencyKeyReused => "https://creditlink.dev/problems/idempotency-key-reused",
            Self::RateLimited => "https://creditlink.dev/problems/rate-limited",
            Self::ServiceUnavailable => "https://creditlink.dev/problems/service-unavailable",
            Self::Internal => "https://creditlink.dev/problems/internal",
            Self::NotImplemented => "https://creditlink.dev/problems/not-implemented",
        }
    }

    /// The HTTP status this type is always sent with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MalformedBody | Self::InvalidRequest | Self::IdempotencyKeyInvalid => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestInFlight | Self::ReportNotAvailable => StatusCode::CONFLICT,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The short, occurrence-independent summary (RFC 9457 §3.1.3).
    pub const fn title(self) -> &'static str {
        match self {
            Self::MalformedBody => "Malformed request body",
            Self::InvalidRequest => "Invalid request",
            Self::IdempotencyKeyInvalid => "Invalid Idempotency-Key",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::RequestInFlight => "Request with this Idempotency-Key is in flight",
            Self::ReportNotAvailable => "No report for this request",
            Self::BodyTooLarge => "Request body too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Validation => "Validation failed",
            Self::IdempotencyKeyReused => "Idempotency-Key reused with a different body",
            Self::RateLimited => "Too many requests",
            Self::ServiceUnavailable => "Service unavailable",
            Self::Internal => "Internal error",
            Self::NotImplemented => "Not implemented yet",
        }
    }
}
