//! Settings of the Salesforce pusher, validated once when the pusher is built.

use std::time::Duration;

use crate::salesforce::MAX_COLLECTION_RECORDS;

use super::RelayError;

/// How the Salesforce pusher batches, paces and bounds its calls.
#[derive(Debug, Clone, PartialEq)]
pub struct PusherSettings {
    /// Records per sObject Collections call, 1..=200. Fewer records per call spend more of the org's
    /// daily API allocation for the same traffic.
    pub batch_max: usize,
    /// How long a batch that is not yet full waits for more messages before it is sent, so a burst
    /// of concurrent intake requests shares one call. A few milliseconds: a person may be waiting.
    pub linger: Duration,
    /// Batches in flight at once. Messages are claimed only when a slot is free, so their leases do
    /// not run out while they wait for one.
    pub concurrency: usize,
    /// Above this share of the daily API allocation (percent), a growing delay is put between
    /// batches so the remaining calls last longer.
    pub api_usage_slow_pct: f64,
    /// Above this share (percent), sending stops until a periodic check shows room again. Intake
    /// keeps queueing durably meanwhile; readiness reports the pause.
    pub api_usage_pause_pct: f64,
    /// Upper bound for one Salesforce call, and for how long shutdown waits for in-flight batches.
    /// Must be shorter than the outbox lease, or a slow call's messages are claimed a second time.
    pub request_timeout: Duration,
    /// The longest delay between batches in the slow band (reached at `api_usage_pause_pct`).
    pub slow_delay_max: Duration,
    /// While paused, how often the org's usage is checked again (each check costs one API call).
    pub pause_recheck: Duration,
    /// How often the loop looks for due retries when no intake wake-up arrives.
    pub poll_interval: Duration,
    /// After a whole call fails (outage), how long the backlog is held before one message probes
    /// the org; doubles with every failed probe up to `outage_probe_max` (see `breaker`).
    pub outage_probe_min: Duration,
    pub outage_probe_max: Duration,
}

impl Default for PusherSettings {
    fn default() -> Self {
        PusherSettings {
            batch_max: MAX_COLLECTION_RECORDS,
            linger: Duration::from_millis(5),
            concurrency: 4,
            api_usage_slow_pct: 80.0,
            api_usage_pause_pct: 95.0,
            request_timeout: Duration::from_secs(30),
            slow_delay_max: Duration::from_secs(5),
            pause_recheck: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            outage_probe_min: Duration::from_secs(1),
            outage_probe_max: Duration::from_secs(60),
        }
    }
}

impl PusherSettings {
    /// Checks every setting; the first problem found is reported.
    pub fn validate(&self) -> Result<(), RelayError> {
        let problem = if self.batch_max == 0 || self.batch_max > MAX_COLLECTION_RECORDS {
            Some("batch_max must be within 1..=200")
        } else if self.concurrency == 0 {
            Some("concurrency must be at least 1")
        } else if !(0.0..=100.0).contains(&self.api_usage_slow_pct)
            || !(0.0..=100.0).contains(&self.api_usage_pause_pct)
        {
            Some("api usage percentages must be within 0..=100")
        } else if self.api_usage_slow_pct > self.api_usage_pause_pct {
            Some("api_usage_slow_pct must not exceed api_usage_pause_pct")
        } else if self.request_timeout.is_zero() {
            Some("request_timeout must be positive")
        } else if self.pause_recheck.is_zero() || self.poll_interval.is_zero() {
            Some("pause_recheck and poll_interval must be positive")
        } else if self.outage_probe_min.is_zero() || self.outage_probe_max < self.outage_probe_min {
            Some("outage_probe_min must be positive and not above outage_probe_max")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(RelayError::Settings(reason)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert!(PusherSettings::default().validate().is_ok());
    }

    #[test]
    fn rejects_bad_values() {
        let bad = [
            PusherSettings {
                batch_max: 0,
                ..PusherSettings::default()
            },
            PusherSettings {
                batch_max: 201,
                ..PusherSettings::default()
            },
            PusherSettings {
                concurrency: 0,
                ..PusherSettings::default()
            },
            PusherSettings {
                api_usage_slow_pct: 96.0,
                ..PusherSettings::default()
            },
            PusherSettings {
                api_usage_pause_pct: 101.0,
                ..PusherSettings::default()
            },
            PusherSettings {
                request_timeout: Duration::ZERO,
                ..PusherSettings::default()
            },
        ];
        for settings in bad {
            assert!(
                matches!(settings.validate(), Err(RelayError::Settings(_))),
                "{settings:?}"
            );
        }
    }
}
