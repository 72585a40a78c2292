//! The mirror worker: turns hints ("record X may have changed") into bank events.
//!
//! Push is only a hint: a notification may be stale, duplicated or reordered, so the worker always re-reads the
//! record and acts on what Salesforce holds *now*. Duplicates and reordering therefore converge on the latest
//! state, and one event is sent per real state change. One step takes up to [`BATCH`] due hints and re-reads
//! them with **one SOQL query** (`WHERE Id IN (...)`, the fields every outbound mapping reads), and the newest
//! report file of every Completed one with one more; only the PDF downloads are per record. Each record then:
//!
//! 1. Skip records creditlink did not create (no request key) and changes last made by creditlink's own
//!    integration user (echo suppression). A record the query does not return was deleted.
//! 2. The *mirrored state* is the status, the status reason and, when Completed, the id of the latest
//!    `ContentVersion` linked to the record (ContentVersions are immutable, so a new id is a new report and the
//!    same id the same bytes). Its SHA-256 is compared with the last one mirrored; equal → nothing to do.
//! 3. On a change: map the record (`report_request` outbound mapping, the owning bank's variant), store the
//!    report in the vault when Completed (its `ContentSize` checked against the vault's limit *before* the
//!    download, and the download cut off at that limit), then enqueue the bank event (plus e-mails for Rejected
//!    and Action Required) under keys that carry the record's change sequence (see `events`).
//! 4. Save the event's `data` as the request's view (what `GET /api/v1/report-requests/{id}` shows, so the
//!    status document and the webhooks agree), the new sequence and hash, settle the hint (every write
//!    durable when it returns).
//!
//! The object and field names come from the mappings (`names`). Limitation: echo suppression looks only at
//! `LastModifiedById`. A bureau change immediately overwritten by a creditlink write before the hint is
//! processed is seen as creditlink's; creditlink never writes the status, and the next bureau change is
//! mirrored with the then-current state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::BankConfig;
use crate::lifecycle::Lifecycle;
use crate::mapping::MappingSet;
use crate::outbox::Outbox;
use crate::salesforce::{ContentVersionRef, JsonMap, SalesforceClient, SfError, soql_id_list};
use crate::store::StoreError;
use crate::vault::Vault;

use super::error::InboundError;
use super::events::{self, Change, Mirrored};
use super::names::{LAST_MODIFIED_BY, LAST_MODIFIED_DATE, MAPPING_KIND, RequestNames};
use super::soap::is_salesforce_id;
use super::state::{Hint, InboundState};

/// Most hints re-read with one query (SOQL's `IN` list stays far below the query length limit at 200 ids).
pub const BATCH: usize = 200;
/// The status whose report file is part of the mirrored state.
const COMPLETED: &str = "Completed";

/// Longest wait between retries of one failing hint.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What one [`Mirror::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorOutcome {
    /// No hint is due; `next_due` is when the earliest deferred one is.
    Idle { next_due: Option<DateTime<Utc>> },
    /// Events were enqueued for a state change.
    Mirrored { record_id: String, event: String },
    /// The record's mirrored state has not changed since the last event.
    Unchanged { record_id: String },
    /// The change is not for banks to hear about.
    Skipped {
        record_id: String,
        reason: SkipReason,
    },
    /// A retryable failure; the hint stays and is retried after a backoff.
    Deferred { record_id: String, error: String },
    /// A permanent failure; the hint is dropped (logged, counted).
    Dropped { record_id: String, error: String },
}

/// Why a change was not mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// No request key: not created through creditlink.
    NotOurs,
    /// Last modified by creditlink's integration user.
    Echo,
    /// The record no longer exists.
    Deleted,
}

/// The worker's dependencies. Cheap to clone.
#[derive(Clone)]
pub struct Mirror {
    pub(crate) state: InboundState,
    pub(crate) outbox: Outbox,
    pub(crate) client: SalesforceClient,
    pub(crate) vault: Arc<Vault>,
    pub(crate) mappings: Arc<ArcSwap<MappingSet>>,
    pub(crate) banks: Arc<Vec<BankConfig>>,
    /// Base URL of report and status links, without a trailing slash.
    pub(crate) public_url: String,
}

/// A failure as a hint's bookkeeping needs it; one batch-wide failure settles every hint of the batch.
struct Failure {
    retryable: bool,
    kind: &'static str,
    message: String,
}

impl From<InboundError> for Failure {
    fn from(e: InboundError) -> Self {
        Failure {
            retryable: e.is_retryable(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// One batch's reads: the records by id (15-character form) and the latest report of each Completed one.
struct Fetched {
    records: HashMap<String, JsonMap>,
    reports: Result<HashMap<String, ContentVersionRef>, SfError>,
}

impl Mirror {
    /// Processes up to [`BATCH`] due hints; returns one outcome per hint, or `[Idle]` when none is due. Only
    /// store failures are returned as errors: everything else is recorded on the hint (deferred) or logged and
    /// dropped.
    #[tracing::instrument(name = "inbound.mirror", skip_all)]
    pub async fn step(&self, now: DateTime<Utc>) -> Result<Vec<MirrorOutcome>, StoreError> {
        let batch = self.state.due_batch(now, BATCH).await?;
        let due = batch.due;
        if due.is_empty() {
            let next_due = batch
                .earliest_ms
                .and_then(DateTime::<Utc>::from_timestamp_millis);
            return Ok(vec![MirrorOutcome::Idle { next_due }]);
        }
        let mappings = self.mappings.load_full();
        let names = RequestNames::resolve(&mappings);
        let valid: Vec<&str> = due
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| is_salesforce_id(id))
            .collect();
        let fetched = match &names {
            Ok(names) => self.fetch(names, &valid).await,
            Err(_) => Ok(Fetched {
                records: HashMap::new(),
                reports: Ok(HashMap::new()),
            }),
        };
        let mut outcomes = Vec::with_capacity(due.len());
        for (record_id, hint) in &due {
            let result = match (&names, &fetched) {
                _ if !is_salesforce_id(record_id) => Err(Failure::from(InboundError::Shape(
                    format!("hint for an invalid record id {record_id:?}"),
                ))),
                (Err(e), _) => Err(Failure {
                    retryable: e.is_retryable(),
                    kind: e.kind(),
                    message: e.to_string(),
                }),
                (_, Err(e)) => Err(Failure::from(InboundError::from(e.clone()))),
                (Ok(names), Ok(fetched)) => self
                    .mirror_record(names, &mappings, record_id, fetched)
                    .await
                    .map_err(Failure::from),
            };
            outcomes.push(self.settle(now, record_id, hint, result).await?);
        }
        Ok(outcomes)
    }

    /// Removes, defers or drops the hint after its record was processed.
    async fn settle(
        &self,
        now: DateTime<Utc>,
        record_id: &str,
        hint: &Hint,
        result: Result<MirrorOutcome, Failure>,
    ) -> Result<MirrorOutcome, StoreError> {
        let record_id = record_id.to_owned();
        Ok(match result {
            Ok(done) => {
                self.state.finish_hint(&record_id, hint).await?;
                done
            }
            Err(e) if e.retryable => {
                let delay = backoff(hint.attempts);
                let not_before = now + chrono::Duration::from_std(delay).unwrap_or_default();
                self.state.defer_hint(&record_id, hint, not_before).await?;
                tracing::warn!(record_id = %record_id, attempts = hint.attempts + 1, error = %e.message,
                    retry_in_ms = delay.as_millis() as u64, "mirroring deferred");
                metrics::counter!("creditlink_inbound_mirror_errors_total", "kind" => e.kind, "retryable" => "true")
                    .increment(1);
                MirrorOutcome::Deferred {
                    record_id,
                    error: e.message,
                }
            }
            Err(e) => {
                self.state.finish_hint(&record_id, hint).await?;
                tracing::error!(record_id = %record_id, error = %e.message, "status change cannot be mirrored; dropped");
                metrics::counter!("creditlink_inbound_mirror_errors_total", "kind" => e.kind, "retryable" => "false")
                    .increment(1);
                MirrorOutcome::Dropped {
                    record_id,
                    error: e.message,
                }
            }
        })
    }

    /// Reads the batch's records with one query and the latest report of every Completed one with another.
    async fn fetch(&self, names: &RequestNames, ids: &[&str]) -> Result<Fetched, SfError> {
        if ids.is_empty() {
            return Ok(Fetched {
                records: HashMap::new(),
                reports: Ok(HashMap::new()),
            });
        }
        let soql = format!(
            "SELECT {} FROM {} WHERE Id IN ({})",
            names.select.join(", "),
            names.object,
            soql_id_list(ids)?
        );
        let records: HashMap<String, JsonMap> = self
            .client
            .query_all(&soql)
            .await?
            .into_iter()
            .filter_map(|r| Some((short_id(text(&r, "Id")?)?.to_owned(), r)))
            .collect();
        let completed: Vec<&str> = records
            .values()
            .filter(|r| self.needs_report(names, r))
            .filter_map(|r| text(r, "Id"))
            .collect();
        let reports = self
            .client
            .latest_content_versions(&completed)
            .await
            .map(|found| {
                found
                    .into_iter()
                    .filter_map(|(id, v)| Some((short_id(&id)?.to_owned(), v)))
                    .collect()
            });
        Ok(Fetched { records, reports })
    }

    /// Whether the record's mirrored state includes a report: creditlink's, not an echo, Completed.
    fn needs_report(&self, names: &RequestNames, record: &JsonMap) -> bool {
        text(record, &names.request_key).is_some()
            && !self.is_echo(record)
            && text(record, &names.status) == Some(COMPLETED)
    }

    fn is_echo(&self, record: &JsonMap) -> bool {
        let me = self.client.identity().map(|i| i.user_id);
        matches!((&me, text(record, LAST_MODIFIED_BY)), (Some(me), Some(by)) if same_id(me, by))
    }

    /// Mirrors one record's current state (steps 1-4 of the module documentation), except for settling the
    /// hint, which the caller does.
    async fn mirror_record(
        &self,
        names: &RequestNames,
        mappings: &MappingSet,
        record_id: &str,
        fetched: &Fetched,
    ) -> Result<MirrorOutcome, InboundError> {
        let Some(record) = short_id(record_id).and_then(|id| fetched.records.get(id)) else {
            return Ok(skipped(record_id, SkipReason::Deleted));
        };
        let Some(request_key) = text(record, &names.request_key) else {
            return Ok(skipped(record_id, SkipReason::NotOurs));
        };
        if self.is_echo(record) {
            return Ok(skipped(record_id, SkipReason::Echo));
        }
        let status = text(record, &names.status).unwrap_or_default();
        let report = if status == COMPLETED {
            let reports = fetched.reports.as_ref().map_err(|e| e.clone())?;
            let found = short_id(record_id).and_then(|id| reports.get(id));
            Some(found.ok_or(InboundError::ReportMissing)?)
        } else {
            None
        };
        let reason = names.reason.as_deref().and_then(|f| text(record, f));
        let state_hash = state_hash(status, reason, report.map(|r| r.id.as_str()));
        let previous = self
            .state
            .mirrored(record_id)
            .await?
            .map(|v| Mirrored::decode(&v));
        if previous.as_ref().map(|p| p.state_hash.as_str()) == Some(state_hash.as_str()) {
            return Ok(MirrorOutcome::Unchanged {
                record_id: record_id.to_owned(),
            });
        }

        let account = text(record, &names.bank).unwrap_or_default();
        let bank = self
            .banks
            .iter()
            .find(|b| same_id(&b.account_id, account))
            .ok_or_else(|| InboundError::UnknownBank(account.to_owned()))?;
        let mut body = mappings
            .map_outbound(MAPPING_KIND, record, Some(&bank.code))
            .map_err(InboundError::Mapping)?;
        let report = match report {
            Some(version) => self.store_report(request_key, version).await?,
            None => Value::Null,
        };
        let object = body.as_object_mut().ok_or_else(|| {
            InboundError::Shape("the outbound mapping produced a non-object".into())
        })?;
        object.insert("salesforce_id".into(), record_id.into());
        object.entry("reason").or_insert(Value::Null);
        object.insert("changed_at".into(), changed_at(record).into());
        object.insert("report".into(), report);

        let sequence = previous.map_or(0, |p| p.sequence) + 1;
        // The bank's vocabulary (`crate::lifecycle`): the outbound mapping names the state.
        let event = body
            .get("status")
            .and_then(Value::as_str)
            .and_then(Lifecycle::parse)
            .ok_or_else(|| {
                InboundError::Shape("the outbound mapping produced no lifecycle status".into())
            })?
            .as_str();
        self.state.set_view(request_key, &body).await?;
        events::enqueue(
            &self.outbox,
            Change {
                record_id,
                sequence,
                state_hash: &state_hash,
                bank,
                event,
                body,
                mapping_version: mappings.version(),
                request_key,
                email_template: email_template(status),
            },
            &self.public_url,
        )
        .await?;
        let mirrored = Mirrored {
            sequence,
            state_hash,
        };
        self.state
            .set_mirrored(record_id, &mirrored.encode())
            .await?;
        metrics::counter!("creditlink_inbound_events_total", "event" => event).increment(1);
        tracing::info!(record_id, bank = %bank.code, event, sequence, "status change mirrored");
        Ok(MirrorOutcome::Mirrored {
            record_id: record_id.to_owned(),
            event: format!("report_request.{event}"),
        })
    }

    /// Downloads the report (refused before the download when `ContentSize` is over the vault's limit, cut off
    /// at the limit when the size was absent or wrong) and stores it in the vault; returns the event's `report`.
    async fn store_report(
        &self,
        request_key: &str,
        version: &ContentVersionRef,
    ) -> Result<Value, InboundError> {
        let limit = self.vault.max_pdf_bytes();
        if let Some(size) = version.size.filter(|&size| size > limit) {
            return Err(InboundError::ReportTooLarge { size, limit });
        }
        let bytes = match self
            .client
            .download_version_data_capped(&version.id, limit)
            .await
        {
            Ok(bytes) => bytes,
            Err(SfError::TooLarge { limit }) => {
                return Err(InboundError::ReportTooLarge {
                    size: limit + 1,
                    limit,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let vault = self.vault.clone();
        let key = request_key.to_owned();
        let stored = tokio::task::spawn_blocking(move || vault.put(&key, &bytes))
            .await
            .map_err(|e| InboundError::Join(e.to_string()))??;
        Ok(json!({
            "url": format!("{}/api/v1/report-requests/{request_key}/report", self.public_url),
            "sha256": stored.sha256_hex,
            "size": stored.size,
        }))
    }
}

/// Retry delay after `attempts` failures: 1 s doubling, capped at [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(16)).min(MAX_BACKOFF)
}

fn email_template(status: &str) -> Option<&'static str> {
    match status {
        "Rejected" => Some("rejected"),
        "Action Required" => Some("action_required"),
        _ => None,
    }
}

/// SHA-256 (hex) of the state banks are told about.
fn state_hash(status: &str, reason: Option<&str>, report_version: Option<&str>) -> String {
    let canonical = json!({ "status": status, "reason": reason, "report": report_version });
    hex::encode(sha256(canonical.to_string().as_bytes()))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The 15-character case-sensitive form of a Salesforce id (the key records are matched on).
fn short_id(id: &str) -> Option<&str> {
    id.get(..15)
}

/// A non-empty string field.
fn text<'a>(record: &'a JsonMap, field: &str) -> Option<&'a str> {
    record
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Salesforce ids compare on their 15-character case-sensitive prefix (the 18-character form only adds a
/// checksum suffix).
fn same_id(a: &str, b: &str) -> bool {
    a.get(..15).is_some() && a.get(..15) == b.get(..15)
}

/// `LastModifiedDate` as RFC 3339 UTC; Salesforce writes `2026-11-25T10:00:00.000+0000`.
fn changed_at(record: &JsonMap) -> String {
    text(record, LAST_MODIFIED_DATE)
        .and_then(parse_sf_datetime)
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses Salesforce's datetime format (`+0000` offsets) or RFC 3339.
pub fn parse_sf_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn skipped(record_id: &str, reason: SkipReason) -> MirrorOutcome {
    MirrorOutcome::Skipped {
        record_id: record_id.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_datetime_forms() {
        let a = parse_sf_datetime("2026-11-25T10:00:00.000+0000").unwrap();
        let b = parse_sf_datetime("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn state_hash_depends_on_every_part() {
        let base = state_hash("Completed", None, Some("068A"));
        assert_ne!(base, state_hash("Completed", None, Some("068B")));
        assert_ne!(base, state_hash("Completed", Some("x"), Some("068A")));
        assert_ne!(base, state_hash("Rejected", None, Some("068A")));
        assert_eq!(base, state_hash("Completed", None, Some("068A")));
    }

    #[test]
    fn ids_compare_on_the_15_character_prefix() {
        assert!(same_id("0055Y00000INTEGQA5", "0055Y00000INTEG"));
        assert!(!same_id("0055Y00000INTEGQA5", "0055Y00000OTHERQA5"));
        assert!(!same_id("", ""));
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
