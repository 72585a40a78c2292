//! Request headers with meaning for the bank API: `Idempotency-Key`, `Prefer`, `Authorization: Bearer`.
//!
//! Each has a pure parser (testable without HTTP) and an axum extractor whose rejection is an
//! [`ApiError`], so a bad header is answered with a problem document like every other error.

use std::time::Duration;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header::GetAll};
use secrecy::SecretString;

use super::error::ApiError;

/// `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Prefer` (RFC 7240).
pub const PREFER: HeaderName = HeaderName::from_static("prefer");
/// `Preference-Applied` (RFC 7240 §3).
pub const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// Longest accepted idempotency key.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;
/// Longest accepted bearer token; Salesforce access tokens are about 112 characters.
pub const BEARER_TOKEN_MAX_LEN: usize = 4096;

/// A validated idempotency key: 1-255 printable ASCII characters.
///
/// The draft defines the value as a Structured Field string (`"..."`), but most clients send the key bare
/// (Stripe style). Both are accepted and mean the same key: `"abc"` and `abc` are one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why an `Idempotency-Key` header was refused (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("the Idempotency-Key header is required")]
    Missing,
    #[error("Idempotency-Key must be sent once")]
    Repeated,
    #[error("Idempotency-Key is empty")]
    Empty,
    #[error("Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX_LEN} characters")]
    TooLong,
    #[error("Idempotency-Key must be printable ASCII (a bare token, or a quoted string)")]
    InvalidCharacters,
}

impl IdempotencyKey {
    /// Parses one header value.
    pub fn parse(value: &HeaderValue) -> Result<Self, IdempotencyKeyError> {
        let raw = trim_ows(value.as_bytes());
        let key = match raw.strip_prefix(b"\"") {
            Some(quoted) => {
                unquote_sf_string(quoted).ok_or(IdempotencyKeyError::InvalidCharacters)?
            }
            None if raw.iter().all(|b| (0x21..=0x7e).contains(b)) => {
                String::from_utf8_lossy(raw).into_owned()
            }
            None => return Err(IdempotencyKeyError::InvalidCharacters),
        };
        match key.len() {
            0 => Err(IdempotencyKeyError::Empty),
            n if n > IDEMPOTENCY_KEY_MAX_LEN => Err(IdempotencyKeyError::TooLong),
            _ => Ok(Self(key)),
        }
    }

    /// Finds the key in a request's headers: `Ok(None)` when absent.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, IdempotencyKeyError> {
        let value =
            single(headers.get_all(IDEMPOTENCY_KEY)).map_err(|()| IdempotencyKeyError::Repeated)?;
        value.map(Self::parse).transpose()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The body of an sf-string after its opening quote (RFC 8941 §3.3.3): printable ASCII, `\"` and `\\`
/// escapes only, and nothing after the closing quote.
fn unquote_sf_string(rest: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut bytes = rest.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&e @ (b'"' | b'\\')) => out.push(char::from(e)),
                _ => return None,
            },
            b'"' => return bytes.as_slice().is_empty().then_some(out),
            0x20..=0x7e => out.push(char::from(b)),
            _ => return None,
        }
    }
    None
}

/// Required key: a missing header is a 400.
impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Self::from_headers(&parts.headers)?.ok_or(IdempotencyKeyError::Missing)?)
    }
}

/// Optional key (`Option<IdempotencyKey>`): absent is `None`, malformed is still a 400.
impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, ApiError> {
        Ok(Self::from_headers(&parts.headers)?)
    }
}

/// The preferences of a request (RFC 7240), from every `Prefer` header in order.
///
/// Per RFC 7240 §2, preferences that are unknown or malformed are ignored, never an error (`wait=abc` is
/// as if absent), and only the first occurrence of a preference counts. Names are case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefer {
    preferences: Vec<Preference>,
}

/// One preference: `name[=value] *(;param[=value])`, name lower-cased, quotes removed from values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    pub name: String,
    pub value: Option<String>,
    pub params: Vec<(String, Option<String>)>,
}

impl Prefer {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut preferences: Vec<Preference> = Vec::new();
        for value in headers.get_all(PREFER) {
            let Ok(text) = value.to_str() else { continue };
            for item in split_outside_quotes(text, ',') {
                let Some(pref) = parse_preference(item) else {
                    continue;
                };
                if !preferences.iter().any(|p| p.name == pref.name) {
                    preferences.push(pref);
                }
            }
        }
        Self { preferences }
    }

    /// The preference named `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&Preference> {
        self.preferences.iter().find(|p| p.name == name)
    }

    /// `respond-async` was asked for.
    pub fn respond_async(&self) -> bool {
        self.get("respond-async").is_some()
    }

    /// The requested `wait` in seconds, as sent (huge values saturate); `None` if absent or not a number.
    pub fn requested_wait(&self) -> Option<u64> {
        let value = self.get("wait")?.value.as_deref()?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(value.parse().unwrap_or(u64::MAX))
    }

    /// How long to wait for the synchronous outcome: the requested `wait` clamped to `max`, zero when no
    /// wait was asked for. With `respond-async, wait=10` the client still allows 10 s (RFC 7240 §4.3), so
    /// `respond-async` alone changes nothing: our default is already to answer 202 at once.
    pub fn wait(&self, max: Duration) -> Duration {
        self.requested_wait()
            .map_or(Duration::ZERO, |secs| Duration::from_secs(secs).min(max))
    }

    /// The `Preference-Applied` value for a response: `respond-async` when asked for and the answer is
    /// asynchronous (202), and `wait=<seconds honoured>` when a wait was asked for. `None` when nothing
    /// was applied.
    pub fn applied(&self, max_wait: Duration, answered_async: bool) -> Option<HeaderValue> {
        let mut applied = Vec::new();
        if self.respond_async() && answered_async {
            applied.push("respond-async".to_owned());
        }
        if self.requested_wait().is_some() {
            applied.push(format!("wait={}", self.wait(max_wait).as_secs()));
        }
        (!applied.is_empty())
            .then(|| applied.join(", "))
            .and_then(|v| HeaderValue::from_str(&v).ok())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Prefer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

fn parse_preference(item: &str) -> Option<Preference> {
    let mut parts = split_outside_quotes(item, ';').into_iter();
    let (name, value) = parse_pair(parts.next()?)?;
    let params = parts
        .filter(|p| !p.trim().is_empty())
        .filter_map(parse_pair)
        .collect();
    Some(Preference {
        name,
        value,
        params,
    })
}

/// `token [ BWS "=" BWS word ]`; an empty value is no value (RFC 7240 §2).
fn parse_pair(text: &str) -> Option<(String, Option<String>)> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (text.trim(), None),
    };
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return None;
    }
    let value = match value {
        None | Some("") | Some("\"\"") => None,
        Some(v) if v.starts_with('"') => Some(unquote_http(v)?),
        Some(v) if v.bytes().all(is_tchar) => Some(v.to_owned()),
        Some(_) => return None,
    };
    Some((name.to_ascii_lowercase(), value))
}

/// An HTTP quoted-string (RFC 9110 §5.6.4) including its quotes.
fn unquote_http(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Splits on `sep` except inside quoted strings.
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The only value of a header that must not repeat: `Err` when it does.
fn single(values: GetAll<'_, HeaderValue>) -> Result<Option<&HeaderValue>, ()> {
    let mut iter = values.iter();
    let first = iter.next();
    if iter.next().is_some() {
        Err(())
    } else {
        Ok(first)
    }
}

/// The bearer token of a request. Its `Debug` is redacted; read it with `secrecy::ExposeSecret` only to
/// send it to the token introspection endpoint.
#[derive(Debug, Clone)]
pub struct BearerToken(pub SecretString);

/// Why no bearer token could be taken from a request (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("no Authorization header")]
    Missing,
    #[error("more than one Authorization header")]
    Repeated,
    #[error("the Authorization scheme is not Bearer")]
    NotBearer,
    #[error("the bearer token is empty, too long or has invalid characters")]
    Malformed,
}

impl BearerToken {
    /// Takes the token from `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
    /// Tokens are visible ASCII: Salesforce's contain `!`, which the strict b64token grammar lacks.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, BearerError> {
        let value = single(headers.get_all(AUTHORIZATION)).map_err(|()| BearerError::Repeated)?;
        let value = value
            .ok_or(BearerError::Missing)?
            .to_str()
            .map_err(|_| BearerError::Malformed)?;
        let value = value.trim();
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(BearerError::NotBearer);
        }
        let token = token.trim_start_matches(' ');
        if token.is_empty()
            || token.len() > BEARER_TOKEN_MAX_LEN
            || !token.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(BearerError::Malformed);
        }
        Ok(Self(SecretString::from(token)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Self::from_headers(&parts.headers)?)
    }
}
