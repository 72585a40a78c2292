//! The queue contract, run against every storage backend: state machine, leases and fencing,
//! idempotency, admin moves, listing, waiting, the durable key-value trees, and crash recovery (reopen)
//! for backends that survive one. A new backend plugs in with one `backend_tests!` line at the bottom
//! and one arm in `outbox_contract_support::Rig::open`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use creditlink::outbox::{
    AttemptOutcome, DestinationKind, Enqueued, Lane, ListFilter, OutboxError, State, Transition,
};

use crate::outbox_contract_retention::{
    dead_letters_list_by_state, retention_erases_payloads_then_history,
};
use crate::outbox_contract_support::{Backend, Rig};
use crate::outbox_support::{attempt, bank, policy, salesforce, secs};

const SF: DestinationKind = DestinationKind::Salesforce;
/// The attempt timeout the tests claim with (the rig's lease is 30 s).
const TIMEOUT: Duration = Duration::from_secs(5);

fn retry() -> Transition {
    Transition::Retry {
        hint: None,
        rate_limited: false,
    }
}

async fn retry_then_deliver_keeps_the_attempt_log(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 1), t0)
        .await
        .expect("enqueue");
    let claimed = outbox
        .claim_due(Lane::Interactive, SF, 10, t0, TIMEOUT)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].state, State::InFlight);
    assert_eq!(claimed[0].lease_until, Some(t0 + secs(30)));
    assert!(claimed[0].lease_token.is_some());
    let none = outbox.claim_due(Lane::Interactive, SF, 10, t0, TIMEOUT);
    assert!(none.await.expect("claim").is_empty(), "claimed twice");

    let failed = attempt(t0, AttemptOutcome::Retryable, Some(503));
    let m = outbox
        .record_attempt(&claimed[0], failed, retry())
        .await
        .expect("record");
    assert_eq!((m.state, m.attempts), (State::Pending, 1));
    assert_eq!(m.next_attempt_at, t0 + secs(10));
    assert_eq!(m.lease_token, None);

    let early = outbox.claim_due(Lane::Interactive, SF, 10, t0 + secs(9), TIMEOUT);
    assert!(early.await.expect("claim").is_empty(), "claimed before due");
    let t1 = t0 + secs(10);
    let again = outbox
        .claim_due(Lane::Interactive, SF, 10, t1, TIMEOUT)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    let done = Transition::Delivered {
        remote_id: Some("a0B1".into()),
    };
    let ok = attempt(t1, AttemptOutcome::Success, Some(201));
    let m = outbox
        .record_attempt(&again[0], ok, done)
        .await
        .expect("record");
    assert_eq!(
        (m.state, m.remote_id.as_deref(), m.completed_at),
        (State::Delivered, Some("a0B1"), Some(t1))
    );
    let log = outbox.attempts(id).await.expect("attempts");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].outcome, AttemptOutcome::Retryable);
    let counts = outbox.counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.in_flight, counts.delivered),
        (0, 0, 1)
    );
    assert_eq!(outbox.oldest_pending_age(t1).await.expect("age"), None);
}

async fn retries_end_dead_and_failed_is_never_claimed(backend: Backend) {
    let rig = Rig::open(backend, policy(2, Duration::from_secs(86400)));
    let outbox = &rig.outbox;
    let mut now = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), now)
        .await
        .expect("enqueue");
    for n in 1..=2u32 {
        let claimed = outbox.claim_due(Lane::Bulk, SF, 1, now, TIMEOUT);
        let claimed = claimed.await.expect("claim");
        let failed = attempt(now, AttemptOutcome::Retryable, Some(500));
        let m = outbox
            .record_attempt(&claimed[0], failed, retry())
            .await
            .expect("record");
        assert_eq!(m.attempts, n);
        now = m.next_attempt_at;
    }
    let m = outbox.get(id).await.expect("get").expect("exists");
    assert_eq!(m.state, State::Dead);
    let other = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 2), now)
        .await
        .expect("enqueue");
    let claimed = outbox.claim_due(Lane::Bulk, SF, 1, now, TIMEOUT);
    let claimed = claimed.await.expect("claim");
    assert_eq!(claimed[0].id, other);
    let permanent = attempt(now, AttemptOutcome::Permanent, Some(400));
    outbox
        .record_attempt(&claimed[0], permanent, Transition::Failed)
        .await
        .expect("record");
    let later = outbox.claim_due(Lane::Bulk, SF, 10, now + secs(30 * 86400), TIMEOUT);
    assert!(later.await.expect("claim").is_empty());
    let counts = outbox.counts().await.expect("counts");
    assert_eq!((counts.dead, counts.failed), (1, 1));
}

async fn an_expired_lease_cannot_record_over_the_new_claim(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    let first = outbox.claim_due(Lane::Bulk, SF, 1, t0, TIMEOUT);
    let first = first.await.expect("claim").remove(0);
    // The first worker hangs past its lease; a second worker re-claims the message.
    let t1 = t0 + secs(31);
    let second = outbox.claim_due(Lane::Bulk, SF, 1, t1, TIMEOUT);
    let second = second.await.expect("claim").remove(0);
    assert_eq!(second.id, first.id);
    assert_ne!(second.lease_token, first.lease_token);

    let late = attempt(t1, AttemptOutcome::Permanent, Some(400));
    let refused = outbox
        .record_attempt(&first, late, Transition::Failed)
        .await;
    assert!(
        matches!(refused, Err(OutboxError::LeaseLost(id)) if id == first.id),
        "{refused:?}"
    );
    let m = outbox.get(first.id).await.expect("get").expect("exists");
    assert_eq!((m.state, m.attempts), (State::InFlight, 0), "unchanged");

    let ok = attempt(t1, AttemptOutcome::Success, Some(201));
    let done = Transition::Delivered { remote_id: None };
    let m = outbox
        .record_attempt(&second, ok, done)
        .await
        .expect("the holder records");
    assert_eq!((m.state, m.attempts), (State::Delivered, 1));
    // And a stale copy cannot move the finished message either.
    let stale = outbox
        .record_attempt(&second, attempt(t1, AttemptOutcome::Success, None), retry())
        .await;
    assert!(matches!(stale, Err(OutboxError::LeaseLost(_))), "{stale:?}");
}

/// A batch of outcomes recorded in one step: each entry fenced on its own, a stale one refused alone.
async fn a_batch_of_outcomes_is_fenced_per_message(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    for n in 1..=3 {
        let new = salesforce("001A", Lane::Interactive, n);
        outbox
            .enqueue_at(new, t0 + secs(i64::from(n)))
            .await
            .expect("enqueue");
    }
    let t1 = t0 + secs(3);
    let mine = outbox.claim_due(Lane::Interactive, SF, 1, t1, TIMEOUT);
    let mut mine = mine.await.expect("claim");
    let rest = outbox.claim_due(Lane::Interactive, SF, 2, t1 + secs(20), TIMEOUT);
    mine.extend(rest.await.expect("claim"));
    assert_eq!(mine.len(), 3);
    // The first message's lease runs out (the others' do not) and another worker claims it.
    let t2 = t1 + secs(31);
    let theirs = outbox.claim_due(Lane::Interactive, SF, 1, t2, TIMEOUT);
    assert_eq!(theirs.await.expect("claim")[0].id, mine[0].id);

    let ok = || attempt(t2, AttemptOutcome::Success, Some(201));
    let done = || Transition::Delivered { remote_id: None };
    let results = outbox
        .record_attempts(vec![
            (&mine[0], ok(), done()),
            (&mine[1], ok(), done()),
            (
                &mine[2],
                attempt(t2, AttemptOutcome::Retryable, Some(503)),
                retry(),
            ),
        ])
        .await
        .expect("recorded");
    assert!(matches!(&results[0], Err(OutboxError::LeaseLost(id)) if *id == mine[0].id));
    assert_eq!(results[1].as_ref().expect("second").state, State::Delivered);
    let third = results[2].as_ref().expect("third");
    assert_eq!((third.state, third.attempts), (State::Pending, 1));
    let first = outbox.get(mine[0].id).await.expect("get").expect("exists");
    assert_eq!(
        (first.state, first.attempts),
        (State::InFlight, 0),
        "unchanged"
    );
    assert_eq!(outbox.attempts(mine[2].id).await.expect("log").len(), 1);
    let counts = outbox.counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.in_flight, counts.delivered),
        (1, 1, 1)
    );
}

async fn a_lease_must_outlast_the_attempt_timeout(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let now = Utc::now();
    outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), now)
        .await
        .expect("enqueue");
    for timeout in [Duration::from_secs(30), Duration::from_secs(45)] {
        let refused = outbox.claim_due(Lane::Bulk, SF, 1, now, timeout).await;
        assert!(
            matches!(refused, Err(OutboxError::LeaseTooShort { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(outbox.counts().await.expect("counts").pending, 1);
}

async fn a_shutdown_release_is_not_an_attempt(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    let claimed = outbox.claim_due(Lane::Bulk, SF, 1, t0, TIMEOUT);
    let claimed = claimed.await.expect("claim").remove(0);
    let m = outbox
        .record_attempt(
            &claimed,
            attempt(t0, AttemptOutcome::Retryable, None),
            Transition::ReleaseNoAttempt,
        )
        .await
        .expect("release");
    assert_eq!(
        (m.state, m.attempts, m.next_attempt_at),
        (State::Pending, 0, t0)
    );
    assert!(outbox.attempts(id).await.expect("attempts").is_empty());
    // A message that is not claimed cannot be recorded on.
    let refused = outbox
        .record_attempt(&m, attempt(t0, AttemptOutcome::Success, None), retry())
        .await;
    assert!(matches!(refused, Err(OutboxError::WrongState { .. })));
}

async fn idempotency_keys_replay_conflict_and_expire(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    let new = || salesforce("001A", Lane::Interactive, 1);
    let first = outbox.enqueue_idempotent("001A", "k-1", [1; 32], new(), t0);
    let Enqueued::Created(id) = first.await.expect("first") else {
        panic!("a new key creates a message");
    };
    let replay = outbox.enqueue_idempotent("001A", "k-1", [1; 32], new(), t0 + secs(5));
    assert_eq!(
        replay.await.expect("replay"),
        Enqueued::Existing {
            id,
            same_body: true
        }
    );
    let changed = outbox.enqueue_idempotent("001A", "k-1", [2; 32], new(), t0 + secs(5));
    assert_eq!(
        changed.await.expect("reuse"),
        Enqueued::Existing {
            id,
            same_body: false
        }
    );
    // Another tenant's identical key is another key.
    let other = outbox.enqueue_idempotent("001B", "k-1", [1; 32], new(), t0);
    assert!(matches!(other.await.expect("other"), Enqueued::Created(_)));
    // Past the TTL (24 h), the key is absent, then purged.
    let day = t0 + secs(24 * 3600 + 1);
    let fresh = outbox.enqueue_idempotent("001A", "k-1", [1; 32], new(), day);
    assert!(matches!(fresh.await.expect("fresh"), Enqueued::Created(n) if n != id));
    let later = day + secs(24 * 3600 + 1);
    let purged = outbox.purge_expired_keys(later).await;
    assert!(purged.expect("purge") >= 1);
    // A purged key is new again, and its next message is what it then replays.
    let renewed = outbox.enqueue_idempotent("001A", "k-1", [1; 32], new(), later);
    let Enqueued::Created(renewed) = renewed.await.expect("renewed") else {
        panic!("a purged key creates a message");
    };
    let replay = outbox.enqueue_idempotent("001A", "k-1", [1; 32], new(), later + secs(1));
    assert_eq!(
        replay.await.expect("replay"),
        Enqueued::Existing {
            id: renewed,
            same_body: true
        }
    );
    assert_eq!(outbox.counts().await.expect("counts").pending, 4);
}

async fn concurrent_posts_with_one_key_make_one_message(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = rig.outbox.clone();
    let now = Utc::now();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (outbox, barrier) = (outbox.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let new = salesforce("001A", Lane::Interactive, 7);
            outbox
                .enqueue_idempotent("001A", "same", [3; 32], new, now)
                .await
                .expect("enqueue")
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for task in tasks {
        let answer = task.await.expect("task");
        created += usize::from(matches!(answer, Enqueued::Created(_)));
        ids.insert(answer.id());
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(outbox.counts().await.expect("counts").pending, 1);
}

async fn admin_moves_check_the_state(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    let refused = outbox.retry(id).await;
    assert!(matches!(refused, Err(OutboxError::WrongState { .. })));
    let claimed = outbox.claim_due(Lane::Bulk, SF, 1, t0, TIMEOUT);
    let claimed = claimed.await.expect("claim").remove(0);
    let permanent = attempt(t0, AttemptOutcome::Permanent, Some(400));
    outbox
        .record_attempt(&claimed, permanent, Transition::Failed)
        .await
        .expect("record");
    let m = outbox.retry(id).await.expect("retry");
    assert_eq!(
        (m.state, m.completed_at, m.attempts),
        (State::Pending, None, 1)
    );
    let m = outbox.discard(id).await.expect("discard");
    assert_eq!(m.state, State::Discarded);
    let refused = outbox.discard(id).await;
    assert!(matches!(refused, Err(OutboxError::WrongState { .. })));
    let missing = outbox.retry(creditlink::outbox::MessageId::new()).await;
    assert!(matches!(missing, Err(OutboxError::NotFound(_))));
    assert_eq!(outbox.counts().await.expect("counts").discarded, 1);
}

async fn lists_page_by_tenant_state_and_lane(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let now = Utc::now();
    let mut a_ids = Vec::new();
    for n in 0..5 {
        let new = salesforce("001A", Lane::Interactive, n);
        a_ids.push(outbox.enqueue_at(new, now).await.expect("a"));
        outbox.enqueue(bank("001B")).await.expect("b");
    }
    let page = |after| ListFilter {
        tenant: Some("001A".into()),
        limit: 2,
        after,
        ..ListFilter::default()
    };
    let first = outbox.list(&page(None)).await.expect("list");
    let ids: Vec<_> = first.iter().map(|m| m.id).collect();
    assert_eq!(ids, a_ids[..2]);
    let second = outbox.list(&page(Some(ids[1]))).await.expect("list");
    assert_eq!(second.iter().map(|m| m.id).collect::<Vec<_>>(), a_ids[2..4]);
    let bulk = ListFilter {
        lane: Some(Lane::Bulk),
        limit: 100,
        ..ListFilter::default()
    };
    assert!(outbox.list(&bulk).await.expect("list").is_empty());
    let pending = ListFilter {
        state: Some(State::Pending),
        limit: 100,
        ..ListFilter::default()
    };
    assert_eq!(outbox.list(&pending).await.expect("list").len(), 10);
    let age = outbox.oldest_pending_age(now + secs(3)).await.expect("age");
    assert_eq!(age, Some(Duration::from_secs(3)));
}

/// One bank's backlog does not hold back another's requests: a claim takes from every tenant with work
/// due in turn, each tenant's earliest first, and gives what one tenant cannot use to the others.
async fn claims_are_fair_between_tenants(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = &rig.outbox;
    let t0 = Utc::now();
    let mut flood = Vec::new();
    for n in 0..40 {
        let new = salesforce("001FLOOD", Lane::Interactive, n);
        flood.push(
            outbox
                .enqueue_at(new, t0 + secs(i64::from(n)))
                .await
                .expect("a"),
        );
    }
    let late = t0 + secs(100);
    let b = outbox
        .enqueue_at(salesforce("001B", Lane::Interactive, 100), late)
        .await
        .expect("b");
    let mut c = Vec::new();
    for n in 101..104 {
        let new = salesforce("001C", Lane::Interactive, n);
        c.push(outbox.enqueue_at(new, late).await.expect("c"));
    }
    // Not yet due: never claimed, and its tenant takes no share.
    outbox
        .enqueue_at(
            salesforce("001D", Lane::Interactive, 200),
            late + secs(3600),
        )
        .await
        .expect("d");

    let claimed = outbox
        .claim_due(Lane::Interactive, SF, 10, late, TIMEOUT)
        .await
        .expect("claim");
    let ids: Vec<_> = claimed.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 10);
    assert!(
        ids.contains(&b),
        "the single request waited behind the backlog"
    );
    assert!(c.iter().all(|id| ids.contains(id)), "a small bank waited");
    let of_flood: Vec<_> = ids
        .iter()
        .filter(|id| flood.contains(id))
        .copied()
        .collect();
    assert_eq!(
        of_flood,
        flood[..6],
        "the backlog's earliest first, in order"
    );
    assert_eq!(
        ids[0], flood[0],
        "the longest-waiting tenant leads each round"
    );

    let rest = outbox
        .claim_due(Lane::Interactive, SF, 100, late, TIMEOUT)
        .await
        .expect("claim");
    assert_eq!(
        rest.len(),
        34,
        "only the backlog is left, and all of it is due"
    );
    assert!(rest.iter().all(|m| m.tenant == "001FLOOD"));
}

async fn wait_terminal_wakes_on_the_outcome(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let outbox = rig.outbox.clone();
    let t0 = Utc::now();
    let id = outbox
        .enqueue_at(salesforce("001A", Lane::Interactive, 1), t0)
        .await
        .expect("enqueue");
    let short = outbox.wait_terminal(id, Duration::from_millis(20)).await;
    assert_eq!(short.expect("wait"), None);
    let waiter = {
        let outbox = outbox.clone();
        tokio::spawn(async move { outbox.wait_terminal(id, Duration::from_secs(10)).await })
    };
    let claimed = outbox.claim_due(Lane::Interactive, SF, 1, t0, TIMEOUT);
    let claimed = claimed.await.expect("claim").remove(0);
    let ok = attempt(t0, AttemptOutcome::Success, Some(201));
    let done = Transition::Delivered { remote_id: None };
    outbox
        .record_attempt(&claimed, ok, done)
        .await
        .expect("record");
    let m = waiter.await.expect("join").expect("wait");
    assert_eq!(m.map(|m| m.state), Some(State::Delivered));
}

async fn kv_trees_compare_and_scan(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let tree = rig.store.kv_tree("contract.kv").expect("tree");
    assert!(tree.insert_if_absent(b"b", b"1").await.expect("insert"));
    assert!(!tree.insert_if_absent(b"b", b"2").await.expect("insert"));
    assert!(tree.replace_if_eq(b"b", b"1", b"3").await.expect("cas"));
    assert!(!tree.remove_if_eq(b"b", b"1").await.expect("cas"));
    tree.insert(b"a", b"0").await.expect("insert");
    tree.insert(b"c", b"9").await.expect("insert");
    let scan = tree.scan_from(b"b", 10).await.expect("scan");
    assert_eq!(
        scan,
        vec![
            (b"b".to_vec(), b"3".to_vec()),
            (b"c".to_vec(), b"9".to_vec())
        ]
    );
    tree.remove_all(&[b"a".to_vec(), b"c".to_vec()])
        .await
        .expect("remove");
    assert_eq!(tree.keys().await.expect("keys"), vec![b"b".to_vec()]);
    let same = rig.store.kv_tree("contract.kv").expect("tree");
    assert_eq!(same.len().await.expect("len"), 1, "one tree per name");
}

/// Crash recovery: what was written survives a reopen, and in-flight messages come back Pending.
async fn reopen_keeps_everything_and_releases_leases(backend: Backend) {
    let rig = Rig::open(backend, policy(5, Duration::from_secs(3600)));
    let t0 = Utc::now();
    let outbox = rig.outbox.clone();
    let a = outbox.enqueue_at(salesforce("001A", Lane::Bulk, 1), t0);
    let a = a.await.expect("a");
    let b = outbox.enqueue_at(salesforce("001A", Lane::Bulk, 2), t0);
    let b = b.await.expect("b");
    let claimed = outbox.claim_due(Lane::Bulk, SF, 2, t0, TIMEOUT);
    let claimed = claimed.await.expect("claim");
    let held_b = claimed.iter().find(|m| m.id == b).expect("b claimed");
    let ok = attempt(t0, AttemptOutcome::Success, Some(200));
    let done = Transition::Delivered { remote_id: None };
    outbox.record_attempt(held_b, ok, done).await.expect("b");
    rig.store
        .kv_tree("contract.kv")
        .expect("tree")
        .insert(b"k", b"v")
        .await
        .expect("kv");
    drop(outbox);
    let Some(rig) = rig.reopen() else {
        return; // A backend that does not survive the process has nothing to recover.
    };
    let m = rig.outbox.get(a).await.expect("get").expect("a survived");
    if backend.shared() {
        // Another daemon may hold the lease: it stays until it ends, then the next claim takes it.
        assert_eq!((m.state, m.attempts), (State::InFlight, 0));
        let later = t0 + secs(31);
        let again = rig.outbox.claim_due(Lane::Bulk, SF, 2, later, TIMEOUT);
        assert_eq!(
            again.await.expect("claim").len(),
            1,
            "released once the lease ended"
        );
        let stale = rig.outbox.record_attempt(
            &claimed[0],
            attempt(t0, AttemptOutcome::Success, None),
            retry(),
        );
        assert!(stale.await.is_err(), "an ended lease is void");
        let kv = rig.store.kv_tree("contract.kv").expect("tree");
        assert_eq!(kv.get(b"k").await.expect("get"), Some(b"v".to_vec()));
        return;
    }
    assert_eq!(
        (m.state, m.lease_token, m.attempts),
        (State::Pending, None, 0)
    );
    let counts = rig.outbox.counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.in_flight, counts.delivered),
        (1, 0, 1)
    );
    let stale = rig
        .outbox
        .record_attempt(
            &claimed[0],
            attempt(t0, AttemptOutcome::Success, None),
            retry(),
        )
        .await;
    assert!(stale.is_err(), "a lease from before the restart is void");
    let kv = rig.store.kv_tree("contract.kv").expect("tree");
    assert_eq!(kv.get(b"k").await.expect("get"), Some(b"v".to_vec()));
}

macro_rules! backend_tests {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;

            backend_tests!(@each $backend;
                retry_then_deliver_keeps_the_attempt_log,
                retries_end_dead_and_failed_is_never_claimed,
                an_expired_lease_cannot_record_over_the_new_claim,
                a_lease_must_outlast_the_attempt_timeout,
                a_batch_of_outcomes_is_fenced_per_message,
                a_shutdown_release_is_not_an_attempt,
                idempotency_keys_replay_conflict_and_expire,
                concurrent_posts_with_one_key_make_one_message,
                admin_moves_check_the_state,
                lists_page_by_tenant_state_and_lane,
                claims_are_fair_between_tenants,
                wait_terminal_wakes_on_the_outcome,
                kv_trees_compare_and_scan,
                reopen_keeps_everything_and_releases_leases,
                retention_erases_payloads_then_history,
                dead_letters_list_by_state,
            );
        }
    };
    (@each $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if !$backend.available(stringify!($name)) {
                    return;
                }
                super::$name($backend).await;
            }
        )*
    };
}

backend_tests!(memory, Backend::Memory);
backend_tests!(sled, Backend::Sled);
backend_tests!(postgres, Backend::Postgres);
