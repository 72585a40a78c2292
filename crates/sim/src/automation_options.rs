//! Settings of the bureau automation and of Outbound Messaging, as `SimOptions.automation` in process and as
//! `GET`/`PUT /__sim/automation` JSON (the same shape, durations in milliseconds):
//!
//! ```text
//! { "enabled": true, "complete_after": 3000, "reject_every": 5, "action_required_every": 0,
//!   "outbound": { "url": "http://127.0.0.1:8080/salesforce/outbound-messages", "duplicate_rate": 0.0,
//!                 "reorder": false, "retry_schedule": [1000, 2000, 4000], "max_age": 86400000 } }
//! ```
//!
//! A `PUT` changes only the keys it names; `"outbound": null` stops Outbound Messaging, and an `outbound` object
//! replaces the whole outbound setting (its missing keys take their defaults, `url` is required).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// How the simulated bureau behaves. `enabled` is the master switch: off, nothing is worked and nothing sent.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomationOptions {
    pub enabled: bool,
    /// From a request's creation to the analyst starting on it; finishing takes half as long again.
    pub complete_after: Duration,
    /// Every Nth new request is rejected with a reason; 0 = never.
    pub reject_every: u32,
    /// Every Nth new request is sent back as `Action Required` with a reason; 0 = never. Rejection wins a tie.
    pub action_required_every: u32,
    /// Where and how Outbound Messages go; `None` sends none.
    pub outbound: Option<OutboundOptions>,
}

impl Default for AutomationOptions {
    fn default() -> Self {
        AutomationOptions {
            enabled: false,
            complete_after: Duration::from_secs(3),
            reject_every: 5,
            action_required_every: 0,
            outbound: None,
        }
    }
}

/// Outbound Messaging with Salesforce's delivery behaviour (reference §3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundOptions {
    /// The listener (creditlink's `POST /salesforce/outbound-messages`).
    pub url: String,
    /// Chance that a delivered notification is delivered once more, with the same notification id.
    pub duplicate_rate: f64,
    /// Shuffle the send order and split due notifications into random batches.
    pub reorder: bool,
    /// Wait after the 1st, 2nd, … failed attempt; the last entry repeats. Never empty.
    pub retry_schedule: Vec<Duration>,
    /// A notification still undelivered this long after it was queued is dropped (Salesforce: 24 h).
    pub max_age: Duration,
}

impl OutboundOptions {
    /// Salesforce's defaults for a listener at `url`: no injected duplicates or reordering, retries growing
    /// exponentially from 1 s and capped at 2 h, dropped after 24 h.
    pub fn new(url: impl Into<String>) -> Self {
        OutboundOptions {
            url: url.into(),
            duplicate_rate: 0.0,
            reorder: false,
            retry_schedule: default_schedule(),
            max_age: Duration::from_secs(24 * 3600),
        }
    }

    /// The wait after the `failures`-th failed attempt (1-based).
    pub fn retry_after(&self, failures: u32) -> Duration {
        let i = (failures.max(1) - 1) as usize;
        self.retry_schedule
            .get(i)
            .or(self.retry_schedule.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }

    fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("outbound.url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("outbound.url: must be an http or https URL".into());
        }
        if !(0.0..=1.0).contains(&self.duplicate_rate) {
            return Err("outbound.duplicate_rate: must be between 0 and 1".into());
        }
        if self.retry_schedule.is_empty() {
            return Err("outbound.retry_schedule: must not be empty".into());
        }
        Ok(())
    }
}

fn default_schedule() -> Vec<Duration> {
    let cap = Duration::from_secs(2 * 3600);
    let mut out: Vec<Duration> = (0..13).map(|i| Duration::from_secs(1 << i)).collect();
    out.push(cap);
    out
}

impl AutomationOptions {
    /// The `GET /__sim/automation` body.
    pub fn to_json(&self) -> Value {
        json!({
            "enabled": self.enabled,
            "complete_after": ms(self.complete_after),
            "reject_every": self.reject_every,
            "action_required_every": self.action_required_every,
            "outbound": self.outbound.as_ref().map(|o| json!({
                "url": o.url,
                "duplicate_rate": o.duplicate_rate,
                "reorder": o.reorder,
                "retry_schedule": o.retry_schedule.iter().copied().map(ms).collect::<Vec<_>>(),
                "max_age": ms(o.max_age),
            })),
        })
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The body of `PUT /__sim/automation`; absent keys keep their current value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationUpdate {
    pub enabled: Option<bool>,
    pub complete_after: Option<u64>,
    pub reject_every: Option<u32>,
    pub action_required_every: Option<u32>,
    /// Absent: unchanged; `null`: no Outbound Messaging; an object: the new setting.
    #[serde(default, deserialize_with = "present")]
    pub outbound: Option<Option<OutboundUpdate>>,
}

/// An `outbound` object; missing keys take `OutboundOptions::new`'s defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundUpdate {
    pub url: String,
    pub duplicate_rate: Option<f64>,
    pub reorder: Option<bool>,
    pub retry_schedule: Option<Vec<u64>>,
    pub max_age: Option<u64>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<OutboundUpdate>>, D::Error> {
    Option::<OutboundUpdate>::deserialize(d).map(Some)
}

impl AutomationUpdate {
    /// Apply to `opts`, or say which value is invalid (then `opts` is untouched).
    pub fn apply(&self, opts: &mut AutomationOptions) -> Result<(), String> {
        let mut next = opts.clone();
        if let Some(v) = self.enabled {
            next.enabled = v;
        }
        if let Some(v) = self.complete_after {
            next.complete_after = Duration::from_millis(v);
        }
        if let Some(v) = self.reject_every {
            next.reject_every = v;
        }
        if let Some(v) = self.action_required_every {
            next.action_required_every = v;
        }
        if let Some(outbound) = &self.outbound {
            next.outbound = outbound.as_ref().map(|o| {
                let mut out = OutboundOptions::new(o.url.clone());
                out.duplicate_rate = o.duplicate_rate.unwrap_or(out.duplicate_rate);
                out.reorder = o.reorder.unwrap_or(out.reorder);
                if let Some(s) = &o.retry_schedule {
                    out.retry_schedule = s.iter().copied().map(Duration::from_millis).collect();
                }
                out.max_age = o.max_age.map_or(out.max_age, Duration::from_millis);
                out
            });
        }
        if let Some(o) = &next.outbound {
            o.validate()?;
        }
        *opts = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_grows_to_two_hours() {
        let o = OutboundOptions::new("http://127.0.0.1:1/x");
        assert_eq!(o.retry_after(1), Duration::from_secs(1));
        assert_eq!(o.retry_after(2), Duration::from_secs(2));
        assert_eq!(o.retry_after(100), Duration::from_secs(7200));
        assert!(o.retry_schedule.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn update_round_trips_and_validates() {
        let mut opts = AutomationOptions::default();
        let u: AutomationUpdate = serde_json::from_str(
            r#"{"enabled": true, "complete_after": 50,
                "outbound": {"url": "http://127.0.0.1:9/om", "retry_schedule": [10, 20], "max_age": 1000}}"#,
        )
        .unwrap();
        u.apply(&mut opts).unwrap();
        assert!(opts.enabled);
        let json = opts.to_json();
        assert_eq!(json["complete_after"], 50);
        assert_eq!(json["outbound"]["retry_schedule"], json!([10, 20]));

        let bad: AutomationUpdate =
            serde_json::from_str(r#"{"outbound": {"url": "ftp://x", "retry_schedule": []}}"#)
                .unwrap();
        assert!(bad.apply(&mut opts).is_err());
        assert!(opts.outbound.is_some());

        let off: AutomationUpdate = serde_json::from_str(r#"{"outbound": null}"#).unwrap();
        off.apply(&mut opts).unwrap();
        assert_eq!(opts.outbound, None);
    }
}
