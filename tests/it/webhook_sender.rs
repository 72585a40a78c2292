//! The webhook sender against a tiny axum receiver whose answer each test flips.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use creditlink::bank::{
    Delivery, Endpoint, SendOutcome, SenderConfig, UrlPolicy, WebhookSecret, WebhookSender,
    parse_retry_after, verify,
};
use parking_lot::Mutex;
use url::Url;

use super::webhook_signing::{python_verifier_available, python_verify};

#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok,
    ServerError,
    RateLimited,
    RateLimitedUntilDate,
    Gone,
    BadRequest,
    NotFound,
    Redirect,
    Slow,
}

#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Shared {
    answer: Mutex<Option<Answer>>,
    seen: Mutex<Vec<Seen>>,
}

struct Receiver {
    url: Url,
    shared: Arc<Shared>,
}

impl Receiver {
    async fn start() -> Receiver {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/hooks/bank-a", axum::routing::post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hooks/bank-a").parse().expect("url"),
            shared,
        }
    }

    fn answer(&self, answer: Answer) {
        *self.shared.answer.lock() = Some(answer);
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().clone()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.seen.lock().push(Seen { headers, body });
    let answer = shared.answer.lock().unwrap_or(Answer::Ok);
    match answer {
        Answer::Ok => (StatusCode::NO_CONTENT, "").into_response(),
        Answer::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "boom\nfake log line").into_response()
        }
        Answer::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "120")],
            "slow down",
        )
            .into_response(),
        Answer::RateLimitedUntilDate => {
            let at = (chrono::Utc::now() + chrono::Duration::seconds(3600))
                .to_rfc2822()
                .replace("+0000", "GMT");
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_str(&at).expect("header"));
            response
        }
        Answer::Gone => (StatusCode::GONE, "endpoint removed").into_response(),
        Answer::BadRequest => (StatusCode::BAD_REQUEST, "x".repeat(100_000)).into_response(),
        Answer::NotFound => (StatusCode::NOT_FOUND, "no route").into_response(),
        Answer::Redirect => (
            StatusCode::FOUND,
            [("location", "http://169.254.169.254/")],
            "",
        )
            .into_response(),
        Answer::Slow => std::future::pending().await,
    }
}

fn sandbox_sender(timeout: Duration) -> WebhookSender {
    WebhookSender::new(SenderConfig {
        timeout,
        policy: UrlPolicy {
            allow_http: true,
            allow_private: true,
        },
        ..SenderConfig::default()
    })
    .expect("sender")
}

fn delivery() -> Delivery {
    Delivery {
        webhook_id: "01934b7e-5c1a-7b3e-9a55-3f7e2c9d0a11".into(),
        event_type: "report_request.status_changed".into(),
        payload: serde_json::json!({ "request_id": "01934b7e", "status": "Completed" }),
        timestamp: None,
    }
}

#[tokio::test]
async fn success_carries_standard_webhooks_headers_and_a_verifiable_signature() {
    let receiver = Receiver::start().await;
    let secret = WebhookSecret::generate();
    let endpoint = Endpoint {
        url: receiver.url.clone(),
        secrets: vec![secret.clone()],
    };
    let outcome = sandbox_sender(Duration::from_secs(10))
        .send(&endpoint, &delivery())
        .await
        .expect("send");
    assert!(
        matches!(outcome, SendOutcome::Success { status: 204, .. }),
        "{outcome:?}"
    );

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(get("webhook-id"), "01934b7e-5c1a-7b3e-9a55-3f7e2c9d0a11");
    assert_eq!(get("content-type"), "application/json");
    assert!(get("user-agent").starts_with("creditlink/"));
    let ts = get("webhook-timestamp");
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        verify(
            std::slice::from_ref(&secret),
            &get("webhook-id"),
            &ts,
            &get("webhook-signature"),
            &seen[0].body,
            now,
            300
        ),
        Ok(())
    );
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).expect("json body");
    assert_eq!(body["type"], "report_request.status_changed");
    assert_eq!(body["data"]["status"], "Completed");

    if python_verifier_available() {
        python_verify(
            &secret.expose_whsec(),
            &get("webhook-id"),
            &ts,
            &get("webhook-signature"),
            &seen[0].body,
        )
        .expect("standardwebhooks accepts the request as sent");
    }
}

#[tokio::test]
async fn the_webhook_id_is_stable_across_attempts_and_the_timestamp_is_the_attempt_time() {
    let receiver = Receiver::start().await;
    let endpoint = Endpoint {
        url: receiver.url.clone(),
        secrets: vec![WebhookSecret::generate()],
    };
    let sender = sandbox_sender(Duration::from_secs(10));
    let t1 = chrono::Utc::now() - chrono::Duration::seconds(600);
    let t2 = chrono::Utc::now();
    receiver.answer(Answer::ServerError);
    sender
        .send_at(&endpoint, &delivery(), t1)
        .await
        .expect("first");
    receiver.answer(Answer::Ok);
    sender
        .send_at(&endpoint, &delivery(), t2)
        .await
        .expect("second");
    let seen = receiver.seen();
    let header = |i: usize, name: &str| seen[i].headers[name].to_str().expect("ascii").to_owned();
    assert_eq!(header(0, "webhook-id"), header(1, "webhook-id"));
    assert_eq!(header(0, "webhook-timestamp"), t1.timestamp().to_string());
    assert_eq!(header(1, "webhook-timestamp"), t2.timestamp().to_string());
    assert_ne!(
        header(0, "webhook-signature"),
        header(1, "webhook-signature")
    );
}

#[tokio::test]
async fn rotation_sends_one_signature_per_secret() {
    let receiver = Receiver::start().await;
    let (new, old) = (WebhookSecret::generate(), WebhookSecret::generate());
    let endpoint = Endpoint {
        url: receiver.url.clone(),
        secrets: vec![new, old.clone()],
    };
    sandbox_sender(Duration::from_secs(10))
        .send(&endpoint, &delivery())
        .await
        .expect("send");
    let seen = receiver.seen();
    let h = &seen[0].headers;
    let sig = h["webhook-signature"].to_str().expect("ascii");
    assert_eq!(sig.split(' ').count(), 2);
    let (id, ts) = (
        h["webhook-id"].to_str().expect("id"),
        h["webhook-timestamp"].to_str().expect("ts"),
    );
    let now = chrono::Utc::now().timestamp();
    assert_eq!(verify(&[old], id, ts, sig, &seen[0].body, now, 300), Ok(()));
}

#[tokio::test]
async fn answers_are_classified_in_one_place() {
    let receiver = Receiver::start().await;
    let endpoint = Endpoint {
        url: receiver.url.clone(),
        secrets: vec![WebhookSecret::generate()],
    };
    let sender = sandbox_sender(Duration::from_secs(10));
    let delivery = delivery();
    let send = |answer| {
        receiver.answer(answer);
        sender.send(&endpoint, &delivery)
    };

    match send(Answer::ServerError).await.expect("send") {
        SendOutcome::Retry {
            status: Some(500),
            throttled: false,
            retry_after: None,
            excerpt,
            ..
        } => {
            assert_eq!(
                excerpt, "boom fake log line",
                "control characters are neutralised"
            );
        }
        other => panic!("500: {other:?}"),
    }
    match send(Answer::RateLimited).await.expect("send") {
        SendOutcome::Retry {
            status: Some(429),
            throttled: true,
            retry_after,
            ..
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)));
        }
        other => panic!("429: {other:?}"),
    }
    match send(Answer::RateLimitedUntilDate).await.expect("send") {
        SendOutcome::Retry {
            status: Some(429),
            throttled: true,
            retry_after: Some(after),
            ..
        } => {
            assert!(
                after > Duration::from_secs(3000) && after <= Duration::from_secs(3600),
                "{after:?}"
            );
        }
        other => panic!("429 with date: {other:?}"),
    }
    assert!(matches!(
        send(Answer::Gone).await.expect("send"),
        SendOutcome::Gone { .. }
    ));
    match send(Answer::BadRequest).await.expect("send") {
        SendOutcome::DontRetry {
            status: Some(400),
            excerpt,
            ..
        } => assert!(excerpt.len() <= 200),
        other => panic!("400: {other:?}"),
    }
    assert!(matches!(
        send(Answer::NotFound).await.expect("send"),
        SendOutcome::Retry {
            status: Some(404),
            ..
        }
    ));
    // Redirects are not followed (that would bypass the URL policy): the 302 itself is a failed attempt.
    assert!(matches!(
        send(Answer::Redirect).await.expect("send"),
        SendOutcome::Retry {
            status: Some(302),
            ..
        }
    ));
    assert_eq!(receiver.seen().len(), 7);
}

#[tokio::test]
async fn a_slow_receiver_times_out_as_a_throttled_retry() {
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Slow);
    let endpoint = Endpoint {
        url: receiver.url.clone(),
        secrets: vec![WebhookSecret::generate()],
    };
    let outcome = sandbox_sender(Duration::from_millis(300))
        .send(&endpoint, &delivery())
        .await
        .expect("send");
    assert!(
        matches!(
            outcome,
            SendOutcome::Retry {
                status: None,
                throttled: true,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url: Url = format!("http://{}/hooks", listener.local_addr().expect("addr"))
        .parse()
        .expect("url");
    drop(listener);
    let endpoint = Endpoint {
        url,
        secrets: vec![WebhookSecret::generate()],
    };
    let outcome = sandbox_sender(Duration::from_secs(5))
        .send(&endpoint, &delivery())
        .await
        .expect("send");
    assert!(
        matches!(
            outcome,
            SendOutcome::Retry {
                status: None,
                throttled: false,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_production_policy_refuses_a_loopback_receiver_before_sending() {
    let receiver = Receiver::start().await;
    let endpoint = Endpoint {
        url: receiver.url.clone(),
        secrets: vec![WebhookSecret::generate()],
    };
    let strict = WebhookSender::new(SenderConfig::default()).expect("sender");
    assert!(matches!(
        strict.send(&endpoint, &delivery()).await.expect("send"),
        SendOutcome::DontRetry { .. }
    ));
    let http_only = WebhookSender::new(SenderConfig {
        policy: UrlPolicy {
            allow_http: true,
            allow_private: false,
        },
        ..SenderConfig::default()
    })
    .expect("sender");
    match http_only.send(&endpoint, &delivery()).await.expect("send") {
        SendOutcome::DontRetry { reason, .. } => assert!(reason.contains("loopback"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(
        receiver.seen().is_empty(),
        "nothing may reach a refused address"
    );
}

#[tokio::test]
async fn local_mistakes_are_errors_not_outcomes() {
    let sender = sandbox_sender(Duration::from_secs(1));
    let url: Url = "http://127.0.0.1:9/".parse().expect("url");
    let no_secret = Endpoint {
        url: url.clone(),
        secrets: vec![],
    };
    assert!(sender.send(&no_secret, &delivery()).await.is_err());
    let endpoint = Endpoint {
        url,
        secrets: vec![WebhookSecret::generate()],
    };
    let dotted = Delivery {
        webhook_id: "a.b".into(),
        ..delivery()
    };
    assert!(sender.send(&endpoint, &dotted).await.is_err());
}

#[test]
fn retry_after_parses_seconds_and_dates() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
        .expect("date")
        .with_timezone(&chrono::Utc);
    let headers = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_str(v).expect("header"));
        h
    };
    assert_eq!(
        parse_retry_after(&headers("30"), now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after(&headers("Wed, 25 Nov 2026 12:01:00 GMT"), now),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        parse_retry_after(&headers("Wed, 25 Nov 2026 11:00:00 GMT"), now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after(&headers("soon"), now), None);
    assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
}
