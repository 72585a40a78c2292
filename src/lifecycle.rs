//! The lifecycle of a report request as a bank sees it: one vocabulary for the status document
//! (`GET /api/v1/report-requests/{id}`), the webhooks' event types and `data`, and the OpenAPI document.
//!
//! ```text
//! received ──▶ submitted ──▶ in_progress ──▶ completed | rejected | action_required
//!    │                            ▲                                      │
//!    └──▶ failed                  └──────────────────────────────────────┘ (the bank acted)
//! ```
//!
//! Two sources decide the state, and this module is the only place that combines them:
//! - **creditlink's own delivery** (the outbox message of the request): `received` while it waits for or is
//!   being sent to Salesforce, `submitted` once Salesforce holds it, `failed` when it never will (refused,
//!   retries exhausted, discarded by an operator), with the reason.
//! - **the bureau's work** (what the mirror last saw in Salesforce and told the bank): the outbound mapping
//!   turns the record's status into one of these names, and the mirror stores the event `data` it sent under
//!   the creditlink id ([`crate::inbound::InboundState::view`]). The status document *is* that `data` plus
//!   delivery detail, so the document and the webhooks cannot disagree.
//!
//! Every state has an event type `report_request.<state>`, except `received` (the bank's own POST answers it)
//! and `submitted` (the 201/202 and the status document carry the Salesforce id).

mod notice;

pub use notice::{FAILED_TEMPLATE, FailureNotice};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::mapping::MappingSet;
use crate::outbox::{Destination, Message, State};

/// The mapping kind report requests are mapped with (`mappings/report_request.*.toml`).
pub const REPORT_REQUEST_KIND: &str = "report_request";

/// A report request's state, as banks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    Received,
    Submitted,
    InProgress,
    Completed,
    Rejected,
    ActionRequired,
    Failed,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 7] = [
        Self::Received,
        Self::Submitted,
        Self::InProgress,
        Self::Completed,
        Self::Rejected,
        Self::ActionRequired,
        Self::Failed,
    ];

    /// The name used in documents, event types and mappings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Submitted => "submitted",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::ActionRequired => "action_required",
            Self::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<Lifecycle> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The webhook event type announcing this state.
    pub fn event_type(self) -> String {
        format!("report_request.{}", self.as_str())
    }

    /// What the state means, for the OpenAPI document and the docs.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Received => {
                "stored durably by creditlink, not yet in Salesforce (`delivery` shows the attempts)"
            }
            Self::Submitted => "in the bureau's Salesforce org (`salesforce_id`), not yet worked",
            Self::InProgress => "a bureau analyst is working on it",
            Self::Completed => "the report is ready (`report`: link, size, SHA-256)",
            Self::Rejected => "the bureau rejected it (`reason`)",
            Self::ActionRequired => "the bureau needs the bank to act (`reason` says what)",
            Self::Failed => {
                "it never reached Salesforce and will not be retried (`reason`); post a corrected request"
            }
        }
    }
}

impl std::fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `message` is a report request (and not a bank event, an e-mail or a data-feed record): a
/// Salesforce upsert into the object the report-request mappings write.
pub fn is_report_request(message: &Message, report_object: Option<&str>) -> bool {
    match &message.destination {
        Destination::Salesforce { object, .. } => report_object.is_none_or(|o| o == object),
        Destination::Bank { .. } | Destination::Email { .. } => false,
    }
}

/// The state creditlink's own delivery implies, before the bureau has touched the request.
pub fn delivery_state(message: &Message) -> Lifecycle {
    match message.state {
        State::Pending | State::InFlight => Lifecycle::Received,
        State::Delivered => Lifecycle::Submitted,
        State::Failed | State::Dead | State::Discarded => Lifecycle::Failed,
    }
}

/// Why a request failed, in the bank's words (no internal names; the Salesforce error code is kept because
/// the bureau's support can look it up).
pub fn failure_reason(message: &Message) -> Option<String> {
    let last = message
        .last_error
        .as_ref()
        .map(|e| match (&e.code, &e.message) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(text), None) | (None, Some(text)) => text.clone(),
            (None, None) => "no detail".to_owned(),
        });
    let last = last.unwrap_or_else(|| "no error recorded".into());
    match message.state {
        State::Failed => Some(format!("Salesforce refused the request ({last}).")),
        State::Dead => Some(format!(
            "Salesforce could not be reached after {} attempts (last error: {last}).",
            message.attempts
        )),
        State::Discarded => Some("The bureau's operators cancelled the request.".into()),
        State::Pending | State::InFlight | State::Delivered => None,
    }
}

/// The request's data as the bank knows it before any bureau change: the outbound mapping applied to the
/// record creditlink sent (so `id`, `reference` and the bank's own field names come out as in webhooks),
/// with the state, reason and Salesforce id from the delivery. The same keys as a webhook's `data`.
pub fn delivery_view(message: &Message, mappings: &MappingSet, bank_code: Option<&str>) -> Value {
    let mut view = match &message.payload {
        record @ Value::Object(_) => {
            match mappings.map_outbound_value(REPORT_REQUEST_KIND, record, bank_code) {
                Ok(Value::Object(view)) => view,
                _ => Map::new(),
            }
        }
        _ => Map::new(),
    };
    let state = delivery_state(message);
    view.insert("id".into(), message.id.to_string().into());
    view.insert("status".into(), state.as_str().into());
    view.insert(
        "reason".into(),
        failure_reason(message).map_or(Value::Null, Value::from),
    );
    view.insert(
        "salesforce_id".into(),
        message.remote_id.clone().map_or(Value::Null, Value::from),
    );
    view.insert("report".into(), Value::Null);
    let changed = match state {
        Lifecycle::Received => message.created_at,
        _ => message.completed_at.unwrap_or(message.updated_at),
    };
    view.insert("changed_at".into(), timestamp(changed).into());
    Value::Object(view)
}

/// The status document: the bureau's view when there is one (exactly the last webhook's `data`), else the
/// delivery view; plus `created_at`, `status_url` and the `delivery` sub-object.
pub fn status_document(
    message: &Message,
    mirrored: Option<Value>,
    mappings: &MappingSet,
    bank_code: Option<&str>,
    status_url: &str,
) -> Value {
    // A request that failed in delivery has no bureau view; one the bureau worked always wins.
    let mut doc = match mirrored {
        Some(Value::Object(view)) if message.state == State::Delivered => view,
        _ => match delivery_view(message, mappings, bank_code) {
            Value::Object(view) => view,
            _ => Map::new(),
        },
    };
    doc.insert("created_at".into(), timestamp(message.created_at).into());
    doc.insert("status_url".into(), status_url.into());
    let delivery_state = serde_json::to_value(message.state).unwrap_or(Value::Null);
    doc.insert(
        "delivery".into(),
        json!({
            "state": delivery_state,
            "attempts": message.attempts,
            "last_error": message.last_error.as_ref().map(|e| json!({ "code": e.code, "message": e.message })),
            "updated_at": timestamp(message.updated_at),
        }),
    );
    Value::Object(doc)
}

/// RFC 3339 in UTC with milliseconds, as every timestamp banks see.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for s in Lifecycle::ALL {
            assert_eq!(Lifecycle::parse(s.as_str()), Some(s));
            assert_eq!(s.event_type(), format!("report_request.{s}"));
        }
        assert_eq!(Lifecycle::parse("delivered"), None);
    }
}
