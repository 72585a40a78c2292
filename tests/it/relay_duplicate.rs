//! `DUPLICATE_VALUE` on a message's own external id counts as delivered (the record is there).
//! The simulator never answers it (its upserts are serialised), so a tiny stub org plays that part.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use creditlink::outbox::{AttemptOutcome, Lane, State as MessageState};
use creditlink::relay::{SalesforcePusher, StepOutcome};
use creditlink::salesforce::{AppCredentials, AuthFlow, ClientSettings, SalesforceClient};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::relay_support::*;

const PARSED_ID: &str = "a01000000000042AAA";
const LOOKED_UP_ID: &str = "a01000000000077AAA";

#[derive(Default)]
struct Stub {
    lookups: AtomicUsize,
}

async fn spawn_stub() -> (String, Arc<Stub>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stub = Arc::new(Stub::default());
    let token_base = base.clone();
    let app = Router::new()
        .route(
            "/services/oauth2/token",
            post(move || {
                let base = token_base.clone();
                async move { Json(json!({"access_token": "00D!stub", "instance_url": base})) }
            }),
        )
        .route(
            "/services/data/v62.0/composite/sobjects/{object}/{field}",
            patch(upsert),
        )
        .route(
            "/services/data/v62.0/sobjects/{object}/{field}/{value}",
            get(lookup),
        )
        .with_state(stub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, stub)
}

/// `dup-named` answers the documented message with the id; `dup-anonymous` names only the field.
async fn upsert(Json(body): Json<Value>) -> Json<Value> {
    let results: Vec<Value> = body["records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|record| match record[KEY].as_str() {
            Some("dup-named") => json!({"success": false, "errors": [{
                "statusCode": "DUPLICATE_VALUE",
                "message": format!("duplicate value found: {KEY} duplicates value on record with id: {PARSED_ID}"),
                "fields": []}]}),
            Some("dup-anonymous") => json!({"success": false, "errors": [{
                "statusCode": "DUPLICATE_VALUE",
                "message": "duplicate value found",
                "fields": [KEY]}]}),
            _ => json!({"id": "a01000000000001AAA", "success": true, "created": true, "errors": []}),
        })
        .collect();
    Json(Value::Array(results))
}

async fn lookup(
    State(stub): State<Arc<Stub>>,
    Path((_, _, value)): Path<(String, String, String)>,
) -> Json<Value> {
    stub.lookups.fetch_add(1, Ordering::SeqCst);
    Json(json!({"Id": LOOKED_UP_ID, KEY: value}))
}

#[tokio::test]
async fn own_key_duplicates_are_delivered_with_the_existing_id() {
    let (base, stub) = spawn_stub().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = open_outbox(&dir, slow_policy());
    let client = SalesforceClient::new(ClientSettings {
        login_url: base.parse().expect("url"),
        api_version: "62.0".to_owned(),
        auth: AuthFlow::ClientCredentials(AppCredentials {
            client_id: "stub".to_owned(),
            client_secret: SecretString::from("stub"),
        }),
        introspection: None,
        timeout: Duration::from_secs(10),
    })
    .expect("client");
    let named = outbox
        .enqueue(request("dup-named", Lane::Interactive))
        .await
        .expect("enqueue");
    let anonymous = outbox
        .enqueue(request("dup-anonymous", Lane::Interactive))
        .await
        .expect("enqueue");
    let pusher = SalesforcePusher::new(outbox.clone(), client, settings()).expect("pusher");

    assert_eq!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Worked {
            delivered: 2,
            retried: 0,
            failed: 0
        }
    );
    for (id, remote) in [(named, PARSED_ID), (anonymous, LOOKED_UP_ID)] {
        let message = outbox.get(id).await.expect("get").expect("message");
        assert_eq!(message.state, MessageState::Delivered);
        assert_eq!(message.remote_id.as_deref(), Some(remote));
        let attempts = outbox.attempts(id).await.expect("attempts");
        assert_eq!(attempts[0].outcome, AttemptOutcome::Success);
        assert_eq!(attempts[0].error_code.as_deref(), Some("DUPLICATE_VALUE"));
    }
    assert_eq!(
        stub.lookups.load(Ordering::SeqCst),
        1,
        "only the anonymous one is looked up"
    );
}
