//! The Salesforce pusher against the simulated org, driven one step at a time.

use std::collections::HashMap;
use std::time::Duration;

use creditlink::outbox::{Lane, State};
use creditlink::relay::{PusherSettings, SalesforcePusher, StepOutcome};

use crate::relay_support::*;

/// Steps until a step finds nothing to do; returns the outcomes of the working steps.
async fn drain(pusher: &SalesforcePusher) -> Vec<StepOutcome> {
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        match pusher.try_execute_task().await.expect("step") {
            StepOutcome::Idle => return outcomes,
            other => outcomes.push(other),
        }
    }
    panic!("the pusher never became idle: {outcomes:?}");
}

#[tokio::test]
async fn four_hundred_fifty_requests_take_three_calls() {
    let rig = Rig::start(slow_policy()).await;
    let ids = rig.enqueue_requests("crr", 450, Lane::Interactive).await;
    let pusher = rig.pusher(settings());

    let outcomes = drain(&pusher).await;
    let delivered: Vec<usize> = outcomes
        .iter()
        .map(|o| match o {
            StepOutcome::Worked {
                delivered,
                retried: 0,
                failed: 0,
            } => *delivered,
            other => panic!("unexpected step outcome {other:?}"),
        })
        .collect();
    assert_eq!(delivered, [200, 200, 50]);
    assert_eq!(rig.collection_upserts().await, 3);
    assert_eq!(rig.api_calls().await, 3, "no call beyond the three upserts");

    let by_key = rig.records_by_key().await;
    assert_eq!(by_key.len(), 450);
    assert!(by_key.values().all(|n| *n == 1), "a key was written twice");

    let ids_by_key: HashMap<String, String> = rig
        .sim
        .records(OBJECT)
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get(KEY)?.as_str()?.to_owned(),
                r.get("Id")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let message = rig.message(*id).await;
        assert_eq!(message.state, State::Delivered);
        assert_eq!(message.attempts, 1);
        let key = format!("crr-{i}");
        assert_eq!(message.remote_id.as_ref(), ids_by_key.get(&key), "{key}");
    }
    let attempts = rig.outbox.attempts(ids[0]).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].http_status, Some(200));
}

#[tokio::test]
async fn a_permanent_record_error_fails_only_that_message() {
    let rig = Rig::start(slow_policy()).await;
    let good = rig.enqueue_requests("ok", 4, Lane::Interactive).await;
    let bad = rig
        .outbox
        .enqueue(request_with("bad-1", Lane::Interactive, "Curiosity"))
        .await
        .expect("enqueue");
    let pusher = rig.pusher(settings());

    let outcome = pusher.try_execute_task().await.expect("step");
    assert_eq!(
        outcome,
        StepOutcome::Worked {
            delivered: 4,
            retried: 0,
            failed: 1
        }
    );
    assert_eq!(rig.states(&good).await.get(&State::Delivered), Some(&4));

    let failed = rig.message(bad).await;
    assert_eq!(failed.state, State::Failed, "failed at once, not retried");
    assert_eq!(failed.attempts, 1);
    let last = failed.last_error.expect("last error");
    assert_eq!(
        last.code.as_deref(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    let text = last.message.expect("Salesforce's message");
    assert!(text.contains("bad value for restricted picklist"), "{text}");
    let attempts = rig.outbox.attempts(bad).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].error_code.as_deref(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert_eq!(rig.records_by_key().await.len(), 4);
    assert_eq!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Idle
    );
}

#[tokio::test]
async fn interactive_messages_go_first() {
    let rig = Rig::start(slow_policy()).await;
    // Bulk is queued first (older) and still must not hold the report requests back.
    let bulk = rig.enqueue_requests("feed", 300, Lane::Bulk).await;
    let interactive = rig.enqueue_requests("report", 5, Lane::Interactive).await;
    let pusher = rig.pusher(settings());

    let first = pusher.try_execute_task().await.expect("step");
    assert_eq!(
        first,
        StepOutcome::Worked {
            delivered: 200,
            retried: 0,
            failed: 0
        }
    );
    assert_eq!(rig.collection_upserts().await, 1);
    assert_eq!(
        rig.states(&interactive).await.get(&State::Delivered),
        Some(&5)
    );
    let bulk_states = rig.states(&bulk).await;
    assert_eq!(bulk_states.get(&State::Delivered), Some(&195));
    assert_eq!(bulk_states.get(&State::Pending), Some(&105));

    drain(&pusher).await;
    assert_eq!(rig.states(&bulk).await.get(&State::Delivered), Some(&300));
    assert_eq!(rig.collection_upserts().await, 2);
}

/// One bank's backlog does not hold another bank's requests back: the first batch after a flood
/// already carries the other bank's requests (issue 12, item 4).
#[tokio::test]
async fn a_flooding_bank_does_not_hold_back_another() {
    let rig = Rig::start(slow_policy()).await;
    let flood = rig.enqueue_requests("flood", 450, Lane::Interactive).await;
    let mut other = Vec::new();
    for i in 0..3 {
        let mut new = request(&format!("other-{i}"), Lane::Interactive);
        new.tenant = "0015Y00000BANKBQB5".to_owned();
        other.push(rig.outbox.enqueue(new).await.expect("enqueue"));
    }
    let pusher = rig.pusher(settings());

    let first = pusher.try_execute_task().await.expect("step");
    assert!(
        matches!(first, StepOutcome::Worked { delivered: 200, .. }),
        "{first:?}"
    );
    assert_eq!(rig.states(&other).await.get(&State::Delivered), Some(&3));
    assert_eq!(rig.states(&flood).await.get(&State::Delivered), Some(&197));
    drain(&pusher).await;
    assert_eq!(rig.states(&flood).await.get(&State::Delivered), Some(&450));
}

#[tokio::test]
async fn a_second_message_for_the_same_record_updates_it() {
    let rig = Rig::start(slow_policy()).await;
    let pusher = rig.pusher(settings());
    let first = rig
        .outbox
        .enqueue(request("same-key", Lane::Interactive))
        .await
        .expect("enqueue");
    drain(&pusher).await;
    let replay = rig
        .outbox
        .enqueue(request("same-key", Lane::Interactive))
        .await
        .expect("enqueue");
    // Two more for one record in one step: they go in consecutive calls, never together.
    let third = rig
        .outbox
        .enqueue(request("same-key", Lane::Interactive))
        .await
        .expect("enqueue");
    drain(&pusher).await;

    let by_key = rig.records_by_key().await;
    assert_eq!(by_key.get("same-key"), Some(&1));
    let remote = rig.message(first).await.remote_id;
    assert!(remote.is_some());
    for id in [replay, third] {
        let message = rig.message(id).await;
        assert_eq!(message.state, State::Delivered);
        assert_eq!(message.remote_id, remote);
    }
}

#[tokio::test]
async fn resending_after_a_crash_creates_no_second_record() {
    let Rig {
        sim,
        outbox,
        client,
        dir,
    } = Rig::start(slow_policy()).await;
    let id = outbox
        .enqueue(request("crash-1", Lane::Interactive))
        .await
        .expect("enqueue");
    // A worker claims the message and reaches Salesforce, then dies before recording the attempt.
    let claimed = outbox
        .claim_due(
            Lane::Interactive,
            creditlink::outbox::DestinationKind::Salesforce,
            10,
            chrono::Utc::now(),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let record = claimed[0]
        .payload
        .as_object()
        .cloned()
        .expect("object payload");
    let results = client
        .collections_upsert(OBJECT, KEY, &[record])
        .await
        .expect("direct upsert");
    assert!(results[0].success);
    drop(outbox);

    // Restart: the InFlight message is Pending again and is sent a second time.
    let outbox = open_outbox(&dir, slow_policy());
    assert_eq!(
        outbox.get(id).await.expect("get").expect("message").state,
        State::Pending
    );
    let pusher = SalesforcePusher::new(outbox.clone(), client, settings()).expect("pusher");
    drain(&pusher).await;

    let message = outbox.get(id).await.expect("get").expect("message");
    assert_eq!(message.state, State::Delivered);
    assert_eq!(message.remote_id, results[0].id);
    let with_key: Vec<_> = sim
        .records(OBJECT)
        .into_iter()
        .filter(|r| r.get(KEY).and_then(|v| v.as_str()) == Some("crash-1"))
        .collect();
    assert_eq!(with_key.len(), 1);
}

#[tokio::test]
async fn a_lingering_batch_collects_a_burst_and_goes_when_full() {
    let rig = Rig::start(slow_policy()).await;
    let pusher = rig.pusher(PusherSettings {
        batch_max: 10,
        // Long enough that only a full batch ends it early.
        linger: Duration::from_secs(20),
        ..settings()
    });
    let first = rig
        .outbox
        .enqueue(request("burst-0", Lane::Interactive))
        .await
        .expect("enqueue");
    let outbox = rig.outbox.clone();
    let wake = pusher.notifier();
    let producer = tokio::spawn(async move {
        // Once the step holds the first message, the rest of the burst arrives.
        until(Duration::from_secs(10), "the first claim", || {
            let outbox = outbox.clone();
            async move {
                outbox.get(first).await.ok().flatten().map(|m| m.state) == Some(State::InFlight)
            }
        })
        .await;
        for i in 1..10 {
            outbox
                .enqueue(request(&format!("burst-{i}"), Lane::Interactive))
                .await
                .expect("enqueue");
            wake.notify_one();
        }
    });
    let outcome = tokio::time::timeout(Duration::from_secs(15), pusher.try_execute_task())
        .await
        .expect("a full batch does not wait out the linger")
        .expect("step");
    producer.await.expect("producer");
    assert_eq!(
        outcome,
        StepOutcome::Worked {
            delivered: 10,
            retried: 0,
            failed: 0
        }
    );
    assert_eq!(rig.collection_upserts().await, 1);
}

#[tokio::test]
async fn attempts_usage_and_latency_reach_the_metrics() {
    let handle = creditlink::ops::metrics::install();
    let rig = Rig::start(slow_policy()).await;
    rig.enqueue_requests("metrics", 3, Lane::Interactive).await;
    rig.outbox
        .enqueue(request_with("metrics-bad", Lane::Interactive, "Curiosity"))
        .await
        .expect("enqueue");
    let pusher = rig.pusher(settings());
    drain(&pusher).await;

    let text = handle.render();
    for expected in [
        r#"creditlink_delivery_attempts_total{destination="salesforce",outcome="success",code="OK"}"#,
        r#"creditlink_delivery_attempts_total{destination="salesforce",outcome="permanent",code="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}"#,
        "creditlink_salesforce_api_usage ",
        "creditlink_salesforce_api_limit ",
        "creditlink_salesforce_batch_records_count",
        "creditlink_intake_to_salesforce_seconds_count",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}
