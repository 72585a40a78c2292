//! The OAuth 2.0 web server flow's front half: `GET/POST /services/oauth2/authorize`, Salesforce's login page.
//!
//! Why it exists: creditlink's dashboard logs people in with the bureau's Salesforce as identity provider
//! (authorization code + PKCE). The page is shaped like Salesforce's (inputs `#username` and `#password`, submit
//! `#Login`) so browser tests written against it read like tests against a real org.
//!
//! The checks are Salesforce's, in its order: an unknown `client_id` or a `redirect_uri` that is not exactly one
//! of the connected app's callback URLs is an error *page* (never a redirect to an unchecked URI); anything
//! else wrong (`response_type`, a `code_challenge_method` other than S256) redirects back with
//! `error=…&error_description=…&state=…`. A good password redirects with `code` and `state`. The code is
//! single-use, valid [`CODE_LIFETIME`] and bound to client, redirect URI, PKCE challenge and `nonce`; the token
//! endpoint (`oauth.rs`) redeems it with [`redeem`].

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use maud::{DOCTYPE, Markup, html};
use sha2::Digest;

use super::AppState;
use super::error::OAuthError;
use super::seed::ConnectedAppSpec;

/// How long an authorization code can be redeemed (Salesforce: 15 minutes).
pub const CODE_LIFETIME: Duration = Duration::minutes(15);
/// Codes kept at once; beyond it the oldest expired ones go first, then all (a test org, not a service).
const MAX_CODES: usize = 10_000;

/// An issued authorization code, waiting for the token endpoint.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub user_id: String,
    pub username: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// `BASE64URL(SHA-256(code_verifier))`, when the client sent one.
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub expires_at: DateTime<Utc>,
}

/// Issued, unredeemed codes.
#[derive(Default)]
pub struct AuthCodes {
    codes: HashMap<String, AuthCode>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/services/oauth2/authorize", get(show).post(submit))
}

/// The query (GET) or hidden fields (POST) of an authorization request.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

async fn show(State(st): State<AppState>, Query(params): Query<AuthorizeParams>) -> Response {
    match check(&st, &params) {
        None => login_page(&params, None).into_response(),
        Some(refusal) => refusal,
    }
}

async fn submit(State(st): State<AppState>, body: Bytes) -> Response {
    let params: AuthorizeParams = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if let Some(refusal) = check(&st, &params) {
        return refusal;
    }
    let username = params.username.clone().unwrap_or_default();
    let password = params.password.clone().unwrap_or_default();
    let user = st
        .seed
        .users
        .iter()
        .find(|u| u.username.eq_ignore_ascii_case(username.trim()))
        .filter(|u| u.password.as_deref() == Some(password.as_str()));
    let Some(user) = user else {
        let message = "Please check your username and password. If you still can't log in, contact your \
                       Salesforce administrator.";
        return (StatusCode::OK, login_page(&params, Some(message))).into_response();
    };
    let code = format!("aPrx{}", super::oauth::opaque());
    let issued = AuthCode {
        user_id: user.id.clone(),
        username: user.username.clone(),
        client_id: params.client_id.clone(),
        redirect_uri: params.redirect_uri.clone(),
        code_challenge: params.code_challenge.clone(),
        nonce: params.nonce.clone(),
        scope: params.scope.clone().unwrap_or_else(|| "api".into()),
        expires_at: Utc::now() + CODE_LIFETIME,
    };
    {
        let mut codes = st.auth_codes.lock();
        if codes.codes.len() >= MAX_CODES {
            let now = Utc::now();
            codes.codes.retain(|_, c| c.expires_at > now);
            if codes.codes.len() >= MAX_CODES {
                codes.codes.clear();
            }
        }
        codes.codes.insert(code.clone(), issued);
    }
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = &params.state {
        pairs.push(("state", state));
    }
    redirect(&params.redirect_uri, &pairs)
}

/// Client and redirect URI first (an error page), then the rest (an error redirect); `None` = all good.
fn check(st: &AppState, p: &AuthorizeParams) -> Option<Response> {
    let Some(app) = super::oauth::find_app(st, &p.client_id) else {
        return Some(error_page("invalid_client_id", "client identifier invalid"));
    };
    if !redirect_allowed(&app, &p.redirect_uri) {
        return Some(error_page(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ));
    }
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(state) = &p.state {
            pairs.push(("state", state));
        }
        Some(redirect(&p.redirect_uri, &pairs))
    };
    if p.response_type != "code" {
        return fail("unsupported_response_type", "response type not supported");
    }
    match (&p.code_challenge, p.code_challenge_method.as_deref()) {
        (Some(c), None | Some("S256")) if is_challenge(c) => None,
        (Some(_), _) => fail("invalid_request", "invalid code_challenge"),
        (None, Some(_)) => fail("invalid_request", "missing code_challenge"),
        (None, None) => None,
    }
}

fn redirect_allowed(app: &ConnectedAppSpec, uri: &str) -> bool {
    !uri.is_empty() && app.callback_urls.iter().any(|u| u == uri)
}

/// A S256 challenge is 43 base64url characters (32 bytes).
fn is_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Takes the code out (single use) and checks it against the token request; Salesforce's errors.
pub fn redeem(
    st: &AppState,
    code: &str,
    client_id: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<AuthCode, OAuthError> {
    const INVALID: OAuthError = OAuthError::grant("invalid authorization code");
    let issued = st.auth_codes.lock().codes.remove(code).ok_or(INVALID)?;
    if issued.expires_at <= Utc::now() {
        return Err(OAuthError::grant("expired authorization code"));
    }
    if issued.client_id != client_id {
        return Err(INVALID);
    }
    if redirect_uri.is_some_and(|r| r != issued.redirect_uri) {
        return Err(OAuthError::grant("redirect_uri must match configuration"));
    }
    if let Some(challenge) = &issued.code_challenge {
        let verifier = verifier.ok_or(OAuthError::grant("invalid code verifier"))?;
        let digest = sha2::Sha256::digest(verifier.as_bytes());
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        if &computed != challenge {
            return Err(OAuthError::grant("invalid code verifier"));
        }
    }
    Ok(issued)
}

fn redirect(base: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(base) {
        Ok(url) => url,
        Err(_) => return error_page("redirect_uri_mismatch", "redirect_uri must be a URL"),
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

fn error_page(error: &str, description: &str) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Error | Salesforce" } }
            body {
                h1 { "Remote Access Error" }
                p { "error=" (error) }
                p #error_description { (description) }
            }
        }
    };
    (StatusCode::BAD_REQUEST, page).into_response()
}

fn login_page(p: &AuthorizeParams, error: Option<&str>) -> Markup {
    let hidden = [
        ("response_type", Some(p.response_type.as_str())),
        ("client_id", Some(p.client_id.as_str())),
        ("redirect_uri", Some(p.redirect_uri.as_str())),
        ("state", p.state.as_deref()),
        ("scope", p.scope.as_deref()),
        ("code_challenge", p.code_challenge.as_deref()),
        ("code_challenge_method", p.code_challenge_method.as_deref()),
        ("nonce", p.nonce.as_deref()),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Login | Salesforce" } }
            body {
                div #content {
                    h1 { "Log in to the bureau's Salesforce (simulated)" }
                    @if let Some(error) = error {
                        div #error role="alert" { (error) }
                    }
                    form #login_form method="post" action="/services/oauth2/authorize" {
                        @for (name, value) in hidden {
                            @if let Some(value) = value {
                                input type="hidden" name=(name) value=(value);
                            }
                        }
                        label for="username" { "Username" }
                        input #username type="email" name="username" autocomplete="username"
                            value=(p.username.as_deref().unwrap_or_default());
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password";
                        input #Login type="submit" name="Login" value="Log In";
                    }
                }
            }
        }
    }
}
