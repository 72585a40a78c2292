//! Salesforce errors: one enum, one classification table, and the parsers for the three error body shapes.
//!
//! Salesforce reports errors in three shapes (REST API "Status Codes and Error Responses"):
//! - REST: a JSON **array** `[{"message", "errorCode", "fields"}]` (`fields` sometimes absent);
//! - OAuth endpoints: a JSON **object** `{"error", "error_description"}`;
//! - sObject Collections items: the REST shape with `statusCode` instead of `errorCode`.
//!
//! Whatever the shape, callers decide what to do from one [`ErrorClass`], computed in exactly one place
//! ([`classify`]) from the error code first and the HTTP status second. The outbox owns retries; this module only
//! says whether a retry can help.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};

/// What a caller should do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Transient: the same request may succeed later (outage, lock contention, rate limit).
    Retryable,
    /// The session was refused even after the client re-authenticated once; a later attempt with a fresh token may
    /// work, but a persistent `Reauth` points at the integration user or the connected app.
    Reauth,
    /// The request itself is wrong (validation, missing field, bad id, bad credentials): retrying cannot help.
    Permanent,
}

/// One entry of a Salesforce error array (REST `errorCode` or Collections `statusCode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// `errorCode` (REST) or `statusCode` (Collections items), e.g. `REQUIRED_FIELD_MISSING`.
    #[serde(rename = "errorCode", alias = "statusCode", default)]
    pub code: String,
    /// Salesforce's own message, kept verbatim: it is what an admin needs to fix a mapping or a record.
    #[serde(default)]
    pub message: String,
    /// Fields the error is about; Salesforce omits the key at times, which means none.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// Everything that can go wrong talking to Salesforce.
///
/// `Clone` so that one failed token refresh can be handed to every caller that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SfError {
    /// No HTTP answer: connection refused or reset, DNS, TLS, timeout, or a body cut off mid-way.
    #[error("HTTP transport error: {source}")]
    Transport {
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// A REST endpoint answered with an error status and (usually) Salesforce's error array.
    #[error("Salesforce answered {status}{}", describe_api_errors(errors))]
    Api {
        status: u16,
        errors: Vec<ApiError>,
        /// `Retry-After`, when the org (or a proxy in front of it) sent one.
        retry_after: Option<Duration>,
    },
    /// The token or introspection endpoint refused the request (`{"error", "error_description"}`).
    #[error("OAuth endpoint answered {status}: {error}: {description}")]
    OAuth {
        status: u16,
        error: String,
        description: String,
    },
    /// A success status with a body that is not the documented shape: most often not Salesforce at all (a proxy
    /// or captive portal answering 200 with an HTML page, a body cut short). Retryable: failing every message of
    /// the call for good on such an answer would lose up to 200 requests to one bad hop; a real protocol
    /// mismatch ends in `Dead` after the retry policy's max attempts/age.
    #[error("unexpected Salesforce response ({status}): {message}")]
    Decode { status: u16, message: String },
    /// The client settings cannot work (unparsable private key, unusable URL, missing introspection credentials).
    #[error("invalid Salesforce client settings: {0}")]
    Config(String),
    /// The caller asked for something Salesforce would refuse anyway (e.g. more than 200 records in a collection).
    #[error("invalid use of the Salesforce client: {0}")]
    Usage(String),
    /// A download was longer than the caller's cap; it was cut off there, and asking again gets the same file.
    #[error("the file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
}

impl SfError {
    /// Retry, re-authenticate or give up: the single classification every caller uses.
    pub fn class(&self) -> ErrorClass {
        match self {
            SfError::Transport { source } if source.is_builder() => ErrorClass::Permanent,
            SfError::Transport { .. } => ErrorClass::Retryable,
            SfError::Api {
                retry_after: Some(_),
                ..
            } => ErrorClass::Retryable,
            SfError::Api { status, errors, .. } => classify_all(Some(*status), errors),
            SfError::OAuth { status, error, .. } => classify_oauth(*status, error),
            SfError::Decode { .. } => ErrorClass::Retryable,
            SfError::Config(_) | SfError::Usage(_) | SfError::TooLarge { .. } => {
                ErrorClass::Permanent
            }
        }
    }

    /// The HTTP status Salesforce answered with, if it answered at all.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            SfError::Api { status, .. }
            | SfError::OAuth { status, .. }
            | SfError::Decode { status, .. } => Some(*status),
            SfError::Transport { source } => source.status().map(|s| s.as_u16()),
            SfError::Config(_) | SfError::Usage(_) | SfError::TooLarge { .. } => None,
        }
    }

    /// Salesforce's error entries (empty for transport, OAuth and local errors).
    pub fn api_errors(&self) -> &[ApiError] {
        match self {
            SfError::Api { errors, .. } => errors,
            _ => &[],
        }
    }

    /// How long the server asked us to wait, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SfError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short machine-readable code for attempt logs and metrics: the first `errorCode`, the OAuth `error`, or a
    /// label for errors that never reached Salesforce.
    pub fn code(&self) -> Option<&str> {
        match self {
            SfError::Api { errors, .. } => errors
                .first()
                .map(|e| e.code.as_str())
                .filter(|c| !c.is_empty()),
            SfError::OAuth { error, .. } => Some(error),
            SfError::Transport { source } if source.is_timeout() => Some("TIMEOUT"),
            SfError::Transport { .. } => Some("TRANSPORT"),
            SfError::Decode { .. } => Some("UNEXPECTED_RESPONSE"),
            SfError::Config(_) => Some("CLIENT_CONFIG"),
            SfError::Usage(_) => Some("CLIENT_USAGE"),
            SfError::TooLarge { .. } => Some("FILE_TOO_LARGE"),
        }
    }

    /// True for the org's API limits (`REQUEST_LIMIT_EXCEEDED`, HTTP 429, OAuth `rate_limit_exceeded`): the caller
    /// should wait much longer than for an ordinary transient error, because the limit is a rolling 24 h window or a
    /// concurrency cap.
    pub fn is_rate_limit(&self) -> bool {
        match self {
            SfError::Api { status, errors, .. } => {
                *status == 429 || errors.iter().any(|e| e.code == "REQUEST_LIMIT_EXCEEDED")
            }
            SfError::OAuth { status, error, .. } => {
                *status == 429 || error == "rate_limit_exceeded"
            }
            _ => false,
        }
    }

    /// True when the request timed out (connect or whole-request timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SfError::Transport { source } if source.is_timeout())
    }

    pub(crate) fn transport(source: reqwest::Error) -> Self {
        // Never keep the URL: query strings carry SOQL, and SOQL can carry national ids.
        SfError::Transport {
            source: Arc::new(source.without_url()),
        }
    }

    pub(crate) fn decode(status: StatusCode, message: impl Into<String>) -> Self {
        SfError::Decode {
            status: status.as_u16(),
            message: message.into(),
        }
    }
}

/// The classification table. Codes first (Salesforce sends `UNABLE_TO_LOCK_ROW` as a 400 and it is transient),
/// then the HTTP status for codes not listed here. `status` is `None` for Collections items, whose HTTP status is
/// the 200 of the whole request.
pub fn classify(status: Option<u16>, code: &str) -> ErrorClass {
    match code {
        // Transient on the org's side. ALL_OR_NONE_OPERATION_ROLLED_BACK / PROCESSING_HALTED: this record was fine
        // but rolled back because another one failed, so it can be sent again on its own.
        "SERVER_UNAVAILABLE"
        | "UNABLE_TO_LOCK_ROW"
        | "REQUEST_LIMIT_EXCEEDED"
        | "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        | "PROCESSING_HALTED" => ErrorClass::Retryable,
        "INVALID_SESSION_ID" => ErrorClass::Reauth,
        "REQUIRED_FIELD_MISSING"
        | "INVALID_FIELD"
        | "DUPLICATE_VALUE"
        | "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        | "MALFORMED_ID"
        | "STRING_TOO_LONG"
        | "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        | "INVALID_TYPE"
        | "JSON_PARSER_ERROR"
        | "NOT_FOUND"
        | "ENTITY_IS_DELETED"
        | "INSUFFICIENT_ACCESS_OR_READONLY"
        | "DUPLICATES_DETECTED"
        | "MULTIPLE_CHOICES"
        | "MALFORMED_QUERY"
        | "INVALID_CROSS_REFERENCE_KEY" => ErrorClass::Permanent,
        _ => match status {
            Some(401) => ErrorClass::Reauth,
            Some(408 | 429) => ErrorClass::Retryable,
            Some(s) if s >= 500 => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        },
    }
}

/// Classify a whole error array. A known permanent problem wins (retrying a record with a missing field fails
/// again even if a lock was also contended); then re-auth; then retry.
pub(crate) fn classify_all(status: Option<u16>, errors: &[ApiError]) -> ErrorClass {
    if errors.is_empty() {
        return classify(status, "");
    }
    let classes: Vec<ErrorClass> = errors.iter().map(|e| classify(status, &e.code)).collect();
    [
        ErrorClass::Permanent,
        ErrorClass::Reauth,
        ErrorClass::Retryable,
    ]
    .into_iter()
    .find(|c| classes.contains(c))
    .unwrap_or(ErrorClass::Permanent)
}

/// OAuth errors are configuration problems (wrong key, unapproved user, bad secret) unless the endpoint itself is
/// struggling.
fn classify_oauth(status: u16, error: &str) -> ErrorClass {
    match error {
        "rate_limit_exceeded" | "temporarily_unavailable" | "server_error" => ErrorClass::Retryable,
        _ if status >= 500 || status == 429 => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

/// Build the error for a non-success REST response from its status, headers and body.
pub(crate) fn api_error_from_body(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SfError {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let errors = if status == StatusCode::MULTIPLE_CHOICES {
        vec![multiple_choices(body)]
    } else {
        parse_error_array(body).unwrap_or_else(|| vec![unparsed(status, body)])
    };
    SfError::Api {
        status: status.as_u16(),
        errors,
        retry_after,
    }
}

/// Build the error for a non-success answer of an OAuth endpoint.
pub(crate) fn oauth_error_from_body(status: StatusCode, body: &[u8]) -> SfError {
    #[derive(Deserialize)]
    struct OAuthBody {
        error: String,
        #[serde(default)]
        error_description: String,
    }
    match serde_json::from_slice::<OAuthBody>(body) {
        Ok(b) => SfError::OAuth {
            status: status.as_u16(),
            error: b.error,
            description: b.error_description,
        },
        Err(_) => {
            let fallback = unparsed(status, body);
            SfError::OAuth {
                status: status.as_u16(),
                error: fallback.code,
                description: fallback.message,
            }
        }
    }
}

/// `[{"message","errorCode","fields"}]`, or a single such object (some proxies and older endpoints send one).
pub(crate) fn parse_error_array(body: &[u8]) -> Option<Vec<ApiError>> {
    if let Ok(list) = serde_json::from_slice::<Vec<ApiError>>(body) {
        return Some(list);
    }
    serde_json::from_slice::<ApiError>(body)
        .ok()
        .filter(|e| !e.code.is_empty())
        .map(|e| vec![e])
}

/// `Retry-After` as delta-seconds or as an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// 300 on upsert: the external id matched several records; the body lists them (as URLs, believed).
fn multiple_choices(body: &[u8]) -> ApiError {
    let matches: Vec<String> = serde_json::from_slice::<Vec<serde_json::Value>>(body)
        .map(|v| {
            v.into_iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let message = if matches.is_empty() {
        "the external id matches more than one record".to_owned()
    } else {
        format!(
            "the external id matches more than one record: {}",
            matches.join(", ")
        )
    };
    ApiError {
        code: "MULTIPLE_CHOICES".to_owned(),
        message,
        fields: Vec::new(),
    }
}

/// A body that is not Salesforce JSON (an HTML error page from a load balancer, an empty 503): keep a short,
/// single-line excerpt so the attempt log says something useful.
fn unparsed(status: StatusCode, body: &[u8]) -> ApiError {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if excerpt.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|i| excerpt.is_char_boundary(*i))
            .unwrap_or(0);
        excerpt.truncate(cut);
        excerpt.push('…');
    }
    let message = if excerpt.is_empty() {
        status.canonical_reason().unwrap_or("no body").to_owned()
    } else {
        excerpt
    };
    ApiError {
        code: format!("HTTP_{}", status.as_u16()),
        message,
        fields: Vec::new(),
    }
}

fn describe_api_errors(errors: &[ApiError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.fields.is_empty() {
                format!(": {}: {}", e.code, e.message)
            } else {
                format!(
                    ": {}: {} (fields: {})",
                    e.code,
                    e.message,
                    e.fields.join(", ")
                )
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
