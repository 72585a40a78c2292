//! The real Salesforce client against the simulated org: logins, login failures and single-record calls.
//! Bulk calls are in `sf_client_sim_bulk`, faults and introspection in `sf_client_sim_faults`.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use creditlink::salesforce::{AuthFlow, ErrorClass, SalesforceClient, SfError};
use serde_json::{Value, json};

use crate::sf_client_sim_support::*;
use crate::sim_support::*;

const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[tokio::test]
async fn jwt_and_client_credentials_logins_reach_the_org_as_the_integration_user() {
    let sim = start().await;
    for sf in [jwt_client(&sim), cc_client(&sim, "62.0")] {
        assert!(!sf.token_valid());
        sf.ensure_token().await.expect("token");
        assert!(sf.token_valid());
        let identity = sf.identity().expect("identity from the id URL");
        assert_eq!(identity.org_id, "00D5Y000001CLNKUA4");
        assert_eq!(identity.user_id, INTEGRATION_USER_ID);
        let id = sf
            .create("Credit_Report_Request__c", &request_fields("Login"))
            .await
            .expect("create")
            .id;
        let rec = sf
            .get("Credit_Report_Request__c", &id, None)
            .await
            .expect("get");
        assert_eq!(rec["CreatedById"], INTEGRATION_USER_ID);
    }
}

/// Asserts the raw token-endpoint answer for `assertion`, and returns it for comparison with the client's error.
async fn raw_jwt_refusal(sim: &creditlink::sim::SimHandle, assertion: &str, description: &str) {
    let (status, body) =
        token_response(sim, &[("grant_type", JWT_GRANT), ("assertion", assertion)]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": description})
    );
}

fn assert_permanent_oauth(error: &SfError, description: &str) {
    match error {
        SfError::OAuth {
            status: 400,
            error,
            description: got,
        } => {
            assert_eq!(error, "invalid_grant");
            assert_eq!(got, description);
        }
        other => panic!("expected an OAuth error, got {other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(!error.is_rate_limit());
}

#[tokio::test]
async fn refused_jwt_logins_are_permanent_oauth_errors_with_salesforce_bodies() {
    let sim = start().await;
    // Wrong key and wrong audience: the client's own assertion is refused, and the raw body is Salesforce's.
    let cases = [
        ("wrong_private_key.pem", LOGIN_AUDIENCE, "invalid assertion"),
        (
            "jwt_private_key.pem",
            "https://evil.example.com",
            "Audience validation failed",
        ),
    ];
    for (key, audience, description) in cases {
        raw_jwt_refusal(&sim, &jwt(key, &claims(audience, 120)), description).await;
        let sf = SalesforceClient::new(settings(
            sim.base_url(),
            "62.0",
            jwt_flow(key, audience),
            Duration::from_secs(20),
        ))
        .unwrap();
        let error = sf.ensure_token().await.unwrap_err();
        assert_permanent_oauth(&error, description);
        let error = sf.query("SELECT Id FROM Account").await.unwrap_err();
        assert_permanent_oauth(&error, description);
        assert!(!sf.token_valid());
    }

    // The client never signs an expired assertion, so a relay in front of the sim swaps its assertion for an
    // expired one: the client then meets the sim's exact "expired" answer.
    let expired = jwt("jwt_private_key.pem", &claims(LOGIN_AUDIENCE, -3600));
    raw_jwt_refusal(&sim, &expired, "expired authorization code").await;
    let relay = ExpiringRelay::spawn(sim.base_url()).await;
    let sf = SalesforceClient::new(settings(
        &relay,
        "62.0",
        jwt_flow("jwt_private_key.pem", LOGIN_AUDIENCE),
        Duration::from_secs(20),
    ))
    .unwrap();
    let error = sf.ensure_token().await.unwrap_err();
    assert_permanent_oauth(&error, "expired authorization code");
    assert_eq!(api_calls(&sim), 0, "no API call without a token");
}

/// A token endpoint that forwards JWT grants to the sim with the assertion replaced by an expired one.
struct ExpiringRelay;

impl ExpiringRelay {
    async fn spawn(sim_url: &str) -> String {
        async fn token(State(target): State<String>, body: Bytes) -> Response {
            let form: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).unwrap_or_default();
            if !form
                .iter()
                .any(|(k, v)| k == "grant_type" && v == JWT_GRANT)
            {
                return (StatusCode::BAD_REQUEST, "relay expects a JWT grant").into_response();
            }
            let expired = jwt("jwt_private_key.pem", &claims(LOGIN_AUDIENCE, -3600));
            let resp = client()
                .post(format!("{target}/services/oauth2/token"))
                .form(&[("grant_type", JWT_GRANT), ("assertion", expired.as_str())])
                .send()
                .await
                .expect("sim answers");
            let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
            (
                status,
                [("content-type", "application/json")],
                resp.bytes().await.expect("body"),
            )
                .into_response()
        }
        let app = Router::new()
            .route("/services/oauth2/token", post(token))
            .with_state(sim_url.to_owned());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
}

#[tokio::test]
async fn client_credentials_with_a_wrong_secret_are_refused_permanently() {
    let sim = start().await;
    let mut credentials = creditlink_app();
    credentials.client_secret = "not-the-secret".into();
    let sf = SalesforceClient::new(settings(
        sim.base_url(),
        "62.0",
        AuthFlow::ClientCredentials(credentials),
        Duration::from_secs(20),
    ))
    .unwrap();
    let error = sf.ensure_token().await.unwrap_err();
    assert!(
        matches!(&error, SfError::OAuth { status: 400, error, .. } if error == "invalid_client"),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn create_get_update_delete_and_get_by_external_id() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let object = "Credit_Report_Request__c";
    let mut fields = request_fields("Peeters");
    fields.insert("Request_Key__c".into(), json!("REQ-CRUD-1"));
    let saved = sf.create(object, &fields).await.expect("create");
    assert!(saved.success && saved.errors.is_empty());
    assert_eq!(saved.id.len(), 18);
    assert!(saved.id.starts_with("a01"));

    let rec = sf.get(object, &saved.id, None).await.expect("get");
    assert_eq!(rec["Last_Name__c"], "Peeters");
    assert_eq!(rec["Status__c"], "New", "picklist default");
    assert_eq!(rec["attributes"]["type"], object);
    assert_eq!(
        rec["attributes"]["url"],
        format!("/services/data/v62.0/sobjects/{object}/{}", saved.id)
    );
    let some = sf
        .get(object, &saved.id, Some(&["Id", "Last_Name__c"]))
        .await
        .expect("get with fields");
    let mut keys: Vec<&str> = some.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["Id", "Last_Name__c", "attributes"]);

    sf.update(object, &saved.id, &map(json!({"Status__c": "In Progress"})))
        .await
        .expect("update");
    let by_key = sf
        .get_by_external_id(object, "Request_Key__c", "REQ-CRUD-1")
        .await
        .expect("get by external id");
    assert_eq!(by_key["Id"], Value::String(saved.id.clone()));
    assert_eq!(by_key["Status__c"], "In Progress");

    // Validation failures are permanent, with Salesforce's code and fields.
    let error = sf
        .update(object, &saved.id, &map(json!({"Status__c": "Lost"})))
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), Some(400));
    assert_eq!(
        error.code(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert_eq!(error.api_errors()[0].fields, ["Status__c"]);
    assert_eq!(error.class(), ErrorClass::Permanent);

    sf.delete(object, &saved.id).await.expect("delete");
    let error = sf.get(object, &saved.id, None).await.unwrap_err();
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(404), Some("NOT_FOUND"))
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
    let error = sf
        .get_by_external_id(object, "Request_Key__c", "REQ-CRUD-1")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("NOT_FOUND"));
    let error = sf.get("No_Such__c", &saved.id, None).await.unwrap_err();
    assert_eq!(error.code(), Some("INVALID_TYPE"));
}

#[tokio::test]
async fn upsert_is_201_then_200_and_204_on_api_45() {
    let sim = start().await;
    let object = "Credit_Report_Request__c";
    let sf = jwt_client(&sim);
    let first = sf
        .upsert(
            object,
            "Request_Key__c",
            "REQ-UP-1",
            &request_fields("Janssens"),
        )
        .await
        .expect("upsert insert");
    assert!(first.created);
    let id = first.id.clone().expect("id on 201");
    let second = sf
        .upsert(
            object,
            "Request_Key__c",
            "REQ-UP-1",
            &map(json!({"Last_Name__c": "Jansen"})),
        )
        .await
        .expect("upsert update");
    assert_eq!(second.id.as_deref(), Some(id.as_str()));
    assert!(!second.created);
    assert_eq!(
        sf.get(object, &id, None).await.unwrap()["Last_Name__c"],
        "Jansen"
    );
    // External ids with characters that need escaping reach the org intact.
    let odd = sf
        .upsert(
            object,
            "Request_Key__c",
            "BANK A/2026#1 x",
            &request_fields("Odd"),
        )
        .await
        .expect("upsert with an odd key");
    let stored = sf
        .get(object, odd.id.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(stored["Request_Key__c"], "BANK A/2026#1 x");

    let old = cc_client(&sim, "45.0");
    let created = old
        .upsert(
            object,
            "Request_Key__c",
            "REQ-UP-45",
            &request_fields("Old"),
        )
        .await
        .expect("insert on 45.0");
    assert!(created.created);
    assert!(created.id.is_some());
    let updated = old
        .upsert(
            object,
            "Request_Key__c",
            "REQ-UP-45",
            &map(json!({"Last_Name__c": "Older"})),
        )
        .await
        .expect("update on 45.0");
    assert_eq!(
        updated,
        creditlink::salesforce::UpsertResult {
            id: None,
            created: false
        }
    );

    let error = sf
        .upsert(object, "Last_Name__c", "x", &request_fields("x"))
        .await
        .unwrap_err();
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(404), Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn duplicates_and_ambiguous_external_ids_are_permanent() {
    // Writes keep external ids unique (case-insensitively), so only seed data can hold an ambiguous one.
    let mut seed = creditlink::sim::Seed::default_org();
    let accounts = seed.records.get_mut("Account").expect("seed accounts");
    for name in ["Dup One", "Dup Two"] {
        accounts.push(map(json!({"Name": name, "Bank_Code__c": "DUP"})));
    }
    let sim = start_with(creditlink::sim::SimOptions {
        seed,
        ..Default::default()
    })
    .await;
    let sf = jwt_client(&sim);
    let error = sf
        .upsert("Account", "Bank_Code__c", "dup", &map(json!({"Name": "x"})))
        .await
        .unwrap_err();
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(300), Some("MULTIPLE_CHOICES"))
    );
    assert!(
        error.api_errors()[0].message.contains("/sobjects/Account/"),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);

    let error = sf
        .create(
            "Account",
            &map(json!({"Name": "Dup 3", "Bank_Code__c": "dba"})),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("DUPLICATE_VALUE"), "{error}");
    assert!(error.api_errors()[0].message.contains(BANK_A), "{error}");
    assert_eq!(error.class(), ErrorClass::Permanent);
}
