//! The bank → Salesforce path under Salesforce's failures (in-process sandbox, simulated org faults):
//! injected transient errors with latency, a full outage, expired tokens, and a permanent refusal.
//! Every acknowledged request ends in the org exactly once, or is surfaced as `failed` with the org's
//! reason.

use std::time::{Duration, Instant};

use creditlink::sandbox::Sandbox;
use creditlink::sim::SimOptions;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::e2e_support::{
    Bank, CRR, assert_exactly_once, http, log, org_with_short_reference, person_body, poll_until,
    sandbox, sandbox_banks, unique_reference,
};

/// Posts `n` fresh requests from `bank`, `concurrency` at a time; returns their ids.
async fn post_many(bank: &Bank, prefix: &str, n: usize, concurrency: usize) -> Vec<String> {
    futures::stream::iter(0..n)
        .map(|_| async {
            let key = uuid::Uuid::new_v4().to_string();
            let body = bank.person_body(&unique_reference(prefix));
            let s = bank
                .submit(&body, &key, Instant::now() + Duration::from_secs(60))
                .await
                .expect("accepted");
            assert!(s.status == 202 || s.status == 201, "{s:?}");
            s.id
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

async fn set_faults(sb: &Sandbox, faults: Value) {
    let resp = http()
        .put(format!("{}/__sim/faults", sb.sim.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("faults");
    assert!(
        resp.status().is_success(),
        "PUT /__sim/faults: {}",
        resp.status()
    );
}

async fn clear_faults(sb: &Sandbox) {
    let resp = http()
        .delete(format!("{}/__sim/faults", sb.sim.base_url()))
        .send()
        .await
        .expect("faults");
    assert!(
        resp.status().is_success(),
        "DELETE /__sim/faults: {}",
        resp.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_and_latency_deliver_everything_once() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank, _) = sandbox_banks(&sb).await;
    set_faults(
        &sb,
        json!({"error_rate": 0.3, "errors": ["SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED"],
               "latency_ms": [0, 200]}),
    )
    .await;
    // Waves of 20 until 100 are in and the faults certainly hit some sends (retried attempts seen).
    let mut ids = Vec::new();
    let mut retried = 0;
    for _wave in 0..15 {
        if ids.len() >= 100 && retried > 0 {
            break;
        }
        let wave = post_many(&bank, "FAULT", 20, 10).await;
        let docs = bank.wait_delivered(&wave, Duration::from_secs(60)).await;
        retried += docs
            .values()
            .filter(|d| d["delivery"]["attempts"].as_u64().unwrap_or(0) > 1)
            .count();
        ids.extend(wave);
    }
    assert!(retried > 0, "the injected errors never hit a send");
    assert_exactly_once(&sb.sim.records(CRR), &ids);
    log(format!(
        "faults: {} delivered once each, {retried} after retries",
        ids.len()
    ));
    log(format!("faults: sim stats {}", sb.sim.stats()));
    clear_faults(&sb).await;
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_outage_delays_but_loses_nothing() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank_a, bank_b) = sandbox_banks(&sb).await;
    // Before the outage: one request per bank, so both tokens are known (cached) to the daemon.
    let mut ids = post_many(&bank_a, "PRE", 1, 1).await;
    ids.extend(post_many(&bank_b, "PRE", 1, 1).await);
    // Both, each through its own bank (a bank sees only its own requests): the outage must not catch
    // bank B's request still on its way.
    bank_a
        .wait_delivered(&ids[..1], Duration::from_secs(20))
        .await;
    bank_b
        .wait_delivered(&ids[1..], Duration::from_secs(20))
        .await;

    set_faults(&sb, json!({"outage": true})).await;
    let outage_started = Instant::now();
    let mut during = Vec::new();
    let mut readiness_seen = std::collections::BTreeSet::new();
    let client = http();
    // Requests keep coming for 30 s; intake keeps answering 202, readiness answers or says why not.
    while outage_started.elapsed() < Duration::from_secs(30) {
        for bank in [&bank_a, &bank_b] {
            let key = uuid::Uuid::new_v4().to_string();
            let resp = bank
                .post()
                .header("Idempotency-Key", &key)
                .json(&bank.person_body(&unique_reference("OUTAGE")))
                .send()
                .await
                .expect("intake answers during the outage");
            assert_eq!(resp.status().as_u16(), 202, "intake during the outage");
            let doc: Value = resp.json().await.expect("json");
            during.push((
                bank.account_id.clone(),
                doc["id"].as_str().expect("id").to_owned(),
            ));
        }
        let ready = client
            .get(format!("{}/readyz?verbose", sb.daemon_url))
            .send()
            .await
            .expect("readyz");
        let status = ready.status().as_u16();
        let text = ready.text().await.unwrap_or_default();
        assert!(
            status == 200 || (status == 503 && text.contains("[-]")),
            "/readyz {status} without a reason: {text}"
        );
        let failing: Vec<&str> = text.lines().filter(|l| l.starts_with("[-]")).collect();
        readiness_seen.insert(format!("{status} {failing:?}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    log(format!("outage: /readyz answered {readiness_seen:?}"));
    // Nothing got through while the org was down.
    let stored = sb.sim.records(CRR).len();
    assert_eq!(
        stored, 2,
        "only the two requests from before the outage are in the org"
    );

    clear_faults(&sb).await;
    for bank in [&bank_a, &bank_b] {
        let mine: Vec<String> = during
            .iter()
            .filter(|(a, _)| *a == bank.account_id)
            .map(|(_, id)| id.clone())
            .collect();
        bank.wait_delivered(&mine, Duration::from_secs(30)).await;
    }
    ids.extend(during.into_iter().map(|(_, id)| id));
    assert_exactly_once(&sb.sim.records(CRR), &ids);
    log(format!(
        "outage: {} requests accepted during 30 s of outage, all delivered once",
        ids.len() - 2
    ));
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_mid_run_are_renewed() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank, _) = sandbox_banks(&sb).await;
    // Every token the org issued (the daemon's and the bank's) expires once 20 of 60 requests are in.
    let expire = async {
        poll_until("20 requests accepted", Duration::from_secs(30), || async {
            let c = sb.outbox.counts().await.expect("counts");
            (c.pending + c.in_flight + c.delivered >= 20).then_some(())
        })
        .await;
        set_faults(&sb, json!({"expire_tokens": true})).await;
    };
    let (ids, ()) = tokio::join!(post_many(&bank, "TOKEN", 60, 3), expire);
    bank.wait_delivered(&ids, Duration::from_secs(30)).await;
    assert_exactly_once(&sb.sim.records(CRR), &ids);
    log(format!("token expiry: sim stats {}", sb.sim.stats()));
    // The daemon holds a valid token again (readiness checks it).
    poll_until(
        "/readyz 200 after the expiry",
        Duration::from_secs(20),
        || async {
            let resp = http()
                .get(format!("{}/readyz", sb.daemon_url))
                .send()
                .await
                .ok()?;
            resp.status().is_success().then_some(())
        },
    )
    .await;
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_at_once_with_the_orgs_reason() {
    let (sb, _dir) = sandbox(org_with_short_reference()).await;
    let (bank, _) = sandbox_banks(&sb).await;
    let reference = "R".repeat(40);
    let resp = bank
        .post()
        .header("Idempotency-Key", "permanent-1")
        .header("Prefer", "wait=5")
        .json(&person_body(&reference))
        .send()
        .await
        .expect("post");
    assert_eq!(
        resp.status().as_u16(),
        202,
        "accepted: the mapping allows 64 characters"
    );
    let doc: Value = resp.json().await.expect("json");
    let id = doc["id"].as_str().expect("id").to_owned();

    let status = poll_until("the request to fail", Duration::from_secs(20), || async {
        let (code, doc) = bank.status(&id).await;
        (code == 200 && doc["status"] != "received").then_some(doc)
    })
    .await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(
        status["delivery"]["attempts"], 1,
        "a permanent error is never retried: {status}"
    );
    assert_eq!(
        status["delivery"]["last_error"]["code"], "STRING_TOO_LONG",
        "{status}"
    );
    let message = status["delivery"]["last_error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("Bank_Reference__c"),
        "Salesforce's message is kept: {status}"
    );
    assert!(sb.sim.records(CRR).is_empty(), "nothing stored in the org");
    sb.stop().await.expect("stop");
}
