//! The Salesforce client against a tiny axum stub on 127.0.0.1:0 (not the simulator): token single-flight, the
//! one re-auth on `401 INVALID_SESSION_ID`, upsert status codes, `Sforce-Limit-Info`, timeouts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use base64::Engine as _;
use creditlink::salesforce::{
    ApiUsage, AppCredentials, AuthFlow, ClientSettings, ContentUpload, ErrorClass, JsonMap,
    SalesforceClient, UpsertResult,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use secrecy::SecretString;
use serde_json::{Value, json};

const AUDIENCE: &str = "https://login.salesforce.com";
const CONSUMER_KEY: &str = "3MVG-stub-consumer-key";
const CLIENT_SECRET: &str = "stub-secret";
const ORG_ID: &str = "00D000000000001AAA";
const USER_ID: &str = "005000000000001AAA";

/// What the stub org saw, and the knobs a test turns.
#[derive(Default)]
struct Stub {
    base: String,
    token_requests: AtomicUsize,
    /// Authorized API calls: the count `Sforce-Limit-Info` reports.
    api_calls: AtomicUsize,
    /// API calls answered 401.
    refused: AtomicUsize,
    /// Tokens the org currently accepts; clearing it "expires" every session.
    accepted: Mutex<HashSet<String>>,
    /// Answer 401 to every API call whatever the token.
    refuse_all: AtomicBool,
    /// Makes the token endpoint slow, so concurrent callers really overlap with the refresh.
    token_delay: Duration,
    upserted_values: Mutex<Vec<String>>,
    /// ContentVersion bodies, id `068` + 1-based index.
    files: Mutex<Vec<Vec<u8>>>,
}

async fn spawn_stub(token_delay: Duration) -> Arc<Stub> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stub = Arc::new(Stub {
        base,
        token_delay,
        ..Stub::default()
    });
    let api = Router::new()
        .route(
            "/services/data/v62.0/sobjects/Account/{id}",
            get(get_account),
        )
        .route("/services/data/v62.0/sobjects/Slow/{id}", get(slow))
        .route(
            "/services/data/v62.0/sobjects/{object}/{field}/{value}",
            patch(upsert),
        )
        .route(
            "/services/data/v62.0/composite/sobjects/{object}/{field}",
            patch(collection_upsert),
        )
        .route(
            "/services/data/v62.0/sobjects/ContentVersion",
            post(content_version),
        )
        .route(
            "/services/data/v62.0/sobjects/ContentVersion/{id}/VersionData",
            get(version_data),
        )
        .route("/services/data/v62.0/query", get(query_first))
        .route("/services/data/v62.0/query/{cursor}", get(query_next))
        .layer(middleware::from_fn_with_state(stub.clone(), org_session));
    let app = Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/introspect", post(introspect))
        .merge(api)
        .with_state(stub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    stub
}

async fn token(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    stub.token_requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(stub.token_delay).await;
    let granted = match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            form.get("assertion").is_some_and(|a| valid_assertion(a))
        }
        Some("client_credentials") => {
            let expected = base64::engine::general_purpose::STANDARD
                .encode(format!("{CONSUMER_KEY}:{CLIENT_SECRET}"));
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                == Some(&format!("Basic {expected}"))
        }
        _ => false,
    };
    if !granted {
        let body = json!({"error": "invalid_grant", "error_description": "invalid assertion"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let access = format!(
        "{}!tok-{}",
        &ORG_ID[..15],
        stub.token_requests.load(Ordering::SeqCst)
    );
    stub.accepted.lock().insert(access.clone());
    Json(json!({
        "access_token": access,
        "instance_url": stub.base,
        "id": format!("{AUDIENCE}/id/{ORG_ID}/{USER_ID}"),
        "token_type": "Bearer",
        "issued_at": "1764000000000",
        "scope": "api",
    }))
    .into_response()
}

/// The assertion is signed with the sandbox key and carries the documented claims with `exp` ≤ 3 min ahead.
fn valid_assertion(assertion: &str) -> bool {
    let public = std::fs::read(format!(
        "{}/config/sandbox/jwt_public_key.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[CONSUMER_KEY]);
    let Ok(data) = jsonwebtoken::decode::<Value>(
        assertion,
        &DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    ) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    data.claims["sub"] == "integration@bureau.example"
        && data.claims["exp"]
            .as_u64()
            .is_some_and(|exp| exp <= now + 180)
}

/// Session check and limit header for every API route, like the real org.
async fn org_session(State(stub): State<Arc<Stub>>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let valid = bearer.is_some_and(|t| stub.accepted.lock().contains(&t));
    if !valid || stub.refuse_all.load(Ordering::SeqCst) {
        stub.refused.fetch_add(1, Ordering::SeqCst);
        let body =
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let used = stub.api_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let mut response = next.run(request).await;
    let limit = format!("api-usage={used}/5000; api-bursts=1/750");
    response
        .headers_mut()
        .insert("Sforce-Limit-Info", limit.parse().unwrap());
    response
}

async fn get_account(Path(id): Path<String>) -> Json<Value> {
    Json(json!({"attributes": {"type": "Account"}, "Id": id, "Name": "Demo Bank A"}))
}

async fn slow() -> StatusCode {
    tokio::time::sleep(Duration::from_secs(30)).await;
    StatusCode::OK
}

/// The external id value picks the answer: `new` 201, `existing` 200, `legacy` 204 (API ≤ 45), `dup` 300.
async fn upsert(
    State(stub): State<Arc<Stub>>,
    Path((object, _field, value)): Path<(String, String, String)>,
) -> Response {
    stub.upserted_values.lock().push(value.clone());
    let id = "a01000000000001AAA";
    match value.as_str() {
        "existing" => {
            Json(json!({"id": id, "success": true, "errors": [], "created": false})).into_response()
        }
        "legacy" => StatusCode::NO_CONTENT.into_response(),
        "dup" => {
            let urls = json!([
                format!("/services/data/v62.0/sobjects/{object}/a01000000000001AAA"),
                format!("/services/data/v62.0/sobjects/{object}/a01000000000002AAA"),
            ]);
            (StatusCode::MULTIPLE_CHOICES, Json(urls)).into_response()
        }
        _ => (
            StatusCode::CREATED,
            Json(json!({"id": id, "success": true, "errors": [], "created": true})),
        )
            .into_response(),
    }
}

/// RFC 7662 with Salesforce's fields; the app authenticates with Basic auth.
async fn introspect(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{CONSUMER_KEY}:{CLIENT_SECRET}"));
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&format!("Basic {expected}"))
    {
        let body =
            json!({"error": "invalid_client", "error_description": "invalid client credentials"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let active = form
        .get("token")
        .is_some_and(|t| stub.accepted.lock().contains(t));
    if !active {
        return Json(json!({"active": false})).into_response();
    }
    Json(json!({
        "active": true, "scope": "api", "client_id": CONSUMER_KEY, "username": "rep@demo-bank-a.example",
        "sub": format!("{AUDIENCE}/id/{ORG_ID}/005000000000002AAA"), "token_type": "access_token",
        "exp": 1764003600, "iat": 1764000000, "nbf": 1764000000,
    }))
    .into_response()
}

/// Two pages: the first names the second in `nextRecordsUrl`. Echoes the SOQL so the test sees it arrive intact.
async fn query_first(Query(params): Query<HashMap<String, String>>) -> Json<Value> {
    let soql = params.get("q").cloned().unwrap_or_default();
    Json(json!({
        "totalSize": 3, "done": false, "nextRecordsUrl": "/services/data/v62.0/query/01gSTUB-2",
        "records": [{"attributes": {"type": "Account"}, "Name": soql}, {"attributes": {"type": "Account"}, "Name": "B"}],
    }))
}

async fn query_next(Path(cursor): Path<String>) -> Response {
    if cursor != "01gSTUB-2" {
        let body =
            json!([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]);
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    Json(json!({"totalSize": 3, "done": true, "records": [{"attributes": {"type": "Account"}, "Name": "C"}]}))
        .into_response()
}

/// Per-record results in input order; a record keyed `bad` fails with a Collections-style (`statusCode`) error.
async fn collection_upsert(
    Path((object, field)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if body["allOrNone"] != json!(false) {
        return (StatusCode::BAD_REQUEST, "allOrNone must be false").into_response();
    }
    let records = body["records"].as_array().cloned().unwrap_or_default();
    let results: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            if record["attributes"]["type"] != json!(object) {
                json!({"success": false, "errors": [{"statusCode": "INVALID_TYPE", "message": "no type"}]})
            } else if record[&field] == json!("bad") {
                let error = json!({"statusCode": "REQUIRED_FIELD_MISSING",
                    "message": "Required fields are missing: [Bank__c]", "fields": ["Bank__c"]});
                json!({"success": false, "errors": [error]})
            } else {
                json!({"id": format!("a02{i:015}"), "success": true, "errors": [], "created": true})
            }
        })
        .collect();
    Json(Value::Array(results)).into_response()
}

/// Stores the uploaded bytes (from base64 JSON or the `VersionData` multipart part) and serves them back.
async fn content_version(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (entity, data) = if content_type.starts_with("multipart/form-data") {
        let text = String::from_utf8_lossy(&body).into_owned();
        let Some(entity) = text
            .split("\r\n\r\n")
            .nth(1)
            .and_then(|part| part.split("\r\n--").next())
        else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let entity: Value = serde_json::from_str(entity).unwrap_or_default();
        let data = text
            .split("\r\n\r\n")
            .nth(2)
            .and_then(|part| part.split("\r\n--").next())
            .unwrap_or_default();
        let named =
            text.contains("name=\"entity_content\"") && text.contains("name=\"VersionData\"");
        (
            if named { entity } else { Value::Null },
            data.as_bytes().to_vec(),
        )
    } else {
        let entity: Value = serde_json::from_slice(&body).unwrap_or_default();
        let data = entity["VersionData"].as_str().unwrap_or_default();
        let data = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_default();
        (entity, data)
    };
    if entity["PathOnClient"] != json!("report.pdf")
        || entity["FirstPublishLocationId"] != json!("a01000000000001AAA")
    {
        let body = json!([{"message": "Required fields are missing: [PathOnClient]", "errorCode": "REQUIRED_FIELD_MISSING"}]);
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    stub.files.lock().push(data);
    let id = format!("068{:015}", stub.files.lock().len());
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response()
}

async fn version_data(State(stub): State<Arc<Stub>>, Path(id): Path<String>) -> Response {
    let index = id
        .get(3..)
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| n.checked_sub(1));
    match index.and_then(|i| stub.files.lock().get(i).cloned()) {
        Some(data) => ([(header::CONTENT_TYPE, "application/pdf")], data).into_response(),
        None => {
            let body = json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]);
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
    }
}

fn settings(stub: &Stub, auth: AuthFlow, timeout: Duration) -> ClientSettings {
    ClientSettings {
        login_url: stub.base.parse().unwrap(),
        api_version: "62.0".to_owned(),
        auth,
        introspection: None,
        timeout,
    }
}

fn jwt_flow(key_file: &str) -> AuthFlow {
    let pem = std::fs::read_to_string(format!(
        "{}/config/sandbox/{key_file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    AuthFlow::JwtBearer {
        consumer_key: CONSUMER_KEY.to_owned(),
        username: "integration@bureau.example".to_owned(),
        audience: AUDIENCE.to_owned(),
        private_key_pem: SecretString::from(pem),
    }
}

fn client_credentials() -> AuthFlow {
    AuthFlow::ClientCredentials(AppCredentials {
        client_id: CONSUMER_KEY.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
    })
}

fn client(stub: &Stub, auth: AuthFlow) -> SalesforceClient {
    SalesforceClient::new(settings(stub, auth, Duration::from_secs(10))).unwrap()
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let stub = spawn_stub(Duration::from_millis(150)).await;
    let sf = client(&stub, jwt_flow("jwt_private_key.pem"));
    assert!(!sf.token_valid());

    let calls = (0..20).map(|i| {
        let sf = sf.clone();
        tokio::spawn(async move {
            sf.get("Account", &format!("001000000000{i:03}AAA"), None)
                .await
        })
    });
    for result in futures::future::join_all(calls).await {
        let record = result.unwrap().unwrap();
        assert_eq!(record["Name"], "Demo Bank A");
    }

    assert_eq!(stub.token_requests.load(Ordering::SeqCst), 1);
    assert_eq!(stub.api_calls.load(Ordering::SeqCst), 20);
    assert!(sf.token_valid());
    let identity = sf.identity().unwrap();
    assert_eq!(
        (identity.org_id.as_str(), identity.user_id.as_str()),
        (ORG_ID, USER_ID)
    );
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_without_the_caller_noticing() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, client_credentials());
    sf.get("Account", "001000000000001AAA", None).await.unwrap();

    stub.accepted.lock().clear(); // the org expires every session
    let record = sf.get("Account", "001000000000001AAA", None).await.unwrap();

    assert_eq!(record["Id"], "001000000000001AAA");
    assert_eq!(stub.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(stub.refused.load(Ordering::SeqCst), 1);
    assert_eq!(stub.api_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_session_still_refused_after_one_reauth_is_reported_as_reauth() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, client_credentials());
    stub.refuse_all.store(true, Ordering::SeqCst);

    let error = sf
        .get("Account", "001000000000001AAA", None)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Reauth);
    assert_eq!(error.code(), Some("INVALID_SESSION_ID"));
    assert_eq!(error.http_status(), Some(401));
    assert_eq!(
        stub.token_requests.load(Ordering::SeqCst),
        2,
        "exactly one re-authentication"
    );
    assert_eq!(stub.refused.load(Ordering::SeqCst), 2, "exactly one retry");
    assert!(!sf.token_valid(), "the refused token is not kept");
}

#[tokio::test]
async fn a_wrongly_signed_assertion_is_a_permanent_oauth_error() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, jwt_flow("wrong_private_key.pem"));

    let error = sf.ensure_token().await.unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    assert_eq!(error.code(), Some("invalid_grant"));
    assert_eq!(
        stub.token_requests.load(Ordering::SeqCst),
        1,
        "no retry of a permanent token error"
    );
    assert!(!sf.token_valid());
}

#[tokio::test]
async fn upsert_status_codes_and_limit_header() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, client_credentials());
    let mut fields = JsonMap::new();
    fields.insert("Status__c".into(), json!("New"));
    let upsert = |value: &'static str| {
        let (sf, fields) = (sf.clone(), fields.clone());
        async move {
            sf.upsert("Credit_Report_Request__c", "Request_Key__c", value, &fields)
                .await
        }
    };

    let created = upsert("new").await.unwrap();
    assert_eq!(
        created,
        UpsertResult {
            id: Some("a01000000000001AAA".into()),
            created: true
        }
    );
    let updated = upsert("existing").await.unwrap();
    assert_eq!(
        updated,
        UpsertResult {
            id: Some("a01000000000001AAA".into()),
            created: false
        }
    );
    let legacy = upsert("legacy").await.unwrap();
    assert_eq!(
        legacy,
        UpsertResult {
            id: None,
            created: false
        }
    );
    let ambiguous = upsert("dup").await.unwrap_err();
    assert_eq!(ambiguous.http_status(), Some(300));
    assert_eq!(ambiguous.code(), Some("MULTIPLE_CHOICES"));
    assert_eq!(ambiguous.class(), ErrorClass::Permanent);

    upsert("LN 2026/000123#a?b").await.unwrap();
    assert_eq!(
        stub.upserted_values.lock().last().map(String::as_str),
        Some("LN 2026/000123#a?b")
    );

    let calls = stub.api_calls.load(Ordering::SeqCst) as u64;
    assert_eq!(calls, 5);
    assert_eq!(
        sf.api_usage(),
        Some(ApiUsage {
            used: calls,
            max: 5000
        })
    );
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = SalesforceClient::new(settings(
        &stub,
        client_credentials(),
        Duration::from_millis(500),
    ))
    .unwrap();

    let error = sf.get("Slow", "x", None).await.unwrap_err();

    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert_eq!(error.code(), Some("TIMEOUT"));
}

#[tokio::test]
async fn oversized_collections_are_refused_before_any_request() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, client_credentials());
    let records: Vec<JsonMap> = (0..201)
        .map(|i| JsonMap::from_iter([("Record_Key__c".to_owned(), json!(format!("K-{i}")))]))
        .collect();

    let error = sf
        .collections_upsert("Credit_Record__c", "Record_Key__c", &records)
        .await
        .unwrap_err();

    assert_eq!(error.class(), ErrorClass::Permanent);
    assert_eq!(error.code(), Some("CLIENT_USAGE"));
    assert_eq!(stub.token_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn introspection_reports_active_tokens_and_their_user() {
    let stub = spawn_stub(Duration::ZERO).await;
    let mut with_app = settings(&stub, client_credentials(), Duration::from_secs(10));
    with_app.introspection = Some(AppCredentials {
        client_id: CONSUMER_KEY.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
    });
    let sf = SalesforceClient::new(with_app).unwrap();
    stub.accepted
        .lock()
        .insert("00D!bank-user-token".to_owned());

    let active = sf.introspect("00D!bank-user-token").await.unwrap();
    assert!(active.active);
    assert_eq!(active.username.as_deref(), Some("rep@demo-bank-a.example"));
    assert_eq!(active.org_id.as_deref(), Some(ORG_ID));
    assert_eq!(active.user_id.as_deref(), Some("005000000000002AAA"));
    assert_eq!(active.exp, Some(1764003600));
    assert!(!sf.introspect("00D!unknown").await.unwrap().active);

    let without_app = client(&stub, client_credentials());
    assert_eq!(
        without_app.introspect("x").await.unwrap_err().code(),
        Some("CLIENT_CONFIG")
    );
}

#[tokio::test]
async fn query_all_follows_next_records_url() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, client_credentials());
    let soql = "SELECT Name FROM Account WHERE Bank_Code__c = 'A&B' AND Name LIKE '%x%'";

    let records = sf.query_all(soql).await.unwrap();

    let names: Vec<&str> = records
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [soql, "B", "C"]);
    assert_eq!(stub.api_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn collections_upsert_returns_classified_results_in_input_order() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, client_credentials());
    let records: Vec<JsonMap> = ["K-1", "bad", "K-3"]
        .iter()
        .map(|key| JsonMap::from_iter([("Record_Key__c".to_owned(), json!(key))]))
        .collect();

    let results = sf
        .collections_upsert("Credit_Record__c", "Record_Key__c", &records)
        .await
        .unwrap();

    assert_eq!(results.len(), 3);
    assert!(results[0].success && results[2].success);
    assert_eq!(results[0].created, Some(true));
    assert_eq!(results[0].error_class(), None);
    assert!(!results[1].success);
    assert_eq!(results[1].errors[0].code, "REQUIRED_FIELD_MISSING");
    assert_eq!(results[1].errors[0].fields, ["Bank__c"]);
    assert_eq!(results[1].error_class(), Some(ErrorClass::Permanent));
    assert_eq!(
        stub.api_calls.load(Ordering::SeqCst),
        1,
        "one API call for the whole batch"
    );
}

#[tokio::test]
async fn content_versions_upload_as_json_or_multipart_and_download_intact() {
    let stub = spawn_stub(Duration::ZERO).await;
    let sf = client(&stub, client_credentials());
    let pdf = bytes::Bytes::from_static(b"%PDF-1.7\nreport body\n%%EOF");
    let upload = |multipart| ContentUpload {
        title: "Credit report".to_owned(),
        path_on_client: "report.pdf".to_owned(),
        data: pdf.clone(),
        first_publish_location_id: Some("a01000000000001AAA".to_owned()),
        multipart,
    };

    let as_json = sf.upload_content_version(upload(false)).await.unwrap();
    let as_multipart = sf.upload_content_version(upload(true)).await.unwrap();

    assert!(as_json.success && as_multipart.success);
    assert_ne!(as_json.id, as_multipart.id);
    assert_eq!(sf.download_version_data(&as_json.id).await.unwrap(), pdf);
    assert_eq!(
        sf.download_version_data(&as_multipart.id).await.unwrap(),
        pdf
    );
    let missing = sf
        .download_version_data("068000000000000099")
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.class()),
        (Some("NOT_FOUND"), ErrorClass::Permanent)
    );
}
