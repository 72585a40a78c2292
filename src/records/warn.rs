//! Stale warnings: telling a bank which of its records become stale soon, once per record and report date.
//!
//! Per bank and run, one `credit_records.stale_warning` webhook (when the bank has a webhook) and one
//! `stale_warning` e-mail per bank contact, both outbox messages, so they are durable and retried like every
//! other delivery. A record is warned about once per `Last_Reported__c` value: the `records.warned` tree holds
//! `<record id>:<last reported>` of every record the bank was told about, written after the messages are
//! queued (a crash in between warns again — at least once, never never). Fresh data moves
//! `Last_Reported__c`, so a record that goes quiet again is warned about again. The payloads name records by
//! Salesforce id and `Record_Key__c` only: nothing personal goes into webhooks or e-mails.

use chrono::NaiveDate;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::decide::{Judgement, RecordState};
use super::error::RecordsError;
use crate::config::BankConfig;
use crate::notify::Template;
use crate::outbox::{Destination, Lane, NewMessage, Outbox};
use crate::store::{KvTree, Store};

/// The webhook event type.
pub const STALE_WARNING_EVENT: &str = "credit_records.stale_warning";
/// The store tree of records already warned about.
pub const WARNED_TREE: &str = "records.warned";

pub(crate) struct Warnings {
    outbox: Outbox,
    warned: KvTree,
}

impl Warnings {
    pub fn new(store: &Store, outbox: Outbox) -> Result<Warnings, RecordsError> {
        Ok(Warnings {
            outbox,
            warned: store.kv_tree(WARNED_TREE)?,
        })
    }

    /// Warns `bank` about those of `records` it was not warned about yet; returns how many were new.
    pub async fn warn(
        &self,
        bank: Option<&BankConfig>,
        records: &[(RecordState, Judgement)],
        as_of: NaiveDate,
    ) -> Result<usize, RecordsError> {
        let Some(bank) = bank else {
            tracing::warn!(
                records = records.len(),
                "stale warnings for a furnisher that is no configured bank: nobody to tell"
            );
            return Ok(0);
        };
        let mut fresh = Vec::new();
        for (state, judgement) in records {
            let key = warned_key(state);
            if self.warned.get(key.as_bytes()).await?.is_none() {
                fresh.push((state, judgement, key));
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        let listed: Vec<serde_json::Value> = fresh
            .iter()
            .map(|(s, j, _)| {
                json!({
                    "salesforce_id": s.id,
                    "record_key": s.record_key,
                    "product_type": s.product_type,
                    "last_reported": s.last_reported,
                    "terminates_on": j.stale_on,
                })
            })
            .collect();
        let digest = hex::encode(Sha256::digest(
            fresh
                .iter()
                .map(|(_, _, k)| k.as_str())
                .collect::<Vec<_>>()
                .join(",")
                .as_bytes(),
        ));
        let idempotency = format!("{STALE_WARNING_EVENT}:{}:{}", bank.code, &digest[..32]);
        if bank.webhook_url.is_some() {
            let event = NewMessage {
                tenant: bank.account_id.clone(),
                lane: Lane::Interactive,
                destination: Destination::Bank {
                    endpoint: bank.code.clone(),
                    event: STALE_WARNING_EVENT.to_owned(),
                },
                payload: json!({ "as_of": as_of, "records": listed }),
                mapping_version: None,
            };
            self.enqueue(&idempotency, &bank.account_id, event).await?;
        }
        let first = fresh
            .iter()
            .map(|(_, j, _)| j.stale_on)
            .min()
            .unwrap_or(as_of);
        let lines: Vec<String> = fresh
            .iter()
            .map(|(s, j, _)| {
                format!(
                    "  {}  {}  {}",
                    s.record_key.as_deref().unwrap_or(&s.id),
                    s.last_reported.map(|d| d.to_string()).unwrap_or_default(),
                    j.stale_on
                )
            })
            .collect();
        let vars = json!({
            "bank_name": bank.name,
            "count": fresh.len().to_string(),
            "as_of": as_of.to_string(),
            "first_termination": first.to_string(),
            "records": lines.join("\n"),
        });
        for to in &bank.contacts {
            let mail = NewMessage {
                tenant: bank.account_id.clone(),
                lane: Lane::Interactive,
                destination: Destination::Email {
                    to: to.clone(),
                    template: Template::StaleWarning.name().to_owned(),
                },
                payload: vars.clone(),
                mapping_version: None,
            };
            self.enqueue(&format!("{idempotency}:email:{to}"), &bank.account_id, mail)
                .await?;
        }
        for (_, _, key) in &fresh {
            self.warned
                .insert(key.as_bytes(), as_of.to_string().as_bytes())
                .await?;
        }
        tracing::info!(bank = %bank.code, records = fresh.len(), "stale warning queued");
        Ok(fresh.len())
    }

    async fn enqueue(
        &self,
        key: &str,
        tenant: &str,
        message: NewMessage,
    ) -> Result<(), RecordsError> {
        self.outbox.enqueue_once(tenant, key, message).await?;
        Ok(())
    }
}

fn warned_key(state: &RecordState) -> String {
    format!(
        "{}:{}",
        state.id,
        state
            .last_reported
            .map(|d| d.to_string())
            .unwrap_or_default()
    )
}
