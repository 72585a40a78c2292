//! The stale-record gatekeeper: terminates credit records a bank stopped reporting, after warning the bank.
//!
//! A *falsely ongoing credit* is a tradeline the bank no longer reports but that still shows as active and marks
//! a person with a debt they may not have. A run reads every `Credit_Record__c` that may need attention (SOQL
//! paging: `Last_Reported__c` before the earliest warn day of any threshold, not yet terminated), judges each
//! ([`super::decide::judge`]) with its bank's and product type's threshold, and then, unless it is a dry run:
//! - terminates stale records through sObject Collections (200 per call): `Status__c = Terminated`,
//!   `Termination_Reason__c = Stale`, each confirmed termination audited and counted;
//! - warns each bank once per record and `Last_Reported__c` about the records that become stale within
//!   `warn_before` days: one signed `credit_records.stale_warning` webhook and one e-mail per contact, through
//!   the outbox (durable, retried); the `records.warned` tree remembers who was warned about what.
//!
//! Fresh data revives a stale-terminated record: the feeds worker calls [`Gatekeeper::reinstate`] (or, when its
//! own upsert already set `Status__c = Active`, [`Gatekeeper::record_reinstated`]) for a row whose record
//! [`is_stale_terminated`]; both audit the reinstatement.
//!
//! Runs never overlap within a daemon (a mutex); across daemons sharing a database, the scheduled run is a
//! singleton (`records.gatekeeper` leadership). A run judges records as of one day (`as_of`, default today in
//! UTC), so a dry run with a future `as_of` previews what will happen then.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::audit::{Audit, AuditEntry};
use super::decide::{Judgement, RecordState, Verdict, judge};
use super::error::RecordsError;
use super::fields::{self, ACTIVE, STALE, TERMINATED};
use super::warn::Warnings;
use crate::config::{BankConfig, RecordsConfig};
use crate::outbox::Outbox;
use crate::salesforce::{JsonMap, MAX_COLLECTION_RECORDS, SalesforceClient};
use crate::store::Store;

/// The leadership role of the scheduled run.
pub const LEADER_ROLE: &str = "records.gatekeeper";
/// How long the scheduled loop waits after a failed run before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Run {
    pub dry_run: bool,
    pub as_of: NaiveDate,
    /// Who asked (audited): `gatekeeper:schedule`, `gatekeeper:admin …`.
    pub actor: String,
}

/// The answer of a run (the admin API's response body).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub as_of: NaiveDate,
    pub counts: Counts,
    pub records: Vec<ReportRecord>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub terminated: u64,
    pub warned: u64,
    pub skipped_dispute: u64,
    pub skipped_closed: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportRecord {
    pub record_key: Option<String>,
    pub furnisher: Option<String>,
    pub last_reported: Option<NaiveDate>,
    /// `terminate`, `warn` or `skip`.
    pub action: &'static str,
    pub reason: String,
}

/// A record the feeds worker refers to when it reinstates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    pub id: String,
    pub record_key: Option<String>,
    pub furnisher: Option<String>,
}

/// Whether a record (as read from Salesforce) was terminated by the gatekeeper, so fresh data reinstates it.
pub fn is_stale_terminated(record: &JsonMap) -> bool {
    fields::text(record, fields::STATUS) == Some(TERMINATED)
        && fields::text(record, fields::TERMINATION_REASON) == Some(STALE)
}

/// The gatekeeper. Cheap to clone.
#[derive(Clone)]
pub struct Gatekeeper {
    inner: Arc<Inner>,
}

struct Inner {
    client: SalesforceClient,
    audit: Audit,
    warnings: Warnings,
    config: RecordsConfig,
    banks: Vec<BankConfig>,
    running: tokio::sync::Mutex<()>,
    /// The last finished run since this daemon started (the dashboard's admin view shows it).
    last: parking_lot::Mutex<Option<LastRun>>,
}

/// A finished run: what was asked, when it ended, and its report.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub dry_run: bool,
    pub actor: String,
    pub report: Report,
}

impl Gatekeeper {
    pub fn new(
        store: &Store,
        outbox: Outbox,
        client: SalesforceClient,
        config: RecordsConfig,
        banks: Vec<BankConfig>,
    ) -> Result<Gatekeeper, RecordsError> {
        Ok(Gatekeeper {
            inner: Arc::new(Inner {
                client,
                audit: Audit::open(store)?,
                warnings: Warnings::new(store, outbox)?,
                config,
                banks,
                running: tokio::sync::Mutex::new(()),
                last: parking_lot::Mutex::new(None),
            }),
        })
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// The last finished run since the daemon started, if any.
    pub fn last_run(&self) -> Option<LastRun> {
        self.inner.last.lock().clone()
    }

    /// One run; waits for a run in progress to end first.
    pub async fn run(&self, run: &Run) -> Result<Report, RecordsError> {
        let _one_at_a_time = self.inner.running.lock().await;
        let inner = &self.inner;
        let cutoff = run
            .as_of
            .checked_sub_days(chrono::Days::new(u64::from(
                inner.config.earliest_attention_days(),
            )))
            .unwrap_or(run.as_of);
        let soql = format!(
            "SELECT {}, {}, {}, {}, {}, {}, {} FROM {} WHERE {} < {cutoff} AND {} != '{TERMINATED}' ORDER BY {}",
            fields::ID,
            fields::RECORD_KEY,
            fields::FURNISHER,
            fields::PRODUCT_TYPE,
            fields::STATUS,
            fields::LAST_REPORTED,
            fields::IN_DISPUTE,
            fields::OBJECT,
            fields::LAST_REPORTED,
            fields::STATUS,
            fields::ID,
        );
        let mut report = Report {
            as_of: run.as_of,
            counts: Counts::default(),
            records: Vec::new(),
        };
        let mut to_terminate: Vec<(RecordState, Judgement)> = Vec::new();
        let mut to_warn: BTreeMap<String, Vec<(RecordState, Judgement)>> = BTreeMap::new();
        let mut page = inner.client.query(&soql).await?;
        loop {
            for record in &page.records {
                let state =
                    RecordState::from_record(record).ok_or(RecordsError::Malformed(fields::ID))?;
                let bank = state.furnisher.as_deref().and_then(|f| self.bank(f));
                let threshold = inner
                    .config
                    .threshold(bank.map(|b| b.code.as_str()), &state.product_type);
                let Some(judgement) = judge(&state, run.as_of, threshold) else {
                    continue;
                };
                match judgement.verdict {
                    Verdict::Terminate if !run.dry_run => {
                        to_terminate.push((state, judgement));
                        if to_terminate.len() == MAX_COLLECTION_RECORDS {
                            self.terminate(&mut to_terminate, run, &mut report).await?;
                        }
                    }
                    Verdict::Warn if !run.dry_run => {
                        let furnisher = state.furnisher.clone().unwrap_or_default();
                        to_warn
                            .entry(furnisher)
                            .or_default()
                            .push((state, judgement));
                    }
                    verdict => report.add(&state, &judgement, verdict),
                }
            }
            match (page.done, page.next_records_url.take()) {
                (false, Some(next)) => page = inner.client.query_more(&next).await?,
                _ => break,
            }
        }
        self.terminate(&mut to_terminate, run, &mut report).await?;
        for (furnisher, records) in to_warn {
            let bank = self.bank(&furnisher);
            inner.warnings.warn(bank, &records, run.as_of).await?;
            for (state, judgement) in &records {
                report.add(state, judgement, Verdict::Warn);
            }
        }
        if !run.dry_run {
            for (verdict, n) in [
                (Verdict::Terminate, report.counts.terminated),
                (Verdict::Warn, report.counts.warned),
                (Verdict::SkipDispute, report.counts.skipped_dispute),
                (Verdict::SkipClosed, report.counts.skipped_closed),
            ] {
                metrics::counter!(crate::ops::metrics::GATEKEEPER_RECORDS_TOTAL, "action" => verdict.label())
                    .increment(n);
            }
        }
        tracing::info!(as_of = %run.as_of, dry_run = run.dry_run, actor = %run.actor,
            terminated = report.counts.terminated, warned = report.counts.warned,
            skipped_dispute = report.counts.skipped_dispute, skipped_closed = report.counts.skipped_closed,
            "gatekeeper run");
        *inner.last.lock() = Some(LastRun {
            finished_at: chrono::Utc::now(),
            dry_run: run.dry_run,
            actor: run.actor.clone(),
            report: report.clone(),
        });
        Ok(report)
    }

    /// Sets `Status__c = Active` (clearing the termination reason) on stale-terminated records that fresh data
    /// arrived for, 200 per call, and audits each; returns the ids Salesforce confirmed. Records that are not
    /// stale-terminated must not be passed (the caller checked [`is_stale_terminated`]).
    pub async fn reinstate(
        &self,
        records: &[RecordRef],
        actor: &str,
    ) -> Result<Vec<String>, RecordsError> {
        let mut done = Vec::new();
        for chunk in records.chunks(MAX_COLLECTION_RECORDS) {
            let updates: Vec<(String, JsonMap)> = chunk
                .iter()
                .map(|r| {
                    let mut m = JsonMap::new();
                    m.insert(fields::ID.into(), json!(r.id));
                    m.insert(fields::STATUS.into(), json!(ACTIVE));
                    m.insert(fields::TERMINATION_REASON.into(), Value::Null);
                    (fields::OBJECT.to_owned(), m)
                })
                .collect();
            let results = self.inner.client.collections_update(&updates).await?;
            for (record, result) in chunk.iter().zip(results) {
                if result.success {
                    self.record_reinstated(record, actor).await?;
                    done.push(record.id.clone());
                } else {
                    tracing::warn!(record_id = %record.id, errors = ?result.errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(),
                        "reinstatement refused by Salesforce");
                }
            }
        }
        Ok(done)
    }

    /// Audits and counts a reinstatement the caller already wrote to Salesforce (its own upsert set
    /// `Status__c = Active` on a stale-terminated record).
    pub async fn record_reinstated(
        &self,
        record: &RecordRef,
        actor: &str,
    ) -> Result<(), RecordsError> {
        let mut entry = AuditEntry::new(
            "reinstate",
            &record.id,
            actor,
            "fresh data for a stale-terminated record".into(),
        );
        entry.record_key = record.record_key.clone();
        entry.furnisher = record.furnisher.clone();
        self.inner.audit.append(entry).await?;
        metrics::counter!(crate::ops::metrics::GATEKEEPER_RECORDS_TOTAL, "action" => "reinstate")
            .increment(1);
        Ok(())
    }

    /// Runs at start and then every `interval` while this daemon leads [`LEADER_ROLE`], until `shutdown`.
    pub async fn run_scheduled(
        self,
        store: Store,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut leadership = match store.lead(LEADER_ROLE).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "gatekeeper: leader election unavailable; not scheduling");
                return;
            }
        };
        while !shutdown.is_cancelled() {
            let mut wait = interval;
            if leadership.is_leader().await {
                let run = Run {
                    dry_run: false,
                    as_of: Utc::now().date_naive(),
                    actor: "gatekeeper:schedule".into(),
                };
                if let Err(e) = self.run(&run).await {
                    tracing::warn!(error = %e, retryable = e.is_retryable(), "scheduled gatekeeper run failed");
                    wait = wait.min(RETRY_AFTER_FAILURE);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    fn bank(&self, furnisher: &str) -> Option<&BankConfig> {
        self.inner.banks.iter().find(|b| b.account_id == furnisher)
    }

    /// Terminates the buffered records (≤ 200) in one call, auditing each one Salesforce confirmed.
    async fn terminate(
        &self,
        buffered: &mut Vec<(RecordState, Judgement)>,
        run: &Run,
        report: &mut Report,
    ) -> Result<(), RecordsError> {
        if buffered.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(buffered);
        let updates: Vec<(String, JsonMap)> = batch
            .iter()
            .map(|(state, _)| {
                let mut m = JsonMap::new();
                m.insert(fields::ID.into(), json!(state.id));
                m.insert(fields::STATUS.into(), json!(TERMINATED));
                m.insert(fields::TERMINATION_REASON.into(), json!(STALE));
                (fields::OBJECT.to_owned(), m)
            })
            .collect();
        let results = self.inner.client.collections_update(&updates).await?;
        for ((state, judgement), result) in batch.iter().zip(results) {
            if result.success {
                let mut entry =
                    AuditEntry::new("terminate", &state.id, &run.actor, judgement.reason.clone());
                entry.record_key = state.record_key.clone();
                entry.furnisher = state.furnisher.clone();
                entry.last_reported = state.last_reported;
                self.inner.audit.append(entry).await?;
                report.add(state, judgement, Verdict::Terminate);
            } else {
                let codes: Vec<&str> = result.errors.iter().map(|e| e.code.as_str()).collect();
                tracing::warn!(record_id = %state.id, errors = ?codes, "termination refused by Salesforce");
                report.records.push(ReportRecord {
                    record_key: state.record_key.clone(),
                    furnisher: state.furnisher.clone(),
                    last_reported: state.last_reported,
                    action: "skip",
                    reason: format!("salesforce_refused: {}", codes.join(", ")),
                });
            }
        }
        Ok(())
    }
}

impl Report {
    fn add(&mut self, state: &RecordState, judgement: &Judgement, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Terminate => &mut self.counts.terminated,
            Verdict::Warn => &mut self.counts.warned,
            Verdict::SkipDispute => &mut self.counts.skipped_dispute,
            Verdict::SkipClosed => &mut self.counts.skipped_closed,
        };
        *counter += 1;
        self.records.push(ReportRecord {
            record_key: state.record_key.clone(),
            furnisher: state.furnisher.clone(),
            last_reported: state.last_reported,
            action: verdict.action(),
            reason: judgement.reason.clone(),
        });
    }
}
