//! The outbox state machine: claim, attempts, retry, dead letters, leases, admin, recovery.

use std::time::Duration;

use chrono::Utc;
use creditlink::outbox::{
    AttemptOutcome, DestinationKind, ErrorClass, Lane, ListFilter, OutboxError, State, Transition,
};

use crate::outbox_support::{
    attempt, bank, held, open, open_with_policy, policy, salesforce, secs,
};

const SF: DestinationKind = DestinationKind::Salesforce;

#[tokio::test]
async fn delivered_after_a_retry_keeps_its_attempt_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 1), t0)
        .await
        .expect("enqueue");
    assert_eq!(outbox.counts().await.expect("counts").pending, 1);

    let claimed = outbox
        .claim_due(
            Lane::Interactive,
            SF,
            10,
            t0,
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].state, State::InFlight);
    assert_eq!(claimed[0].lease_until, Some(t0 + secs(30)));
    assert!(
        outbox
            .claim_due(
                Lane::Interactive,
                SF,
                10,
                t0,
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("claim")
            .is_empty()
    );

    let retry = Transition::Retry {
        hint: None,
        rate_limited: false,
    };
    let m = outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t0, AttemptOutcome::Retryable, Some(503)),
            retry,
        )
        .await
        .expect("record");
    assert_eq!((m.state, m.attempts), (State::Pending, 1));
    assert_eq!(m.next_attempt_at, t0 + secs(10));
    assert_eq!(
        m.last_error.as_ref().map(|e| e.class),
        Some(ErrorClass::Retryable)
    );

    // Not due before its time, due after.
    assert!(
        outbox
            .claim_due(
                Lane::Interactive,
                SF,
                10,
                t0 + secs(9),
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("claim")
            .is_empty()
    );
    let t1 = t0 + secs(10);
    assert_eq!(
        outbox
            .claim_due(
                Lane::Interactive,
                SF,
                10,
                t1,
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("claim")
            .len(),
        1
    );
    let done = Transition::Delivered {
        remote_id: Some("a0B000000000001".into()),
    };
    let m = outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t1, AttemptOutcome::Success, Some(201)),
            done,
        )
        .await
        .expect("record");
    assert_eq!(m.state, State::Delivered);
    assert_eq!(m.remote_id.as_deref(), Some("a0B000000000001"));
    assert_eq!(m.completed_at, Some(t1));

    let log = outbox.attempts(id).await.expect("attempts");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].outcome, AttemptOutcome::Retryable);
    assert_eq!(log[1].http_status, Some(201));
    let counts = outbox.counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.in_flight, counts.delivered),
        (0, 0, 1)
    );
    assert_eq!(outbox.oldest_pending_age(t1).await.expect("age"), None);
}

#[tokio::test]
async fn retries_end_dead_by_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open_with_policy(dir.path(), policy(3, Duration::from_secs(86400)));
    let mut now = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), now)
        .await
        .expect("enqueue");
    for n in 1..=3u32 {
        assert_eq!(
            outbox
                .claim_due(Lane::Bulk, SF, 1, now, std::time::Duration::from_secs(5))
                .await
                .expect("claim")
                .len(),
            1
        );
        let retry = Transition::Retry {
            hint: None,
            rate_limited: false,
        };
        let m = outbox
            .record_attempt(
                &held(&outbox, id).await,
                attempt(now, AttemptOutcome::Retryable, Some(500)),
                retry,
            )
            .await
            .expect("record");
        assert_eq!(m.attempts, n);
        if n < 3 {
            assert_eq!(m.state, State::Pending);
            now = m.next_attempt_at;
        } else {
            assert_eq!(m.state, State::Dead);
        }
    }
    assert!(
        outbox
            .claim_due(
                Lane::Bulk,
                SF,
                1,
                now + secs(86400),
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(outbox.counts().await.expect("counts").dead, 1);
    assert_eq!(outbox.attempts(id).await.expect("attempts").len(), 3);
}

#[tokio::test]
async fn retries_end_dead_by_age_and_rate_limits_wait_longer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open_with_policy(dir.path(), policy(50, Duration::from_secs(100)));
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    outbox
        .claim_due(Lane::Bulk, SF, 1, t0, std::time::Duration::from_secs(5))
        .await
        .expect("claim");
    let limited = Transition::Retry {
        hint: None,
        rate_limited: true,
    };
    let m = outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t0, AttemptOutcome::RateLimited, Some(429)),
            limited,
        )
        .await
        .expect("record");
    assert_eq!(m.next_attempt_at, t0 + secs(60), "rate-limit floor applies");

    let t1 = m.next_attempt_at;
    outbox
        .claim_due(Lane::Bulk, SF, 1, t1, std::time::Duration::from_secs(5))
        .await
        .expect("claim");
    // Retry-After of 50 s would land at t0+110 s, past the 100 s max age: Dead.
    let hinted = Transition::Retry {
        hint: Some(Duration::from_secs(50)),
        rate_limited: false,
    };
    let m = outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t1, AttemptOutcome::Retryable, Some(503)),
            hinted,
        )
        .await
        .expect("record");
    assert_eq!(m.state, State::Dead);
}

#[tokio::test]
async fn failed_is_never_claimed_until_an_admin_retries_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 1), t0)
        .await
        .expect("enqueue");
    outbox
        .claim_due(
            Lane::Interactive,
            SF,
            1,
            t0,
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    let m = outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t0, AttemptOutcome::Permanent, Some(400)),
            Transition::Failed,
        )
        .await
        .expect("record");
    assert_eq!(m.state, State::Failed);
    let later = t0 + secs(7 * 86400);
    assert!(
        outbox
            .claim_due(
                Lane::Interactive,
                SF,
                10,
                later,
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("claim")
            .is_empty()
    );

    // Wrong-state admin actions are refused with a clear error.
    let other = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 2), t0)
        .await
        .expect("enqueue");
    assert!(matches!(
        outbox.retry(other).await,
        Err(OutboxError::WrongState {
            actual: State::Pending,
            ..
        })
    ));

    let m = outbox.retry(id).await.expect("retry");
    assert_eq!((m.state, m.attempts), (State::Pending, 1));
    let claimed = outbox
        .claim_due(
            Lane::Interactive,
            SF,
            10,
            Utc::now() + secs(1),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    assert!(claimed.iter().any(|m| m.id == id));
    assert_eq!(
        outbox.attempts(id).await.expect("attempts").len(),
        1,
        "history kept"
    );
}

#[tokio::test]
async fn discard_keeps_the_message_for_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    let m = outbox.discard(id).await.expect("discard");
    assert_eq!(m.state, State::Discarded);
    assert!(
        outbox
            .claim_due(
                Lane::Bulk,
                SF,
                10,
                t0 + secs(1),
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        outbox.get(id).await.expect("get").map(|m| m.state),
        Some(State::Discarded)
    );
    assert!(matches!(
        outbox.discard(id).await,
        Err(OutboxError::WrongState { .. })
    ));
    assert!(matches!(
        outbox.retry(id).await,
        Err(OutboxError::WrongState { .. })
    ));
    assert_eq!(outbox.counts().await.expect("counts").discarded, 1);
}

#[tokio::test]
async fn expired_lease_makes_a_message_claimable_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    assert_eq!(
        outbox
            .claim_due(Lane::Bulk, SF, 1, t0, std::time::Duration::from_secs(5))
            .await
            .expect("claim")
            .len(),
        1
    );
    assert!(
        outbox
            .claim_due(
                Lane::Bulk,
                SF,
                1,
                t0 + secs(29),
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("claim")
            .is_empty()
    );
    let again = outbox
        .claim_due(
            Lane::Bulk,
            SF,
            1,
            t0 + secs(31),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (id, 0));
}

#[tokio::test]
async fn release_without_attempt_does_not_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    outbox
        .claim_due(Lane::Bulk, SF, 1, t0, std::time::Duration::from_secs(5))
        .await
        .expect("claim");
    let m = outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t0, AttemptOutcome::Retryable, None),
            Transition::ReleaseNoAttempt,
        )
        .await
        .expect("release");
    assert_eq!((m.state, m.attempts), (State::Pending, 0));
    assert!(outbox.attempts(id).await.expect("attempts").is_empty());
    // Recording on a message that is not InFlight is refused.
    let refused = outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t0, AttemptOutcome::Success, None),
            Transition::Failed,
        )
        .await;
    assert!(matches!(refused, Err(OutboxError::WrongState { .. })));
}

#[tokio::test]
async fn lanes_and_kinds_are_claimed_separately_oldest_due_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    for n in 0..20 {
        outbox
            .enqueue_at(salesforce("001A", Lane::Bulk, n), t0)
            .await
            .expect("bulk");
    }
    let late = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 100), t0 + secs(2))
        .await
        .expect("late");
    let early = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 101), t0 + secs(1))
        .await
        .expect("early");
    let hook = outbox.enqueue_at(bank("001A"), t0).await.expect("bank");

    let now = t0 + secs(5);
    let interactive = outbox
        .claim_due(
            Lane::Interactive,
            SF,
            10,
            now,
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    let ids: Vec<_> = interactive.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        vec![early, late],
        "only Interactive Salesforce, oldest due first"
    );

    let banks = outbox
        .claim_due(
            Lane::Interactive,
            DestinationKind::Bank,
            10,
            now,
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    assert_eq!(banks.iter().map(|m| m.id).collect::<Vec<_>>(), vec![hook]);

    let bulk = outbox
        .claim_due(Lane::Bulk, SF, 15, now, std::time::Duration::from_secs(5))
        .await
        .expect("claim");
    assert_eq!(bulk.len(), 15);
    assert!(bulk.iter().all(|m| m.lane == Lane::Bulk));
    assert_eq!(outbox.counts().await.expect("counts").in_flight, 18);
    assert_eq!(outbox.counts().await.expect("counts").pending, 5);
}

#[tokio::test]
async fn reopen_returns_in_flight_messages_to_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = Utc::now();
    let (claimed_id, delivered_id) = {
        let outbox = open(dir.path());
        let a = outbox
            .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
            .await
            .expect("a");
        let b = outbox
            .enqueue_at(salesforce("001A", Lane::Bulk, 2), t0)
            .await
            .expect("b");
        assert_eq!(
            outbox
                .claim_due(Lane::Bulk, SF, 2, t0, std::time::Duration::from_secs(5))
                .await
                .expect("claim")
                .len(),
            2
        );
        let done = Transition::Delivered { remote_id: None };
        outbox
            .record_attempt(
                &held(&outbox, b).await,
                attempt(t0, AttemptOutcome::Success, Some(200)),
                done,
            )
            .await
            .expect("record");
        (a, b)
    };
    let outbox = open(dir.path());
    let m = outbox.get(claimed_id).await.expect("get").expect("present");
    assert_eq!(
        (m.state, m.lease_until, m.attempts),
        (State::Pending, None, 0)
    );
    let counts = outbox.counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.in_flight, counts.delivered),
        (1, 0, 1)
    );
    let again = outbox
        .claim_due(
            Lane::Bulk,
            SF,
            10,
            Utc::now() + secs(1),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![claimed_id]
    );
    assert_eq!(
        outbox.attempts(delivered_id).await.expect("attempts").len(),
        1
    );
}

#[tokio::test]
async fn list_filters_by_tenant_state_and_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    let mut a_ids = Vec::new();
    for n in 0..5 {
        a_ids.push(
            outbox
                .enqueue_at(salesforce("001A", Lane::Bulk, n), t0)
                .await
                .expect("a"),
        );
        outbox
            .enqueue_at(salesforce("001AB", Lane::Bulk, n), t0)
            .await
            .expect("ab");
    }
    outbox.discard(a_ids[1]).await.expect("discard");
    let filter = |after, state| ListFilter {
        tenant: Some("001A".into()),
        state,
        lane: None,
        limit: 2,
        after,
    };
    let page1 = outbox.list(&filter(None, None)).await.expect("list");
    assert_eq!(
        page1.iter().map(|m| m.id).collect::<Vec<_>>(),
        a_ids[..2].to_vec()
    );
    let page2 = outbox
        .list(&filter(Some(a_ids[1]), None))
        .await
        .expect("list");
    assert_eq!(
        page2.iter().map(|m| m.id).collect::<Vec<_>>(),
        a_ids[2..4].to_vec()
    );
    let discarded = outbox
        .list(&filter(None, Some(State::Discarded)))
        .await
        .expect("list");
    assert_eq!(
        discarded.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![a_ids[1]]
    );
    let all = outbox
        .list(&ListFilter {
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 10);
    let age = outbox.oldest_pending_age(t0 + secs(3)).await.expect("age");
    assert_eq!(age, Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn wait_terminal_wakes_on_delivery_and_times_out_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 1), t0)
        .await
        .expect("enqueue");
    assert_eq!(
        outbox
            .wait_terminal(id, Duration::from_millis(20))
            .await
            .expect("wait"),
        None
    );

    let waiter = {
        let outbox = outbox.clone();
        tokio::spawn(async move { outbox.wait_terminal(id, Duration::from_secs(10)).await })
    };
    outbox
        .claim_due(
            Lane::Interactive,
            SF,
            1,
            t0,
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("claim");
    let done = Transition::Delivered {
        remote_id: Some("a0B1".into()),
    };
    outbox
        .record_attempt(
            &held(&outbox, id).await,
            attempt(t0, AttemptOutcome::Success, Some(201)),
            done,
        )
        .await
        .expect("record");
    let m = waiter
        .await
        .expect("join")
        .expect("wait")
        .expect("terminal");
    assert_eq!(m.remote_id.as_deref(), Some("a0B1"));
}
