//! A real `creditlink run` process SIGKILLed while it processes an upload, then restarted on the same data dir:
//! the upload completes with every row's verdict exactly once, the counts of an uninterrupted run, and one
//! Salesforce record per valid tradeline.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::e2e_process::{DaemonProcess, SimProcess, free_port, repo_mappings, write_config};
use crate::e2e_support::{BANK_A, Bank, http, poll_until};
use crate::feeds_support::{all_records, feed, person_row, try_get_json, upload, wait_final};

const ROWS: u32 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_upload_resumes_without_loss_or_duplicates() {
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
    // Uploads need the vault's keys (spools are encrypted under a key derived from them).
    let listener_secret = dir.path().join("listener_secret");
    std::fs::write(&listener_secret, "feeds-crash-test-listener-secret").expect("secret");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[inbound]\nvault_keys = {:?}\nlistener_secret = {{ file = {:?} }}\n",
        format!("{}/config/sandbox/vault_keys", env!("CARGO_MANIFEST_DIR")),
        listener_secret.display().to_string()
    ));
    std::fs::write(&config, text).expect("config");
    // Latency keeps batches on the wire long enough for the kill to land mid-upload.
    let faults = http()
        .put(format!("{}/__sim/faults", sim.url))
        .json(&serde_json::json!({"latency_ms": [30, 120]}))
        .send()
        .await
        .expect("latency");
    assert!(faults.status().is_success());
    let mut daemon = DaemonProcess::start(dir.path(), &config, port).await;
    let bank = Bank::connect(&sim.info, &daemon.url, BANK_A).await;

    // Every 10th row is invalid (no balance); rows 2991..=3000 repeat rows 1..=10 with a later as-of date.
    let mut rows = Vec::new();
    for n in 1..=ROWS - 10 {
        let row = person_row(&format!("K-{n:05}"));
        rows.push(if n % 10 == 0 {
            row.replace(",1500.00,", ",,")
        } else {
            row
        });
    }
    for n in 1..=10 {
        rows.push(person_row(&format!("K-{n:05}")).replace("2025-06-30", "2025-07-31"));
    }
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
    let c = &done["counts"];
    let invalid = u64::from((ROWS - 10) / 10);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(c["rows"], u64::from(ROWS), "{done}");
    assert_eq!(c["rejected"], invalid, "{done}");
    // Rows 1..=10 lost to their later copies (row 10 was invalid anyway).
    assert_eq!(c["duplicate"], 9, "{done}");
    // Valid rows of the first part, less the 9 that lost to a later copy, plus the 10 later copies.
    let valid = u64::from(ROWS - 10) - invalid - 9 + 10;
    assert_eq!(
        c["accepted"], valid,
        "every valid tradeline created once, whatever the kill interrupted: {done}"
    );
    assert_eq!(c["updated"], 0, "{done}");
    assert_eq!(c["unchanged"], 0, "{done}");

    let records = all_records(&bank, &id).await;
    let numbers: Vec<u64> = records
        .iter()
        .map(|r| r["row"].as_u64().expect("row"))
        .collect();
    assert_eq!(
        numbers,
        (1..=u64::from(ROWS)).collect::<Vec<_>>(),
        "every row once, in order"
    );
    let org = sim.records("Credit_Record__c").await;
    assert_eq!(org.len() as u64, valid, "one record per valid tradeline");
    let keys: BTreeSet<&str> = org
        .iter()
        .map(|r| r["Record_Key__c"].as_str().expect("key"))
        .collect();
    assert_eq!(keys.len(), org.len(), "no key twice");
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
