//! Retention: the personal data in delivered and dead-lettered messages is erased after
//! `[store] payload_retention`; the history (references, states, attempts, errors, Salesforce ids)
//! is kept for `[store] history_retention` (forever by default), then deleted too.
//!
//! The job is a singleton (one daemon of several sharing a database runs it, under the store's
//! leadership role [`RETENTION_ROLE`]) and works in batches, so a large backlog never holds one long
//! transaction. Each batch is one durable [`super::Queue::retire`] call; its cost follows what it
//! erases or deletes, never the size of the history kept.
//!
//! What an erased message still answers: `get` returns it with `payload_erased_at` set and of its
//! payload only the reference fields ([`RetentionPolicy::keep_fields`]; `null` when none), so the bank's status document (built from state, attempts and the mirrored
//! view) still works, and an `Idempotency-Key` replay still answers the original id and outcome (keys
//! live `idempotency_ttl`, which is never longer than the history). An admin `retry` of an erased
//! message is refused ([`super::OutboxError::PayloadErased`]): there is nothing left to send.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::backend::{Retention, Retired};
use super::{Outbox, OutboxError};
use crate::ops::metrics as m;

/// The leadership role of the retention job.
pub const RETENTION_ROLE: &str = "outbox.retention";

/// How long terminal messages keep their payload, and their history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// After completion, the payload is erased.
    pub payload: Duration,
    /// After completion, the whole message and its attempts are deleted; `None` keeps them forever.
    pub history: Option<Duration>,
    /// Payload fields an erasure keeps: the references the status document shows (the daemon passes
    /// the Salesforce fields its outbound mappings read — request key, bank reference, status).
    pub keep_fields: Vec<String>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            payload: Duration::from_secs(7 * 24 * 3600),
            history: None,
            keep_fields: Vec::new(),
        }
    }
}

/// Messages erased or deleted per batch.
pub const RETENTION_BATCH: usize = 500;

impl Outbox {
    /// Applies `policy` as of `now`, batch after batch until nothing is left; returns the totals.
    /// Counts `creditlink_retention_purged_total{kind="payload"|"history"}`.
    pub async fn retire(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        batch: usize,
    ) -> Result<Retired, OutboxError> {
        let batch = batch.max(1);
        let ago = |d: Duration| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let retention = Retention {
            erase_before: ago(policy.payload),
            purge_before: policy.history.map(ago),
            max: batch,
            now,
            keep: policy.keep_fields.clone().into(),
        };
        let mut total = Retired::default();
        loop {
            let done = self.inner.queue.retire(retention.clone()).await?;
            metrics::counter!(m::RETENTION_PURGED_TOTAL, "kind" => "payload")
                .increment(done.erased as u64);
            metrics::counter!(m::RETENTION_PURGED_TOTAL, "kind" => "history")
                .increment(done.purged as u64);
            total.erased += done.erased;
            total.purged += done.purged;
            if done.erased < batch && done.purged < batch {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}
