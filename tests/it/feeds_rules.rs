//! The feeds worker applies the configured duplicate rules (`[records]`): the first rule that fires names the
//! verdict (merge → `duplicate`, reject → `duplicate_rejected`, flag → a `duplicate_flagged` warning);
//! `previous_account_number` re-keys the existing record (no second record, same Salesforce id); fresh data
//! for a stale-terminated record reinstates it (`reinstated`, audited). A real daemon against the simulator.

use serde_json::{Value, json};

use crate::e2e_process::{DaemonProcess, SimProcess, free_port};
use crate::e2e_support::{BANK_A, Bank, http, metric};
use crate::feeds_crash::feeds_config;
use crate::feeds_support::{all_records, feed, upload_and_wait};

const RULES: &str = r#"
[records]

[[records.rules]]
name = "same_opening"
scope = "within_upload"
action = "reject"
fields = [
  { field = "furnisher" },
  { field = "national_id", normalise = ["alnum", "upper"] },
  { field = "date_opened", normalise = ["date"] },
]

[[records.rules]]
name = "same_person"
scope = "within_upload"
action = "flag"
fields = [
  { field = "furnisher" },
  { field = "national_id", normalise = ["alnum", "upper"] },
  { field = "last_name", normalise = ["name"] },
]
"#;

/// A person row of the default feed.
fn row(
    account: &str,
    national_id: &str,
    opened: &str,
    last_name: &str,
    as_of: &str,
    previous: &str,
) -> String {
    format!(
        "{account},installment,{opened},1500.00,5000.00,EUR,active,{as_of},person,{national_id},Maria,{last_name},1980-01-31,,,false,{previous}"
    )
}

fn problem<'a>(record: &'a Value, code: &str) -> Option<&'a Value> {
    record["problems"]
        .as_array()?
        .iter()
        .find(|p| p["code"] == code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_name_their_verdicts_rekeys_update_and_fresh_data_reinstates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimProcess::start(dir.path()).await;
    let port = free_port();
    let config = feeds_config(dir.path(), &sim, port, RULES);
    let mut daemon = DaemonProcess::start(dir.path(), &config, port).await;
    let bank = Bank::connect(&sim.info, &daemon.url, BANK_A).await;

    let d = "2025-06-30";
    let rows = vec![
        row("M-1", "CW-1001", "2020-01-15", "Martina", d, ""),
        row("m 1", "CW-1001", "2020-01-15", "Martina", "2025-07-31", ""),
        row("R-1", "CW-2002", "2019-05-05", "Rosa", d, ""),
        row("R-2", "cw 2002", "2019-05-05", "Rosa", d, ""),
        row("F-1", "CW-3003", "2018-01-01", "Martina", d, ""),
        row("F-2", "CW3003", "2018-02-02", "Martína", d, ""),
    ];
    let done = upload_and_wait(&daemon.url, &bank, &feed(&rows)).await;
    let c = &done["counts"];
    assert_eq!(
        (
            c["rows"].as_u64(),
            c["accepted"].as_u64(),
            c["duplicate"].as_u64(),
            c["rejected"].as_u64(),
            c["warnings"].as_u64()
        ),
        (Some(6), Some(4), Some(1), Some(1), Some(2)),
        "{done} (the duplicate's note and the flag are the warnings)"
    );
    let records = all_records(&bank, done["id"].as_str().expect("id")).await;
    // Row 1: the default rule (same tradeline, reformatted), merged into the later row 2.
    assert_eq!(records[0]["outcome"], "duplicate");
    assert_eq!(records[0]["duplicate_of"], 2);
    let merged = problem(&records[0], "duplicate_in_upload").expect("duplicate problem");
    assert!(
        merged["message"]
            .as_str()
            .expect("message")
            .contains("Duplicate rule: default"),
        "{merged}"
    );
    // Row 3: `same_opening` (reject) fired against row 4.
    assert_eq!(records[2]["outcome"], "rejected", "{}", records[2]);
    let rejected = problem(&records[2], "duplicate_rejected").expect("rejected by rule");
    assert_eq!(rejected["severity"], "error");
    assert!(
        rejected["message"]
            .as_str()
            .expect("message")
            .contains("Duplicate rule: same_opening; row 4"),
        "{rejected}"
    );
    // Row 5: `same_person` (flag) against row 6: sent, with a warning naming the rule.
    assert_eq!(records[4]["outcome"], "accepted", "{}", records[4]);
    let flagged = problem(&records[4], "duplicate_flagged").expect("flagged");
    assert_eq!(flagged["severity"], "warning");
    assert!(
        flagged["message"]
            .as_str()
            .expect("message")
            .contains("Duplicate rule: same_person; row 6"),
        "{flagged}"
    );
    for i in [1, 3, 5] {
        assert_eq!(records[i]["outcome"], "accepted", "{}", records[i]);
        assert!(
            records[i]["problems"]
                .as_array()
                .expect("problems")
                .is_empty(),
            "{}",
            records[i]
        );
    }
    let org = sim.records("Credit_Record__c").await;
    assert_eq!(org.len(), 4);
    let m1_id = records[1]["salesforce_id"].as_str().expect("id").to_owned();

    // The bank changed M-1's account number to NEW-9: the same record, re-keyed, history kept.
    let rekeyed = upload_and_wait(
        &daemon.url,
        &bank,
        &feed(&[row(
            "NEW-9",
            "CW-1001",
            "2020-01-15",
            "Martina",
            "2025-08-31",
            "M-1",
        )]),
    )
    .await;
    assert_eq!(rekeyed["counts"]["updated"], 1, "{rekeyed}");
    let r = &all_records(&bank, rekeyed["id"].as_str().expect("id")).await[0];
    assert_eq!(
        r["salesforce_id"],
        m1_id.as_str(),
        "the existing record, not a second one: {r}"
    );
    let org = sim.records("Credit_Record__c").await;
    assert_eq!(org.len(), 4, "no second record");
    let record = org
        .iter()
        .find(|o| o["Id"] == m1_id.as_str())
        .expect("record");
    assert_eq!(
        record["Record_Key__c"], r["record_key"],
        "re-keyed to the new account number"
    );
    assert_eq!(record["Last_Reported__c"], "2025-08-31");

    // The gatekeeper terminated R-2 as stale; fresh data for it reinstates it (audited).
    let r2_id = records[3]["salesforce_id"].as_str().expect("id");
    let edit = http()
        .patch(format!(
            "{}/__sim/records/Credit_Record__c/{r2_id}",
            sim.url
        ))
        .json(&json!({"fields": {"Status__c": "Terminated", "Termination_Reason__c": "Stale"}}))
        .send()
        .await
        .expect("terminate");
    assert!(edit.status().is_success(), "{:?}", edit.text().await);
    let fresh = upload_and_wait(
        &daemon.url,
        &bank,
        &feed(&[row(
            "R-2",
            "CW-2002",
            "2019-05-05",
            "Rosa",
            "2025-09-30",
            "",
        )]),
    )
    .await;
    assert_eq!(fresh["counts"]["reinstated"], 1, "{fresh}");
    let org = sim.records("Credit_Record__c").await;
    let record = org.iter().find(|o| o["Id"] == r2_id).expect("record");
    assert_eq!(record["Status__c"], "Active");
    assert!(record["Termination_Reason__c"].is_null(), "{record:?}");
    let metrics = daemon.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "creditlink_gatekeeper_records_total{action=\"reinstate\"}"
        ),
        1.0,
        "the reinstatement is audited and counted"
    );
    daemon.terminate().await;
}
