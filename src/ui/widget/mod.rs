//! The report-request widget (`/ui/widget.js`): a web component a member bank embeds in its own intranet page,
//! so a bank representative requests a credit report with one click, without leaving the bank's system.
//!
//! Why it is built this way:
//! - **The daemon is the OAuth client, not the bank's page.** The click opens a popup at `/ui/widget/login`,
//!   which runs the dashboard's own login (authorization code + PKCE S256, `state`, `nonce`, the bank from
//!   `User.AccountId`) at the bureau's Salesforce. The Salesforce token never leaves the daemon. The popup's
//!   last page hands the bank page an opaque *widget session* token with `postMessage` addressed to exactly the
//!   origin the login was started for; a page of any other origin that opened the popup receives nothing.
//! - **A widget session is bound to one bank origin** (`[[banks]] allowed_origins`, checked when the login
//!   starts and again when it ends against the user's own bank). It is accepted only as
//!   `Authorization: Bearer` from a request whose `Origin` is that origin, never as a cookie, and a dashboard
//!   cookie never opens it; it lives in the widget's memory only (no `localStorage`).
//! - **CSRF**: the widget's calls carry no cookie (`credentials: "omit"`); the credential is a header a
//!   cross-site form cannot set, plus the session's CSRF token in `X-CSRF-Token`, plus the bound `Origin`.
//! - **CORS only for the configured origins** (`cors.rs`): preflights from them are answered with exactly
//!   the route's method and the widget's headers; any other origin gets no CORS header at all (and a 403 to
//!   its preflight), so its browser refuses to send or read.
//! - **The server stays the judge**: the widget posts the bank's own request body, which goes through the
//!   bank API's intake (`intake::api::accept_counted`: the bank's mapping, quota, idempotency, durable before
//!   `202`); its problems come back as the same problem documents.

mod cors;
pub mod demo;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use secrecy::ExposeSecret;

use super::error::UiError;
use super::history::{self, Scope};
use super::session::{Role, Session, UiUser};
use super::{UiState, login};
use crate::intake::{ApiError, BearerToken, IdempotencyKey, Prefer, Principal, RawBody};

const WIDGET_JS: &str = include_str!("../static/widget.js");
const HANDOFF_JS: &str = include_str!("../static/widget-handoff.js");

/// The header carrying a widget session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The widget's routes: the script, the popup login and its handoff script, and the CORS-enabled API.
pub fn routes(state: UiState) -> Router<UiState> {
    let max_body = state.settings.max_body_bytes;
    let api = Router::new()
        .route(
            "/ui/widget/api/report-requests",
            post(create).options(cors::preflight_post),
        )
        .route(
            "/ui/widget/api/report-requests/{id}",
            get(status).options(cors::preflight_get),
        )
        .route(
            "/ui/widget/api/logout",
            post(logout).options(cors::preflight_post),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, cors::headers))
        .layer(axum::extract::DefaultBodyLimit::max(max_body));
    Router::new()
        .route("/ui/widget.js", get(script))
        .route("/ui/static/widget-handoff.js", get(handoff_script))
        .route("/ui/widget/login", get(start))
        .merge(api)
}

/// Whether any bank allows `origin` to embed the widget.
fn allowed_anywhere(state: &UiState, origin: &str) -> bool {
    state
        .settings
        .bank_list
        .iter()
        .any(|b| b.allowed_origins.iter().any(|o| o == origin))
}

/// The component itself: a static script any origin may load (`Cross-Origin-Resource-Policy: cross-origin`);
/// what it may *do* from an origin is decided by CORS and the login.
async fn script() -> Response {
    static_js(WIDGET_JS, "cross-origin")
}

async fn handoff_script() -> Response {
    static_js(HANDOFF_JS, "same-origin")
}

fn static_js(body: &'static str, resource_policy: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                resource_policy,
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub struct StartQuery {
    origin: Option<String>,
}

/// The popup's first page: a login at the bureau's Salesforce for the bank page of `origin`, refused at once
/// when no bank allows that origin.
async fn start(
    State(state): State<UiState>,
    Query(q): Query<StartQuery>,
) -> Result<Response, UiError> {
    let origin = q.origin.unwrap_or_default();
    if !allowed_anywhere(&state, &origin) {
        tracing::warn!(origin = %origin, "ui: widget login from an origin no bank allows");
        return Err(UiError::Forbidden(
            "This page is not allowed to use the creditlink widget (its origin is not one of the member \
             banks' allowed origins)."
                .into(),
        ));
    }
    let mut response = login::begin(&state, Some(origin))?;
    opener_allowed(&mut response);
    Ok(response)
}

/// The login callback's end for a widget login: the user must be a representative of a bank that allows
/// `origin`; the widget session is then handed to that origin by the popup's last page.
pub(super) async fn finish(
    state: &UiState,
    user: UiUser,
    token: secrecy::SecretString,
    origin: String,
) -> Result<Response, UiError> {
    let allowed = match &user.role {
        Role::Bank { account_id, .. } => state
            .settings
            .bank_list
            .iter()
            .any(|b| &b.account_id == account_id && b.allowed_origins.contains(&origin)),
        Role::Admin => false,
    };
    if !allowed {
        state.idp.revoke(&token).await;
        tracing::warn!(user = %user.username, origin = %origin, "ui: widget login refused for this origin");
        return Err(UiError::Forbidden(match user.role {
            Role::Admin => {
                "The widget is for bank representatives; bureau admins use the dashboard.".into()
            }
            Role::Bank { .. } => {
                "Your bank does not allow the creditlink widget on this page.".into()
            }
        }));
    }
    let (bank, username) = (bank_name(&user.role), user.username.clone());
    let id = state
        .sessions
        .create_widget(user, token, origin.clone())
        .ok_or_else(|| UiError::Unavailable("too many sessions".into()))?;
    let csrf = state
        .sessions
        .widget(&id, &origin)
        .map(|s| s.csrf)
        .ok_or_else(|| UiError::internal("the widget session vanished"))?;
    tracing::info!(user = %username, origin = %origin, "ui: widget session handed out");
    let mut response = handoff_page(&origin, &id, &csrf, &username, &bank).into_response();
    opener_allowed(&mut response);
    Ok(response)
}

fn bank_name(role: &Role) -> String {
    match role {
        Role::Bank { name, .. } => name.clone(),
        Role::Admin => String::new(),
    }
}

/// The popup must keep its `window.opener` (the bank page) to hand the session back, so these pages opt out
/// of the dashboard's `Cross-Origin-Opener-Policy: same-origin` (the security layer keeps a set value).
fn opener_allowed(response: &mut Response) {
    response.headers_mut().insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("unsafe-none"),
    );
}

/// The popup's last page: the session in `data-` attributes (read only by same-origin script) and the static
/// handoff script, which posts it to `origin` and closes the popup.
fn handoff_page(origin: &str, token: &str, csrf: &str, user: &str, bank: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Signed in · creditlink" }
                link rel="stylesheet" href="/ui/static/ui.css";
            }
            body {
                main {
                    p #handoff data-origin=(origin) data-token=(token) data-csrf=(csrf) data-user=(user)
                        data-bank=(bank) { "Signed in; returning to your bank's page…" }
                }
                script src="/ui/static/widget-handoff.js" {}
            }
        }
    }
}

/// The widget session of a call, checked from the headers alone, before any body is read (unauthenticated
/// callers cost no buffering, as on the bank API).
pub struct WidgetCaller {
    session: Session,
    token: BearerToken,
}

impl FromRequestParts<UiState> for WidgetCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, ApiError> {
        let token = BearerToken::from_headers(&parts.headers)?;
        let session = session(state, &parts.headers, &token)?;
        Ok(WidgetCaller { session, token })
    }
}

/// The widget session of a call: its bearer token, from its bound `Origin`, with its CSRF token.
fn session(state: &UiState, headers: &HeaderMap, token: &BearerToken) -> Result<Session, ApiError> {
    let refused = |reason: &str| ApiError::TokenRejected {
        reason: reason.into(),
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("widget calls come from a bank page (Origin is missing)"))?;
    let session = state
        .sessions
        .widget(token.0.expose_secret(), origin)
        .ok_or_else(|| refused("the widget session is unknown, expired, or for another page"))?;
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), session.csrf.as_bytes())) {
        return Err(ApiError::Forbidden(
            "The widget call lacks its session's X-CSRF-Token.".into(),
        ));
    }
    Ok(session)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bank principal of a widget session (a bank representative; admins never get one).
fn principal(session: &Session) -> Result<Principal, ApiError> {
    match &session.user.role {
        Role::Bank {
            account_id, code, ..
        } => Ok(Principal {
            account_id: account_id.clone(),
            bank_code: code.clone(),
            user_id: session.user.user_id.clone(),
        }),
        Role::Admin => Err(ApiError::Forbidden(
            "The widget is for bank representatives.".into(),
        )),
    }
}

/// `POST /ui/widget/api/report-requests`: the bank API's intake, as the session's bank.
async fn create(
    State(state): State<UiState>,
    WidgetCaller { session, .. }: WidgetCaller,
    key: Option<IdempotencyKey>,
    prefer: Prefer,
    body: RawBody,
) -> Result<Response, ApiError> {
    let principal = principal(&session)?;
    tracing::info!(user = %session.user.username, bank = %principal.bank_code, "ui: widget request");
    crate::intake::api::accept_counted(&state.intake, principal, key, &prefer, body).await
}

/// `GET /ui/widget/api/report-requests/{id}`: the status document of one of the session's bank's requests.
async fn status(
    State(state): State<UiState>,
    WidgetCaller { session, .. }: WidgetCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = principal(&session)?;
    let scope = Scope::Bank(principal.account_id.clone());
    let (message, _) = history::one(&state, &scope, &id)
        .await
        .map_err(|e| match e {
            UiError::NotFound => ApiError::RequestNotFound,
            other => ApiError::internal(other),
        })?;
    let doc = crate::intake::api::status_body(&state.intake, &message, &principal.bank_code).await;
    Ok(axum::Json(doc).into_response())
}

/// `POST /ui/widget/api/logout`: ends the widget session and revokes its Salesforce token.
async fn logout(
    State(state): State<UiState>,
    WidgetCaller { session, token }: WidgetCaller,
) -> Result<Response, ApiError> {
    let origin = session.widget_origin.clone().unwrap_or_default();
    if let Some(ended) = state.sessions.end_widget(token.0.expose_secret(), &origin) {
        state.idp.revoke(&ended.token).await;
        tracing::info!(user = %ended.user.username, "ui: widget session ended");
    }
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
