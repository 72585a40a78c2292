//! Every 4xx of the bank and admin APIs is a problem document in the bank's words: which id is expected, why
//! a report is not there, that a token is required, which methods a path has, which header columns an upload may have.

use std::time::Duration;

use creditlink::sim::SimOptions;
use serde_json::Value;

use crate::e2e_support::{
    http, person_body, sandbox, sandbox_banks, sandbox_with, unique_reference,
};

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

/// One request of the route walk: its 4xx must be a problem document whose `status` is the HTTP status (a 405
/// also lists the path's methods in `Allow`). Returns a line describing what is wrong, if anything.
async fn walk_one(method: reqwest::Method, url: String, token: Option<&str>) -> Option<String> {
    let mut req = http().request(method.clone(), &url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    if !(400..500).contains(&status) {
        return None;
    }
    let headers = resp.headers().clone();
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.text().await.unwrap_or_default();
    let auth = if token.is_some() {
        "a token"
    } else {
        "no token"
    };
    let doc: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if ct != "application/problem+json"
        || doc["status"] != status
        || doc["detail"].as_str().is_none()
    {
        return Some(format!(
            "{method} {url} ({auth}) → {status} {ct:?} {body:.120}"
        ));
    }
    if status == 405 && !headers.contains_key("allow") {
        return Some(format!("{method} {url} ({auth}) → 405 without Allow"));
    }
    None
}

/// Walks every route of both listeners (each path of the OpenAPI document with a real, an unknown and a
/// malformed id, the ops and admin routes, bad query strings) with every method, without a token, with a
/// wrong one and with the right one: every 4xx is a problem document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_of_every_route_meets_only_problem_documents() {
    // The walk sends a few hundred admin calls, most of them refused: above the default rate limit.
    let (sb, _dir) = sandbox_with(
        SimOptions::default(),
        &[("CREDITLINK__ADMIN__RATE_PER_SECOND", "100000")],
    )
    .await;
    let (bank, _) = sandbox_banks(&sb).await;
    let doc: Value = bank
        .post()
        .json(&person_body(&unique_reference("WALK")))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = doc["id"].as_str().expect("id").to_owned();
    let unknown = uuid::Uuid::now_v7().to_string();

    let openapi: Value = http()
        .get(format!("{}/api/v1/openapi.json", sb.daemon_url))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let mut bank_paths = Vec::new();
    for path in openapi["paths"].as_object().expect("paths").keys() {
        for probe in [id.as_str(), unknown.as_str(), "not-an-id"] {
            bank_paths.push(path.replace("{id}", probe));
        }
    }
    bank_paths.sort();
    bank_paths.dedup();
    assert!(bank_paths.len() >= 9, "{bank_paths:?}");
    bank_paths.extend(
        [
            "/api/v1/uploads?limit=abc",
            "/api/v1/nothing-here",
            "/livez",
            "/readyz",
            "/readyz?verbose=1&verbose=2",
            "/metrics",
        ]
        .map(str::to_owned),
    );
    let admin_paths = [
        "/admin/v1/outbox".to_owned(),
        "/admin/v1/outbox?limit=abc".to_owned(),
        "/admin/v1/outbox?state=nonsense".to_owned(),
        format!("/admin/v1/outbox/{id}"),
        "/admin/v1/outbox/not-an-id".to_owned(),
        format!("/admin/v1/outbox/{unknown}/retry"),
        format!("/admin/v1/outbox/{unknown}/discard"),
        "/admin/v1/endpoints/NOPE".to_owned(),
        "/admin/v1/endpoints/NOPE/enable".to_owned(),
        "/admin/v1/records/gatekeeper".to_owned(),
        "/admin/v1/records/audit?limit=x".to_owned(),
        "/admin/v1/nothing".to_owned(),
        "/livez".to_owned(),
    ];
    let bank_token = bank.token();
    let mut wrong = Vec::new();
    let mut walked = 0;
    for (base, paths, token) in [
        (&sb.daemon_url, &bank_paths[..], bank_token.as_str()),
        (&sb.admin_url, &admin_paths[..], sb.admin_token.as_str()),
    ] {
        for path in paths {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
                for auth in [None, Some("not-a-valid-token"), Some(token)] {
                    walked += 1;
                    wrong.extend(walk_one(method.clone(), format!("{base}{path}"), auth).await);
                }
            }
        }
    }
    assert!(walked > 300, "{walked}");
    assert!(
        wrong.is_empty(),
        "{} of {walked} answers are 4xx without a proper problem document:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    sb.stop().await.expect("stop");
}
