//! Read-only questions a scenario asks the daemon (admin API, `/metrics`), the simulator (`/__sim/stats`,
//! `/__sim/faults`) and the machine (load averages).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::procs::poll_until;

/// The daemon's queue counts (`counts` of `GET /admin/v1/outbox`).
pub async fn counts(http: &reqwest::Client, admin_url: &str, admin: &str) -> anyhow::Result<Value> {
    let body: Value = http
        .get(format!("{admin_url}/admin/v1/outbox?limit=1"))
        .bearer_auth(admin)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["counts"].clone())
}

/// Waits (bounded) until `delivered >= expected` (every message the scenario created).
///
/// Only `delivered` is trusted: the `pending` count can stay above zero after everything is delivered (the
/// outbox applies counter changes after its transaction commits, so a pusher transition applied before the
/// enqueue's own update is lost to a saturating subtraction; see BENCHMARKS.md).
pub async fn drained(
    http: &reqwest::Client,
    admin_url: &str,
    admin: &str,
    expected: u64,
    limit: Duration,
) -> anyhow::Result<Value> {
    poll_until(limit, "the outbox to drain", || async {
        // Twice a second: the admin API rate-limits its callers (a 20 ms poll gets 429s).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let c = counts(http, admin_url, admin).await.ok()?;
        (c["delivered"].as_u64()? >= expected).then_some(c)
    })
    .await
}

/// `completed_at - created_at` of every delivered message, in microseconds (pages of 1,000 by id).
pub async fn delivery_latencies_us(
    http: &reqwest::Client,
    admin_url: &str,
    admin: &str,
) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10_000 {
        let mut url = format!("{admin_url}/admin/v1/outbox?state=delivered&limit=1000");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let body: Value = http
            .get(url)
            .bearer_auth(admin)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let messages = body["messages"].as_array().context("messages")?;
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let created: DateTime<Utc> = m["created_at"].as_str().context("created_at")?.parse()?;
            let done: DateTime<Utc> = m["completed_at"]
                .as_str()
                .context("completed_at")?
                .parse()?;
            out.push((done - created).num_microseconds().unwrap_or(0).max(0) as u64);
        }
        after = messages
            .last()
            .and_then(|m| m["id"].as_str())
            .map(str::to_owned);
    }
    Ok(out)
}

/// `api_calls_total` of the simulator.
pub async fn api_calls(http: &reqwest::Client, sim: &str) -> anyhow::Result<u64> {
    let body: Value = http
        .get(format!("{sim}/__sim/stats"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["api_calls_total"].as_u64().context("api_calls_total")
}

/// The simulator's per-route call counts (for the notes).
pub async fn api_calls_by_route(http: &reqwest::Client, sim: &str) -> anyhow::Result<Value> {
    let body: Value = http
        .get(format!("{sim}/__sim/stats"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["by_route"].clone())
}

/// Switches the simulated org's outage on or off.
pub async fn set_outage(http: &reqwest::Client, sim: &str, on: bool) -> anyhow::Result<()> {
    if on {
        http.put(format!("{sim}/__sim/faults"))
            .json(&json!({"outage": true}))
            .send()
            .await?
            .error_for_status()?;
    } else {
        http.delete(format!("{sim}/__sim/faults"))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}

/// The 1/5/15-minute load averages, as `uptime` shows them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
