//! The e-mail pusher against the local SMTP sink, over real sockets.

use std::time::Duration;

use creditlink::outbox::{Destination, ErrorClass, Lane, MessageId, NewMessage, State};
use creditlink::relay::bank::StepOutcome;

use super::bank_relay_support::{ACCOUNT, Harness, fast_policy, until};

const LIMIT: Duration = Duration::from_secs(20);
const TO: &str = "maria@bank-a.example";

async fn enqueue_rejected(h: &Harness, reference: &str) -> MessageId {
    h.outbox
        .enqueue(NewMessage {
            tenant: ACCOUNT.into(),
            lane: Lane::Interactive,
            destination: Destination::Email {
                to: TO.into(),
                template: "rejected".into(),
            },
            payload: serde_json::json!({
                "bank_name": "Demo Bank A",
                "request_id": "0193a1b2-0000-7000-8000-000000000001",
                "reference": reference,
                "reason": "consent is older than 90 days",
                "status_url": "http://127.0.0.1:8080/api/v1/report-requests/0193a1b2",
            }),
            mapping_version: None,
        })
        .await
        .expect("enqueue")
}

#[tokio::test]
async fn a_notice_arrives_with_its_subject_body_and_no_injected_headers() {
    let h = Harness::start(fast_policy(20, 5)).await;
    let mailer = h.email_pusher();
    let id = enqueue_rejected(&h, "LN-2026-000123\r\nBcc: thief@evil.example").await;
    assert_eq!(
        mailer.try_execute_task().await.expect("step"),
        StepOutcome::Worked(1)
    );
    assert_eq!(
        h.outbox.get(id).await.expect("get").expect("exists").state,
        State::Delivered
    );

    let mails = h.sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, vec![TO.to_owned()]);
    assert_eq!(mail.from, "creditlink@bureau.example");
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Credit report request LN-2026-000123  Bcc: thief@evil.example was rejected")
    );
    assert!(mail.header("Bcc").is_none(), "no header was injected");
    let head = mail.data.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
        "{head}"
    );
    assert!(
        mail.body()
            .contains("Reason: consent is older than 90 days")
    );
    assert!(mail.body().contains("Dear Demo Bank A,"));

    // The sandbox exposes the same mail over HTTP.
    let listed: serde_json::Value = reqwest::get(h.receivers.base_url.join("mail").expect("url"))
        .await
        .expect("GET /mail")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_permanent_smtp_refusal_fails_the_message() {
    let h = Harness::start(fast_policy(20, 5)).await;
    let mailer = h.email_pusher();
    h.sink.reject_rcpt(550, 1);
    let id = enqueue_rejected(&h, "LN-1").await;
    mailer.try_execute_task().await.expect("step");
    let m = h.outbox.get(id).await.expect("get").expect("exists");
    assert_eq!(m.state, State::Failed);
    let last = m.last_error.expect("last error");
    assert_eq!(last.class, ErrorClass::Permanent);
    assert_eq!(last.code.as_deref(), Some("smtp_550"));
    assert!(h.sink.mails().is_empty());
}

#[tokio::test]
async fn a_transient_smtp_refusal_is_retried_until_delivered() {
    let h = Harness::start(fast_policy(20, 5)).await;
    let mailer = h.email_pusher();
    h.sink.reject_rcpt(451, 2);
    let id = enqueue_rejected(&h, "LN-2").await;
    mailer.try_execute_task().await.expect("step");
    let m = h.outbox.get(id).await.expect("get").expect("exists");
    assert_eq!(m.state, State::Pending);
    assert_eq!(
        m.last_error.and_then(|e| e.code).as_deref(),
        Some("smtp_451")
    );
    until(LIMIT, "the mail to be delivered", || async {
        mailer.try_execute_task().await.expect("step");
        let m = h.outbox.get(id).await.expect("get").expect("exists");
        (m.state == State::Delivered).then_some(m)
    })
    .await;
    assert_eq!(h.outbox.attempts(id).await.expect("attempts").len(), 3);
    assert_eq!(h.sink.mails().len(), 1);
}

#[tokio::test]
async fn unknown_templates_and_missing_variables_fail_at_once() {
    let h = Harness::start(fast_policy(20, 5)).await;
    let mailer = h.email_pusher();
    let id = h
        .outbox
        .enqueue(NewMessage {
            tenant: ACCOUNT.into(),
            lane: Lane::Interactive,
            destination: Destination::Email {
                to: TO.into(),
                template: "action_required".into(),
            },
            payload: serde_json::json!({ "bank_name": "Demo Bank A" }),
            mapping_version: None,
        })
        .await
        .expect("enqueue");
    mailer.try_execute_task().await.expect("step");
    let m = h.outbox.get(id).await.expect("get").expect("exists");
    assert_eq!(m.state, State::Failed);
    assert_eq!(
        m.last_error.and_then(|e| e.code).as_deref(),
        Some("template")
    );
}
