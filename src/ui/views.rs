//! The dashboard's page handlers: each finds the session, derives its [`Scope`], reads through `history`
//! (where tenancy is enforced) and renders a `pages` template. State changes go through `guard` first and
//! reuse the outbox's and the bank pusher's own admin operations.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::UiError;
use super::history::{self, Filter, Row, Scope};
use super::login::CsrfForm;
use super::pages::{self, HistoryView};
use super::session::{Role, Session};
use super::{UiState, chart, csv, guard};
use crate::outbox::Message;
use crate::vault::Actor;

const STYLESHEET: &str = include_str!("static/ui.css");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

pub(super) fn session(state: &UiState, headers: &HeaderMap) -> Result<Session, UiError> {
    state.sessions.current(headers).ok_or(UiError::NotLoggedIn)
}

pub(super) fn scope(session: &Session) -> Scope {
    match &session.user.role {
        Role::Bank { account_id, .. } => Scope::Bank(account_id.clone()),
        Role::Admin => Scope::All,
    }
}

pub(super) fn admin(state: &UiState, headers: &HeaderMap) -> Result<Session, UiError> {
    let session = session(state, headers)?;
    if session.user.role == Role::Admin {
        Ok(session)
    } else {
        Err(UiError::Forbidden(
            "Only bureau admins can see this.".into(),
        ))
    }
}

/// The page asked for (`?page=`, clamped to the pages there are) of `rows`, `size` a page: that page's rows,
/// its number and the number of pages.
pub(super) fn page_of<T: Clone>(
    rows: &[T],
    q: &HashMap<String, String>,
    size: usize,
) -> (Vec<T>, usize, usize) {
    let pages = rows.len().div_ceil(size);
    let page = q
        .get("page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages.max(1));
    let shown = rows
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect();
    (shown, page, pages)
}

/// The bank codes of an admin's bank filter (none for a bank representative).
pub(super) fn bank_choices(state: &UiState, scope: &Scope) -> Vec<String> {
    match scope {
        Scope::All => state
            .settings
            .bank_list
            .iter()
            .map(|b| b.code.clone())
            .collect(),
        Scope::Bank(_) => Vec::new(),
    }
}

/// A state change: logged in, and both CSRF checks passed.
fn changing(state: &UiState, headers: &HeaderMap, form: &CsrfForm) -> Result<Session, UiError> {
    let session = session(state, headers)?;
    guard::check_state_change(
        headers,
        &session,
        form.csrf.as_deref(),
        &state.settings.origin,
    )?;
    Ok(session)
}

/// A state change only bureau admins may make.
fn changing_admin(
    state: &UiState,
    headers: &HeaderMap,
    form: &CsrfForm,
) -> Result<Session, UiError> {
    let session = changing(state, headers, form)?;
    if session.user.role == Role::Admin {
        Ok(session)
    } else {
        Err(UiError::Forbidden("Only bureau admins can do this.".into()))
    }
}

pub async fn requests(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let session = session(&state, &headers)?;
    let scope = scope(&session);
    let filter = Filter::from_query(&q)?;
    let (rows, truncated) = history::rows(&state, &scope, &filter).await?;
    let (shown, page, pages) = page_of(&rows, &q, state.settings.page_size);
    let last_day = filter.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let chart = chart::svg(&chart::daily(&rows, last_day));
    let banks = bank_choices(&state, &scope);
    let view = HistoryView {
        filter: &filter,
        rows: &shown,
        page,
        pages,
        total: rows.len(),
        truncated,
        chart,
        banks,
    };
    Ok(pages::history(&session, &view).into_response())
}

/// What the filters show, as CSV (every page, not just the one on screen).
pub async fn export(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let session = session(&state, &headers)?;
    let filter = Filter::from_query(&q)?;
    let (rows, _) = history::rows(&state, &scope(&session), &filter).await?;
    let name = format!(
        "report-requests-{}.csv",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    Ok(csv::download(rows, &name))
}

/// The session and one request of its scope (another bank's is [`UiError::NotFound`]).
async fn owned(
    state: &UiState,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Session, Message, Row), UiError> {
    let session = session(state, headers)?;
    let (message, row) = history::one(state, &scope(&session), id).await?;
    Ok((session, message, row))
}

pub async fn detail(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let (session, message, row) = owned(&state, &headers, &id).await?;
    let attempts = state
        .intake
        .outbox
        .attempts(message.id)
        .await
        .map_err(UiError::internal)?;
    Ok(pages::detail(&session, &message, &row, &attempts).into_response())
}

/// The report PDF (the bank API's own download, audited in the vault as the bank or as an admin).
pub async fn report(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let (session, message, row) = owned(&state, &headers, &id).await?;
    let actor = match &session.user.role {
        Role::Bank { account_id, .. } => Actor::Bank(account_id.clone()),
        Role::Admin => Actor::Admin,
    };
    let mut response = crate::intake::api::report_response(
        &state.intake,
        &message,
        &row.bank_code,
        actor,
        &headers,
    )
    .await
    .map_err(UiError::from_api)?;
    // A PDF is not a page: it gets no CSP of its own beyond the layer's, and is never sniffed.
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// A failed or dead request of the user's scope, queued again (the outbox's admin retry).
pub async fn retry(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    let session = changing(&state, &headers, &form)?;
    let (message, _) = history::one(&state, &scope(&session), &id).await?;
    state
        .intake
        .outbox
        .retry(message.id)
        .await
        .map_err(UiError::from_outbox)?;
    state.intake.pusher_wakeup.notify_one();
    tracing::info!(user = %session.user.username, message_id = %message.id, "ui: request queued again");
    Ok(Redirect::to(&format!("/ui/requests/{}", message.id)).into_response())
}

pub async fn dead_letters(
    State(state): State<UiState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let session = admin(&state, &headers)?;
    let messages = history::dead_letters(&state).await?;
    let rows: Vec<_> = messages
        .into_iter()
        .map(|m| {
            let code = history::bank_code(&state, &m.tenant);
            (m, code)
        })
        .collect();
    Ok(pages::dead_letters(&session, &rows).into_response())
}

/// `retry` or `discard` of any message (admins).
pub async fn admin_action(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    let session = changing_admin(&state, &headers, &form)?;
    let id = id.parse().map_err(|_| UiError::NotFound)?;
    let outbox = &state.intake.outbox;
    let message = match action.as_str() {
        "retry" => outbox.retry(id).await,
        "discard" => outbox.discard(id).await,
        _ => return Err(UiError::NotFound),
    }
    .map_err(UiError::from_outbox)?;
    state.intake.pusher_wakeup.notify_one();
    tracing::info!(user = %session.user.username, message_id = %message.id, action, "ui: admin action");
    Ok(Redirect::to("/ui/admin/dead-letters").into_response())
}

pub async fn endpoints(
    State(state): State<UiState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let session = admin(&state, &headers)?;
    let mut rows = Vec::new();
    for bank in &state.settings.bank_list {
        let endpoint = state
            .banks
            .endpoint_state(&bank.code)
            .await
            .map_err(UiError::internal)?;
        rows.push((bank.name.clone(), bank.code.clone(), endpoint));
    }
    Ok(pages::endpoints(&session, &rows).into_response())
}

pub async fn enable_endpoint(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    let session = changing_admin(&state, &headers, &form)?;
    if !state.settings.bank_list.iter().any(|b| b.code == code) {
        return Err(UiError::NotFound);
    }
    state
        .banks
        .enable_endpoint(&code)
        .await
        .map_err(UiError::internal)?;
    tracing::info!(user = %session.user.username, bank = %code, "ui: endpoint enabled");
    Ok(Redirect::to("/ui/admin/endpoints").into_response())
}
