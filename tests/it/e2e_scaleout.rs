//! Scale-out proof: three `creditlink run` processes share one PostgreSQL database (the run's private
//! cluster), banks post to all three, and daemons are SIGKILLed at random moments and restarted — one
//! of the kills hits the reconciliation poller's leader (the daemon holding its advisory lock), and
//! another daemon must take the lock within one lease. Afterwards every acknowledged request is in the
//! simulated org exactly once, none phantom, every key kept its id — whichever daemon took it, claimed
//! it, or died holding its lease — and a bureau status change made after the leader's death is polled
//! and mirrored: every daemon shows it to the bank.

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
/// `[outbox] lease_ms` of `write_config`: the poller's leader must be replaced within one lease.
const LEASE: Duration = Duration::from_secs(10);
/// The poller's role name (`inbound::Inbound::poll_loop`).
const POLLER_ROLE: &str = "inbound.poller";

/// Idempotency key → (client, body, id the daemon gave).
type Acked = HashMap<String, (usize, Value, String)>;

/// A daemon config of `write_config`'s, on the shared database (`url_file`), with `[inbound]` polling
/// the simulator every 300 ms (the simulator sends no Outbound Messages here: only the poller sees
/// bureau changes).
fn postgres_config(dir: &Path, sim_url: &str, port: u16, url_file: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("daemon dir");
    let path = write_config(dir, sim_url, port, &dir.join("data"), &repo_mappings());
    let listener_secret = dir.join("listener_secret");
    std::fs::write(&listener_secret, "scaleout-listener-0123456789abcdef").expect("secret");
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sandbox/vault_keys");
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replacen("[store]\n", "[store]\nbackend = \"postgres\"\n", 1)
        + &format!(
            "\n[store.postgres]\nurl = {{ file = {url_file:?} }}\n\
             \n[inbound]\nlistener_secret = {{ file = {listener_secret:?} }}\n\
             poll_interval_ms = 300\npoll_overlap_ms = 5000\nvault_keys = {keys:?}\n"
        );
    std::fs::write(&path, text).expect("write config");
    path
}

/// The daemon's connection string: the cluster's, named `cl-d<n>` (`application_name`), so the test
/// can tell from `pg_stat_activity` which daemon holds a lock.
fn daemon_url_file(dir: &Path, cluster_url: &str, d: usize) -> std::path::PathBuf {
    let file = dir.join(format!("database_url_d{d}"));
    std::fs::write(&file, format!("{cluster_url} application_name=cl-d{d}")).expect("url file");
    file
}

/// The advisory-lock key of a leader role (as `store::postgres::leader` derives it).
fn role_key(role: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("creditlink leader {role}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Which daemon (by index) holds `role`'s advisory lock now, if any.
async fn leader_of(db: &tokio_postgres::Client, role: &str) -> Option<usize> {
    let row = db
        .query_opt(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
            &[&role_key(role)],
        )
        .await
        .expect("pg_locks")?;
    row.get::<_, String>(0).strip_prefix("cl-d")?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_daemons_on_one_database_survive_sigkills_exactly_once() {
    let Some(pg) = cluster("three_daemons_on_one_database_survive_sigkills_exactly_once") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster_url = pg.fresh_database().await.expose_secret().to_owned();
    let (db, conn) = tokio_postgres::connect(&cluster_url, tokio_postgres::NoTls)
        .await
        .expect("test's own connection");
    let db_task = tokio::spawn(conn);
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
        let url_file = daemon_url_file(dir.path(), &cluster_url, d);
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
    let mut takeover = None;
    for k in 0..kills {
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(300..=1500))).await;
        // The second kill hits the poller's leader; the others a random daemon.
        let leader = if k == 1 {
            Some(
                crate::e2e_support::poll_until("a poller leader", LEASE, || async {
                    leader_of(&db, POLLER_ROLE).await
                })
                .await,
            )
        } else {
            None
        };
        let victim = leader.unwrap_or_else(|| rand::rng().random_range(0..DAEMONS));
        daemons[victim].proc.kill9();
        let killed_at = Instant::now();
        let n = acked.lock().len();
        backlog_at_kills += n.saturating_sub(sim.records(CRR).await.len());
        if leader.is_some() {
            let heir = crate::e2e_support::poll_until(
                "another daemon leading the poller within one lease",
                LEASE,
                || async { leader_of(&db, POLLER_ROLE).await.filter(|&d| d != victim) },
            )
            .await;
            takeover = Some((victim, heir, killed_at.elapsed()));
        }
        daemons[victim].restart().await;
        log(format!(
            "scale-out kill {} of daemon {victim}{}: {n} acked",
            k + 1,
            if leader.is_some() {
                " (the poller's leader)"
            } else {
                ""
            }
        ));
    }
    let (old_leader, heir, took) = takeover.expect("the leader was killed");
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

    // A bureau change made after the leader died is polled (by whichever daemon leads now) and mirrored:
    // the bank sees it through every daemon (clients 0, 2 and 4 are bank A on daemons 0, 2 and 1).
    let (_, (_, _, id)) = acked
        .iter()
        .find(|(_, (c, ..))| *c == 0)
        .expect("a request of client 0");
    let (code, doc) = banks[0].status(id).await;
    assert_eq!(code, 200, "{doc}");
    let sf_id = doc["salesforce_id"].as_str().expect("salesforce id");
    let edit = http()
        .patch(format!("{}/__sim/records/{CRR}/{sf_id}", sim.url))
        .json(&serde_json::json!({ "fields": { "Status__c": "In Progress" } }))
        .send()
        .await
        .expect("bureau edit");
    assert!(edit.status().is_success(), "{:?}", edit.text().await);
    for c in [0, 2, 4] {
        crate::e2e_support::poll_until(
            "the bureau's change mirrored to the bank",
            Duration::from_secs(30),
            || async {
                let (code, doc) = banks[c].status(id).await;
                (code == 200 && doc["status"] == "in_progress").then_some(())
            },
        )
        .await;
    }
    println!(
        "e2e_scaleout: {} acknowledged through {DAEMONS} daemons, {kills} SIGKILLs, \
         {backlog_at_kills} acknowledged but undelivered at the kills, {} records; \
         poller leader d{old_leader} killed, d{heir} led after {took:?}",
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
    drop(db);
    db_task.abort();
}
