//! The reconciliation poll: the safety net under Outbound Messaging.
//!
//! Salesforce drops an Outbound Message it could not deliver within 24 h, and delivery can fail silently (a
//! misconfigured endpoint, an outage of ours). Every `poll_interval` the poller asks for every request modified
//! since the watermark minus an overlap and turns each id into a hint; the mirror then dedupes by state hash, so
//! re-reading a record costs an API call but never a second event.
//!
//! The overlap covers records whose `SystemModstamp` is older than the newest one already seen but that became
//! visible later (transactions commit out of order; clocks skew). Airbyte's "silently missing records" bugs
//! come from cursors without such a window (reference/domain.md §0 item 6).
//!
//! Durability order: hints are made durable *before* the watermark moves past them, so a crash between the
//! two re-polls the same window instead of skipping it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::salesforce::SalesforceClient;

use super::error::InboundError;
use super::mirror::{REQUEST_OBJECT, parse_sf_datetime};
use super::soap::is_salesforce_id;
use super::state::InboundState;

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    /// Records turned into hints.
    pub hinted: usize,
    /// The watermark after the poll.
    pub watermark: DateTime<Utc>,
}

/// The poller's dependencies.
#[derive(Clone)]
pub struct Poller {
    pub(crate) state: InboundState,
    pub(crate) client: SalesforceClient,
    pub(crate) overlap: Duration,
}

impl Poller {
    /// One reconciliation poll at `now`.
    #[tracing::instrument(name = "inbound.poll", skip_all)]
    pub async fn poll_once(&self, now: DateTime<Utc>) -> Result<PollOutcome, InboundError> {
        let overlap = chrono::Duration::from_std(self.overlap).unwrap_or_default();
        let watermark = match self.state.watermark().await? {
            Some(w) => w,
            None => {
                // First start: look back one overlap only (no flood of history), and remember it at once so
                // a restart after a long outage still polls from here.
                let start = now - overlap;
                self.state.set_watermark(start).await?;
                start
            }
        };
        let since = watermark - overlap;
        let soql = format!(
            "SELECT Id, SystemModstamp FROM {REQUEST_OBJECT} WHERE SystemModstamp > {} ORDER BY SystemModstamp",
            soql_datetime(since)
        );
        let rows = self.client.query_all(&soql).await?;
        let mut newest = watermark;
        let mut hinted = 0;
        for row in &rows {
            let Some(id) = row
                .get("Id")
                .and_then(|v| v.as_str())
                .filter(|id| is_salesforce_id(id))
            else {
                continue;
            };
            self.state.add_hint(id).await?;
            hinted += 1;
            if let Some(stamp) = row
                .get("SystemModstamp")
                .and_then(|v| v.as_str())
                .and_then(parse_sf_datetime)
            {
                newest = newest.max(stamp);
            }
        }
        // Hints first (each durable when written), then the watermark: never move past a change that is not
        // yet safely hinted.
        if newest > watermark {
            self.state.set_watermark(newest).await?;
        }
        let purged = self.state.purge_seen(now).await?;
        if purged > 0 {
            tracing::debug!(purged, "expired notification ids forgotten");
        }
        metrics::counter!("creditlink_inbound_poll_hints_total").increment(hinted as u64);
        Ok(PollOutcome {
            hinted,
            watermark: newest,
        })
    }
}

/// A SOQL datetime literal (unquoted, UTC): `2026-11-25T10:00:00.000Z`.
pub fn soql_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literal_format() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T10:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(soql_datetime(t), "2026-11-25T10:00:00.500Z");
    }
}
