//! `[outbox]` and `[pusher]`: the retry policy every destination shares, and how writes to Salesforce are
//! batched and throttled.

use std::time::Duration;

use super::reader::{self, HOUR, MS, Section};

/// `[outbox]`: retry schedule and give-up rules (svix style: the schedule is data, not code).
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Delay before attempt n+1 after attempt n failed; past the end the last entry repeats.
    pub retry_schedule: Vec<Duration>,
    /// Each delay is scaled by a random factor in `1 ± jitter`, so retries after an outage spread out.
    pub jitter: f64,
    /// Attempts before a message goes `dead`.
    pub max_attempts: u32,
    /// Age after which a message goes `dead` whatever its attempt count.
    pub max_age: Duration,
    /// Minimum delay after a 429 / `REQUEST_LIMIT_EXCEEDED` or a timeout: hammering a limited org makes it worse.
    pub rate_limit_floor: Duration,
    /// Cap on a `Retry-After` we honour, so a confused upstream cannot park a message for a week.
    pub retry_after_max: Duration,
    /// How long a worker owns a claimed message; a crashed worker's messages are retried after this.
    pub lease: Duration,
}

/// `[pusher]`: the Salesforce writer's batching and API-budget manners.
#[derive(Debug, Clone)]
pub struct PusherConfig {
    /// Records per sObject Collections call; Salesforce's own limit is 200.
    pub batch_max: usize,
    /// How long to wait for more records before sending a partial batch.
    pub linger: Duration,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// Daily API usage (percent, from `Sforce-Limit-Info`) above which pushes slow down...
    pub api_usage_slow_pct: u8,
    /// ...and above which they pause until usage falls, leaving headroom for the bureau's own users.
    pub api_usage_pause_pct: u8,
}

/// The schedule svix uses, shortened to what a Salesforce outage needs: 0 s, 1 s, 5 s, 30 s, 2 min, 10 min,
/// 30 min, 1 h, 2 h.
pub const DEFAULT_RETRY_SCHEDULE_MS: [u64; 9] = [
    0, 1000, 5000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000,
];

pub(crate) fn read_outbox(s: &mut Section<'_>) -> OutboxConfig {
    let day_ms = 86_400_000;
    OutboxConfig {
        retry_schedule: s.or(
            "retry_schedule_ms",
            DEFAULT_RETRY_SCHEDULE_MS
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            reader::list(true, reader::duration(MS, 0, day_ms)),
        ),
        jitter: s.or("jitter", 0.2, reader::fraction(0.0, 1.0)),
        max_attempts: s.or("max_attempts", 12, reader::integer(1, 1000)) as u32,
        max_age: s.or(
            "max_age_hours",
            72 * HOUR,
            reader::duration(HOUR, 1, 24 * 30),
        ),
        rate_limit_floor: s.or(
            "rate_limit_floor_ms",
            Duration::from_secs(60),
            reader::duration(MS, 0, day_ms),
        ),
        retry_after_max: s.or(
            "retry_after_max_ms",
            Duration::from_secs(3600),
            reader::duration(MS, 0, day_ms),
        ),
        lease: s.or(
            "lease_ms",
            Duration::from_secs(60),
            reader::duration(MS, 1000, day_ms),
        ),
    }
}

pub(crate) fn read_pusher(s: &mut Section<'_>) -> PusherConfig {
    let pusher = PusherConfig {
        batch_max: s.or("batch_max", 200, reader::integer(1, 200)) as usize,
        linger: s.or(
            "linger_ms",
            Duration::from_millis(5),
            reader::duration(MS, 0, 60_000),
        ),
        concurrency: s.or("concurrency", 4, reader::integer(1, 25)) as usize,
        api_usage_slow_pct: s.or("api_usage_slow_pct", 80, reader::integer(1, 100)) as u8,
        api_usage_pause_pct: s.or("api_usage_pause_pct", 95, reader::integer(1, 100)) as u8,
    };
    if pusher.api_usage_slow_pct >= pusher.api_usage_pause_pct {
        s.invalid(
            "api_usage_slow_pct",
            format!(
                "must be below api_usage_pause_pct ({} >= {})",
                pusher.api_usage_slow_pct, pusher.api_usage_pause_pct
            ),
        );
    }
    pusher
}
