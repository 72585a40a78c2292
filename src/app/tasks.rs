//! The daemon's small background tasks: readiness probes that must not block, gauges, key purging, and the
//! SIGHUP mapping reload. Each stops when the workers' token is cancelled.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mapping::MappingSet;
use crate::ops::Health;
use crate::ops::metrics as m;
use crate::outbox::{Outbox, RETENTION_BATCH, RETENTION_ROLE, RetentionPolicy, State};
use crate::relay::SalesforcePusher;
use crate::salesforce::SalesforceClient;
use crate::store::Store;

pub(super) struct Context {
    pub store: Store,
    /// Cancelled when the store stayed unwritable: the daemon then shuts down and exits non-zero.
    pub store_failed: CancellationToken,
    pub outbox: Outbox,
    pub client: SalesforceClient,
    pub health: Health,
    pub mappings: Arc<ArcSwap<MappingSet>>,
    pub mappings_dir: PathBuf,
    pub pusher: SalesforcePusher,
    pub retention: RetentionPolicy,
}

pub(super) fn spawn_all(tracker: &TaskTracker, stop: &CancellationToken, ctx: Context) {
    // Store: a durable probe write every few seconds; readiness reads the last result, and a store that
    // stays unwritable stops the daemon (see `StoreWatch`).
    {
        let watch = StoreWatch::new(ctx.store.clone(), ctx.store_failed.clone());
        let flag = watch.writable.clone();
        ctx.health.add_check(
            "store",
            Arc::new(move || {
                if flag.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("store not writable".into())
                }
            }),
        );
        let watch = Arc::new(watch);
        every(tracker, stop, STORE_PROBE_INTERVAL, move || {
            let watch = watch.clone();
            async move { watch.probe().await }
        });
    }

    // Salesforce token: get one at start and whenever the org refused the cached one.
    {
        let client = ctx.client.clone();
        ctx.health.add_check(
            "salesforce_token",
            Arc::new(move || {
                if client.token_valid() {
                    Ok(())
                } else {
                    Err("no valid Salesforce token".into())
                }
            }),
        );
        let client = ctx.client.clone();
        every(tracker, stop, Duration::from_secs(5), move || {
            let client = client.clone();
            async move {
                if !client.token_valid()
                    && let Err(e) = client.ensure_token().await
                {
                    tracing::warn!(error = %e, "cannot get a Salesforce token yet");
                }
            }
        });
    }

    // Gauges: queue depth by state, age of the oldest pending message, the org's API usage.
    {
        let (outbox, client, pusher) = (ctx.outbox.clone(), ctx.client.clone(), ctx.pusher.clone());
        every(tracker, stop, Duration::from_secs(2), move || {
            let (outbox, client, pusher) = (outbox.clone(), client.clone(), pusher.clone());
            async move {
                let counts = match outbox.counts().await {
                    Ok(counts) => counts,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the outbox counts failed");
                        return;
                    }
                };
                for state in State::ALL {
                    let name = serde_json::to_value(state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    metrics::gauge!(m::OUTBOX_MESSAGES, "state" => name)
                        .set(counts.get(state) as f64);
                }
                if let Ok(age) = outbox.oldest_pending_age(Utc::now()).await {
                    metrics::gauge!(m::OUTBOX_OLDEST_PENDING_AGE)
                        .set(age.map_or(0.0, |a| a.as_secs_f64()));
                }
                if let Some(usage) = client.api_usage() {
                    metrics::gauge!(m::SF_API_USAGE).set(usage.used as f64);
                    metrics::gauge!(m::SF_API_LIMIT).set(usage.max as f64);
                }
                metrics::gauge!("creditlink_salesforce_pusher_paused").set(if pusher.paused() {
                    1.0
                } else {
                    0.0
                });
            }
        });
    }

    // Idempotency keys past their TTL.
    {
        let outbox = ctx.outbox.clone();
        every(tracker, stop, Duration::from_secs(600), move || {
            let outbox = outbox.clone();
            async move {
                match outbox.purge_expired_keys(Utc::now()).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(purged = n, "expired idempotency keys purged")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
                }
            }
        });
    }

    // Retention: erase old payloads, delete old history; one daemon at a time with a shared store.
    {
        let (outbox, store, mappings) =
            (ctx.outbox.clone(), ctx.store.clone(), ctx.mappings.clone());
        let retention = ctx.retention;
        let leadership = Arc::new(tokio::sync::Mutex::new(None));
        every(tracker, stop, RETENTION_INTERVAL, move || {
            let (outbox, store, leadership) = (outbox.clone(), store.clone(), leadership.clone());
            let mut policy = retention.clone();
            // The references the status document shows survive erasure: whatever the report-request
            // outbound mappings read (request key, bank reference, status, reason).
            policy.keep_fields = mappings
                .load()
                .outbound_reads(crate::inbound::MAPPING_KIND)
                .into_iter()
                .flat_map(|(_, fields)| fields.into_iter().map(|(from, _)| from))
                .collect();
            async move {
                let mut leadership = leadership.lock().await;
                if leadership.is_none() {
                    match store.lead(RETENTION_ROLE).await {
                        Ok(l) => *leadership = Some(l),
                        Err(e) => {
                            tracing::warn!(error = %e, "retention: leader election unavailable");
                            return;
                        }
                    }
                }
                if let Some(l) = leadership.as_mut()
                    && l.is_leader().await
                {
                    match outbox.retire(&policy, outbox.now(), RETENTION_BATCH).await {
                        Ok(done) if done.erased + done.purged > 0 => tracing::info!(
                            payloads_erased = done.erased,
                            messages_deleted = done.purged,
                            "retention applied"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "retention failed; retrying next round")
                        }
                    }
                }
            }
        });
    }

    // SIGHUP: reload mappings; an invalid set is refused and the last good one kept.
    {
        let (mappings, dir, stop) = (ctx.mappings, ctx.mappings_dir, stop.clone());
        tracker.spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::error!("cannot install SIGHUP handler: mapping reload unavailable");
                return;
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = hup.recv() => { reload_mappings(&mappings, &dir); }
                }
            }
        });
    }
}

/// Loads the mapping directory again and swaps it in when valid; returns whether it was swapped.
pub fn reload_mappings(mappings: &ArcSwap<MappingSet>, dir: &std::path::Path) -> bool {
    match MappingSet::load_dir(dir) {
        Ok(set) => {
            tracing::info!(version = set.version(), "mappings reloaded");
            mappings.store(Arc::new(set));
            metrics::counter!(m::MAPPING_RELOADS_TOTAL, "result" => "ok").increment(1);
            true
        }
        Err(problems) => {
            for p in &problems {
                tracing::error!(problem = %p, "mapping reload refused");
            }
            tracing::error!(
                kept = mappings.load().version(),
                problems = problems.len(),
                "invalid mappings: keeping the last good set"
            );
            metrics::counter!(m::MAPPING_RELOADS_TOTAL, "result" => "error").increment(1);
            false
        }
    }
}

/// Runs `f` every `period` (first run at once) until `stop` fires.
fn every<F, Fut>(tracker: &TaskTracker, stop: &CancellationToken, period: Duration, f: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = stop.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => f().await,
            }
        }
    });
}

/// How often retention runs (its limits are days; an hour late is nothing).
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the store write probe runs.
const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Consecutive failed probes after which the daemon gives up on the store (30 s at the interval above).
const STORE_PROBE_FAILURES_BEFORE_EXIT: u32 = 6;

/// Watches the store's writability.
///
/// sled keeps an I/O error (a full disk, EIO) as a process-wide sticky error: once a flush failed, every
/// later write fails too, even after space is freed, until the database is reopened. So the daemon does
/// not wait for the disk to recover: after [`STORE_PROBE_FAILURES_BEFORE_EXIT`] failed probes in a row it
/// cancels `failed`, which shuts it down with an error exit, and the supervisor (`Restart=on-failure`,
/// Docker's restart policy) starts it again on a reopened store. Nothing acknowledged is lost: every
/// acknowledged write was durable before its answer, and writes that failed were never acknowledged.
pub(super) struct StoreWatch {
    store: Store,
    failed: CancellationToken,
    pub(super) writable: Arc<AtomicBool>,
    failures: AtomicU32,
}

impl StoreWatch {
    pub(super) fn new(store: Store, failed: CancellationToken) -> Self {
        StoreWatch {
            store,
            failed,
            writable: Arc::new(AtomicBool::new(true)),
            failures: AtomicU32::new(0),
        }
    }

    /// One probe: records the result for readiness, and gives up on the store after too many failures.
    pub(super) async fn probe(&self) {
        match self.store.check_writable().await {
            Ok(()) => {
                self.failures.store(0, Ordering::Relaxed);
                self.writable.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if self.writable.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "store write probe failed");
                }
                if failures >= STORE_PROBE_FAILURES_BEFORE_EXIT && !self.failed.is_cancelled() {
                    tracing::error!(
                        error = %e,
                        failures,
                        "the store stayed unwritable; stopping so the supervisor restarts the daemon on a reopened store"
                    );
                    self.failed.cancel();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use tokio_util::sync::CancellationToken;

    use super::{STORE_PROBE_FAILURES_BEFORE_EXIT, StoreWatch};
    use crate::outbox::Queue;
    use crate::store::memory::MemoryBackend;
    use crate::store::{Backend, Kv, Store, StoreError};

    /// A memory store whose probe fails while `broken` is set.
    #[derive(Default)]
    struct Flaky {
        inner: MemoryBackend,
        broken: AtomicBool,
    }

    #[async_trait]
    impl Backend for Flaky {
        fn queue(&self) -> Result<Arc<dyn Queue>, StoreError> {
            self.inner.queue()
        }
        fn kv(&self, name: &str) -> Result<Arc<dyn Kv>, StoreError> {
            self.inner.kv(name)
        }
        async fn check_writable(&self) -> Result<(), StoreError> {
            if self.broken.load(Ordering::Relaxed) {
                Err(StoreError::Io(std::io::Error::other(
                    "No space left on device",
                )))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn a_store_that_stays_unwritable_stops_the_daemon_and_a_blip_does_not() {
        let backend = Arc::new(Flaky::default());
        let failed = CancellationToken::new();
        let watch = StoreWatch::new(Store::from_backend(backend.clone()), failed.clone());
        backend.broken.store(true, Ordering::Relaxed);
        for _ in 1..STORE_PROBE_FAILURES_BEFORE_EXIT {
            watch.probe().await;
        }
        assert!(!watch.writable.load(Ordering::Relaxed), "not ready");
        // The disk recovers before the limit: ready again, and the count starts over.
        backend.broken.store(false, Ordering::Relaxed);
        watch.probe().await;
        assert!(watch.writable.load(Ordering::Relaxed));
        assert!(!failed.is_cancelled());
        backend.broken.store(true, Ordering::Relaxed);
        for _ in 0..STORE_PROBE_FAILURES_BEFORE_EXIT {
            watch.probe().await;
        }
        assert!(failed.is_cancelled(), "the daemon is told to stop");
    }
}
