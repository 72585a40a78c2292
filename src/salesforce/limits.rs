//! The `Sforce-Limit-Info` response header: how much of the org's daily API allocation is used.
//!
//! Documented form `api-usage=18/5000`; newer orgs append `; api-bursts=1/750`, and an old pilot sent
//! `per-app-api-usage=17/250(appName=sample-connected-app)` (REST API "Limit Info Header"). The parser is
//! deliberately lenient: unknown segments are skipped, a malformed segment never fails the API call it came with.

use std::sync::atomic::{AtomicU64, Ordering};

/// Calls used and allowed in the org's rolling 24 h window (or in a narrower bucket, for bursts and per-app use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

/// Everything `Sforce-Limit-Info` can carry; absent segments are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitInfo {
    pub api_usage: Option<ApiUsage>,
    pub api_bursts: Option<ApiUsage>,
    pub per_app_api_usage: Option<ApiUsage>,
}

/// Parse one `Sforce-Limit-Info` value. Segments are separated by `;` (or `,`, which header folding produces).
pub fn parse_limit_info(value: &str) -> LimitInfo {
    let mut info = LimitInfo::default();
    for segment in value.split([';', ',']) {
        let Some((key, rest)) = segment.split_once('=') else {
            continue;
        };
        let usage = parse_usage(rest);
        match key.trim().to_ascii_lowercase().as_str() {
            "api-usage" => info.api_usage = usage.or(info.api_usage),
            "api-bursts" => info.api_bursts = usage.or(info.api_bursts),
            "per-app-api-usage" => info.per_app_api_usage = usage.or(info.per_app_api_usage),
            _ => {}
        }
    }
    info
}

/// `N/M`, optionally followed by a parenthesised annotation such as `(appName=x)`.
fn parse_usage(text: &str) -> Option<ApiUsage> {
    let text = text.trim();
    let text = text.split_once('(').map_or(text, |(head, _)| head).trim();
    let (used, max) = text.split_once('/')?;
    Some(ApiUsage {
        used: used.trim().parse().ok()?,
        max: max.trim().parse().ok()?,
    })
}

/// The last `api-usage` seen on any response, readable without locks from metrics and readiness code.
#[derive(Debug, Default)]
pub(crate) struct UsageTracker {
    used: AtomicU64,
    /// 0 until a header has been seen: a real org never reports a maximum of 0.
    max: AtomicU64,
}

impl UsageTracker {
    pub(crate) fn observe(&self, headers: &reqwest::header::HeaderMap) {
        let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_limit_info(v).api_usage)
        else {
            return;
        };
        // Two stores, not one atomic pair: a reader may briefly see a new `used` with the old `max`, which is harmless
        // for a gauge.
        self.used.store(usage.used, Ordering::Relaxed);
        self.max.store(usage.max, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<ApiUsage> {
        let max = self.max.load(Ordering::Relaxed);
        (max > 0).then(|| ApiUsage {
            used: self.used.load(Ordering::Relaxed),
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(used: u64, max: u64) -> Option<ApiUsage> {
        Some(ApiUsage { used, max })
    }

    #[test]
    fn documented_form() {
        assert_eq!(
            parse_limit_info("api-usage=18/5000").api_usage,
            usage(18, 5000)
        );
    }

    #[test]
    fn with_bursts_segment() {
        let info = parse_limit_info("api-usage=10018/100000; api-bursts=1/750");
        assert_eq!(info.api_usage, usage(10018, 100000));
        assert_eq!(info.api_bursts, usage(1, 750));
    }

    #[test]
    fn per_app_pilot_form_with_annotation() {
        let info = parse_limit_info(
            "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)",
        );
        assert_eq!(info.api_usage, usage(25, 5000));
        assert_eq!(info.per_app_api_usage, usage(17, 250));
    }

    #[test]
    fn lenient_about_spacing_case_order_and_separators() {
        let info = parse_limit_info("  API-Usage = 7 / 15000 ,per-app-api-usage=1/2");
        assert_eq!(info.api_usage, usage(7, 15000));
        assert_eq!(info.per_app_api_usage, usage(1, 2));
        let info = parse_limit_info("per-app-api-usage=3/4; api-usage=5/6");
        assert_eq!(info.api_usage, usage(5, 6));
    }

    #[test]
    fn garbage_yields_nothing_and_never_panics() {
        for bad in [
            "",
            "api-usage",
            "api-usage=",
            "api-usage=12",
            "api-usage=a/b",
            "api-usage=-1/5",
            "=;;=/",
            "x=1/2",
        ] {
            assert_eq!(parse_limit_info(bad).api_usage, None, "{bad:?}");
        }
    }

    #[test]
    fn a_bad_segment_does_not_hide_a_good_one() {
        let info = parse_limit_info("api-bursts=oops; api-usage=3/9");
        assert_eq!(info.api_usage, usage(3, 9));
        assert_eq!(info.api_bursts, None);
    }

    #[test]
    fn tracker_keeps_the_last_header_and_ignores_responses_without_one() {
        let tracker = UsageTracker::default();
        assert_eq!(tracker.get(), None);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("Sforce-Limit-Info", "api-usage=18/5000".parse().unwrap());
        tracker.observe(&headers);
        assert_eq!(tracker.get(), usage(18, 5000));
        tracker.observe(&reqwest::header::HeaderMap::new());
        assert_eq!(tracker.get(), usage(18, 5000));
    }
}
