//! `report_request.failed`: when a report request will never reach Salesforce (refused, retries exhausted),
//! the bank hears it by webhook and its contacts and the bureau's by e-mail, with the reason.
//!
//! The Salesforce pusher calls [`FailureNotice::report_failed`] right after it recorded the transition to
//! Failed or Dead. Each notice is an outbox message enqueued under an idempotency key naming the request and
//! its attempt count (`report_request.failed:<id>:<attempts>`), so recording the same failure twice enqueues
//! one notice, while a request an admin retried that fails again is announced again. Limitation: a crash
//! between recording the transition and enqueueing the notice loses the notice (the request still shows
//! `failed` in its status document, and the dead-letter gauge counts it).

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{Value, json};

use crate::config::BankConfig;
use crate::mapping::MappingSet;
use crate::outbox::{Destination, Lane, Message, NewMessage, Outbox, OutboxError, State};

use super::{Lifecycle, delivery_view, failure_reason, is_report_request};

/// The e-mail template of a failed request (`src/notify/templates/failed.txt`).
pub const FAILED_TEMPLATE: &str = "failed";

/// Enqueues failure notices. Cheap to clone.
#[derive(Clone)]
pub struct FailureNotice {
    outbox: Outbox,
    mappings: Arc<ArcSwap<MappingSet>>,
    banks: Arc<Vec<BankConfig>>,
    bureau_contacts: Arc<Vec<String>>,
    /// Base of status links, without a trailing slash.
    public_url: String,
}

impl FailureNotice {
    pub fn new(
        outbox: Outbox,
        mappings: Arc<ArcSwap<MappingSet>>,
        banks: Vec<BankConfig>,
        bureau_contacts: Vec<String>,
        public_url: &str,
    ) -> FailureNotice {
        FailureNotice {
            outbox,
            mappings,
            banks: Arc::new(banks),
            bureau_contacts: Arc::new(bureau_contacts),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Enqueues the `report_request.failed` webhook and e-mails for `message` when it is a report request
    /// that just became Failed or Dead; returns whether it did. Durable when it returns.
    pub async fn report_failed(&self, message: &Message) -> Result<bool, OutboxError> {
        if !matches!(message.state, State::Failed | State::Dead) {
            return Ok(false);
        }
        let mappings = self.mappings.load_full();
        let bank = self.banks.iter().find(|b| b.account_id == message.tenant);
        let report_object =
            mappings.object(super::REPORT_REQUEST_KIND, bank.map(|b| b.code.as_str()));
        if !is_report_request(message, report_object) {
            return Ok(false);
        }
        let Some(bank) = bank else {
            tracing::warn!(message_id = %message.id, "failed report request of an unconfigured bank: nobody to tell");
            return Ok(false);
        };
        let key = format!(
            "{}:{}:{}",
            Lifecycle::Failed.event_type(),
            message.id,
            message.attempts
        );
        let data = delivery_view(message, &mappings, Some(&bank.code));
        let event = NewMessage {
            tenant: bank.account_id.clone(),
            lane: Lane::Interactive,
            destination: Destination::Bank {
                endpoint: bank.code.clone(),
                event: Lifecycle::Failed.event_type(),
            },
            payload: data.clone(),
            mapping_version: Some(mappings.version().to_owned()),
        };
        self.enqueue(&key, &bank.account_id, event).await?;
        let status_url = format!("{}/api/v1/report-requests/{}", self.public_url, message.id);
        let vars = json!({
            "bank_name": bank.name,
            "request_id": message.id.to_string(),
            "reference": data.get("reference").and_then(Value::as_str).unwrap_or("(no reference)"),
            "reason": failure_reason(message).unwrap_or_default(),
            "status_url": status_url,
        });
        for to in bank.contacts.iter().chain(self.bureau_contacts.iter()) {
            let mail = NewMessage {
                tenant: bank.account_id.clone(),
                lane: Lane::Interactive,
                destination: Destination::Email {
                    to: to.clone(),
                    template: FAILED_TEMPLATE.to_owned(),
                },
                payload: vars.clone(),
                mapping_version: None,
            };
            self.enqueue(&format!("{key}:email:{to}"), &bank.account_id, mail)
                .await?;
        }
        tracing::warn!(message_id = %message.id, bank = %bank.code, state = ?message.state,
            "report request failed; bank and bureau notified");
        Ok(true)
    }

    async fn enqueue(
        &self,
        key: &str,
        tenant: &str,
        message: NewMessage,
    ) -> Result<(), OutboxError> {
        self.outbox.enqueue_once(tenant, key, message).await?;
        Ok(())
    }
}
