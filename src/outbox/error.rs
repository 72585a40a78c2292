//! Errors of the outbox.

use crate::store::StoreError;

use super::types::{MessageId, State};

/// What can go wrong in an outbox operation.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The store failed; see [`StoreError::is_retryable`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No message has this id.
    #[error("message {0} not found")]
    NotFound(MessageId),
    /// The operation does not apply to a message in this state (e.g. `retry` of a Delivered one,
    /// or recording an attempt for a message whose lease was lost).
    #[error("message {id} is {actual:?}; {operation} needs {expected}")]
    WrongState {
        id: MessageId,
        operation: &'static str,
        expected: &'static str,
        actual: State,
    },
    /// A message could not be encoded for storage (a payload serde_json cannot write).
    #[error("message could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// A stored record has the wrong shape (damaged on disk or written by another version).
    #[error("stored {0} is damaged")]
    Corrupt(&'static str),
    /// An outbox setting is invalid.
    #[error("invalid outbox option: {0}")]
    Config(&'static str),
}

impl OutboxError {
    /// True when trying the same call again later may succeed. State errors are final: the caller
    /// raced another worker or an admin, and retrying will not change that.
    pub fn is_retryable(&self) -> bool {
        match self {
            OutboxError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}
