//! Turning claimed messages into Collections calls. Pure: no I/O, so the rules are unit-tested.
//!
//! - One call per `(object, ext_field)`: a Collections upsert names one object and one key.
//! - Calls keep claim order, and claims take the Interactive lane first, so report requests are
//!   sent before data feeds claimed in the same step.
//! - An external id appears at most once per call. Two messages for one record (a replay queued
//!   while the first was pending) go into consecutive calls, oldest first, so the newer values
//!   win, as they would one at a time; sending both in one call would leave the outcome to the
//!   org's processing order.
//! - A payload that does not fit its destination is refused here, per message, so it can never
//!   turn a whole call into an error for the others.

use serde_json::Value;

use crate::outbox::{Destination, Message};
use crate::salesforce::JsonMap;

/// One sObject Collections upsert: its messages and the record each one sends.
#[derive(Debug)]
pub(crate) struct Call {
    pub object: String,
    pub ext_field: String,
    pub messages: Vec<Message>,
    pub records: Vec<JsonMap>,
}

/// A message that cannot be sent, and why (the reason names fields, never values).
#[derive(Debug)]
pub(crate) struct Unsendable {
    pub message: Message,
    pub reason: String,
}

/// Splits claimed messages into calls (in sending order) and messages that cannot be sent.
pub(crate) fn plan(messages: Vec<Message>) -> (Vec<Call>, Vec<Unsendable>) {
    let mut calls: Vec<Call> = Vec::new();
    let mut unsendable = Vec::new();
    for message in messages {
        let (object, ext_field, ext_value) = match &message.destination {
            Destination::Salesforce {
                object,
                ext_field,
                ext_value,
            } => (object.clone(), ext_field.clone(), ext_value.clone()),
            other => {
                let reason = format!(
                    "{:?} message claimed by the Salesforce pusher",
                    other.kind()
                );
                unsendable.push(Unsendable { message, reason });
                continue;
            }
        };
        let record = match record_for(&message.payload, &ext_field, &ext_value) {
            Ok(record) => record,
            Err(reason) => {
                unsendable.push(Unsendable { message, reason });
                continue;
            }
        };
        let slot = calls.iter().position(|c| {
            c.object == object
                && c.ext_field == ext_field
                && !c
                    .messages
                    .iter()
                    .any(|m| ext_value_of(m) == Some(ext_value.as_str()))
        });
        let call = match slot {
            Some(i) => &mut calls[i],
            None => {
                calls.push(Call {
                    object,
                    ext_field,
                    messages: Vec::new(),
                    records: Vec::new(),
                });
                let last = calls.len() - 1;
                &mut calls[last]
            }
        };
        call.messages.push(message);
        call.records.push(record);
    }
    (calls, unsendable)
}

/// The record to send: the payload object, with the external id in it (Collections upserts read
/// the key from the record body). A payload without the key gets it from the destination; a
/// payload whose key disagrees with the destination is refused, because the outbox's dedupe and
/// Salesforce's would then be about different records.
fn record_for(payload: &Value, ext_field: &str, ext_value: &str) -> Result<JsonMap, String> {
    let Value::Object(fields) = payload else {
        return Err("payload is not a JSON object".to_owned());
    };
    if ext_value.is_empty() {
        return Err(format!("external id {ext_field} is empty"));
    }
    let mut record = fields.clone();
    match record.get(ext_field) {
        None | Some(Value::Null) => {
            record.insert(ext_field.to_owned(), Value::String(ext_value.to_owned()));
        }
        Some(Value::String(s)) if s == ext_value => {}
        Some(Value::Number(n)) if n.to_string() == ext_value => {}
        Some(_) => {
            return Err(format!(
                "payload field {ext_field} differs from the message's external id"
            ));
        }
    }
    Ok(record)
}

fn ext_value_of(message: &Message) -> Option<&str> {
    match &message.destination {
        Destination::Salesforce { ext_value, .. } => Some(ext_value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::outbox::{Lane, MessageId, State};

    fn message(object: &str, key: &str, payload: Value) -> Message {
        let now = Utc::now();
        Message {
            id: MessageId::new(),
            tenant: "0015Y00000BANKAQA5".into(),
            lane: Lane::Interactive,
            destination: Destination::Salesforce {
                object: object.into(),
                ext_field: "Key__c".into(),
                ext_value: key.into(),
            },
            payload,
            mapping_version: None,
            state: State::InFlight,
            attempts: 0,
            created_at: now,
            updated_at: now,
            next_attempt_at: now,
            lease_until: None,
            lease_token: None,
            last_error: None,
            remote_id: None,
            completed_at: None,
            payload_erased_at: None,
        }
    }

    #[test]
    fn groups_by_object_in_claim_order() {
        let (calls, bad) = plan(vec![
            message("B__c", "1", json!({"Key__c": "1"})),
            message("A__c", "2", json!({"Key__c": "2"})),
            message("B__c", "3", json!({"Key__c": "3"})),
        ]);
        assert!(bad.is_empty());
        let shape: Vec<(&str, usize)> = calls
            .iter()
            .map(|c| (c.object.as_str(), c.records.len()))
            .collect();
        assert_eq!(shape, [("B__c", 2), ("A__c", 1)]);
        assert_eq!(calls[0].records[1]["Key__c"], "3");
    }

    #[test]
    fn one_external_id_per_call_oldest_first() {
        let (calls, _) = plan(vec![
            message("A__c", "1", json!({"Key__c": "1", "V": "old"})),
            message("A__c", "2", json!({"Key__c": "2"})),
            message("A__c", "1", json!({"Key__c": "1", "V": "new"})),
        ]);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].records.len(), 2);
        assert_eq!(calls[0].records[0]["V"], "old");
        assert_eq!(calls[1].records[0]["V"], "new");
    }

    #[test]
    fn the_key_is_added_or_checked() {
        let (calls, bad) = plan(vec![
            message("A__c", "7", json!({"Name": "x"})),
            message("A__c", "8", json!({"Key__c": "other"})),
            message("A__c", "9", json!(["not", "an", "object"])),
            message("A__c", "", json!({})),
        ]);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].records[0]["Key__c"], "7");
        assert_eq!(bad.len(), 3);
        assert!(bad.iter().all(|u| !u.reason.contains("other")));
    }
}
