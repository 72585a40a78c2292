//! `records dedupe` against the simulated org over real HTTP: a dry run reports and changes nothing; a real
//! run keeps the most recently reported record of each group, marks the others, re-keys the survivor, and a
//! second scan finds nothing. Near-misses (another product, another furnisher, one digit apart) never merge.

use creditlink::records::dedupe::{self, Quiet};
use creditlink::records::{RuleSet, record_key};
use creditlink::salesforce::{JsonMap, SalesforceClient};
use serde_json::json;

use crate::sf_client_sim_support::cc_client;
use crate::sim_support::*;

const BANK_B: &str = "0015Y00000BANKBQA5";

/// (label, furnisher, product, account number as the legacy load wrote it, last reported)
const LEGACY: &[(&str, &str, &str, &str, &str)] = &[
    ("old", BANK_A, "Installment", "000-123 45", "2026-01-01"),
    ("new", BANK_A, "Installment", "12345", "2026-03-01"),
    (
        "one_digit_apart",
        BANK_A,
        "Installment",
        "12346",
        "2026-01-01",
    ),
    ("other_product", BANK_A, "Revolving", "12345", "2026-01-01"),
    (
        "other_furnisher",
        BANK_B,
        "Installment",
        "12345",
        "2026-01-01",
    ),
    ("three_a", BANK_B, "Mortgage", "ab-9", "2025-05-01"),
    ("three_b", BANK_B, "Mortgage", "AB9", "2025-07-01"),
    ("three_c", BANK_B, "Mortgage", "0ab 9", "2025-06-01"),
];

async fn seed(client: &SalesforceClient) -> Vec<(&'static str, String)> {
    let mut ids = Vec::new();
    for (label, furnisher, product, account, last) in LEGACY {
        let fields: JsonMap = json!({
            "Furnisher__c": furnisher,
            "Account_Number__c": account,
            "Product_Type__c": product,
            "Status__c": "Active",
            "Last_Reported__c": last,
        })
        .as_object()
        .cloned()
        .expect("object");
        let id = client
            .create("Credit_Record__c", &fields)
            .await
            .expect("seed")
            .id;
        ids.push((*label, id));
    }
    ids
}

async fn records(client: &SalesforceClient) -> Vec<JsonMap> {
    client
        .query_all(
            "SELECT Id, Status__c, Termination_Reason__c, Record_Key__c FROM Credit_Record__c",
        )
        .await
        .expect("query")
}

fn find<'a>(all: &'a [JsonMap], id: &str) -> &'a JsonMap {
    all.iter().find(|r| r["Id"] == json!(id)).expect("record")
}

#[tokio::test]
async fn a_dry_run_reports_and_a_real_run_merges_into_the_latest() {
    let sim = start().await;
    let client = cc_client(&sim, "62.0");
    let ids = seed(&client).await;
    let id = |label: &str| {
        ids.iter()
            .find(|(l, _)| *l == label)
            .expect("label")
            .1
            .clone()
    };
    let rules = RuleSet::default();

    let dry = dedupe::run(&client, &rules, true, &Quiet)
        .await
        .expect("dry run");
    assert_eq!(dry.scanned, LEGACY.len() as u64);
    assert_eq!((dry.groups, dry.duplicates, dry.merged), (2, 3, 0));
    assert_eq!(dry.by_rule["default"].groups, 2);
    let mut listed = dry.listed.clone();
    listed.sort_by(|a, b| a.keep.cmp(&b.keep));
    let pair = listed
        .iter()
        .find(|g| g.keep == id("new"))
        .expect("the pair, kept by its latest");
    assert_eq!(pair.merge, [id("old")]);
    assert_eq!(pair.rule, "default");
    let three = listed
        .iter()
        .find(|g| g.keep == id("three_b"))
        .expect("the three, kept by its latest");
    let mut merged = three.merge.clone();
    merged.sort();
    let mut expected = vec![id("three_a"), id("three_c")];
    expected.sort();
    assert_eq!(merged, expected);
    // Nothing personal in the report: ids and counts only.
    let text = serde_json::to_string(&dry).expect("json");
    assert!(!text.contains("12345") && !text.contains("AB9"), "{text}");
    for r in records(&client).await {
        assert_eq!(r["Status__c"], json!("Active"), "a dry run changes nothing");
    }

    let real = dedupe::run(&client, &rules, false, &Quiet)
        .await
        .expect("merge");
    assert_eq!(
        (real.groups, real.duplicates, real.merged, real.failed),
        (2, 3, 3, 0)
    );
    let all = records(&client).await;
    for loser in ["old", "three_a", "three_c"] {
        let r = find(&all, &id(loser));
        assert_eq!(r["Status__c"], json!("Terminated"), "{loser}");
        assert_eq!(r["Termination_Reason__c"], json!("Duplicate"), "{loser}");
    }
    for survivor in [
        "new",
        "one_digit_apart",
        "other_product",
        "other_furnisher",
        "three_b",
    ] {
        assert_eq!(
            find(&all, &id(survivor))["Status__c"],
            json!("Active"),
            "{survivor}"
        );
    }
    // The survivor carries the key the next upload of its tradeline lands on.
    assert_eq!(
        find(&all, &id("new"))["Record_Key__c"],
        json!(record_key(BANK_A, "Installment", "12345"))
    );

    let rerun = dedupe::run(&client, &rules, true, &Quiet)
        .await
        .expect("rerun");
    assert_eq!(
        (rerun.scanned, rerun.groups),
        (5, 0),
        "merged records are left out; nothing left to merge"
    );
}
