//! Helpers of the data-feed tests: feed files, uploads and polling as a bank integrator does them.

use std::time::Duration;

use creditlink::sim::{Seed, SimOptions};
use serde_json::Value;

use crate::e2e_support::{Bank, http, poll_until};

/// The default feed's header (every column of the shipped mapping's feed).
pub const HEADER: &str = "account_number,product_type,date_opened,balance,credit_limit,currency,status,as_of_date,subject_type,national_id,first_name,last_name,date_of_birth,registry_number,company_name,in_dispute,previous_account_number";

/// A valid person row for `account`.
pub fn person_row(account: &str) -> String {
    format!(
        "{account},installment,2020-01-15,1500.00,5000.00,EUR,active,2025-06-30,person,CW-1980013101,Maria,Martina,1980-01-31,,,false,"
    )
}

/// A valid company row for `account`.
pub fn company_row(account: &str) -> String {
    format!(
        "{account},revolving,2019-03-01,25000.00,100000.00,EUR,active,2025-06-30,company,,,,,KVK-123.456,Acme Trading N.V.,false,"
    )
}

/// A CSV feed of the default header and `rows`.
pub fn feed(rows: &[String]) -> String {
    let mut text = String::from(HEADER);
    text.push_str("\r\n");
    for r in rows {
        text.push_str(r);
        text.push_str("\r\n");
    }
    text
}

/// An org whose `Credit_Record__c.Company_Name__c` holds 20 characters (the mapping allows 255): a longer
/// company name is refused by Salesforce with `STRING_TOO_LONG`.
pub fn org_with_short_company_name() -> SimOptions {
    let mut seed = Seed::default_org();
    let object = seed
        .objects
        .iter_mut()
        .find(|o| o.name == "Credit_Record__c")
        .expect("credit record object in seed");
    let field = object
        .fields
        .iter_mut()
        .find(|f| f.name == "Company_Name__c")
        .expect("company name field");
    field.length = Some(20);
    SimOptions {
        seed,
        ..SimOptions::default()
    }
}

/// Posts a feed; returns the status code and the JSON (or text) answer.
pub async fn upload(
    daemon_url: &str,
    bank: &Bank,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = http()
        .post(format!("{daemon_url}/api/v1/uploads?name=test-feed"))
        .bearer_auth(bank.token())
        .header("content-type", content_type)
        .timeout(Duration::from_secs(60))
        .body(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("upload");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Uploads a CSV feed and waits for it to complete; returns its status document.
pub async fn upload_and_wait(daemon_url: &str, bank: &Bank, csv: &str) -> Value {
    let (status, doc) = upload(daemon_url, bank, "text/csv", csv.to_owned(), None).await;
    assert_eq!(status, 202, "{doc}");
    assert_eq!(doc["status"], "received", "{doc}");
    wait_final(bank, doc["id"].as_str().expect("id")).await
}

/// `GET path` with the bank's token, as JSON (`None` on any failure, for polling).
pub async fn try_get_json(bank: &Bank, path: &str) -> Option<Value> {
    bank.get(path).send().await.ok()?.json().await.ok()
}

/// `GET path` with the bank's token, as JSON.
pub async fn get_json(bank: &Bank, path: &str) -> Value {
    try_get_json(bank, path)
        .await
        .unwrap_or_else(|| panic!("GET {path}"))
}

/// Polls an upload until it is completed or failed.
pub async fn wait_final(bank: &Bank, id: &str) -> Value {
    poll_until("upload finished", Duration::from_secs(60), || async {
        let doc = try_get_json(bank, &format!("/api/v1/uploads/{id}")).await?;
        matches!(doc["status"].as_str(), Some("completed" | "failed")).then_some(doc)
    })
    .await
}

/// Every row verdict of an upload (all pages).
pub async fn all_records(bank: &Bank, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let page: Value = bank
            .get(&format!(
                "/api/v1/uploads/{id}/records?limit=1000&after={after}"
            ))
            .send()
            .await
            .expect("records")
            .json()
            .await
            .expect("json");
        out.extend(page["records"].as_array().expect("records").iter().cloned());
        match page["next_after"].as_u64() {
            Some(n) => after = n,
            None => return out,
        }
    }
}

/// The `errors.csv` of an upload, parsed: header and rows.
pub async fn errors_csv(bank: &Bank, id: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let response = bank
        .get(&format!("/api/v1/uploads/{id}/errors.csv"))
        .send()
        .await
        .expect("errors.csv");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.expect("text");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}
