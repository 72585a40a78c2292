//! The reason-code registry: every code a row's problem can carry, with its meaning, severity and remedy, in a
//! bank clerk's words. `GET /api/v1/reason-codes` serves it; every problem of every row names one of these.
//!
//! Codes are stable (banks key their own tooling on them): add new ones, never rename or reuse one. Messages
//! name the column, never the value (a feed is full of personal data, and problem lists travel to dashboards
//! and e-mails).

use serde::Serialize;

/// Whether a problem kicks the row out or only notes something about an accepted row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The row is rejected (a kick-out) and appears in `errors.csv`.
    Error,
    /// The row is accepted; the note says what was assumed.
    Warning,
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReasonCode {
    pub code: &'static str,
    pub meaning: &'static str,
    pub severity: Severity,
    pub remedy: &'static str,
}

const fn error(code: &'static str, meaning: &'static str, remedy: &'static str) -> ReasonCode {
    ReasonCode {
        code,
        meaning,
        severity: Severity::Error,
        remedy,
    }
}

const fn warning(code: &'static str, meaning: &'static str, remedy: &'static str) -> ReasonCode {
    ReasonCode {
        code,
        meaning,
        severity: Severity::Warning,
        remedy,
    }
}

pub const MISSING_VALUE: &str = "missing_value";
pub const INVALID_DATE: &str = "invalid_date";
pub const INVALID_NUMBER: &str = "invalid_number";
pub const INVALID_CHOICE: &str = "invalid_choice";
pub const INVALID_FORMAT: &str = "invalid_format";
pub const TOO_LONG: &str = "too_long";
pub const NEGATIVE_AMOUNT: &str = "negative_amount";
pub const DATE_IN_FUTURE: &str = "date_in_future";
pub const FORBIDDEN_CHARACTERS: &str = "forbidden_characters";
pub const OPENED_AFTER_AS_OF: &str = "opened_after_as_of_date";
pub const BALANCE_TOO_LARGE: &str = "balance_too_large";
pub const NATIONAL_ID_MISSING: &str = "national_id_missing";
pub const REGISTRY_NUMBER_MISSING: &str = "registry_number_missing";
pub const COMPANY_NAME_MISSING: &str = "company_name_missing";
pub const MALFORMED_ROW: &str = "malformed_row";
pub const SALESFORCE_REJECTED: &str = "salesforce_rejected";
pub const PRODUCT_TYPE_OTHER: &str = "product_type_other";
pub const BALANCE_OVER_LIMIT: &str = "balance_over_limit";
pub const DUPLICATE_IN_UPLOAD: &str = "duplicate_in_upload";
pub const DUPLICATE_REJECTED: &str = "duplicate_rejected";
pub const DUPLICATE_FLAGGED: &str = "duplicate_flagged";

/// The registry, in the order `GET /api/v1/reason-codes` lists it.
pub const REGISTRY: &[ReasonCode] = &[
    error(
        MISSING_VALUE,
        "A column that every row needs is empty.",
        "Fill in the column named in `field` and upload the row again.",
    ),
    error(
        INVALID_DATE,
        "The value is not a calendar date in the form YYYY-MM-DD (DD-MM-YYYY is also accepted).",
        "Write the date as YYYY-MM-DD, for example 2026-11-30.",
    ),
    error(
        INVALID_NUMBER,
        "The value is not a number.",
        "Write amounts with digits and an optional decimal point, without currency signs or thousands separators (1234.50).",
    ),
    error(
        INVALID_CHOICE,
        "The value is not one of the values this column allows.",
        "Use one of the values listed for this column in the feed documentation (e.g. status: active or closed).",
    ),
    error(
        INVALID_FORMAT,
        "The value does not have the expected format (for example, a national id with letters, digits and dashes only).",
        "Correct the value to the documented format of this column.",
    ),
    error(
        TOO_LONG,
        "The value is longer than this column allows.",
        "Shorten the value to the documented maximum length.",
    ),
    error(
        NEGATIVE_AMOUNT,
        "An amount is below zero.",
        "Report balances and credit limits as zero or more.",
    ),
    error(
        DATE_IN_FUTURE,
        "A date lies after the day the upload was received.",
        "Check the date: opening and as-of dates cannot be in the future.",
    ),
    error(
        FORBIDDEN_CHARACTERS,
        "The value contains control or invisible characters.",
        "Remove control, invisible and direction-changing characters from the value.",
    ),
    error(
        OPENED_AFTER_AS_OF,
        "The account's opening date is after the date the data is as of.",
        "Check date_opened and as_of_date: an account cannot be opened after the date its data describes.",
    ),
    error(
        BALANCE_TOO_LARGE,
        "The balance is larger than any plausible tradeline (over 10,000,000,000).",
        "Check the balance for a misplaced decimal point or a value in the wrong column.",
    ),
    error(
        NATIONAL_ID_MISSING,
        "A person's row has no national id.",
        "Fill in national_id for rows with subject_type person.",
    ),
    error(
        REGISTRY_NUMBER_MISSING,
        "A company's row has no registry number.",
        "Fill in registry_number for rows with subject_type company.",
    ),
    error(
        COMPANY_NAME_MISSING,
        "A company's row has no company name.",
        "Fill in company_name for rows with subject_type company.",
    ),
    error(
        MALFORMED_ROW,
        "The row could not be read: it has a different number of columns than the header, or is not valid for its format.",
        "Check the row for missing or extra separators and unbalanced quotes.",
    ),
    error(
        SALESFORCE_REJECTED,
        "The bureau's system refused the record; the message quotes its reason.",
        "Correct the value the message names; if the reason is unclear, contact the bureau with the upload id and row number.",
    ),
    warning(
        PRODUCT_TYPE_OTHER,
        "The product type is not one the bureau knows; the record was stored as product type Other.",
        "Use installment, revolving, mortgage or open where one applies.",
    ),
    warning(
        BALANCE_OVER_LIMIT,
        "The balance is above the credit limit.",
        "Nothing to do if the account is really over its limit; otherwise check both amounts.",
    ),
    warning(
        DUPLICATE_IN_UPLOAD,
        "Another row of this upload describes the same tradeline with a later (or equal) as-of date; that row was used.",
        "Send each tradeline once per upload.",
    ),
    error(
        DUPLICATE_REJECTED,
        "Another row of this upload is the same tradeline under a duplicate rule whose action is to reject; this row was not used (the rule and the row used are named in the message).",
        "Send each tradeline once per upload; if both rows are right, correct the field the rule compares.",
    ),
    warning(
        DUPLICATE_FLAGGED,
        "Another row of this upload looks like the same tradeline under a duplicate rule that flags for review; this row was used and is marked for the bureau to check.",
        "Nothing to do if both rows are distinct tradelines; otherwise send only the right one.",
    ),
];

/// The registry entry of `code`.
pub fn lookup(code: &str) -> Option<&'static ReasonCode> {
    REGISTRY.iter().find(|r| r.code == code)
}

/// A problem of one row, as `GET /api/v1/uploads/{id}/records` and `errors.csv` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RowProblem {
    pub code: String,
    /// The feed column (as the bank named it); empty for the row as a whole.
    pub field: String,
    pub severity: String,
    pub message: String,
    pub remedy: String,
}

impl RowProblem {
    /// A problem with the registry's meaning as its message.
    pub fn new(code: &'static str, field: &str) -> RowProblem {
        let entry = lookup(code).expect("a registered reason code");
        RowProblem::with_message(code, field, entry.meaning.to_owned())
    }

    /// A problem with its own message (e.g. Salesforce's reason).
    pub fn with_message(code: &'static str, field: &str, message: String) -> RowProblem {
        let entry = lookup(code).expect("a registered reason code");
        RowProblem {
            code: code.to_owned(),
            field: field.to_owned(),
            severity: match entry.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            }
            .to_owned(),
            message,
            remedy: entry.remedy.to_owned(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for r in REGISTRY {
            assert!(seen.insert(r.code), "duplicate code {}", r.code);
            assert!(!r.meaning.is_empty() && !r.remedy.is_empty(), "{}", r.code);
        }
    }
}
