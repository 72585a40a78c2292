//! What an upload is, as stored and as banks see it: the upload record, row verdicts, counts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::reasons::RowProblem;

/// Rows per batch: one sObject Collections call, one durable checkpoint, one stored batch of verdicts.
pub const BATCH_ROWS: u64 = 200;

/// The body format of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Ndjson,
    /// XML under the root element the bank's mapping names (`xml_root`); layout in `xml.rs`.
    Xml,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Ndjson => "application/x-ndjson",
            Format::Xml => "application/xml",
        }
    }
}

/// An upload's lifecycle as banks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Received,
    Processing,
    Completed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

/// How one row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new record was created.
    Accepted,
    Updated,
    Unchanged,
    /// Another row of the upload is the same tradeline with a later (or equal, later in the file) as-of date.
    Duplicate,
    /// Kicked out: not in Salesforce; in `errors.csv`.
    Rejected,
    /// A stale-terminated record revived by fresh data.
    Reinstated,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Accepted,
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Duplicate,
        Outcome::Rejected,
        Outcome::Reinstated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
            Outcome::Reinstated => "reinstated",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Row counts of an upload (`counts` of the status document).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows: u64,
    pub accepted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Rows that were not rejected but carry at least one warning.
    pub warnings: u64,
    pub reinstated: u64,
}

impl Counts {
    pub fn add(&mut self, row: &RowResult) {
        self.rows += 1;
        match row.outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Duplicate => self.duplicate += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Reinstated => self.reinstated += 1,
        }
        if row.outcome != Outcome::Rejected && row.problems.iter().any(|p| !p.is_error()) {
            self.warnings += 1;
        }
    }
}

/// The stored upload record (the history entry; kept when the spool is gone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub id: String,
    /// The bank's Salesforce Account id: tenancy is enforced on it.
    pub tenant: String,
    pub bank_code: String,
    pub name: String,
    pub format: Format,
    pub status: Status,
    pub received_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    /// Body size in bytes and its SHA-256 (hex), for idempotency and support.
    pub bytes: u64,
    pub sha256: String,
    /// Why a failed upload failed (never personal data).
    pub failure: Option<String>,
    /// The columns rows are aligned to (the CSV header as uploaded, lower-cased; for NDJSON the mapping's
    /// columns): the header of `errors.csv`.
    pub columns: Vec<String>,
    /// Batches fully recorded (the processing checkpoint).
    #[serde(default)]
    pub batches_done: u64,
    /// Set when the upload goes to Salesforce through Bulk API 2.0: the batches per job (decided once, after
    /// the first pass counted the rows, so a restart cuts the same jobs).
    #[serde(default)]
    pub bulk_batches: Option<u64>,
}

/// The verdict of one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowResult {
    /// 1-based data row number (the header is not counted).
    pub row: u64,
    pub outcome: Outcome,
    pub record_key: Option<String>,
    pub salesforce_id: Option<String>,
    pub problems: Vec<RowProblem>,
    pub duplicate_of: Option<u64>,
}

/// One stored batch of verdicts, with the rejected rows' original values sealed (they hold personal data):
/// what `errors.csv` is made from after the spool is deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub rows: Vec<RowResult>,
    /// Sealed JSON `[[row, [values...]], ...]` of the rejected rows (see `SpoolKey::seal`).
    #[serde(default)]
    pub rejected: Option<String>,
}
