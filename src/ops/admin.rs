//! Outbox administration over HTTP for bureau admins: list, show (with the attempt log), retry, discard.
//!
//! Authenticated with the `[admin] token` bearer secret (at least 32 bytes, checked by `check-config`;
//! `Bearer` matched case-insensitively as RFC 6750 says), compared in constant time. Served only on the admin
//! listener (`[admin] listen`, loopback by default), never on the bank listener, and rate-limited as a whole
//! (`[admin] rate_per_second`, failed attempts included) so a token cannot be guessed at line rate. The
//! `creditlink outbox` CLI is a thin client of these routes, because sled lets only one process (the daemon)
//! open the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::intake::{ApiError, BearerToken, query_of};
use crate::outbox::{ListFilter, MessageId, Outbox, OutboxError, State as MsgState};
use crate::records::Gatekeeper;
use crate::relay::bank::BankPusher;

#[derive(Clone)]
struct AdminState {
    outbox: Outbox,
    /// Bank webhook endpoints (state, re-enable after a 410 or continuous failure).
    banks: BankPusher,
    token_digest: Arc<[u8; 32]>,
    /// Codes of the configured banks: any other endpoint code is 404.
    codes: Arc<HashSet<String>>,
    limiter: Arc<RateLimiter>,
    gatekeeper: Option<Gatekeeper>,
}

/// What the admin routes need besides the outbox and the bank pusher.
pub struct AdminSettings<'a> {
    pub token: &'a SecretString,
    /// `[[banks]] code`s.
    pub bank_codes: HashSet<String>,
    pub rate_per_second: u32,
    /// The stale-record gatekeeper (`/admin/v1/records/...`); `None` = those routes answer 404.
    pub gatekeeper: Option<Gatekeeper>,
}

/// The `/admin/v1/outbox...` and `/admin/v1/endpoints/...` routes.
pub fn router(outbox: Outbox, banks: BankPusher, settings: AdminSettings<'_>) -> Router {
    let token_digest = Arc::new(Sha256::digest(settings.token.expose_secret().as_bytes()).into());
    Router::new()
        .route("/admin/v1/outbox", get(list))
        .route("/admin/v1/outbox/{id}", get(show))
        .route("/admin/v1/outbox/{id}/retry", post(retry))
        .route("/admin/v1/outbox/{id}/discard", post(discard))
        .route("/admin/v1/endpoints/{code}", get(endpoint))
        .route("/admin/v1/endpoints/{code}/enable", post(enable_endpoint))
        .route("/admin/v1/records/gatekeeper", post(run_gatekeeper))
        .route("/admin/v1/records/audit", get(records_audit))
        .method_not_allowed_fallback(crate::intake::api::method_not_allowed)
        .with_state(AdminState {
            outbox,
            banks,
            token_digest,
            codes: Arc::new(settings.bank_codes),
            limiter: Arc::new(RateLimiter::new(settings.rate_per_second)),
            gatekeeper: settings.gatekeeper,
        })
}

/// A token bucket over all admin requests: `rate` per second, bursts of `2 × rate`.
struct RateLimiter {
    rate: f64,
    state: parking_lot::Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        RateLimiter {
            rate,
            state: parking_lot::Mutex::new((2.0 * rate, Instant::now())),
        }
    }

    /// Takes one token, or says how long until one is available.
    fn take(&self) -> Result<(), Duration> {
        let mut state = self.state.lock();
        let (tokens, at) = &mut *state;
        let now = Instant::now();
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(2.0 * self.rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate).max(Duration::from_secs(1)))
        }
    }
}

/// 404 for a code no `[[banks]]` entry has (the same answer as for any unknown resource).
fn known_code(state: &AdminState, code: &str) -> Result<(), ApiError> {
    if state.codes.contains(code) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

async fn endpoint(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    known_code(&s, &code)?;
    let state = s
        .banks
        .endpoint_state(&code)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "bank": code, "endpoint": state })).into_response())
}

async fn enable_endpoint(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    known_code(&s, &code)?;
    let was_disabled = s
        .banks
        .enable_endpoint(&code)
        .await
        .map_err(|e| ApiError::unavailable(None, e))?;
    Ok(Json(json!({ "bank": code, "was_disabled": was_disabled })).into_response())
}

async fn run_gatekeeper(
    State(s): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let gatekeeper = s.gatekeeper.as_ref().ok_or(ApiError::NotFound)?;
    crate::records::admin::run_gatekeeper(gatekeeper, &body).await
}

async fn records_audit(
    State(s): State<AdminState>,
    headers: HeaderMap,
    query: Result<Query<crate::records::admin::AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let q = query_of(query)?;
    let gatekeeper = s.gatekeeper.as_ref().ok_or(ApiError::NotFound)?;
    crate::records::admin::list_audit(gatekeeper, q).await
}

/// Rate limit first (so failed attempts count), then compares SHA-256 digests of the presented and configured
/// tokens: equal-length inputs, and the digest hides the token length from timing.
fn authorize(state: &AdminState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Err(retry_after) = state.limiter.take() {
        metrics::counter!(crate::ops::metrics::ADMIN_RATE_LIMITED_TOTAL).increment(1);
        return Err(ApiError::RateLimited { retry_after });
    }
    let presented = BearerToken::from_headers(headers)?;
    let digest: [u8; 32] = Sha256::digest(presented.0.expose_secret().as_bytes()).into();
    let diff = digest
        .iter()
        .zip(state.token_digest.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(ApiError::TokenRejected {
            reason: "admin: wrong token".into(),
        })
    }
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<MsgState>,
    tenant: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(s): State<AdminState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let q = query_of(query)?;
    let after = match q.after {
        Some(a) => Some(
            a.parse::<MessageId>()
                .map_err(|_| ApiError::InvalidRequest("`after` is not a message id".into()))?,
        ),
        None => None,
    };
    let filter = ListFilter {
        tenant: q.tenant,
        state: q.state,
        lane: None,
        limit: q.limit.unwrap_or(100).min(1000),
        after,
    };
    let messages = s.outbox.list(&filter).await.map_err(internal)?;
    let counts = s.outbox.counts().await.map_err(internal)?;
    Ok(Json(json!({ "counts": counts, "messages": messages })).into_response())
}

async fn show(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let id = parse_id(&id)?;
    let message = s
        .outbox
        .get(id)
        .await
        .map_err(internal)?
        .ok_or(ApiError::NotFound)?;
    let attempts = s.outbox.attempts(id).await.map_err(internal)?;
    Ok(Json(json!({ "message": message, "attempts": attempts })).into_response())
}

async fn retry(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let message = s.outbox.retry(parse_id(&id)?).await.map_err(admin_error)?;
    tracing::info!(message_id = %message.id, "admin: message queued again");
    Ok(Json(json!({ "message": message })).into_response())
}

async fn discard(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let message = s
        .outbox
        .discard(parse_id(&id)?)
        .await
        .map_err(admin_error)?;
    tracing::info!(message_id = %message.id, "admin: message discarded");
    Ok(Json(json!({ "message": message })).into_response())
}

fn parse_id(id: &str) -> Result<MessageId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

fn internal(e: OutboxError) -> ApiError {
    ApiError::internal(e)
}

fn admin_error(e: OutboxError) -> ApiError {
    match e {
        OutboxError::NotFound(_) => ApiError::NotFound,
        OutboxError::WrongState { .. } | OutboxError::PayloadErased(_) => {
            ApiError::InvalidRequest(e.to_string())
        }
        other => ApiError::internal(other),
    }
}
