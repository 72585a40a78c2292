//! Helpers shared by the end-to-end tests: a bank client that behaves like a real integrator (the same
//! request with the same `Idempotency-Key` on every retry), bounded polling, sandboxes with short retry
//! settings, and reading what the simulated org stored.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use creditlink::sandbox::{Sandbox, SandboxOptions};
use creditlink::sim::{Seed, SimOptions};
use parking_lot::RwLock;
use rand::RngExt;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const BANK_A: &str = "0015Y00000BANKAQA5";
pub const BANK_B: &str = "0015Y00000BANKBQA5";
pub const CRR: &str = "Credit_Report_Request__c";

/// Whether the tests should talk (`TEST_LOG=1`).
pub fn verbose() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

/// Prints only under `TEST_LOG`.
pub fn log(line: impl AsRef<str>) {
    if verbose() {
        eprintln!("[e2e] {}", line.as_ref());
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Retry settings short enough for tests: retries within a second, a rate limit floor of 200 ms, and
/// enough attempts to outlast a 30 s outage.
pub fn fast_retries() -> Vec<(String, String)> {
    [
        (
            "CREDITLINK__OUTBOX__RETRY_SCHEDULE_MS",
            "[0, 100, 200, 500, 1000]",
        ),
        ("CREDITLINK__OUTBOX__RATE_LIMIT_FLOOR_MS", "200"),
        ("CREDITLINK__OUTBOX__MAX_ATTEMPTS", "200"),
        ("CREDITLINK__SALESFORCE__TIMEOUT_MS", "5000"),
        // Longer than every attempt timeout (e-mails: 30 s), which the outbox requires of a lease.
        ("CREDITLINK__OUTBOX__LEASE_MS", "40000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Starts an in-process sandbox (daemon + simulated org) in a fresh temp dir with [`fast_retries`].
pub async fn sandbox(sim: SimOptions) -> (Sandbox, TempDir) {
    sandbox_with(sim, &[]).await
}

/// [`sandbox`] with more `CREDITLINK__SECTION__KEY` overrides on top of [`fast_retries`].
pub async fn sandbox_with(sim: SimOptions, overrides: &[(&str, &str)]) -> (Sandbox, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SandboxOptions::new(
        dir.path().join("data"),
        "127.0.0.1:0".parse().expect("literal"),
    );
    opts.sim = sim;
    opts.overrides = fast_retries();
    opts.overrides.extend(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // These tests are about the bank → Salesforce path; the simulated bureau's automation would add
    // outbox messages of its own (status mirrors, webhooks) and make "nothing stored" counts racy.
    opts.automate = false;
    let sb = Sandbox::start(opts).await.expect("sandbox starts");
    (sb, dir)
}

/// The two demo banks of a sandbox.
pub async fn sandbox_banks(sb: &Sandbox) -> (Bank, Bank) {
    let a = Bank::connect(&sb.info, &sb.daemon_url, BANK_A).await;
    let b = Bank::connect(&sb.info, &sb.daemon_url, BANK_B).await;
    (a, b)
}

/// An org whose `Bank_Reference__c` is shorter (20) than the mapping allows (64): the mapping accepts a
/// 40-character reference, the org refuses it with `STRING_TOO_LONG`, a permanent error.
pub fn org_with_short_reference() -> SimOptions {
    let mut seed = Seed::default_org();
    let object = seed
        .objects
        .iter_mut()
        .find(|o| o.name == CRR)
        .expect("request object in seed");
    let field = object
        .fields
        .iter_mut()
        .find(|f| f.name == "Bank_Reference__c")
        .expect("reference field");
    field.length = Some(20);
    SimOptions {
        seed,
        ..SimOptions::default()
    }
}

/// A unique bank reference; with a prefix of up to 7 characters it fits even the shortened
/// `Bank_Reference__c` (20) of [`org_with_short_reference`].
pub fn unique_reference(prefix: &str) -> String {
    let n: u64 = rand::rng().random_range(0..1 << 48);
    format!("{prefix}-{n:012x}")
}

/// The default person body (docs/bank-api.md).
pub fn person_body(reference: &str) -> Value {
    json!({
        "reference": reference,
        "subject": { "type": "person", "national_id": "CW-1980013101", "first_name": "Maria",
                     "last_name": "Martina", "date_of_birth": "1980-01-31" },
        "purpose": "loan_application",
        "consent": { "given_at": recent_consent("%Y-%m-%dT%H:%M:%SZ") }
    })
}

/// A consent time a day before now in `format`: the mappings refuse consents from the future or older than
/// they allow, so fixed dates would expire.
pub fn recent_consent(format: &str) -> String {
    (chrono::Utc::now() - chrono::Duration::days(1))
        .format(format)
        .to_string()
}

/// Demo Bank B's own shape of a person request (`mappings/banks/DBB/`), as JSON.
pub fn dbb_person_body(reference: &str) -> Value {
    json!({
        "loanReference": reference,
        "applicantKind": "P",
        "applicant": { "idNumber": "CW-1975061502", "givenName": "Jan", "familyName": "Janssen",
                       "birthDate": "15-06-1975" },
        "reason": "LOAN",
        "consentAt": recent_consent("%d-%m-%Y %H:%M")
    })
}

/// A plain HTTP client (no proxies from the environment; bounded requests).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

/// The outcome of [`Bank::submit`]: the 2xx answer a bank finally got for one key.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub status: u16,
    pub id: String,
    /// Sends beyond the first (connection errors, timeouts, 5xx, 409).
    pub retries: u32,
    /// The daemon said `idempotent-replayed`: an earlier send of this key had been stored.
    pub replayed: bool,
}

/// A bank system posting to creditlink with one of its users' Salesforce tokens.
pub struct Bank {
    pub account_id: String,
    daemon_url: String,
    token_request: Value,
    token: RwLock<String>,
    http: reqwest::Client,
}

impl Bank {
    /// Gets a token for the bank `account_id` listed in an info document (`sandbox.json` or the sim's).
    pub async fn connect(info: &Value, daemon_url: &str, account_id: &str) -> Bank {
        let entry = info["banks"]
            .as_array()
            .and_then(|banks| banks.iter().find(|b| b["account_id"] == account_id))
            .unwrap_or_else(|| panic!("bank {account_id} in info: {info}"));
        let bank = Bank {
            account_id: account_id.to_owned(),
            daemon_url: daemon_url.trim_end_matches('/').to_owned(),
            token_request: entry["token_request"].clone(),
            token: RwLock::new(String::new()),
            http: http(),
        };
        bank.refresh_token().await;
        bank
    }

    /// Asks the org for a fresh token (after `expire_tokens`, tokens must be fetched again).
    pub async fn refresh_token(&self) {
        let url = self.token_request["url"].as_str().expect("token url");
        let form: Vec<(String, String)> = self.token_request["form"]
            .as_object()
            .expect("token form")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let body: Value = poll_until("a bank token", Duration::from_secs(20), || async {
            let resp = self.http.post(url).form(&form).send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.json().await.ok()
        })
        .await;
        *self.token.write() = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
    }

    /// A person request in the shape this bank's mapping expects.
    pub fn person_body(&self, reference: &str) -> Value {
        if self.account_id == BANK_B {
            dbb_person_body(reference)
        } else {
            person_body(reference)
        }
    }

    pub fn token(&self) -> String {
        self.token.read().clone()
    }

    /// A `POST /api/v1/report-requests` with this bank's token and nothing else set.
    pub fn post(&self) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/v1/report-requests", self.daemon_url))
            .bearer_auth(self.token())
    }

    /// A `GET` of `path` (below the daemon URL) with this bank's token.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.daemon_url))
            .bearer_auth(self.token())
    }

    /// Posts `body` under `key` like a careful integrator: connection errors, timeouts, 5xx and 409 are
    /// retried with the SAME key and body, with a small growing backoff, until `deadline`; a 401 fetches a
    /// new token once per send. Any other 4xx is returned as `Err` with its body.
    pub async fn submit(
        &self,
        body: &Value,
        key: &str,
        deadline: Instant,
    ) -> Result<Submitted, String> {
        let mut retries = 0u32;
        let mut last = String::new();
        loop {
            if Instant::now() >= deadline {
                return Err(format!("gave up after {retries} retries: {last}"));
            }
            let sent = self
                .post()
                .header("Idempotency-Key", key)
                .json(body)
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    let status = resp.status().as_u16();
                    let replayed = resp.headers().contains_key("idempotent-replayed");
                    let doc: Value = match resp.json().await {
                        Ok(doc) => doc,
                        Err(e) => {
                            // The answer was cut off (the daemon died while sending it): ask again.
                            last = format!("{status} with an unreadable body: {e}");
                            retries += 1;
                            continue;
                        }
                    };
                    let id = doc["id"]
                        .as_str()
                        .ok_or_else(|| format!("{status} without id: {doc}"))?;
                    return Ok(Submitted {
                        status,
                        id: id.to_owned(),
                        retries,
                        replayed,
                    });
                }
                Ok(resp) if resp.status().as_u16() == 401 => {
                    last = "401".into();
                    self.refresh_token().await;
                }
                Ok(resp) if resp.status().is_server_error() || resp.status().as_u16() == 409 => {
                    last = format!(
                        "{} {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    );
                }
                Ok(resp) => {
                    let status = resp.status();
                    return Err(format!(
                        "{status}: {}",
                        resp.text().await.unwrap_or_default()
                    ));
                }
                Err(e) => last = format!("transport: {e}"),
            }
            retries += 1;
            let backoff = Duration::from_millis(25 * u64::from(retries.min(20)));
            tokio::time::sleep(backoff).await;
        }
    }

    /// `GET /api/v1/report-requests/{id}`: status code and body (`Null` when not JSON).
    pub async fn status(&self, id: &str) -> (u16, Value) {
        match self
            .get(&format!("/api/v1/report-requests/{id}"))
            .send()
            .await
        {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Waits until every id in `ids` reads `delivered`; returns the status documents by id.
    pub async fn wait_delivered(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> HashMap<String, Value> {
        let mut done = HashMap::new();
        let deadline = Instant::now() + timeout;
        let mut waiting: Vec<String> = ids.to_vec();
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for id in waiting {
                match self.status(&id).await {
                    (200, doc) if doc["delivery"]["state"] == "delivered" => {
                        done.insert(id, doc);
                    }
                    (200, doc) if doc["status"] == "failed" => {
                        panic!("{id} ended {}: {doc}", doc["status"])
                    }
                    _ => still.push(id),
                }
            }
            waiting = still;
            if waiting.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} requests not delivered after {timeout:?}, e.g. {:?}",
                waiting.len(),
                ids.len(),
                self.status(&waiting[0]).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        done
    }
}

/// How often each `Request_Key__c` appears among `records`.
pub fn key_counts(records: &[serde_json::Map<String, Value>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in records {
        if let Some(key) = r.get("Request_Key__c").and_then(Value::as_str) {
            *counts.entry(key.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Asserts that the org holds exactly one record per id in `ids` and no record with any other key.
pub fn assert_exactly_once(records: &[serde_json::Map<String, Value>], ids: &[String]) {
    let counts = key_counts(records);
    for id in ids {
        assert_eq!(
            counts.get(id).copied().unwrap_or(0),
            1,
            "Request_Key__c {id} must be in the org exactly once"
        );
    }
    let known: std::collections::HashSet<&String> = ids.iter().collect();
    let strangers: Vec<&String> = counts.keys().filter(|k| !known.contains(k)).collect();
    assert!(
        strangers.is_empty(),
        "records no bank was ever given an id for: {strangers:?}"
    );
    assert_eq!(
        records.len(),
        ids.len(),
        "one record per acknowledged request"
    );
}

/// The value of a Prometheus sample (`name{labels}`) in a `/metrics` text, 0 when absent.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            (series == name_and_labels)
                .then(|| value.parse().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

/// Asserts a `429` problem document and returns its `Retry-After` in seconds.
pub fn retry_after_of_429(resp: &reqwest::Response) -> u64 {
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}
