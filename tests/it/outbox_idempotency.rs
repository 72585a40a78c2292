//! Idempotent enqueue: one key, one message, across concurrency and restarts.

use chrono::Utc;
use creditlink::outbox::{Enqueued, Lane, ListFilter};
use sha2::{Digest, Sha256};

use crate::outbox_support::{open, salesforce, secs};

fn hash(body: &str) -> [u8; 32] {
    Sha256::digest(body.as_bytes()).into()
}

#[tokio::test]
async fn same_key_returns_the_existing_message_and_compares_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = Utc::now();
    let first = {
        let outbox = open(dir.path());
        let new = salesforce("001A", Lane::Interactive, 1);
        let first = outbox
            .enqueue_idempotent("001A", "key-1", hash("a"), new.clone(), t0)
            .await
            .expect("enqueue");
        assert!(matches!(first, Enqueued::Created(_)));
        let again = outbox
            .enqueue_idempotent("001A", "key-1", hash("a"), new.clone(), t0 + secs(1))
            .await
            .expect("again");
        assert_eq!(
            again,
            Enqueued::Existing {
                id: first.id(),
                same_body: true
            }
        );
        let changed = outbox
            .enqueue_idempotent("001A", "key-1", hash("b"), new.clone(), t0 + secs(2))
            .await
            .expect("changed");
        assert_eq!(
            changed,
            Enqueued::Existing {
                id: first.id(),
                same_body: false
            }
        );
        // Keys are per tenant.
        let other = outbox
            .enqueue_idempotent("001B", "key-1", hash("a"), new, t0)
            .await
            .expect("other");
        assert!(matches!(other, Enqueued::Created(id) if id != first.id()));
        first.id()
    };
    // Keys survive a restart, expire after the TTL and are then purged.
    let outbox = open(dir.path());
    let new = salesforce("001A", Lane::Interactive, 1);
    let again = outbox
        .enqueue_idempotent("001A", "key-1", hash("a"), new.clone(), t0 + secs(3600))
        .await
        .expect("after restart");
    assert_eq!(
        again,
        Enqueued::Existing {
            id: first,
            same_body: true
        }
    );
    assert_eq!(
        outbox
            .purge_expired_keys(t0 + secs(3600))
            .await
            .expect("purge"),
        0
    );
    let day = t0 + secs(24 * 3600 + 1);
    assert_eq!(outbox.purge_expired_keys(day).await.expect("purge"), 2);
    let fresh = outbox
        .enqueue_idempotent("001A", "key-1", hash("a"), new, day)
        .await
        .expect("fresh");
    assert!(matches!(fresh, Enqueued::Created(id) if id != first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_posts_with_one_key_make_one_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = open(dir.path());
    let now = Utc::now();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (outbox, barrier) = (outbox.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let new = salesforce("001A", Lane::Interactive, 7);
                outbox
                    .enqueue_idempotent("001A", "same", hash("x"), new, now)
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("join").expect("enqueue"));
    }
    let created = results
        .iter()
        .filter(|r| matches!(r, Enqueued::Created(_)))
        .count();
    assert_eq!(created, 1);
    let id = results[0].id();
    assert!(results.iter().all(|r| r.id() == id));
    let all = outbox
        .list(&ListFilter {
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(outbox.counts().await.expect("counts").pending, 1);
}
