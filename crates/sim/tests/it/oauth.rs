//! Simulator OAuth: JWT bearer, client credentials, introspection, token expiry.

use std::time::Duration;

use base64::Engine;
use creditlink_sim::SimOptions;
use serde_json::{Value, json};

use creditlink_sim::testkit::*;

const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[tokio::test]
async fn jwt_bearer_valid_assertion_gets_a_salesforce_token() {
    let sim = start().await;
    let assertion = jwt(
        "jwt_private_key.pem",
        &claims("https://login.salesforce.com", 120),
    );
    // jsforce adds client_id to a JWT grant; unknown parameters are ignored.
    let (status, body) = token_response(
        &sim,
        &[
            ("grant_type", JWT_GRANT),
            ("assertion", &assertion),
            ("client_id", "x"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("00D5Y000001CLNK!"), "{token}");
    assert_eq!(body["instance_url"], sim.base_url());
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["id"]
            .as_str()
            .unwrap()
            .ends_with("/id/00D5Y000001CLNKUA4/0055Y00000INTEGQA5")
    );
    let issued_at = body["issued_at"].as_str().unwrap();
    assert_eq!(issued_at.len(), 13);
    assert!(body.get("expires_in").is_none());

    // The token works, and numeric `exp` plus the sim's own URL as audience are accepted too.
    let (status, _, _) = send(client().get(api(&sim, "/limits")), token).await;
    assert_eq!(status, 200);
    let numeric = json!({"iss": INTEGRATION_KEY, "sub": INTEGRATION_USER, "aud": sim.base_url(),
        "exp": chrono::Utc::now().timestamp() + 60});
    let (status, body) = token_response(
        &sim,
        &[
            ("grant_type", JWT_GRANT),
            ("assertion", &jwt("jwt_private_key.pem", &numeric)),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn jwt_bearer_failures_have_salesforce_error_bodies() {
    let sim = start().await;
    let cases: Vec<(String, &str)> = vec![
        (
            jwt(
                "wrong_private_key.pem",
                &claims("https://login.salesforce.com", 120),
            ),
            "invalid assertion",
        ),
        (
            jwt(
                "jwt_private_key.pem",
                &claims("https://login.salesforce.com", -3600),
            ),
            "expired authorization code",
        ),
        (
            jwt(
                "jwt_private_key.pem",
                &claims("https://evil.example.com", 120),
            ),
            "Audience validation failed",
        ),
        (
            jwt(
                "jwt_private_key.pem",
                &json!({"iss": INTEGRATION_KEY, "sub": "rep@demobanka.sim", "aud": "https://test.salesforce.com",
                    "exp": chrono::Utc::now().timestamp() + 60}),
            ),
            "user hasn't approved this consumer",
        ),
        ("not-a-jwt".to_string(), "invalid assertion"),
    ];
    for (assertion, description) in cases {
        let (status, body) = token_response(
            &sim,
            &[("grant_type", JWT_GRANT), ("assertion", &assertion)],
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": "invalid_grant", "error_description": description})
        );
    }
    // `prn` wins over `sub`.
    let both = json!({"iss": INTEGRATION_KEY, "sub": INTEGRATION_USER, "prn": "rep@demobanka.sim",
        "aud": "https://login.salesforce.com", "exp": chrono::Utc::now().timestamp() + 60});
    let (status, body) = token_response(
        &sim,
        &[
            ("grant_type", JWT_GRANT),
            ("assertion", &jwt("jwt_private_key.pem", &both)),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error_description"].clone()),
        (400, json!("user hasn't approved this consumer"))
    );

    let (status, body) = token_response(&sim, &[("grant_type", "urn:example:no-such-grant")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"})
    );
    // The web server flow's grant is served (the dashboard's login); without a client it is refused like
    // every other grant that names none.
    let (status, body) = token_response(&sim, &[("grant_type", "authorization_code")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_client_id");
}

#[tokio::test]
async fn client_credentials_via_basic_and_body_and_password_grant() {
    let sim = start().await;
    let basic = base64::engine::general_purpose::STANDARD
        .encode("3MVG9demobanka.sandbox:demo-bank-a-secret");
    let resp = client()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .header("Authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["id"]
            .as_str()
            .unwrap()
            .ends_with("/0055Y00000REPA1QAP"),
        "{body}"
    );

    let token = integration_token(&sim).await;
    assert!(token.starts_with("00D5Y000001CLNK!"));

    let (status, body) = token_response(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nope"),
            ("client_secret", "x"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_client_id"))
    );

    let (status, body) = token_response(
        &sim,
        &[
            ("grant_type", "password"),
            ("client_id", "3MVG9demobankb.sandbox"),
            ("client_secret", "demo-bank-b-secret"),
            ("username", "rep@demobankb.sim"),
            ("password", "demo-bank-b-password"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = token_response(
        &sim,
        &[
            ("grant_type", "password"),
            ("client_id", "3MVG9demobankb.sandbox"),
            ("client_secret", "demo-bank-b-secret"),
            ("username", "rep@demobankb.sim"),
            ("password", "wrong"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "authentication failure"})
    );
}

#[tokio::test]
async fn introspect_userinfo_and_revoke() {
    let sim = start().await;
    let token = integration_token(&sim).await;
    let introspect = |t: String| {
        client()
            .post(format!("{}/services/oauth2/introspect", sim.base_url()))
            .basic_auth(INTEGRATION_KEY, Some(INTEGRATION_SECRET))
            .form(&[("token", t), ("token_type_hint", "access_token".into())])
            .send()
    };
    let body: Value = introspect(token.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["username"], INTEGRATION_USER);
    assert_eq!(body["client_id"], INTEGRATION_KEY);
    assert!(body["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    assert!(body["sub"].as_str().unwrap().ends_with(INTEGRATION_USER_ID));

    let body: Value = introspect("00D5Y000001CLNK!bogus".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"active": false}));

    let info: Value = client()
        .get(format!(
            "{}/services/oauth2/userinfo?oauth_token={token}",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["organization_id"], "00D5Y000001CLNKUA4");
    assert_eq!(info["user_id"], INTEGRATION_USER_ID);

    let resp = client()
        .post(format!("{}/services/oauth2/revoke", sim.base_url()))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _, body) = send(client().get(api(&sim, "/limits")), &token).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
}

#[tokio::test]
async fn expired_tokens_get_the_exact_401_body() {
    let expired =
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
    // The expire_tokens fault.
    let sim = start().await;
    let token = integration_token(&sim).await;
    client()
        .put(format!("{}/__sim/faults", sim.base_url()))
        .json(&json!({"expire_tokens": true}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = send(
        client().get(api(&sim, "/sobjects/Account/0015Y00000BANKAQA5")),
        &token,
    )
    .await;
    assert_eq!((status, body), (401, expired.clone()));

    // Natural expiry with a very short lifetime.
    let sim = start_with(SimOptions {
        token_lifetime: Duration::from_millis(1),
        ..SimOptions::default()
    })
    .await;
    let token = integration_token(&sim).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, body) = send(client().get(api(&sim, "/limits")), &token).await;
        if status == 401 {
            assert_eq!(body, expired);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "token never expired");
        tokio::task::yield_now().await;
    }

    // No Authorization header at all.
    let resp = client().get(api(&sim, "/limits")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_AUTH_HEADER");
}

#[tokio::test]
async fn chunked_token_request_is_accepted() {
    let sim = start().await;
    let form = format!(
        "grant_type=client_credentials&client_id={INTEGRATION_KEY}&client_secret={INTEGRATION_SECRET}"
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        form.as_bytes().chunks(7).map(|c| Ok(c.to_vec())).collect();
    let resp = client()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["access_token"].is_string());
}
