//! What the mirror enqueues for one state change: the bank event and, for Rejected and Action Required, one
//! e-mail per bank contact, all under idempotency keys derived from the change.
//!
//! Keys: `mirror:<record id>:<sequence>:<state hash>` for the event and the same plus `:email:<contact>` for
//! each e-mail. The *sequence* is the record's count of mirrored changes (kept with the mirrored state), so
//! In Progress → Action Required → In Progress → Action Required is four keys, each honoured by the outbox
//! for as long as it keeps idempotency keys, while a replay of one change after a crash (enqueued, then the
//! crash before the new state was saved) reuses its key and enqueues nothing. The state hash in the key keeps
//! a replay that finds a *newer* state from being mistaken for the lost one.
//!
//! The e-mail payload is the mapped event body (the outbound mapping's `reference`, `status`, `reason`) plus
//! the bank's name and links: nothing is read from the Salesforce record directly.

use serde_json::{Value, json};

use crate::config::BankConfig;
use crate::outbox::{Destination, Lane, NewMessage, Outbox};

use super::error::InboundError;

/// The mirrored state of a record: how many changes were mirrored and the hash of the last one. Stored as
/// `<sequence>:<hash>`; a bare hash (written before sequences existed) reads as sequence 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrored {
    pub sequence: u64,
    pub state_hash: String,
}

impl Mirrored {
    pub fn decode(stored: &str) -> Mirrored {
        match stored.split_once(':') {
            Some((seq, hash)) => Mirrored {
                sequence: seq.parse().unwrap_or(0),
                state_hash: hash.to_owned(),
            },
            None => Mirrored {
                sequence: 0,
                state_hash: stored.to_owned(),
            },
        }
    }

    pub fn encode(&self) -> String {
        format!("{}:{}", self.sequence, self.state_hash)
    }
}

/// One change ready to enqueue.
pub struct Change<'a> {
    pub record_id: &'a str,
    /// The change's place in the record's history (previous sequence + 1).
    pub sequence: u64,
    pub state_hash: &'a str,
    pub bank: &'a BankConfig,
    /// `report_request.<suffix>`.
    pub event: &'a str,
    /// The mapped event body (with links and report added).
    pub body: Value,
    pub mapping_version: &'a str,
    pub request_key: &'a str,
    /// The e-mail template for this status, if people are told.
    pub email_template: Option<&'a str>,
}

impl Change<'_> {
    fn key(&self) -> String {
        format!(
            "mirror:{}:{}:{}",
            self.record_id, self.sequence, self.state_hash
        )
    }
}

/// Enqueues the bank event and e-mails of `change`, each durable when its enqueue returns.
pub async fn enqueue(
    outbox: &Outbox,
    change: Change<'_>,
    public_url: &str,
) -> Result<(), InboundError> {
    let key = change.key();
    let bank = change.bank;
    let email = change
        .email_template
        .map(|template| (template, email_payload(&change, public_url)));
    let message = NewMessage {
        tenant: bank.account_id.clone(),
        lane: Lane::Interactive,
        destination: Destination::Bank {
            endpoint: bank.code.clone(),
            event: format!("report_request.{}", change.event),
        },
        payload: change.body,
        mapping_version: Some(change.mapping_version.to_owned()),
    };
    put(outbox, bank, &key, message).await?;
    let Some((template, payload)) = email else {
        return Ok(());
    };
    for contact in &bank.contacts {
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
        put(outbox, bank, &format!("{key}:email:{contact}"), message).await?;
    }
    Ok(())
}

async fn put(
    outbox: &Outbox,
    bank: &BankConfig,
    key: &str,
    message: NewMessage,
) -> Result<(), InboundError> {
    outbox.enqueue_once(&bank.account_id, key, message).await?;
    Ok(())
}

/// The templates' variables. Every variable a template uses must be present (a missing one fails the
/// e-mail), so absent optional values get a readable placeholder.
fn email_payload(change: &Change<'_>, public_url: &str) -> Value {
    let mapped = |field: &str| {
        change
            .body
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let key = change.request_key;
    json!({
        "bank_name": change.bank.name,
        "id": key,
        "request_id": key,
        "reference": mapped("reference").unwrap_or("(no reference)"),
        "status": mapped("status").unwrap_or("(unknown)"),
        "reason": mapped("reason").unwrap_or("(no reason given)"),
        "status_url": format!("{public_url}/api/v1/report-requests/{key}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_state_round_trips_and_reads_legacy_hashes() {
        let m = Mirrored {
            sequence: 7,
            state_hash: "ab12".into(),
        };
        assert_eq!(Mirrored::decode(&m.encode()), m);
        assert_eq!(
            Mirrored::decode("ab12"),
            Mirrored {
                sequence: 0,
                state_hash: "ab12".into()
            }
        );
    }
}
