//! The inbound module's one error type, classified so the mirror worker knows whether to retry a hint.

use crate::mapping::FieldProblem;
use crate::outbox::OutboxError;
use crate::salesforce::{ErrorClass, SfError};
use crate::store::StoreError;
use crate::vault::VaultError;

/// Everything that can go wrong turning a Salesforce change into bank events.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("Salesforce: {0}")]
    Salesforce(#[from] SfError),
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
    /// The record does not map to a bank event (a picklist value the mapping does not know, a missing field).
    #[error("the record does not map to a status event: {}", describe(.0))]
    Mapping(Vec<FieldProblem>),
    /// `Bank__c` names an account that is not a configured bank.
    #[error("record belongs to account {0}, which is not a configured bank")]
    UnknownBank(String),
    /// The request is Completed but no file is linked to it yet (the bureau sets the status and attaches the
    /// PDF in two steps); worth retrying.
    #[error("request is Completed but no report file is attached yet")]
    ReportMissing,
    /// The report's `ContentSize` is over the vault's limit: it is not downloaded at all.
    #[error("the report is {size} bytes, over the {limit}-byte limit")]
    ReportTooLarge { size: u64, limit: u64 },
    /// The mappings do not say which Salesforce object or fields hold report requests.
    #[error("the mappings do not name the request fields: {0}")]
    Names(String),
    /// A record field has a shape Salesforce would not send.
    #[error("unexpected record shape: {0}")]
    Shape(String),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(String),
}

impl InboundError {
    /// Whether processing the same hint later may succeed. Permanent errors drop the hint (after an error log
    /// and a metric); the next change of the record brings it back through push or poll.
    pub fn is_retryable(&self) -> bool {
        match self {
            InboundError::Store(e) => e.is_retryable(),
            InboundError::Outbox(e) => e.is_retryable(),
            InboundError::Salesforce(e) => e.class() != ErrorClass::Permanent,
            InboundError::Vault(e) => e.is_retryable(),
            InboundError::ReportMissing | InboundError::Join(_) => true,
            InboundError::Mapping(_)
            | InboundError::UnknownBank(_)
            | InboundError::Shape(_)
            | InboundError::ReportTooLarge { .. } => false,
            // A mapping reload can fix it; the hint waits for it instead of being lost.
            InboundError::Names(_) => true,
        }
    }

    /// A short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            InboundError::Store(_) => "store",
            InboundError::Outbox(_) => "outbox",
            InboundError::Salesforce(_) => "salesforce",
            InboundError::Vault(_) => "vault",
            InboundError::Mapping(_) => "mapping",
            InboundError::UnknownBank(_) => "unknown_bank",
            InboundError::ReportMissing => "report_missing",
            InboundError::Shape(_) => "shape",
            InboundError::ReportTooLarge { .. } => "report_too_large",
            InboundError::Names(_) => "names",
            InboundError::Join(_) => "join",
        }
    }
}

fn describe(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{} ({}): {}", p.field, p.code, p.detail))
        .collect::<Vec<_>>()
        .join("; ")
}
