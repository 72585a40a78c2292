//! Errors of the store: the one place sled's errors are translated.

/// Everything that can go wrong in the store, classified so callers can decide whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error from the disk (full disk, transient EIO). Retrying later may succeed.
    #[error("store I/O error")]
    Io(#[source] std::io::Error),
    /// The on-disk data is corrupt or sled hit an internal bug; the process should stop and an operator look.
    #[error("store is corrupt or hit an internal bug: {0}")]
    Fatal(String),
    /// A stored value could not be decoded: written by an incompatible version or damaged.
    #[error("stored value under {what} could not be decoded")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The database (PostgreSQL) failed or is unreachable. Retrying later may succeed.
    #[error("database error: {0}")]
    Database(String),
    /// The store's files are damaged (truncated, emptied, corrupt pages). Starting anyway would lose or
    /// invent data, so the daemon refuses to start.
    #[error(
        "the store file {} is damaged ({reason}); restore the data directory from a backup, or move the \
         store directory aside to start empty (every queued message and idempotency key in it is then lost)",
        path.display()
    )]
    Damaged {
        path: std::path::PathBuf,
        reason: String,
    },
    /// The background flusher is gone (the store is shutting down), so durability cannot be promised.
    #[error("store is closed: the flusher has stopped")]
    Closed,
}

impl StoreError {
    /// True when the same operation may succeed if tried again later (transient disk trouble).
    /// Everything else is fatal for the process: the data directory needs attention.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Io(_) | StoreError::Database(_))
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => StoreError::Io(io),
            other => StoreError::Fatal(other.to_string()),
        }
    }
}
