//! Liveness and readiness probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

/// The outcome of one readiness check: `Err` carries a short reason for humans (`/readyz?verbose`).
pub type CheckResult = Result<(), String>;

/// A named readiness check. Checks must be cheap and must not block: they read state that the workers keep
/// up to date (a heartbeat, a cached token flag), they do not call Salesforce.
pub type Check = Arc<dyn Fn() -> CheckResult + Send + Sync>;

/// Shared health state of one daemon instance.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    checks: parking_lot::RwLock<Vec<(String, Check)>>,
    /// Conditions an operator should see (`/readyz?verbose`, `[!]` lines) that do not make the daemon unready:
    /// it still accepts and durably queues work, e.g. while sending to Salesforce is paused.
    warnings: parking_lot::RwLock<Vec<(String, Check)>>,
    /// Set when shutdown begins, so load balancers stop sending new work before the listener closes.
    shutting_down: AtomicBool,
}

impl Health {
    /// Registers a readiness check under a stable name (shown by `/readyz?verbose`).
    pub fn add_check(&self, name: impl Into<String>, check: Check) {
        self.inner.checks.write().push((name.into(), check));
    }

    /// Registers a warning: shown by `/readyz?verbose` when it fails, without making the daemon unready.
    pub fn add_warning(&self, name: impl Into<String>, check: Check) {
        self.inner.warnings.write().push((name.into(), check));
    }

    /// Marks the daemon as shutting down: `/readyz` answers 503 from now on.
    pub fn set_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Runs every check; returns whether all passed and one line per check.
    pub fn evaluate(&self) -> (bool, Vec<String>) {
        let mut ok = !self.inner.shutting_down.load(Ordering::SeqCst);
        let mut lines = Vec::new();
        if !ok {
            lines.push("[-]shutdown failed: shutting down".to_string());
        }
        for (name, check) in self.inner.checks.read().iter() {
            match check() {
                Ok(()) => lines.push(format!("[+]{name} ok")),
                Err(reason) => {
                    ok = false;
                    lines.push(format!("[-]{name} failed: {reason}"));
                }
            }
        }
        for (name, check) in self.inner.warnings.read().iter() {
            if let Err(reason) = check() {
                lines.push(format!("[!]{name} warning: {reason}"));
            }
        }
        (ok, lines)
    }

    /// The `/livez`, `/readyz` (and `/healthz` alias of `/livez`) routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/livez", get(livez))
            .route("/healthz", get(livez))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }
}

async fn livez() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// `?verbose` (any value, or none) lists every check; nothing else in the query string matters, so a probe
/// with extra or repeated parameters still gets its answer.
async fn readyz(State(health): State<Health>, RawQuery(query): RawQuery) -> impl IntoResponse {
    let verbose = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("verbose"))
    });
    let (ok, lines) = health.evaluate();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = if verbose || !ok {
        lines.join("\n") + "\n"
    } else {
        String::new()
    };
    body.push_str(if ok { "ok\n" } else { "not ready\n" });
    (status, body)
}

/// A worker's proof of life: the worker beats once per loop iteration (also when idle), and the readiness
/// check fails when the last beat is older than `max_silence`.
#[derive(Clone)]
pub struct Heartbeat {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    pub fn new() -> Self {
        let hb = Heartbeat {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        };
        hb.beat();
        hb
    }

    pub fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn silence(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// A readiness check that fails when the worker has been silent for longer than `max_silence`.
    pub fn check(&self, max_silence: Duration) -> Check {
        let hb = self.clone();
        Arc::new(move || {
            let silence = hb.silence();
            if silence <= max_silence {
                Ok(())
            } else {
                Err(format!("no heartbeat for {} ms", silence.as_millis()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_check_and_shutdown_make_it_unready() {
        let health = Health::default();
        health.add_check("store", Arc::new(|| Ok(())));
        assert!(health.evaluate().0);
        health.add_check("salesforce", Arc::new(|| Err("no token".into())));
        let (ok, lines) = health.evaluate();
        assert!(!ok);
        assert!(lines.iter().any(|l| l == "[-]salesforce failed: no token"));
        let health = Health::default();
        health.set_shutting_down();
        assert!(!health.evaluate().0);
    }

    #[test]
    fn warnings_show_without_making_it_unready() {
        let health = Health::default();
        health.add_warning(
            "salesforce_api_budget",
            Arc::new(|| Err("paused at 96 % of the daily limit".into())),
        );
        let (ok, lines) = health.evaluate();
        assert!(ok);
        assert_eq!(
            lines,
            vec!["[!]salesforce_api_budget warning: paused at 96 % of the daily limit"]
        );
    }

    #[test]
    fn heartbeat_silence_fails_check() {
        let hb = Heartbeat::new();
        assert!(hb.check(Duration::from_secs(60))().is_ok());
        let stale = Heartbeat {
            origin: Instant::now() - Duration::from_secs(5),
            last_ms: Arc::new(AtomicU64::new(0)),
        };
        assert!(stale.check(Duration::from_secs(1))().is_err());
    }
}
