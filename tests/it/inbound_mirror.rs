//! The mirror and the poller against the simulated org: one event per real state change whatever the push
//! does, echo suppression, the poll as a safety net, the report in the vault (and nowhere in clear), replays.

use creditlink::inbound::{MirrorOutcome, SkipReason};
use creditlink::outbox::{Destination, ListFilter};
use creditlink::vault::Actor;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::inbound_support::{self, CONTACT, ORG_ID, PUBLIC_URL, envelope, pdf_with_marker};
use crate::sim_support::INTEGRATION_USER;

#[tokio::test]
async fn duplicated_and_reordered_pushes_give_one_event_per_change_and_the_latest_state_wins() {
    let h = inbound_support::start().await;
    let (id, key) = h.create_request().await;
    // creditlink's own create is not echoed.
    assert_eq!(
        h.post(
            None,
            envelope(ORG_ID, &[("04l000000000001AAA", &id, "New")])
        )
        .await
        .0,
        200
    );
    assert!(matches!(
        h.drain().await.as_slice(),
        [MirrorOutcome::Skipped {
            reason: SkipReason::Echo,
            ..
        }]
    ));

    h.bureau_edit(&id, json!({ "Status__c": "In Progress" }), None)
        .await;
    let in_progress = envelope(ORG_ID, &[("04l000000000002AAA", &id, "In Progress")]);
    h.post(None, in_progress.clone()).await;
    h.drain().await;

    h.attach_pdf(&id, &pdf_with_marker("report-one")).await;
    h.bureau_edit(&id, json!({ "Status__c": "Completed" }), None)
        .await;
    // Completed arrives twice, then the stale In Progress notification is redelivered and a late one with a
    // new id shows up: all of them re-read the record, which is Completed.
    let completed = envelope(ORG_ID, &[("04l000000000003AAA", &id, "Completed")]);
    h.post(None, completed.clone()).await;
    h.post(None, completed).await;
    h.post(None, in_progress).await;
    h.post(
        None,
        envelope(ORG_ID, &[("04l000000000004AAA", &id, "In Progress")]),
    )
    .await;
    h.drain().await;

    let events = h.bank_events().await;
    let kinds: Vec<_> = events
        .iter()
        .map(|m| match &m.destination {
            Destination::Bank { event, endpoint } => (endpoint.clone(), event.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("DBA".to_string(), "report_request.in_progress".to_string()),
            ("DBA".to_string(), "report_request.completed".to_string()),
        ]
    );
    assert_eq!(events[0].payload["status"], "in_progress");
    let last = &events[1].payload;
    assert_eq!(last["id"], key.as_str());
    assert_eq!(last["salesforce_id"], id.as_str());
    assert_eq!(last["status"], "completed");
    assert_eq!(last["reference"], "LN-2026-000123");
    assert!(last["changed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        last["report"]["url"],
        format!("{PUBLIC_URL}/api/v1/report-requests/{key}/report")
    );
    assert!(
        events
            .iter()
            .all(|m| m.tenant == crate::sim_support::BANK_A)
    );
    assert_eq!(h.inbound.state().hint_count().await.expect("hint count"), 0);
}

#[tokio::test]
async fn a_change_by_the_integration_user_is_not_echoed() {
    let h = inbound_support::start().await;
    let (id, _) = h.create_request().await;
    h.bureau_edit(
        &id,
        json!({ "Status_Reason__c": "resent by creditlink" }),
        Some(INTEGRATION_USER),
    )
    .await;
    h.post(
        None,
        envelope(ORG_ID, &[("04l000000000005AAA", &id, "New")]),
    )
    .await;
    let outcomes = h.drain().await;
    assert!(
        matches!(
            outcomes.as_slice(),
            [MirrorOutcome::Skipped {
                reason: SkipReason::Echo,
                ..
            }]
        ),
        "{outcomes:?}"
    );
    assert!(h.messages().await.is_empty());
}

#[tokio::test]
async fn a_lost_push_is_caught_by_the_poll() {
    let h = inbound_support::start().await;
    let (id, key) = h.create_request().await;
    h.bureau_edit(
        &id,
        json!({ "Status__c": "Action Required", "Status_Reason__c": "Consent form unreadable" }),
        None,
    )
    .await;
    // No Outbound Message at all: Salesforce gave up on it.
    let poll = h.inbound.poll_once().await.expect("poll");
    assert!(poll.hinted >= 1, "{poll:?}");
    h.drain().await;

    let messages = h.messages().await;
    let event = messages
        .iter()
        .find(|m| matches!(m.destination, Destination::Bank { .. }))
        .expect("a bank event");
    assert!(
        matches!(&event.destination, Destination::Bank { event, .. } if event == "report_request.action_required")
    );
    assert_eq!(event.payload["reason"], "Consent form unreadable");
    assert_eq!(event.payload["report"], serde_json::Value::Null);
    let email = messages
        .iter()
        .find(|m| matches!(m.destination, Destination::Email { .. }))
        .expect("an e-mail to the bank contact");
    assert_eq!(
        email.destination,
        Destination::Email {
            to: CONTACT.into(),
            template: "action_required".into()
        }
    );
    assert_eq!(email.payload["id"], key.as_str());
    assert_eq!(email.payload["bank_name"], "Demo Bank A");
    assert_eq!(email.payload["reason"], "Consent form unreadable");
    assert_eq!(messages.len(), 2);

    // The next poll sees the same record in its overlap window: no new event.
    h.inbound.poll_once().await.expect("poll again");
    h.drain().await;
    assert_eq!(h.messages().await.len(), 2);
}

#[tokio::test]
async fn a_completed_report_is_in_the_vault_encrypted_and_nowhere_in_clear() {
    let h = inbound_support::start().await;
    let (id, key) = h.create_request().await;
    let marker = "PLAINTEXT-MARKER-4b1f0c9e";
    let pdf = pdf_with_marker(marker);
    h.attach_pdf(&id, &pdf).await;
    h.bureau_edit(&id, json!({ "Status__c": "Completed" }), None)
        .await;
    h.post(
        None,
        envelope(ORG_ID, &[("04l000000000006AAA", &id, "Completed")]),
    )
    .await;
    h.drain().await;

    let events = h.bank_events().await;
    assert_eq!(events.len(), 1);
    let report = &events[0].payload["report"];
    let sha = hex::encode(Sha256::digest(&pdf));
    assert_eq!(report["sha256"], sha.as_str());
    assert_eq!(report["size"], pdf.len());

    let (bytes, stored) = h
        .inbound
        .vault()
        .get(&Actor::System, &key)
        .expect("decrypts");
    assert_eq!(bytes, pdf);
    assert_eq!(stored.sha256_hex, sha);

    assert_eq!(
        inbound_support::any_file_contains(h.dir.path(), marker.as_bytes()),
        None,
        "PDF plaintext found on disk"
    );
}

#[tokio::test]
async fn replaying_a_hint_or_reopening_enqueues_no_second_event() {
    let sim = crate::sim_support::start().await;
    let dir = inbound_support::data_dir();
    let settings = || inbound_support::settings(Vec::new());
    let (store, outbox, client, inbound) =
        inbound_support::open(&sim, dir.path(), settings()).await;
    let fields = serde_json::from_value(json!({
        "Request_Key__c": uuid::Uuid::now_v7().to_string(), "Bank__c": crate::sim_support::BANK_A,
        "Subject_Type__c": "Person", "Purpose__c": "Other",
    }))
    .unwrap();
    let id = client
        .create("Credit_Report_Request__c", &fields)
        .await
        .expect("create")
        .id;
    let edit =
        json!({ "fields": { "Status__c": "Rejected", "Status_Reason__c": "Subject unknown" } });
    let resp = crate::sim_support::client()
        .patch(format!(
            "{}/__sim/records/Credit_Report_Request__c/{id}",
            sim.base_url()
        ))
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    inbound.state().add_hint(&id).await.unwrap();
    let first = inbound.mirror_step().await.unwrap();
    assert!(
        matches!(first.as_slice(), [MirrorOutcome::Mirrored { event, .. }] if event == "report_request.rejected"),
        "{first:?}"
    );
    async fn count(outbox: &creditlink::outbox::Outbox) -> usize {
        outbox
            .list(&ListFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }
    assert_eq!(count(&outbox).await, 2, "one event and one e-mail");

    // The same hint processed again: unchanged, nothing queued.
    inbound.state().add_hint(&id).await.unwrap();
    assert!(matches!(
        inbound.mirror_step().await.unwrap().as_slice(),
        [MirrorOutcome::Unchanged { .. }]
    ));
    assert_eq!(count(&outbox).await, 2);

    // A restart on the same data dir: the mirrored state survived.
    drop((inbound, outbox, client, store));
    let (_store, outbox, _client, reopened) =
        inbound_support::open(&sim, dir.path(), settings()).await;
    reopened.state().add_hint(&id).await.unwrap();
    let outcome = reopened.mirror_step().await.expect("step");
    assert!(
        matches!(outcome.as_slice(), [MirrorOutcome::Unchanged { .. }]),
        "{outcome:?}"
    );
    assert_eq!(count(&outbox).await, 2);
}

#[tokio::test]
async fn the_running_worker_is_woken_by_a_push_and_stops_on_shutdown() {
    let h = inbound_support::start().await;
    let (id, _) = h.create_request().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let heartbeat = creditlink::ops::Heartbeat::new();
    let worker = {
        let inbound = h.inbound.clone();
        let (shutdown, heartbeat) = (shutdown.clone(), heartbeat.clone());
        tokio::spawn(async move { inbound.run(shutdown, heartbeat).await })
    };
    h.bureau_edit(&id, json!({ "Status__c": "In Progress" }), None)
        .await;
    h.post(
        None,
        envelope(ORG_ID, &[("04l000000000007AAA", &id, "In Progress")]),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.bank_events().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(h.bank_events().await.len(), 1);
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), worker)
        .await
        .expect("worker stops on shutdown")
        .expect("worker did not panic");
    assert!(heartbeat.silence() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn completed_before_the_file_is_attached_is_retried_not_lost() {
    let h = inbound_support::start().await;
    let (id, _) = h.create_request().await;
    h.bureau_edit(&id, json!({ "Status__c": "Completed" }), None)
        .await;
    h.post(
        None,
        envelope(ORG_ID, &[("04l000000000008AAA", &id, "Completed")]),
    )
    .await;
    let outcomes = h.drain().await;
    assert!(
        matches!(outcomes.as_slice(), [MirrorOutcome::Deferred { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(
        h.inbound.state().hint_count().await.expect("hint count"),
        1,
        "the hint waits for its retry"
    );
    assert!(h.messages().await.is_empty());

    h.attach_pdf(&id, &pdf_with_marker("late-file")).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let outcome = h.inbound.mirror_step().await.expect("step");
        if let [MirrorOutcome::Mirrored { event, .. }] = outcome.as_slice() {
            assert_eq!(event, "report_request.completed");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not retried: {outcome:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(h.bank_events().await.len(), 1);
    assert_eq!(h.inbound.state().hint_count().await.expect("hint count"), 0);
}
