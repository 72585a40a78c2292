//! Settings the client is built from and the shapes its calls return.
//!
//! These are the only Salesforce wire shapes the rest of creditlink sees; everything else stays `serde_json`.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use serde::Deserialize;

use super::error::{ApiError, ErrorClass, classify_all};

/// A Salesforce record or request body: field name to JSON value.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// Everything the client needs; built by the config module from files and env vars.
///
/// `Debug` is safe to log: the private key and client secrets are `SecretString`s, which print `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Token endpoint host: `https://login.salesforce.com`, `https://test.salesforce.com`, the org's My Domain, or
    /// the simulator. API calls never go here: they go to the `instance_url` the token response names.
    pub login_url: url::Url,
    /// REST API version without the `v`, e.g. `"62.0"`. Upsert answers 200 vs 204 depend on it (≥ 46.0 → 200).
    pub api_version: String,
    pub auth: AuthFlow,
    /// Credentials for token introspection (the connected app's consumer key + secret); `None` = unavailable.
    pub introspection: Option<AppCredentials>,
    /// Applies to every HTTP call, token requests included.
    pub timeout: Duration,
}

/// How the integration user gets its access token. Both flows are headless and have no refresh token: a new token
/// is minted whenever the old one is refused.
#[derive(Debug, Clone)]
pub enum AuthFlow {
    /// OAuth 2.0 JWT bearer: an RS256 assertion signed with the key whose certificate the connected app holds.
    JwtBearer {
        consumer_key: String,
        username: String,
        /// `https://login.salesforce.com`, `https://test.salesforce.com`, or the Experience Cloud site URL.
        audience: String,
        private_key_pem: SecretString,
    },
    /// OAuth 2.0 client credentials against the My Domain host; the token is issued for the app's run-as user.
    ClientCredentials(AppCredentials),
}

/// A connected app's consumer key and secret.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Answer of a single-record create (`{"id","success","errors"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SaveResult {
    pub id: String,
    #[serde(default = "yes")]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

/// Outcome of an upsert by external id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertResult {
    /// `None` only when an API ≤ 45.0 org answered 204 (updated, no body); the record exists under the external id.
    pub id: Option<String>,
    /// `true` when a new record was inserted, `false` when an existing one was updated.
    pub created: bool,
}

/// One page of a SOQL query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage {
    pub total_size: u64,
    pub done: bool,
    /// Present only when `done` is false: pass it to `query_more`.
    #[serde(default)]
    pub next_records_url: Option<String>,
    pub records: Vec<JsonMap>,
}

/// Per-record result of an sObject Collections call, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordResult {
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    /// Only upserts report it.
    #[serde(default)]
    pub created: Option<bool>,
    /// Items use `statusCode`, which [`ApiError`] accepts as an alias of `errorCode`.
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

impl RecordResult {
    /// `None` for a success; otherwise what to do about this one record.
    pub fn error_class(&self) -> Option<ErrorClass> {
        (!self.success).then(|| classify_all(None, &self.errors))
    }
}

/// A file to store as a `ContentVersion`.
#[derive(Clone)]
pub struct ContentUpload {
    pub title: String,
    /// The file name Salesforce shows and derives the file type from, e.g. `report.pdf`.
    pub path_on_client: String,
    pub data: Bytes,
    /// A record id: Salesforce links the new file to it (creating the `ContentDocumentLink`).
    pub first_publish_location_id: Option<String>,
    /// Send as `multipart/form-data` (up to 2 GB) instead of base64 in JSON (up to 37.5 MB of file).
    pub multipart: bool,
}

impl fmt::Debug for ContentUpload {
    /// Reports carry personal data: show the size, never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentUpload")
            .field("title", &self.title)
            .field("path_on_client", &self.path_on_client)
            .field("data_len", &self.data.len())
            .field("first_publish_location_id", &self.first_publish_location_id)
            .field("multipart", &self.multipart)
            .finish()
    }
}

/// Answer of the introspection endpoint (RFC 7662 with Salesforce's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    pub username: Option<String>,
    /// The identity URL, `https://…/id/{OrgId}/{UserId}`.
    pub sub: Option<String>,
    /// Parsed from `sub`.
    pub user_id: Option<String>,
    /// Parsed from `sub`.
    pub org_id: Option<String>,
    /// Expiry, epoch seconds.
    pub exp: Option<i64>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
}

/// Who the integration user is, from the `id` URL of the token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub org_id: String,
    pub user_id: String,
}

impl Identity {
    /// Parse an identity URL ending in `/id/{OrgId}/{UserId}` (a trailing slash is tolerated).
    pub fn from_identity_url(url: &str) -> Option<Identity> {
        let mut segments = url.trim_end_matches('/').rsplit('/');
        let user_id = segments.next().filter(|s| !s.is_empty())?;
        let org_id = segments.next().filter(|s| !s.is_empty())?;
        (segments.next() == Some("id")).then(|| Identity {
            org_id: org_id.to_owned(),
            user_id: user_id.to_owned(),
        })
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_from_url() {
        let id = Identity::from_identity_url(
            "https://login.salesforce.com/id/00Dxx0000001gPzEAI/005xx000001SvogAAC",
        )
        .unwrap();
        assert_eq!(id.org_id, "00Dxx0000001gPzEAI");
        assert_eq!(id.user_id, "005xx000001SvogAAC");
        assert!(Identity::from_identity_url("http://127.0.0.1:9/id/00D/005/").is_some());
        assert_eq!(
            Identity::from_identity_url("https://x/services/00D/005"),
            None
        );
        assert_eq!(Identity::from_identity_url("005"), None);
    }

    #[test]
    fn collection_item_with_status_code_is_classified() {
        let item: RecordResult = serde_json::from_str(
            r#"{"success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"bad id","fields":["Id"]}]}"#,
        )
        .unwrap();
        assert_eq!(item.errors[0].code, "MALFORMED_ID");
        assert_eq!(item.errors[0].fields, ["Id"]);
        assert_eq!(item.error_class(), Some(ErrorClass::Permanent));
        let locked: RecordResult =
            serde_json::from_str(r#"{"id":null,"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"x"}]}"#)
                .unwrap();
        assert_eq!(locked.error_class(), Some(ErrorClass::Retryable));
        let ok: RecordResult = serde_json::from_str(
            r#"{"id":"a01000000000001AAA","success":true,"errors":[],"created":true}"#,
        )
        .unwrap();
        assert_eq!(ok.error_class(), None);
        assert_eq!(ok.created, Some(true));
    }

    #[test]
    fn upload_debug_hides_the_bytes() {
        let upload = ContentUpload {
            title: "r".into(),
            path_on_client: "r.pdf".into(),
            data: Bytes::from_static(b"CW-1980013101"),
            first_publish_location_id: None,
            multipart: false,
        };
        let shown = format!("{upload:?}");
        assert!(!shown.contains("CW-1980013101"), "{shown}");
        assert!(shown.contains("data_len: 13"));
    }
}
