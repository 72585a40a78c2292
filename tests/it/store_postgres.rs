//! The PostgreSQL backend's own promises, beyond the shared contract suite: two daemons (two
//! connection pools) on one database claim disjoint messages, a reconnect keeps leases (nothing is
//! released at open), `LISTEN/NOTIFY` wakes the other daemon, one leader at a time with takeover,
//! key-value trees, and migrations applied once and checked.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use creditlink::outbox::{
    AttemptOutcome, DestinationKind, Lane, Outbox, OutboxError, OutboxOptions, State, Transition,
};
use creditlink::store::Store;
use creditlink::store::postgres::{PgBackend, expected_version};

use crate::outbox_support::{attempt, policy, salesforce};
use crate::pg_support::cluster;

const SF: DestinationKind = DestinationKind::Salesforce;
const TIMEOUT: Duration = Duration::from_secs(5);

async fn daemon(url: &secrecy::SecretString) -> (Store, Outbox) {
    let store = Store::connect_postgres(url).await.expect("connect");
    let options = OutboxOptions {
        lease: Duration::from_secs(30),
        ..OutboxOptions::default()
    };
    let outbox = Outbox::open_with(store.clone(), policy(5, Duration::from_secs(3600)), options)
        .expect("outbox");
    (store, outbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_claim_disjoint_messages_and_fence_each_other() {
    let Some(pg) = cluster("two_daemons_claim_disjoint_messages_and_fence_each_other") else {
        return;
    };
    let url = pg.fresh_database().await;
    let (_s1, a) = daemon(&url).await;
    let (_s2, b) = daemon(&url).await;
    let t0 = Utc::now();
    for n in 0..40 {
        a.enqueue_at(salesforce("001A", Lane::Interactive, n), t0)
            .await
            .expect("enqueue");
    }
    let (x, y) = tokio::join!(
        a.claim_due(Lane::Interactive, SF, 25, t0, TIMEOUT),
        b.claim_due(Lane::Interactive, SF, 25, t0, TIMEOUT)
    );
    let (x, y) = (x.expect("claim a"), y.expect("claim b"));
    assert_eq!(x.len() + y.len(), 40, "every due message claimed once");
    let ids: HashSet<_> = x.iter().chain(&y).map(|m| m.id).collect();
    assert_eq!(ids.len(), 40, "no message claimed by both daemons");

    // B's lease on y[0] (or x[0]) ends; A re-claims it; B's late outcome is refused.
    let stale = if y.is_empty() { &x[0] } else { &y[0] };
    let later = t0 + chrono::Duration::seconds(31);
    let again = a
        .claim_due(Lane::Interactive, SF, 100, later, TIMEOUT)
        .await
        .expect("reclaim");
    assert_eq!(again.len(), 40, "expired leases released at the next claim");
    let done = Transition::Delivered { remote_id: None };
    let late = b
        .record_attempt(
            stale,
            attempt(t0, AttemptOutcome::Success, Some(200)),
            done.clone(),
        )
        .await;
    assert!(matches!(late, Err(OutboxError::LeaseLost(_))), "{late:?}");
    let fresh = again.iter().find(|m| m.id == stale.id).expect("reclaimed");
    let m = a
        .record_attempt(
            fresh,
            attempt(later, AttemptOutcome::Success, Some(200)),
            done,
        )
        .await
        .expect("record");
    assert_eq!((m.state, m.attempts), (State::Delivered, 1));
    let counts = b.counts().await.expect("counts");
    assert_eq!((counts.in_flight, counts.delivered), (39, 1));
    assert_eq!(b.attempts(m.id).await.expect("attempts").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_keeps_leases_and_concurrent_idempotent_posts_make_one_message() {
    let Some(pg) = cluster("reconnecting_keeps_leases") else {
        return;
    };
    let url = pg.fresh_database().await;
    let t0 = Utc::now();
    let (store, a) = daemon(&url).await;
    let id = a
        .enqueue_at(salesforce("001A", Lane::Bulk, 1), t0)
        .await
        .expect("enqueue");
    let claimed = a
        .claim_due(Lane::Bulk, SF, 10, t0, TIMEOUT)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    drop((a, store));
    let (_store, b) = daemon(&url).await;
    let m = b.get(id).await.expect("get").expect("kept");
    assert_eq!(
        m.state,
        State::InFlight,
        "another daemon may hold the lease"
    );

    let mut posts = Vec::new();
    for n in 0..8 {
        let b = b.clone();
        posts.push(tokio::spawn(async move {
            b.enqueue_idempotent(
                "001A",
                "key-1",
                [7; 32],
                salesforce("001A", Lane::Interactive, n),
                t0,
            )
            .await
            .expect("enqueue")
        }));
    }
    let mut ids = HashSet::new();
    for p in posts {
        ids.insert(p.await.expect("join").id());
    }
    assert_eq!(ids.len(), 1, "one message for one key");
    assert_eq!(b.counts().await.expect("counts").pending, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_in_one_daemon_wakes_the_other() {
    let Some(pg) = cluster("an_enqueue_in_one_daemon_wakes_the_other") else {
        return;
    };
    let url = pg.fresh_database().await;
    let (_s1, a) = daemon(&url).await;
    let (s2, _b) = daemon(&url).await;
    let mut woken = s2.enqueued().expect("postgres wakes across daemons");
    // The listener connects in the background: enqueue until a wake-up arrives.
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            a.enqueue(salesforce("001A", Lane::Interactive, 1))
                .await
                .expect("enqueue");
            if let Ok(Ok(kind)) =
                tokio::time::timeout(Duration::from_millis(200), woken.recv()).await
            {
                return kind;
            }
        }
    })
    .await
    .expect("a wake-up within 20 s");
    assert_eq!(got, SF);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_standby_takes_over() {
    let Some(pg) = cluster("one_leader_at_a_time_and_a_standby_takes_over") else {
        return;
    };
    let url = pg.fresh_database().await;
    let a = Store::connect_postgres(&url).await.expect("a");
    let b = Store::connect_postgres(&url).await.expect("b");
    let mut la = a.lead("poller").await.expect("lead");
    let mut lb = b.lead("poller").await.expect("lead");
    let mut other = b.lead("another-role").await.expect("lead");
    assert!(la.is_leader().await);
    assert!(!lb.is_leader().await, "two leaders");
    assert!(la.is_leader().await, "the leader keeps leading");
    assert!(other.is_leader().await, "roles are independent");
    drop(la); // its session ends, as when the daemon dies
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lb.is_leader().await {
        assert!(
            std::time::Instant::now() < deadline,
            "no takeover within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !a.lead("poller").await.expect("lead").is_leader().await,
        "two leaders after takeover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_trees_and_schema_version() {
    let Some(pg) = cluster("kv_trees_and_schema_version") else {
        return;
    };
    let url = pg.fresh_database().await;
    assert!(
        PgBackend::check(&url).await.is_err(),
        "an empty database is reported as needing migration"
    );
    let store = Store::connect_postgres(&url).await.expect("connect");
    let _again = Store::connect_postgres(&url)
        .await
        .expect("migrations are idempotent");
    assert_eq!(
        PgBackend::check(&url).await.expect("check"),
        expected_version()
    );
    store.check_writable().await.expect("writable");

    let t = store.kv_tree("inbound.hints").expect("tree");
    let other = store.kv_tree("inbound.seen").expect("tree");
    assert_eq!(t.insert(b"b", b"1").await.expect("insert"), None);
    assert_eq!(
        t.insert(b"b", b"2").await.expect("insert"),
        Some(b"1".to_vec())
    );
    assert!(t.insert_if_absent(b"a", b"x").await.expect("if absent"));
    assert!(!t.insert_if_absent(b"a", b"y").await.expect("if absent"));
    assert!(!t.replace_if_eq(b"a", b"nope", b"z").await.expect("cas"));
    assert!(t.replace_if_eq(b"a", b"x", b"z").await.expect("cas"));
    assert!(
        other
            .insert_if_absent(b"a", b"other")
            .await
            .expect("other tree")
    );
    t.insert(&[0xff, 0], b"hi").await.expect("insert");
    assert_eq!(
        t.keys().await.expect("keys"),
        vec![b"a".to_vec(), b"b".to_vec(), vec![0xff, 0]],
        "bytewise order, trees separate"
    );
    assert!(t.remove_if_eq(b"b", b"2").await.expect("remove if eq"));
    t.remove_all(&[b"a".to_vec(), vec![0xff, 0]])
        .await
        .expect("remove all");
    assert_eq!(t.len().await.expect("len"), 0);
    assert_eq!(other.get(b"a").await.expect("get"), Some(b"other".to_vec()));
}
