//! Request bodies: content negotiation, strict parsing, and the digest idempotency compares.
//!
//! JSON (`application/json`, `application/*+json`) is always accepted; XML (`application/xml`,
//! `text/xml`, `application/*+xml`) only where the endpoint's [`BodyPolicy`] names the expected root
//! element. Both parse to the same `serde_json::Value`, so the mappings see one shape. The body size is
//! limited by a layer before we see it (axum's `DefaultBodyLimit`); [`RawBody`] turns that layer's refusal
//! into a 413 problem document.
//!
//! Memory: handlers take the caller's identity from the headers *before* the body (see
//! `intake::auth::Authenticated`), so an unauthenticated caller never makes the daemon buffer a body. Bodies
//! that are read first reserve their size in one [`BodyBudget`] shared by all requests (the `Content-Length`,
//! or the per-request maximum when the length is not declared) and wait for room, so the memory held by bodies
//! in flight never exceeds `[server] max_body_memory_bytes` however many connections are open.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::json::{self, JsonError};
use super::problem::{FieldError, Problem, sentence};
use super::xml::{self, XmlError, XmlErrorKind, XmlLimits};

/// Bodies up to this size are parsed on the request's own task (see [`RawBody::parse_off_thread`]).
const INLINE_PARSE_BYTES: usize = 16 * 1024;

/// The media types answered in 415 problems.
const JSON_MEDIA: &str = "application/json";
const XML_MEDIA: &str = "application/xml";

/// How the body was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Xml,
}

/// What one endpoint accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPolicy {
    /// `Some(root)` accepts XML whose root element has this local name; `None` refuses XML with 415.
    pub xml_root: Option<String>,
    /// Maximum nesting of JSON arrays/objects.
    pub json_max_depth: usize,
    pub xml_limits: XmlLimits,
}

impl Default for BodyPolicy {
    fn default() -> Self {
        Self {
            xml_root: None,
            json_max_depth: json::DEFAULT_MAX_DEPTH,
            xml_limits: XmlLimits::default(),
        }
    }
}

/// A parsed body.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedBody {
    pub value: Value,
    pub format: BodyFormat,
    /// SHA-256 of the raw bytes as received: the idempotency fingerprint. Raw bytes, not the parsed value,
    /// because the draft compares payloads and a re-serialisation could hide a changed number format.
    pub sha256: [u8; 32],
}

impl ParsedBody {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("Content-Type is missing")]
    MissingContentType { accepted: Vec<&'static str> },
    #[error("media type {received:?} is not accepted")]
    UnsupportedMediaType {
        received: String,
        accepted: Vec<&'static str>,
    },
    #[error("the request body is empty")]
    Empty,
    /// `limit` is known when our parser refused; the body layer does not say its limit.
    #[error("the request body is too large")]
    TooLarge { limit: Option<usize> },
    #[error("the request body could not be read")]
    Unreadable,
    #[error(transparent)]
    Json(#[from] JsonError),
    #[error(transparent)]
    Xml(#[from] XmlError),
}

impl BodyError {
    /// The problem document for this refusal.
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::MissingContentType { accepted } => {
                Problem::unsupported_media_type(None, accepted)
            }
            Self::UnsupportedMediaType { received, accepted } => {
                Problem::unsupported_media_type(Some(received.as_str()), accepted)
            }
            Self::Empty => Problem::malformed_body("The request body is empty.", None),
            Self::TooLarge { limit } => Problem::body_too_large(*limit),
            Self::Unreadable => {
                Problem::malformed_body("The request body could not be read.", None)
            }
            Self::Json(err) => Problem::malformed_body(sentence(&err.to_string()), err.position())
                .with_extra("code", err.code()),
            Self::Xml(err) => xml_problem(err),
        }
    }
}

/// Negotiates and parses one body under `policy`.
pub fn parse_body(
    content_type: Option<&HeaderValue>,
    bytes: &[u8],
    policy: &BodyPolicy,
) -> Result<ParsedBody, BodyError> {
    let accepted = accepted_media(policy);
    let Some(content_type) = content_type else {
        return Err(BodyError::MissingContentType { accepted });
    };
    let unsupported = || BodyError::UnsupportedMediaType {
        received: String::from_utf8_lossy(content_type.as_bytes())
            .chars()
            .take(100)
            .collect(),
        accepted: accepted.clone(),
    };
    let media = MediaType::parse(content_type.to_str().map_err(|_| unsupported())?)
        .ok_or_else(unsupported)?;
    if !media.charset_is_utf8() {
        return Err(unsupported());
    }
    let format = match (media.is_json(), media.is_xml(), &policy.xml_root) {
        (true, _, _) => BodyFormat::Json,
        (_, true, Some(_)) => BodyFormat::Xml,
        _ => return Err(unsupported()),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    let value = match (format, &policy.xml_root) {
        (BodyFormat::Xml, Some(root)) => xml::parse_xml(bytes, root, &policy.xml_limits)?,
        _ => json::parse_json(bytes, policy.json_max_depth)?,
    };
    Ok(ParsedBody {
        value,
        format,
        sha256: Sha256::digest(bytes).into(),
    })
}

/// The memory all request bodies in flight may hold together, in KiB-sized permits (a request extension put
/// there by the daemon; without it bodies are read without a global bound, as in handler tests).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    per_request_max: u64,
}

impl BodyBudget {
    /// `total` bytes for all bodies together; `per_request_max` is `[server] max_body_bytes`.
    pub fn new(total: u64, per_request_max: u64) -> Self {
        let kib = usize::try_from(total.div_ceil(1024))
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        BodyBudget {
            kib: Arc::new(Semaphore::new(kib)),
            per_request_max,
        }
    }

    /// Reserves room for a body of `declared` bytes (the per-request maximum when unknown), waiting for
    /// bodies in flight to be released. A declared length over the maximum is refused without reading.
    pub async fn reserve(&self, declared: Option<u64>) -> Result<Reservation, BodyError> {
        if let Some(len) = declared
            && len > self.per_request_max
        {
            return Err(BodyError::TooLarge {
                limit: usize::try_from(self.per_request_max).ok(),
            });
        }
        let kib = declared
            .unwrap_or(self.per_request_max)
            .div_ceil(1024)
            .max(1);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX);
        let permit = self
            .kib
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| BodyError::Unreadable)?;
        Ok(Reservation {
            _permit: Arc::new(permit),
        })
    }

    /// KiB currently free (for tests and metrics).
    pub fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }
}

/// Room reserved in the [`BodyBudget`]; released when the last clone of the body is dropped.
#[derive(Debug, Clone)]
pub struct Reservation {
    _permit: Arc<OwnedSemaphorePermit>,
}

/// The body as received, with its `Content-Type`, read through the body-size layer.
///
/// Extracting this instead of `Bytes` makes a too-large or broken body a problem document.
#[derive(Debug, Clone)]
pub struct RawBody {
    pub content_type: Option<HeaderValue>,
    pub bytes: Bytes,
    /// This body's room in the [`BodyBudget`], when the daemon installed one.
    pub reservation: Option<Reservation>,
}

impl RawBody {
    pub fn parse(&self, policy: &BodyPolicy) -> Result<ParsedBody, BodyError> {
        parse_body(self.content_type.as_ref(), &self.bytes, policy)
    }

    /// [`RawBody::parse`] on the blocking pool: parsing a large body is CPU work that must not stall the async
    /// workers serving other requests. A small body (every ordinary report request) is parsed in place: that
    /// takes microseconds, less than handing it to another thread and back.
    pub async fn parse_off_thread(self, policy: BodyPolicy) -> Result<ParsedBody, BodyError> {
        if self.bytes.len() <= INLINE_PARSE_BYTES {
            return self.parse(&policy);
        }
        tokio::task::spawn_blocking(move || self.parse(&policy))
            .await
            .map_err(|_| BodyError::Unreadable)?
    }
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let budget = req.extensions().get::<BodyBudget>().cloned();
        let reservation = match budget {
            Some(budget) => {
                let declared = req
                    .headers()
                    .get(axum::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                Some(budget.reserve(declared).await?)
            }
            None => None,
        };
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(
                    axum::extract::rejection::FailedToBufferBody::LengthLimitError(_),
                ) => BodyError::TooLarge { limit: None },
                _ => BodyError::Unreadable,
            })?;
        Ok(Self {
            content_type,
            bytes,
            reservation,
        })
    }
}

fn accepted_media(policy: &BodyPolicy) -> Vec<&'static str> {
    match policy.xml_root {
        Some(_) => vec![JSON_MEDIA, XML_MEDIA, "text/xml"],
        None => vec![JSON_MEDIA],
    }
}

pub(crate) fn xml_problem(err: &XmlError) -> Problem {
    if let XmlErrorKind::TooLarge { limit } = err.kind {
        return Problem::body_too_large(Some(limit));
    }
    if err.is_content_error() {
        let field = err.pointer().unwrap_or_default();
        let mut problem = Problem::validation(vec![FieldError::new(
            field,
            err.code(),
            sentence(&err.kind.to_string()),
        )]);
        if let Some(pos) = err.position {
            problem = problem
                .with_extra("line", pos.line)
                .with_extra("column", pos.column);
        }
        return problem;
    }
    Problem::malformed_body(sentence(&err.kind.to_string()), err.position)
        .with_extra("code", err.code())
}

/// A parsed `Content-Type` (RFC 9110 §8.3.1), lower-cased.
struct MediaType {
    kind: String,
    subtype: String,
    charset: Option<String>,
}

impl MediaType {
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let (kind, subtype) = (
            kind.trim().to_ascii_lowercase(),
            subtype.trim().to_ascii_lowercase(),
        );
        if kind.is_empty() || subtype.is_empty() {
            return None;
        }
        let charset = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase());
        Some(Self {
            kind,
            subtype,
            charset,
        })
    }

    fn is_json(&self) -> bool {
        self.kind == "application" && (self.subtype == "json" || self.subtype.ends_with("+json"))
    }

    fn is_xml(&self) -> bool {
        matches!(
            (self.kind.as_str(), self.subtype.as_str()),
            ("application" | "text", "xml")
        ) || (self.kind == "application" && self.subtype.ends_with("+xml"))
    }

    /// JSON is UTF-8 by definition (RFC 8259) and we only read UTF-8 XML; ASCII is a subset.
    fn charset_is_utf8(&self) -> bool {
        self.charset
            .as_deref()
            .is_none_or(|c| matches!(c, "utf-8" | "utf8" | "us-ascii"))
    }
}
