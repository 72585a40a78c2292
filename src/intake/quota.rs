//! Per-bank intake quotas: one bank must not be able to spend the org's daily API allocation for all.
//!
//! Every accepted report request eventually costs Salesforce API calls (its upsert, its status reads, its
//! report download), and the org's daily allocation is shared by every bank. Without a cap, one bank's runaway
//! batch job fills the queue, the pusher spends the allocation on it, and every bank is refused until
//! midnight. `[server] bank_quota_per_hour = N` gives each bank a token bucket of `N` requests that refills
//! continuously at `N` per hour: a bank can send its whole hour's allowance at once, and over any stretch of
//! time no more than `N` per hour plus one bucket. Beyond it the request is refused with `429` and a
//! `Retry-After` that says when one more request will be accepted; nothing is stored.
//!
//! The check runs after authentication (the bucket is the caller's bank) and before the body is read into a
//! request. Replays of an `Idempotency-Key` count too: they are cheap for creditlink but a bank that replays
//! in a loop is the runaway this guards against. Buckets live in memory: a restart refills them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The per-bank buckets.
#[derive(Debug)]
pub struct BankQuota {
    /// Requests per hour, also the bucket's size.
    per_hour: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl BankQuota {
    /// `per_hour` must be at least 1 (the config refuses 0 as a quota; 0 means no quota at all).
    pub fn new(per_hour: u32) -> BankQuota {
        BankQuota {
            per_hour: per_hour.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `bank`'s bucket at `now`, or says how long until one is available.
    pub fn take(&self, bank: &str, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_hour);
        let per_second = capacity / 3600.0;
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(bank.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            metrics::counter!("creditlink_intake_quota_total", "bank" => bank.to_owned(), "outcome" => "allowed")
                .increment(1);
            return Ok(());
        }
        metrics::counter!("creditlink_intake_quota_total", "bank" => bank.to_owned(), "outcome" => "refused")
            .increment(1);
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bank_gets_its_bucket_then_waits_for_the_refill() {
        let quota = BankQuota::new(3600); // one a second, 3,600 at once
        let t0 = Instant::now();
        for _ in 0..3600 {
            quota.take("DBA", t0).expect("within the bucket");
        }
        let wait = quota.take("DBA", t0).expect_err("bucket empty");
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another bank is not affected.
        quota.take("DBB", t0).expect("own bucket");
        // One second later one more request fits, and only one.
        let t1 = t0 + Duration::from_secs(1);
        quota.take("DBA", t1).expect("refilled");
        assert!(quota.take("DBA", t1).is_err());
    }

    #[test]
    fn the_bucket_never_holds_more_than_an_hour() {
        let quota = BankQuota::new(2);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(86_400);
        quota.take("DBA", t0).unwrap();
        quota.take("DBA", later).unwrap();
        quota.take("DBA", later).unwrap();
        let wait = quota.take("DBA", later).expect_err("two per hour");
        assert_eq!(wait.as_secs(), 1800);
    }
}
