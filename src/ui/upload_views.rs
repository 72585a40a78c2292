//! The uploads views' handlers: a bank representative's upload history (filters, paging, CSV export), an
//! upload's row verdicts and its `errors.csv`. Every read goes through `uploads` with the session's scope.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::UiError;
use super::history::query_value;
use super::upload_pages::{self, UploadDetail, UploadsView};
use super::uploads::{self, UploadFilter};
use super::views::{bank_choices, page_of, scope, session};
use super::{UiState, csv};
use crate::feeds::Outcome;
use crate::lifecycle::timestamp;

/// Row verdicts per page of an upload's view.
const VERDICTS_PER_PAGE: usize = 100;

/// The CSV export's header row.
const COLUMNS: [&str; 14] = [
    "id",
    "bank",
    "name",
    "status",
    "received_at",
    "completed_at",
    "rows",
    "accepted",
    "updated",
    "unchanged",
    "duplicate",
    "rejected",
    "warnings",
    "reinstated",
];

pub async fn list(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let session = session(&state, &headers)?;
    let scope = scope(&session);
    let filter = UploadFilter::from_query(&q)?;
    let (rows, truncated) = uploads::rows(&state, &scope, &filter).await?;
    let (shown, page, pages) = page_of(&rows, &q, state.settings.page_size);
    let banks = bank_choices(&state, &scope);
    let view = UploadsView {
        filter: &filter,
        rows: &shown,
        page,
        pages,
        total: rows.len(),
        truncated,
        banks,
    };
    Ok(upload_pages::uploads(&session, &view).into_response())
}

/// What the filters show, as CSV (every page).
pub async fn export(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let session = session(&state, &headers)?;
    let filter = UploadFilter::from_query(&q)?;
    let (rows, _) = uploads::rows(&state, &scope(&session), &filter).await?;
    let records = rows.into_iter().map(|u| {
        let c = &u.counts;
        vec![
            u.id.clone(),
            u.bank_code.clone(),
            u.name.clone(),
            u.status.as_str().to_owned(),
            timestamp(u.received_at),
            u.completed_at.map(timestamp).unwrap_or_default(),
            c.rows.to_string(),
            c.accepted.to_string(),
            c.updated.to_string(),
            c.unchanged.to_string(),
            c.duplicate.to_string(),
            c.rejected.to_string(),
            c.warnings.to_string(),
            c.reinstated.to_string(),
        ]
    });
    let name = format!("uploads-{}.csv", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(csv::table(&COLUMNS, records.collect::<Vec<_>>(), &name))
}

/// An upload with a page of its row verdicts (`?outcome=`, `?after=<row>`).
pub async fn detail(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let session = session(&state, &headers)?;
    let upload = uploads::one(&state, &scope(&session), &id).await?;
    let outcome = query_value(&q, "outcome")
        .map(|o| {
            Outcome::parse(o)
                .ok_or_else(|| UiError::BadRequest("`outcome` is not a row outcome.".into()))
        })
        .transpose()?;
    let after = query_value(&q, "after")
        .map(|a| {
            a.parse::<u64>()
                .map_err(|_| UiError::BadRequest("`after` must be a row number.".into()))
        })
        .transpose()?
        .unwrap_or(0);
    let (rows, more) = uploads::feeds(&state)?
        .verdicts(&upload, outcome, after, VERDICTS_PER_PAGE)
        .await
        .map_err(UiError::internal)?;
    let view = UploadDetail {
        upload: &upload,
        outcome,
        next_after: if more {
            rows.last().map(|r| r.row)
        } else {
            None
        },
        rows: &rows,
    };
    Ok(upload_pages::upload(&session, &view).into_response())
}

/// The upload's `errors.csv`, exactly as the bank API serves it.
pub async fn errors_csv(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let session = session(&state, &headers)?;
    let upload = uploads::one(&state, &scope(&session), &id).await?;
    tracing::info!(user = %session.user.username, upload_id = %upload.id, "ui: errors.csv downloaded");
    Ok(uploads::feeds(&state)?.errors_csv(upload))
}
