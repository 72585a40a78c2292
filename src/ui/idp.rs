//! The bureau's Salesforce as the dashboard's identity provider: the authorize URL (PKCE S256), the code
//! exchange at the token endpoint, the `id_token`'s `nonce` and audience, the user from `userinfo`, the
//! user's bank from `User.AccountId` (read with creditlink's integration user, like bank API tokens), and token
//! revocation at logout.
//!
//! The `id_token` comes straight from the token endpoint over the back channel, so its claims are checked
//! (`aud` = our client id, `nonce` = the one this login sent) without verifying its signature, as OpenID
//! Connect Core §3.1.3.7 allows for tokens received directly from the token endpoint.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::UiError;
use crate::config::{Config, UiConfig};
use crate::salesforce::SalesforceClient;

/// Endpoints, client credentials and the clients to call them with.
pub struct IdentityProvider {
    authorize_url: String,
    token_url: String,
    userinfo_url: String,
    revoke_url: String,
    client_id: String,
    client_secret: SecretString,
    /// `<public_url>/ui/callback`: registered as the connected app's callback URL.
    pub redirect_uri: String,
    http: reqwest::Client,
    salesforce: SalesforceClient,
}

/// Who logged in, as Salesforce says.
pub struct LoggedIn {
    pub token: SecretString,
    pub user_id: String,
    pub username: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    aud: serde_json::Value,
    nonce: Option<String>,
}

#[derive(Deserialize)]
struct UserInfo {
    user_id: String,
    preferred_username: String,
}

impl IdentityProvider {
    pub fn new(
        config: &Config,
        ui: &UiConfig,
        public_url: &url::Url,
        salesforce: SalesforceClient,
    ) -> Self {
        let base = config.salesforce.login_url.as_str().trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(config.salesforce.timeout.max(Duration::from_secs(1)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        IdentityProvider {
            authorize_url: format!("{base}/services/oauth2/authorize"),
            token_url: format!("{base}/services/oauth2/token"),
            userinfo_url: format!("{base}/services/oauth2/userinfo"),
            revoke_url: format!("{base}/services/oauth2/revoke"),
            client_id: ui
                .client_id
                .clone()
                .unwrap_or_else(|| config.salesforce.auth.consumer_key.clone()),
            client_secret: ui
                .client_secret
                .clone()
                .unwrap_or_else(|| config.salesforce.auth.client_secret.clone()),
            redirect_uri: format!("{}/ui/callback", public_url.as_str().trim_end_matches('/')),
            http,
            salesforce,
        }
    }

    /// Where to send the browser: the authorize page with `state`, the S256 challenge and `nonce`.
    pub fn authorize_redirect(&self, state: &str, verifier: &str, nonce: &str) -> String {
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&self.authorize_url).expect("login_url is a URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "openid api")
            .append_pair("state", state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("nonce", nonce);
        url.into()
    }

    /// Redeems the code (with the PKCE verifier), checks the `id_token`, and asks who the user is.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<LoggedIn, UiError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose_secret()),
            ("code_verifier", verifier),
        ];
        let answer = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(UiError::idp)?;
        if !answer.status().is_success() {
            return Err(UiError::LoginRefused(format!(
                "Salesforce refused the login (HTTP {}).",
                answer.status().as_u16()
            )));
        }
        let answer: TokenAnswer = answer.json().await.map_err(UiError::idp)?;
        let token = SecretString::from(answer.access_token);
        let checked = answer
            .id_token
            .as_deref()
            .ok_or_else(|| UiError::LoginRefused("Salesforce sent no id_token.".into()))
            .and_then(|t| self.check_id_token(t, nonce));
        if let Err(e) = checked {
            self.revoke(&token).await;
            return Err(e);
        }
        let info: UserInfo = self
            .http
            .get(&self.userinfo_url)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(UiError::idp)?
            .json()
            .await
            .map_err(UiError::idp)?;
        Ok(LoggedIn {
            token,
            user_id: info.user_id,
            username: info.preferred_username,
        })
    }

    fn check_id_token(&self, id_token: &str, nonce: &str) -> Result<(), UiError> {
        let refused = |why: &str| UiError::LoginRefused(format!("The id_token {why}."));
        let payload = id_token
            .split('.')
            .nth(1)
            .ok_or_else(|| refused("is malformed"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| refused("is malformed"))?;
        let claims: IdClaims =
            serde_json::from_slice(&bytes).map_err(|_| refused("is malformed"))?;
        let aud_ok = match &claims.aud {
            serde_json::Value::String(a) => *a == self.client_id,
            serde_json::Value::Array(list) => list.iter().any(|a| *a == *self.client_id),
            _ => false,
        };
        if !aud_ok {
            return Err(refused("is for another client"));
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(refused("carries the wrong nonce"));
        }
        Ok(())
    }

    /// The user's `User.AccountId` (empty when the user has none), read as creditlink's integration user.
    pub async fn account_of(&self, user_id: &str) -> Result<String, UiError> {
        let user = self
            .salesforce
            .get("User", user_id, Some(&["AccountId"]))
            .await
            .map_err(UiError::idp)?;
        Ok(user
            .get("AccountId")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned())
    }

    /// Revokes a user's token; a failure is logged, never shown (the session is gone either way).
    pub async fn revoke(&self, token: &SecretString) {
        let sent = self
            .http
            .post(&self.revoke_url)
            .form(&[("token", token.expose_secret())])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if let Err(e) = sent {
            tracing::warn!(error = %e, "ui: revoking the user's Salesforce token failed");
        }
    }
}
