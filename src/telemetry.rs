//! Logging setup and the helpers that keep secrets and personal data out of logs.
//!
//! Logs are structured `tracing` events written to stdout (journald and container runtimes collect stdout),
//! human-readable (`pretty`) or one JSON object per line (`json`). The filter comes from the config's
//! `[telemetry] level`, but `RUST_LOG` wins when set: an operator debugging a live system should not have to
//! edit the config file.
//!
//! Values that must never be logged are wrapped where they are logged ([`Redacted`]) or, better, held in types
//! whose `Debug` masks (`secrecy::SecretString`). National ids are personal data: when a log line must refer to
//! one, it uses [`mask_national_id`].

use std::fmt;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Errors setting up telemetry: only a filter that does not parse (the config check catches that earlier).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {directive:?}: {source}")]
    Filter {
        directive: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Installs the global subscriber. Calling it again (tests, a second command in one process) is harmless: the
/// first subscriber stays.
pub fn init(format: LogFormat, level: &str) -> Result<(), TelemetryError> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: under systemd, Docker or a redirect the escape codes are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stdout);
    // `try_init` fails only when a subscriber is already installed, which is exactly the case to tolerate.
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}

/// For tests: logs through the test harness's capture, only when `TEST_LOG` is set, so runs stay silent.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = filter("debug").unwrap_or_else(|_| EnvFilter::new("debug"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// `RUST_LOG` when set and non-empty, else the configured directive.
fn filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    let directive = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| level.to_string());
    EnvFilter::try_new(&directive).map_err(|source| TelemetryError::Filter { directive, source })
}

/// Wraps a value that must never reach a log line: `Debug` and `Display` print `[redacted]`.
///
/// Use it for fields whose *presence* is worth logging but whose value is not:
/// `tracing::info!(token = %Redacted(&token), "...")`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Redacted<T>(pub T);

impl<T> Redacted<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Path prefixes whose next segment is a secret: the Outbound Message listener's path *is* its credential
/// (Salesforce cannot sign messages), so it must never reach a log line or a span.
const SECRET_PATH_PREFIXES: &[&str] = &["/salesforce/outbound-messages/"];

/// A request path safe to log: the secret segment of a [`SECRET_PATH_PREFIXES`] path (and anything after it)
/// becomes `[redacted]`. Used for the request span's `path` field, which every log line of a request carries.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in SECRET_PATH_PREFIXES {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            return std::borrow::Cow::Owned(format!("{prefix}[redacted]"));
        }
    }
    std::borrow::Cow::Borrowed(path)
}

/// A national id reduced to its last two characters (`"CW-1980013101"` → `"****01"`), for the rare log line or
/// message that must tell two subjects apart. The mask has a fixed width so it does not leak the id's length;
/// ids of two characters or fewer are masked entirely.
pub fn mask_national_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 2 {
        return "****".to_string();
    }
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_path_segments_are_redacted() {
        assert_eq!(
            loggable_path("/salesforce/outbound-messages/s3cr3t"),
            "/salesforce/outbound-messages/[redacted]"
        );
        assert_eq!(
            loggable_path("/salesforce/outbound-messages/s3cr3t/x"),
            "/salesforce/outbound-messages/[redacted]"
        );
        assert_eq!(
            loggable_path("/salesforce/outbound-messages"),
            "/salesforce/outbound-messages"
        );
        assert_eq!(
            loggable_path("/api/v1/report-requests"),
            "/api/v1/report-requests"
        );
    }

    #[test]
    fn masks_keep_only_the_last_two_characters() {
        assert_eq!(mask_national_id("CW-1980013101"), "****01");
        assert_eq!(mask_national_id("SR-1"), "****-1");
        assert_eq!(mask_national_id("12"), "****");
        assert_eq!(mask_national_id(""), "****");
        assert_eq!(mask_national_id("ÅÄÖ"), "****ÄÖ");
    }

    #[test]
    fn redacted_hides_the_value_in_debug_and_display() {
        let r = Redacted("hunter2");
        assert_eq!(format!("{r:?} {r}"), "[redacted] [redacted]");
    }

    #[test]
    fn bad_filters_are_errors() {
        // Not `init`: installing a global subscriber here would print other modules' test logs.
        if std::env::var_os("RUST_LOG").is_none() {
            assert!(matches!(
                filter("info,[=bad"),
                Err(TelemetryError::Filter { .. })
            ));
            assert!(filter("info,creditlink=debug").is_ok());
        }
    }
}
