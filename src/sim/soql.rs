//! SOQL parsing and evaluation.
//!
//! PLACEHOLDER: this file only fixes the interface; the real implementation replaces it at merge. `parse`
//! refuses every query, so the query routes answer 400 `MALFORMED_QUERY` until then.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// How a field's values compare and are written in SOQL literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Number,
    Boolean,
    Date,
    DateTime,
    Blob,
}

/// What the parser needs to know about the org's schema.
pub trait SchemaLookup {
    /// Canonical object name for a case-insensitive name.
    fn object(&self, name: &str) -> Option<String>;
    /// Canonical field name and kind for a case-insensitive field of an object.
    fn field(&self, object: &str, name: &str) -> Option<(String, ValueKind)>;
}

/// A parsed query.
#[derive(Debug, Clone)]
pub struct Query {
    /// Canonical name of the queried object.
    pub object: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SoqlError {
    #[error("{0}")]
    Malformed(String),
    #[error("{message}")]
    InvalidField { message: String },
    #[error("{message}")]
    InvalidType { message: String },
}

impl SoqlError {
    pub fn error_code(&self) -> &'static str {
        match self {
            SoqlError::Malformed(_) => "MALFORMED_QUERY",
            SoqlError::InvalidField { .. } => "INVALID_FIELD",
            SoqlError::InvalidType { .. } => "INVALID_TYPE",
        }
    }
}

pub enum QueryResult {
    Count(usize),
    Rows(Vec<Map<String, Value>>),
}

pub fn parse(_soql: &str, _schema: &dyn SchemaLookup) -> Result<Query, SoqlError> {
    Err(SoqlError::Malformed("SOQL not available yet".into()))
}

/// `records` are every stored record of `query.object` (field values as stored: Salesforce datetime/date
/// strings, numbers, bools, null). Rows hold only the selected fields (canonical names), filtered, ordered,
/// LIMIT/OFFSET applied; no `attributes`.
pub fn execute(
    query: &Query,
    _records: &[Map<String, Value>],
    _now: DateTime<Utc>,
) -> Result<QueryResult, SoqlError> {
    Err(SoqlError::Malformed(format!(
        "cannot execute a query on {}",
        query.object
    )))
}
