//! `[uploads]`: credit data feeds (`POST /api/v1/uploads`).

use std::time::Duration;

use super::reader::{self, SECOND, Section};

/// `[uploads]`.
#[derive(Debug, Clone)]
pub struct UploadsConfig {
    /// Largest accepted upload body in bytes (default 200 MB).
    pub max_bytes: u64,
    /// How long transient Salesforce errors are retried before an upload is `failed`.
    pub retry_for: Duration,
}

pub(crate) fn read_uploads(s: &mut Section<'_>) -> UploadsConfig {
    UploadsConfig {
        max_bytes: s.or(
            "max_bytes",
            200 * 1024 * 1024,
            reader::integer(1024, 16 * 1024 * 1024 * 1024),
        ),
        retry_for: s.or(
            "retry_for_seconds",
            3600 * SECOND,
            reader::duration(SECOND, 1, 7 * 86_400),
        ),
    }
}
