//! Notable events of the relay, each written once as a log line and a metric (vector's habit), so
//! logs and dashboards never disagree. Events carry codes, counts and object names, never record
//! values: payloads hold national ids.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ops::metrics::{
    ATTEMPTS_TOTAL, INTAKE_TO_SALESFORCE, SF_API_LIMIT, SF_API_USAGE, SF_BATCH_SIZE,
};
use crate::outbox::AttemptOutcome;
use crate::salesforce::ApiUsage;

const DESTINATION: &str = "salesforce";

/// The org's last reported usage, as gauges.
pub(crate) fn api_usage(usage: Option<ApiUsage>) {
    if let Some(usage) = usage {
        metrics::gauge!(SF_API_USAGE).set(usage.used as f64);
        metrics::gauge!(SF_API_LIMIT).set(usage.max as f64);
    }
}

/// Sending stopped because the daily allocation is nearly spent.
pub(crate) fn paused(usage: Option<ApiUsage>) {
    api_usage(usage);
    tracing::warn!(
        used = usage.map(|u| u.used),
        max = usage.map(|u| u.max),
        "Salesforce API usage above the pause mark: sending paused"
    );
}

/// Sending resumed after a pause.
pub(crate) fn resumed(usage: Option<ApiUsage>) {
    api_usage(usage);
    tracing::info!(
        used = usage.map(|u| u.used),
        max = usage.map(|u| u.max),
        "Salesforce API usage back below the pause mark: sending resumed"
    );
}

/// One attempt recorded for one message.
pub(crate) fn attempt(outcome: AttemptOutcome, code: &str) {
    metrics::counter!(
        ATTEMPTS_TOTAL,
        "destination" => DESTINATION,
        "outcome" => outcome_label(outcome),
        "code" => code.to_owned()
    )
    .increment(1);
}

/// A message reached Salesforce: the end-to-end latency from intake.
pub(crate) fn delivered(created_at: DateTime<Utc>, at: DateTime<Utc>) {
    let seconds = (at - created_at).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::histogram!(INTAKE_TO_SALESFORCE).record(seconds);
}

/// What one Collections call did to its messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchDone {
    pub records: usize,
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
    /// Messages another worker or an admin had already moved on (the lease was lost).
    pub stale: usize,
}

impl BatchDone {
    /// Logs the batch (inside the batch's span, which names the object) and records its size.
    pub(crate) fn emit(&self, latency: Duration, call_error: Option<&str>) {
        metrics::histogram!(SF_BATCH_SIZE).record(self.records as f64);
        let latency_ms = latency.as_millis() as u64;
        match call_error {
            None => tracing::debug!(
                records = self.records,
                delivered = self.delivered,
                retried = self.retried,
                failed = self.failed,
                stale = self.stale,
                latency_ms,
                "collections upsert done"
            ),
            Some(code) => tracing::warn!(
                records = self.records,
                retried = self.retried,
                failed = self.failed,
                code,
                latency_ms,
                "collections upsert failed as a whole"
            ),
        }
    }
}

fn outcome_label(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Success => "success",
        AttemptOutcome::Retryable => "retryable",
        AttemptOutcome::Reauth => "reauth",
        AttemptOutcome::Permanent => "permanent",
        AttemptOutcome::RateLimited => "rate_limited",
    }
}
