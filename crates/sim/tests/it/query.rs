//! SOQL through the simulator's HTTP query routes (the `soql` module is unit-tested on its own): both path
//! spellings, COUNT(), datetime and relative-date filters, ORDER BY/LIMIT, batch-size paging, error bodies,
//! queryAll and blob fields.

use std::time::{Duration, Instant};

use creditlink_sim::SimHandle;
use serde_json::{Value, json};

use creditlink_sim::testkit::*;

/// `GET {base}/services/data/v62.0{path}?q=…` with optional `Sforce-Query-Options`.
async fn query_at(
    sim: &SimHandle,
    token: &str,
    path: &str,
    soql: &str,
    batch: Option<u32>,
) -> (u16, Value) {
    let mut req = client().get(api(sim, path)).query(&[("q", soql)]);
    if let Some(n) = batch {
        req = req.header("Sforce-Query-Options", format!("batchSize={n}"));
    }
    let (status, _, body) = send(req, token).await;
    (status, body)
}

async fn query(sim: &SimHandle, token: &str, soql: &str) -> Value {
    let (status, body) = query_at(sim, token, "/query", soql, None).await;
    assert_eq!(status, 200, "{soql}: {body}");
    body
}

/// Insert `n` Credit_Record__c rows through sObject Collections; returns their ids in order.
async fn insert_records(
    sim: &SimHandle,
    token: &str,
    prefix: &str,
    n: usize,
    extra: Value,
) -> Vec<String> {
    let mut ids = Vec::new();
    for start in (0..n).step_by(200) {
        let records: Vec<Value> = (start..n.min(start + 200))
            .map(|i| {
                let mut r = json!({"attributes": {"type": "Credit_Record__c"}, "Furnisher__c": BANK_A,
                    "Account_Number__c": format!("{prefix}-{i:05}")});
                if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
                    r.extend(extra.clone());
                }
                r
            })
            .collect();
        let (status, _, body) = send(
            client()
                .post(api(sim, "/composite/sobjects"))
                .json(&json!({"allOrNone": true, "records": records})),
            token,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        for item in body.as_array().expect("results") {
            assert_eq!(item["success"], true, "{item}");
            ids.push(item["id"].as_str().expect("id").to_owned());
        }
    }
    ids
}

#[tokio::test]
async fn both_path_spellings_count_order_and_limit() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    insert_records(&sim, &token, "ORD", 30, json!({})).await;
    let soql = "SELECT Id, Account_Number__c FROM Credit_Record__c ORDER BY Account_Number__c DESC LIMIT 5";
    let (status, plain) = query_at(&sim, &token, "/query", soql, None).await;
    let (status_slash, slash) = query_at(&sim, &token, "/query/", soql, None).await;
    assert_eq!((status, status_slash), (200, 200));
    assert_eq!(plain, slash, "/query and /query/ answer alike");
    assert_eq!(
        (plain["totalSize"].clone(), plain["done"].clone()),
        (json!(5), json!(true))
    );
    assert!(plain.get("nextRecordsUrl").is_none());
    let numbers: Vec<&str> = plain["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Account_Number__c"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [
            "ORD-00029",
            "ORD-00028",
            "ORD-00027",
            "ORD-00026",
            "ORD-00025"
        ]
    );
    let first = &plain["records"][0];
    assert_eq!(first["attributes"]["type"], "Credit_Record__c");
    assert_eq!(
        first["attributes"]["url"],
        format!(
            "/services/data/v62.0/sobjects/Credit_Record__c/{}",
            first["Id"].as_str().unwrap()
        )
    );
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        3,
        "only the selected fields plus attributes: {keys:?}"
    );

    let count = query(
        &sim,
        &token,
        "SELECT COUNT() FROM Credit_Record__c WHERE Account_Number__c LIKE 'ORD-0001%'",
    )
    .await;
    assert_eq!(count, json!({"totalSize": 10, "done": true, "records": []}));
    let lower = query(&sim, &token, "select count() from credit_record__c").await;
    assert_eq!(lower["totalSize"], 30);
}

#[tokio::test]
async fn datetime_and_relative_date_filters() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let today = chrono::Utc::now().date_naive();
    let days_ago = |n: u64| {
        (today - chrono::Days::new(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    let early = insert_records(
        &sim,
        &token,
        "EARLY",
        3,
        json!({"Date_Opened__c": days_ago(0)}),
    )
    .await;
    let stamp = query(
        &sim,
        &token,
        &format!(
            "SELECT SystemModstamp FROM Credit_Record__c WHERE Id = '{}'",
            early[2]
        ),
    )
    .await["records"][0]["SystemModstamp"]
        .as_str()
        .expect("stamp")
        .to_owned();
    assert_eq!(stamp.len(), "2026-05-20T20:49:32.000+0000".len(), "{stamp}");
    // Wait (bounded) until the clock has moved past the stamp's millisecond, so later writes are strictly newer.
    let at =
        chrono::DateTime::parse_from_str(&stamp, "%Y-%m-%dT%H:%M:%S%.3f%z").expect("stamp parses");
    let deadline = Instant::now() + Duration::from_secs(5);
    // The stamp is truncated to the millisecond: wait for the next whole millisecond, not just a later instant.
    while chrono::Utc::now() < at + chrono::Duration::milliseconds(1) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    insert_records(
        &sim,
        &token,
        "LATE",
        2,
        json!({"Date_Opened__c": days_ago(1)}),
    )
    .await;
    insert_records(
        &sim,
        &token,
        "OLD",
        4,
        json!({"Date_Opened__c": days_ago(3)}),
    )
    .await;

    let literal = format!("{}Z", &stamp[..23]);
    let newer = query(&sim, &token, &format!(
        "SELECT Account_Number__c FROM Credit_Record__c WHERE SystemModstamp > {literal} ORDER BY Account_Number__c"
    ))
    .await;
    assert_eq!(newer["totalSize"], 6, "{newer}");
    let with_offset = query(
        &sim,
        &token,
        &format!("SELECT Id FROM Credit_Record__c WHERE SystemModstamp > {stamp}"),
    )
    .await;
    assert_eq!(
        with_offset["totalSize"], 6,
        "Salesforce's own +0000 form is a literal too"
    );
    let up_to = query(
        &sim,
        &token,
        &format!("SELECT Id FROM Credit_Record__c WHERE SystemModstamp <= {literal}"),
    )
    .await;
    assert_eq!(up_to["totalSize"], 3);
    let future = query(
        &sim,
        &token,
        "SELECT Id FROM Credit_Record__c WHERE SystemModstamp > 2999-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(future["totalSize"], 0);

    let recent = query(
        &sim,
        &token,
        "SELECT Id FROM Credit_Record__c WHERE SystemModstamp = LAST_N_DAYS:1",
    )
    .await;
    assert_eq!(recent["totalSize"], 9);
    let opened = query(
        &sim,
        &token,
        "SELECT Account_Number__c FROM Credit_Record__c WHERE Date_Opened__c = LAST_N_DAYS:1",
    )
    .await;
    assert_eq!(
        opened["totalSize"], 5,
        "today and yesterday, not three days ago: {opened}"
    );
    let quoted = query_at(
        &sim,
        &token,
        "/query",
        &format!("SELECT Id FROM Credit_Record__c WHERE SystemModstamp > '{literal}'"),
        None,
    )
    .await;
    assert_eq!(quoted.0, 400);
    assert_eq!(quoted.1[0]["errorCode"], "INVALID_FIELD");
}

#[tokio::test]
async fn next_records_url_paging_with_batch_size_500() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let ids = insert_records(&sim, &token, "PAGE", 1250, json!({})).await;
    let soql = "SELECT Id FROM Credit_Record__c ORDER BY Account_Number__c";
    let (status, mut page) = query_at(&sim, &token, "/query/", soql, Some(500)).await;
    assert_eq!(status, 200);
    let mut seen: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    loop {
        assert_eq!(page["totalSize"], 1250);
        let records = page["records"].as_array().expect("records");
        sizes.push(records.len());
        seen.extend(records.iter().map(|r| r["Id"].as_str().unwrap().to_owned()));
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        let next = page["nextRecordsUrl"]
            .as_str()
            .expect("nextRecordsUrl")
            .to_owned();
        assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
        let (_, _, body) = send(client().get(format!("{}{next}", sim.base_url())), &token).await;
        page = body;
    }
    assert_eq!(sizes, [500, 500, 250]);
    assert_eq!(seen, ids);

    // Below the documented minimum of 200 the batch size is raised to 200.
    let (_, small) = query_at(&sim, &token, "/query", soql, Some(50)).await;
    assert_eq!(small["records"].as_array().unwrap().len(), 200);
    // The default batch is 2,000: all 1,250 in one page.
    let (_, whole) = query_at(&sim, &token, "/query", soql, None).await;
    assert_eq!(
        (
            whole["done"].clone(),
            whole["records"].as_array().unwrap().len()
        ),
        (json!(true), 1250)
    );
    let (status, _, body) = send(client().get(api(&sim, "/query/01gBOGUS-500")), &token).await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (400, json!("INVALID_QUERY_LOCATOR"))
    );
}

#[tokio::test]
async fn query_errors_are_400_with_salesforce_codes() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let cases = [
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id Account", "MALFORMED_QUERY"),
        ("SELECT Bogus__c FROM Account", "INVALID_FIELD"),
        (
            "SELECT Id FROM Account WHERE Nope__c = 'x'",
            "INVALID_FIELD",
        ),
        ("SELECT Id FROM Nothing__c", "INVALID_TYPE"),
    ];
    for (soql, code) in cases {
        let (status, body) = query_at(&sim, &token, "/query", soql, None).await;
        assert_eq!(status, 400, "{soql}: {body}");
        let errors = body
            .as_array()
            .unwrap_or_else(|| panic!("{soql}: array body: {body}"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0]["errorCode"], code, "{soql}: {body}");
        assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, body) = query_at(&sim, &token, "/query", "SELECT Bogus FROM Contact", None).await;
    let message = body[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("\nSELECT Bogus FROM Contact\n       ^\nERROR at Row:1:Column:8\nNo such column 'Bogus' on entity 'Contact'"),
        "{message:?}"
    );
    let (status, _, body) = send(client().get(api(&sim, "/query")), &token).await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    assert_eq!(body[0]["message"], "A query string has to be specified");
    let (status, _, body) = send(
        client()
            .get(api(&sim, "/query"))
            .query(&[("q", "SELECT Id FROM Account")]),
        "00D5Y000001CLNK!nope",
    )
    .await;
    assert_eq!(
        (status, body),
        (
            401,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        )
    );
}

#[tokio::test]
async fn query_all_includes_deleted_records_and_query_does_not() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let ids = insert_records(&sim, &token, "DEL", 4, json!({})).await;
    let (status, _, _) = send(
        client().delete(api(&sim, &format!("/sobjects/Credit_Record__c/{}", ids[1]))),
        &token,
    )
    .await;
    assert_eq!(status, 204);
    let soql = "SELECT Id, IsDeleted FROM Credit_Record__c ORDER BY Account_Number__c";
    let live = query(&sim, &token, soql).await;
    assert_eq!(live["totalSize"], 3);
    assert!(
        live["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["IsDeleted"] == false)
    );
    for path in ["/queryAll", "/queryAll/"] {
        let (status, all) = query_at(&sim, &token, path, soql, None).await;
        assert_eq!(status, 200);
        assert_eq!(all["totalSize"], 4);
        assert_eq!(all["records"][1]["Id"], Value::String(ids[1].clone()));
        assert_eq!(all["records"][1]["IsDeleted"], true);
    }
    let deleted = query(
        &sim,
        &token,
        "SELECT COUNT() FROM Credit_Record__c WHERE IsDeleted = true",
    )
    .await;
    assert_eq!(deleted["totalSize"], 0, "query never sees deleted rows");
}

#[tokio::test]
async fn content_version_data_is_a_relative_url_in_query_results() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let pdf = b"%PDF-1.7 query test";
    let (status, _, saved) = send(
        client().post(api(&sim, "/sobjects/ContentVersion")).json(&json!({
            "Title": "Q", "PathOnClient": "q.pdf",
            "VersionData": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pdf)})),
        &token,
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap();
    let body = query(
        &sim,
        &token,
        "SELECT Id, Title, VersionData, ContentDocumentId FROM ContentVersion",
    )
    .await;
    let row = &body["records"][0];
    let url = format!("/services/data/v62.0/sobjects/ContentVersion/{id}/VersionData");
    assert_eq!(row["VersionData"], Value::String(url.clone()));
    assert_eq!(row["Title"], "Q");
    assert!(
        row["ContentDocumentId"]
            .as_str()
            .is_some_and(|d| d.starts_with("069"))
    );
    let bytes = client()
        .get(format!("{}{url}", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], pdf);
    let (status, filtered) = query_at(
        &sim,
        &token,
        "/query",
        "SELECT Id FROM ContentVersion WHERE VersionData != null",
        None,
    )
    .await;
    assert_eq!(
        (status, filtered[0]["errorCode"].clone()),
        (400, json!("INVALID_FIELD"))
    );
}
