//! One webhook attempt to one bank endpoint, and the single place that decides what its result means.
//!
//! The sender does not retry or sleep: it makes one attempt and returns a [`SendOutcome`]; the outbox stores
//! the outcome and schedules the next attempt. Classification (decided here, tested in `tests/it/webhook_*`):
//!
//! | Answer | Outcome | Why |
//! |---|---|---|
//! | 2xx | `Success` | the spec's definition of delivered |
//! | 410 Gone | `Gone` | the spec: the receiver asks us to disable the endpoint |
//! | 429, 408, client timeout | `Retry { throttled: true }` | the receiver is overloaded: the outbox applies its longer floor |
//! | 5xx, connection errors, DNS failure | `Retry` | transient by nature |
//! | 400, 413, 415, 422 | `DontRetry` | the receiver rejected *this payload*; the same bytes get the same answer, so the message is surfaced as failed at once (and can be replayed by an admin) |
//! | other 3xx/4xx (401, 403, 404, 409, ...) | `Retry` | like Svix: these are usually receiver configuration or deploy states (a secret being rotated, a route not yet live) that the bank fixes within the multi-day retry window |
//! | URL refused by the SSRF policy | `DontRetry` | the address is forbidden, not unreachable |
//!
//! Redirects are not followed (a 3xx is a failed attempt): following them would bypass the URL policy.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use url::Url;

use super::signing::{WebhookSecret, signature_header};
use super::ssrf::{PolicyResolver, UrlPolicy, UrlPolicyError};

/// A bank's webhook endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Url,
    /// Current secret first; during a rotation also the previous one(s), all of which sign.
    pub secrets: Vec<WebhookSecret>,
}

/// One message to deliver. The same `webhook_id` is used on every attempt, so receivers dedupe on it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Stable across retries; must not contain `.` (the spec's signed-content separator).
    pub webhook_id: String,
    /// E.g. `report_request.status_changed`, `report.ready`.
    pub event_type: String,
    /// Sent as `data` in the body `{"type": event_type, "timestamp": ..., "data": payload}`.
    pub payload: serde_json::Value,
    /// When the event happened (the body's Standard Webhooks `timestamp`, RFC 3339). Stable across retries,
    /// unlike the `webhook-timestamp` header, which is the attempt time. `None` uses the attempt time.
    pub timestamp: Option<DateTime<Utc>>,
}

/// Sender settings, from config.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Whole-attempt timeout (the spec recommends 15-30 s).
    pub timeout: Duration,
    pub user_agent: String,
    /// How much of a response body is read (the rest is discarded unread).
    pub max_response_bytes: usize,
    pub policy: UrlPolicy,
    /// The only proxy webhooks go through. `None` means none at all: system proxy variables are ignored,
    /// because a proxy connects on its own and would bypass the connect-time address check.
    pub proxy: Option<Url>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            timeout: Duration::from_secs(15),
            user_agent: format!("creditlink/{} (webhooks)", env!("CARGO_PKG_VERSION")),
            max_response_bytes: 4096,
            policy: UrlPolicy::default(),
            proxy: None,
        }
    }
}

/// The result of one attempt, classified. The outbox records it and decides the next step from it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Success {
        status: u16,
        latency: Duration,
    },
    /// Try again later. `retry_after` is the receiver's `Retry-After`, unclamped (the outbox clamps);
    /// `throttled` is set for 429, 408 and timeouts, which get a longer floor.
    Retry {
        reason: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
        throttled: bool,
        excerpt: String,
    },
    /// Permanent failure: do not retry this message.
    DontRetry {
        reason: String,
        status: Option<u16>,
        excerpt: String,
    },
    /// 410 Gone: disable the endpoint (permanent for every message to it, not just this one).
    Gone {
        excerpt: String,
    },
}

impl SendOutcome {
    /// The HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            SendOutcome::Success { status, .. } => Some(*status),
            SendOutcome::Retry { status, .. } | SendOutcome::DontRetry { status, .. } => *status,
            SendOutcome::Gone { .. } => Some(410),
        }
    }
}

/// Problems on our side that prevent an attempt at all (nothing was sent).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("endpoint has no signing secret")]
    NoSecrets,
    #[error("webhook id must be non-empty and must not contain '.'")]
    InvalidWebhookId,
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("could not encode the payload: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Sends signed webhooks. Holds one pooled HTTP client whose DNS goes through the URL policy.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    config: SenderConfig,
}

impl WebhookSender {
    /// The whole-attempt timeout: the longest one delivery can take.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    pub fn new(config: SenderConfig) -> Result<Self, SendError> {
        let builder = match &config.proxy {
            Some(proxy) => reqwest::Client::builder()
                .proxy(reqwest::Proxy::all(proxy.clone()).map_err(SendError::Client)?),
            None => reqwest::Client::builder().no_proxy(),
        };
        let client = builder
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .dns_resolver(PolicyResolver::new(config.policy))
            .build()
            .map_err(SendError::Client)?;
        Ok(WebhookSender { client, config })
    }

    /// Make one attempt, signed with the current time.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        delivery: &Delivery,
    ) -> Result<SendOutcome, SendError> {
        self.send_at(endpoint, delivery, Utc::now()).await
    }

    /// Make one attempt with an explicit attempt time (tests).
    pub async fn send_at(
        &self,
        endpoint: &Endpoint,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<SendOutcome, SendError> {
        if endpoint.secrets.is_empty() {
            return Err(SendError::NoSecrets);
        }
        if delivery.webhook_id.is_empty() || delivery.webhook_id.contains('.') {
            return Err(SendError::InvalidWebhookId);
        }
        // Literal-IP URLs never reach the resolver, so the policy is applied to them here; names are checked
        // here for a clear outcome and again by the resolver for the addresses actually used.
        if let Err(e) = self.config.policy.resolve(&endpoint.url).await {
            return Ok(policy_outcome(e));
        }
        let event_time = delivery.timestamp.unwrap_or(now);
        let body = serde_json::to_vec(&serde_json::json!({
            "type": delivery.event_type,
            "timestamp": event_time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": delivery.payload,
        }))
        .map_err(SendError::Encode)?;
        let ts = now.timestamp();
        let signature = signature_header(&endpoint.secrets, &delivery.webhook_id, ts, &body);
        let started = Instant::now();
        let result = self
            .client
            .post(endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.webhook_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match result {
            Ok(response) => response,
            Err(e) => return Ok(transport_outcome(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers(), now);
        let excerpt = match read_capped(&mut response, self.config.max_response_bytes).await {
            Ok(bytes) => excerpt(&bytes),
            // The status is what counts; a body cut off by the timeout still leaves a classified answer.
            Err(_) => String::new(),
        };
        Ok(classify(status, retry_after, excerpt, started.elapsed()))
    }
}

/// The one classification of an HTTP answer (see the module doc for the table and the reasons).
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    excerpt: String,
    latency: Duration,
) -> SendOutcome {
    let retry = |reason: String, throttled| SendOutcome::Retry {
        reason,
        status: Some(status),
        retry_after,
        throttled,
        excerpt: excerpt.clone(),
    };
    match status {
        200..=299 => SendOutcome::Success { status, latency },
        410 => SendOutcome::Gone { excerpt },
        429 => retry("rate limited (429)".into(), true),
        408 => retry("request timeout (408)".into(), true),
        400 | 413 | 415 | 422 => SendOutcome::DontRetry {
            reason: format!("payload rejected ({status})"),
            status: Some(status),
            excerpt,
        },
        500..=599 => retry(format!("server error ({status})"), false),
        _ => retry(format!("unexpected status ({status})"), false),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (relative to `now`; a date in the past means "now").
pub fn parse_retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn transport_outcome(e: &reqwest::Error) -> SendOutcome {
    let (reason, throttled) = if e.is_timeout() {
        ("timed out".to_owned(), true)
    } else if e.is_connect() {
        (format!("connection failed: {}", root_cause(e)), false)
    } else {
        (format!("transport error: {}", root_cause(e)), false)
    };
    SendOutcome::Retry {
        reason,
        status: None,
        retry_after: None,
        throttled,
        excerpt: String::new(),
    }
}

fn policy_outcome(e: UrlPolicyError) -> SendOutcome {
    if e.is_retryable() {
        SendOutcome::Retry {
            reason: e.to_string(),
            status: None,
            retry_after: None,
            throttled: false,
            excerpt: String::new(),
        }
    } else {
        SendOutcome::DontRetry {
            reason: format!("URL refused: {e}"),
            status: None,
            excerpt: String::new(),
        }
    }
}

/// The innermost error message (reqwest's own Display is just "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Read at most `cap` bytes of the body; the rest is never read.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while out.len() < cap {
        match response.chunk().await? {
            Some(chunk) => out.extend_from_slice(&chunk[..chunk.len().min(cap - out.len())]),
            None => break,
        }
    }
    Ok(out)
}

/// A short printable excerpt of a response body for the attempt log: at most 200 characters, control
/// characters replaced, so a hostile receiver cannot inject log lines or flood storage.
fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
