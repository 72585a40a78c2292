//! The bank pusher against the demo bank receivers, over real sockets.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use creditlink::outbox::{
    Destination, DestinationKind, ErrorClass, Lane, ListFilter, Message, State,
};
use creditlink::relay::bank::StepOutcome;
use creditlink::sim::banks::Behaviour;
use parking_lot::Mutex;

use super::bank_relay_support::{
    ACCOUNT, BANK_CONTACT, BUREAU_CONTACT, Harness, SLUG, fast_policy, until,
};
use super::webhook_signing::{python_verifier_available, python_verify};

const LIMIT: Duration = Duration::from_secs(20);
const DAY: Duration = Duration::from_secs(86_400);

/// What the capturing receiver saw: the headers and the raw body of the last request.
type Captured = Arc<Mutex<Option<(HeaderMap, Bytes)>>>;

#[tokio::test]
async fn events_arrive_signed_with_the_message_id_as_webhook_id() {
    let h = Harness::start(fast_policy(20, 8)).await;
    let pusher = h.bank_pusher(DAY);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(h.enqueue_event("report_request.completed", n).await);
    }
    assert_eq!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Worked(3)
    );
    assert_eq!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Idle
    );
    for id in &ids {
        assert_eq!(h.message(*id).await.state, State::Delivered);
        let attempts = h.outbox.attempts(*id).await.expect("attempts");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].http_status, Some(200));
    }
    let inbox = h.receivers.inbox(SLUG).expect("bank");
    assert_eq!(inbox.events.len(), 3);
    assert_eq!(inbox.rejected_signatures, 0);
    for id in &ids {
        let event = inbox
            .events
            .iter()
            .find(|e| e.webhook_id == id.to_string())
            .expect("event for every message id");
        assert!(event.verified);
        assert_eq!(event.body["type"], "report_request.completed");
        assert_eq!(event.body["data"]["status"], "Completed");
        let created = h.message(*id).await.created_at;
        let ts = event.body["timestamp"].as_str().expect("timestamp");
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
        assert_eq!(parsed.timestamp_millis(), created.timestamp_millis());
    }
    // The same events over the HTTP surface an operator uses.
    let listed: serde_json::Value = reqwest::get(h.receivers.url_for(SLUG))
        .await
        .expect("GET inbox")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(3));
    assert_eq!(listed["duplicate_deliveries"], 0);
}

#[tokio::test]
async fn an_outage_is_ridden_out_and_each_event_is_accepted_once() {
    let h = Harness::start(fast_policy(20, 1000)).await;
    let pusher = h.bank_pusher(DAY);
    // The receiver stores events but answers 500, as if it crashed before acknowledging: every retry is
    // a duplicate it must recognise.
    let lost_acks = Behaviour {
        status: 500,
        retry_after: None,
        process: true,
    };
    assert!(h.receivers.set_behaviour(SLUG, lost_acks));
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(h.enqueue_event("report_request.updated", n).await);
    }
    until(LIMIT, "three attempts on every event", || async {
        pusher.try_execute_task().await.expect("step");
        let mut all = true;
        for id in &ids {
            all &= h.message(*id).await.attempts >= 3;
        }
        all.then_some(())
    })
    .await;
    for id in &ids {
        let m = h.message(*id).await;
        assert_eq!(m.state, State::Pending);
        let last = m.last_error.expect("last error");
        assert_eq!(last.class, ErrorClass::Retryable);
        assert_eq!(last.http_status, Some(500));
    }

    // Then a plain outage (nothing stored), then recovery over the operator's HTTP control.
    assert!(h.receivers.set_behaviour(SLUG, Behaviour::failing(503)));
    pusher.try_execute_task().await.expect("step");
    let client = reqwest::Client::new();
    let answer = client
        .put(format!("{}/behaviour", h.receivers.url_for(SLUG)))
        .json(&serde_json::json!({ "status": 200 }))
        .send()
        .await
        .expect("PUT behaviour");
    assert_eq!(answer.status(), 204);
    until(LIMIT, "every event delivered", || async {
        pusher.try_execute_task().await.expect("step");
        let mut all = true;
        for id in &ids {
            all &= h.message(*id).await.state == State::Delivered;
        }
        all.then_some(())
    })
    .await;

    let inbox = h.receivers.inbox(SLUG).expect("bank");
    assert_eq!(
        inbox.events.len(),
        ids.len(),
        "each webhook-id accepted once"
    );
    let mut seen: Vec<_> = inbox.events.iter().map(|e| e.webhook_id.clone()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), ids.len());
    assert!(
        inbox.duplicate_deliveries >= 2 * ids.len() as u64,
        "retries reached the receiver: {}",
        inbox.duplicate_deliveries
    );
    assert!(
        inbox.refused >= 3 * ids.len() as u64,
        "the outage answered every early attempt"
    );
    let state = h
        .bank_pusher(DAY)
        .endpoint_state(super::bank_relay_support::CODE)
        .await
        .expect("state");
    assert!(
        state.health.first_failure_at.is_none(),
        "success reset the clock"
    );
    assert!(state.disabled.is_none());
}

#[tokio::test]
async fn retry_after_of_a_429_is_respected() {
    let h = Harness::start(fast_policy(20, 8)).await;
    let pusher = h.bank_pusher(DAY);
    let throttled = Behaviour {
        status: 429,
        retry_after: Some(120),
        process: false,
    };
    assert!(h.receivers.set_behaviour(SLUG, throttled));
    let id = h.enqueue_event("report_request.updated", 1).await;
    assert_eq!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Worked(1)
    );
    let m = h.message(id).await;
    assert_eq!(m.state, State::Pending);
    let last = m.last_error.expect("last error");
    assert_eq!(last.class, ErrorClass::RateLimited);
    assert_eq!(last.http_status, Some(429));
    let attempt = &h.outbox.attempts(id).await.expect("attempts")[0];
    assert!(
        m.next_attempt_at >= attempt.finished_at + chrono::Duration::seconds(120),
        "next attempt {} is before the Retry-After hint",
        m.next_attempt_at
    );
    // Not due yet, so the next step has nothing to do.
    assert_eq!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Idle
    );
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_later_events_fail_until_enabled() {
    let h = Harness::start(fast_policy(20, 8)).await;
    let pusher = h.bank_pusher(DAY);
    assert!(h.receivers.set_behaviour(SLUG, Behaviour::failing(410)));
    let first = h.enqueue_event("report_request.completed", 1).await;
    pusher.try_execute_task().await.expect("step");
    assert_eq!(h.message(first).await.state, State::Failed);
    let state = pusher
        .endpoint_state(super::bank_relay_support::CODE)
        .await
        .expect("state");
    assert!(state.disabled.expect("disabled").reason.contains("410"));

    // The receiver is healthy again, but the endpoint stays disabled until an admin says otherwise.
    assert!(h.receivers.set_behaviour(SLUG, Behaviour::ok()));
    let second = h.enqueue_event("report_request.completed", 2).await;
    pusher.try_execute_task().await.expect("step");
    let m = h.message(second).await;
    assert_eq!(m.state, State::Failed);
    assert_eq!(
        m.last_error.and_then(|e| e.code).as_deref(),
        Some("endpoint_disabled")
    );
    assert_eq!(h.receivers.inbox(SLUG).expect("bank").events.len(), 0);
    assert_eq!(
        failing_notices(&h).await.len(),
        2,
        "bank contact and bureau, once"
    );

    assert!(
        pusher
            .enable_endpoint(super::bank_relay_support::CODE)
            .await
            .expect("enable")
    );
    h.outbox.retry(second).await.expect("admin retry");
    pusher.try_execute_task().await.expect("step");
    assert_eq!(h.message(second).await.state, State::Delivered);
}

#[tokio::test]
async fn continuous_failure_disables_and_mails_the_contacts() {
    let h = Harness::start(fast_policy(10, 1000)).await;
    let pusher = h.bank_pusher(Duration::from_millis(200));
    assert!(h.receivers.set_behaviour(SLUG, Behaviour::failing(500)));
    let id = h.enqueue_event("report_request.action_required", 1).await;
    until(LIMIT, "the endpoint to be disabled", || async {
        pusher.try_execute_task().await.expect("step");
        pusher
            .endpoint_state(super::bank_relay_support::CODE)
            .await
            .expect("state")
            .disabled
    })
    .await;
    until(LIMIT, "the pending event to fail", || async {
        pusher.try_execute_task().await.expect("step");
        (h.message(id).await.state == State::Failed).then_some(())
    })
    .await;
    let notices = failing_notices(&h).await;
    let mut to: Vec<_> = notices
        .iter()
        .map(|m| match &m.destination {
            Destination::Email { to, .. } => to.clone(),
            _ => unreachable!("filtered to e-mails"),
        })
        .collect();
    to.sort();
    assert_eq!(to, vec![BUREAU_CONTACT.to_owned(), BANK_CONTACT.to_owned()]);

    // The notices go out through the e-mail pusher like any other message.
    let mailer = h.email_pusher();
    until(LIMIT, "both notices delivered", || async {
        mailer.try_execute_task().await.expect("step");
        (h.sink.mails().len() == 2).then_some(())
    })
    .await;
    let mail = &h.sink.mails()[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Webhook deliveries to Demo Bank A are disabled")
    );
    assert!(mail.body().contains("failing continuously since"));
}

#[tokio::test]
async fn a_real_delivery_verifies_with_the_standardwebhooks_package() {
    if !python_verifier_available() {
        return;
    }
    let h = Harness::start(fast_policy(20, 8)).await;
    let captured: Captured = Arc::default();
    let store = captured.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                *store.lock() = Some((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = url::Url::parse(&format!(
        "http://{}/hook",
        listener.local_addr().expect("addr")
    ))
    .expect("url");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let pusher = h.bank_pusher_to(url, DAY);
    let id = h.enqueue_event("report_request.rejected", 7).await;
    pusher.try_execute_task().await.expect("step");
    assert_eq!(h.message(id).await.state, State::Delivered);
    let (headers, body) = captured.lock().clone().expect("captured a delivery");
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(get("webhook-id"), id.to_string());
    python_verify(
        &h.secret.expose_whsec(),
        &get("webhook-id"),
        &get("webhook-timestamp"),
        &get("webhook-signature"),
        &body,
    )
    .expect("standardwebhooks accepts the delivery");
}

/// The `endpoint_failing` e-mails queued for the demo bank.
async fn failing_notices(h: &Harness) -> Vec<Message> {
    h.outbox
        .list(&ListFilter {
            tenant: Some(ACCOUNT.into()),
            lane: Some(Lane::Interactive),
            limit: 100,
            ..ListFilter::default()
        }).await
        .expect("list")
        .into_iter()
        .filter(|m| {
            m.destination.kind() == DestinationKind::Email
                && matches!(&m.destination, Destination::Email { template, .. } if template == "endpoint_failing")
        })
        .collect()
}

#[tokio::test]
async fn events_for_unknown_banks_or_banks_without_a_url_fail_with_a_reason() {
    let h = Harness::start(fast_policy(20, 8)).await;
    let sender = creditlink::bank::WebhookSender::new(Default::default()).expect("sender");
    let mut no_url = h.target(h.receivers.url_for(SLUG));
    no_url.endpoint = None;
    let pusher = creditlink::relay::bank::BankPusher::new(
        h.outbox.clone(),
        sender,
        vec![no_url],
        Default::default(),
    )
    .expect("pusher");
    let without_url = h.enqueue_event("report_request.updated", 1).await;
    let unknown = h
        .outbox
        .enqueue(creditlink::outbox::NewMessage {
            tenant: ACCOUNT.into(),
            lane: Lane::Bulk,
            destination: Destination::Bank {
                endpoint: "NOPE".into(),
                event: "report_request.updated".into(),
            },
            payload: serde_json::json!({}),
            mapping_version: None,
        })
        .await
        .expect("enqueue");
    assert_eq!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Worked(2)
    );
    for (id, code) in [(without_url, "no_webhook_url"), (unknown, "unknown_bank")] {
        let m = h.message(id).await;
        assert_eq!(m.state, State::Failed);
        let last = m.last_error.expect("last error");
        assert_eq!(last.code.as_deref(), Some(code));
        assert!(last.message.is_some_and(|text| !text.is_empty()));
    }
}

#[tokio::test]
async fn the_run_loop_delivers_on_wake_up_and_stops_on_shutdown() {
    let h = Harness::start(fast_policy(20, 8)).await;
    let pusher = h.bank_pusher(DAY);
    let heartbeat = creditlink::ops::Heartbeat::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(pusher.clone().run(stop.clone(), heartbeat.clone()));
    let id = h.enqueue_event("report_request.completed", 1).await;
    pusher.wake();
    until(LIMIT, "delivery by the run loop", || async {
        (h.message(id).await.state == State::Delivered).then_some(())
    })
    .await;
    assert!(heartbeat.check(Duration::from_secs(5))().is_ok());
    stop.cancel();
    tokio::time::timeout(LIMIT, task)
        .await
        .expect("stops promptly")
        .expect("no panic");
}
