//! Injected faults, set with `PUT /__sim/faults` and cleared with `DELETE /__sim/faults`.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, RecordError};

/// The error kinds a test can ask for, each answered with Salesforce's real status and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FaultKind {
    #[serde(rename = "SERVER_UNAVAILABLE")]
    ServerUnavailable,
    #[serde(rename = "UNABLE_TO_LOCK_ROW")]
    UnableToLockRow,
    #[serde(rename = "REQUEST_LIMIT_EXCEEDED")]
    RequestLimitExceeded,
    #[serde(rename = "INTERNAL_SERVER_ERROR")]
    InternalServerError,
}

impl FaultKind {
    /// The record-level error (collections report UNABLE_TO_LOCK_ROW per record with it).
    pub fn record_error(self) -> RecordError {
        match self {
            FaultKind::ServerUnavailable => {
                RecordError::new("SERVER_UNAVAILABLE", "Server Unavailable", vec![])
            }
            FaultKind::UnableToLockRow => RecordError::new(
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record or 1 records: 0015Y00000BANKAQA5",
                vec![],
            ),
            FaultKind::RequestLimitExceeded => RecordError::new(
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentPerOrgLongTxn Limit exceeded.",
                vec![],
            ),
            FaultKind::InternalServerError => RecordError::new(
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support: \
                 1234567890-12345 (-1234567890)",
                vec![],
            ),
        }
    }

    pub fn api_error(self) -> ApiError {
        let status = match self {
            FaultKind::ServerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            FaultKind::UnableToLockRow => StatusCode::BAD_REQUEST,
            FaultKind::RequestLimitExceeded => StatusCode::FORBIDDEN,
            FaultKind::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            error: self.record_error(),
        }
    }
}

/// The body of `PUT /__sim/faults`; every key optional, absent keys leave the current setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsUpdate {
    pub error_rate: Option<f64>,
    pub errors: Option<Vec<FaultKind>>,
    pub latency_ms: Option<[u64; 2]>,
    pub outage: Option<bool>,
    /// One-shot: invalidate every issued token now. Not stored.
    pub expire_tokens: Option<bool>,
    /// `null` removes the limit override.
    #[serde(default, deserialize_with = "double_option")]
    pub daily_api_limit: Option<Option<u64>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// Current fault settings.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub error_rate: f64,
    pub errors: Vec<FaultKind>,
    pub latency_ms: Option<(u64, u64)>,
    pub outage: bool,
    pub daily_api_limit: Option<u64>,
}

impl Faults {
    pub fn apply(&mut self, update: &FaultsUpdate) {
        if let Some(rate) = update.error_rate {
            self.error_rate = rate.clamp(0.0, 1.0);
        }
        if let Some(errors) = &update.errors {
            self.errors = errors.clone();
        }
        if let Some([a, b]) = update.latency_ms {
            self.latency_ms = Some((a.min(b), a.max(b)));
        }
        if let Some(outage) = update.outage {
            self.outage = outage;
        }
        if let Some(limit) = update.daily_api_limit {
            self.daily_api_limit = limit;
        }
    }

    /// Draw whether this call fails, and how. Without configured kinds the default is SERVER_UNAVAILABLE.
    pub fn draw_error(&self) -> Option<FaultKind> {
        if self.error_rate <= 0.0 || rand::random::<f64>() >= self.error_rate {
            return None;
        }
        if self.errors.is_empty() {
            return Some(FaultKind::ServerUnavailable);
        }
        let i = rand::random_range(0..self.errors.len());
        self.errors.get(i).copied()
    }

    pub fn draw_latency(&self) -> Option<Duration> {
        let (lo, hi) = self.latency_ms?;
        let ms = if hi > lo {
            rand::random_range(lo..=hi)
        } else {
            lo
        };
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_parses_design_example() {
        let u: FaultsUpdate = serde_json::from_str(
            r#"{"error_rate": 0.3, "errors": ["SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED"],
                "latency_ms": [0, 200], "outage": false, "expire_tokens": false, "daily_api_limit": null}"#,
        )
        .unwrap();
        let mut f = Faults {
            daily_api_limit: Some(5),
            ..Faults::default()
        };
        f.apply(&u);
        assert_eq!(f.errors.len(), 3);
        assert_eq!(f.daily_api_limit, None);
        assert_eq!(f.latency_ms, Some((0, 200)));
    }
}
