//! OAuth 2.0 endpoints: token (JWT bearer, client credentials, password, refresh, authorization code with PKCE),
//! introspect, userinfo, the identity URL and revoke, with Salesforce's success and error bodies (reference §1).
//! The authorize page that issues codes is `authorize.rs`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::AppState;
use super::error::OAuthError;
use super::seed::ConnectedAppSpec;

const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Clock skew tolerated around a JWT's `exp` (2nd sources say 3 to 5 minutes).
const JWT_SKEW_SECS: i64 = 300;
/// Salesforce wants `exp` "within 3 minutes" of now.
const JWT_MAX_LIFETIME_SECS: i64 = 180;

const CLIENT_ID_INVALID: OAuthError =
    OAuthError::new("invalid_client_id", "client identifier invalid");
const CLIENT_CREDENTIALS_INVALID: OAuthError =
    OAuthError::new("invalid_client", "invalid client credentials");

/// An authenticated API session, found from its bearer token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub client_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Issued tokens. `expire_tokens` and natural expiry both make a token unknown to [`TokenStore::session`].
#[derive(Default)]
pub struct TokenStore {
    access: HashMap<String, Session>,
    refresh: HashMap<String, Session>,
}

impl TokenStore {
    /// The live session of an access token, if any.
    pub fn session(&self, token: &str, now: DateTime<Utc>) -> Option<Session> {
        self.access
            .get(token)
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    /// Invalidate every issued access token (the `expire_tokens` fault).
    pub fn expire_all(&mut self) {
        self.access.clear();
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/introspect", post(introspect))
        .route("/services/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/services/oauth2/revoke", post(revoke).get(revoke))
        .route("/id/{org}/{user}", get(identity))
}

async fn token(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    let result = match form.get("grant_type").map(String::as_str) {
        Some(JWT_GRANT) => jwt_grant(&st, &form),
        Some("client_credentials") => client_credentials_grant(&st, &headers, &form),
        Some("password") => password_grant(&st, &headers, &form),
        Some("refresh_token") => refresh_grant(&st, &form),
        Some("authorization_code") => code_grant(&st, &headers, &form),
        _ => Err(OAuthError::new(
            "unsupported_grant_type",
            "grant type not supported",
        )),
    };
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn jwt_grant(st: &AppState, form: &HashMap<String, String>) -> Result<Value, OAuthError> {
    const INVALID: OAuthError = OAuthError::grant("invalid assertion");
    let assertion = form.get("assertion").ok_or(INVALID)?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| INVALID)?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err(INVALID);
    }
    let unverified: Value = jsonwebtoken::dangerous::insecure_decode(assertion)
        .map_err(|_| INVALID)?
        .claims;
    let iss = unverified
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(INVALID)?;
    let app = find_app(st, iss).ok_or(CLIENT_ID_INVALID)?;
    let pem = app.certificate_pem().ok_or(INVALID)?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| INVALID)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims: Value = jsonwebtoken::decode(assertion, &key, &validation)
        .map_err(|_| INVALID)?
        .claims;

    let allowed = [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        st.base_url.as_str(),
    ];
    let aud_ok = |a: &str| allowed.iter().any(|x| a.trim_end_matches('/') == *x);
    let aud_valid = match claims.get("aud") {
        Some(Value::String(a)) => aud_ok(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(aud_ok),
        _ => false,
    };
    if !aud_valid {
        return Err(OAuthError::grant("Audience validation failed"));
    }

    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or(INVALID)?;
    let now = Utc::now().timestamp();
    if exp < now - JWT_SKEW_SECS || exp > now + JWT_MAX_LIFETIME_SECS + JWT_SKEW_SECS {
        return Err(OAuthError::grant("expired authorization code"));
    }

    // The legacy `prn` claim wins over `sub` when both are present.
    let subject = claims
        .get("prn")
        .or_else(|| claims.get("sub"))
        .and_then(Value::as_str)
        .ok_or(INVALID)?;
    let not_approved = OAuthError::grant("user hasn't approved this consumer");
    if !app
        .preauthorized_users
        .iter()
        .any(|u| u.eq_ignore_ascii_case(subject))
    {
        return Err(not_approved);
    }
    let user = st
        .seed
        .users
        .iter()
        .find(|u| u.username.eq_ignore_ascii_case(subject))
        .ok_or(not_approved)?;
    Ok(issue(st, &app, &user.id, &user.username, false))
}

fn client_credentials_grant(
    st: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let app = authenticate_client(st, headers, form)?;
    let run_as = app
        .run_as
        .clone()
        .ok_or(OAuthError::grant("no client credentials user enabled"))?;
    let user = st
        .seed
        .users
        .iter()
        .find(|u| u.username == run_as)
        .ok_or(OAuthError::grant("no client credentials user enabled"))?;
    Ok(issue(st, &app, &user.id, &user.username, false))
}

fn password_grant(
    st: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let app = authenticate_client(st, headers, form)?;
    let failure = OAuthError::grant("authentication failure");
    let username = form.get("username").ok_or(failure.clone())?;
    let password = form.get("password").ok_or(failure.clone())?;
    let user = st
        .seed
        .users
        .iter()
        .find(|u| u.username.eq_ignore_ascii_case(username))
        .filter(|u| u.password.as_deref() == Some(password.as_str()))
        .ok_or(failure)?;
    // Real orgs never hand out refresh tokens here; the sim does when asked for the `refresh_token` scope, so
    // the refresh grant can be exercised without a browser flow.
    let wants_refresh = form
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|x| x == "refresh_token"));
    Ok(issue(st, &app, &user.id, &user.username, wants_refresh))
}

fn refresh_grant(st: &AppState, form: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let expired = OAuthError::grant("expired access/refresh token");
    let token = form.get("refresh_token").ok_or(expired.clone())?;
    let session = st
        .tokens
        .lock()
        .refresh
        .get(token)
        .cloned()
        .ok_or(expired)?;
    let app = find_app(st, &session.client_id).ok_or(CLIENT_ID_INVALID)?;
    Ok(issue(st, &app, &session.user_id, &session.username, false))
}

/// The web server flow's second half: a code from the authorize page, redeemed once. A confidential client
/// presents its secret; a public one (no secret) must have used PKCE. With the `openid` scope the answer also
/// carries an `id_token` (HS256 with the consumer secret, `nonce` echoed) so the client can check its nonce.
fn code_grant(
    st: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let has_secret = basic_credentials(headers).is_some() || form.contains_key("client_secret");
    let app = if has_secret {
        authenticate_client(st, headers, form)?
    } else {
        let id = form.get("client_id").ok_or(CLIENT_ID_INVALID)?;
        find_app(st, id).ok_or(CLIENT_ID_INVALID)?
    };
    let code = form
        .get("code")
        .ok_or(OAuthError::grant("invalid authorization code"))?;
    let verifier = form.get("code_verifier").map(String::as_str);
    let issued = super::authorize::redeem(
        st,
        code,
        &app.consumer_key,
        form.get("redirect_uri").map(String::as_str),
        verifier,
    )?;
    if !has_secret && issued.code_challenge.is_none() {
        return Err(CLIENT_CREDENTIALS_INVALID);
    }
    let mut body = issue(st, &app, &issued.user_id, &issued.username, false);
    if issued.scope.split(' ').any(|s| s == "openid") {
        body["id_token"] = id_token(st, &app, &issued).into();
        body["scope"] = issued.scope.clone().into();
    }
    Ok(body)
}

fn id_token(st: &AppState, app: &ConnectedAppSpec, code: &super::authorize::AuthCode) -> String {
    let now = Utc::now().timestamp();
    let claims = json!({
        "iss": st.base_url,
        "sub": identity_url(st, &code.user_id),
        "aud": app.consumer_key,
        "exp": now + 300,
        "iat": now,
        "nonce": code.nonce,
        "preferred_username": code.username,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(app.consumer_secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap_or_default()
}

/// Client id and secret from HTTP Basic (simple-salesforce) or the form body (jsforce).
fn authenticate_client(
    st: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ConnectedAppSpec, OAuthError> {
    let (id, secret) = basic_credentials(headers)
        .or_else(|| {
            Some((
                form.get("client_id")?.clone(),
                form.get("client_secret")?.clone(),
            ))
        })
        .ok_or(CLIENT_ID_INVALID)?;
    let app = find_app(st, &id).ok_or(CLIENT_ID_INVALID)?;
    if app.consumer_secret != secret {
        return Err(CLIENT_CREDENTIALS_INVALID);
    }
    Ok(app)
}

fn issue(
    st: &AppState,
    app: &ConnectedAppSpec,
    user_id: &str,
    username: &str,
    refresh: bool,
) -> Value {
    let now = Utc::now();
    let org15 = &st.seed.org_id[..15];
    let access = format!("{org15}!{}", opaque());
    let lifetime =
        chrono::Duration::from_std(st.opts.token_lifetime).unwrap_or(chrono::Duration::hours(2));
    let session = Session {
        user_id: user_id.to_string(),
        username: username.to_string(),
        client_id: app.consumer_key.clone(),
        issued_at: now,
        expires_at: now + lifetime,
    };
    let id_url = identity_url(st, user_id);
    let issued_at = now.timestamp_millis().to_string();
    let mut body = json!({
        "access_token": access,
        "signature": signature(&id_url, &issued_at, &app.consumer_secret),
        "scope": "api",
        "instance_url": st.base_url,
        "id": id_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    let mut tokens = st.tokens.lock();
    if refresh {
        let refresh_token = format!("5Aep{}", opaque());
        body["refresh_token"] = refresh_token.clone().into();
        body["scope"] = "api refresh_token".into();
        tokens.refresh.insert(refresh_token, session.clone());
    }
    tokens.access.insert(access, session);
    body
}

async fn introspect(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Err(e) = authenticate_client(&st, &headers, &form) {
        return OAuthError {
            status: StatusCode::UNAUTHORIZED,
            ..e
        }
        .into_response();
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let session = st.tokens.lock().session(&token, Utc::now());
    let body = match session {
        Some(s) => json!({
            "active": true,
            "scope": "api",
            "client_id": s.client_id,
            "username": s.username,
            "sub": identity_url(&st, &s.user_id),
            "token_type": "access_token",
            "exp": s.expires_at.timestamp(),
            "iat": s.issued_at.timestamp(),
            "nbf": s.issued_at.timestamp(),
        }),
        None => json!({"active": false}),
    };
    axum::Json(body).into_response()
}

async fn userinfo(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(session) = bearer_session(&st, &headers, q.get("oauth_token")) else {
        return (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response();
    };
    axum::Json(user_document(&st, &session.user_id, true)).into_response()
}

async fn identity(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((org, user)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(_session) = bearer_session(&st, &headers, q.get("oauth_token")) else {
        return (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response();
    };
    if org != st.seed.org_id || !st.seed.users.iter().any(|u| u.id == user) {
        return (StatusCode::NOT_FOUND, "Bad_Id").into_response();
    }
    axum::Json(user_document(&st, &user, false)).into_response()
}

async fn revoke(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let token = form
        .get("token")
        .or_else(|| q.get("token"))
        .cloned()
        .unwrap_or_default();
    let mut tokens = st.tokens.lock();
    let known = tokens.access.remove(&token).is_some() || tokens.refresh.remove(&token).is_some();
    if known {
        StatusCode::OK.into_response()
    } else {
        OAuthError::new("unsupported_token_type", "this token type is not supported")
            .into_response()
    }
}

/// The userinfo (OpenID) or identity-URL document of a user.
fn user_document(st: &AppState, user_id: &str, openid: bool) -> Value {
    let user = st.seed.users.iter().find(|u| u.id == user_id);
    let username = user.map(|u| u.username.clone()).unwrap_or_default();
    let email = user.map(|u| u.email.clone()).unwrap_or_default();
    let first = user.and_then(|u| u.first_name.clone()).unwrap_or_default();
    let last = user.map(|u| u.last_name.clone()).unwrap_or_default();
    let base = &st.base_url;
    let urls = json!({
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "custom_domain": base,
    });
    let display = format!("{first} {last}").trim().to_string();
    if openid {
        json!({
            "sub": identity_url(st, user_id), "user_id": user_id, "organization_id": st.seed.org_id,
            "preferred_username": username, "nickname": username, "name": display, "email": email,
            "email_verified": true, "given_name": first, "family_name": last, "zoneinfo": "Etc/UTC",
            "urls": urls, "active": true, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
            "utcOffset": 0, "is_app_installed": true,
        })
    } else {
        json!({
            "id": identity_url(st, user_id), "user_id": user_id, "organization_id": st.seed.org_id,
            "username": username, "display_name": display, "email": email, "first_name": first,
            "last_name": last, "urls": urls, "active": true, "user_type": "STANDARD", "language": "en_US",
            "locale": "en_US", "utcOffset": 0, "is_app_installed": true,
        })
    }
}

/// The live session behind `Authorization: Bearer …` or an explicit token.
pub fn bearer_session(
    st: &AppState,
    headers: &HeaderMap,
    explicit: Option<&String>,
) -> Option<Session> {
    let token = explicit
        .cloned()
        .or_else(|| bearer_token(headers).map(str::to_owned))?;
    st.tokens.lock().session(&token, Utc::now())
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

pub(crate) fn find_app(st: &AppState, consumer_key: &str) -> Option<ConnectedAppSpec> {
    st.seed
        .connected_apps
        .iter()
        .find(|a| a.consumer_key == consumer_key)
        .cloned()
}

fn identity_url(st: &AppState, user_id: &str) -> String {
    format!("{}/id/{}/{user_id}", st.base_url, st.seed.org_id)
}

/// Form bodies; unknown parameters are kept and ignored by the grants.
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

/// `base64(HMAC-SHA256(id + issued_at, client_secret))`, as Salesforce signs token responses.
fn signature(id_url: &str, issued_at: &str, secret: &str) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(id_url.as_bytes());
    mac.update(issued_at.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(crate) fn opaque() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
