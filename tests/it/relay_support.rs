//! Helpers for the relay tests: a temp-dir outbox, a simulated org, a client for it, messages.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use creditlink::outbox::{
    Destination, Lane, Message, MessageId, NewMessage, Outbox, OutboxOptions, RetryPolicy, State,
};
use creditlink::relay::{PusherSettings, SalesforcePusher};
use creditlink::salesforce::{AppCredentials, AuthFlow, ClientSettings, SalesforceClient};
use creditlink::sim::{self, SimHandle, SimOptions};
use creditlink::store::{Durability, Store};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const OBJECT: &str = "Credit_Report_Request__c";
pub const KEY: &str = "Request_Key__c";
pub const BANK_A: &str = "0015Y00000BANKAQA5";
const CONSUMER_KEY: &str = "3MVG9creditlink.sandbox.consumer";

/// A simulated org, an outbox in a temp dir, and a client for the integration user.
pub struct Rig {
    pub sim: SimHandle,
    pub outbox: Outbox,
    pub client: SalesforceClient,
    pub dir: TempDir,
}

impl Rig {
    pub async fn start(policy: RetryPolicy) -> Rig {
        init_logs();
        let sim = sim::spawn(
            "127.0.0.1:0".parse().expect("literal address"),
            SimOptions::default(),
        )
        .await
        .expect("sim starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let outbox = open_outbox(&dir, policy);
        let client = client(&sim);
        Rig {
            sim,
            outbox,
            client,
            dir,
        }
    }

    pub fn pusher(&self, settings: PusherSettings) -> SalesforcePusher {
        SalesforcePusher::new(self.outbox.clone(), self.client.clone(), settings)
            .expect("valid settings")
    }

    /// Queues `n` report requests with keys `{prefix}-{i}`; returns their ids in order.
    pub async fn enqueue_requests(&self, prefix: &str, n: usize, lane: Lane) -> Vec<MessageId> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let id = self.outbox.enqueue(request(&format!("{prefix}-{i}"), lane));
            ids.push(id.await.expect("enqueue"));
        }
        ids
    }

    pub async fn message(&self, id: MessageId) -> Message {
        self.outbox
            .get(id)
            .await
            .expect("get")
            .expect("message exists")
    }

    pub async fn states(&self, ids: &[MessageId]) -> HashMap<State, usize> {
        let mut counts = HashMap::new();
        for id in ids {
            *counts.entry(self.message(*id).await.state).or_insert(0) += 1;
        }
        counts
    }

    /// `by_route["PATCH /services/data/{version}/composite/sobjects/{object}/{field}"]`, read over HTTP.
    pub async fn collection_upserts(&self) -> u64 {
        let stats = self.sim_get("/__sim/stats").await;
        stats["by_route"]["PATCH /services/data/{version}/composite/sobjects/{object}/{field}"]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn api_calls(&self) -> u64 {
        self.sim_get("/__sim/stats").await["api_calls_total"]
            .as_u64()
            .unwrap_or(0)
    }

    /// How many org records carry each `Request_Key__c`.
    pub async fn records_by_key(&self) -> HashMap<String, usize> {
        let records = self.sim_get(&format!("/__sim/records/{OBJECT}")).await;
        let mut counts = HashMap::new();
        for record in records.as_array().expect("records array") {
            if let Some(key) = record[KEY].as_str() {
                *counts.entry(key.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    pub async fn set_faults(&self, faults: Value) {
        let resp = http()
            .put(format!("{}/__sim/faults", self.sim.base_url()))
            .json(&faults)
            .send()
            .await
            .expect("set faults");
        assert_eq!(resp.status(), 200);
    }

    pub async fn clear_faults(&self) {
        let resp = http()
            .delete(format!("{}/__sim/faults", self.sim.base_url()))
            .send()
            .await
            .expect("clear faults");
        assert_eq!(resp.status(), 200);
    }

    async fn sim_get(&self, path: &str) -> Value {
        http()
            .get(format!("{}{path}", self.sim.base_url()))
            .send()
            .await
            .expect("sim request")
            .json()
            .await
            .expect("sim json")
    }
}

pub fn open_outbox(dir: &TempDir, policy: RetryPolicy) -> Outbox {
    let store = Store::open(dir.path(), Durability::GroupCommit).expect("open store");
    let options = OutboxOptions {
        lease: Duration::from_secs(30),
        ..OutboxOptions::default()
    };
    Outbox::open_with(store, policy, options).expect("open outbox")
}

/// A client using the client-credentials flow of creditlink's connected app in the simulator.
pub fn client(sim: &SimHandle) -> SalesforceClient {
    let secret = std::fs::read_to_string(format!(
        "{}/config/sandbox/creditlink_client_secret",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sandbox secret");
    SalesforceClient::new(ClientSettings {
        login_url: sim.base_url().parse().expect("sim url"),
        api_version: "62.0".to_owned(),
        auth: AuthFlow::ClientCredentials(AppCredentials {
            client_id: CONSUMER_KEY.to_owned(),
            client_secret: SecretString::from(secret.trim().to_owned()),
        }),
        introspection: None,
        timeout: Duration::from_secs(10),
    })
    .expect("client")
}

/// A report request as intake will queue it: Salesforce fields, the key included.
pub fn request(key: &str, lane: Lane) -> NewMessage {
    request_with(key, lane, "Loan Application")
}

pub fn request_with(key: &str, lane: Lane, purpose: &str) -> NewMessage {
    NewMessage {
        tenant: BANK_A.to_owned(),
        lane,
        destination: Destination::Salesforce {
            object: OBJECT.to_owned(),
            ext_field: KEY.to_owned(),
            ext_value: key.to_owned(),
        },
        payload: json!({
            KEY: key,
            "Bank__c": BANK_A,
            "Subject_Type__c": "Person",
            "National_Id__c": "CW-1980013101",
            "First_Name__c": "Maria",
            "Last_Name__c": "Martina",
            "Date_Of_Birth__c": "1980-01-31",
            "Purpose__c": purpose,
        }),
        mapping_version: Some("test".to_owned()),
    }
}

/// Settings for tests: small linger, no pacing surprises.
pub fn settings() -> PusherSettings {
    PusherSettings {
        linger: Duration::from_millis(5),
        concurrency: 4,
        request_timeout: Duration::from_secs(10),
        pause_recheck: Duration::from_millis(200),
        poll_interval: Duration::from_millis(20),
        outage_probe_min: Duration::from_millis(20),
        outage_probe_max: Duration::from_millis(200),
        ..PusherSettings::default()
    }
}

/// Retries within milliseconds, many attempts: for fault tests that must end with everything delivered.
pub fn fast_policy() -> RetryPolicy {
    let ms = Duration::from_millis;
    RetryPolicy::new(
        vec![ms(20), ms(50), ms(100)],
        0.2,
        200,
        Duration::from_secs(3600),
        ms(100),
        ms(500),
    )
    .expect("valid policy")
}

/// The default schedule: a retried message is not due again within a test.
pub fn slow_policy() -> RetryPolicy {
    RetryPolicy::default()
}

/// Polls `check` every 20 ms until it returns true; panics with `what` after `limit`.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("creditlink=debug")
            .with_test_writer()
            .try_init();
    }
}
