//! The report-request endpoints: the request path of the module doc, wired to mappings, outbox and auth.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_LOCATION, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use tokio::sync::Notify;

use super::auth::{Authenticated, Authenticator, Principal};
use super::body::{BodyFormat, BodyPolicy, RawBody};
use super::error::ApiError;
use super::headers::{BearerToken, IdempotencyKey, Prefer};
use super::problem::FieldError;
use super::quota::BankQuota;
use crate::inbound::InboundState;
use crate::lifecycle::{self, Lifecycle};
use crate::mapping::{FieldProblem, MapContext, MappingSet};
use crate::ops::metrics as m;
use crate::outbox::{
    Destination, Enqueued, Lane, Message, MessageId, NewMessage, Outbox, State as MsgState,
};
use crate::vault::{Actor, Vault, VaultError};

pub use crate::lifecycle::REPORT_REQUEST_KIND;

/// Everything the bank API handlers share.
#[derive(Clone)]
pub struct IntakeState {
    pub outbox: Outbox,
    /// Swapped whole on SIGHUP; a request maps with the set it loaded at its start.
    pub mappings: Arc<ArcSwap<MappingSet>>,
    pub auth: Authenticator,
    /// Wakes the Salesforce pusher as soon as a request is durable.
    pub pusher_wakeup: Arc<Notify>,
    pub max_prefer_wait: Duration,
    /// Base of the `status_url` links, e.g. `https://creditlink.bureau.example`.
    pub public_url: String,
    /// Where finished report PDFs are kept, encrypted; `None` when report delivery is not configured.
    pub vault: Option<Arc<Vault>>,
    /// `[server] bank_quota_per_hour`; `None` = no quota.
    pub quota: Option<Arc<BankQuota>>,
    /// The bureau's side of each request's lifecycle, as the mirror last told the bank (`None` without
    /// `[inbound]`: then requests stay `submitted` once in Salesforce).
    pub views: Option<InboundState>,
}

/// `/api/v1/...` routes of the bank API.
pub fn router(state: IntakeState) -> Router {
    Router::new()
        .route(
            "/api/v1/report-requests",
            axum::routing::post(create_report_request),
        )
        .route("/api/v1/report-requests/{id}", get(get_report_request))
        .route("/api/v1/report-requests/{id}/report", get(get_report))
        .route(
            "/api/v1/openapi.json",
            get(|| async { Json(super::openapi_json()) }),
        )
        // axum adds `Allow`; the body is a problem document like every other 4xx.
        .method_not_allowed_fallback(method_not_allowed)
        // Any path no router serves: a problem document too (this router is the daemon's only fallback).
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}

/// The 405 of every bank API and admin route (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed { allow: None }
}

async fn create_report_request(
    State(state): State<IntakeState>,
    Authenticated(principal): Authenticated,
    key: Option<IdempotencyKey>,
    prefer: Prefer,
    body: RawBody,
) -> Result<Response, ApiError> {
    accept_counted(&state, principal, key, &prefer, body).await
}

/// Accepts one report request of `principal`'s bank, counted in the intake metrics: the bank API's `POST`
/// and the dashboard widget's (which authenticates the bank representative its own way) share it.
pub(crate) async fn accept_counted(
    state: &IntakeState,
    principal: Principal,
    key: Option<IdempotencyKey>,
    prefer: &Prefer,
    body: RawBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = accept(state, principal, key, prefer, body).await;
    let outcome = match &result {
        Ok(_) => "accepted",
        Err(ApiError::Validation(_)) => "invalid",
        Err(ApiError::Unavailable { .. } | ApiError::Internal(_)) => "error",
        Err(_) => "refused",
    };
    metrics::counter!(m::INTAKE_REQUESTS_TOTAL, "kind" => REPORT_REQUEST_KIND, "outcome" => outcome).increment(1);
    metrics::histogram!(m::INTAKE_DURATION, "kind" => REPORT_REQUEST_KIND)
        .record(started.elapsed().as_secs_f64());
    result
}

async fn accept(
    state: &IntakeState,
    principal: Principal,
    key: Option<IdempotencyKey>,
    prefer: &Prefer,
    body: RawBody,
) -> Result<Response, ApiError> {
    if let Some(quota) = &state.quota {
        quota
            .take(&principal.bank_code, Instant::now())
            .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    }
    let mappings = state.mappings.load_full();
    let policy = BodyPolicy {
        xml_root: mappings
            .accepts_xml(REPORT_REQUEST_KIND, Some(&principal.bank_code))
            .map(str::to_owned),
        ..BodyPolicy::default()
    };
    let parsed = body.parse_off_thread(policy).await?;
    if parsed.format == BodyFormat::Json
        && !mappings.accepts_json(REPORT_REQUEST_KIND, Some(&principal.bank_code))
    {
        return Err(ApiError::InvalidRequest(
            "This bank's mapping accepts XML bodies only.".into(),
        ));
    }

    let id = MessageId::new();
    let request_key = id.to_string();
    let ctx = MapContext {
        request_key: &request_key,
        bank_account_id: &principal.account_id,
        bank_code: Some(&principal.bank_code),
        received_at: Utc::now(),
        lenient_scalars: parsed.format == BodyFormat::Xml,
    };
    let record = mappings
        .map_inbound(REPORT_REQUEST_KIND, &parsed.value, &ctx)
        .map_err(|problems| ApiError::Validation(problems.iter().map(field_error).collect()))?;
    let new = NewMessage {
        tenant: principal.account_id.clone(),
        lane: Lane::Interactive,
        destination: Destination::Salesforce {
            object: record.object.clone(),
            ext_field: record.upsert_key.clone(),
            ext_value: record.upsert_value.clone(),
        },
        payload: serde_json::Value::Object(record.fields),
        mapping_version: Some(record.mapping_version),
    };

    // The durability rule: nothing is acknowledged before this write is durable, which the outbox
    // guarantees when it returns. A replay's answer is durable too (the first request's write may have
    // been in flight).
    let outbox = &state.outbox;
    let wait = prefer.wait(state.max_prefer_wait);
    let message = crate::outbox::fresh(id, new, Utc::now());
    // A fresh 202 answers with the message as queued (what the store will hold), built before it moves
    // into the queue, so it is neither copied nor read back: the status document needs nothing the
    // write does not already know.
    let queued = if wait.is_zero() {
        Some(status_body(state, &message, &principal.bank_code).await)
    } else {
        None
    };
    let enqueued = match &key {
        Some(key) => outbox
            .insert_fresh_idempotent(message, &principal.account_id, key.as_str(), parsed.sha256)
            .await
            .map_err(store_error)?,
        None => {
            outbox.insert_fresh(message).await.map_err(store_error)?;
            Enqueued::Created(id)
        }
    };
    if let Enqueued::Existing {
        same_body: false, ..
    } = enqueued
    {
        return Err(ApiError::IdempotencyKeyReused);
    }
    state.pusher_wakeup.notify_one();

    let id = enqueued.id();
    let replayed = matches!(enqueued, Enqueued::Existing { .. });
    let waited = if wait > Duration::ZERO {
        state
            .outbox
            .wait_terminal(id, wait)
            .await
            .map_err(ApiError::internal)?
    } else {
        None
    };
    let (message, doc) = match (waited, queued) {
        (Some(m), _) => {
            let doc = status_body(state, &m, &principal.bank_code).await;
            (m, doc)
        }
        (None, Some(doc)) if !replayed => return Ok(answer(state, id, doc, false, prefer, false)),
        (None, _) => {
            let m = state
                .outbox
                .get(id)
                .await
                .map_err(ApiError::internal)?
                .ok_or(ApiError::NotFound)?;
            let doc = status_body(state, &m, &principal.bank_code).await;
            (m, doc)
        }
    };
    // 201 only when the client asked to wait for the outcome (RFC 7240); otherwise always the asynchronous
    // 202, even if the pusher happened to be faster than this answer, so integrators see one contract.
    let created = wait > Duration::ZERO && message.state == MsgState::Delivered;
    Ok(answer(state, message.id, doc, created, prefer, replayed))
}

/// The answer to an accepted report request: `doc` (its status document) as 201 with `Content-Location`
/// when it was `created` within the client's wait, else 202 with `Location`; `Preference-Applied` and
/// `Idempotent-Replayed` as they apply.
fn answer(
    state: &IntakeState,
    id: MessageId,
    doc: serde_json::Value,
    created: bool,
    prefer: &Prefer,
    replayed: bool,
) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = (status, Json(doc)).into_response();
    let headers = response.headers_mut();
    let url = status_url(state, &id);
    if let Ok(v) = HeaderValue::from_str(&url) {
        headers.insert(if created { CONTENT_LOCATION } else { LOCATION }, v.clone());
        if created {
            headers.insert(LOCATION, v);
        }
    }
    if let Some(applied) = prefer.applied(state.max_prefer_wait, !created) {
        headers.insert("preference-applied", applied);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

async fn get_report_request(
    State(state): State<IntakeState>,
    token: BearerToken,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = state.auth.authenticate(&token).await?;
    let message = owned_message(&state, &principal, &id).await?;
    Ok(Json(status_body(&state, &message, &principal.bank_code).await).into_response())
}

/// The finished PDF, decrypted from the vault for the owning bank only, with its SHA-256 as `ETag` and
/// `Repr-Digest`. Every access (granted or not) is in the vault's audit log. Another bank's id and an unknown
/// id answer the same 404; a request without a report (not completed yet, rejected, failed) answers 409 with
/// its status and the bureau's reason.
async fn get_report(
    State(state): State<IntakeState>,
    token: BearerToken,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let principal = state.auth.authenticate(&token).await?;
    let message = owned_message(&state, &principal, &id).await?;
    let actor = Actor::Bank(principal.account_id.clone());
    report_response(&state, &message, &principal.bank_code, actor, &headers).await
}

/// The report PDF of `message` (already checked to be the caller's) as a download, read from the vault as
/// `actor` (audited); 409 when the request has no report. Shared by the bank API and the dashboard.
pub(crate) async fn report_response(
    state: &IntakeState,
    message: &Message,
    bank_code: &str,
    actor: Actor,
    headers: &axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let doc = status_body(state, message, bank_code).await;
    let status = doc["status"].as_str().unwrap_or_default();
    if status != Lifecycle::Completed.as_str() {
        return Err(ApiError::ReportNotAvailable {
            status: status.to_owned(),
            reason: doc["reason"].as_str().map(str::to_owned),
        });
    }
    let vault = state.vault.clone().ok_or(ApiError::NotFound)?;
    let report_id = message.id.to_string();
    let read = tokio::task::spawn_blocking(move || vault.get(&actor, &report_id))
        .await
        .map_err(ApiError::internal)?;
    let (pdf, stored) = match read {
        Ok(found) => found,
        Err(VaultError::NotFound(_)) => return Err(ApiError::NotFound),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let etag = format!("\"{}\"", stored.sha256_hex);
    if headers
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let digest = hex::decode(&stored.sha256_hex).map(|d| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(d)
    });
    let mut response = (StatusCode::OK, pdf).into_response();
    let h = response.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(axum::http::header::ETAG, v);
    }
    if let Ok(Ok(v)) = digest.map(|d| HeaderValue::from_str(&format!("sha-256=:{d}:"))) {
        h.insert("repr-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"credit-report-{}.pdf\"",
        message.id
    )) {
        h.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// The message `id` if it exists, is a report request (its destination is the report-request object in
/// Salesforce: bank events and e-mails share the outbox and the lane, and their ids are the `webhook-id`s
/// banks receive), and belongs to the caller's bank; otherwise the same 404 in every case, so ids of other
/// banks cannot be probed.
async fn owned_message(
    state: &IntakeState,
    principal: &Principal,
    id: &str,
) -> Result<Message, ApiError> {
    let id: MessageId = id.parse().map_err(|_| ApiError::RequestNotFound)?;
    let object = state
        .mappings
        .load()
        .object(REPORT_REQUEST_KIND, Some(&principal.bank_code))
        .map(str::to_owned);
    match state.outbox.get(id).await.map_err(ApiError::internal)? {
        Some(m)
            if m.tenant == principal.account_id
                && lifecycle::is_report_request(&m, object.as_deref()) =>
        {
            Ok(m)
        }
        _ => Err(ApiError::RequestNotFound),
    }
}

fn status_url(state: &IntakeState, id: &MessageId) -> String {
    format!(
        "{}/api/v1/report-requests/{id}",
        state.public_url.trim_end_matches('/')
    )
}

/// The status document of a report request (the OpenAPI `ReportRequestStatus`; see `crate::lifecycle`).
pub(crate) async fn status_body(
    state: &IntakeState,
    message: &Message,
    bank_code: &str,
) -> serde_json::Value {
    let mirrored = match &state.views {
        Some(views) if message.state == MsgState::Delivered => views
            .view(&message.id.to_string())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "request view unreadable; showing the delivery state");
                None
            }),
        _ => None,
    };
    let mappings = state.mappings.load();
    lifecycle::status_document(
        message,
        mirrored,
        &mappings,
        Some(bank_code),
        &status_url(state, &message.id),
    )
}

/// A mapping problem as a problem-document field error: the bank's dotted path becomes a JSON Pointer.
fn field_error(p: &FieldProblem) -> FieldError {
    let pointer = if p.field.is_empty() {
        String::new()
    } else {
        format!(
            "/{}",
            p.field
                .replace('~', "~0")
                .replace('/', "~1")
                .replace('.', "/")
        )
    };
    FieldError::new(pointer, p.code, p.detail.clone())
}

/// Runs a sled transaction off the async workers (it may block on I/O).
/// A store failure while queueing is 503 (try again shortly: nothing was acknowledged); anything else 500.
fn store_error(e: crate::outbox::OutboxError) -> ApiError {
    match e {
        crate::outbox::OutboxError::Store(_) => {
            ApiError::unavailable(Some(Duration::from_secs(1)), e)
        }
        other => ApiError::internal(other),
    }
}
