//! The org's indexes must never change an answer: queries served from an index (by Id, by External ID, by a
//! `SystemModstamp` range read page by page) answer exactly what a scan answers, and writes keep the indexes
//! in step (updates move a record's key, deletes free it). Also the standard fields real clients use.

use creditlink_sim::SimHandle;
use serde_json::{Value, json};

use creditlink_sim::testkit::*;

const OBJECT: &str = "Credit_Report_Request__c";

/// Upserts `n` requests keyed `{prefix}-{i}` by External ID; returns the keys in order.
async fn upsert_requests(sim: &SimHandle, token: &str, prefix: &str, n: usize) -> Vec<String> {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:04}")).collect();
    for chunk in keys.chunks(200) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|k| {
                json!({"attributes": {"type": OBJECT}, "Request_Key__c": k, "Bank__c": BANK_A,
                       "Subject_Type__c": "Person", "Purpose__c": "Loan Application", "Last_Name__c": "Index"})
            })
            .collect();
        let (status, _, body) = send(
            client()
                .patch(api(
                    sim,
                    &format!("/composite/sobjects/{OBJECT}/Request_Key__c"),
                ))
                .json(&json!({"allOrNone": true, "records": records})),
            token,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    keys
}

/// Every row of a query, following `nextRecordsUrl`, with the page sizes seen.
async fn all_rows(
    sim: &SimHandle,
    token: &str,
    soql: &str,
    batch: u32,
) -> (u64, Vec<Value>, Vec<usize>) {
    let req = client()
        .get(api(sim, "/query"))
        .query(&[("q", soql)])
        .header("Sforce-Query-Options", format!("batchSize={batch}"));
    let (status, _, mut body) = send(req, token).await;
    assert_eq!(status, 200, "{soql}: {body}");
    let total = body["totalSize"].as_u64().expect("totalSize");
    let mut rows = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = body["records"].as_array().expect("records").clone();
        pages.push(page.len());
        rows.extend(page);
        let Some(next) = body["nextRecordsUrl"].as_str().map(str::to_owned) else {
            break;
        };
        let (status, _, next_body) =
            send(client().get(format!("{}{next}", sim.base_url())), token).await;
        assert_eq!(status, 200, "{next_body}");
        body = next_body;
    }
    (total, rows, pages)
}

fn ids(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["Id"].as_str().expect("Id")).collect()
}

#[tokio::test]
async fn a_modstamp_range_read_from_the_index_pages_like_a_scan() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    upsert_requests(&sim, &token, "RANGE", 450).await;
    // The covered index path (the range is the whole filter, ordered by that field alone), the index with
    // the filter evaluated (another term), and a scan (an OR is never narrowed by an index).
    let select = format!("SELECT Id, Request_Key__c, SystemModstamp FROM {OBJECT}");
    let since = "SystemModstamp > 2000-01-01T00:00:00Z";
    let indexed = format!("{select} WHERE {since} ORDER BY SystemModstamp");
    let filtered =
        format!("{select} WHERE {since} AND Request_Key__c != null ORDER BY SystemModstamp");
    let scanned =
        format!("{select} WHERE ({since} OR Request_Key__c = null) ORDER BY SystemModstamp");
    let (total, rows, pages) = all_rows(&sim, &token, &indexed, 200).await;
    for other in [filtered, scanned] {
        let (n, other_rows, _) = all_rows(&sim, &token, &other, 200).await;
        assert_eq!((n, &other_rows), (total, &rows), "{other}");
    }
    assert_eq!(total, 450);
    assert_eq!(pages, [200, 200, 50]);
    let mut distinct = ids(&rows);
    distinct.dedup();
    assert_eq!(distinct.len(), 450);
    assert_eq!(rows[0]["attributes"]["type"], OBJECT);

    // Bounds: nothing after the newest stamp; an upper bound and a LIMIT/OFFSET cut the same rows a scan does.
    let newest = rows[449]["SystemModstamp"]
        .as_str()
        .expect("stamp")
        .replace("+0000", "Z");
    let after = format!("SELECT Id FROM {OBJECT} WHERE SystemModstamp > {newest}");
    assert_eq!(all_rows(&sim, &token, &after, 200).await.0, 0);
    let paged = format!(
        "SELECT Id FROM {OBJECT} WHERE SystemModstamp <= {newest} ORDER BY SystemModstamp LIMIT 7 OFFSET 3"
    );
    let (n, page, _) = all_rows(&sim, &token, &paged, 200).await;
    assert_eq!(n, 7);
    assert_eq!(ids(&page), ids(&rows[3..10]));
    let count = format!("SELECT COUNT() FROM {OBJECT} WHERE SystemModstamp > 2000-01-01T00:00:00Z");
    assert_eq!(all_rows(&sim, &token, &count, 200).await.0, 450);
}

#[tokio::test]
async fn external_id_and_id_lookups_match_case_insensitively_and_follow_writes() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let keys = upsert_requests(&sim, &token, "KEY", 3).await;
    let soql = format!(
        "SELECT Id, Request_Key__c FROM {OBJECT} WHERE Request_Key__c IN ('{}', '{}', 'absent')",
        keys[0].to_lowercase(),
        keys[2]
    );
    let (n, rows, _) = all_rows(&sim, &token, &soql, 2000).await;
    assert_eq!(n, 2, "{rows:?}");
    let first = rows[0]["Id"].as_str().expect("Id").to_owned();
    let by_id = format!("SELECT Request_Key__c FROM {OBJECT} WHERE Id = '{first}'");
    let (_, rows, _) = all_rows(&sim, &token, &by_id, 2000).await;
    assert_eq!(rows[0]["Request_Key__c"], keys[0].as_str());

    // Changing the key moves the record in the index: the old key is free, the new one finds it.
    let (status, _, body) = send(
        client()
            .patch(api(&sim, &format!("/sobjects/{OBJECT}/{first}")))
            .json(&json!({"Request_Key__c": "KEY-MOVED"})),
        &token,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let old = format!(
        "SELECT Id FROM {OBJECT} WHERE Request_Key__c = '{}'",
        keys[0]
    );
    assert_eq!(all_rows(&sim, &token, &old, 2000).await.0, 0);
    let moved = format!("SELECT Id FROM {OBJECT} WHERE Request_Key__c = 'key-moved'");
    let (_, rows, _) = all_rows(&sim, &token, &moved, 2000).await;
    assert_eq!(ids(&rows), [first.as_str()]);

    // A duplicate of a live key is refused; once that record is deleted the key is free again.
    let dup = json!({"Request_Key__c": keys[1], "Bank__c": BANK_A, "Subject_Type__c": "Person",
                     "Purpose__c": "Loan Application"});
    let create = || {
        client()
            .post(api(&sim, &format!("/sobjects/{OBJECT}")))
            .json(&dup)
    };
    let (status, _, body) = send(create(), &token).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "DUPLICATE_VALUE");
    let holder = format!(
        "SELECT Id FROM {OBJECT} WHERE Request_Key__c = '{}'",
        keys[1]
    );
    let (_, rows, _) = all_rows(&sim, &token, &holder, 2000).await;
    let holder_id = rows[0]["Id"].as_str().expect("Id").to_owned();
    let (status, _, _) = send(
        client().delete(api(&sim, &format!("/sobjects/{OBJECT}/{holder_id}"))),
        &token,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, body) = send(create(), &token).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn standard_objects_carry_their_common_standard_fields() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let account = json!({"Name": "Acme", "Phone": "+1 555 0100", "Type": "Customer - Direct",
                         "Website": "https://acme.example", "BillingCity": "Willemstad"});
    let (status, _, body) = send(
        client().post(api(&sim, "/sobjects/Account")).json(&account),
        &token,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id");
    let (status, _, rec) = send(
        client().get(api(
            &sim,
            &format!("/sobjects/Account/{id}?fields=Phone,Type,BillingCity"),
        )),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["Phone"], "+1 555 0100");
    assert_eq!(rec["BillingCity"], "Willemstad");
    let (status, _, contact) = send(
        client()
            .post(api(&sim, "/sobjects/Contact"))
            .json(&json!({"LastName": "Martina", "Phone": "+599 9 000", "Title": "CFO"})),
        &token,
    )
    .await;
    assert_eq!(status, 201, "{contact}");
    let (_, _, describe) = send(
        client().get(api(&sim, "/sobjects/Account/describe")),
        &token,
    )
    .await;
    let phone = describe["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "Phone")
        .expect("Account.Phone");
    assert_eq!(phone["type"], "phone");
    // An unknown field is still refused with Salesforce's error.
    let (status, _, body) = send(
        client()
            .post(api(&sim, "/sobjects/Account"))
            .json(&json!({"Name": "X", "Fax_Number__c": "1"})),
        &token,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
}
