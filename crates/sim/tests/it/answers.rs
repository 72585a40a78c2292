//! The hot answers (query pages, collections results) are written as text, not serialised from `Value`
//! trees: their bytes must stay exactly what serde_json wrote before (keys in sorted order, compact, its
//! escaping), which is what re-serialising the parsed body gives.

use serde_json::{Value, json};

use creditlink_sim::testkit::*;

/// Status, content type and raw body; asserts the body is in serde_json's own compact form.
async fn raw(req: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
    let resp = req.bearer_auth(token).send().await.expect("request");
    let status = resp.status().as_u16();
    let kind = resp.headers()[reqwest::header::CONTENT_TYPE].clone();
    let text = resp.text().await.expect("body");
    let parsed: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(kind, "application/json");
    assert_eq!(text, parsed.to_string(), "not in serde_json's form");
    (status, parsed)
}

fn request(key: &str, purpose: &str) -> Value {
    json!({"attributes": {"type": "Credit_Report_Request__c"}, "Request_Key__c": key, "Bank__c": BANK_A,
           "Subject_Type__c": "Company", "Registry_Number__c": "R-\"1\"\n\u{1}é", "Purpose__c": purpose})
}

#[tokio::test]
async fn collections_results_and_query_pages_keep_serde_json_bytes() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let url = api(
        &sim,
        "/composite/sobjects/Credit_Report_Request__c/Request_Key__c",
    );
    let records: Vec<Value> = (0..450)
        .map(|i| request(&format!("K-{i:04}"), "Other"))
        .chain([request("K-bad", "Nope")])
        .collect();
    for (i, chunk) in records.chunks(200).enumerate() {
        let (status, results) = raw(
            client().patch(&url).json(&json!({"records": chunk})),
            &token,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(results[0]["created"], true, "{i}: {results}");
    }
    // An update (created: false), a failure, and an allOrNone rollback, in one answer each.
    let (_, results) = raw(
        client()
            .patch(&url)
            .json(&json!({"records": [request("K-0001", "Dispute"), request("K-x", "Nope")]})),
        &token,
    )
    .await;
    assert_eq!(results[0]["created"], false);
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    let (_, results) = raw(
        client()
            .patch(&url)
            .json(&json!({"allOrNone": true, "records": [request("K-y", "Other"), request("K-z", "Nope")]})),
        &token,
    )
    .await;
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );

    // A covered range over two pages, and a scan with a text field holding escapes.
    let soql = "SELECT Id, SystemModstamp, Registry_Number__c, Name FROM Credit_Report_Request__c \
                WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp";
    let (status, first) = raw(
        client()
            .get(api(&sim, "/query"))
            .query(&[("q", soql)])
            .header("Sforce-Query-Options", "batchSize=300"),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["totalSize"], 450);
    assert_eq!(first["records"].as_array().map(Vec::len), Some(300));
    assert_eq!(first["records"][0]["Registry_Number__c"], "R-\"1\"\n\u{1}é");
    let next = first["nextRecordsUrl"].as_str().expect("next page");
    let (_, second) = raw(client().get(format!("{}{next}", sim.base_url())), &token).await;
    assert_eq!(second["done"], true);
    assert_eq!(second["records"].as_array().map(Vec::len), Some(150));
    let (_, scan) = raw(
        client().get(api(&sim, "/query")).query(&[(
            "q",
            "SELECT Name, Id FROM Credit_Report_Request__c WHERE Purpose__c = 'Dispute'",
        )]),
        &token,
    )
    .await;
    assert_eq!(scan["totalSize"], 1);
    let id = scan["records"][0]["Id"].as_str().expect("id");
    assert_eq!(
        scan["records"][0]["attributes"]["url"],
        format!("/services/data/v62.0/sobjects/Credit_Report_Request__c/{id}")
    );
}
