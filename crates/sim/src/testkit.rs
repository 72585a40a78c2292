//! Helpers shared by the simulator's tests and the daemon's client tests: the default seed's ids and keys,
//! start a sim on port 0, get tokens, sign JWT assertions. Test support only: failures panic with what failed.

use std::time::Duration;

use crate::{SimHandle, SimOptions};
use serde_json::{Value, json};

pub const INTEGRATION_KEY: &str = "3MVG9creditlink.sandbox.consumer";
pub const INTEGRATION_SECRET: &str = "demo-creditlink-secret";
pub const INTEGRATION_USER: &str = "creditlink-integration@bureau.sim";
pub const INTEGRATION_USER_ID: &str = "0055Y00000INTEGQA5";
pub const BANK_A: &str = "0015Y00000BANKAQA5";

pub async fn start() -> SimHandle {
    start_with(SimOptions::default()).await
}

pub async fn start_with(opts: SimOptions) -> SimHandle {
    crate::spawn("127.0.0.1:0".parse().expect("literal address"), opts)
        .await
        .expect("sim starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// `{base}/services/data/v62.0{path}`.
pub fn api(sim: &SimHandle, path: &str) -> String {
    api_v(sim, "62.0", path)
}

pub fn api_v(sim: &SimHandle, version: &str, path: &str) -> String {
    format!("{}/services/data/v{version}{path}", sim.base_url())
}

pub async fn token_response(sim: &SimHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// An access token for creditlink's integration user (client credentials in the body).
pub async fn integration_token(sim: &SimHandle) -> String {
    let (status, body) = token_response(
        sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", INTEGRATION_KEY),
            ("client_secret", INTEGRATION_SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// An RS256 assertion signed with a PEM key file from `config/sandbox/`.
pub fn jwt(key_file: &str, claims: &Value) -> String {
    let pem = std::fs::read(format!(
        "{}/../../config/sandbox/{key_file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("key file");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("rsa key");
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

pub fn claims(aud: &str, exp_offset_secs: i64) -> Value {
    let exp = chrono::Utc::now().timestamp() + exp_offset_secs;
    json!({"iss": INTEGRATION_KEY, "sub": INTEGRATION_USER, "aud": aud, "exp": exp.to_string()})
}

/// Send with a bearer token, return status, headers and the body parsed as JSON (`Null` when empty).
pub async fn send(
    req: reqwest::RequestBuilder,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = req.bearer_auth(token).send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, headers, body)
}

/// A fixed two-object schema (`Contact` with one field of every value kind, `Account`) for SOQL parser and
/// executor tests and fuzzing, independent of the seed.
pub struct SoqlSchema;

impl crate::soql::SchemaLookup for SoqlSchema {
    fn object(&self, name: &str) -> Option<String> {
        ["Contact", "Account"]
            .into_iter()
            .find(|o| o.eq_ignore_ascii_case(name))
            .map(str::to_owned)
    }

    fn field(&self, object: &str, name: &str) -> Option<(String, crate::soql::ValueKind)> {
        let fields: &[(&str, crate::soql::ValueKind)] = match object {
            "Contact" => &[
                ("Id", crate::soql::ValueKind::Text),
                ("Name", crate::soql::ValueKind::Text),
                ("Email", crate::soql::ValueKind::Text),
                ("Score__c", crate::soql::ValueKind::Number),
                ("Active__c", crate::soql::ValueKind::Boolean),
                ("Birthdate", crate::soql::ValueKind::Date),
                ("LastModifiedDate", crate::soql::ValueKind::DateTime),
                ("Photo__c", crate::soql::ValueKind::Blob),
            ],
            "Account" => &[
                ("Id", crate::soql::ValueKind::Text),
                ("Name", crate::soql::ValueKind::Text),
            ],
            _ => return None,
        };
        fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(name))
            .map(|(f, kind)| ((*f).to_owned(), *kind))
    }
}
