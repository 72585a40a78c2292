//! The Salesforce pusher through injected faults, outages, expired sessions and API limits.

use std::time::Duration;

use creditlink::ops::Heartbeat;
use creditlink::outbox::{Lane, MessageId, State};
use creditlink::relay::{PusherSettings, SalesforcePusher, StepOutcome};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::relay_support::*;

/// The pusher's loop in the background, and how to stop it.
struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    heartbeat: Heartbeat,
}

impl Running {
    fn start(pusher: SalesforcePusher) -> Running {
        let shutdown = CancellationToken::new();
        let heartbeat = Heartbeat::new();
        let task = tokio::spawn(pusher.run(shutdown.clone(), heartbeat.clone()));
        Running {
            shutdown,
            task,
            heartbeat,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the loop stops after shutdown")
            .expect("the loop does not panic");
    }
}

async fn until_all_delivered(rig: &Rig, ids: &[MessageId], limit: Duration) {
    until(limit, "every message delivered", || async {
        rig.states(ids).await.get(&State::Delivered) == Some(&ids.len())
    })
    .await;
}

/// Every key written exactly once, and no message Failed or Dead.
async fn assert_each_once(rig: &Rig, ids: &[MessageId]) {
    let by_key = rig.records_by_key().await;
    assert_eq!(by_key.len(), ids.len());
    assert!(by_key.values().all(|n| *n == 1), "a key was written twice");
    let counts = rig.outbox.counts().await.expect("counts");
    assert_eq!((counts.failed, counts.dead), (0, 0));
}

#[tokio::test]
async fn random_faults_delay_but_never_lose_or_duplicate() {
    let rig = Rig::start(fast_policy()).await;
    rig.set_faults(json!({
        "error_rate": 0.3,
        "errors": ["SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED"],
        "latency_ms": [0, 50]
    }))
    .await;
    let pusher = rig.pusher(PusherSettings {
        batch_max: 25,
        ..settings()
    });
    let wake = pusher.notifier();
    let running = Running::start(pusher);
    let ids = rig.enqueue_requests("fault", 300, Lane::Interactive).await;
    wake.notify_one();

    until_all_delivered(&rig, &ids, Duration::from_secs(60)).await;
    running.stop().await;
    assert_each_once(&rig, &ids).await;
    let mut retried = 0;
    for id in &ids {
        retried += usize::from(rig.message(*id).await.attempts > 1);
    }
    if std::env::var_os("TEST_LOG").is_some() {
        eprintln!(
            "{retried} of 300 messages needed more than one attempt; {} upsert calls",
            rig.collection_upserts().await
        );
    }
}

/// An outage does not spend the backlog's attempts: after the first failed call the pusher holds the
/// backlog and probes with one message at a time; when the org answers again, everything goes at once.
#[tokio::test]
async fn an_outage_holds_the_backlog_and_probes_with_one_message() {
    let rig = Rig::start(fast_policy()).await;
    rig.set_faults(json!({"outage": true})).await;
    // More than the batches in flight when the outage is first seen (4 × 200) can hold.
    let ids = rig
        .enqueue_requests("outage", 1000, Lane::Interactive)
        .await;
    let pusher = rig.pusher(settings());
    let probe = pusher.clone();
    let running = Running::start(pusher);

    let attempts = || async {
        let mut each = Vec::with_capacity(ids.len());
        for id in &ids {
            each.push(rig.message(*id).await.attempts);
        }
        each
    };
    // The calls in flight fail as a whole and open the breaker; single-message probes follow.
    until(Duration::from_secs(30), "the breaker opens", || async {
        probe.unreachable()
    })
    .await;
    let opened = attempts().await.iter().sum::<u32>();
    until(
        Duration::from_secs(30),
        "three more attempts: probes",
        || async { attempts().await.iter().sum::<u32>() >= opened + 3 },
    )
    .await;
    assert!(
        probe.unreachable(),
        "the breaker stays open during the outage"
    );
    let each = attempts().await;
    let untouched = each.iter().filter(|n| **n == 0).count();
    assert!(
        untouched >= 150,
        "the backlog was sent into the outage: only {untouched} of 1000 never attempted ({} attempts)",
        each.iter().sum::<u32>()
    );
    let sample = rig.message(ids[0]).await;
    assert!(
        matches!(sample.state, State::Pending | State::InFlight),
        "{:?}",
        sample.state
    );
    assert_eq!(
        sample.last_error.expect("last error").http_status,
        Some(503)
    );
    assert!(running.heartbeat.silence() < Duration::from_secs(5));

    rig.clear_faults().await;
    until_all_delivered(&rig, &ids, Duration::from_secs(30)).await;
    assert!(
        !probe.unreachable(),
        "the breaker closes when the org answers"
    );
    running.stop().await;
    assert_each_once(&rig, &ids).await;
    let after = attempts().await;
    for (before, now) in each.iter().zip(&after) {
        if *before == 0 {
            assert_eq!(*now, 1, "a held message is sent once, when the org is back");
        }
    }
}

#[tokio::test]
async fn expired_sessions_are_renewed_without_failing_anything() {
    let rig = Rig::start(fast_policy()).await;
    let pusher = rig.pusher(PusherSettings {
        batch_max: 20,
        ..settings()
    });
    let wake = pusher.notifier();
    let running = Running::start(pusher);
    let mut ids = rig.enqueue_requests("before", 100, Lane::Interactive).await;
    wake.notify_one();
    until(Duration::from_secs(30), "some deliveries", || async {
        rig.states(&ids).await.contains_key(&State::Delivered)
    })
    .await;

    rig.set_faults(json!({"expire_tokens": true})).await;
    ids.extend(rig.enqueue_requests("after", 100, Lane::Interactive).await);
    wake.notify_one();

    until_all_delivered(&rig, &ids, Duration::from_secs(30)).await;
    running.stop().await;
    assert_each_once(&rig, &ids).await;
    // The client renews the session inside the call: no attempt even saw the 401.
    for id in &ids {
        assert_eq!(rig.message(*id).await.attempts, 1);
    }
}

#[tokio::test]
async fn pauses_near_the_daily_limit_and_resumes_when_cleared() {
    let rig = Rig::start(slow_policy()).await;
    let pusher = rig.pusher(PusherSettings {
        batch_max: 10,
        api_usage_slow_pct: 40.0,
        api_usage_pause_pct: 50.0,
        slow_delay_max: Duration::from_millis(10),
        // Long enough that no re-check call falls between the paused steps below.
        pause_recheck: Duration::from_secs(1),
        ..settings()
    });
    let mut ids = rig.enqueue_requests("early", 20, Lane::Interactive).await;
    for _ in 0..2 {
        assert!(matches!(
            pusher.try_execute_task().await.expect("step"),
            StepOutcome::Worked { delivered: 10, .. }
        ));
    }
    assert_eq!(rig.api_calls().await, 2);

    // Two calls used, five allowed: the next call reports 3/5, past the 50 % pause mark.
    rig.set_faults(json!({"daily_api_limit": 5})).await;
    ids.extend(rig.enqueue_requests("late", 30, Lane::Interactive).await);
    assert!(matches!(
        pusher.try_execute_task().await.expect("step"),
        StepOutcome::Worked { delivered: 10, .. }
    ));
    assert!(!pusher.paused());
    for _ in 0..5 {
        assert_eq!(
            pusher.try_execute_task().await.expect("step"),
            StepOutcome::Paused
        );
    }
    assert!(pusher.paused());
    assert_eq!(
        rig.collection_upserts().await,
        3,
        "no batch sent while paused"
    );
    assert!(rig.api_calls().await < 5, "the last calls were not burned");
    assert_eq!(rig.states(&ids).await.get(&State::Pending), Some(&20));

    rig.clear_faults().await;
    until(Duration::from_secs(10), "sending to resume", || async {
        pusher.try_execute_task().await.expect("step") != StepOutcome::Paused
    })
    .await;
    assert!(!pusher.paused());
    for _ in 0..10 {
        if pusher.try_execute_task().await.expect("step") == StepOutcome::Idle {
            break;
        }
    }
    assert_eq!(rig.states(&ids).await.get(&State::Delivered), Some(&50));
}

#[tokio::test]
async fn the_loop_wakes_on_notify_and_stops_between_batches() {
    let rig = Rig::start(slow_policy()).await;
    let pusher = rig.pusher(PusherSettings {
        // A long poll: only the wake-up can explain a prompt delivery.
        poll_interval: Duration::from_secs(3600),
        ..settings()
    });
    let wake = pusher.notifier();
    let running = Running::start(pusher);
    let ids = rig.enqueue_requests("wake", 3, Lane::Interactive).await;
    wake.notify_one();
    until_all_delivered(&rig, &ids, Duration::from_secs(30)).await;

    rig.set_faults(json!({"latency_ms": [300, 300]})).await;
    let more = rig.enqueue_requests("late", 5, Lane::Interactive).await;
    wake.notify_one();
    until(Duration::from_secs(10), "a batch in flight", || async {
        rig.states(&more).await.get(&State::InFlight) == Some(&5)
    })
    .await;
    // Shutdown while the call is in flight: the batch still completes and is recorded.
    running.stop().await;
    assert_eq!(rig.states(&more).await.get(&State::Delivered), Some(&5));
}

#[tokio::test]
async fn the_loop_sends_a_backlog_in_full_calls() {
    let rig = Rig::start(slow_policy()).await;
    let ids = rig.enqueue_requests("backlog", 450, Lane::Bulk).await;
    let running = Running::start(rig.pusher(settings()));
    until_all_delivered(&rig, &ids, Duration::from_secs(30)).await;
    running.stop().await;
    assert_eq!(rig.collection_upserts().await, 3);
    assert_each_once(&rig, &ids).await;
}
