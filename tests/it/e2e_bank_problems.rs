//! Every 4xx of the bank and admin APIs is a problem document in the bank's words: which id is expected, why
//! a report is not there, that a token is required, which methods a path has, which header columns an upload may have.

use std::time::Duration;

use creditlink::sim::SimOptions;
use serde_json::Value;

use crate::e2e_support::{http, person_body, sandbox, sandbox_banks, unique_reference};

async fn problem(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    assert_eq!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
        "application/problem+json",
        "{status}"
    );
    (status, headers, resp.json().await.expect("problem json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_4xx_is_a_problem_document_in_the_banks_words() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank_a, bank_b) = sandbox_banks(&sb).await;
    let resp = bank_a
        .post()
        .header("Prefer", "wait=5")
        .json(&person_body(&unique_reference("PROB")))
        .send()
        .await
        .expect("post");
    let doc: Value = resp.json().await.expect("json");
    let id = doc["id"].as_str().expect("id").to_owned();
    let sf_id = doc["salesforce_id"]
        .as_str()
        .expect("salesforce id")
        .to_owned();
    bank_a
        .wait_delivered(std::slice::from_ref(&id), Duration::from_secs(20))
        .await;

    // Unknown id, a Salesforce id, and another bank's id: one 404 that says which id is expected.
    let mut details = Vec::new();
    for (bank, probe) in [
        (&bank_a, uuid::Uuid::now_v7().to_string()),
        (&bank_a, sf_id.clone()),
        (&bank_b, id.clone()),
    ] {
        let (status, _, doc) = problem(
            bank.get(&format!("/api/v1/report-requests/{probe}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{doc}");
        details.push(doc["detail"].as_str().expect("detail").to_owned());
    }
    assert!(details[0].contains("creditlink request id"), "{details:?}");
    assert!(details.iter().all(|d| d == &details[0]), "{details:?}");

    // The report of a request the bureau has not worked: 409 with the request's status.
    let (status, _, doc) = problem(
        bank_a
            .get(&format!("/api/v1/report-requests/{id}/report"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{doc}");
    assert_eq!(doc["request_status"], "submitted", "{doc}");
    assert!(
        doc["detail"].as_str().unwrap().contains("not ready"),
        "{doc}"
    );

    // The admin API without a token: "required", not "malformed, expired or revoked".
    let (status, headers, doc) = problem(
        http()
            .get(format!("{}/admin/v1/outbox", sb.admin_url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{doc}");
    assert!(
        doc["detail"].as_str().unwrap().contains("required"),
        "{doc}"
    );
    assert!(headers.contains_key("www-authenticate"));

    // A method a path does not have: 405 with `Allow` and a body.
    let (status, headers, doc) =
        problem(bank_a.get("/api/v1/report-requests").send().await.unwrap()).await;
    assert_eq!(status, 405, "{doc}");
    assert_eq!(headers["allow"], "POST");
    let (status, _, _) = problem(
        http()
            .delete(format!("{}/admin/v1/outbox", sb.admin_url))
            .bearer_auth(&sb.admin_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);

    // A path nobody serves.
    let (status, _, doc) = problem(bank_a.get("/api/v1/nothing-here").send().await.unwrap()).await;
    assert_eq!(status, 404, "{doc}");

    // An upload whose header names no known column: 422 naming each header problem, nothing stored.
    let (status, _, doc) = problem(
        http()
            .post(format!("{}/api/v1/uploads", sb.daemon_url))
            .bearer_auth(bank_a.token())
            .header("content-type", "text/csv")
            .body("a,b\n")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{doc}");
    assert_eq!(doc["errors"][0]["code"], "unknown_column", "{doc}");
    assert_eq!(doc["errors"][0]["field"], "/header/0", "{doc}");

    // An unknown field is named by its path, without the internal mapping's name.
    let mut body = person_body(&unique_reference("UNK"));
    body["subject"]["nickname"] = "Mia".into();
    let (status, _, doc) = problem(bank_a.post().json(&body).send().await.unwrap()).await;
    assert_eq!(status, 422, "{doc}");
    assert_eq!(doc["errors"][0]["field"], "/subject/nickname", "{doc}");
    assert!(!doc.to_string().contains("report_request"), "{doc}");
    sb.stop().await.expect("stop");
}
