//! Helpers for driving the real [`SalesforceClient`] against a simulated org (`sim::spawn` on port 0).

use std::time::Duration;

use creditlink::salesforce::{AppCredentials, AuthFlow, ClientSettings, JsonMap, SalesforceClient};
use creditlink::sim::SimHandle;
use secrecy::SecretString;
use serde_json::Value;

use crate::sim_support::{INTEGRATION_KEY, INTEGRATION_SECRET, INTEGRATION_USER, client};

/// The audience simple-salesforce and creditlink use by default.
pub const LOGIN_AUDIENCE: &str = "https://login.salesforce.com";

pub fn sandbox_key(file: &str) -> SecretString {
    let path = format!("{}/config/sandbox/{file}", env!("CARGO_MANIFEST_DIR"));
    SecretString::from(std::fs::read_to_string(&path).expect("sandbox key file"))
}

pub fn creditlink_app() -> AppCredentials {
    AppCredentials {
        client_id: INTEGRATION_KEY.to_owned(),
        client_secret: SecretString::from(INTEGRATION_SECRET),
    }
}

pub fn jwt_flow(key_file: &str, audience: &str) -> AuthFlow {
    AuthFlow::JwtBearer {
        consumer_key: INTEGRATION_KEY.to_owned(),
        username: INTEGRATION_USER.to_owned(),
        audience: audience.to_owned(),
        private_key_pem: sandbox_key(key_file),
    }
}

pub fn settings(
    login_url: &str,
    version: &str,
    auth: AuthFlow,
    timeout: Duration,
) -> ClientSettings {
    ClientSettings {
        login_url: login_url.parse().expect("login url"),
        api_version: version.to_owned(),
        auth,
        introspection: Some(creditlink_app()),
        timeout,
    }
}

/// A JWT bearer client for the integration user on API 62.0.
pub fn jwt_client(sim: &SimHandle) -> SalesforceClient {
    SalesforceClient::new(settings(
        sim.base_url(),
        "62.0",
        jwt_flow("jwt_private_key.pem", LOGIN_AUDIENCE),
        Duration::from_secs(20),
    ))
    .expect("client settings")
}

/// A client-credentials client for creditlink's connected app on `version`.
pub fn cc_client(sim: &SimHandle, version: &str) -> SalesforceClient {
    SalesforceClient::new(settings(
        sim.base_url(),
        version,
        AuthFlow::ClientCredentials(creditlink_app()),
        Duration::from_secs(20),
    ))
    .expect("client settings")
}

/// `PUT /__sim/faults`.
pub async fn set_faults(sim: &SimHandle, faults: Value) {
    let resp = client()
        .put(format!("{}/__sim/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("faults request");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

pub async fn clear_faults(sim: &SimHandle) {
    let resp = client()
        .delete(format!("{}/__sim/faults", sim.base_url()))
        .send()
        .await
        .expect("faults request");
    assert_eq!(resp.status(), 200);
}

pub fn map(value: Value) -> JsonMap {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A valid new credit report request for bank A.
pub fn request_fields(last_name: &str) -> JsonMap {
    map(serde_json::json!({
        "Bank__c": crate::sim_support::BANK_A,
        "Subject_Type__c": "Person",
        "Purpose__c": "Loan Application",
        "Last_Name__c": last_name,
    }))
}

pub fn api_calls(sim: &SimHandle) -> u64 {
    sim.stats()["api_calls_total"]
        .as_u64()
        .expect("api_calls_total")
}
