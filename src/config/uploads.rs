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
    /// Uploads with at least this many rows go to Salesforce through Bulk API 2.0 ingest jobs instead of
    /// sObject Collections (0: never).
    pub bulk_threshold_rows: u64,
    /// Rows per Bulk API 2.0 job (rounded up to whole 200-row batches).
    pub bulk_job_rows: u64,
    /// Uploads each bank may post per hour (a token bucket of that size); 0 = no quota.
    pub quota_per_hour: u32,
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
        bulk_threshold_rows: s.or(
            "bulk_threshold_rows",
            20_000,
            reader::integer(0, 1_000_000_000),
        ),
        bulk_job_rows: s.or("bulk_job_rows", 100_000, reader::integer(200, 150_000_000)),
        quota_per_hour: s.or("quota_per_hour", 0, reader::integer(0, 1_000_000)) as u32,
    }
}
