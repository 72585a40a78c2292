//! Login and logout: `/ui/login` starts the authorization-code + PKCE flow at the bureau's Salesforce,
//! `/ui/callback` finishes it (state bound to this browser, code redeemed with the verifier, nonce checked,
//! role decided here), `POST /ui/logout` ends the session and revokes the Salesforce token.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};

use super::error::UiError;
use super::session::{self, LOGIN_COOKIE, LOGIN_WINDOW, Role, SESSION_COOKIE, UiUser};
use super::{UiState, guard, pages};

/// `/ui/`: the history when logged in, else the landing page with the login link.
pub async fn home(State(state): State<UiState>, headers: HeaderMap) -> Response {
    match state.sessions.current(&headers) {
        Some(_) => Redirect::to("/ui/requests").into_response(),
        None => pages::landing().into_response(),
    }
}

/// Starts a login: a fresh `state`, PKCE verifier and nonce kept server-side, `state` also in a short-lived
/// cookie so only the browser that started the login can finish it.
pub async fn start(State(state): State<UiState>) -> Result<Response, UiError> {
    begin(&state, None)
}

/// The redirect to Salesforce's authorize page of a dashboard login, or (with `widget_origin`) of a widget
/// login whose session goes to that bank page instead of a cookie.
pub(super) fn begin(state: &UiState, widget_origin: Option<String>) -> Result<Response, UiError> {
    let (login_state, pending) = state
        .sessions
        .begin_login(widget_origin)
        .ok_or_else(|| UiError::Unavailable("too many logins in progress".into()))?;
    let url = state
        .idp
        .authorize_redirect(&login_state, &pending.verifier, &pending.nonce);
    let cookie = session::set_cookie(LOGIN_COOKIE, &login_state, "Lax", Some(LOGIN_WINDOW));
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response())
}

/// Salesforce's redirect back: `code` + `state`, or `error` + `error_description` + `state`.
pub async fn callback(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let login_state = q
        .get("state")
        .ok_or_else(|| UiError::LoginRefused("The login answer has no state.".into()))?;
    if session::cookie(&headers, LOGIN_COOKIE).as_deref() != Some(login_state.as_str()) {
        return Err(UiError::LoginRefused(
            "This login was not started in this browser (or took too long); please log in again."
                .into(),
        ));
    }
    let pending = state.sessions.finish_login(login_state).ok_or_else(|| {
        UiError::LoginRefused(
            "This login has expired or was already used; please log in again.".into(),
        )
    })?;
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map(String::as_str).unwrap_or("");
        return Err(UiError::LoginRefused(format!(
            "Salesforce refused the login: {error} {description}"
        )));
    }
    let code = q
        .get("code")
        .ok_or_else(|| UiError::LoginRefused("The login answer has no code.".into()))?;
    let logged_in = state
        .idp
        .exchange(code, &pending.verifier, &pending.nonce)
        .await?;
    let role = match role_of(&state, &logged_in.username, &logged_in.user_id).await {
        Ok(role) => role,
        Err(e) => {
            state.idp.revoke(&logged_in.token).await;
            return Err(e);
        }
    };
    let user = UiUser {
        username: logged_in.username,
        user_id: logged_in.user_id,
        role,
    };
    if let Some(origin) = pending.widget_origin {
        let mut response = super::widget::finish(&state, user, logged_in.token, origin).await?;
        response.headers_mut().append(
            header::SET_COOKIE,
            session::clear_cookie(LOGIN_COOKIE)
                .parse()
                .map_err(UiError::internal)?,
        );
        return Ok(response);
    }
    tracing::info!(user = %user.username, admin = user.role == Role::Admin, "ui: logged in");
    let id = state
        .sessions
        .create(user, logged_in.token)
        .ok_or_else(|| UiError::Unavailable("too many sessions".into()))?;
    let session_cookie = session::set_cookie(SESSION_COOKIE, &id, "Strict", None);
    Ok((
        AppendHeaders([
            (header::SET_COOKIE, session_cookie),
            (header::SET_COOKIE, session::clear_cookie(LOGIN_COOKIE)),
        ]),
        pages::signed_in(),
    )
        .into_response())
}

/// Admin by configured username; otherwise a representative of the enrolled bank of `User.AccountId`.
async fn role_of(state: &UiState, username: &str, user_id: &str) -> Result<Role, UiError> {
    let lower = username.to_ascii_lowercase();
    if state.settings.admin_usernames.contains(&lower) {
        return Ok(Role::Admin);
    }
    let account = state.idp.account_of(user_id).await?;
    let bank = state
        .settings
        .bank_list
        .iter()
        .find(|b| !account.is_empty() && b.account_id == account)
        .ok_or_else(|| {
            UiError::Forbidden(
                "Your Salesforce user does not belong to a member bank enrolled with creditlink."
                    .into(),
            )
        })?;
    Ok(Role::Bank {
        account_id: bank.account_id.clone(),
        code: bank.code.clone(),
        name: bank.name.clone(),
    })
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// Ends the session (CSRF-checked, so another site cannot log people out) and revokes the token.
pub async fn logout(
    State(state): State<UiState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    let session = state
        .sessions
        .current(&headers)
        .ok_or(UiError::NotLoggedIn)?;
    guard::check_state_change(
        &headers,
        &session,
        form.csrf.as_deref(),
        &state.settings.origin,
    )?;
    if let Some(ended) = state.sessions.end(&headers) {
        state.idp.revoke(&ended.token).await;
        tracing::info!(user = %ended.user.username, "ui: logged out");
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE))],
        Redirect::to("/ui/"),
    )
        .into_response())
}
