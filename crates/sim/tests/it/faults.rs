//! Simulator fault injection and reset.

use serde_json::{Value, json};

use creditlink_sim::testkit::*;

async fn set_faults(base: &str, faults: Value) {
    let resp = client()
        .put(format!("{base}/__sim/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn error_rate_one_answers_configured_errors() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    let url = api(&sim, "/sobjects/Account/0015Y00000BANKAQA5");
    let expected = [
        ("SERVER_UNAVAILABLE", 503, None),
        (
            "UNABLE_TO_LOCK_ROW",
            400,
            Some("unable to obtain exclusive access to this record"),
        ),
        (
            "REQUEST_LIMIT_EXCEEDED",
            403,
            Some("ConcurrentPerOrgLongTxn Limit exceeded."),
        ),
    ];
    for (code, status, message) in expected {
        set_faults(sim.base_url(), json!({"error_rate": 1.0, "errors": [code]})).await;
        let (got, headers, body) = send(c.get(&url), &token).await;
        assert_eq!(got, status, "{code}");
        assert_eq!(body[0]["errorCode"], code);
        assert!(headers.contains_key("sforce-limit-info"));
        if let Some(m) = message {
            assert!(
                body[0]["message"].as_str().unwrap().starts_with(m),
                "{body}"
            );
        }
    }
    // In collections, UNABLE_TO_LOCK_ROW is reported per record.
    set_faults(
        sim.base_url(),
        json!({"error_rate": 1.0, "errors": ["UNABLE_TO_LOCK_ROW"]}),
    )
    .await;
    let records = json!({"records": [{"attributes": {"type": "Account"}, "Name": "X"}, {"attributes": {"type": "Account"}, "Name": "Y"}]});
    let (status, _, results) = send(
        c.post(api(&sim, "/composite/sobjects")).json(&records),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(results[1]["errors"][0]["statusCode"], "UNABLE_TO_LOCK_ROW");
    assert_eq!(sim.records("Account").len(), 3);

    let resp = c
        .delete(format!("{}/__sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _, _) = send(c.get(&url), &token).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn outage_and_daily_limit() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let c = client();
    set_faults(sim.base_url(), json!({"outage": true})).await;
    let (status, _, body) = send(c.get(api(&sim, "/limits")), &token).await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (503, json!("SERVER_UNAVAILABLE"))
    );
    let resp = c
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let stats = c
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    set_faults(
        sim.base_url(),
        json!({"outage": false, "daily_api_limit": 2}),
    )
    .await;

    for _ in 0..2 {
        let (status, _, _) = send(c.get(api(&sim, "/limits")), &token).await;
        assert_eq!(status, 200);
    }
    let (status, headers, body) = send(c.get(api(&sim, "/limits")), &token).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED", "fields": []}])
    );
    assert_eq!(headers["sforce-limit-info"], "api-usage=2/2");

    let resp = c
        .post(format!("{}/__sim/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, headers, _) = send(c.get(api(&sim, "/limits")), &token).await;
    assert_eq!(status, 200);
    assert_eq!(headers["sforce-limit-info"], "api-usage=1/15000");
}
