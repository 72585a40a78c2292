//! The gatekeeper's judgement of one record, as a pure function of the record, the day and its thresholds.
//!
//! A record is *stale* when its `Last_Reported__c` is more than `stale_after` days before the day judged; it is
//! in the *warn window* when it becomes stale within `warn_before` days. Stale active records are terminated;
//! stale records in dispute or closed are skipped (and reported, so the bureau sees them); records in the warn
//! window are warned about unless nothing would happen to them anyway (closed, in dispute). Terminated records
//! and records without `Last_Reported__c` are not judged.

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::fields::{self, CLOSED, TERMINATED};
use crate::salesforce::JsonMap;

/// What the gatekeeper does with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Terminate,
    Warn,
    SkipDispute,
    SkipClosed,
}

impl Verdict {
    /// The `action` of the report (`terminate|warn|skip`).
    pub fn action(self) -> &'static str {
        match self {
            Verdict::Terminate => "terminate",
            Verdict::Warn => "warn",
            Verdict::SkipDispute | Verdict::SkipClosed => "skip",
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Terminate => "terminate",
            Verdict::Warn => "warn",
            Verdict::SkipDispute => "skip_dispute",
            Verdict::SkipClosed => "skip_closed",
        }
    }
}

/// The fields of a `Credit_Record__c` the gatekeeper reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordState {
    pub id: String,
    pub record_key: Option<String>,
    pub furnisher: Option<String>,
    pub product_type: String,
    pub status: Option<String>,
    pub last_reported: Option<NaiveDate>,
    pub in_dispute: bool,
}

impl RecordState {
    /// Reads a query row; `None` without an `Id`.
    pub fn from_record(record: &JsonMap) -> Option<RecordState> {
        Some(RecordState {
            id: fields::text(record, fields::ID)?.to_owned(),
            record_key: fields::text(record, fields::RECORD_KEY).map(str::to_owned),
            furnisher: fields::text(record, fields::FURNISHER).map(str::to_owned),
            product_type: fields::text(record, fields::PRODUCT_TYPE)
                .unwrap_or_default()
                .to_owned(),
            status: fields::text(record, fields::STATUS).map(str::to_owned),
            last_reported: fields::text(record, fields::LAST_REPORTED)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
            in_dispute: record
                .get(fields::IN_DISPUTE)
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// The judgement and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    /// The first day the record counts as stale.
    pub stale_on: NaiveDate,
}

/// Judges `record` on `as_of` with `(stale_after, warn_before)` days; `None` = nothing to do or say.
pub fn judge(
    record: &RecordState,
    as_of: NaiveDate,
    (stale_after, warn_before): (u32, u32),
) -> Option<Judgement> {
    if record.status.as_deref() == Some(TERMINATED) {
        return None;
    }
    let last = record.last_reported?;
    let age = as_of.signed_duration_since(last).num_days();
    let stale_on = last.checked_add_days(Days::new(u64::from(stale_after) + 1))?;
    let stale = age > i64::from(stale_after);
    let in_window = !stale && age > i64::from(stale_after) - i64::from(warn_before);
    let closed = record.status.as_deref() == Some(CLOSED);
    let (verdict, reason) = match (stale, in_window) {
        (true, _) if closed => (
            Verdict::SkipClosed,
            format!(
                "closed: stale for {stale_after} days, but closed records are never terminated"
            ),
        ),
        (true, _) if record.in_dispute => (
            Verdict::SkipDispute,
            format!(
                "in_dispute: stale for {stale_after} days, but records in dispute are never terminated"
            ),
        ),
        (true, _) => (
            Verdict::Terminate,
            format!("stale: last reported {age} days ago, threshold {stale_after} days"),
        ),
        (false, true) if !closed && !record.in_dispute => (
            Verdict::Warn,
            format!(
                "stale_soon: terminated on {stale_on} unless fresh data arrives (threshold {stale_after} days)"
            ),
        ),
        _ => return None,
    };
    Some(Judgement {
        verdict,
        reason,
        stale_on,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, last: &str, in_dispute: bool) -> RecordState {
        RecordState {
            id: "a02".into(),
            record_key: Some("rk_1".into()),
            furnisher: Some("001A".into()),
            product_type: "Installment".into(),
            status: Some(status.into()),
            last_reported: NaiveDate::parse_from_str(last, "%Y-%m-%d").ok(),
            in_dispute,
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn the_threshold_day_itself_is_not_stale() {
        let t = (180, 30);
        let as_of = day("2026-07-01");
        // 180 days before 2026-07-01 is 2026-01-02.
        assert_eq!(
            judge(&record("Active", "2026-01-02", false), as_of, t).map(|j| j.verdict),
            Some(Verdict::Warn)
        );
        let j = judge(&record("Active", "2026-01-01", false), as_of, t).expect("stale");
        assert_eq!(j.verdict, Verdict::Terminate);
        assert_eq!(j.stale_on, as_of);
        // 150 days: the first day of the warn window is the 151st.
        assert_eq!(
            judge(&record("Active", "2026-02-01", false), as_of, t),
            None
        );
        assert_eq!(
            judge(&record("Active", "2026-01-31", false), as_of, t).map(|j| j.verdict),
            Some(Verdict::Warn)
        );
    }

    #[test]
    fn dispute_and_closed_are_never_terminated_nor_warned() {
        let t = (180, 30);
        let as_of = day("2026-07-01");
        assert_eq!(
            judge(&record("Active", "2025-01-01", true), as_of, t).map(|j| j.verdict),
            Some(Verdict::SkipDispute)
        );
        assert_eq!(
            judge(&record("Closed", "2025-01-01", true), as_of, t).map(|j| j.verdict),
            Some(Verdict::SkipClosed)
        );
        assert_eq!(judge(&record("Active", "2026-01-20", true), as_of, t), None);
        assert_eq!(
            judge(&record("Closed", "2026-01-20", false), as_of, t),
            None
        );
        assert_eq!(
            judge(&record("Terminated", "2025-01-01", false), as_of, t),
            None
        );
        let mut no_date = record("Active", "x", false);
        no_date.last_reported = None;
        assert_eq!(judge(&no_date, as_of, t), None);
    }
}
