//! Endpoint health: when has an endpoint been failing since, and is it time to disable it?
//!
//! Pure logic; the caller persists the struct (it is serde) next to the endpoint. Following Svix and the
//! delivery reference: an endpoint is disabled only after it has failed *continuously* for `disable_after`
//! (default 5 days); any success resets the clock. A 410 Gone disables at once, which is the sender's
//! `SendOutcome::Gone`, not this struct's business.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Default continuous-failure window before an endpoint is disabled.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHealth {
    /// The first failure since the last success; `None` while healthy.
    pub first_failure_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
}

impl EndpointHealth {
    /// A delivery succeeded: the endpoint is healthy again.
    pub fn record_success(&mut self, now: DateTime<Utc>) {
        self.first_failure_at = None;
        self.last_success_at = Some(now);
    }

    /// An attempt failed; starts the clock if it is not running.
    pub fn record_failure(&mut self, now: DateTime<Utc>) {
        self.first_failure_at.get_or_insert(now);
    }

    /// Whether the endpoint has been failing continuously for at least `disable_after`.
    pub fn should_disable(&self, now: DateTime<Utc>, disable_after: Duration) -> bool {
        let Some(first) = self.first_failure_at else {
            return false;
        };
        let window = chrono::Duration::from_std(disable_after).unwrap_or(chrono::Duration::MAX);
        now.signed_duration_since(first) >= window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disables_only_after_continuous_failure() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = chrono::Duration::days(1);
        let mut health = EndpointHealth::default();
        assert!(!health.should_disable(t0, DEFAULT_DISABLE_AFTER));
        health.record_failure(t0);
        health.record_failure(t0 + day * 3);
        assert_eq!(health.first_failure_at, Some(t0));
        assert!(!health.should_disable(t0 + day * 4, DEFAULT_DISABLE_AFTER));
        assert!(health.should_disable(t0 + day * 5, DEFAULT_DISABLE_AFTER));
        health.record_success(t0 + day * 5);
        assert!(!health.should_disable(t0 + day * 9, DEFAULT_DISABLE_AFTER));
        health.record_failure(t0 + day * 9);
        assert!(!health.should_disable(t0 + day * 13, DEFAULT_DISABLE_AFTER));
        assert!(health.should_disable(t0 + day * 14, DEFAULT_DISABLE_AFTER));
    }
}
