//! The retention part of the queue contract (run per backend by `outbox_contract`'s `backend_tests!`):
//! payloads of terminal messages erased after the payload retention, history deleted after the history
//! retention, in batches, with counts, idempotency replays and admin moves behaving as documented.

use std::time::Duration;

use chrono::{DateTime, Utc};
use creditlink::outbox::{
    AttemptOutcome, DestinationKind, Enqueued, Lane, ListFilter, MessageId, Outbox, OutboxError,
    RetentionPolicy, Retired, State, Transition,
};

use crate::outbox_contract_support::{Backend, Rig};
use crate::outbox_support::{attempt, policy, salesforce};

const SF: DestinationKind = DestinationKind::Salesforce;
const TIMEOUT: Duration = Duration::from_secs(5);

fn hours(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}

/// Claims the one due message at `at` and records `next` for it, finishing at `at`.
async fn finish(outbox: &Outbox, id: MessageId, at: DateTime<Utc>, next: Transition) {
    let claimed = outbox
        .claim_due(Lane::Interactive, SF, 10, at, TIMEOUT)
        .await
        .expect("claim");
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
    let outcome = match next {
        Transition::Delivered { .. } => AttemptOutcome::Success,
        _ => AttemptOutcome::Permanent,
    };
    outbox
        .record_attempt(&claimed[0], attempt(at, outcome, Some(201)), next)
        .await
        .expect("record");
}

fn delivered() -> Transition {
    Transition::Delivered {
        remote_id: Some("a0B1".into()),
    }
}

pub(crate) async fn retention_erases_payloads_then_history(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600 * 24)));
    let outbox = &rig.outbox;
    let t0 = Utc::now() - hours(48);
    // A: delivered at t0 (with an idempotency key); B: failed at t0+1h; C: delivered at t0+3h;
    // D: still pending.
    let new = |n| salesforce("001A", Lane::Interactive, n);
    let Enqueued::Created(a) = outbox
        .enqueue_idempotent("001A", "key-a", [7; 32], new(1), t0)
        .await
        .expect("enqueue a")
    else {
        panic!("a new key creates a message");
    };
    finish(outbox, a, t0, delivered()).await;
    let b = outbox.enqueue_at(new(2), t0 + hours(1)).await.expect("b");
    finish(outbox, b, t0 + hours(1), Transition::Failed).await;
    let c = outbox.enqueue_at(new(3), t0 + hours(3)).await.expect("c");
    finish(outbox, c, t0 + hours(3), delivered()).await;
    let d = outbox.enqueue_at(new(4), t0 + hours(3)).await.expect("d");

    // Payloads erased after one hour, history kept: A and B lose their payload, in batches of one.
    let payload_only = RetentionPolicy {
        payload: Duration::from_secs(3600),
        history: None,
        keep_fields: vec!["reference".into()],
    };
    let now = t0 + hours(3);
    let done = outbox.retire(&payload_only, now, 1).await.expect("retire");
    assert_eq!(
        done,
        Retired {
            erased: 2,
            purged: 0
        }
    );
    let again = outbox.retire(&payload_only, now, 1).await.expect("retire");
    assert_eq!(again, Retired::default(), "nothing is erased twice");

    let erased = outbox.get(a).await.expect("get").expect("history kept");
    assert_eq!(erased.payload, serde_json::Value::Null);
    assert_eq!(erased.payload_erased_at, Some(now));
    assert_eq!(
        (erased.state, erased.remote_id.as_deref(), erased.attempts),
        (State::Delivered, Some("a0B1"), 1)
    );
    assert_eq!(outbox.attempts(a).await.expect("attempts").len(), 1);
    let kept = outbox.get(c).await.expect("get").expect("c");
    assert_eq!(kept.payload, serde_json::json!({ "n": 3 }));
    assert_eq!(kept.payload_erased_at, None);
    // A replay of A's key still answers A (its outcome is in the history).
    let replay = outbox
        .enqueue_idempotent("001A", "key-a", [7; 32], new(1), now)
        .await
        .expect("replay");
    assert_eq!(
        replay,
        Enqueued::Existing {
            id: a,
            same_body: true
        }
    );
    // An erased dead letter cannot be sent again; one with its payload can.
    assert!(matches!(outbox.retry(b).await, Err(OutboxError::PayloadErased(id)) if id == b));
    let failed = outbox.get(b).await.expect("get").expect("b");
    assert_eq!(
        failed.state,
        State::Failed,
        "a refused retry changes nothing"
    );
    let counts = outbox.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.delivered, counts.failed), (1, 2, 1));

    // History kept two hours: A, B and C (C erased first, in the same pass) are deleted, D stays.
    let both = RetentionPolicy {
        payload: Duration::from_secs(3600),
        history: Some(Duration::from_secs(2 * 3600)),
        keep_fields: Vec::new(),
    };
    let done = outbox
        .retire(&both, t0 + hours(6), 2)
        .await
        .expect("retire");
    assert_eq!(
        done,
        Retired {
            erased: 1,
            purged: 3
        }
    );
    for id in [a, b, c] {
        assert_eq!(outbox.get(id).await.expect("get"), None, "{id} deleted");
        assert!(outbox.attempts(id).await.expect("attempts").is_empty());
    }
    let all = ListFilter {
        limit: 100,
        ..ListFilter::default()
    };
    let left: Vec<MessageId> = outbox
        .list(&all)
        .await
        .expect("list")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![d]);
    let counts = outbox.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.delivered, counts.failed), (1, 0, 0));

    // Counts survive a restart without reading history.
    if let Some(rig) = rig.reopen() {
        let counts = rig.outbox.counts().await.expect("counts");
        assert_eq!((counts.pending, counts.delivered, counts.failed), (1, 0, 0));
    }
}

/// Dead letters are listed by state from their own index, in id order, with paging.
pub(crate) async fn dead_letters_list_by_state(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600 * 24)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    let mut failed = Vec::new();
    for n in 0..5 {
        let id = outbox
            .enqueue_at(salesforce("001A", Lane::Interactive, n), t0)
            .await
            .expect("enqueue");
        let next = if n % 2 == 0 {
            Transition::Failed
        } else {
            delivered()
        };
        if n % 2 == 0 {
            failed.push(id);
        }
        finish(outbox, id, t0, next).await;
    }
    let page = |after| ListFilter {
        state: Some(State::Failed),
        limit: 2,
        after,
        ..ListFilter::default()
    };
    let first: Vec<MessageId> = outbox
        .list(&page(None))
        .await
        .expect("list")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(first, failed[..2]);
    let rest: Vec<MessageId> = outbox
        .list(&page(Some(first[1])))
        .await
        .expect("list")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(rest, failed[2..]);
    let retried = outbox.retry(failed[0]).await.expect("retry");
    assert_eq!(retried.state, State::Pending);
    let after_retry = outbox.list(&page(None)).await.expect("list");
    assert_eq!(
        after_retry.iter().map(|m| m.id).collect::<Vec<_>>(),
        failed[1..]
    );
}
