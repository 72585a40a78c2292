//! OAuth: getting the integration user's access token, caching it, and replacing it when the org refuses it.
//!
//! Salesforce's headless flows (JWT bearer, client credentials) return no `expires_in` and no refresh token
//! (Salesforce's OAuth 2.0 JWT bearer and client credentials flows). So a token is used until the org answers
//! `401 INVALID_SESSION_ID`, and then a new one is minted from scratch.
//!
//! Invariants:
//! - **One token for all callers**, and **one refresh at a time**: callers that find no token queue on a tokio
//!   mutex; the first one fetches, the others find the fresh token (or the shared failure) when they get the lock.
//!   Twenty concurrent calls after a restart cost one token request, not twenty.
//! - **Invalidation is generational**: each token carries a generation number and a 401 only drops the token if it
//!   is still the one that failed, so a late 401 from an old request never throws away a token that was just
//!   refreshed by someone else.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::RwLock;
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::client::join_segments;
use super::error::{ErrorClass, SfError, oauth_error_from_body};
use super::types::{AppCredentials, AuthFlow, Identity, Introspection};

/// Salesforce wants `exp` "within 3 minutes"; 170 s leaves room for clock skew on our side.
pub(crate) const JWT_LIFETIME: Duration = Duration::from_secs(170);
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An access token and where to use it.
pub(crate) struct Token {
    pub(crate) access: SecretString,
    /// API calls go here, never to the login host.
    pub(crate) instance_url: Url,
    /// Increases with every token obtained; see the module invariants.
    pub(crate) generation: u64,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access", &"[REDACTED]")
            .field("instance_url", &self.instance_url.as_str())
            .field("generation", &self.generation)
            .finish()
    }
}

/// The claims of a JWT bearer assertion (`iss` consumer key, `sub` username, `aud` login host, `exp` epoch s).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JwtClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: u64,
}

/// A flow with its key material parsed once, at construction, so a bad key is a startup error.
enum PreparedFlow {
    Jwt {
        consumer_key: String,
        username: String,
        audience: String,
        key: EncodingKey,
    },
    ClientCredentials(AppCredentials),
}

/// Token cache plus the two OAuth endpoints the daemon uses (token and introspection).
pub(crate) struct Authenticator {
    http: reqwest::Client,
    token_url: Url,
    introspect_url: Url,
    flow: PreparedFlow,
    introspection: Option<AppCredentials>,
    current: RwLock<Option<Arc<Token>>>,
    identity: RwLock<Option<Identity>>,
    /// Held while a token request is in flight; holds the failure of the last refresh, for the callers that waited.
    refresh: tokio::sync::Mutex<Option<SfError>>,
    /// Completed refresh attempts, successful or not: lets a waiter see that a refresh finished while it waited.
    refreshes: AtomicU64,
    generation: AtomicU64,
}

impl Authenticator {
    pub(crate) fn new(
        http: reqwest::Client,
        login_url: &Url,
        flow: &AuthFlow,
        introspection: Option<AppCredentials>,
    ) -> Result<Self, SfError> {
        let flow = match flow {
            AuthFlow::JwtBearer {
                consumer_key,
                username,
                audience,
                private_key_pem,
            } => PreparedFlow::Jwt {
                consumer_key: consumer_key.clone(),
                username: username.clone(),
                audience: audience.clone(),
                key: EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                    .map_err(|e| {
                        SfError::Config(format!("JWT private key is not a usable RSA PEM key: {e}"))
                    })?,
            },
            AuthFlow::ClientCredentials(credentials) => {
                PreparedFlow::ClientCredentials(credentials.clone())
            }
        };
        Ok(Authenticator {
            http,
            token_url: join_segments(login_url, &["services", "oauth2", "token"])?,
            introspect_url: join_segments(login_url, &["services", "oauth2", "introspect"])?,
            flow,
            introspection,
            current: RwLock::new(None),
            identity: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        })
    }

    /// The cached token, or a new one (single-flight).
    pub(crate) async fn token(&self) -> Result<Arc<Token>, SfError> {
        if let Some(token) = self.current.read().clone() {
            return Ok(token);
        }
        let seen = self.refreshes.load(Ordering::Acquire);
        let mut last_failure = self.refresh.lock().await;
        if let Some(token) = self.current.read().clone() {
            return Ok(token);
        }
        if self.refreshes.load(Ordering::Acquire) != seen
            && let Some(failure) = last_failure.as_ref()
        {
            // Someone else tried while we waited and failed: share their answer instead of hammering the endpoint.
            return Err(failure.clone());
        }
        let outcome = self
            .request_token_with_retry()
            .await
            .and_then(|response| self.install(response));
        self.refreshes.fetch_add(1, Ordering::AcqRel);
        match outcome {
            Ok(token) => {
                *last_failure = None;
                Ok(token)
            }
            Err(error) => {
                tracing::warn!(code = error.code(), class = ?error.class(), "Salesforce token request failed");
                *last_failure = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Drop the cached token if it is still the one (by generation) the org just refused.
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut current = self.current.write();
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            tracing::debug!(generation, "Salesforce refused the session; token dropped");
            *current = None;
        }
    }

    pub(crate) fn has_token(&self) -> bool {
        self.current.read().is_some()
    }

    pub(crate) fn identity(&self) -> Option<Identity> {
        self.identity.read().clone()
    }

    /// Ask the org whether a (bank user's) access token is active, and whose it is.
    pub(crate) async fn introspect(&self, token: &str) -> Result<Introspection, SfError> {
        #[derive(Deserialize)]
        struct Raw {
            active: bool,
            username: Option<String>,
            sub: Option<String>,
            exp: Option<i64>,
            client_id: Option<String>,
            scope: Option<String>,
        }
        let credentials = self
            .introspection
            .as_ref()
            .ok_or_else(|| SfError::Config("no introspection credentials configured".to_owned()))?;
        let response = self
            .http
            .post(self.introspect_url.clone())
            .basic_auth(
                &credentials.client_id,
                Some(credentials.client_secret.expose_secret()),
            )
            .header(ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(SfError::transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(SfError::transport)?;
        if !status.is_success() {
            return Err(oauth_error_from_body(status, &body));
        }
        let raw: Raw = serde_json::from_slice(&body).map_err(|e| {
            SfError::decode(
                status,
                format!(
                    "introspection body: {}",
                    super::client::describe_json_error(&e)
                ),
            )
        })?;
        let identity = raw.sub.as_deref().and_then(Identity::from_identity_url);
        Ok(Introspection {
            active: raw.active,
            username: raw.username,
            user_id: identity.as_ref().map(|i| i.user_id.clone()),
            org_id: identity.map(|i| i.org_id),
            sub: raw.sub,
            exp: raw.exp,
            client_id: raw.client_id,
            scope: raw.scope,
        })
    }

    fn install(&self, response: TokenResponse) -> Result<Arc<Token>, SfError> {
        let instance_url = Url::parse(&response.instance_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
            .ok_or_else(|| SfError::Decode {
                status: 200,
                message: "token response has no usable instance_url".into(),
            })?;
        if let Some(identity) = response.id.as_deref().and_then(Identity::from_identity_url) {
            *self.identity.write() = Some(identity);
        }
        let token = Arc::new(Token {
            access: SecretString::from(response.access_token),
            instance_url,
            generation: self.generation.fetch_add(1, Ordering::AcqRel) + 1,
        });
        tracing::debug!(generation = token.generation, instance = %token.instance_url, "Salesforce token obtained");
        *self.current.write() = Some(token.clone());
        Ok(token)
    }

    /// A few quick retries on transient failures of the token endpoint only (API calls are retried by the outbox).
    async fn request_token_with_retry(&self) -> Result<TokenResponse, SfError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(2)
            .with_jitter();
        (|| self.request_token())
            .retry(backoff)
            .when(|e: &SfError| e.class() == ErrorClass::Retryable && !e.is_rate_limit())
            .notify(|e: &SfError, wait| {
                tracing::debug!(code = e.code(), ?wait, "retrying Salesforce token request")
            })
            .await
    }

    async fn request_token(&self) -> Result<TokenResponse, SfError> {
        let request = self
            .http
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json");
        let request = match &self.flow {
            PreparedFlow::Jwt {
                consumer_key,
                username,
                audience,
                key,
            } => {
                let assertion = sign_assertion(consumer_key, username, audience, key)?;
                request.form(&[
                    ("grant_type", JWT_GRANT),
                    ("assertion", assertion.expose_secret()),
                ])
            }
            PreparedFlow::ClientCredentials(credentials) => request
                .basic_auth(
                    &credentials.client_id,
                    Some(credentials.client_secret.expose_secret()),
                )
                .form(&[("grant_type", "client_credentials")]),
        };
        let response = request.send().await.map_err(SfError::transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(SfError::transport)?;
        if !status.is_success() {
            return Err(oauth_error_from_body(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            SfError::decode(
                status,
                format!("token response: {}", super::client::describe_json_error(&e)),
            )
        })
    }
}

/// The fields of a token response the client uses; `issued_at`, `signature`, `scope` are ignored.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
    /// Identity URL `…/id/{OrgId}/{UserId}`.
    #[serde(default)]
    id: Option<String>,
}

/// Sign a JWT bearer assertion valid for [`JWT_LIFETIME`]. The assertion is a credential: kept secret.
pub(crate) fn sign_assertion(
    consumer_key: &str,
    username: &str,
    audience: &str,
    key: &EncodingKey,
) -> Result<SecretString, SfError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = JwtClaims {
        iss: consumer_key.to_owned(),
        sub: username.to_owned(),
        aud: audience.to_owned(),
        exp: (now + JWT_LIFETIME).as_secs(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map(SecretString::from)
        .map_err(|e| SfError::Config(format!("cannot sign JWT assertion: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn sandbox_file(name: &str) -> String {
        let path = format!("{}/config/sandbox/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn assertion_carries_the_documented_claims_and_verifies_with_the_public_key() {
        let key =
            EncodingKey::from_rsa_pem(sandbox_file("jwt_private_key.pem").as_bytes()).unwrap();
        let assertion = sign_assertion(
            "3MVG-demo",
            "integration@bureau.example",
            "https://login.salesforce.com",
            &key,
        )
        .unwrap();

        let header = jsonwebtoken::decode_header(assertion.expose_secret()).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);

        let public =
            DecodingKey::from_rsa_pem(sandbox_file("jwt_public_key.pem").as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://login.salesforce.com"]);
        validation.set_issuer(&["3MVG-demo"]);
        let decoded =
            jsonwebtoken::decode::<JwtClaims>(assertion.expose_secret(), &public, &validation)
                .unwrap();
        assert_eq!(decoded.claims.sub, "integration@bureau.example");

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(decoded.claims.exp > now, "already expired");
        assert!(
            decoded.claims.exp <= now + 180,
            "exp must be within 3 minutes, got +{}",
            decoded.claims.exp - now
        );
    }

    #[test]
    fn assertion_signed_with_another_key_does_not_verify() {
        let key =
            EncodingKey::from_rsa_pem(sandbox_file("wrong_private_key.pem").as_bytes()).unwrap();
        let assertion = sign_assertion("k", "u", "a", &key).unwrap();
        let public =
            DecodingKey::from_rsa_pem(sandbox_file("jwt_public_key.pem").as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["a"]);
        assert!(
            jsonwebtoken::decode::<JwtClaims>(assertion.expose_secret(), &public, &validation)
                .is_err()
        );
    }

    #[test]
    fn an_unusable_private_key_is_a_config_error_at_construction() {
        let flow = AuthFlow::JwtBearer {
            consumer_key: "k".into(),
            username: "u".into(),
            audience: "a".into(),
            private_key_pem: SecretString::from("not a key"),
        };
        let login = Url::parse("https://login.salesforce.com").unwrap();
        let result = Authenticator::new(reqwest::Client::new(), &login, &flow, None);
        assert!(matches!(result, Err(SfError::Config(_))));
    }

    #[test]
    fn token_debug_masks_the_access_token() {
        let token = Token {
            access: SecretString::from("00Dxx!SECRETSECRET"),
            instance_url: Url::parse("https://acme.my.salesforce.com").unwrap(),
            generation: 1,
        };
        assert!(!format!("{token:?}").contains("SECRETSECRET"));
    }
}
