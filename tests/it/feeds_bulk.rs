//! Uploads above `[uploads] bulk_threshold_rows` go through Bulk API 2.0 (in-process sandbox): Salesforce's
//! per-row refusals become `salesforce_rejected` kick-outs with its message (no values quoted), every row gets
//! one verdict, a re-upload updates the same records, and no sObject Collections call carries the rows.

use creditlink::sim::SimOptions;
use serde_json::Value;

use crate::e2e_support::{fast_retries, sandbox_banks};
use crate::feeds_support::{
    all_records, company_row, errors_csv, feed, org_with_short_company_name, person_row,
    upload_and_wait,
};

const CREATE: &str = "POST /services/data/{version}/jobs/ingest";
const COLLECTIONS: &str = "PATCH /services/data/{version}/composite/sobjects/{object}/{field}";

/// A sandbox whose uploads of 5 rows or more go through Bulk API 2.0 in jobs of 200 rows, plus `extra`
/// overrides.
async fn bulk_sandbox(
    sim: SimOptions,
    extra: &[(&str, &str)],
) -> (creditlink::sandbox::Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = creditlink::sandbox::SandboxOptions::new(
        dir.path().join("data"),
        "127.0.0.1:0".parse().expect("addr"),
    );
    opts.sim = sim;
    opts.overrides = fast_retries();
    opts.overrides.extend([
        (
            "CREDITLINK__UPLOADS__BULK_THRESHOLD_ROWS".to_owned(),
            "5".to_owned(),
        ),
        (
            "CREDITLINK__UPLOADS__BULK_JOB_ROWS".to_owned(),
            "200".to_owned(),
        ),
    ]);
    opts.overrides.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    opts.automate = false;
    let sb = creditlink::sandbox::Sandbox::start(opts)
        .await
        .expect("sandbox starts");
    (sb, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_upload_maps_every_row_back_and_kicks_out_salesforce_refusals() {
    let (sb, _dir) = bulk_sandbox(org_with_short_company_name(), &[]).await;
    let (bank, _) = sandbox_banks(&sb).await;
    let long_name = "Acme Trading Company Limited";
    let mut rows: Vec<String> = (1..=250)
        .map(|n| person_row(&format!("B-{n:04}")))
        .collect();
    rows[9] = rows[9].replace(",1500.00,", ",,"); // row 10: kicked out by validation
    rows[19] = company_row("B-0020").replace("Acme Trading N.V.", long_name); // row 20: by Salesforce
    rows.push(person_row("B-0001").replace("2025-06-30", "2025-07-31")); // row 251 wins over row 1
    let text = feed(&rows);
    let done = upload_and_wait(&sb.daemon_url, &bank, &text).await;
    let c = &done["counts"];
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            c["rows"].as_u64(),
            c["accepted"].as_u64(),
            c["rejected"].as_u64(),
            c["duplicate"].as_u64()
        ),
        (Some(251), Some(248), Some(2), Some(1)),
        "{done}"
    );
    let stats = sb.sim.stats();
    assert_eq!(
        stats["by_route"][CREATE], 2,
        "two jobs of ≤ 200 rows: {stats}"
    );
    assert!(
        stats["by_route"][COLLECTIONS].is_null(),
        "no Collections upserts: {stats}"
    );

    let id = done["id"].as_str().expect("id");
    let records = all_records(&bank, id).await;
    assert_eq!(records.len(), 251);
    let row = |n: usize| &records[n - 1];
    assert_eq!(row(1)["outcome"], "duplicate");
    assert_eq!(row(1)["duplicate_of"], 251);
    assert_eq!(row(10)["problems"][0]["code"], "missing_value");
    let refused = &row(20)["problems"][0];
    assert_eq!(row(20)["outcome"], "rejected", "{}", row(20));
    assert_eq!(refused["code"], "salesforce_rejected");
    assert_eq!(
        refused["field"], "company_name",
        "the feed column, from Salesforce's field"
    );
    let message = refused["message"].as_str().expect("message");
    assert!(message.contains("STRING_TOO_LONG"), "{message}");
    assert!(
        !message.contains(long_name),
        "no values in messages: {message}"
    );
    assert!(
        records
            .iter()
            .filter(|r| r["outcome"] == "accepted")
            .all(|r| r["salesforce_id"].as_str().is_some_and(|s| s.len() == 18))
    );
    let (_, lines) = errors_csv(&bank, id).await;
    assert!(
        lines.iter().any(|l| l.contains(&long_name.to_owned())),
        "errors.csv has the row as uploaded"
    );

    // The same feed again: the same records, now updated (Bulk cannot tell unchanged rows).
    let again = upload_and_wait(&sb.daemon_url, &bank, &text).await;
    assert_eq!(again["counts"]["updated"], 248, "{again}");
    assert_eq!(again["counts"]["accepted"], 0, "{again}");
    let org: Vec<serde_json::Map<String, Value>> = sb.sim.records("Credit_Record__c");
    assert_eq!(org.len(), 248, "no second record");

    // An account-number change in a Bulk upload re-keys the existing record (still no second record).
    let old_id = records[1]["salesforce_id"].as_str().expect("id").to_owned();
    let mut changed: Vec<String> = (3..=6).map(|n| person_row(&format!("B-{n:04}"))).collect();
    changed.push(person_row("NEW-0002").replace(",false,", ",false,B-0002"));
    let moved = upload_and_wait(&sb.daemon_url, &bank, &feed(&changed)).await;
    assert_eq!(moved["counts"]["updated"], 5, "{moved}");
    let org: Vec<serde_json::Map<String, Value>> = sb.sim.records("Credit_Record__c");
    assert_eq!(org.len(), 248, "re-keyed, not duplicated");
    let row5 = &all_records(&bank, moved["id"].as_str().expect("id")).await[4];
    assert_eq!(row5["salesforce_id"], old_id.as_str(), "{row5}");
    sb.stop().await.expect("stop");
}

/// `[uploads] quota_per_hour`: uploads per bank and hour; beyond it 429 with `Retry-After`, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_quota_refuses_with_429_and_retry_after() {
    let (sb, dir) = bulk_sandbox(
        SimOptions::default(),
        &[("CREDITLINK__UPLOADS__QUOTA_PER_HOUR", "2")],
    )
    .await;
    let (bank, other) = sandbox_banks(&sb).await;
    let text = feed(&[person_row("Q-1")]);
    for _ in 0..2 {
        upload_and_wait(&sb.daemon_url, &bank, &text).await;
    }
    let refused = crate::e2e_support::http()
        .post(format!("{}/api/v1/uploads", sb.daemon_url))
        .bearer_auth(bank.token())
        .header("content-type", "text/csv")
        .body(text.clone())
        .send()
        .await
        .expect("third upload");
    let retry_after = crate::e2e_support::retry_after_of_429(&refused);
    assert!((1..=1800).contains(&retry_after), "{retry_after}");
    let list = crate::feeds_support::get_json(&bank, "/api/v1/uploads").await;
    assert_eq!(
        list["uploads"].as_array().expect("uploads").len(),
        2,
        "nothing stored"
    );
    let spools = std::fs::read_dir(dir.path().join("data/uploads"))
        .expect("spool dir")
        .count();
    assert_eq!(spools, 0, "no spool left by the refusal");
    // Another bank has its own bucket.
    upload_and_wait(&sb.daemon_url, &other, &text).await;
    sb.stop().await.expect("stop");
}
