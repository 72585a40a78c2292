//! The real Salesforce client against the simulated org's injected faults: each error class, token expiry under
//! concurrency, timeouts, and token introspection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use creditlink::salesforce::{AuthFlow, ErrorClass, SalesforceClient, SfError};
use creditlink::sim::SimOptions;
use serde_json::json;

use crate::sf_client_sim_support::*;
use crate::sim_support::*;

async fn faulted_error(
    sim: &creditlink::sim::SimHandle,
    sf: &SalesforceClient,
    fault: &str,
) -> SfError {
    set_faults(sim, json!({"error_rate": 1.0, "errors": [fault]})).await;
    let error = sf.get("Account", BANK_A, None).await.unwrap_err();
    clear_faults(sim).await;
    error
}

#[tokio::test]
async fn injected_faults_are_classified_like_salesforce_errors() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    sf.ensure_token().await.unwrap();

    let error = faulted_error(&sim, &sf, "SERVER_UNAVAILABLE").await;
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(503), Some("SERVER_UNAVAILABLE"))
    );
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert!(!error.is_rate_limit());

    let error = faulted_error(&sim, &sf, "UNABLE_TO_LOCK_ROW").await;
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(400), Some("UNABLE_TO_LOCK_ROW"))
    );
    assert_eq!(error.class(), ErrorClass::Retryable);

    let error = faulted_error(&sim, &sf, "REQUEST_LIMIT_EXCEEDED").await;
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(403), Some("REQUEST_LIMIT_EXCEEDED"))
    );
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert!(error.is_rate_limit());

    let error = faulted_error(&sim, &sf, "INTERNAL_SERVER_ERROR").await;
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(500), Some("UNKNOWN_EXCEPTION"))
    );
    assert_eq!(error.class(), ErrorClass::Retryable);

    // In a collection, lock contention is reported per record.
    set_faults(
        &sim,
        json!({"error_rate": 1.0, "errors": ["UNABLE_TO_LOCK_ROW"]}),
    )
    .await;
    let records = vec![map(json!({"Name": "Locked", "Bank_Code__c": "LOCK1"}))];
    let results = sf
        .collections_upsert("Account", "Bank_Code__c", &records)
        .await
        .expect("200 with item errors");
    assert_eq!(results[0].errors[0].code, "UNABLE_TO_LOCK_ROW");
    assert_eq!(results[0].error_class(), Some(ErrorClass::Retryable));
    clear_faults(&sim).await;

    set_faults(&sim, json!({"outage": true})).await;
    let error = sf.query("SELECT Id FROM Account").await.unwrap_err();
    assert_eq!(error.http_status(), Some(503));
    assert_eq!(error.class(), ErrorClass::Retryable);
    // A client that needs a token during the outage fails retryably too.
    let fresh = cc_client(&sim, "62.0");
    let error = fresh.ensure_token().await.unwrap_err();
    assert_eq!(error.http_status(), Some(503));
    assert_eq!(error.class(), ErrorClass::Retryable);
    clear_faults(&sim).await;

    let used = api_calls(&sim);
    set_faults(&sim, json!({"daily_api_limit": used})).await;
    let error = sf.get("Account", BANK_A, None).await.unwrap_err();
    assert_eq!(
        (error.http_status(), error.code()),
        (Some(403), Some("REQUEST_LIMIT_EXCEEDED"))
    );
    assert!(error.is_rate_limit());
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert_eq!(sf.api_usage().map(|u| (u.used, u.max)), Some((used, used)));
    set_faults(&sim, json!({"daily_api_limit": null})).await;
    sf.get("Account", BANK_A, None).await.expect("limit lifted");
}

#[tokio::test]
async fn a_call_slower_than_the_client_timeout_is_retryable() {
    let sim = start().await;
    let sf = SalesforceClient::new(settings(
        sim.base_url(),
        "62.0",
        AuthFlow::ClientCredentials(creditlink_app()),
        Duration::from_millis(300),
    ))
    .unwrap();
    sf.ensure_token().await.unwrap();
    set_faults(&sim, json!({"latency_ms": [2000, 2000]})).await;
    let error = sf.get("Account", BANK_A, None).await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.code(), Some("TIMEOUT"));
    assert_eq!(error.class(), ErrorClass::Retryable);
}

/// 20 tasks call concurrently while tokens die twice over: once by the `expire_tokens` fault, and continually by a
/// short token lifetime. The one re-authentication per refused call must hide both from every caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_expiring_mid_run_are_invisible_to_20_concurrent_callers() {
    // Long enough that a re-authenticated retry never meets an already expired token on a loaded machine.
    let lifetime = Duration::from_millis(1500);
    let sim = start_with(SimOptions {
        token_lifetime: lifetime,
        // A fast machine makes many calls in the time-bounded loop below: not a test of the daily limit.
        daily_api_limit: 10_000_000,
        ..SimOptions::default()
    })
    .await;
    let sf = jwt_client(&sim);
    sf.ensure_token().await.unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // Each task runs for two and a half token lifetimes, so every task crosses natural expiries.
    let run_for = lifetime * 5 / 2;
    let tasks: Vec<_> = (0..20)
        .map(|task| {
            let sf = sf.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut n = 0;
                // Bounded in time and in count, whatever the machine's speed.
                while (started.elapsed() < run_for || n < 5) && n < 2_000 {
                    let name = format!("T{task}-{n}");
                    let saved = sf
                        .create("Account", &map(json!({"Name": name})))
                        .await
                        .map_err(|e| format!("task {task} call {n}: {e}"))?;
                    let rec = sf
                        .get("Account", &saved.id, Some(&["Name"]))
                        .await
                        .map_err(|e| format!("task {task} call {n}: {e}"))?;
                    assert_eq!(rec["Name"], name.as_str());
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                Ok::<u64, String>(n)
            })
        })
        .collect();
    // Expire every token once the tasks are well under way (bounded poll on the org's call counter).
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::Relaxed) < 40 {
        assert!(Instant::now() < deadline, "tasks made no progress");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    set_faults(&sim, json!({"expire_tokens": true})).await;
    let mut total = 0;
    for task in tasks {
        total += task
            .await
            .expect("task panicked")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(total >= 100);
    assert_eq!(sim.records("Account").len() as u64, 3 + total);
    assert!(sf.token_valid());
}

#[tokio::test]
async fn introspection_names_the_bank_user_behind_a_token() {
    let sim = start().await;
    let sf = jwt_client(&sim);
    let (status, body) = token_response(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "3MVG9demobanka.sandbox"),
            ("client_secret", "demo-bank-a-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bank_token = body["access_token"].as_str().unwrap();
    let calls = api_calls(&sim);
    let seen = sf.introspect(bank_token).await.expect("introspect");
    assert!(seen.active);
    assert_eq!(seen.username.as_deref(), Some("rep@demobanka.sim"));
    assert_eq!(seen.user_id.as_deref(), Some("0055Y00000REPA1QAP"));
    assert_eq!(seen.org_id.as_deref(), Some("00D5Y000001CLNKUA4"));
    assert_eq!(seen.client_id.as_deref(), Some("3MVG9demobanka.sandbox"));
    let now = chrono::Utc::now().timestamp();
    assert!(seen.exp.is_some_and(|exp| exp > now), "{seen:?}");

    let garbage = sf
        .introspect("00D5Y000001CLNK!garbage")
        .await
        .expect("introspect garbage");
    assert!(!garbage.active);
    assert_eq!((garbage.username, garbage.user_id), (None, None));
    assert_eq!(
        api_calls(&sim),
        calls,
        "introspection is not a REST API call"
    );

    // Wrong introspection credentials are a configuration problem.
    let mut settings = settings(
        sim.base_url(),
        "62.0",
        AuthFlow::ClientCredentials(creditlink_app()),
        Duration::from_secs(20),
    );
    if let Some(app) = settings.introspection.as_mut() {
        app.client_secret = "wrong".into();
    }
    let error = SalesforceClient::new(settings)
        .unwrap()
        .introspect(bank_token)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SfError::OAuth { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
}
