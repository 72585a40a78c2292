//! The real Salesforce client's Bulk API 2.0 ingest against the simulated org over HTTP: parts and jobs, results
//! mapped back to rows, aborted jobs' unprocessed rows, faults while polling, and resuming from stored job ids
//! with a new client.

use std::time::Duration;

use creditlink::salesforce::{
    BulkJobState, BulkOperation, BulkResults, BulkRows, ErrorClass, IngestSpec, MAX_UPLOAD_BYTES,
    PollPolicy, SalesforceClient,
};
use serde_json::json;

use crate::sf_client_sim_support::*;
use crate::sim_support::*;

const COLUMNS: [&str; 4] = [
    "Record_Key__c",
    "Furnisher__c",
    "Account_Number__c",
    "Product_Type__c",
];

fn upsert_spec() -> IngestSpec {
    IngestSpec {
        object: "Credit_Record__c".to_owned(),
        operation: BulkOperation::Upsert,
        external_id_field: Some("Record_Key__c".to_owned()),
    }
}

fn rows(keys: impl IntoIterator<Item = (String, String, String)>) -> BulkRows {
    let mut rows =
        BulkRows::new(COLUMNS.map(str::to_owned).to_vec(), "Record_Key__c").expect("header");
    for (key, account, product) in keys {
        rows.push(vec![key, BANK_A.to_owned(), account, product])
            .expect("row");
    }
    rows
}

fn valid_rows(prefix: &str, n: usize) -> BulkRows {
    rows((0..n).map(|i| {
        (
            format!("{prefix}-{i:04}"),
            format!("ACC-{i}"),
            "Installment".to_owned(),
        )
    }))
}

fn quick() -> PollPolicy {
    PollPolicy {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        give_up_after: Duration::from_secs(30),
    }
}

/// Wait for every job and gather its results.
async fn finish(sf: &SalesforceClient, jobs: &[String]) -> BulkResults {
    let mut all = BulkResults::default();
    for id in jobs {
        let info = sf.bulk_wait(id, quick()).await.expect("wait");
        assert!(info.state.is_terminal(), "{info:?}");
        let mut results = sf.bulk_results(id, "Record_Key__c").await.expect("results");
        all.successful.append(&mut results.successful);
        all.failed.append(&mut results.failed);
        all.unprocessed.append(&mut results.unprocessed);
    }
    all
}

#[tokio::test]
async fn a_load_is_split_into_jobs_and_every_row_maps_back() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let input = valid_rows("BK", 600);
    let mut stored = Vec::new();
    let parts = sf
        .bulk_submit(&upsert_spec(), &input, 16 * 1024, |id| {
            stored.push(id.to_owned())
        })
        .await
        .expect("submit");
    assert!(
        parts.len() >= 2,
        "600 rows of ~60 bytes need several 16 KiB parts: {parts:?}"
    );
    assert_eq!(parts.iter().map(|p| p.rows).sum::<usize>(), 600);
    assert_eq!(
        parts.iter().map(|p| p.job_id.clone()).collect::<Vec<_>>(),
        stored
    );

    let results = finish(&sf, &stored).await;
    assert!(
        results.failed.is_empty() && results.unprocessed.is_empty(),
        "{results:?}"
    );
    let mut references: Vec<&str> = results
        .successful
        .iter()
        .map(|s| s.reference.as_str())
        .collect();
    references.sort_unstable();
    let expected: Vec<String> = (0..600).map(|i| format!("BK-{i:04}")).collect();
    assert_eq!(references, expected);
    assert!(
        results
            .successful
            .iter()
            .all(|s| s.created && s.id.starts_with("a02"))
    );
    assert_eq!(sim.records("Credit_Record__c").len(), 600);

    // The same rows again: every one is an update of the record it created.
    let again = sf
        .bulk_submit(&upsert_spec(), &input, MAX_UPLOAD_BYTES, |_| {})
        .await
        .expect("submit");
    assert_eq!(again.len(), 1, "one part under the default limit");
    let second = finish(&sf, &[again[0].job_id.clone()]).await;
    assert_eq!(second.successful.len(), 600);
    assert!(second.successful.iter().all(|s| !s.created));
    let first_ids: std::collections::HashMap<_, _> = results
        .successful
        .iter()
        .map(|s| (s.reference.clone(), s.id.clone()))
        .collect();
    assert!(
        second
            .successful
            .iter()
            .all(|s| first_ids[&s.reference] == s.id)
    );
    assert_eq!(sim.records("Credit_Record__c").len(), 600);
}

#[tokio::test]
async fn rejected_rows_come_back_with_salesforce_codes_per_row() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let input = rows([
        (
            "OK-1".to_owned(),
            "ACC-1".to_owned(),
            "Revolving".to_owned(),
        ),
        ("LONG-1".to_owned(), "9".repeat(31), "Revolving".to_owned()),
        ("PICK-1".to_owned(), "ACC-3".to_owned(), "Lease".to_owned()),
        ("MISSING-1".to_owned(), String::new(), "Open".to_owned()),
        ("OK-2".to_owned(), "ACC-5".to_owned(), "Mortgage".to_owned()),
    ]);
    let parts = sf
        .bulk_submit(&upsert_spec(), &input, MAX_UPLOAD_BYTES, |_| {})
        .await
        .expect("submit");
    let info = sf.bulk_wait(&parts[0].job_id, quick()).await.expect("wait");
    assert_eq!(
        (
            info.state,
            info.number_records_processed,
            info.number_records_failed
        ),
        (BulkJobState::JobComplete, 5, 3)
    );
    let results = sf
        .bulk_results(&parts[0].job_id, "Record_Key__c")
        .await
        .expect("results");
    let mut ok: Vec<&str> = results
        .successful
        .iter()
        .map(|s| s.reference.as_str())
        .collect();
    ok.sort_unstable();
    assert_eq!(ok, ["OK-1", "OK-2"]);
    let failure = |reference: &str| {
        results
            .failed
            .iter()
            .find(|f| f.reference == reference)
            .unwrap_or_else(|| panic!("{reference} not among the failures: {:?}", results.failed))
    };
    let long = failure("LONG-1");
    assert_eq!(
        (long.error.code.as_str(), long.error.fields.as_slice()),
        ("STRING_TOO_LONG", &["Account_Number__c".to_owned()][..])
    );
    assert!(
        long.error.message.contains("max length=30"),
        "{:?}",
        long.error
    );
    assert_eq!(long.class(), ErrorClass::Permanent);
    assert_eq!(
        failure("PICK-1").error.code,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    let missing = failure("MISSING-1");
    assert_eq!(missing.error.code, "REQUIRED_FIELD_MISSING");
    assert_eq!(missing.error.fields, ["Account_Number__c"]);
    assert!(results.unprocessed.is_empty());
}

#[tokio::test]
async fn an_aborted_job_returns_its_rows_as_unprocessed() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let job = sf.bulk_create_job(&upsert_spec()).await.expect("create");
    assert_eq!(job.state, BulkJobState::Open);
    let csv = "Record_Key__c,Furnisher__c,Account_Number__c\nAB-1,0015Y00000BANKAQA5,A1\nAB-2,0015Y00000BANKAQA5,A2\n";
    sf.bulk_upload(&job.id, bytes::Bytes::from_static(csv.as_bytes()))
        .await
        .expect("upload");
    let aborted = sf.bulk_abort(&job.id).await.expect("abort");
    assert_eq!(aborted.state, BulkJobState::Aborted);
    let results = sf
        .bulk_results(&job.id, "Record_Key__c")
        .await
        .expect("results");
    assert_eq!(results.unprocessed, ["AB-1", "AB-2"]);
    assert!(results.successful.is_empty() && results.failed.is_empty());
    assert!(sim.records("Credit_Record__c").is_empty());

    // Closing it now is refused by the org and classified as permanent.
    let err = sf
        .bulk_close(&job.id)
        .await
        .expect_err("closed an aborted job");
    assert_eq!(
        (err.code(), err.class()),
        (Some("INVALIDJOBSTATE"), ErrorClass::Permanent)
    );
    // An unknown job id is a permanent NOT_FOUND.
    let err = sf
        .bulk_job("7505Y0000000009AAA")
        .await
        .expect_err("unknown job");
    assert_eq!(
        (err.http_status(), err.class()),
        (Some(404), ErrorClass::Permanent)
    );
}

#[tokio::test]
async fn polling_and_result_reads_ride_out_faults_while_writes_report_them() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    sf.ensure_token().await.expect("token");

    // A write during an outage fails as retryable and leaves no job behind.
    let (spec, input) = (upsert_spec(), valid_rows("FT", 50));
    let submit = || sf.bulk_submit(&spec, &input, MAX_UPLOAD_BYTES, |_| {});
    set_faults(&sim, json!({"outage": true})).await;
    let err = submit().await.expect_err("outage");
    assert_eq!(err.class(), ErrorClass::Retryable);
    clear_faults(&sim).await;

    let parts = submit().await.expect("submit");
    // A third of all calls now fail with 503; the reads retry through it.
    set_faults(
        &sim,
        json!({"error_rate": 0.3, "errors": ["SERVER_UNAVAILABLE"]}),
    )
    .await;
    let results = finish(&sf, &[parts[0].job_id.clone()]).await;
    clear_faults(&sim).await;
    assert_eq!(results.successful.len(), 50, "{results:?}");
    assert_eq!(sim.records("Credit_Record__c").len(), 50);
}

#[tokio::test]
async fn a_new_client_resumes_from_stored_job_ids_without_uploading_again() {
    let sim = start().await;
    let mut stored = Vec::new();
    {
        let sf = jwt_client(&sim);
        sf.bulk_submit(&upsert_spec(), &valid_rows("RS", 300), 8 * 1024, |id| {
            stored.push(id.to_owned())
        })
        .await
        .expect("submit");
        // The process ends here: the client is dropped without waiting for any job.
    }
    // And one job was left Open by a process that died between create and close.
    let orphan = {
        let sf = jwt_client(&sim);
        let job = sf.bulk_create_job(&upsert_spec()).await.expect("create");
        sf.bulk_upload(
            &job.id,
            bytes::Bytes::from_static(
                b"Record_Key__c,Furnisher__c,Account_Number__c\nRS-X,0015Y00000BANKAQA5,X\n",
            ),
        )
        .await
        .expect("upload");
        job.id
    };
    let uploads_before =
        sim.stats()["by_route"]["PUT /services/data/{version}/jobs/ingest/{id}/batches"].clone();

    let restarted = jwt_client(&sim);
    let results = finish(&restarted, &stored).await;
    assert_eq!(results.successful.len(), 300);
    let orphaned = restarted.bulk_wait(&orphan, quick()).await.expect("wait");
    assert_eq!(
        orphaned.state,
        BulkJobState::Aborted,
        "an Open job is aborted on resume"
    );
    let unprocessed = restarted
        .bulk_results(&orphan, "Record_Key__c")
        .await
        .expect("results");
    assert_eq!(
        unprocessed.unprocessed,
        ["RS-X"],
        "its rows come back for the caller to send again"
    );

    assert_eq!(
        sim.stats()["by_route"]["PUT /services/data/{version}/jobs/ingest/{id}/batches"],
        uploads_before
    );
    assert_eq!(sim.records("Credit_Record__c").len(), 300);
}
