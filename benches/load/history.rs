//! Bench-only seeding of delivered history: `BENCH_HISTORY` delivered messages written straight into a
//! stopped daemon's sled store (the library's own `Store` and `Queue::insert`, no HTTP, no flush per
//! message), so the restart of scenario `rss` can be timed with a large history behind the pending queue.
//! Each seeded message is what a delivered report request looks like in the store: the default mapping's
//! fields as payload, a Salesforce id, completed a minute ago (inside the payload retention, so nothing is
//! erased or purged).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use creditlink::outbox::{Destination, Lane, Message, MessageId, State};
use creditlink::store::{Durability, Store};
use futures::StreamExt;

/// Demo Bank A, the tenant of the load's requests.
const TENANT: &str = "0015Y00000BANKAQA5";
const IN_FLIGHT_INSERTS: usize = 256;

/// Writes `count` delivered messages into the store under `store_dir`, then closes it (one flush).
pub async fn seed_delivered(store_dir: &Path, count: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let dir = store_dir.to_path_buf();
    let store = tokio::task::spawn_blocking(move || Store::open(&dir, Durability::None))
        .await?
        .context("opening the stopped daemon's store")?;
    let queue = store.queue()?;
    let done = Utc::now() - chrono::Duration::minutes(1);
    let mut inserts = futures::stream::iter(0..count)
        .map(|n| {
            let queue = queue.clone();
            async move { queue.insert(delivered(n, done)).await }
        })
        .buffer_unordered(IN_FLIGHT_INSERTS);
    while let Some(result) = inserts.next().await {
        result.context("seeding a delivered message")?;
    }
    drop(inserts);
    drop(queue);
    // Dropping the last handle flushes the store and releases its lock before the daemon restarts.
    tokio::task::spawn_blocking(move || drop(store)).await?;
    Ok(started.elapsed())
}

fn delivered(n: u64, done: chrono::DateTime<Utc>) -> Message {
    let id = MessageId::new();
    let payload = serde_json::json!({
        "Creditlink_Id__c": id.to_string(),
        "Bank_Reference__c": format!("LN-HISTORY-{n:09}"),
        "Bank__c": TENANT,
        "Purpose__c": "loan_application",
        "Subject_Type__c": "person",
        "National_Id__c": "CW-1980013101",
        "First_Name__c": "Maria",
        "Last_Name__c": "Martina",
        "Date_Of_Birth__c": "1980-01-31",
        "Consent_Given_At__c": "2026-11-30T10:00:00Z",
        "Received_At__c": done.to_rfc3339(),
    });
    Message {
        id,
        tenant: TENANT.into(),
        lane: Lane::Interactive,
        destination: Destination::Salesforce {
            object: "Report_Request__c".into(),
            ext_field: "Creditlink_Id__c".into(),
            ext_value: id.to_string(),
        },
        payload,
        mapping_version: Some("history-seed".into()),
        state: State::Delivered,
        attempts: 1,
        created_at: done,
        updated_at: done,
        next_attempt_at: done,
        lease_until: None,
        lease_token: None,
        last_error: None,
        remote_id: Some(format!("a0B5Y{n:010}")),
        completed_at: Some(done),
        payload_erased_at: None,
    }
}
