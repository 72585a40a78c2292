//! The API usage governor: keeps the pusher from spending the org's whole daily API allocation.
//!
//! Salesforce reports usage on every response (`Sforce-Limit-Info`), so reading it is free; the
//! client keeps the last value. Below `api_usage_slow_pct` the pusher sends freely; between that and
//! `api_usage_pause_pct` it waits between batches, longer the closer usage gets to the pause mark;
//! above it, it stops sending and re-checks with one `GET /limits` per `pause_recheck`. The limit is
//! a rolling 24 h window, so room comes back by itself (or when an admin raises the allocation).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::salesforce::{ApiUsage, SalesforceClient};

use super::events;
use super::settings::PusherSettings;

/// What the usage allows right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pace {
    Go,
    /// Send, but only after this delay.
    Wait(Duration),
    Paused,
}

/// Whether a batch may be sent now (after any pacing delay already waited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Go,
    Paused,
}

/// The pace for a usage reading. Unknown usage (no call made yet) never holds anything back.
pub(crate) fn pace(usage: Option<ApiUsage>, settings: &PusherSettings) -> Pace {
    let Some(usage) = usage.filter(|u| u.max > 0) else {
        return Pace::Go;
    };
    let pct = usage.used as f64 * 100.0 / usage.max as f64;
    let (slow, pause) = (settings.api_usage_slow_pct, settings.api_usage_pause_pct);
    if pct >= pause {
        Pace::Paused
    } else if pct > slow {
        // Linear in how far into the slow band usage is: 0 at the slow mark, the maximum at pause.
        let depth = (pct - slow) / (pause - slow);
        Pace::Wait(settings.slow_delay_max.mul_f64(depth.clamp(0.0, 1.0)))
    } else {
        Pace::Go
    }
}

/// Pause state shared by the pusher's steps.
#[derive(Debug, Default)]
pub(crate) struct Governor {
    paused: AtomicBool,
    /// When usage was last fetched on purpose while paused.
    last_check: Mutex<Option<Instant>>,
}

impl Governor {
    pub(crate) fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Decides whether the next batch may go, waiting out any pacing delay first. While paused, at
    /// most one `GET /limits` per `pause_recheck` is spent to learn whether room came back.
    pub(crate) async fn admit(
        &self,
        client: &SalesforceClient,
        settings: &PusherSettings,
    ) -> Admission {
        let usage = client.api_usage();
        events::api_usage(usage);
        match pace(usage, settings) {
            Pace::Go => self.resume(usage),
            Pace::Wait(delay) => {
                self.resume(usage);
                tracing::debug!(
                    delay_ms = delay.as_millis() as u64,
                    "API usage high: slowing down"
                );
                tokio::time::sleep(delay).await;
            }
            Pace::Paused => {
                if !self.paused.swap(true, Ordering::Relaxed) {
                    *self.last_check.lock() = Some(Instant::now());
                    events::paused(usage);
                    return Admission::Paused;
                }
                if !self.recheck_due(settings.pause_recheck) {
                    return Admission::Paused;
                }
                // The answer's header refreshes `api_usage`; an error (the limit itself) carries it too.
                if let Err(error) = client.limits().await {
                    tracing::debug!(code = error.code(), "usage re-check failed");
                }
                let usage = client.api_usage();
                events::api_usage(usage);
                match pace(usage, settings) {
                    Pace::Paused => return Admission::Paused,
                    Pace::Go | Pace::Wait(_) => self.resume(usage),
                }
            }
        }
        Admission::Go
    }

    fn recheck_due(&self, every: Duration) -> bool {
        let mut last = self.last_check.lock();
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn resume(&self, usage: Option<ApiUsage>) {
        if self.paused.swap(false, Ordering::Relaxed) {
            events::resumed(usage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(used: u64, max: u64) -> Option<ApiUsage> {
        Some(ApiUsage { used, max })
    }

    #[test]
    fn pace_bands() {
        let s = PusherSettings {
            api_usage_slow_pct: 80.0,
            api_usage_pause_pct: 90.0,
            slow_delay_max: Duration::from_secs(10),
            ..PusherSettings::default()
        };
        assert_eq!(pace(None, &s), Pace::Go);
        assert_eq!(pace(usage(5, 0), &s), Pace::Go);
        assert_eq!(pace(usage(79, 100), &s), Pace::Go);
        assert_eq!(pace(usage(80, 100), &s), Pace::Go);
        assert_eq!(pace(usage(85, 100), &s), Pace::Wait(Duration::from_secs(5)));
        assert_eq!(pace(usage(90, 100), &s), Pace::Paused);
        assert_eq!(pace(usage(120, 100), &s), Pace::Paused);
    }

    #[test]
    fn delay_grows_with_usage() {
        let s = PusherSettings::default();
        let delays: Vec<Duration> = (800..950)
            .map(|used| match pace(usage(used, 1000), &s) {
                Pace::Go => Duration::ZERO,
                Pace::Wait(d) => d,
                Pace::Paused => panic!("paused below the pause mark at {used}"),
            })
            .collect();
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert!(delays.last().is_some_and(|d| *d <= s.slow_delay_max));
    }

    #[test]
    fn equal_marks_pause_without_dividing_by_zero() {
        let s = PusherSettings {
            api_usage_slow_pct: 90.0,
            api_usage_pause_pct: 90.0,
            ..PusherSettings::default()
        };
        assert_eq!(pace(usage(89, 100), &s), Pace::Go);
        assert_eq!(pace(usage(90, 100), &s), Pace::Paused);
    }
}
