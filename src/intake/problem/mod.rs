//! RFC 9457 problem documents: the only error body the bank API ever sends.
//!
//! Every problem type the API can answer with is listed once, in [`ProblemType`], with its status and
//! title, so clients can switch on the stable `type` URI instead of parsing prose. The URIs live under
//! `https://creditlink.dev/problems/<slug>`; they identify, they are not fetched.
//!
//! Status choices (documented here because clients branch on them):
//! - **400** `malformed-body`: the body is not syntactically valid JSON/XML, or is hostile (DTD, entities,
//!   nesting beyond the limit), or breaks a parser limit. Carries `line`/`column` where known.
//! - **422** `validation`: well-formed, but the content is wrong (missing fields, wrong types, bad values,
//!   unknown fields). Every field problem is listed in `errors`, each with a JSON Pointer.
//! - **422** `idempotency-key-reused`: the draft IETF `Idempotency-Key` specification asks for 422 when a
//!   key is replayed with a different body; 409 is kept for `request-in-flight` (same key, first request
//!   still being processed), which is also what the draft asks for.
//! - **404** `not-found`: also for ids that exist but belong to another bank, so existence never leaks; for
//!   report requests the detail says which id is expected (the creditlink id, not a Salesforce id).
//! - **405** `method-not-allowed`: with `Allow`.
//! - **409** `report-not-available`: the report of a request that is not completed (or was rejected, or
//!   failed), with the request's `request_status` and the bureau's `reason`.
//! - **501** `not-implemented`: an endpoint that is announced but not built yet (data-feed uploads).
//! - **500** `internal`: the detail is generic; the cause is logged with the request id, which the document
//!   carries as `request_id` and as `instance` (`urn:uuid:<request id>`), so support can find the log line.

use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::request_id::current_request_id;

mod catalogue;

pub use catalogue::ProblemType;

/// The media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI.
pub const PROBLEM_BASE_URI: &str = "https://creditlink.dev/problems/";

/// One problem with one field of the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) into the request body as parsed (for XML: into its JSON form), e.g.
    /// `/subject/national_id`; empty for the body as a whole.
    pub field: String,
    /// Machine-readable reason, snake_case (`required`, `invalid_type`, `invalid_format`, `unknown_field`...).
    pub code: String,
    /// Human-readable explanation. Never echoes the submitted value: it may be personal data.
    pub detail: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            detail: detail.into(),
        }
    }
}

/// A line/column position in a request body (1-based; column counts characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourcePosition {
    pub line: usize,
    pub column: usize,
}

impl SourcePosition {
    /// Position of byte `offset` in `text` (clamped to the text, and to a character boundary).
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { line, column }
    }
}

impl std::fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// An RFC 9457 problem document, ready to be sent.
///
/// Build it with the constructors (one per [`ProblemType`]); the standard members are filled from the
/// catalogue. `detail` must be safe to show a client: no internals, no personal data.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub type_uri: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Identifies this occurrence. Defaults to `urn:uuid:<request id>` when a request id is known.
    pub instance: Option<String>,
    /// Field problems; sent as `errors` when non-empty.
    pub errors: Vec<FieldError>,
    /// Extension members (RFC 9457 §3.2), e.g. `line`/`column`. Never overrides a standard member.
    pub extra: Option<Map<String, Value>>,
    /// Response headers that belong to the problem (`Retry-After`, `WWW-Authenticate`, `Accept-Post`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "creditlink";

impl Problem {
    /// A problem of `kind` with the given detail and nothing else.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            status: kind.status(),
            type_uri: kind.uri(),
            title: kind.title(),
            detail: detail.into(),
            instance: None,
            errors: Vec::new(),
            extra: None,
            headers: Vec::new(),
        }
    }

    /// 422: the body is well-formed but these fields are wrong (all of them, not just the first).
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "The request body has 1 invalid field.".to_owned(),
            n => format!("The request body has {n} invalid fields."),
        };
        Self {
            errors,
            ..Self::new(ProblemType::Validation, detail)
        }
    }

    /// 400: the body cannot be parsed; `position` locates the first problem when the parser knows it.
    pub fn malformed_body(detail: impl Into<String>, position: Option<SourcePosition>) -> Self {
        let mut problem = Self::new(ProblemType::MalformedBody, detail);
        if let Some(pos) = position {
            problem = problem
                .with_extra("line", pos.line)
                .with_extra("column", pos.column);
        }
        problem
    }

    /// 400: a header or parameter other than the body is malformed.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::InvalidRequest, detail)
    }

    /// 415: lists the accepted media types in the body and in `Accept-Post`.
    pub fn unsupported_media_type(received: Option<&str>, accepted: &[&str]) -> Self {
        let detail = match received {
            Some(_) => format!("This endpoint accepts {}.", accepted.join(", ")),
            None => format!(
                "Content-Type is missing; this endpoint accepts {}.",
                accepted.join(", ")
            ),
        };
        let accepted_json: Vec<Value> = accepted.iter().map(|m| Value::from(*m)).collect();
        let mut problem = Self::new(ProblemType::UnsupportedMediaType, detail)
            .with_extra("accepted", accepted_json);
        if let Ok(value) = HeaderValue::from_str(&accepted.join(", ")) {
            problem
                .headers
                .push((HeaderName::from_static("accept-post"), value));
        }
        problem
    }

    /// 413: the body is larger than `limit` bytes (when the limit is known).
    pub fn body_too_large(limit: Option<usize>) -> Self {
        match limit {
            Some(limit) => Self::new(
                ProblemType::BodyTooLarge,
                format!("The request body exceeds {limit} bytes."),
            )
            .with_extra("limit", limit),
            None => Self::new(
                ProblemType::BodyTooLarge,
                "The request body exceeds the size limit.",
            ),
        }
    }

    /// 401 for a request without credentials: a bare challenge, as RFC 6750 §3.1 asks.
    pub fn unauthenticated() -> Self {
        Self::new(
            ProblemType::Unauthorized,
            "A bearer token is required (Authorization: Bearer <token>).",
        )
        .with_header(WWW_AUTHENTICATE, format!("Bearer realm=\"{REALM}\""))
    }

    /// 401 for a token that is malformed, expired, revoked or unknown (RFC 6750 `invalid_token`).
    pub fn invalid_token() -> Self {
        Self::new(
            ProblemType::Unauthorized,
            "The bearer token is malformed, expired or revoked.",
        )
        .with_header(
            WWW_AUTHENTICATE,
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
        )
    }

    /// 403: authenticated, but this caller may not do this (e.g. a user not linked to a member bank).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Forbidden, detail)
    }

    /// 404: also used for resources of another bank, so the detail never says which case it is.
    pub fn not_found() -> Self {
        Self::new(
            ProblemType::NotFound,
            "There is no such resource; see /api/v1/openapi.json for the endpoints.",
        )
    }

    /// 404 for a report request id that is unknown, malformed, or another bank's: the same words in every
    /// case, saying which id is expected.
    pub fn request_not_found() -> Self {
        Self::new(
            ProblemType::NotFound,
            "No report request of your bank has this id. Use the creditlink request id (a UUID, the `id` \
             returned when the request was created), not a Salesforce record id or your own reference.",
        )
    }

    /// 405 with `Allow`.
    pub fn method_not_allowed(allow: Option<&str>) -> Self {
        let detail = match allow {
            Some(allow) => {
                format!("This resource does not support this method; it supports {allow}.")
            }
            None => {
                "This resource does not support this method; the Allow header lists the ones it does."
                    .to_owned()
            }
        };
        let problem = Self::new(ProblemType::MethodNotAllowed, detail);
        match allow {
            Some(allow) => problem.with_header(axum::http::header::ALLOW, allow),
            None => problem,
        }
    }

    /// 409: why a request has no report to download, with its `status` (and `reason`) as extensions.
    pub fn report_not_available(status: &str, reason: Option<&str>) -> Self {
        let detail = match (status, reason) {
            ("rejected", Some(r)) => {
                format!("The bureau rejected this request, so there is no report: {r}")
            }
            ("rejected", None) => {
                "The bureau rejected this request, so there is no report.".to_owned()
            }
            ("action_required", Some(r)) => {
                format!("The bureau needs your action before it can finish the report: {r}")
            }
            ("failed", Some(r)) => format!("This request never reached the bureau: {r}"),
            (status, _) => format!(
                "The report is not ready yet: the request is {status}. A report_request.completed webhook \
                 announces it."
            ),
        };
        let problem =
            Self::new(ProblemType::ReportNotAvailable, detail).with_extra("request_status", status);
        match reason {
            Some(r) => problem.with_extra("reason", r),
            None => problem,
        }
    }

    /// 501: announced, not built yet.
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::NotImplemented, detail)
    }

    /// 422: the idempotency key was first used with a different body.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            ProblemType::IdempotencyKeyReused,
            "This Idempotency-Key was already used with a different request body; use a new key for a new request.",
        )
    }

    /// 400: the `Idempotency-Key` header is missing where required, repeated, or not a valid key.
    pub fn idempotency_key_invalid(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::IdempotencyKeyInvalid, detail)
    }

    /// 409: the first request with this key has not finished; retry after it has.
    pub fn request_in_flight() -> Self {
        Self::new(
            ProblemType::RequestInFlight,
            "A request with this Idempotency-Key is still being processed; retry later.",
        )
    }

    /// 429 with `Retry-After` (whole seconds, rounded up, at least 1).
    pub fn too_many_requests(retry_after: Duration) -> Self {
        Self::new(
            ProblemType::RateLimited,
            "Too many requests; retry after the time in Retry-After.",
        )
        .with_retry_after(retry_after)
    }

    /// 503, with `Retry-After` when the caller can estimate it.
    pub fn service_unavailable(retry_after: Option<Duration>) -> Self {
        let problem = Self::new(
            ProblemType::ServiceUnavailable,
            "The service is temporarily unavailable; retry later.",
        );
        match retry_after {
            Some(after) => problem.with_retry_after(after),
            None => problem,
        }
    }

    /// 500. The detail is deliberately generic; the caller logs the cause with the request id.
    pub fn internal() -> Self {
        Self::new(
            ProblemType::Internal,
            "An unexpected error occurred. Quote the request_id when you report it.",
        )
    }

    /// Adds an extension member. Standard member names are refused (silently), so an extension can never
    /// change the meaning of the document.
    pub fn with_extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        const RESERVED: [&str; 7] = [
            "type",
            "title",
            "status",
            "detail",
            "instance",
            "errors",
            "request_id",
        ];
        if !RESERVED.contains(&key) {
            self.extra
                .get_or_insert_with(Map::new)
                .insert(key.to_owned(), value.into());
        }
        self
    }

    /// Sets `instance` (otherwise `urn:uuid:<request id>`).
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Adds a `Retry-After` header in whole seconds, rounded up, at least 1.
    pub fn with_retry_after(self, after: Duration) -> Self {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        self.with_header(RETRY_AFTER, secs.max(1).to_string())
    }

    fn with_header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        if let Ok(value) = HeaderValue::from_str(value.as_ref()) {
            self.headers.push((name, value));
        }
        self
    }

    /// The JSON body, with `request_id` and the default `instance` filled from `request_id`.
    pub fn to_json(&self, request_id: Option<uuid::Uuid>) -> Value {
        let mut doc = Map::new();
        doc.insert("type".into(), self.type_uri.into());
        doc.insert("title".into(), self.title.into());
        doc.insert("status".into(), self.status.as_u16().into());
        doc.insert("detail".into(), self.detail.clone().into());
        let instance = self
            .instance
            .clone()
            .or_else(|| request_id.map(|id| format!("urn:uuid:{id}")));
        if let Some(instance) = instance {
            doc.insert("instance".into(), instance.into());
        }
        if let Some(id) = request_id {
            doc.insert("request_id".into(), id.to_string().into());
        }
        if !self.errors.is_empty() {
            let errors = serde_json::to_value(&self.errors).unwrap_or(Value::Array(Vec::new()));
            doc.insert("errors".into(), errors);
        }
        for (key, value) in self.extra.iter().flatten() {
            doc.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(doc)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.to_json(current_request_id()).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// Capitalises a message and ends it with a period, for `detail`.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_unique_uri_under_the_base() {
        let mut uris: Vec<&str> = ProblemType::ALL.iter().map(|t| t.uri()).collect();
        assert!(uris.iter().all(|u| u.starts_with(PROBLEM_BASE_URI)));
        uris.sort_unstable();
        uris.dedup();
        assert_eq!(uris.len(), ProblemType::ALL.len());
    }

    #[test]
    fn position_counts_characters_from_one() {
        let text = "{\n  \"a\": é!";
        assert_eq!(
            SourcePosition::from_offset(text, 0),
            SourcePosition { line: 1, column: 1 }
        );
        let bang = text.find('!').unwrap();
        assert_eq!(
            SourcePosition::from_offset(text, bang),
            SourcePosition { line: 2, column: 9 }
        );
        assert_eq!(SourcePosition::from_offset(text, 10_000).line, 2);
    }

    #[test]
    fn extensions_cannot_override_standard_members() {
        let doc = Problem::not_found()
            .with_extra("status", 200)
            .with_extra("hint", "x")
            .to_json(None);
        assert_eq!(doc["status"], 404);
        assert_eq!(doc["hint"], "x");
        assert!(doc.get("instance").is_none());
    }
}
