//! What wraps every call: the outage switch (all paths but `/__sim/`), and for REST calls the API version
//! check, authentication, the daily limit, call counting, injected latency and errors, and the
//! `Sforce-Limit-Info` header.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::faults::FaultKind;
use super::{limits, oauth};

/// Oldest and newest API versions served (sObject Collections need 42.0).
pub const MIN_VERSION: f64 = 42.0;
pub const MAX_VERSION: f64 = 66.0;

/// The request's API version without the `v`, e.g. `"62.0"`.
#[derive(Debug, Clone)]
pub struct ApiVersion(pub String);

impl ApiVersion {
    pub fn number(&self) -> f64 {
        self.0.parse().unwrap_or(MAX_VERSION)
    }
}

/// A fault the handler itself must report, because collections report it per record.
#[derive(Debug, Clone, Copy)]
pub struct InjectedFault(pub FaultKind);

pub async fn outage(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/__sim") && st.faults.lock().outage {
        return FaultKind::ServerUnavailable.api_error().into_response();
    }
    next.run(req).await
}

pub async fn rest(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(version) = version_of(req.uri().path()) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
        .into_response();
    };
    let headers = req.headers();
    if oauth::bearer_token(headers).is_none() {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTH_HEADER",
            "INVALID_HEADER_TYPE",
        )
        .into_response();
    }
    let Some(session) = oauth::bearer_session(&st, headers, None) else {
        return ApiError::session_invalid().into_response();
    };

    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| format!("{} {}", req.method(), m.as_str()))
        .unwrap_or_else(|| format!("{} {}", req.method(), req.uri().path()));
    let (fault, latency, max) = {
        let faults = st.faults.lock();
        let max = faults.daily_api_limit.unwrap_or(st.opts.daily_api_limit);
        (faults.draw_error(), faults.draw_latency(), max)
    };
    let used = {
        let mut stats = st.stats.lock();
        if stats.api_calls_total >= max {
            let mut resp = ApiError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )
            .into_response();
            set_limit_header(&mut resp, stats.api_calls_total, max);
            return resp;
        }
        stats.count(route)
    };
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }

    let is_collection = req.uri().path().contains("/composite/sobjects");
    let mut resp = match fault {
        Some(FaultKind::UnableToLockRow) if is_collection => {
            req.extensions_mut()
                .insert(InjectedFault(FaultKind::UnableToLockRow));
            req.extensions_mut().insert(session);
            req.extensions_mut().insert(version);
            next.run(req).await
        }
        Some(kind) => kind.api_error().into_response(),
        None => {
            req.extensions_mut().insert(session);
            req.extensions_mut().insert(version);
            next.run(req).await
        }
    };
    set_limit_header(&mut resp, used, max);
    resp
}

fn set_limit_header(resp: &mut Response, used: u64, max: u64) {
    if let Ok(v) = HeaderValue::from_str(&limits::header_value(used, max)) {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
}

/// `/services/data/v62.0/...` → `62.0`, when within the served range.
fn version_of(path: &str) -> Option<ApiVersion> {
    let rest = path.strip_prefix("/services/data/v")?;
    let v = rest.split('/').next()?;
    let (major, minor) = v.split_once('.')?;
    if major.is_empty() || minor != "0" || !major.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: f64 = v.parse().ok()?;
    (MIN_VERSION..=MAX_VERSION)
        .contains(&n)
        .then(|| ApiVersion(v.to_string()))
}
