//! The process-wide Prometheus recorder and the names of every metric creditlink emits.
//!
//! Metric names live here, in one place, so dashboards and alerts have one list to read. The recorder is
//! installed once per process (tests start several daemons in one process and share it).

use std::sync::OnceLock;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const OUTBOX_MESSAGES: &str = "creditlink_outbox_messages";
pub const OUTBOX_OLDEST_PENDING_AGE: &str = "creditlink_outbox_oldest_pending_age_seconds";
pub const ATTEMPTS_TOTAL: &str = "creditlink_delivery_attempts_total";
pub const INTAKE_REQUESTS_TOTAL: &str = "creditlink_intake_requests_total";
pub const INTAKE_DURATION: &str = "creditlink_intake_duration_seconds";
pub const INTAKE_TO_SALESFORCE: &str = "creditlink_intake_to_salesforce_seconds";
pub const SF_API_USAGE: &str = "creditlink_salesforce_api_usage";
pub const SF_API_LIMIT: &str = "creditlink_salesforce_api_limit";
pub const SF_BATCH_SIZE: &str = "creditlink_salesforce_batch_records";
pub const MAPPING_RELOADS_TOTAL: &str = "creditlink_mapping_reloads_total";
/// Retention's work: `kind` = `payload` (a terminal message's payload erased) or `history` (a message
/// and its attempts deleted).
pub const RETENTION_PURGED_TOTAL: &str = "creditlink_retention_purged_total";
pub const STORE_FLUSHES_TOTAL: &str = "creditlink_store_flushes_total";
pub const BUILD_INFO: &str = "creditlink_build_info";
/// Data-feed rows by final `outcome` (accepted, updated, unchanged, duplicate, rejected, reinstated).
pub const UPLOAD_ROWS_TOTAL: &str = "creditlink_upload_rows_total";
/// Data-feed uploads by `status` reached (received, completed, failed).
pub const UPLOADS_TOTAL: &str = "creditlink_uploads_total";
/// Accept errors that were not about one connection (descriptors or memory exhausted).
pub const HTTP_ACCEPT_ERRORS_TOTAL: &str = "creditlink_http_accept_errors_total";
/// Connections past `[server] max_connections`: `how` = `overflow` (answered 503, `/livez` 200) or `closed`.
pub const HTTP_CONNECTIONS_REFUSED_TOTAL: &str = "creditlink_http_connections_refused_total";
/// Admin API requests refused by its rate limit.
pub const ADMIN_RATE_LIMITED_TOTAL: &str = "creditlink_admin_rate_limited_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (first call) and returns the handle that renders `/metrics`.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0,
                ])
                .expect("static bucket list is non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another library may have installed a recorder first (only possible in tests); then our
            // handle renders nothing, which the metrics test would catch.
            let _ = metrics::set_global_recorder(recorder);
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The `/metrics` route.
pub fn router() -> Router {
    let handle = install();
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                handle.run_upkeep();
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}
