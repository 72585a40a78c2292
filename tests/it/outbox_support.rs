//! Helpers shared by the outbox and store tests.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use creditlink::outbox::{
    Attempt, AttemptOutcome, Destination, Lane, NewMessage, Outbox, OutboxOptions, RetryPolicy,
};
use creditlink::store::{Durability, Store};

pub fn open(dir: &Path) -> Outbox {
    open_with_policy(dir, policy(5, Duration::from_secs(3600)))
}

pub fn open_with_policy(dir: &Path, policy: RetryPolicy) -> Outbox {
    let store = Store::open(dir, Durability::GroupCommit).expect("open store");
    let options = OutboxOptions {
        lease: Duration::from_secs(30),
        ..OutboxOptions::default()
    };
    Outbox::open_with(store, policy, options).expect("open outbox")
}

/// A jitter-free policy: 10 s, 20 s, 40 s steps.
pub fn policy(max_attempts: u32, max_age: Duration) -> RetryPolicy {
    let s = Duration::from_secs;
    RetryPolicy::new(
        vec![s(10), s(20), s(40)],
        0.0,
        max_attempts,
        max_age,
        s(60),
        s(300),
    )
    .expect("valid policy")
}

pub fn salesforce(tenant: &str, lane: Lane, n: u32) -> NewMessage {
    NewMessage {
        tenant: tenant.to_string(),
        lane,
        destination: Destination::Salesforce {
            object: "Credit_Report_Request__c".into(),
            ext_field: "Request_Key__c".into(),
            ext_value: format!("key-{n}"),
        },
        payload: serde_json::json!({ "n": n }),
        mapping_version: Some("v1".into()),
    }
}

pub fn bank(tenant: &str) -> NewMessage {
    NewMessage {
        tenant: tenant.to_string(),
        lane: Lane::Interactive,
        destination: Destination::Bank {
            endpoint: "http://127.0.0.1:1/hook".into(),
            event: "report.completed".into(),
        },
        payload: serde_json::json!({}),
        mapping_version: None,
    }
}

pub fn attempt(at: DateTime<Utc>, outcome: AttemptOutcome, status: Option<u16>) -> Attempt {
    Attempt {
        started_at: at,
        finished_at: at,
        outcome,
        http_status: status,
        error_code: (outcome != AttemptOutcome::Success).then(|| "SERVER_UNAVAILABLE".into()),
        message: None,
        latency_ms: 3,
    }
}

/// The message as the store holds it now (after a claim: InFlight, with its lease token).
pub async fn held(
    outbox: &Outbox,
    id: creditlink::outbox::MessageId,
) -> creditlink::outbox::Message {
    outbox.get(id).await.expect("get").expect("message exists")
}

pub fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}
