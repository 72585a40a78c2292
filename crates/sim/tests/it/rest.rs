//! Simulator REST: single-record CRUD, upsert status codes, schema errors, headers and stats.

use serde_json::{Value, json};

use creditlink_sim::testkit::*;

fn request_body(key: &str) -> Value {
    json!({"Request_Key__c": key, "Bank__c": BANK_A, "Subject_Type__c": "Person", "National_Id__c": "CW-1",
           "Purpose__c": "Loan Application", "Date_Of_Birth__c": "1980-01-31",
           "Consent_Given_At__c": "2026-11-20T10:00:00Z"})
}

#[tokio::test]
async fn create_get_update_delete() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();

    // simple-salesforce posts with a trailing slash.
    let (status, headers, body) = send(
        c.post(api(&sim, "/sobjects/Credit_Report_Request__c/"))
            .json(&request_body("K-1")),
        &token,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("a01") && id.len() == 18, "{id}");
    assert_eq!(body["success"], true);
    assert_eq!(
        headers["location"],
        format!("/services/data/v62.0/sobjects/Credit_Report_Request__c/{id}")
    );
    assert!(
        headers["sforce-limit-info"]
            .to_str()
            .unwrap()
            .starts_with("api-usage=")
    );

    let (status, _, rec) = send(
        c.get(api(
            &sim,
            &format!("/sobjects/Credit_Report_Request__c/{id}"),
        )),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rec["attributes"]["type"], "Credit_Report_Request__c");
    assert_eq!(
        rec["attributes"]["url"],
        format!("/services/data/v62.0/sobjects/Credit_Report_Request__c/{id}")
    );
    assert_eq!(rec["Name"], "CRR-000001");
    assert_eq!(rec["Status__c"], "New");
    assert_eq!(rec["Consent_Given_At__c"], "2026-11-20T10:00:00.000+0000");
    assert_eq!(rec["CreatedById"], INTEGRATION_USER_ID);
    assert_eq!(rec["LastModifiedById"], INTEGRATION_USER_ID);
    let created = rec["CreatedDate"].as_str().unwrap();
    assert!(
        created.ends_with(".000+0000") || created.ends_with("+0000"),
        "{created}"
    );
    assert_eq!(created.len(), 28, "{created}");

    let (status, _, only) = send(
        c.get(api(
            &sim,
            &format!("/sobjects/Credit_Report_Request__c/{id}/?fields=Name,Status__c"),
        )),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(only.as_object().unwrap().len(), 3, "{only}");

    let (status, _, by_ext) = send(
        c.get(api(
            &sim,
            "/sobjects/Credit_Report_Request__c/Request_Key__c/k-1",
        )),
        &token,
    )
    .await;
    assert_eq!((status, by_ext["Id"].as_str()), (200, Some(id.as_str())));

    let url = api(&sim, &format!("/sobjects/Credit_Report_Request__c/{id}"));
    let (status, _, _) = send(
        c.patch(&url).json(&json!({"Status_Reason__c": "checked"})),
        &token,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = send(
        c.post(format!("{url}?_HttpMethod=PATCH"))
            .json(&json!({"Status__c": "In Progress"})),
        &token,
    )
    .await;
    assert_eq!(status, 204);
    let (_, _, rec) = send(c.get(&url), &token).await;
    assert_eq!(
        (rec["Status__c"].as_str(), rec["Status_Reason__c"].as_str()),
        (Some("In Progress"), Some("checked"))
    );

    // The bureau edits the record through the control surface; LastModifiedById shows who.
    let resp = c
        .patch(format!(
            "{}/__sim/records/Credit_Report_Request__c/{id}",
            sim.base_url()
        ))
        .json(&json!({"fields": {"Status__c": "Completed"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, _, rec) = send(c.get(&url), &token).await;
    assert_eq!(rec["Status__c"], "Completed");
    assert_eq!(rec["LastModifiedById"], "0055Y00000ANLSTQA5");

    let (status, _, _) = send(c.delete(&url), &token).await;
    assert_eq!(status, 204);
    let (status, _, body) = send(c.get(&url), &token).await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (404, json!("NOT_FOUND"))
    );
    let (status, _, body) = send(c.patch(&url).json(&json!({"Status__c": "New"})), &token).await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (400, json!("ENTITY_IS_DELETED"))
    );
    let unknown = api(&sim, "/sobjects/Credit_Report_Request__c/a015Y0000000999");
    let (status, _, body) = send(c.patch(&unknown).json(&json!({})), &token).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist", "fields": []}])
    );
    let (status, _, body) = send(c.get(api(&sim, "/sobjects/Account/not-an-id")), &token).await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (400, json!("MALFORMED_ID"))
    );

    let stored = sim.records("Credit_Report_Request__c");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["IsDeleted"], true);
}

#[tokio::test]
async fn upsert_status_codes_by_version() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    let mut body = request_body("ignored");
    body.as_object_mut().unwrap().remove("Request_Key__c");

    let url62 = api(
        &sim,
        "/sobjects/Credit_Report_Request__c/Request_Key__c/UP-1",
    );
    let (status, headers, created) = send(c.patch(&url62).json(&body), &token).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["created"], true);
    assert!(headers.contains_key("location"));
    let (status, _, updated) = send(c.patch(&url62).json(&body), &token).await;
    assert_eq!(
        (status, updated["created"].clone(), updated["id"].clone()),
        (200, json!(false), created["id"].clone())
    );

    let url45 = api_v(
        &sim,
        "45.0",
        "/sobjects/Credit_Report_Request__c/Request_Key__c/UP-1",
    );
    let (status, _, empty) = send(c.patch(&url45).json(&body), &token).await;
    assert_eq!((status, empty), (204, Value::Null));

    let bad_field = api(&sim, "/sobjects/Credit_Report_Request__c/National_Id__c/X");
    let (status, _, err) = send(c.patch(&bad_field).json(&body), &token).await;
    assert_eq!(
        (status, err[0]["errorCode"].clone()),
        (404, json!("NOT_FOUND"))
    );

    let versions: Value = c
        .get(format!("{}/services/data/", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == "62.0" && v["label"] == "Winter '25")
    );
    let (status, _, _) = send(c.get(api_v(&sim, "41.0", "/limits")), &token).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn schema_errors_have_real_codes() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    let url = api(&sim, "/sobjects/Credit_Report_Request__c");
    let with = |k: &str, v: Value| {
        let mut b = request_body("E-1");
        b[k] = v;
        b
    };
    let mut missing = request_body("E-0");
    missing.as_object_mut().unwrap().remove("Purpose__c");
    missing.as_object_mut().unwrap().remove("Bank__c");
    let (status, _, body) = send(c.post(&url).json(&missing), &token).await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(
        body[0]["message"],
        "Required fields are missing: [Bank__c, Purpose__c]"
    );
    assert_eq!(body[0]["fields"], json!(["Bank__c", "Purpose__c"]));

    let cases = [
        (
            with("Purpose__c", json!("Fun")),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "bad value for restricted picklist field: Fun",
        ),
        (
            with("National_Id__c", json!("x".repeat(33))),
            "STRING_TOO_LONG",
            "max length=32",
        ),
        (
            with("Bogus__c", json!(1)),
            "INVALID_FIELD",
            "No such column 'Bogus__c' on sobject of type Credit_Report_Request__c",
        ),
        (
            with("Bank__c", json!("garbage")),
            "MALFORMED_ID",
            "id value of incorrect type",
        ),
        (
            with("Date_Of_Birth__c", json!("31/01/1980")),
            "JSON_PARSER_ERROR",
            "",
        ),
    ];
    for (body, code, message) in cases {
        let (status, _, err) = send(c.post(&url).json(&body), &token).await;
        assert_eq!(status, 400, "{code}");
        assert_eq!(err[0]["errorCode"], code, "{err}");
        assert!(
            err[0]["message"].as_str().unwrap().contains(message),
            "{err}"
        );
    }
    let resp = c
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err[0]["errorCode"], "JSON_PARSER_ERROR");

    let (status, _, first) = send(c.post(&url).json(&request_body("DUP-1")), &token).await;
    assert_eq!(status, 201);
    let (status, _, err) = send(c.post(&url).json(&request_body("dup-1")), &token).await;
    assert_eq!(status, 400);
    assert_eq!(
        err[0]["message"],
        format!(
            "duplicate value found: Request_Key__c duplicates value on record with id: {}",
            first["id"].as_str().unwrap()
        )
    );
    assert_eq!(err[0]["errorCode"], "DUPLICATE_VALUE");

    let (status, _, err) = send(
        c.post(api(&sim, "/sobjects/Nope__c")).json(&json!({})),
        &token,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        err[0],
        json!({"errorCode": "INVALID_TYPE", "message": "sObject type 'Nope__c' is not supported.", "fields": []})
    );

    let (status, _, describe) = send(
        c.get(api(&sim, "/sobjects/Credit_Report_Request__c/describe/")),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(describe["keyPrefix"], "a01");
}

#[tokio::test]
async fn limit_header_stats_and_limits_agree() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    for _ in 0..3 {
        let (status, _, _) = send(
            c.get(api(&sim, "/sobjects/Account/0015Y00000BANKAQA5")),
            &token,
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, headers, limits) = send(c.get(api(&sim, "/limits/")), &token).await;
    assert_eq!(headers["sforce-limit-info"], "api-usage=4/15000");
    assert_eq!(
        limits["DailyApiRequests"],
        json!({"Max": 15000, "Remaining": 14_996})
    );
    let resp = c
        .get(format!("{}/services/data", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("sforce-limit-info"));
    let stats: Value = c
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["api_calls_total"], 4);
    assert_eq!(
        stats["by_route"]["GET /services/data/{version}/sobjects/{object}/{id}"],
        3
    );
    assert_eq!(stats["by_route"]["GET /services/data/{version}/limits"], 1);
}

#[tokio::test]
async fn info_file_is_written_for_standalone() {
    let dir = tempfile::tempdir().unwrap();
    let info_path = dir.path().join("sim.json");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let opts = creditlink_sim::StandaloneOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        seed: None,
        info_file: Some(info_path.clone()),
    };
    let task = tokio::spawn(creditlink_sim::run_standalone(opts, shutdown.clone()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !info_path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "info file never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let info: Value = serde_json::from_slice(&std::fs::read(&info_path).unwrap()).unwrap();
    let url = info["salesforce_url"].as_str().unwrap();
    let req = &info["integration"]["token_request"];
    assert_eq!(req["url"], format!("{url}/services/oauth2/token"));
    let resp = client()
        .post(req["url"].as_str().unwrap())
        .form(&req["form"])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let banks = info["banks"].as_array().unwrap();
    assert_eq!(banks.len(), 2);
    assert_eq!(banks[0]["account_id"], BANK_A);
    let bank_req = &banks[1]["token_request"];
    let token: Value = client()
        .post(bank_req["url"].as_str().unwrap())
        .form(&bank_req["form"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        token["id"]
            .as_str()
            .unwrap()
            .ends_with("0055Y00000REPB1QAP")
    );
    assert!(info.get("daemon_url").is_none());
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn ambiguous_external_id_answers_300() {
    // Writes keep external ids unique, so only seed data (loaded unvalidated) can hold duplicates.
    let mut seed = creditlink_sim::Seed::default_org();
    let accounts = seed.records.get_mut("Account").unwrap();
    for name in ["Dup One", "Dup Two"] {
        accounts.push(
            json!({"Name": name, "Bank_Code__c": "DUP"})
                .as_object()
                .unwrap()
                .clone(),
        );
    }
    let sim = start_with(creditlink_sim::SimOptions {
        seed,
        ..Default::default()
    })
    .await;
    let token = integration_token(&sim).await;
    let url = api(&sim, "/sobjects/Account/Bank_Code__c/dup");
    let (status, _, body) = send(client().get(&url), &token).await;
    assert_eq!(status, 300);
    assert_eq!(body.as_array().unwrap().len(), 2);
    let (status, _, _) = send(client().patch(&url).json(&json!({"Name": "x"})), &token).await;
    assert_eq!(status, 300);
}

#[tokio::test]
async fn concurrent_creates_get_unique_ids_and_names() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let url = api(&sim, "/sobjects/Credit_Report_Request__c");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (url, token) = (url.clone(), token.clone());
            tokio::spawn(async move {
                send(
                    client().post(url).json(&request_body(&format!("P-{i}"))),
                    &token,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().0, 201);
    }
    let stored = sim.records("Credit_Report_Request__c");
    let mut names: Vec<&str> = stored.iter().map(|r| r["Name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 40);
    assert_eq!(sim.stats()["api_calls_total"], 40);
}

#[tokio::test]
async fn unknown_paths_and_debug_output() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let (status, _, body) = send(client().get(api(&sim, "/no/such/thing")), &token).await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (404, json!("NOT_FOUND"))
    );
    let debug = format!("{:?}", creditlink_sim::SimOptions::default());
    for secret in [
        "demo-creditlink-secret",
        "demo-bank-a-secret",
        "demo-bank-a-password",
    ] {
        assert!(!debug.contains(secret), "{secret} leaks through Debug");
    }
}

#[tokio::test]
async fn snapshot_keeps_records_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let opts = creditlink_sim::SimOptions {
        snapshot: Some(dir.path().join("org.json")),
        ..Default::default()
    };
    let sim = start_with(opts.clone()).await;
    let token = integration_token(&sim).await;
    let (status, _, created) = send(
        client()
            .post(api(&sim, "/sobjects/Credit_Report_Request__c"))
            .json(&request_body("SNAP-1")),
        &token,
    )
    .await;
    assert_eq!(status, 201);
    sim.shutdown().await.unwrap();

    let sim = start_with(opts).await;
    let stored = sim.records("Credit_Report_Request__c");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["Id"], created["id"]);
    let token = integration_token(&sim).await;
    let (_, _, next) = send(
        client()
            .post(api(&sim, "/sobjects/Credit_Report_Request__c"))
            .json(&request_body("SNAP-2")),
        &token,
    )
    .await;
    assert_ne!(next["id"], created["id"]);
}
