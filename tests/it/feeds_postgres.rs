//! Data-feed uploads with `[store] backend = "postgres"` (in-process sandbox on the run's private
//! cluster): the ledger, batches, verdicts and `errors.csv` live in the database, the spool on the
//! daemon's disk; an upload with a valid and a rejected row completes end to end, and a re-upload
//! finds the first one's tradeline unchanged. With two daemons on one database, an upload is processed
//! only by the daemon holding its spool: the other sees it in the shared ledger and leaves it alone.

use std::time::Duration;

use secrecy::ExposeSecret as _;

use serde_json::json;

use crate::e2e_support::{http, poll_until, sandbox_banks, sandbox_with};
use crate::feeds_support::{
    all_records, errors_csv, feed, person_row, try_get_json, upload, upload_and_wait, wait_final,
};
use crate::pg_support::cluster;

const CREDIT_RECORD: &str = "Credit_Record__c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_completes_end_to_end_on_postgres() {
    let Some(pg) = cluster("an_upload_completes_end_to_end_on_postgres") else {
        return;
    };
    let url = pg.fresh_database().await;
    let (sb, _dir) = sandbox_with(
        creditlink::sim::SimOptions::default(),
        &[
            ("CREDITLINK__STORE__BACKEND", "postgres"),
            ("DATABASE_URL", url.expose_secret()),
        ],
    )
    .await;
    let (bank, _) = sandbox_banks(&sb).await;
    let bad = person_row("PG-2").replace("2020-01-15", "2020-13-45");
    let rows = vec![person_row("PG-1"), bad];
    let done = upload_and_wait(&sb.daemon_url, &bank, &feed(&rows)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["counts"]["accepted"], 1, "{done}");
    assert_eq!(done["counts"]["rejected"], 1, "{done}");
    let id = done["id"].as_str().expect("id");
    let verdicts = all_records(&bank, id).await;
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    let (_, errors) = errors_csv(&bank, id).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(sb.sim.records(CREDIT_RECORD).len(), 1);

    // The ledger is the database's: the upload's record is a row of the shared `kv` table.
    let (client, conn) = tokio_postgres::connect(url.expose_secret(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM kv WHERE tree = 'feeds.uploads' AND key = $1",
            &[&id.as_bytes()],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 1);
    drop(client);
    task.abort();

    // Re-uploading the accepted row changes nothing in Salesforce.
    let again = upload_and_wait(&sb.daemon_url, &bank, &feed(&[person_row("PG-1")])).await;
    assert_eq!(again["counts"]["unchanged"], 1, "{again}");
    assert_eq!(sb.sim.records(CREDIT_RECORD).len(), 1);
    sb.stop().await.expect("clean stop");
}

/// An in-process sandbox whose store is database `url`.
async fn postgres_sandbox(
    url: &secrecy::SecretString,
) -> (creditlink::sandbox::Sandbox, tempfile::TempDir) {
    sandbox_with(
        creditlink::sim::SimOptions::default(),
        &[
            ("CREDITLINK__STORE__BACKEND", "postgres"),
            ("DATABASE_URL", url.expose_secret()),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_leaves_an_upload_it_has_no_spool_for_to_the_first() {
    let Some(pg) = cluster("a_second_daemon_leaves_an_upload_it_has_no_spool_for_to_the_first")
    else {
        return;
    };
    let url = pg.fresh_database().await;
    let (a, _dir_a) = postgres_sandbox(&url).await;
    let (bank, _) = sandbox_banks(&a).await;
    // A's org is down: A's upload stays processing (retrying) while B starts. One authenticated call
    // first, so the bank's token stays valid (cached) during the outage.
    let _ = try_get_json(&bank, "/api/v1/uploads").await;
    let faults = format!("{}/__sim/faults", a.sim.base_url());
    let down = http()
        .put(&faults)
        .json(&json!({ "outage": true }))
        .send()
        .await
        .expect("outage");
    assert!(down.status().is_success());
    let (code, doc) = upload(
        &a.daemon_url,
        &bank,
        "text/csv",
        feed(&[person_row("TWO-1")]),
        None,
    )
    .await;
    assert_eq!(code, 202, "{doc}");
    let id = doc["id"].as_str().expect("id").to_owned();
    poll_until(
        "A processing the upload",
        Duration::from_secs(20),
        || async {
            let doc = try_get_json(&bank, &format!("/api/v1/uploads/{id}")).await?;
            (doc["status"] == "processing").then_some(())
        },
    )
    .await;

    // B's worker scans the shared ledger at start (and every few seconds after) and finds the upload
    // active, with no spool on its disk.
    let (b, _dir_b) = postgres_sandbox(&url).await;
    let b_scanned = b.daemon_url.clone();
    poll_until("B ready", Duration::from_secs(20), || {
        let url = format!("{b_scanned}/readyz");
        async move {
            http()
                .get(url)
                .send()
                .await
                .ok()?
                .status()
                .is_success()
                .then_some(())
        }
    })
    .await;
    let up = http().delete(&faults).send().await.expect("org back");
    assert!(up.status().is_success());
    let done = wait_final(&bank, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["counts"]["accepted"], 1, "{done}");
    b.stop().await.expect("B stops");
    a.stop().await.expect("A stops");
}
