//! The reconciliation poll: the safety net under Outbound Messaging.
//!
//! Salesforce drops an Outbound Message it could not deliver within 24 h, and delivery can fail silently (a
//! misconfigured endpoint, an outage of ours). Every `poll_interval` the poller asks for every request modified
//! inside its window and turns each *new* change into a hint for the mirror.
//!
//! The window reaches back an overlap before the watermark (the newest `SystemModstamp` seen): records whose
//! stamp is older than the newest one already seen can become visible later (transactions commit out of order;
//! clocks skew). Airbyte's "silently missing records" bugs come from cursors without such a window (the
//! domain reference's list of known failures, item 6).
//!
//! **Cost on a quiet org.** The watermark only moves when something changes, so a window anchored on it alone
//! would return the same records on every poll, for ever, and each would be re-read. Two rules keep an idle
//! poll at one API call that hints nothing:
//! - The window starts an overlap before the *later* of the watermark and the start of the previous
//!   successful poll: a change that was not visible to that poll has a stamp within an overlap of it (the same
//!   assumption the overlap already makes; `overlap` must also cover the skew between our clock and the org's).
//!   Once the org has been quiet for an overlap, the query returns no rows.
//! - A change is hinted once: the poller remembers the `(Id, SystemModstamp)` pairs of its last window and
//!   hints only records whose stamp differs, so records still inside the overlap are not re-read.
//!
//! Both are kept in memory only: after a restart the first poll uses the watermark alone and hints its whole
//! window once (the mirror's state hash makes that harmless).
//!
//! Durability order: hints are made durable *before* the watermark moves past them, so a crash between the
//! two re-polls the same window instead of skipping it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::mapping::MappingSet;
use crate::salesforce::SalesforceClient;

use super::error::InboundError;
use super::mirror::parse_sf_datetime;
use super::names::{ID, RequestNames, SYSTEM_MODSTAMP};
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

/// What the poller remembers between polls (in memory; see the module documentation).
#[derive(Debug, Default)]
struct Memory {
    /// When the previous successful poll started.
    last_poll: Option<DateTime<Utc>>,
    /// `Id → SystemModstamp` of every row of the previous window.
    seen: HashMap<String, String>,
}

/// The poller's dependencies.
#[derive(Clone)]
pub struct Poller {
    pub(crate) state: InboundState,
    pub(crate) client: SalesforceClient,
    pub(crate) mappings: Arc<ArcSwap<MappingSet>>,
    pub(crate) overlap: Duration,
    memory: Arc<Mutex<Memory>>,
}

impl Poller {
    pub(crate) fn new(
        state: InboundState,
        client: SalesforceClient,
        mappings: Arc<ArcSwap<MappingSet>>,
        overlap: Duration,
    ) -> Poller {
        Poller {
            state,
            client,
            mappings,
            overlap,
            memory: Arc::default(),
        }
    }

    /// One reconciliation poll at `now`. Polls must not overlap each other (one poller loop runs them).
    #[tracing::instrument(name = "inbound.poll", skip_all)]
    pub async fn poll_once(&self, now: DateTime<Utc>) -> Result<PollOutcome, InboundError> {
        let names = RequestNames::resolve(&self.mappings.load())?;
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
        let last_poll = self.memory.lock().last_poll;
        let since = last_poll.map_or(watermark, |t| t.max(watermark)) - overlap;
        let soql = format!(
            "SELECT {ID}, {SYSTEM_MODSTAMP} FROM {} WHERE {SYSTEM_MODSTAMP} > {} ORDER BY {SYSTEM_MODSTAMP}",
            names.object,
            soql_datetime(since)
        );
        let rows = self.client.query_all(&soql).await?;
        let mut newest = watermark;
        let mut hinted = 0;
        let mut window = HashMap::with_capacity(rows.len());
        // Taken out for the poll (a failed poll leaves it empty: the next one hints its window once more).
        let seen = std::mem::take(&mut self.memory.lock().seen);
        for row in &rows {
            let text = |field: &str| row.get(field).and_then(|v| v.as_str());
            let Some(id) = text(ID).filter(|id| is_salesforce_id(id)) else {
                continue;
            };
            let stamp = text(SYSTEM_MODSTAMP).unwrap_or_default();
            if seen.get(id).map(String::as_str) != Some(stamp) {
                self.state.add_hint(id).await?;
                hinted += 1;
            }
            if let Some(t) = parse_sf_datetime(stamp) {
                newest = newest.max(t);
            }
            window.insert(id.to_owned(), stamp.to_owned());
        }
        // Hints first (each durable when written), then the watermark: never move past a change that is not
        // yet safely hinted.
        if newest > watermark {
            self.state.set_watermark(newest).await?;
        }
        *self.memory.lock() = Memory {
            last_poll: Some(now),
            seen: window,
        };
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
