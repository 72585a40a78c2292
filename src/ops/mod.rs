//! Operations surface: health probes, Prometheus metrics, systemd notification and the shutdown signal.
//!
//! - `/livez` answers 200 while the process can serve HTTP at all: it checks no dependency, so a Salesforce
//!   outage never makes an orchestrator restart a healthy daemon.
//! - `/readyz` answers 200 only when every registered [`health::Check`] passes (store writable, Salesforce
//!   token valid, workers alive) and the daemon is not shutting down; `?verbose` lists each check.
//! - `/metrics` renders the process-wide Prometheus recorder (`creditlink_` prefix).

pub mod admin;
pub mod health;
pub mod metrics;
pub mod shutdown;

pub use health::{Check, CheckResult, Health, Heartbeat};
pub use shutdown::{notify_ready, notify_status, notify_stopping, shutdown_signal};
