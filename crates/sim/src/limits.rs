//! API call accounting: what `Sforce-Limit-Info`, `GET /limits` and `GET /__sim/stats` report.
//!
//! Counted: every authenticated call under `/services/data/vXX.X/` that passed the daily-limit check (faulted
//! calls included, since the org did receive them). Not counted: `GET /services/data/` (free in Salesforce),
//! OAuth endpoints (whether Salesforce counts them is unconfirmed, reference §6), `/__sim/`, and calls refused
//! for auth or for exceeding the daily limit.

use std::collections::BTreeMap;

use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct Stats {
    pub api_calls_total: u64,
    pub by_route: BTreeMap<String, u64>,
}

impl Stats {
    /// Count one call of `"<METHOD> <route pattern>"`; returns the new total.
    pub fn count(&mut self, route: String) -> u64 {
        self.api_calls_total += 1;
        *self.by_route.entry(route).or_insert(0) += 1;
        self.api_calls_total
    }

    pub fn json(&self) -> Value {
        json!({"api_calls_total": self.api_calls_total, "by_route": self.by_route})
    }
}

/// The `Sforce-Limit-Info` value.
pub fn header_value(used: u64, max: u64) -> String {
    format!("api-usage={used}/{max}")
}

/// The `GET /limits` body (a representative subset of a Developer Edition org).
pub fn limits_json(used: u64, max: u64) -> Value {
    let pair = |max: u64, remaining: u64| json!({"Max": max, "Remaining": remaining});
    json!({
        "ConcurrentAsyncGetReportInstances": pair(200, 200),
        "ConcurrentSyncReportRuns": pair(20, 20),
        "DailyApiRequests": pair(max, max.saturating_sub(used)),
        "DailyAsyncApexExecutions": pair(250_000, 250_000),
        "DailyBulkApiBatches": pair(15_000, 15_000),
        "DailyBulkV2QueryJobs": pair(10_000, 10_000),
        "DataStorageMB": pair(5, 5),
        "FileStorageMB": pair(20, 20),
        "HourlyODataCallout": pair(20_000, 20_000),
        "SingleEmail": pair(15, 15),
    })
}
