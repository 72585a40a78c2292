//! Who is calling: a bank user's Salesforce bearer token, checked by token introspection at Salesforce.
//!
//! Banks authenticate with ordinary OAuth 2.0 access tokens issued by the bureau's org to their users.
//! creditlink introspects each token with its own connected-app credentials, reads the token user's
//! `User.AccountId` (the bank), and accepts only banks listed in `[[banks]]`. Results are cached by a SHA-256
//! of the token (the token itself is never stored or logged) for at most `[intake] token_cache` and never past
//! the token's own expiry, so a revoked token is refused at most that late.
//!
//! When Salesforce cannot be reached, a token that is not in the cache cannot be checked: the bank gets 503
//! with `Retry-After`, never a false 401.
//!
//! Handlers take the caller as an [`Authenticated`] extractor, which axum runs before the body extractor:
//! the token is checked from the headers alone, so a caller without a valid token is refused before a byte of
//! its body is read (otherwise unauthenticated uploads could make the daemon buffer bodies at will).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::headers::BearerToken;
use crate::config::BankConfig;
use crate::salesforce::{ErrorClass, SalesforceClient, SfError};

/// The authenticated caller: a user of one member bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The bank's Salesforce Account id: the tenant every record is scoped to.
    pub account_id: String,
    /// The bank's short code from `[[banks]]` (selects its mapping variant).
    pub bank_code: String,
    /// The Salesforce User id of the caller (for the audit trail).
    pub user_id: String,
}

/// Most tokens remembered at once; beyond it the cache is cleared (a bounded, simple policy: re-checking a
/// token costs two API calls).
const MAX_CACHED_TOKENS: usize = 10_000;

/// SHA-256 of a token → who it belongs to and until when that answer may be reused.
type TokenCache = HashMap<[u8; 32], (Principal, DateTime<Utc>)>;

/// Checks bearer tokens against Salesforce, with a bounded cache.
#[derive(Clone)]
pub struct Authenticator {
    client: SalesforceClient,
    org_id: String,
    banks: Arc<Vec<BankConfig>>,
    max_cache: Duration,
    cache: Arc<Mutex<TokenCache>>,
}

impl Authenticator {
    pub fn new(
        client: SalesforceClient,
        org_id: String,
        banks: Vec<BankConfig>,
        max_cache: Duration,
    ) -> Self {
        Authenticator {
            client,
            org_id,
            banks: Arc::new(banks),
            max_cache,
            cache: Arc::default(),
        }
    }

    /// The bank user behind `token`, or the error the bank should see.
    pub async fn authenticate(&self, token: &BearerToken) -> Result<Principal, ApiError> {
        let secret = token.0.expose_secret();
        let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let now = Utc::now();
        if let Some((principal, until)) = self.cache.lock().get(&key)
            && *until > now
        {
            return Ok(principal.clone());
        }
        let intro = self.client.introspect(secret).await.map_err(unavailable)?;
        if !intro.active {
            return Err(ApiError::TokenRejected {
                reason: "introspection: inactive".into(),
            });
        }
        if intro.org_id.as_deref() != Some(self.org_id.as_str()) {
            return Err(ApiError::TokenRejected {
                reason: "token of another org".into(),
            });
        }
        let user_id = intro.user_id.ok_or_else(|| ApiError::TokenRejected {
            reason: "introspection without a user".into(),
        })?;
        let user = self
            .client
            .get("User", &user_id, Some(&["AccountId"]))
            .await
            .map_err(unavailable)?;
        let account_id = user
            .get("AccountId")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let bank = self
            .banks
            .iter()
            .find(|b| b.account_id == account_id)
            .ok_or_else(|| {
                ApiError::Forbidden(
                    "This user does not belong to a member bank enrolled with creditlink.".into(),
                )
            })?;
        let principal = Principal {
            account_id: bank.account_id.clone(),
            bank_code: bank.code.clone(),
            user_id,
        };
        let mut until =
            now + chrono::Duration::from_std(self.max_cache).unwrap_or(chrono::Duration::zero());
        if let Some(exp) = intro.exp.and_then(|s| DateTime::from_timestamp(s, 0)) {
            until = until.min(exp);
        }
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(key, (principal.clone(), until));
        Ok(principal)
    }
}

/// The authenticated caller of a request, checked from its `Authorization` header before the body is read.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRef<super::api::IntakeState> for Authenticator {
    fn from_ref(state: &super::api::IntakeState) -> Self {
        state.auth.clone()
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token = BearerToken::from_request_parts(parts, state).await?;
        let principal = Authenticator::from_ref(state).authenticate(&token).await?;
        Ok(Authenticated(principal))
    }
}

/// A Salesforce failure while checking a token: the bank cannot be told yes or no, so 503.
fn unavailable(err: SfError) -> ApiError {
    let retry_after = match err.class() {
        ErrorClass::Permanent => None,
        _ => Some(err.retry_after().unwrap_or(Duration::from_secs(5))),
    };
    ApiError::unavailable(retry_after, err)
}
