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
    /// The message is no longer InFlight under the caller's lease: the lease ran out and the message
    /// was released or claimed again, so this worker's outcome must not be recorded.
    #[error("message {0}: the lease was lost")]
    LeaseLost(MessageId),
    /// The lease is not longer than the worker's longest attempt, so a slow attempt could be claimed
    /// and sent a second time while it is still running.
    #[error(
        "outbox lease ({lease:?}) must be longer than the attempt timeout ({attempt_timeout:?})"
    )]
    LeaseTooShort {
        lease: std::time::Duration,
        attempt_timeout: std::time::Duration,
    },
    /// A message could not be encoded for storage (a payload serde_json cannot write).
    #[error("message could not be encoded")]
    Encode(#[source] serde_json::Error),
    /// Retention erased the message's payload: it is history only and cannot be sent again.
    #[error("message {0}: its payload was erased by retention; it cannot be sent again")]
    PayloadErased(MessageId),
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
