//! A real `creditlink run` process SIGKILLed while it processes an upload, then restarted on the same data dir:
//! the upload completes with every row's verdict exactly once, the counts of an uninterrupted run, and one
//! Salesforce record per valid tradeline.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::e2e_process::{DaemonProcess, SimProcess, free_port, repo_mappings, write_config};
use crate::e2e_support::{BANK_A, Bank, http, poll_until};
use crate::feeds_support::{all_records, feed, person_row, try_get_json, upload, wait_final};

const ROWS: u32 = 3000;

/// A daemon config with uploads enabled (they need the vault's keys: spools are encrypted under a key derived
/// from them), plus `extra` TOML.
pub(crate) fn feeds_config(dir: &Path, sim: &SimProcess, port: u16, extra: &str) -> PathBuf {
    let config = write_config(dir, &sim.url, port, &dir.join("data"), &repo_mappings());
    let listener_secret = dir.join("listener_secret");
    std::fs::write(&listener_secret, "feeds-crash-test-listener-secret").expect("secret");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[inbound]\nvault_keys = {:?}\nlistener_secret = {{ file = {:?} }}\n{extra}",
        format!("{}/config/sandbox/vault_keys", env!("CARGO_MANIFEST_DIR")),
        listener_secret.display().to_string()
    ));
    std::fs::write(&config, text).expect("config");
    config
}

/// The upload's verdicts: rows 1..=n, each once, in order.
async fn one_verdict_per_row(bank: &Bank, id: &str, n: u32) -> Vec<Value> {
    let records = all_records(bank, id).await;
    let numbers: Vec<u64> = records
        .iter()
        .map(|r| r["row"].as_u64().expect("row"))
        .collect();
    assert_eq!(
        numbers,
        (1..=u64::from(n)).collect::<Vec<_>>(),
        "every row once, in order"
    );
    records
}

/// The org's credit records: `expected` of them, no `Record_Key__c` twice.
async fn one_record_per_tradeline(
    sim: &SimProcess,
    expected: u64,
) -> Vec<serde_json::Map<String, Value>> {
    let org = sim.records("Credit_Record__c").await;
    assert_eq!(org.len() as u64, expected, "one record per valid tradeline");
    let keys: BTreeSet<&str> = org
        .iter()
        .map(|r| r["Record_Key__c"].as_str().expect("key"))
        .collect();
    assert_eq!(keys.len(), org.len(), "no key twice");
    org
}

/// Slows every simulator call by `latency_ms`, then starts the daemon and connects bank A.
async fn start_slowed(
    dir: &Path,
    sim: &SimProcess,
    config: &Path,
    port: u16,
    latency_ms: [u64; 2],
) -> (DaemonProcess, Bank) {
    let faults = http()
        .put(format!("{}/__sim/faults", sim.url))
        .json(&serde_json::json!({ "latency_ms": latency_ms }))
        .send()
        .await
        .expect("latency");
    assert!(faults.status().is_success());
    let daemon = DaemonProcess::start(dir, config, port).await;
    let bank = Bank::connect(&sim.info, &daemon.url, BANK_A).await;
    (daemon, bank)
}

/// `n` rows of accounts `<prefix>-00001…`: every 10th invalid (no balance), the last 10 repeat the first 10
/// with a later as-of date.
fn faulty_feed(prefix: &str, n: u32) -> Vec<String> {
    let mut rows = Vec::new();
    for i in 1..=n - 10 {
        let row = person_row(&format!("{prefix}-{i:05}"));
        rows.push(if i % 10 == 0 {
            row.replace(",1500.00,", ",,")
        } else {
            row
        });
    }
    for i in 1..=10 {
        rows.push(person_row(&format!("{prefix}-{i:05}")).replace("2025-06-30", "2025-07-31"));
    }
    rows
}

/// The exact counts of an uninterrupted run of [`faulty_feed`] into an empty org.
fn assert_faulty_feed_counts(done: &Value, n: u32) {
    let c = &done["counts"];
    let invalid = u64::from((n - 10) / 10);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(c["rows"], u64::from(n), "{done}");
    assert_eq!(c["rejected"], invalid, "{done}");
    // Rows 1..=10 lost to their later copies (row 10 was invalid anyway).
    assert_eq!(c["duplicate"], 9, "{done}");
    // Valid rows of the first part, less the 9 that lost to a later copy, plus the 10 later copies.
    let valid = u64::from(n - 10) - invalid - 9 + 10;
    assert_eq!(
        c["accepted"], valid,
        "every valid tradeline created once, whatever the kill interrupted: {done}"
    );
    assert_eq!(c["updated"], 0, "{done}");
    assert_eq!(c["unchanged"], 0, "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_upload_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimProcess::start(dir.path()).await;
    let port = free_port();
    let config = feeds_config(dir.path(), &sim, port, "");
    // Latency keeps batches on the wire long enough for the kill to land mid-upload.
    let (mut daemon, bank) = start_slowed(dir.path(), &sim, &config, port, [30, 120]).await;

    // Every 10th row is invalid (no balance); rows 2991..=3000 repeat rows 1..=10 with a later as-of date.
    let rows = faulty_feed("K", ROWS);
    let (status, doc) = upload(&daemon.url, &bank, "text/csv", feed(&rows), None).await;
    assert_eq!(status, 202, "{doc}");
    let id = doc["id"].as_str().expect("id").to_owned();

    // Kill once a few batches are recorded and the rest is still to come.
    let before: Value = poll_until(
        "a few batches recorded",
        Duration::from_secs(60),
        || async {
            let doc = try_get_json(&bank, &format!("/api/v1/uploads/{id}")).await?;
            let done = doc["counts"]["rows"].as_u64()?;
            (done >= 400).then_some(doc)
        },
    )
    .await;
    assert_eq!(
        before["status"], "processing",
        "the kill must land mid-upload: {before}"
    );
    daemon.proc.kill9();
    let _ = daemon.proc.wait_exit(Duration::from_secs(10)).await;
    daemon.restart().await;

    let done = wait_final(&bank, &id).await;
    assert_faulty_feed_counts(&done, ROWS);
    let invalid = u64::from((ROWS - 10) / 10);
    let valid = u64::from(ROWS - 10) - invalid - 9 + 10;

    one_verdict_per_row(&bank, &id, ROWS).await;
    let org = one_record_per_tradeline(&sim, valid).await;
    // The later copies won.
    assert!(
        org.iter()
            .filter(|r| r["Last_Reported__c"] == "2025-07-31")
            .count()
            == 10
    );
    assert!(
        std::fs::read_dir(dir.path().join("data/uploads"))
            .expect("spool dir")
            .next()
            .is_none(),
        "the spool is deleted once the upload is completed"
    );
    daemon.terminate().await;
}

/// The simulator's count of calls to `route` (`GET /__sim/stats`).
async fn calls(sim: &SimProcess, route: &str) -> u64 {
    let stats: Value = http()
        .get(format!("{}/__sim/stats", sim.url))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON");
    stats["by_route"][route].as_u64().unwrap_or(0)
}

const BULK_CREATE: &str = "POST /services/data/{version}/jobs/ingest";
const BULK_UPLOAD: &str = "PUT /services/data/{version}/jobs/ingest/{id}/batches";
const BULK_STATE: &str = "PATCH /services/data/{version}/jobs/ingest/{id}";
const BULK_POLL: &str = "GET /services/data/{version}/jobs/ingest/{id}";

/// Uploads above `[uploads] bulk_threshold_rows` go through Bulk API 2.0 jobs. A real daemon is SIGKILLed at
/// three points of a job — its upload on the wire (the job created and its id stored, no data yet), its close
/// on the wire (data uploaded, job still `Open`), and while it is being polled (closed, processing or done,
/// results not yet read) — and restarted each time: every upload completes with every row once, the exact
/// counts of an uninterrupted run, one record per valid tradeline, and no job's rows loaded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_bulk_jobs_resumes_without_loss_or_duplicates() {
    const N: u32 = 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimProcess::start(dir.path()).await;
    let port = free_port();
    // 1,000 rows: three jobs of at most 400 rows (two batches) each.
    let config = feeds_config(
        dir.path(),
        &sim,
        port,
        "\n[uploads]\nbulk_threshold_rows = 100\nbulk_job_rows = 400\n",
    );
    // Each call spends 250-350 ms in the simulator before it is handled: the kill lands inside the call the
    // simulator has just counted.
    let (mut daemon, bank) = start_slowed(dir.path(), &sim, &config, port, [250, 350]).await;

    let mut expected_records = 0u64;
    for (prefix, route) in [("U", BULK_UPLOAD), ("C", BULK_STATE), ("P", BULK_POLL)] {
        let before = calls(&sim, route).await;
        let creates_before = calls(&sim, BULK_CREATE).await;
        let (status, doc) = upload(
            &daemon.url,
            &bank,
            "text/csv",
            feed(&faulty_feed(prefix, N)),
            None,
        )
        .await;
        assert_eq!(status, 202, "{doc}");
        let id = doc["id"].as_str().expect("id").to_owned();
        poll_until(
            &format!("{route} on the wire"),
            Duration::from_secs(60),
            || async { (calls(&sim, route).await > before).then_some(()) },
        )
        .await;
        daemon.proc.kill9();
        let _ = daemon.proc.wait_exit(Duration::from_secs(10)).await;
        let at_kill = get_json_after_restart(&mut daemon, &bank, &id).await;
        assert_ne!(
            at_kill["status"], "completed",
            "the kill landed mid-upload ({route}): {at_kill}"
        );

        let done = wait_final(&bank, &id).await;
        assert_faulty_feed_counts(&done, N);
        let valid = done["counts"]["accepted"].as_u64().expect("accepted");
        expected_records += valid;
        let records = one_verdict_per_row(&bank, &id, N).await;
        assert!(
            records
                .iter()
                .filter(|r| r["outcome"] == "accepted")
                .all(|r| r["salesforce_id"].as_str().is_some_and(|s| s.len() == 18)),
            "every accepted row names its record"
        );
        // Three parts; the interrupted one needed at most one more job.
        let jobs = calls(&sim, BULK_CREATE).await - creates_before;
        assert!(
            (3..=4).contains(&jobs),
            "{jobs} Bulk jobs for three parts ({route})"
        );
        if route == BULK_POLL {
            // The closed job was resumed from its stored id, not loaded again.
            assert_eq!(
                jobs, 3,
                "a closed job is polled again after the restart, not re-sent"
            );
        }
        eprintln!("kill during {route}: {jobs} jobs");
    }
    let org = one_record_per_tradeline(&sim, expected_records).await;
    assert_eq!(
        org.iter()
            .filter(|r| r["Last_Reported__c"] == "2025-07-31")
            .count(),
        30,
        "the later copies won"
    );
    daemon.terminate().await;
}

/// Restarts the killed daemon and reads the upload's status document as the restarted daemon sees it first.
async fn get_json_after_restart(daemon: &mut DaemonProcess, bank: &Bank, id: &str) -> Value {
    daemon.restart().await;
    poll_until("status after restart", Duration::from_secs(30), || async {
        try_get_json(bank, &format!("/api/v1/uploads/{id}")).await
    })
    .await
}
