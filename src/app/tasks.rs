//! The daemon's small background tasks: readiness probes that must not block, gauges, key purging, and the
//! SIGHUP mapping reload. Each stops when the workers' token is cancelled.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mapping::MappingSet;
use crate::ops::Health;
use crate::ops::metrics as m;
use crate::outbox::{Outbox, State};
use crate::relay::SalesforcePusher;
use crate::salesforce::SalesforceClient;
use crate::store::Store;

pub(super) struct Context {
    pub store: Store,
    pub outbox: Outbox,
    pub client: SalesforceClient,
    pub health: Health,
    pub mappings: Arc<ArcSwap<MappingSet>>,
    pub mappings_dir: PathBuf,
    pub pusher: SalesforcePusher,
}

pub(super) fn spawn_all(tracker: &TaskTracker, stop: &CancellationToken, ctx: Context) {
    // Store: a flushed probe write every few seconds; readiness reads the last result.
    let writable = Arc::new(AtomicBool::new(true));
    {
        let flag = writable.clone();
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
        let store = ctx.store.clone();
        every(tracker, stop, Duration::from_secs(5), move || {
            let (store, flag) = (store.clone(), writable.clone());
            async move {
                let ok = store.check_writable().await.is_ok();
                if !ok && flag.load(Ordering::Relaxed) {
                    tracing::error!("store write probe failed");
                }
                flag.store(ok, Ordering::Relaxed);
            }
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
                for state in [
                    State::Pending,
                    State::InFlight,
                    State::Delivered,
                    State::Failed,
                    State::Dead,
                    State::Discarded,
                ] {
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
