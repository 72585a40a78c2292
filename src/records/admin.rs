//! The records routes of the admin API: the gatekeeper on demand and its audit.
//!
//! `POST /admin/v1/records/gatekeeper` takes `{"dry_run": true|false, "as_of": "YYYY-MM-DD"}` (`as_of`
//! optional, default today in UTC; `dry_run` required, so that an empty body never terminates anything) and
//! answers the run's [`Report`]. `GET /admin/v1/records/audit?after=&limit=` lists audit entries oldest first.
//! `ops::admin` mounts them behind the admin token; these functions do the rest.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use super::gatekeeper::{Gatekeeper, Run};
use crate::intake::ApiError;

/// The body of `POST /admin/v1/records/gatekeeper`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatekeeperRequest {
    pub dry_run: bool,
    #[serde(default)]
    pub as_of: Option<String>,
}

/// Runs the gatekeeper for an admin request body.
pub async fn run_gatekeeper(gatekeeper: &Gatekeeper, body: &[u8]) -> Result<Response, ApiError> {
    let request: GatekeeperRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "expected {{\"dry_run\": true|false, \"as_of\": \"YYYY-MM-DD\" (optional)}}: {e}"
        ))
    })?;
    let as_of = match request.as_of.as_deref() {
        None => Utc::now().date_naive(),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::InvalidRequest(format!("`as_of` \"{text}\" is not a date (YYYY-MM-DD)"))
        })?,
    };
    let run = Run {
        dry_run: request.dry_run,
        as_of,
        actor: "gatekeeper:admin".into(),
    };
    let report = gatekeeper
        .run(&run)
        .await
        .map_err(|e| ApiError::unavailable(None, e))?;
    Ok(Json(report).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// Lists audit entries.
pub async fn list_audit(gatekeeper: &Gatekeeper, query: AuditQuery) -> Result<Response, ApiError> {
    let after = match query.after {
        Some(a) => Some(
            a.parse::<uuid::Uuid>()
                .map_err(|_| ApiError::InvalidRequest("`after` is not an audit entry id".into()))?,
        ),
        None => None,
    };
    let entries = gatekeeper
        .audit()
        .list(after, query.limit.unwrap_or(100).clamp(1, 1000))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "entries": entries })).into_response())
}
