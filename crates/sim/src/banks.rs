//! Demo bank webhook receivers for the sandbox and tests: what a well-behaved bank runs.
//!
//! `POST /hooks/{bank}` verifies the Standard Webhooks signature with that bank's secret
//! ([`creditlink_signing::verify`], 5-minute tolerance), dedupes on `webhook-id` (a retry of an event already
//! accepted is answered 200 and counted, not stored twice) and keeps what it accepted. An operator or a
//! test simulates an outage with `PUT /hooks/{bank}/behaviour {"status": 500}` (optionally
//! `"retry_after": <seconds>`); `{"status": 200}` restores it. `GET /hooks/{bank}` lists the events with
//! the counters; `GET /mail` lists what the local SMTP sink received, when one is attached.
//! `GET /intranet/{bank}` serves a page the caller set with [`BankReceivers::set_page`]: in the sandbox, a
//! bank's demo intranet page embedding creditlink's request widget from another origin than the daemon's.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::smtp::SmtpSink;
use creditlink_signing::{WebhookSecret, verify};

/// Timestamp tolerance of the receivers, as in every reference library.
const TOLERANCE_SECS: i64 = 300;

/// One accepted event.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedEvent {
    pub webhook_id: String,
    /// The body's `type`, `timestamp` and `data`.
    pub body: serde_json::Value,
    pub verified: bool,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// What `GET /hooks/{bank}` answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BankInbox {
    pub events: Vec<ReceivedEvent>,
    /// Requests answered with the configured failure status (outage simulation).
    pub refused: u64,
    /// Requests whose signature did not verify (answered 401, not stored).
    pub rejected_signatures: u64,
    /// Retries of an already accepted `webhook-id` (answered 200, not stored again).
    pub duplicate_deliveries: u64,
}

/// How a receiver answers: `status` other than 2xx simulates an outage; `retry_after` is sent with it.
/// With `process`, the event is verified and stored first and the failure status is answered anyway: a
/// receiver that crashed after committing, so the sender retries an event the bank already has.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Behaviour {
    pub status: u16,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub process: bool,
}

impl Behaviour {
    /// An outage: every request is answered `status` and nothing is stored.
    pub fn failing(status: u16) -> Self {
        Behaviour {
            status,
            ..Behaviour::ok()
        }
    }

    /// Healthy: verify, dedupe, store, answer 200.
    pub fn ok() -> Self {
        Behaviour {
            status: 200,
            retry_after: None,
            process: false,
        }
    }
}

/// The running receivers. Cheap to clone.
#[derive(Clone)]
pub struct BankReceivers {
    /// `http://127.0.0.1:<port>`; a bank's URL is `{base_url}/hooks/{slug}`.
    pub base_url: url::Url,
    state: Arc<Shared>,
}

struct Shared {
    banks: HashMap<String, Mutex<Bank>>,
    mail: Option<SmtpSink>,
    pages: Mutex<HashMap<String, String>>,
}

struct Bank {
    secret: WebhookSecret,
    behaviour: Behaviour,
    seen: HashSet<String>,
    inbox: BankInbox,
}

impl BankReceivers {
    /// The webhook URL of bank `slug`.
    pub fn url_for(&self, slug: &str) -> url::Url {
        self.base_url
            .join(&format!("hooks/{slug}"))
            .unwrap_or_else(|_| self.base_url.clone())
    }

    /// What bank `slug` received (`None` for an unknown slug).
    pub fn inbox(&self, slug: &str) -> Option<BankInbox> {
        Some(self.state.banks.get(slug)?.lock().inbox.clone())
    }

    /// Serves `html` at `GET /intranet/{slug}`; returns the page's URL.
    pub fn set_page(&self, slug: &str, html: String) -> url::Url {
        self.state.pages.lock().insert(slug.to_owned(), html);
        self.base_url
            .join(&format!("intranet/{slug}"))
            .unwrap_or_else(|_| self.base_url.clone())
    }

    /// Sets how bank `slug` answers; returns false for an unknown slug.
    pub fn set_behaviour(&self, slug: &str, behaviour: Behaviour) -> bool {
        match self.state.banks.get(slug) {
            Some(bank) => {
                bank.lock().behaviour = behaviour;
                true
            }
            None => false,
        }
    }
}

/// Starts receivers for `banks` (`(slug, secret)`) on `listen`, until `shutdown`.
pub async fn spawn_bank_receivers(
    listen: SocketAddr,
    banks: Vec<(String, WebhookSecret)>,
    shutdown: CancellationToken,
) -> std::io::Result<BankReceivers> {
    spawn_bank_receivers_with_mail(listen, banks, None, shutdown).await
}

/// [`spawn_bank_receivers`] that also serves `GET /mail` from an SMTP sink.
pub async fn spawn_bank_receivers_with_mail(
    listen: SocketAddr,
    banks: Vec<(String, WebhookSecret)>,
    mail: Option<SmtpSink>,
    shutdown: CancellationToken,
) -> std::io::Result<BankReceivers> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(Shared {
        banks: banks
            .into_iter()
            .map(|(slug, secret)| {
                let bank = Bank {
                    secret,
                    behaviour: Behaviour::ok(),
                    seen: HashSet::new(),
                    inbox: BankInbox::default(),
                };
                (slug, Mutex::new(bank))
            })
            .collect(),
        mail,
        pages: Mutex::default(),
    });
    let app = Router::new()
        .route("/hooks/{bank}", post(receive).get(list))
        .route("/hooks/{bank}/behaviour", put(behaviour))
        .route("/mail", get(mail_list))
        .route("/intranet/{bank}", get(page))
        .with_state(state.clone());
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "bank receivers stopped");
        }
    });
    let base_url = url::Url::parse(&format!("http://{addr}/"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok(BankReceivers { base_url, state })
}

async fn page(State(state): State<Arc<Shared>>, Path(slug): Path<String>) -> Response {
    match state.pages.lock().get(&slug) {
        Some(html) => (
            [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn receive(
    State(state): State<Arc<Shared>>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(bank) = state.banks.get(&slug) else {
        return (StatusCode::NOT_FOUND, "no such bank").into_response();
    };
    let mut bank = bank.lock();
    let behaviour = bank.behaviour;
    let failing = !(200..300).contains(&behaviour.status);
    let simulated = || {
        let status = StatusCode::from_u16(behaviour.status).unwrap_or(StatusCode::BAD_GATEWAY);
        match behaviour.retry_after {
            Some(secs) => {
                (status, [("retry-after", secs.to_string())], "simulated").into_response()
            }
            None => (status, "simulated").into_response(),
        }
    };
    if failing {
        bank.inbox.refused += 1;
        if !behaviour.process {
            return simulated();
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let now = chrono::Utc::now();
    let verified = verify(
        std::slice::from_ref(&bank.secret),
        &id,
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        now.timestamp(),
        TOLERANCE_SECS,
    );
    if verified.is_err() {
        bank.inbox.rejected_signatures += 1;
        return (StatusCode::UNAUTHORIZED, "signature does not verify").into_response();
    }
    if !bank.seen.insert(id.clone()) {
        bank.inbox.duplicate_deliveries += 1;
        if failing {
            return simulated();
        }
        return (StatusCode::OK, "duplicate").into_response();
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    bank.inbox.events.push(ReceivedEvent {
        webhook_id: id,
        body,
        verified: true,
        received_at: now,
    });
    if failing {
        return simulated();
    }
    (StatusCode::OK, "ok").into_response()
}

async fn list(State(state): State<Arc<Shared>>, Path(slug): Path<String>) -> Response {
    match state.banks.get(&slug) {
        Some(bank) => axum::Json(bank.lock().inbox.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such bank").into_response(),
    }
}

async fn behaviour(
    State(state): State<Arc<Shared>>,
    Path(slug): Path<String>,
    axum::Json(behaviour): axum::Json<Behaviour>,
) -> Response {
    if !(100..=599).contains(&behaviour.status) {
        return (StatusCode::UNPROCESSABLE_ENTITY, "status must be 100-599").into_response();
    }
    match state.banks.get(&slug) {
        Some(bank) => {
            bank.lock().behaviour = behaviour;
            StatusCode::NO_CONTENT.into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such bank").into_response(),
    }
}

async fn mail_list(State(state): State<Arc<Shared>>) -> Response {
    match &state.mail {
        Some(sink) => axum::Json(sink.mails()).into_response(),
        None => (StatusCode::NOT_FOUND, "no SMTP sink attached").into_response(),
    }
}
