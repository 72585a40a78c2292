//! The real Salesforce client against the simulated org: query paging, sObject Collections, describe, files,
//! limits and API usage accounting.

use bytes::Bytes;
use creditlink::salesforce::{ContentUpload, ErrorClass, JsonMap, MAX_COLLECTION_RECORDS, SfError};
use serde_json::{Value, json};

use crate::sf_client_sim_support::*;
use crate::sim_support::*;

fn credit_record(key: &str) -> JsonMap {
    map(json!({"Furnisher__c": BANK_A, "Account_Number__c": key, "Record_Key__c": key}))
}

#[tokio::test]
async fn query_more_and_query_all_page_over_2000_rows() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    for chunk in 0..11 {
        let batch: Vec<(String, JsonMap)> = (0..200)
            .map(|i| {
                (
                    "Credit_Record__c".to_owned(),
                    credit_record(&format!("PG-{chunk:02}-{i:03}")),
                )
            })
            .collect();
        let results = sf
            .collections_create(&batch)
            .await
            .expect("collections create");
        assert!(results.iter().all(|r| r.success && r.id.is_some()));
    }
    let calls_before = api_calls(&sim);
    let soql = "SELECT Id, Record_Key__c FROM Credit_Record__c WHERE Record_Key__c LIKE 'PG-%' ORDER BY Record_Key__c";
    let first = sf.query(soql).await.expect("first page");
    assert_eq!(
        (first.total_size, first.done, first.records.len()),
        (2200, false, 2000)
    );
    assert_eq!(first.records[0]["Record_Key__c"], "PG-00-000");
    let next = first.next_records_url.clone().expect("nextRecordsUrl");
    assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
    let second = sf.query_more(&next).await.expect("second page");
    assert_eq!((second.done, second.records.len()), (true, 200));
    assert_eq!(second.next_records_url, None);
    assert_eq!(second.records[199]["Record_Key__c"], "PG-10-199");
    assert_eq!(api_calls(&sim) - calls_before, 2, "one API call per page");

    let all = sf.query_all(soql).await.expect("query_all");
    assert_eq!(all.len(), 2200);
    let mut keys: Vec<&str> = all
        .iter()
        .filter_map(|r| r["Record_Key__c"].as_str())
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 2200, "no page repeated or skipped");
    assert!(keys.windows(2).all(|w| w[0] < w[1]));

    let count = sf
        .query("SELECT COUNT() FROM Credit_Record__c")
        .await
        .unwrap();
    assert_eq!((count.total_size, count.records.len()), (2200, 0));
    let error = sf
        .query("SELECT Bogus__c FROM Credit_Record__c")
        .await
        .unwrap_err();
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(400), Some("INVALID_FIELD"))
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
    let error = sf
        .query_more("/services/data/v62.0/query/01gNOPE-2000")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("INVALID_QUERY_LOCATOR"));
}

#[tokio::test]
async fn collections_upsert_maps_failures_to_their_records() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let object = "Credit_Report_Request__c";
    let mut records: Vec<JsonMap> = (0..MAX_COLLECTION_RECORDS)
        .map(|i| {
            let mut r = request_fields(&format!("Bulk {i}"));
            r.insert("Request_Key__c".into(), json!(format!("BULK-{i:03}")));
            r
        })
        .collect();
    records[3].insert("Purpose__c".into(), json!("Curiosity"));
    records[50].insert("Last_Name__c".into(), json!("x".repeat(81)));
    records[120].remove("Subject_Type__c");
    let results = sf
        .collections_upsert(object, "Request_Key__c", &records)
        .await
        .expect("collections upsert");
    assert_eq!(results.len(), 200);
    let expected = [
        (3, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Purpose__c"),
        (50, "STRING_TOO_LONG", "Last_Name__c"),
        (120, "REQUIRED_FIELD_MISSING", "Subject_Type__c"),
    ];
    for (i, result) in results.iter().enumerate() {
        match expected.iter().find(|(at, _, _)| *at == i) {
            Some((_, code, field)) => {
                assert!(!result.success, "record {i}");
                assert_eq!(result.errors[0].code, *code, "record {i}");
                assert_eq!(result.errors[0].fields, [*field], "record {i}");
                assert_eq!(result.error_class(), Some(ErrorClass::Permanent));
            }
            None => {
                assert!(result.success, "record {i}: {result:?}");
                assert_eq!(result.created, Some(true));
                assert_eq!(result.error_class(), None);
            }
        }
    }
    // The wire really says `statusCode` inside collection items.
    let token = integration_token(&sim).await;
    let (_, _, raw) = send(
        client()
            .patch(api(&sim, "/composite/sobjects/Credit_Report_Request__c/Request_Key__c"))
            .json(&json!({"allOrNone": false, "records": [
                {"attributes": {"type": object}, "Request_Key__c": "BULK-003", "Purpose__c": "Curiosity"}]})),
        &token,
    )
    .await;
    assert_eq!(
        raw[0]["errors"][0]["statusCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert!(raw[0]["errors"][0].get("errorCode").is_none());

    // Second round: the 197 stored ones update, the fixed ones insert.
    records[3].insert("Purpose__c".into(), json!("Other"));
    records[50].insert("Last_Name__c".into(), json!("short"));
    records[120].insert("Subject_Type__c".into(), json!("Company"));
    let again = sf
        .collections_upsert(object, "Request_Key__c", &records)
        .await
        .unwrap();
    for (i, result) in again.iter().enumerate() {
        let fixed = [3, 50, 120].contains(&i);
        assert_eq!(
            (result.success, result.created),
            (true, Some(fixed)),
            "record {i}"
        );
        if !fixed {
            assert_eq!(result.id, results[i].id, "record {i} updated in place");
        }
    }

    // 201 records are refused before any request is made.
    let calls = api_calls(&sim);
    records.push(request_fields("one too many"));
    records[200].insert("Request_Key__c".into(), json!("BULK-200"));
    let error = sf
        .collections_upsert(object, "Request_Key__c", &records)
        .await
        .unwrap_err();
    assert!(matches!(error, SfError::Usage(_)), "{error:?}");
    let many: Vec<(String, JsonMap)> = (0..201)
        .map(|i| ("Account".to_owned(), map(json!({"Name": i}))))
        .collect();
    assert!(matches!(
        sf.collections_create(&many).await,
        Err(SfError::Usage(_))
    ));
    assert_eq!(api_calls(&sim), calls, "no call for an oversized batch");
}

#[tokio::test]
async fn describe_limits_and_api_usage_follow_the_org() {
    let sim = start().await;
    let sf = cc_client(&sim, "62.0");
    assert_eq!(sf.api_usage(), None);
    let describe = sf
        .describe("Credit_Report_Request__c")
        .await
        .expect("describe");
    assert_eq!(describe["name"], "Credit_Report_Request__c");
    assert_eq!(describe["keyPrefix"], "a01");
    let fields = describe["fields"].as_array().expect("fields");
    let key = fields
        .iter()
        .find(|f| f["name"] == "Request_Key__c")
        .expect("Request_Key__c");
    assert_eq!(
        (key["externalId"].clone(), key["unique"].clone()),
        (json!(true), json!(true))
    );
    let purpose = fields.iter().find(|f| f["name"] == "Purpose__c").unwrap();
    assert_eq!(purpose["restrictedPicklist"], true);
    assert_eq!(purpose["picklistValues"].as_array().map(Vec::len), Some(4));
    let error = sf.describe("Nope__c").await.unwrap_err();
    assert_eq!(error.code(), Some("INVALID_TYPE"));

    let limits = sf.limits().await.expect("limits");
    let daily = &limits["DailyApiRequests"];
    assert_eq!(daily["Max"], 15_000);
    let used_by_limits = 15_000 - daily["Remaining"].as_u64().unwrap();
    assert_eq!(used_by_limits, api_calls(&sim));

    for i in 0..5 {
        sf.create("Account", &map(json!({"Name": format!("Usage {i}")})))
            .await
            .unwrap();
        let usage = sf.api_usage().expect("usage seen");
        assert_eq!(usage.used, api_calls(&sim));
        assert_eq!(usage.max, 15_000);
    }
    // Failed calls count too, and the header still comes with them.
    let _ = sf
        .get("Account", "001000000000000AAA", None)
        .await
        .unwrap_err();
    let stats: Value = client()
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json!(sf.api_usage().unwrap().used),
        stats["api_calls_total"]
    );
    assert_eq!(
        stats["by_route"]["POST /services/data/{version}/sobjects/{object}"],
        5
    );
}

#[tokio::test]
async fn content_versions_upload_both_ways_and_download_byte_identical() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let request = sf
        .create("Credit_Report_Request__c", &request_fields("Files"))
        .await
        .unwrap()
        .id;
    // Every byte value, plus CRLF sequences and a fake multipart boundary inside the data.
    let mut data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    data.extend_from_slice(b"\r\n--boundary\r\n\r\n%PDF-1.7 end");
    for multipart in [false, true] {
        let saved = sf
            .upload_content_version(ContentUpload {
                title: format!("Report multipart={multipart}"),
                path_on_client: "report.pdf".into(),
                data: Bytes::from(data.clone()),
                first_publish_location_id: Some(request.clone()),
                multipart,
            })
            .await
            .expect("upload");
        assert!(saved.id.starts_with("068"));
        let downloaded = sf.download_version_data(&saved.id).await.expect("download");
        assert_eq!(downloaded.len(), data.len());
        assert!(downloaded == data, "bytes differ (multipart={multipart})");

        let version = sf.get("ContentVersion", &saved.id, None).await.unwrap();
        assert_eq!(version["ContentSize"], data.len());
        assert_eq!(version["FileExtension"], "pdf");
        assert_eq!(
            version["VersionData"],
            format!(
                "/services/data/v62.0/sobjects/ContentVersion/{}/VersionData",
                saved.id
            )
        );
        let document = version["ContentDocumentId"]
            .as_str()
            .expect("document id")
            .to_owned();
        let links = sim.records("ContentDocumentLink");
        assert!(
            links.iter().any(
                |l| l["ContentDocumentId"] == Value::String(document.clone())
                    && l["LinkedEntityId"] == Value::String(request.clone())
            ),
            "no link from {document} to {request}"
        );
    }
    let error = sf
        .download_version_data("068000000000000AAA")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn collections_create_mixed_types_and_update_by_id() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let created = sf
        .collections_create(&[
            ("Account".to_owned(), map(json!({"Name": "Mixed Bank"}))),
            (
                "Contact".to_owned(),
                map(json!({"LastName": "Mixed", "AccountId": BANK_A})),
            ),
            (
                "Contact".to_owned(),
                map(json!({"FirstName": "No last name"})),
            ),
        ])
        .await
        .expect("collections create");
    assert!(
        created[0]
            .id
            .as_deref()
            .is_some_and(|id| id.starts_with("001"))
    );
    assert!(
        created[1]
            .id
            .as_deref()
            .is_some_and(|id| id.starts_with("003"))
    );
    assert_eq!(created[2].errors[0].code, "REQUIRED_FIELD_MISSING");
    assert_eq!(created[2].errors[0].fields, ["LastName"]);

    let account = created[0].id.clone().unwrap();
    let contact = created[1].id.clone().unwrap();
    let updated = sf
        .collections_update(&[
            (
                "Account".to_owned(),
                map(json!({"Id": account, "Name": "Renamed Bank"})),
            ),
            (
                "Contact".to_owned(),
                map(json!({"Id": contact, "AccountId": "not-an-id"})),
            ),
        ])
        .await
        .expect("collections update");
    assert_eq!(
        (updated[0].success, updated[0].id.as_deref()),
        (true, Some(account.as_str()))
    );
    assert!(!updated[1].success);
    assert_eq!(updated[1].errors[0].code, "MALFORMED_ID");
    assert_eq!(updated[1].error_class(), Some(ErrorClass::Permanent));
    let renamed = sf.get("Account", &account, Some(&["Name"])).await.unwrap();
    assert_eq!(renamed["Name"], "Renamed Bank");

    let missing_id = sf
        .collections_update(&[("Account".to_owned(), map(json!({"Name": "x"})))])
        .await
        .unwrap_err();
    assert!(matches!(missing_id, SfError::Usage(_)), "{missing_id:?}");
}

#[tokio::test]
async fn soql_literals_with_quotes_and_url_specials_survive_the_trip() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let awkward = "O'Brien & Sons + #1 100% ?=/";
    let id = sf
        .create("Credit_Report_Request__c", &request_fields(awkward))
        .await
        .unwrap()
        .id;
    sf.create("Credit_Report_Request__c", &request_fields("Other"))
        .await
        .unwrap();
    let escaped = awkward.replace('\\', "\\\\").replace('\'', "\\'");
    let page = sf
        .query(&format!(
            "SELECT Id, Last_Name__c FROM Credit_Report_Request__c WHERE Last_Name__c = '{escaped}'"
        ))
        .await
        .expect("query with escaped literal");
    assert_eq!(page.total_size, 1);
    assert_eq!(page.records[0]["Id"], Value::String(id));
    assert_eq!(page.records[0]["Last_Name__c"], awkward);
}
