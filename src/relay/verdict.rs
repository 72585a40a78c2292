//! The relay's one retry classification: every Salesforce answer, per record or for a whole call,
//! becomes a [`Verdict`] here and nowhere else, and a verdict becomes the outbox's `Attempt` and
//! `Transition`.
//!
//! The client already says retry / re-authenticate / give up ([`SfError::class`],
//! [`RecordResult::error_class`]); this module adds what only the relay knows:
//! - a `DUPLICATE_VALUE` on the message's *own* external id means the record is there (a retry
//!   after a lost answer, or two upserts of one key racing in the org): success;
//! - a refused token or broken credentials are not the message's fault, so they never fail a
//!   message permanently: a misconfigured secret would otherwise fail the whole queue in seconds.
//!   Such messages are retried, go Dead when attempts run out, and readiness shows the token problem.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::outbox::{Attempt, AttemptOutcome, Transition};
use crate::salesforce::{ApiError, ErrorClass, RecordResult, SfError};

/// The HTTP status of a Collections call that answered per record.
const COLLECTIONS_OK: u16 = 200;

/// How one message's attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The record is in Salesforce. `why` is set when success was inferred from an error
    /// (`DUPLICATE_VALUE` on the own key), so the attempt log still shows what Salesforce said.
    Success {
        remote_id: Option<String>,
        why: Option<Why>,
    },
    /// The record exists (own-key duplicate) but Salesforce did not name its id.
    SuccessIdUnknown(Why),
    /// Try again later.
    Retry {
        outcome: AttemptOutcome,
        hint: Option<Duration>,
        why: Why,
    },
    /// Never retry: the message itself is wrong for this org.
    DontRetry(Why),
}

/// What Salesforce said, kept in the attempt log.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Why {
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Classifies one item of a Collections answer for a message keyed by `ext_field`.
pub(crate) fn judge_record(result: &RecordResult, ext_field: &str) -> Verdict {
    let Some(class) = result.error_class() else {
        return Verdict::Success {
            remote_id: result.id.clone(),
            why: None,
        };
    };
    let why = Why {
        http_status: Some(COLLECTIONS_OK),
        code: result.errors.first().map(|e| e.code.clone()),
        message: Some(describe(&result.errors)),
    };
    if let Some(duplicate) = result
        .errors
        .iter()
        .find(|e| is_own_duplicate(e, ext_field))
    {
        return match duplicate_record_id(&duplicate.message).or(result.id.clone()) {
            Some(id) => Verdict::Success {
                remote_id: Some(id),
                why: Some(why),
            },
            None => Verdict::SuccessIdUnknown(why),
        };
    }
    match class {
        ErrorClass::Retryable => Verdict::Retry {
            outcome: if result
                .errors
                .iter()
                .any(|e| e.code == "REQUEST_LIMIT_EXCEEDED")
            {
                AttemptOutcome::RateLimited
            } else {
                AttemptOutcome::Retryable
            },
            hint: None,
            why,
        },
        ErrorClass::Reauth => Verdict::Retry {
            outcome: AttemptOutcome::Reauth,
            hint: None,
            why,
        },
        ErrorClass::Permanent => Verdict::DontRetry(why),
    }
}

/// Classifies a failure of a whole call; the verdict applies to every message of the call.
///
/// A whole-call permanent error means the request itself was malformed: with Collections the org
/// answers per record, so one bad record cannot cause it.
pub(crate) fn judge_call(error: &SfError) -> Verdict {
    let why = Why {
        http_status: error.http_status(),
        code: error.code().map(str::to_owned),
        message: Some(error.to_string()),
    };
    let class = match (error.class(), error) {
        // Credentials or client settings, not the message: see the module documentation.
        (ErrorClass::Permanent, SfError::OAuth { .. } | SfError::Config(_)) => ErrorClass::Reauth,
        (class, _) => class,
    };
    match class {
        ErrorClass::Retryable => Verdict::Retry {
            outcome: if error.is_rate_limit() {
                AttemptOutcome::RateLimited
            } else {
                AttemptOutcome::Retryable
            },
            hint: error.retry_after(),
            why,
        },
        ErrorClass::Reauth => Verdict::Retry {
            outcome: AttemptOutcome::Reauth,
            hint: None,
            why,
        },
        ErrorClass::Permanent => Verdict::DontRetry(why),
    }
}

/// A message that cannot be sent as it is (its payload does not fit its destination).
pub(crate) fn malformed(reason: String) -> Verdict {
    Verdict::DontRetry(Why {
        http_status: None,
        code: Some("INVALID_MESSAGE".to_owned()),
        message: Some(reason),
    })
}

/// The call did not finish within the pusher's request timeout.
pub(crate) fn timed_out(after: Duration) -> Verdict {
    Verdict::Retry {
        outcome: AttemptOutcome::Retryable,
        hint: None,
        why: Why {
            http_status: None,
            code: Some("TIMEOUT".to_owned()),
            message: Some(format!(
                "no answer from Salesforce within {} ms",
                after.as_millis()
            )),
        },
    }
}

impl Verdict {
    /// The attempt-log entry and the state change for this verdict (a
    /// [`Verdict::SuccessIdUnknown`] is delivered without an id; the pusher looks it up first).
    pub(crate) fn into_attempt(
        self,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    ) -> (Attempt, Transition) {
        let (outcome, why, transition) = match self {
            Verdict::Success { remote_id, why } => (
                AttemptOutcome::Success,
                // Successes come only from a Collections answer (a 200 with per-record results).
                why.unwrap_or(Why {
                    http_status: Some(COLLECTIONS_OK),
                    ..Why::default()
                }),
                Transition::Delivered { remote_id },
            ),
            Verdict::SuccessIdUnknown(why) => (
                AttemptOutcome::Success,
                why,
                Transition::Delivered { remote_id: None },
            ),
            Verdict::Retry { outcome, hint, why } => (
                outcome,
                why,
                Transition::Retry {
                    hint,
                    rate_limited: outcome == AttemptOutcome::RateLimited,
                },
            ),
            Verdict::DontRetry(why) => (AttemptOutcome::Permanent, why, Transition::Failed),
        };
        let latency_ms = (finished_at - started_at).num_milliseconds().max(0) as u64;
        let attempt = Attempt {
            started_at,
            finished_at,
            outcome,
            http_status: why.http_status,
            error_code: why.code,
            message: why.message,
            latency_ms,
        };
        (attempt, transition)
    }

    /// The code label for the attempts counter.
    pub(crate) fn code(&self) -> &str {
        let why = match self {
            Verdict::Success { why: None, .. } => return "OK",
            Verdict::Success { why: Some(why), .. }
            | Verdict::SuccessIdUnknown(why)
            | Verdict::Retry { why, .. }
            | Verdict::DontRetry(why) => why,
        };
        why.code.as_deref().unwrap_or("UNKNOWN")
    }
}

/// `DUPLICATE_VALUE` naming `ext_field`, in `fields` or in Salesforce's message
/// (`duplicate value found: <Field> duplicates value on record with id: <Id>`; `fields` is often empty).
fn is_own_duplicate(error: &ApiError, ext_field: &str) -> bool {
    if error.code != "DUPLICATE_VALUE" {
        return false;
    }
    if error
        .fields
        .iter()
        .any(|f| f.eq_ignore_ascii_case(ext_field))
    {
        return true;
    }
    error
        .message
        .split_once("duplicate value found:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|field| field.eq_ignore_ascii_case(ext_field))
}

/// The id at the end of a `DUPLICATE_VALUE` message, if it looks like a Salesforce id.
fn duplicate_record_id(message: &str) -> Option<String> {
    let (_, rest) = message.rsplit_once("record with id:")?;
    let id: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    matches!(id.len(), 15 | 18).then_some(id)
}

/// `text` with every string value of `payload` (3 characters or more) replaced by `[redacted]`, longest
/// first so a value containing another is replaced whole.
pub(crate) fn redact_values(text: &str, payload: &serde_json::Value) -> String {
    let mut values: Vec<&str> = match payload.as_object() {
        Some(fields) => fields
            .values()
            .filter_map(serde_json::Value::as_str)
            .filter(|v| v.chars().count() >= 3)
            .collect(),
        None => Vec::new(),
    };
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
        .into_iter()
        .fold(text.to_owned(), |acc, v| acc.replace(v, "[redacted]"))
}

/// `CODE: message (fields: A, B); CODE: …`, Salesforce's words kept for the dashboard.
fn describe(errors: &[ApiError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.fields.is_empty() {
                format!("{}: {}", e.code, e.message)
            } else {
                format!(
                    "{}: {} (fields: {})",
                    e.code,
                    e.message,
                    e.fields.join(", ")
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
