//! The REST client: single-record calls and queries, plus the request plumbing the other files share.
//!
//! Every call goes through [`SalesforceClient::send`], which adds the bearer token, records
//! `Sforce-Limit-Info`, turns error statuses into [`SfError`], and on a `401` replaces the token and repeats the
//! call exactly once, so callers never see an expired session. There is no other retry here: the outbox decides
//! when to try again, from [`SfError::class`].
//!
//! Logging rule: spans name the operation and the object, events carry status and latency. URLs are never logged
//! (query strings hold SOQL, and SOQL can hold a national id), nor are record fields, tokens or assertions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tracing::instrument;
use url::Url;

use super::auth::Authenticator;
use super::error::{SfError, api_error_from_body};
use super::limits::{ApiUsage, UsageTracker};
use super::types::{
    ClientSettings, Identity, Introspection, JsonMap, QueryPage, SaveResult, UpsertResult,
};

/// Connect timeout cap: a dead host should fail fast even when the whole-request timeout is long (uploads).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Salesforce org, as the integration user sees it. Cheap to clone: all clones share one token and one HTTP pool.
#[derive(Clone)]
pub struct SalesforceClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    auth: Authenticator,
    /// `v62.0`: the path segment, with its `v`.
    version: String,
    usage: UsageTracker,
}

impl std::fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

impl SalesforceClient {
    /// Build a client. No network I/O happens here; the first call (or [`Self::ensure_token`]) gets a token.
    pub fn new(settings: ClientSettings) -> Result<Self, SfError> {
        let version = settings.api_version.trim().trim_start_matches('v');
        let valid_version = version.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && (major.to_owned() + minor)
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        });
        if !valid_version {
            return Err(SfError::Config(format!(
                "API version {:?} is not of the form 62.0",
                settings.api_version
            )));
        }
        if settings.timeout.is_zero() {
            return Err(SfError::Config(
                "timeout must be greater than zero".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(MAX_CONNECT_TIMEOUT))
            // Salesforce does not redirect API calls; a 3xx (the 300 of an ambiguous upsert) must reach us as is.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("creditlink/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SfError::Config(format!("cannot build HTTP client: {e}")))?;
        let auth = Authenticator::new(
            http.clone(),
            &settings.login_url,
            &settings.auth,
            settings.introspection,
        )?;
        Ok(SalesforceClient {
            inner: Arc::new(Inner {
                http,
                auth,
                version: format!("v{version}"),
                usage: UsageTracker::default(),
            }),
        })
    }

    /// `POST /sobjects/{object}` → 201.
    #[instrument(name = "salesforce", skip_all, fields(op = "create", object = %object))]
    pub async fn create(&self, object: &str, fields: &JsonMap) -> Result<SaveResult, SfError> {
        let response = self
            .send(|c| Ok(c.data(Method::POST, &["sobjects", object])?.json(fields)))
            .await?;
        read_json(response).await
    }

    /// `GET /sobjects/{object}/{id}[?fields=…]`.
    #[instrument(name = "salesforce", skip_all, fields(op = "get", object = %object))]
    pub async fn get(
        &self,
        object: &str,
        id: &str,
        fields: Option<&[&str]>,
    ) -> Result<JsonMap, SfError> {
        let response = self
            .send(|c| {
                let request = c.data(Method::GET, &["sobjects", object, id])?;
                Ok(match fields {
                    Some(fields) => request.query(&[("fields", fields.join(","))]),
                    None => request,
                })
            })
            .await?;
        read_json(response).await
    }

    /// `GET /sobjects/{object}/{field}/{value}`: the record whose external id `field` equals `value`.
    #[instrument(name = "salesforce", skip_all, fields(op = "get_by_external_id", object = %object))]
    pub async fn get_by_external_id(
        &self,
        object: &str,
        field: &str,
        value: &str,
    ) -> Result<JsonMap, SfError> {
        let response = self
            .send(|c| c.data(Method::GET, &["sobjects", object, field, value]))
            .await?;
        read_json(response).await
    }

    /// `PATCH /sobjects/{object}/{id}` → 204.
    #[instrument(name = "salesforce", skip_all, fields(op = "update", object = %object))]
    pub async fn update(&self, object: &str, id: &str, fields: &JsonMap) -> Result<(), SfError> {
        self.send(|c| {
            Ok(c.data(Method::PATCH, &["sobjects", object, id])?
                .json(fields))
        })
        .await?;
        Ok(())
    }

    /// `DELETE /sobjects/{object}/{id}` → 204.
    #[instrument(name = "salesforce", skip_all, fields(op = "delete", object = %object))]
    pub async fn delete(&self, object: &str, id: &str) -> Result<(), SfError> {
        self.send(|c| c.data(Method::DELETE, &["sobjects", object, id]))
            .await?;
        Ok(())
    }

    /// `PATCH /sobjects/{object}/{ext_field}/{ext_value}`: insert or update by external id. `fields` must not contain
    /// `ext_field` or `Id`. 201 → created; 200 → updated; 204 (API ≤ 45.0) → updated, id unknown; 300 (several
    /// matches) and 404 (unknown field) → permanent errors (`MULTIPLE_CHOICES`, `NOT_FOUND`).
    #[instrument(name = "salesforce", skip_all, fields(op = "upsert", object = %object))]
    pub async fn upsert(
        &self,
        object: &str,
        ext_field: &str,
        ext_value: &str,
        fields: &JsonMap,
    ) -> Result<UpsertResult, SfError> {
        #[derive(serde::Deserialize)]
        struct Body {
            id: Option<String>,
            created: Option<bool>,
        }
        let response = self
            .send(|c| {
                Ok(
                    c.data(Method::PATCH, &["sobjects", object, ext_field, ext_value])?
                        .json(fields),
                )
            })
            .await?;
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(UpsertResult {
                id: None,
                created: false,
            });
        }
        let body: Body = read_json(response).await?;
        Ok(UpsertResult {
            id: body.id,
            created: body.created.unwrap_or(status == StatusCode::CREATED),
        })
    }

    /// `GET /query?q=…`: the first page.
    #[instrument(name = "salesforce", skip_all, fields(op = "query"))]
    pub async fn query(&self, soql: &str) -> Result<QueryPage, SfError> {
        let response = self
            .send(|c| Ok(c.data(Method::GET, &["query"])?.query(&[("q", soql)])))
            .await?;
        read_json(response).await
    }

    /// The page a previous page's `nextRecordsUrl` points at.
    #[instrument(name = "salesforce", skip_all, fields(op = "query_more"))]
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryPage, SfError> {
        let response = self
            .send(|c| c.instance_path(Method::GET, next_records_url))
            .await?;
        read_json(response).await
    }

    /// Every record of a query, following `nextRecordsUrl`. Holds all records in memory: for bounded queries.
    pub async fn query_all(&self, soql: &str) -> Result<Vec<JsonMap>, SfError> {
        let mut page = self.query(soql).await?;
        let mut records = std::mem::take(&mut page.records);
        while let (false, Some(next)) = (page.done, page.next_records_url.take()) {
            page = self.query_more(&next).await?;
            if page.next_records_url.as_deref() == Some(next.as_str()) {
                return Err(SfError::Decode {
                    status: 200,
                    message: "query paging does not advance".to_owned(),
                });
            }
            records.append(&mut page.records);
        }
        Ok(records)
    }

    /// `GET /sobjects/{object}/describe`.
    #[instrument(name = "salesforce", skip_all, fields(op = "describe", object = %object))]
    pub async fn describe(&self, object: &str) -> Result<serde_json::Value, SfError> {
        let response = self
            .send(|c| c.data(Method::GET, &["sobjects", object, "describe"]))
            .await?;
        read_json(response).await
    }

    /// `GET /limits`: the org's limits (`DailyApiRequests` …). Costs an API call; [`Self::api_usage`] does not.
    #[instrument(name = "salesforce", skip_all, fields(op = "limits"))]
    pub async fn limits(&self) -> Result<serde_json::Value, SfError> {
        let response = self.send(|c| c.data(Method::GET, &["limits"])).await?;
        read_json(response).await
    }

    /// Token introspection for a bank user's bearer token, with the connected app's credentials.
    #[instrument(name = "salesforce", skip_all, fields(op = "introspect"))]
    pub async fn introspect(&self, token: &str) -> Result<Introspection, SfError> {
        self.inner.auth.introspect(token).await
    }

    /// Get a token now if none is cached (readiness checks, startup).
    pub async fn ensure_token(&self) -> Result<(), SfError> {
        self.inner.auth.token().await.map(|_| ())
    }

    /// Whether a token is cached that the org has not refused yet (Salesforce announces no expiry).
    pub fn token_valid(&self) -> bool {
        self.inner.auth.has_token()
    }

    /// The `api-usage` of the last response that carried `Sforce-Limit-Info`.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.inner.usage.get()
    }

    /// The integration user's org and user id, known once a token has been obtained.
    pub fn identity(&self) -> Option<Identity> {
        self.inner.auth.identity()
    }

    /// Send one API request built by `make`, with the token, limit tracking, error mapping and the one re-auth retry.
    /// `make` may run twice (after a re-auth), so it rebuilds the body each time.
    pub(crate) async fn send<F>(&self, make: F) -> Result<reqwest::Response, SfError>
    where
        F: Fn(&Call<'_>) -> Result<RequestBuilder, SfError>,
    {
        let mut reauthenticated = false;
        loop {
            let token = self.inner.auth.token().await?;
            let call = Call {
                http: &self.inner.http,
                instance: &token.instance_url,
                version: &self.inner.version,
            };
            let mut request = make(&call)?
                .bearer_auth(token.access.expose_secret())
                .build()
                .map_err(SfError::transport)?;
            request
                .headers_mut()
                .entry(ACCEPT)
                .or_insert(HeaderValue::from_static("application/json"));
            let started = Instant::now();
            let response = self.inner.http.execute(request).await.map_err(|e| {
                tracing::debug!(
                    timeout = e.is_timeout(),
                    "Salesforce call failed before an answer"
                );
                SfError::transport(e)
            })?;
            self.inner.usage.observe(response.headers());
            let status = response.status();
            tracing::debug!(
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Salesforce answered"
            );
            if status.is_success() {
                return Ok(response);
            }
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(SfError::transport)?;
            let error = api_error_from_body(status, &headers, &body);
            if status == StatusCode::UNAUTHORIZED {
                // The documented answer is INVALID_SESSION_ID; any 401 means this token is no good, so replace it.
                self.inner.auth.invalidate(token.generation);
                if !reauthenticated {
                    reauthenticated = true;
                    continue;
                }
            }
            return Err(error);
        }
    }
}

/// Request building for one attempt: knows the instance URL of the token in use.
pub(crate) struct Call<'a> {
    http: &'a reqwest::Client,
    instance: &'a Url,
    version: &'a str,
}

impl Call<'_> {
    /// `{instance}/services/data/v{version}/{segments…}`, each segment percent-encoded (external id values may hold
    /// `/`, spaces or `#`).
    pub(crate) fn data(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<RequestBuilder, SfError> {
        let mut all = vec!["services", "data", self.version];
        all.extend_from_slice(segments);
        Ok(self
            .http
            .request(method, join_segments(self.instance, &all)?))
    }

    /// A server-given path such as `nextRecordsUrl`. Only paths under `/services/` on the instance are accepted, so a
    /// hostile or corrupted value can never send the bearer token to another host.
    pub(crate) fn instance_path(
        &self,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, SfError> {
        if !path.starts_with("/services/") || path.contains("..") {
            return Err(SfError::Usage(
                "expected a path under /services/ on the Salesforce instance".to_owned(),
            ));
        }
        let url = self
            .instance
            .join(path)
            .map_err(|e| SfError::Usage(format!("bad instance path: {e}")))?;
        Ok(self.http.request(method, url))
    }
}

/// Append path segments (percent-encoded) to a base URL, keeping any path prefix it has (Experience Cloud sites).
pub(crate) fn join_segments(base: &Url, segments: &[&str]) -> Result<Url, SfError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| SfError::Config(format!("{base} cannot be used as a base URL")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Read a success body as JSON; a body cut off mid-way is a transport error, a wrong shape a decode error.
pub(crate) async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, SfError> {
    let status = response.status();
    let body = response.bytes().await.map_err(SfError::transport)?;
    serde_json::from_slice(&body).map_err(|e| SfError::decode(status, describe_json_error(&e)))
}

/// A serde_json error without its message text, which can quote the offending value (a record field).
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    format!(
        "body is not the expected JSON ({:?} error at line {} column {})",
        error.classify(),
        error.line(),
        error.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded_and_prefixes_kept() {
        let base = Url::parse("https://bureau.my.site.com/banks/").unwrap();
        let url = join_segments(
            &base,
            &[
                "services", "data", "v62.0", "sobjects", "X__c", "Key__c", "a/b c#1?",
            ],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://bureau.my.site.com/banks/services/data/v62.0/sobjects/X__c/Key__c/a%2Fb%20c%231%3F"
        );
        let bare = Url::parse("http://127.0.0.1:9440").unwrap();
        assert_eq!(
            join_segments(&bare, &["services", "oauth2", "token"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9440/services/oauth2/token"
        );
    }

    #[test]
    fn instance_paths_cannot_leave_the_instance() {
        let http = reqwest::Client::new();
        let instance = Url::parse("https://acme.my.salesforce.com").unwrap();
        let call = Call {
            http: &http,
            instance: &instance,
            version: "v62.0",
        };
        assert!(
            call.instance_path(Method::GET, "/services/data/v62.0/query/01g-2000")
                .is_ok()
        );
        for bad in [
            "https://evil.example/services/data",
            "//evil.example/services/",
            "/services/../x",
            "query/1",
        ] {
            assert!(
                matches!(call.instance_path(Method::GET, bad), Err(SfError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_errors_do_not_quote_values() {
        let error = serde_json::from_str::<u64>("\"CW-1980013101\"").unwrap_err();
        assert!(!describe_json_error(&error).contains("CW-1980013101"));
    }
}
