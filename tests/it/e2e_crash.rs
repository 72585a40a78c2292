//! The headline proof of "nothing lost" (ARCHITECTURE.md invariants): real `creditlink` processes, SIGKILLed under load.
//!
//! A simulated org runs as its own process (`creditlink sim salesforce`); the daemon runs as
//! `creditlink run --config <file>`. Eight bank clients post report requests, each with its own
//! `Idempotency-Key`, and retry the same request with the same key on connection errors, timeouts and
//! 5xx, as real integrators do. Every Salesforce call gets 20-200 ms of latency, so kills often land
//! while a batch is on the wire. Meanwhile the daemon is killed with SIGKILL at random moments and
//! restarted on the same data dir and port; once more it is stopped gracefully (SIGTERM) under the same
//! load. Afterwards:
//! - every request a bank got a 2xx for is delivered, and is in the org exactly once (`Request_Key__c`);
//! - no record exists that no bank was ever given an id for;
//! - a key never changed its id: every acknowledged request sent again with its key gets the same id;
//! - SIGTERM ends the daemon with exit code 0, under load and at the end.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use rand::RngExt;
use serde_json::Value;

use crate::e2e_process::{DaemonProcess, SimProcess, free_port, repo_mappings, write_config};
use crate::e2e_support::{
    BANK_A, BANK_B, Bank, CRR, assert_exactly_once, http, log, unique_reference,
};

const CLIENTS: usize = 8;
/// How long one request may keep being retried (it spans at most one restart).
const SUBMIT_DEADLINE: Duration = Duration::from_secs(45);

/// What the clients saw, for the final checks.
#[derive(Default)]
struct Ledger {
    /// Idempotency key → (bank index, body, id the daemon gave).
    acked: HashMap<String, (usize, Value, String)>,
    /// Keys a client gave up on mid-run; they are resolved (sent again) once the load stops.
    in_doubt: Vec<(usize, String, Value)>,
    retries: u32,
    /// Retries answered `idempotent-replayed`: the first send was stored, its answer lost to a kill.
    recovered_answers: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimProcess::start(dir.path()).await;
    let port = free_port();
    let config = write_config(
        dir.path(),
        &sim.url,
        port,
        &dir.path().join("data"),
        &repo_mappings(),
    );
    // Latency on every Salesforce call keeps sends in flight longer, so kills land mid-send: the org may
    // have the record while the daemon never recorded the attempt, and the resend must not duplicate it.
    let faults = http()
        .put(format!("{}/__sim/faults", sim.url))
        .json(&serde_json::json!({"latency_ms": [20, 200]}))
        .send()
        .await
        .expect("set latency");
    assert!(
        faults.status().is_success(),
        "PUT /__sim/faults: {}",
        faults.status()
    );
    let mut daemon = DaemonProcess::start(dir.path(), &config, port).await;
    let banks = Arc::new([
        Bank::connect(&sim.info, &daemon.url, BANK_A).await,
        Bank::connect(&sim.info, &daemon.url, BANK_B).await,
    ]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let sends = Arc::new(AtomicU32::new(0));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (banks, ledger, stop, sends) =
                (banks.clone(), ledger.clone(), stop.clone(), sends.clone());
            tokio::spawn(async move {
                let bank = c % 2;
                while !stop.load(Ordering::Relaxed) {
                    let key = uuid::Uuid::new_v4().to_string();
                    let body = banks[bank].person_body(&unique_reference(&format!("CRASH-{c}")));
                    sends.fetch_add(1, Ordering::Relaxed);
                    let result = banks[bank]
                        .submit(&body, &key, Instant::now() + SUBMIT_DEADLINE)
                        .await;
                    let mut ledger = ledger.lock();
                    match result {
                        Ok(s) => {
                            ledger.retries += s.retries;
                            if s.retries > 0 && s.replayed {
                                ledger.recovered_answers += 1;
                            }
                            ledger.acked.insert(key, (bank, body, s.id));
                        }
                        Err(e) if e.starts_with("gave up") => {
                            ledger.in_doubt.push((bank, key, body))
                        }
                        Err(e) => panic!("client {c}: request refused: {e}"),
                    }
                }
            })
        })
        .collect();

    // The crashes: 4 or 5 SIGKILLs at random moments, each followed by a restart on the same data dir.
    let kills = rand::rng().random_range(4..=5);
    // Requests acknowledged but not yet in the org when the daemon died: what recovery had to send.
    let mut backlog_at_kills = 0;
    for k in 0..kills {
        let delay = rand::rng().random_range(200..=1500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        daemon.proc.kill9();
        let acked = ledger.lock().acked.len();
        let backlog = acked.saturating_sub(sim.records(CRR).await.len());
        backlog_at_kills += backlog;
        daemon.restart().await;
        log(format!(
            "kill {} after {delay} ms: {acked} acked, {backlog} of them not yet in the org",
            k + 1
        ));
    }
    // A graceful stop under the same load: the drain ends with exit code 0 and loses nothing either.
    tokio::time::sleep(Duration::from_millis(rand::rng().random_range(200..=1500))).await;
    daemon.terminate().await;
    daemon.restart().await;

    // Let the restarted daemon take load for a moment, then stop the clients (each finishes its request).
    let acked_at_last_kill = ledger.lock().acked.len();
    crate::e2e_support::poll_until(
        "acks after the last restart",
        Duration::from_secs(30),
        || async { (ledger.lock().acked.len() >= acked_at_last_kill + 20).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }

    // Requests a client gave up on are sent again now (same key, same body), so each ends with an id.
    let in_doubt = std::mem::take(&mut ledger.lock().in_doubt);
    for (bank, key, body) in in_doubt {
        let s = banks[bank]
            .submit(&body, &key, Instant::now() + SUBMIT_DEADLINE)
            .await
            .expect("in-doubt request");
        ledger.lock().acked.insert(key, (bank, body, s.id));
    }
    let ledger = Arc::into_inner(ledger)
        .expect("clients are done")
        .into_inner();

    // A key keeps its id across crashes: every acknowledged request sent once more gets the same id.
    let replays = futures::stream::iter(&ledger.acked)
        .map(|(key, (bank, body, id))| {
            let banks = banks.clone();
            async move {
                let again = banks[*bank]
                    .submit(body, key, Instant::now() + SUBMIT_DEADLINE)
                    .await
                    .expect("replay");
                assert_eq!(&again.id, id, "key {key} changed its id between sends");
                assert!(
                    again.replayed,
                    "the replay of {key} is marked idempotent-replayed"
                );
            }
        })
        .buffer_unordered(CLIENTS);
    replays.collect::<Vec<()>>().await;

    // Every acknowledged request is delivered, and in the org exactly once.
    let mut statuses = HashMap::new();
    for (b, bank) in banks.iter().enumerate() {
        let ids: Vec<String> = ledger
            .acked
            .values()
            .filter(|(bank, ..)| *bank == b)
            .map(|(_, _, id)| id.clone())
            .collect();
        statuses.extend(bank.wait_delivered(&ids, Duration::from_secs(60)).await);
    }
    let ids: Vec<String> = ledger.acked.values().map(|(_, _, id)| id.clone()).collect();
    let records = sim.records(CRR).await;
    assert_exactly_once(&records, &ids);
    // The Salesforce id each bank is shown is the id of its record, also when the send was repeated.
    for record in &records {
        let key = record["Request_Key__c"].as_str().expect("Request_Key__c");
        assert_eq!(
            statuses[key]["salesforce_id"], record["Id"],
            "salesforce_id of {key}"
        );
    }

    println!(
        "e2e_crash: {} requests acknowledged of {} sent, {kills} SIGKILLs + 1 SIGTERM, {} retries, \
         {} answers lost to a kill and recovered by Idempotency-Key, {backlog_at_kills} acknowledged but \
         not yet delivered when the daemon died, {} records in the org",
        ledger.acked.len(),
        sends.load(Ordering::Relaxed),
        ledger.retries,
        ledger.recovered_answers,
        records.len(),
    );
    assert!(
        ledger.retries > 0,
        "the kills interrupted no request; the test proved nothing"
    );
    assert!(
        backlog_at_kills > 0,
        "every kill found the queue empty; recovery was never exercised"
    );

    // Graceful shutdown at the end: SIGTERM drains and exits 0.
    daemon.terminate().await;
}
