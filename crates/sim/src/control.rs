//! The `/__sim/` control surface for tests: stored records, call statistics, faults, reset, and record edits
//! made as a bureau user (how a test plays the bureau's staff working a request).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::ApiError;
use super::faults::{Faults, FaultsUpdate};
use super::org::Org;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/__sim/records/{object}", get(records))
        .route("/__sim/records/{object}/{id}", patch(edit_record))
        .route("/__sim/stats", get(stats))
        .route(
            "/__sim/faults",
            put(set_faults).delete(clear_faults).get(get_faults),
        )
        .route("/__sim/reset", post(reset))
        .merge(super::automation::routes())
}

/// Every stored record of an object, blob fields shown as their download URL.
pub fn stored_records(st: &AppState, object: &str) -> Vec<Map<String, Value>> {
    let org = st.org.read();
    let Some(schema) = org.schema(object) else {
        return Vec::new();
    };
    let version = format!("{:.1}", super::gate::MAX_VERSION);
    org.all(&schema.name)
        .map(|r| org.render(schema, r, &version))
        .collect()
}

async fn records(State(st): State<AppState>, Path(object): Path<String>) -> Response {
    if st.org.read().schema(&object).is_none() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "INVALID_TYPE",
            format!("sObject type '{object}' is not supported."),
        )
        .into_response();
    }
    Json(stored_records(&st, &object)).into_response()
}

#[derive(Deserialize)]
struct Edit {
    fields: Map<String, Value>,
    /// Username to act as; the seed's bureau staff user by default.
    #[serde(default)]
    as_user: Option<String>,
}

async fn edit_record(
    State(st): State<AppState>,
    Path((object, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let edit: Edit = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("JSON_PARSER_ERROR", e.to_string()))?;
    let username = edit.as_user.unwrap_or_else(|| st.seed.bureau_user.clone());
    let user = st
        .seed
        .users
        .iter()
        .find(|u| u.username.eq_ignore_ascii_case(&username))
        .ok_or_else(|| {
            ApiError::bad_request("INVALID_USER", format!("no such user: {username}"))
        })?;
    let mut org = st.org.write();
    let id = org.update(&object, &id, &edit.fields, &user.id, chrono::Utc::now())?;
    let schema = org.schema_or_invalid(&object)?;
    let rec = org.get(&schema.name, &id)?;
    Ok(Json(Value::Object(org.render(schema, rec, "66.0"))).into_response())
}

async fn stats(State(st): State<AppState>) -> Json<Value> {
    Json(st.stats.lock().json())
}

async fn set_faults(State(st): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let update: FaultsUpdate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("JSON_PARSER_ERROR", e.to_string()))?;
    if update.expire_tokens == Some(true) {
        st.tokens.lock().expire_all();
    }
    let mut faults = st.faults.lock();
    faults.apply(&update);
    Ok(Json(faults_json(&faults)))
}

async fn clear_faults(State(st): State<AppState>) -> Json<Value> {
    let mut faults = st.faults.lock();
    *faults = Faults::default();
    Json(faults_json(&faults))
}

async fn get_faults(State(st): State<AppState>) -> Json<Value> {
    Json(faults_json(&st.faults.lock()))
}

fn faults_json(f: &Faults) -> Value {
    let errors: Vec<&str> = f.errors.iter().map(|k| k.record_error().code).collect();
    json!({
        "error_rate": f.error_rate, "errors": errors,
        "latency_ms": f.latency_ms.map(|(a, b)| [a, b]), "outage": f.outage,
        "daily_api_limit": f.daily_api_limit,
    })
}

/// Back to the seed: records, faults, counters, query cursors and Bulk API jobs. Issued tokens stay valid so a running
/// daemon is not logged out by a test resetting data.
async fn reset(State(st): State<AppState>) -> Result<StatusCode, ApiError> {
    let org = Org::from_seed(&st.seed, chrono::Utc::now()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
    })?;
    *st.org.write() = org;
    *st.faults.lock() = Faults::default();
    *st.stats.lock() = Default::default();
    *st.cursors.lock() = Default::default();
    *st.bulk.lock() = Default::default();
    Ok(StatusCode::NO_CONTENT)
}
