//! The stale-record gatekeeper against the simulated org over real HTTP: the scenario table (stale, fresh, in
//! dispute, closed, per-bank threshold, per-product threshold, warn window, already terminated), dry run
//! versus enforcement, warnings once, the audit, and reinstatement.

use chrono::NaiveDate;
use creditlink::config::{BankConfig, RecordsConfig, Threshold};
use creditlink::outbox::{Destination, ListFilter, Outbox, RetryPolicy};
use creditlink::records::{Gatekeeper, RecordRef, Run, is_stale_terminated};
use creditlink::salesforce::{JsonMap, SalesforceClient};
use creditlink::sim::SimHandle;
use creditlink::store::Store;
use serde_json::{Value, json};

use crate::sf_client_sim_support::cc_client;
use crate::sim_support::*;

const BANK_B: &str = "0015Y00000BANKBQA5";

/// One row of the table: the record as seeded, what the run must do, and its status afterwards.
struct Case {
    name: &'static str,
    furnisher: &'static str,
    product: &'static str,
    days_ago: u64,
    status: &'static str,
    in_dispute: bool,
    /// The report's action, `None` = not listed.
    action: Option<&'static str>,
    /// The reason's leading token.
    reason: &'static str,
    status_after: &'static str,
}

/// The seeded record: furnisher, product type, days since last reported, status, in dispute.
type Seeded = (&'static str, &'static str, u64, &'static str, bool);
/// What must happen: the report's action, the reason's leading token, the status afterwards.
type Expected = (Option<&'static str>, &'static str, &'static str);

const fn case(name: &'static str, seeded: Seeded, expected: Expected) -> Case {
    let (furnisher, product, days_ago, status, in_dispute) = seeded;
    let (action, reason, status_after) = expected;
    Case {
        name,
        furnisher,
        product,
        days_ago,
        status,
        in_dispute,
        action,
        reason,
        status_after,
    }
}

/// Defaults 180/30 days; Demo Bank B 90 days; mortgages 365 days.
const CASES: &[Case] = &[
    case(
        "stale",
        (BANK_A, "Installment", 200, "Active", false),
        (Some("terminate"), "stale", "Terminated"),
    ),
    case(
        "fresh",
        (BANK_A, "Installment", 10, "Active", false),
        (None, "", "Active"),
    ),
    case(
        "on_the_threshold_day",
        (BANK_A, "Installment", 180, "Active", false),
        (Some("warn"), "stale_soon", "Active"),
    ),
    case(
        "in_dispute",
        (BANK_A, "Installment", 400, "Active", true),
        (Some("skip"), "in_dispute", "Active"),
    ),
    case(
        "closed",
        (BANK_A, "Revolving", 400, "Closed", false),
        (Some("skip"), "closed", "Closed"),
    ),
    case(
        "closed_in_dispute",
        (BANK_A, "Revolving", 400, "Closed", true),
        (Some("skip"), "closed", "Closed"),
    ),
    case(
        "per_bank_threshold",
        (BANK_B, "Installment", 100, "Active", false),
        (Some("terminate"), "stale", "Terminated"),
    ),
    case(
        "per_bank_warn_window",
        (BANK_B, "Open", 70, "Active", false),
        (Some("warn"), "stale_soon", "Active"),
    ),
    case(
        "per_product_threshold_fresh",
        (BANK_A, "Mortgage", 200, "Active", false),
        (None, "", "Active"),
    ),
    case(
        "per_product_threshold_stale",
        (BANK_A, "Mortgage", 370, "Active", false),
        (Some("terminate"), "stale", "Terminated"),
    ),
    case(
        "warn_window",
        (BANK_A, "Installment", 170, "Active", false),
        (Some("warn"), "stale_soon", "Active"),
    ),
    case(
        "before_the_warn_window",
        (BANK_A, "Installment", 150, "Active", false),
        (None, "", "Active"),
    ),
    case(
        "warn_window_in_dispute",
        (BANK_A, "Installment", 170, "Active", true),
        (None, "", "Active"),
    ),
    case(
        "already_terminated",
        (BANK_A, "Installment", 400, "Terminated", false),
        (None, "", "Terminated"),
    ),
];

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).expect("date")
}

fn key(name: &str) -> String {
    format!("rk_test_{name}")
}

fn bank(account_id: &str, code: &str) -> BankConfig {
    BankConfig {
        account_id: account_id.into(),
        code: code.into(),
        name: format!("Bank {code}"),
        mapping_variant: None,
        webhook_url: Some("https://bank.example/hooks".parse().expect("url")),
        webhook_secret: None,
        webhook_secret_previous: None,
        contacts: vec![format!("desk@{}.example", code.to_lowercase())],
        allowed_origins: Vec::new(),
    }
}

fn records_config() -> RecordsConfig {
    RecordsConfig {
        thresholds: vec![
            Threshold {
                bank: Some("DBB".into()),
                product_type: None,
                stale_after_days: 90,
                warn_before_days: None,
            },
            Threshold {
                bank: None,
                product_type: Some("Mortgage".into()),
                stale_after_days: 365,
                warn_before_days: None,
            },
        ],
        ..RecordsConfig::default()
    }
}

struct World {
    sim: SimHandle,
    client: SalesforceClient,
    outbox: Outbox,
    gatekeeper: Gatekeeper,
}

async fn world() -> World {
    let sim = start().await;
    let client = cc_client(&sim, "62.0");
    for (i, c) in CASES.iter().enumerate() {
        let last = as_of() - chrono::Days::new(c.days_ago);
        let fields: JsonMap = json!({
            "Record_Key__c": key(c.name),
            "Furnisher__c": c.furnisher,
            "Account_Number__c": format!("ACC-{i:04}"),
            "Product_Type__c": c.product,
            "Status__c": c.status,
            "Last_Reported__c": last.to_string(),
            "In_Dispute__c": c.in_dispute,
        })
        .as_object()
        .cloned()
        .expect("object");
        client
            .create("Credit_Record__c", &fields)
            .await
            .expect("seed record");
    }
    let store = Store::memory();
    let outbox = Outbox::open(store.clone(), RetryPolicy::default()).expect("outbox");
    let gatekeeper = Gatekeeper::new(
        &store,
        outbox.clone(),
        client.clone(),
        records_config(),
        vec![bank(BANK_A, "DBA"), bank(BANK_B, "DBB")],
    )
    .expect("gatekeeper");
    World {
        sim,
        client,
        outbox,
        gatekeeper,
    }
}

async fn org_records(client: &SalesforceClient) -> Vec<JsonMap> {
    client
        .query_all(
            "SELECT Id, Record_Key__c, Status__c, Termination_Reason__c FROM Credit_Record__c",
        )
        .await
        .expect("query")
}

fn by_key<'a>(records: &'a [JsonMap], name: &str) -> &'a JsonMap {
    records
        .iter()
        .find(|r| r["Record_Key__c"] == json!(key(name)))
        .unwrap_or_else(|| panic!("record {name}"))
}

async fn stale_warnings(outbox: &Outbox) -> Vec<(String, Value)> {
    let filter = ListFilter {
        tenant: None,
        state: None,
        lane: None,
        limit: 1000,
        after: None,
    };
    outbox
        .list(&filter)
        .await
        .expect("list")
        .into_iter()
        .filter_map(|m| match m.destination {
            Destination::Bank { endpoint, event } if event == "credit_records.stale_warning" => {
                Some((endpoint, m.payload))
            }
            _ => None,
        })
        .collect()
}

fn run(dry_run: bool) -> Run {
    Run {
        dry_run,
        as_of: as_of(),
        actor: "test".into(),
    }
}

#[tokio::test]
async fn the_scenario_table_dry_run_then_enforced() {
    let w = world().await;

    let dry = w.gatekeeper.run(&run(true)).await.expect("dry run");
    assert_eq!(dry.as_of, as_of());
    for c in CASES {
        let listed = dry
            .records
            .iter()
            .find(|r| r.record_key.as_deref() == Some(key(c.name).as_str()));
        assert_eq!(
            listed.map(|r| r.action),
            c.action,
            "case {}: action",
            c.name
        );
        if let Some(r) = listed {
            assert!(
                r.reason.starts_with(c.reason),
                "case {}: reason {:?}",
                c.name,
                r.reason
            );
            assert_eq!(r.furnisher.as_deref(), Some(c.furnisher), "case {}", c.name);
        }
    }
    let expect = |action: &str, reason: &str| {
        CASES
            .iter()
            .filter(|c| c.action == Some(action) && (reason.is_empty() || c.reason == reason))
            .count() as u64
    };
    assert_eq!(dry.counts.terminated, expect("terminate", ""));
    assert_eq!(dry.counts.warned, expect("warn", ""));
    assert_eq!(dry.counts.skipped_dispute, expect("skip", "in_dispute"));
    assert_eq!(dry.counts.skipped_closed, expect("skip", "closed"));
    // A dry run changes nothing and tells nobody.
    let before = org_records(&w.client).await;
    for c in CASES {
        assert_eq!(
            by_key(&before, c.name)["Status__c"],
            json!(c.status),
            "dry run changed {}",
            c.name
        );
    }
    assert!(stale_warnings(&w.outbox).await.is_empty());
    assert!(
        w.gatekeeper
            .audit()
            .list(None, 100)
            .await
            .expect("audit")
            .is_empty()
    );

    let real = w.gatekeeper.run(&run(false)).await.expect("run");
    assert_eq!(
        real.counts, dry.counts,
        "enforcement does what the dry run said"
    );
    let after = org_records(&w.client).await;
    for c in CASES {
        let r = by_key(&after, c.name);
        assert_eq!(
            r["Status__c"],
            json!(c.status_after),
            "case {}: status",
            c.name
        );
        if c.action == Some("terminate") {
            assert_eq!(
                r["Termination_Reason__c"],
                json!("Stale"),
                "case {}",
                c.name
            );
            assert!(is_stale_terminated(r));
        }
    }
    // One warning per bank with warned records, naming only ids and keys.
    let warnings = stale_warnings(&w.outbox).await;
    let mut banks: Vec<&str> = warnings.iter().map(|(b, _)| b.as_str()).collect();
    banks.sort_unstable();
    assert_eq!(banks, ["DBA", "DBB"]);
    let dba = &warnings.iter().find(|(b, _)| b == "DBA").expect("DBA").1;
    let warned: Vec<&str> = dba["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["record_key"].as_str())
        .collect();
    assert_eq!(warned.len(), 2, "{dba}");
    assert!(warned.contains(&key("warn_window").as_str()));
    assert!(
        !dba.to_string().contains("ACC-"),
        "no account numbers in warnings: {dba}"
    );
    // Every termination is audited.
    let audit = w.gatekeeper.audit().list(None, 100).await.expect("audit");
    assert_eq!(audit.len() as u64, real.counts.terminated);
    assert!(
        audit
            .iter()
            .all(|e| e.action == "terminate" && e.actor == "test" && e.reason.starts_with("stale"))
    );

    // Run again: nothing left to terminate, nobody warned twice about the same records.
    let again = w.gatekeeper.run(&run(false)).await.expect("again");
    assert_eq!(again.counts.terminated, 0);
    assert_eq!(
        again.counts.warned, real.counts.warned,
        "still in the window, still listed"
    );
    assert_eq!(stale_warnings(&w.outbox).await.len(), 2, "warned once");
    let _ = &w.sim;
}

#[tokio::test]
async fn fresh_data_reinstates_a_stale_terminated_record_and_is_audited() {
    let w = world().await;
    w.gatekeeper.run(&run(false)).await.expect("run");
    let records = org_records(&w.client).await;
    let stale = by_key(&records, "stale");
    assert!(is_stale_terminated(stale));
    assert!(
        !is_stale_terminated(by_key(&records, "already_terminated")),
        "terminated without reason Stale"
    );
    let reference = RecordRef {
        id: stale["Id"].as_str().expect("id").to_owned(),
        record_key: Some(key("stale")),
        furnisher: Some(BANK_A.into()),
    };
    let done = w
        .gatekeeper
        .reinstate(std::slice::from_ref(&reference), "feeds:upload-1")
        .await
        .expect("reinstate");
    assert_eq!(done, std::slice::from_ref(&reference.id));
    let after = org_records(&w.client).await;
    let revived = by_key(&after, "stale");
    assert_eq!(revived["Status__c"], json!("Active"));
    assert_eq!(revived["Termination_Reason__c"], Value::Null);
    let audit = w.gatekeeper.audit().list(None, 100).await.expect("audit");
    let entry = audit
        .iter()
        .find(|e| e.action == "reinstate")
        .expect("reinstatement audited");
    assert_eq!(entry.record_id, reference.id);
    assert_eq!(entry.actor, "feeds:upload-1");
}
