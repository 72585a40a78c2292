//! The one error type of `records/`.

use crate::outbox::OutboxError;
use crate::salesforce::SfError;
use crate::store::StoreError;

/// Why a gatekeeper run, a reinstatement or a dedupe scan failed as a whole (one record Salesforce refuses is
/// not an error: it is reported on that record).
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("Salesforce: {0}")]
    Salesforce(#[from] SfError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("a record without {0} in the query answer")]
    Malformed(&'static str),
}

impl RecordsError {
    /// Whether running again later may succeed (Salesforce unavailable, store busy) rather than needing a fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            RecordsError::Salesforce(e) => {
                !matches!(e.class(), crate::salesforce::ErrorClass::Permanent)
            }
            RecordsError::Store(_) | RecordsError::Outbox(_) => true,
            RecordsError::Malformed(_) => false,
        }
    }
}
