//! The mirror worker: turns hints ("record X may have changed") into bank events.
//!
//! Push is only a hint: a notification may be stale, duplicated or reordered, so the worker always re-reads the
//! record over REST and acts on what Salesforce holds *now*. Duplicates and reordering therefore converge on the
//! latest state, and one event is sent per real state change:
//!
//! 1. Skip records creditlink did not create (no `Request_Key__c`) and changes last made by creditlink's own
//!    integration user (echo suppression).
//! 2. The *mirrored state* is `Status__c`, `Status_Reason__c` and, when Completed, the id of the latest
//!    `ContentVersion` linked to the record (ContentVersions are immutable, so a new id is a new report and the
//!    same id the same bytes). Its SHA-256 is compared with the last one mirrored; equal → nothing to do.
//! 3. On a change: map the record (`report_request` outbound mapping, the owning bank's variant), store the
//!    report in the vault when Completed, then enqueue one bank event (plus e-mails for Rejected and Action
//!    Required) under the idempotency key `mirror:<record id>:<previous hash>:<state hash>`, so a crash between
//!    enqueueing and saving the mirrored hash cannot enqueue a second event, while a return to an earlier state
//!    (In Progress → Action Required → In Progress) is still a new event.
//! 4. Save the event's `data` as the request's view (what `GET /api/v1/report-requests/{id}` shows, so the
//!    status document and the webhooks agree), the hash, remove the hint (every write durable when it
//!    returns).
//!
//! Limitation: echo suppression looks only at `LastModifiedById`. A bureau change immediately overwritten by a
//! creditlink write before the hint is processed is seen as creditlink's; creditlink never writes
//! `Status__c`, and the next bureau change is mirrored with the then-current state.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::BankConfig;
use crate::lifecycle::Lifecycle;
use crate::mapping::MappingSet;
use crate::outbox::{Destination, Lane, MessageId, NewMessage, Outbox};
use crate::salesforce::{JsonMap, SalesforceClient};
use crate::store::StoreError;
use crate::vault::Vault;

use super::error::InboundError;
use super::soap::is_salesforce_id;
use super::state::InboundState;

/// The Salesforce object whose status changes are mirrored.
pub const REQUEST_OBJECT: &str = "Credit_Report_Request__c";
/// The mapping kind used to build the bank event body.
pub const MAPPING_KIND: &str = "report_request";

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
    /// No `Request_Key__c`: not created through creditlink.
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

impl Mirror {
    /// Processes the next due hint, if any. Only store failures are returned as errors: everything else is
    /// recorded on the hint (deferred) or logged and dropped.
    #[tracing::instrument(name = "inbound.mirror", skip_all)]
    pub async fn step(&self, now: DateTime<Utc>) -> Result<MirrorOutcome, StoreError> {
        let next = self.state.next_due(now).await?;
        let Some((record_id, hint)) = next.due else {
            let next_due = next
                .earliest_ms
                .and_then(DateTime::<Utc>::from_timestamp_millis);
            return Ok(MirrorOutcome::Idle { next_due });
        };
        let outcome = match self.process(&record_id).await {
            Ok(done) => {
                self.state.finish_hint(&record_id, &hint).await?;
                done
            }
            Err(e) if e.is_retryable() => {
                let delay = backoff(hint.attempts);
                let not_before = now + chrono::Duration::from_std(delay).unwrap_or_default();
                self.state.defer_hint(&record_id, &hint, not_before).await?;
                tracing::warn!(record_id = %record_id, attempts = hint.attempts + 1, error = %e,
                    retry_in_ms = delay.as_millis() as u64, "mirroring deferred");
                metrics::counter!("creditlink_inbound_mirror_errors_total", "kind" => e.kind(), "retryable" => "true")
                    .increment(1);
                MirrorOutcome::Deferred {
                    record_id,
                    error: e.to_string(),
                }
            }
            Err(e) => {
                self.state.finish_hint(&record_id, &hint).await?;
                tracing::error!(record_id = %record_id, error = %e, "status change cannot be mirrored; dropped");
                metrics::counter!("creditlink_inbound_mirror_errors_total", "kind" => e.kind(), "retryable" => "false")
                    .increment(1);
                MirrorOutcome::Dropped {
                    record_id,
                    error: e.to_string(),
                }
            }
        };
        Ok(outcome)
    }

    /// Reads the record and mirrors its current state (steps 1-4 of the module documentation), except for
    /// removing the hint, which the caller does.
    pub async fn process(&self, record_id: &str) -> Result<MirrorOutcome, InboundError> {
        if !is_salesforce_id(record_id) {
            return Err(InboundError::Shape(format!(
                "hint for an invalid record id {record_id:?}"
            )));
        }
        let record = match self.client.get(REQUEST_OBJECT, record_id, None).await {
            Ok(record) => record,
            Err(e) if e.http_status() == Some(404) => {
                return Ok(skipped(record_id, SkipReason::Deleted));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(request_key) = text(&record, "Request_Key__c") else {
            return Ok(skipped(record_id, SkipReason::NotOurs));
        };
        let integration_user = self.client.identity().map(|i| i.user_id);
        if let (Some(me), Some(by)) = (&integration_user, text(&record, "LastModifiedById"))
            && same_id(me, by)
        {
            return Ok(skipped(record_id, SkipReason::Echo));
        }
        let status = text(&record, "Status__c").unwrap_or_default().to_owned();
        let report_version = if status == "Completed" {
            Some(self.latest_report(record_id).await?)
        } else {
            None
        };
        let state_hash = state_hash(
            &status,
            text(&record, "Status_Reason__c"),
            report_version.as_ref().map(|(id, _)| id.as_str()),
        );
        let previous = self.state.mirrored(record_id).await?;
        if previous.as_deref() == Some(state_hash.as_str()) {
            return Ok(MirrorOutcome::Unchanged {
                record_id: record_id.to_owned(),
            });
        }

        let account = text(&record, "Bank__c").unwrap_or_default();
        let bank = self
            .banks
            .iter()
            .find(|b| same_id(&b.account_id, account))
            .ok_or_else(|| InboundError::UnknownBank(account.to_owned()))?;
        let mappings = self.mappings.load_full();
        let mut body = mappings
            .map_outbound(MAPPING_KIND, &record, Some(&bank.code))
            .map_err(InboundError::Mapping)?;

        let report = match &report_version {
            Some((version_id, _)) => {
                let bytes = self.client.download_version_data(version_id).await?;
                let vault = self.vault.clone();
                let key = request_key.to_owned();
                let stored = tokio::task::spawn_blocking(move || vault.put(&key, &bytes))
                    .await
                    .map_err(|e| InboundError::Join(e.to_string()))??;
                json!({
                    "url": format!("{}/api/v1/report-requests/{request_key}/report", self.public_url),
                    "sha256": stored.sha256_hex,
                    "size": stored.size,
                })
            }
            None => Value::Null,
        };
        let object = body.as_object_mut().ok_or_else(|| {
            InboundError::Shape("the outbound mapping produced a non-object".into())
        })?;
        object.insert("salesforce_id".into(), record_id.into());
        object.entry("reason").or_insert(Value::Null);
        object.insert("changed_at".into(), changed_at(&record).into());
        object.insert("report".into(), report);

        // The key names the transition, not just the new state: A → B → A is two changes to A, and each one
        // must reach the bank, while a replay of one transition after a crash reuses its key.
        let transition = format!(
            "{record_id}:{}:{state_hash}",
            previous.as_deref().unwrap_or("-")
        );
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
        self.enqueue_event(&transition, bank, event, body, mappings.version())
            .await?;
        if let Some(template) = email_template(&status) {
            self.enqueue_emails(&transition, bank, template, request_key, &record, &status)
                .await?;
        }
        self.state.set_mirrored(record_id, &state_hash).await?;
        metrics::counter!("creditlink_inbound_events_total", "event" => event).increment(1);
        tracing::info!(record_id, bank = %bank.code, event, "status change mirrored");
        Ok(MirrorOutcome::Mirrored {
            record_id: record_id.to_owned(),
            event: format!("report_request.{event}"),
        })
    }

    /// The id and size of the newest ContentVersion published on the record.
    async fn latest_report(&self, record_id: &str) -> Result<(String, u64), InboundError> {
        let soql = format!(
            "SELECT Id, ContentSize, VersionData FROM ContentVersion \
             WHERE FirstPublishLocationId = '{record_id}' ORDER BY CreatedDate DESC LIMIT 1"
        );
        let rows = self.client.query_all(&soql).await?;
        let row = rows.first().ok_or(InboundError::ReportMissing)?;
        let id = text(row, "Id")
            .filter(|id| is_salesforce_id(id))
            .ok_or_else(|| InboundError::Shape("ContentVersion without a valid Id".into()))?;
        let size = row.get("ContentSize").and_then(Value::as_u64).unwrap_or(0);
        Ok((id.to_owned(), size))
    }

    async fn enqueue_event(
        &self,
        transition: &str,
        bank: &BankConfig,
        event: &str,
        payload: Value,
        mapping_version: &str,
    ) -> Result<(), InboundError> {
        let key = format!("mirror:{transition}");
        let message = NewMessage {
            tenant: bank.account_id.clone(),
            lane: Lane::Interactive,
            destination: Destination::Bank {
                endpoint: bank.code.clone(),
                event: format!("report_request.{event}"),
            },
            payload,
            mapping_version: Some(mapping_version.to_owned()),
        };
        self.outbox
            .enqueue_idempotent_as(
                MessageId::new(),
                &bank.account_id,
                &key,
                sha256(key.as_bytes()),
                message,
                Utc::now(),
            )
            .await?;
        Ok(())
    }

    async fn enqueue_emails(
        &self,
        transition: &str,
        bank: &BankConfig,
        template: &str,
        request_key: &str,
        record: &JsonMap,
        status: &str,
    ) -> Result<(), InboundError> {
        let payload = json!({
            "bank_name": bank.name,
            "id": request_key,
            // The templates' names; every variable a template uses must be present (a missing one fails the
            // e-mail), so absent optional values get a readable placeholder.
            "request_id": request_key,
            "reference": text(record, "Bank_Reference__c").unwrap_or("(no reference)"),
            "status": status,
            "reason": text(record, "Status_Reason__c").unwrap_or("(no reason given)"),
            "status_url": format!("{}/api/v1/report-requests/{request_key}", self.public_url),
        });
        for contact in &bank.contacts {
            let key = format!("mirror:{transition}:email:{contact}");
            let message = NewMessage {
                tenant: bank.account_id.clone(),
                lane: Lane::Interactive,
                destination: Destination::Email {
                    to: contact.clone(),
                    template: template.to_owned(),
                },
                payload: payload.clone(),
                mapping_version: None,
            };
            self.outbox
                .enqueue_idempotent_as(
                    MessageId::new(),
                    &bank.account_id,
                    &key,
                    sha256(key.as_bytes()),
                    message,
                    Utc::now(),
                )
                .await?;
        }
        Ok(())
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
    text(record, "LastModifiedDate")
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
