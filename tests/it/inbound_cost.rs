//! The inbound side's Salesforce API cost, counted by the simulator (`/__sim/stats`): an idle poll is one
//! call and re-reads nothing, hinted records are re-read in batches, a completed request costs about one call
//! (its PDF download).

use creditlink::outbox::Destination;
use serde_json::{Value, json};

use crate::inbound_support::{self, Harness, pdf_with_marker};
use crate::sim_support;

async fn stats(h: &Harness) -> Value {
    sim_support::client()
        .get(format!("{}/__sim/stats", h.sim.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

async fn api_calls(h: &Harness) -> u64 {
    stats(h).await["api_calls_total"].as_u64().expect("total")
}

/// Creates `n` requests (as creditlink) and moves each to `status` (as the bureau); returns their record ids.
async fn requests_in(h: &Harness, n: usize, status: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (id, _) = h.create_request().await;
        h.bureau_edit(&id, json!({ "Status__c": status }), None)
            .await;
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn an_idle_poll_is_one_call_and_rereads_nothing() {
    let h = inbound_support::start().await;
    requests_in(&h, 30, "In Progress").await;
    let first = h.inbound.poll_once().await.expect("poll");
    assert_eq!(first.hinted, 30, "{first:?}");
    h.drain().await;
    assert_eq!(h.bank_events().await.len(), 30);

    // Nothing changes any more: each poll is one query and hints nothing, so the mirror reads nothing.
    for round in 0..3 {
        let before = api_calls(&h).await;
        let poll = h.inbound.poll_once().await.expect("poll");
        assert_eq!(poll.hinted, 0, "round {round}: {poll:?}");
        assert!(h.drain().await.is_empty());
        assert_eq!(api_calls(&h).await - before, 1, "round {round}");
    }
    assert_eq!(h.bank_events().await.len(), 30);

    // A change after the idle polls is still found.
    h.bureau_edit(
        &first_request(&h).await,
        json!({ "Status__c": "Rejected", "Status_Reason__c": "Subject unknown" }),
        None,
    )
    .await;
    assert_eq!(h.inbound.poll_once().await.expect("poll").hinted, 1);
    h.drain().await;
    assert_eq!(h.bank_events().await.len(), 31);
}

/// The Salesforce id of the first event's record.
async fn first_request(h: &Harness) -> String {
    h.bank_events().await[0].payload["salesforce_id"]
        .as_str()
        .expect("salesforce_id")
        .to_owned()
}

#[tokio::test]
async fn hinted_records_are_reread_in_one_query_per_batch() {
    let h = inbound_support::start().await;
    let ids = requests_in(&h, 30, "In Progress").await;
    for id in &ids {
        h.inbound.state().add_hint(id).await.expect("hint");
    }
    let before = api_calls(&h).await;
    h.drain().await;
    assert_eq!(h.bank_events().await.len(), 30);
    assert_eq!(api_calls(&h).await - before, 1, "{}", stats(&h).await);
}

#[tokio::test]
async fn a_completed_request_costs_at_most_1_2_calls() {
    let h = inbound_support::start().await;
    let n = 20;
    let mut ids = Vec::new();
    for i in 0..n {
        let (id, _) = h.create_request().await;
        h.attach_pdf(&id, &pdf_with_marker(&format!("report-{i}")))
            .await;
        h.bureau_edit(&id, json!({ "Status__c": "Completed" }), None)
            .await;
        ids.push(id);
    }
    for id in &ids {
        h.inbound.state().add_hint(id).await.expect("hint");
    }
    let before = api_calls(&h).await;
    h.drain().await;
    let calls = api_calls(&h).await - before;
    let completed = h
        .bank_events().await
        .iter()
        .filter(|m| matches!(&m.destination, Destination::Bank { event, .. } if event == "report_request.completed"))
        .count();
    assert_eq!(completed, n);
    assert!(
        calls as f64 <= 1.2 * n as f64,
        "{calls} calls for {n} completed requests: {}",
        stats(&h).await
    );
}

/// The measurement behind BENCHMARKS.md's "poller API calls per hour on an idle org": `INBOUND_IDLE_N`
/// (default 10,000) mirrored requests, then an hour of polls every 30 s on a simulated clock
/// (`Inbound::poll_at`), each followed by a mirror drain. Prints the calls. Run it with
/// `cargo test --test it measure_idle_poll_cost -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a test: run on demand"]
async fn measure_idle_poll_cost() {
    let n: usize = std::env::var("INBOUND_IDLE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let h = inbound_support::start().await;
    let mut ids = Vec::with_capacity(n);
    let mut chunk = Vec::new();
    for i in 0..n {
        let fields: creditlink::salesforce::JsonMap = serde_json::from_value(json!({
            "Request_Key__c": uuid::Uuid::now_v7().to_string(),
            "Bank__c": sim_support::BANK_A,
            "Subject_Type__c": "Person",
            "Purpose__c": "Other",
        }))
        .expect("object");
        chunk.push(("Credit_Report_Request__c".to_owned(), fields));
        if chunk.len() == 200 || i + 1 == n {
            for r in h.client.collections_create(&chunk).await.expect("create") {
                ids.push(r.id.expect("created"));
            }
            chunk.clear();
        }
    }
    for id in &ids {
        h.bureau_edit(id, json!({ "Status__c": "In Progress" }), None)
            .await;
    }
    let t0 = chrono::Utc::now();
    let before = api_calls(&h).await;
    let first = h.inbound.poll_at(t0).await.expect("poll");
    h.drain().await;
    let mirrored = api_calls(&h).await - before;
    println!(
        "{n} requests: first poll hinted {}, poll + mirror used {mirrored} calls; {} bank events",
        first.hinted,
        h.bank_events().await.len()
    );
    let interval = chrono::Duration::seconds(30);
    let mut per_poll = Vec::new();
    for k in 1..=120 {
        let before = api_calls(&h).await;
        let poll = h.inbound.poll_at(t0 + interval * k).await.expect("poll");
        assert_eq!(poll.hinted, 0);
        h.drain().await;
        per_poll.push(api_calls(&h).await - before);
    }
    let hour: u64 = per_poll.iter().sum();
    println!(
        "idle hour: {hour} calls in 120 polls (first five polls: {:?}; max after the overlap: {})",
        &per_poll[..5],
        per_poll[5..].iter().max().copied().unwrap_or(0)
    );
}
