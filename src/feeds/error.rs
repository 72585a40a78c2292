//! [`FeedError`]: what can go wrong in the feeds module outside a single row (rows get reason codes instead).

use crate::salesforce::SfError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("spool file: {0}")]
    Io(#[from] std::io::Error),
    #[error("encryption: {0}")]
    Crypto(&'static str),
    #[error("stored upload data unreadable: {0}")]
    Corrupt(String),
    /// Salesforce refused a whole call in a way retrying cannot fix (the upload fails with this reason).
    #[error("Salesforce refused the upload: {0}")]
    Salesforce(#[source] SfError),
    /// A row-independent mapping problem (e.g. no `credit_record` mapping for this bank).
    #[error("mapping: {0}")]
    Mapping(String),
}
