//! The vault's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong storing, reading or rotating a report.
///
/// The variants are what a caller branches on: `NotPdf`/`TooLarge` are the uploader's fault (nothing was
/// written), `NotFound` is a 404, `Tampered` and `UnknownKey` are alarms for the bureau (the bytes on disk are
/// not what the vault wrote, or the key that wrote them is gone), `Io` is the only retryable one.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The bytes are not a PDF (no `%PDF-` header or no `%%EOF` trailer).
    #[error("not a PDF: {0}")]
    NotPdf(&'static str),
    /// The PDF is over the configured size limit.
    #[error("report is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// A report id that cannot be used as a file name (empty, too long, or characters outside `[A-Za-z0-9_-]`).
    #[error("invalid report id (expected 1-128 characters of [A-Za-z0-9_-])")]
    InvalidReportId,
    /// No report is stored under this id.
    #[error("no report stored for id {0}")]
    NotFound(String),
    /// The stored file failed authentication or its recorded SHA-256: it was modified, truncated or moved
    /// from another report id. Never served.
    #[error("stored report {report_id} failed its integrity check: {reason}")]
    Tampered {
        report_id: String,
        reason: &'static str,
    },
    /// The file was written under a key id that is not in the keyring.
    #[error(
        "stored report {report_id} is encrypted under key {key_id}, which is not in the keyring"
    )]
    UnknownKey { report_id: String, key_id: String },
    /// A key file or key id is unusable.
    #[error("key {}: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    /// The keyring has no key, or the requested active key is not in it.
    #[error("keyring: {0}")]
    Keyring(String),
    /// Reading or writing the vault directory or its audit log failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl VaultError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        VaultError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether trying the same operation again later can succeed (only disk trouble can go away by itself).
    pub fn is_retryable(&self) -> bool {
        matches!(self, VaultError::Io { .. })
    }

    /// The short outcome word written to the audit log for a failed access.
    pub(crate) fn audit_outcome(&self) -> &'static str {
        match self {
            VaultError::NotPdf(_) => "rejected_not_pdf",
            VaultError::TooLarge { .. } => "rejected_too_large",
            VaultError::InvalidReportId => "rejected_invalid_id",
            VaultError::NotFound(_) => "not_found",
            VaultError::Tampered { .. } => "tampered",
            VaultError::UnknownKey { .. } => "unknown_key",
            VaultError::BadKey { .. } | VaultError::Keyring(_) => "key_error",
            VaultError::Io { .. } => "io_error",
        }
    }
}
