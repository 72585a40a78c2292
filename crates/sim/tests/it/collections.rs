//! Simulator sObject Collections and files.

use base64::Engine;
use serde_json::{Value, json};

use creditlink_sim::testkit::*;

fn record(i: usize, purpose: &str) -> Value {
    json!({"attributes": {"type": "Credit_Report_Request__c"}, "Request_Key__c": format!("C-{i}"),
           "Bank__c": BANK_A, "Subject_Type__c": "Company", "Registry_Number__c": "R-1",
           "Purpose__c": purpose})
}

#[tokio::test]
async fn create_200_with_mixed_failures_and_reject_201() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    let url = api(&sim, "/composite/sobjects");
    let records: Vec<Value> = (0..200)
        .map(|i| record(i, if i % 50 == 7 { "Bogus" } else { "Other" }))
        .collect();
    let (status, headers, results) = send(
        c.post(&url)
            .json(&json!({"allOrNone": false, "records": records})),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(headers["sforce-limit-info"], "api-usage=1/15000");
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 200);
    for (i, r) in results.iter().enumerate() {
        if i % 50 == 7 {
            assert_eq!(r["success"], false);
            assert_eq!(
                r["errors"][0]["statusCode"],
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
            );
            assert!(r["errors"][0].get("errorCode").is_none());
        } else {
            assert_eq!(r["success"], true, "{r}");
            assert!(r["id"].as_str().unwrap().starts_with("a01"));
        }
    }
    assert_eq!(sim.records("Credit_Report_Request__c").len(), 196);

    let too_many: Vec<Value> = (0..201).map(|i| record(1000 + i, "Other")).collect();
    let (status, _, body) = send(c.post(&url).json(&json!({"records": too_many})), &token).await;
    assert_eq!(status, 400, "{body}");
    assert!(body[0]["errorCode"].is_string());
}

#[tokio::test]
async fn all_or_none_rolls_back_and_upsert_reports_created() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    let records = vec![record(1, "Other"), record(2, "Nope")];
    let (status, _, results) = send(
        c.post(api(&sim, "/composite/sobjects"))
            .json(&json!({"allOrNone": true, "records": records})),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert!(sim.records("Credit_Report_Request__c").is_empty());

    let url = api(
        &sim,
        "/composite/sobjects/Credit_Report_Request__c/Request_Key__c",
    );
    let (status, _, first) = send(
        c.patch(&url)
            .json(&json!({"records": [record(1, "Other")]})),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first[0]["created"], true);
    let (_, _, second) = send(
        c.patch(&url)
            .json(&json!({"records": [record(1, "Dispute"), record(2, "Other")]})),
        &token,
    )
    .await;
    assert_eq!(
        (second[0]["created"].clone(), second[1]["created"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(second[0]["id"], first[0]["id"]);

    let id = first[0]["id"].as_str().unwrap();
    let (status, _, got) = send(
        c.get(api(&sim, &format!("/composite/sobjects/Credit_Report_Request__c?ids={id},a015Y0000000999&fields=Purpose__c"))),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got[0]["Purpose__c"], "Dispute");
    assert_eq!(got[1], Value::Null);

    let update = json!({"records": [{"attributes": {"type": "Credit_Report_Request__c"}, "id": id, "Status__c": "Rejected"}]});
    let (_, _, updated) = send(
        c.patch(api(&sim, "/composite/sobjects")).json(&update),
        &token,
    )
    .await;
    assert_eq!(updated[0]["success"], true, "{updated}");
    let (_, _, deleted) = send(
        c.delete(api(&sim, &format!("/composite/sobjects?ids={id}"))),
        &token,
    )
    .await;
    assert_eq!(deleted[0]["success"], true, "{deleted}");
}

#[tokio::test]
async fn content_version_json_and_multipart_with_download() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    let (_, _, req) = send(
        c.post(api(&sim, "/sobjects/Credit_Report_Request__c"))
            .json(&record(9, "Other")),
        &token,
    )
    .await;
    let parent = req["id"].as_str().unwrap().to_string();
    let pdf = b"%PDF-1.4 simulated report\n%%EOF".to_vec();

    let json_body = json!({"Title": "report", "PathOnClient": "report.pdf", "FirstPublishLocationId": parent,
        "VersionData": base64::engine::general_purpose::STANDARD.encode(&pdf)});
    let (status, _, created) = send(
        c.post(api(&sim, "/sobjects/ContentVersion"))
            .json(&json_body),
        &token,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let v1 = created["id"].as_str().unwrap().to_string();
    assert!(v1.starts_with("068"));

    let (_, _, version) = send(
        c.get(api(&sim, &format!("/sobjects/ContentVersion/{v1}"))),
        &token,
    )
    .await;
    assert_eq!(version["IsLatest"], true);
    assert_eq!(version["FileExtension"], "pdf");
    assert_eq!(version["ContentSize"], pdf.len());
    assert_eq!(
        version["VersionData"],
        format!("/services/data/v62.0/sobjects/ContentVersion/{v1}/VersionData")
    );
    let doc = version["ContentDocumentId"].as_str().unwrap().to_string();
    assert!(doc.starts_with("069"));
    let links = sim.records("ContentDocumentLink");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["LinkedEntityId"], parent.as_str());
    assert_eq!(links[0]["ContentDocumentId"], doc.as_str());
    assert!(links[0]["Id"].as_str().unwrap().starts_with("06A"));

    let resp = c
        .get(api(
            &sim,
            &format!("/sobjects/ContentVersion/{v1}/VersionData"),
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), pdf);

    // Multipart: a new version of the same document.
    let entity =
        json!({"Title": "report v2", "PathOnClient": "report.pdf", "ContentDocumentId": doc});
    let form = reqwest::multipart::Form::new()
        .part(
            "entity_content",
            reqwest::multipart::Part::text(entity.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "VersionData",
            reqwest::multipart::Part::bytes(b"second".to_vec())
                .file_name("report.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let (status, _, created) = send(
        c.post(api(&sim, "/sobjects/ContentVersion/"))
            .multipart(form),
        &token,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let v2 = created["id"].as_str().unwrap();
    let resp = c
        .get(api(
            &sim,
            &format!("/sobjects/ContentVersion/{v2}/VersionData/"),
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"second");
    let versions = sim.records("ContentVersion");
    let latest: Vec<bool> = versions
        .iter()
        .map(|v| v["IsLatest"].as_bool().unwrap())
        .collect();
    assert_eq!(latest, vec![false, true]);
    assert_eq!(sim.records("ContentDocument").len(), 1);
}
