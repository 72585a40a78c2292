//! Scale-out proof: three `creditlink run` processes share one PostgreSQL database (the run's private
//! cluster), banks post to all three, and daemons are SIGKILLed at random moments and restarted.
//! Afterwards every acknowledged request is in the simulated org exactly once, none phantom, and every
//! key kept its id — whichever daemon took it, claimed it, or died holding its lease.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngExt;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::e2e_process::{DaemonProcess, SimProcess, free_port, repo_mappings, write_config};
use crate::e2e_support::{
    BANK_A, BANK_B, Bank, CRR, assert_exactly_once, http, log, unique_reference,
};
use crate::pg_support::cluster;

const DAEMONS: usize = 3;
const CLIENTS: usize = 6;
const SUBMIT_DEADLINE: Duration = Duration::from_secs(45);

/// Idempotency key → (client, body, id the daemon gave).
type Acked = HashMap<String, (usize, Value, String)>;

/// A daemon config of `write_config`'s, on the shared database.
fn postgres_config(dir: &Path, sim_url: &str, port: u16, url_file: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("daemon dir");
    let path = write_config(dir, sim_url, port, &dir.join("data"), &repo_mappings());
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replacen("[store]\n", "[store]\nbackend = \"postgres\"\n", 1)
        + &format!("\n[store.postgres]\nurl = {{ file = {url_file:?} }}\n");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_database_survive_sigkills_exactly_once() {
    let Some(pg) = cluster("three_daemons_on_one_database_survive_sigkills_exactly_once") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url_file = dir.path().join("database_url");
    std::fs::write(&url_file, pg.fresh_database().await.expose_secret()).expect("url file");
    let sim = SimProcess::start(dir.path()).await;
    let faults = http()
        .put(format!("{}/__sim/faults", sim.url))
        .json(&serde_json::json!({"latency_ms": [20, 200]}))
        .send()
        .await
        .expect("set latency");
    assert!(faults.status().is_success());
    let mut daemons = Vec::new();
    for d in 0..DAEMONS {
        let port = free_port();
        let ddir = dir.path().join(format!("d{d}"));
        let config = postgres_config(&ddir, &sim.url, port, &url_file);
        daemons.push(DaemonProcess::start(&ddir, &config, port).await);
    }
    // One client per (daemon, bank) pair and then some: every daemon takes requests.
    let mut banks = Vec::new();
    for c in 0..CLIENTS {
        let account = if c % 2 == 0 { BANK_A } else { BANK_B };
        banks.push(Bank::connect(&sim.info, &daemons[c % DAEMONS].url, account).await);
    }
    let banks = Arc::new(banks);
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let in_doubt: Arc<Mutex<Vec<(usize, String, Value)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (banks, acked, in_doubt, stop) =
                (banks.clone(), acked.clone(), in_doubt.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let key = uuid::Uuid::new_v4().to_string();
                    let body = banks[c].person_body(&unique_reference(&format!("SCALE-{c}")));
                    match banks[c]
                        .submit(&body, &key, Instant::now() + SUBMIT_DEADLINE)
                        .await
                    {
                        Ok(s) => {
                            acked.lock().insert(key, (c, body, s.id));
                        }
                        Err(e) if e.starts_with("gave up") => in_doubt.lock().push((c, key, body)),
                        Err(e) => panic!("client {c}: request refused: {e}"),
                    }
                }
            })
        })
        .collect();

    let kills = 4;
    let mut backlog_at_kills = 0;
    for k in 0..kills {
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(300..=1500))).await;
        let victim = rand::rng().random_range(0..DAEMONS);
        daemons[victim].proc.kill9();
        let n = acked.lock().len();
        backlog_at_kills += n.saturating_sub(sim.records(CRR).await.len());
        daemons[victim].restart().await;
        log(format!(
            "scale-out kill {} of daemon {victim}: {n} acked",
            k + 1
        ));
    }
    let at_last_kill = acked.lock().len();
    crate::e2e_support::poll_until(
        "acks after the last restart",
        Duration::from_secs(30),
        || async { (acked.lock().len() >= at_last_kill + 20).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }
    let doubts = std::mem::take(&mut *in_doubt.lock());
    for (c, key, body) in doubts {
        let s = banks[c]
            .submit(&body, &key, Instant::now() + SUBMIT_DEADLINE)
            .await
            .expect("in-doubt request");
        acked.lock().insert(key, (c, body, s.id));
    }
    let acked = std::mem::take(&mut *acked.lock());
    // A key keeps its id whichever daemon answers the replay.
    for (key, (c, body, id)) in &acked {
        let other = &banks[(c + 2) % CLIENTS];
        let again = other
            .submit(body, key, Instant::now() + SUBMIT_DEADLINE)
            .await
            .expect("replay");
        assert_eq!(&again.id, id, "key {key} changed its id");
    }
    for (c, bank) in banks.iter().enumerate() {
        let ids: Vec<String> = acked
            .values()
            .filter(|(owner, ..)| *owner == c)
            .map(|(_, _, id)| id.clone())
            .collect();
        bank.wait_delivered(&ids, Duration::from_secs(60)).await;
    }
    let ids: Vec<String> = acked.values().map(|(_, _, id)| id.clone()).collect();
    let records = sim.records(CRR).await;
    assert_exactly_once(&records, &ids);
    println!(
        "e2e_scaleout: {} acknowledged through {DAEMONS} daemons, {kills} SIGKILLs, \
         {backlog_at_kills} acknowledged but undelivered at the kills, {} records",
        acked.len(),
        records.len()
    );
    assert!(
        backlog_at_kills > 0,
        "every kill found the queue empty; recovery was never exercised"
    );
    for daemon in &mut daemons {
        daemon.terminate().await;
    }
}
