//! Group commit: concurrent durable writes share flushes.

use std::sync::Arc;

use creditlink::outbox::{Lane, Outbox, RetryPolicy};
use creditlink::store::{Durability, Store};

use crate::outbox_support::salesforce;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_durable_calls_share_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), Durability::GroupCommit).expect("open");
    let outbox = Outbox::open(store.clone(), RetryPolicy::default()).expect("outbox");
    const N: usize = 200;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (outbox, store, barrier) = (outbox.clone(), store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let before = store.flush_count();
            outbox
                .enqueue(salesforce("001A", Lane::Bulk, i as u32))
                .await
                .expect("enqueue");
            // Released only by a flush that completed after this call was made.
            assert!(store.flush_count() > before);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let flushes = store.flush_count();
    assert!(flushes >= 1);
    assert!(
        flushes <= (N / 4) as u64,
        "{flushes} flushes for {N} callers"
    );
    assert_eq!(outbox.counts().await.expect("counts").pending, N as u64);
}

#[tokio::test]
async fn per_request_flushes_every_call_and_none_never_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let per = Store::open(&dir.path().join("per"), Durability::PerRequest).expect("open");
    let outbox = Outbox::open(per.clone(), RetryPolicy::default()).expect("outbox");
    for i in 0..3 {
        let new = salesforce("001A", Lane::Bulk, i);
        outbox.enqueue(new).await.expect("enqueue");
    }
    assert_eq!(per.flush_count(), 3);

    let none = Store::open(&dir.path().join("none"), Durability::None).expect("open");
    let outbox = Outbox::open(none.clone(), RetryPolicy::default()).expect("outbox");
    let new = salesforce("001A", Lane::Bulk, 1);
    outbox.enqueue(new).await.expect("enqueue");
    assert_eq!(none.flush_count(), 0);
    none.check_writable().await.expect("writable");
}

#[tokio::test]
async fn store_reopens_after_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let outbox = crate::outbox_support::open(dir.path());
        outbox
            .enqueue(salesforce("001A", Lane::Bulk, 1))
            .await
            .expect("enqueue")
    };
    let outbox = crate::outbox_support::open(dir.path());
    assert!(outbox.get(id).await.expect("get").is_some());
}
