//! The retry policy: when a failed message is tried again, and when it is given up on.
//!
//! Retries are *stored* with a due time (`next_attempt_at`), never slept on: this type only
//! computes the delay. The schedule is a list (svix's model), so operators read and edit it as
//! data: after the n-th failed attempt the base delay is `schedule[n-1]` (the last step repeats).

use std::time::Duration;

use rand::{Rng, RngExt};

/// Settings that decide the next attempt time and when a message is Dead.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
    jitter: f64,
    max_attempts: u32,
    max_age: Duration,
    rate_limit_floor: Duration,
    retry_after_max: Duration,
}

/// An invalid [`RetryPolicy`] setting. Reported at config load, never at run time.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("retry schedule is empty")]
    EmptySchedule,
    #[error("retry schedule must not decrease (step {index} is shorter than the one before)")]
    DecreasingSchedule { index: usize },
    #[error("jitter must be within [0, 1), got {0}")]
    Jitter(f64),
    #[error("max_attempts must be at least 1")]
    MaxAttempts,
    #[error("max_age must be positive")]
    MaxAge,
    #[error("retry_after_max must be positive")]
    RetryAfterMax,
}

impl RetryPolicy {
    /// Validates and builds a policy.
    pub fn new(
        schedule: Vec<Duration>,
        jitter: f64,
        max_attempts: u32,
        max_age: Duration,
        rate_limit_floor: Duration,
        retry_after_max: Duration,
    ) -> Result<Self, PolicyError> {
        if schedule.is_empty() {
            return Err(PolicyError::EmptySchedule);
        }
        if let Some(index) = (1..schedule.len()).find(|&i| schedule[i] < schedule[i - 1]) {
            return Err(PolicyError::DecreasingSchedule { index });
        }
        if !(0.0..1.0).contains(&jitter) {
            return Err(PolicyError::Jitter(jitter));
        }
        if max_attempts == 0 {
            return Err(PolicyError::MaxAttempts);
        }
        if max_age.is_zero() {
            return Err(PolicyError::MaxAge);
        }
        if retry_after_max.is_zero() {
            return Err(PolicyError::RetryAfterMax);
        }
        Ok(RetryPolicy {
            schedule,
            jitter,
            max_attempts,
            max_age,
            rate_limit_floor,
            retry_after_max,
        })
    }

    /// The delay before the next attempt, after `attempts_so_far` (≥ 1) attempts failed.
    ///
    /// - Without a hint: the schedule step, ± `jitter` (spreads retries so a recovering upstream is
    ///   not hit by a synchronised wave).
    /// - With a `Retry-After` hint: the hint, clamped to [schedule step, `retry_after_max`] (a server
    ///   may not make us retry faster than our schedule, nor park a message for days). Not jittered:
    ///   the server asked for that time.
    /// - Rate-limited (429, limit errors): at least `rate_limit_floor`.
    pub fn next_delay(
        &self,
        attempts_so_far: u32,
        hint: Option<Duration>,
        rate_limited: bool,
        rng: &mut impl Rng,
    ) -> Duration {
        let base = self.base_delay(attempts_so_far);
        let delay = match hint {
            Some(hint) => hint.clamp(base, self.retry_after_max.max(base)),
            None if self.jitter > 0.0 => {
                let factor = 1.0 + rng.random_range(-self.jitter..=self.jitter);
                base.mul_f64(factor)
            }
            None => base,
        };
        if rate_limited {
            delay.max(self.rate_limit_floor)
        } else {
            delay
        }
    }

    /// The un-jittered schedule step after `attempts_so_far` failed attempts.
    pub fn base_delay(&self, attempts_so_far: u32) -> Duration {
        let index = (attempts_so_far.max(1) - 1) as usize;
        self.schedule[index.min(self.schedule.len() - 1)]
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// A message older than this is Dead rather than retried.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    pub fn rate_limit_floor(&self) -> Duration {
        self.rate_limit_floor
    }

    pub fn retry_after_max(&self) -> Duration {
        self.retry_after_max
    }
}

impl Default for RetryPolicy {
    /// svix's documented retry schedule: 8 attempts over about 27.6 hours, ±20 %
    /// jitter, a 60 s floor after rate limiting, `Retry-After` capped at 10 hours, 3 days max age.
    fn default() -> Self {
        let secs = Duration::from_secs;
        RetryPolicy {
            schedule: vec![
                secs(5),
                secs(300),
                secs(1800),
                secs(7200),
                secs(18000),
                secs(36000),
                secs(36000),
            ],
            jitter: 0.2,
            max_attempts: 8,
            max_age: secs(3 * 24 * 3600),
            rate_limit_floor: secs(60),
            retry_after_max: secs(36000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy() -> RetryPolicy {
        let s = Duration::from_secs;
        RetryPolicy::new(
            vec![s(5), s(300), s(1800), s(7200)],
            0.2,
            6,
            s(86400),
            s(60),
            s(3600),
        )
        .expect("valid policy")
    }

    #[test]
    fn rejects_invalid_settings() {
        let s = Duration::from_secs;
        let new = |sched: Vec<Duration>, jitter, max_attempts, max_age, ra_max| {
            RetryPolicy::new(sched, jitter, max_attempts, max_age, s(60), ra_max)
        };
        assert_eq!(
            new(vec![], 0.2, 3, s(1), s(1)),
            Err(PolicyError::EmptySchedule)
        );
        assert_eq!(
            new(vec![s(5), s(1)], 0.2, 3, s(1), s(1)),
            Err(PolicyError::DecreasingSchedule { index: 1 })
        );
        assert_eq!(
            new(vec![s(5)], 1.0, 3, s(1), s(1)),
            Err(PolicyError::Jitter(1.0))
        );
        assert_eq!(
            new(vec![s(5)], -0.1, 3, s(1), s(1)),
            Err(PolicyError::Jitter(-0.1))
        );
        assert_eq!(
            new(vec![s(5)], 0.2, 0, s(1), s(1)),
            Err(PolicyError::MaxAttempts)
        );
        assert_eq!(
            new(vec![s(5)], 0.2, 3, s(0), s(1)),
            Err(PolicyError::MaxAge)
        );
        assert_eq!(
            new(vec![s(5)], 0.2, 3, s(1), s(0)),
            Err(PolicyError::RetryAfterMax)
        );
    }

    #[test]
    fn delays_stay_within_bounds_for_many_seeds() {
        let p = policy();
        for seed in 0..500u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            for attempts in 1..12u32 {
                let base = p.base_delay(attempts);
                let d = p.next_delay(attempts, None, false, &mut rng);
                assert!(
                    d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2),
                    "{d:?} vs {base:?}"
                );

                let limited = p.next_delay(attempts, None, true, &mut rng);
                assert!(limited >= Duration::from_secs(60));
                assert!(limited <= base.mul_f64(1.2).max(Duration::from_secs(60)));

                let hint = Duration::from_millis(rng.random_range(0..20_000_000u64));
                let honoured = p.next_delay(attempts, Some(hint), false, &mut rng);
                assert!(
                    honoured >= base,
                    "hint {hint:?} gave {honoured:?} below {base:?}"
                );
                assert!(honoured <= Duration::from_secs(3600).max(base));
                if hint >= base && hint <= Duration::from_secs(3600) {
                    assert_eq!(honoured, hint);
                }
            }
        }
    }

    #[test]
    fn base_schedule_is_monotone_and_repeats_last_step() {
        let p = policy();
        let bases: Vec<_> = (0..20).map(|n| p.base_delay(n)).collect();
        assert!(bases.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(p.base_delay(1), Duration::from_secs(5));
        assert_eq!(p.base_delay(19), Duration::from_secs(7200));
    }

    #[test]
    fn no_jitter_is_exact() {
        let p = RetryPolicy::new(
            vec![Duration::from_secs(1)],
            0.0,
            3,
            Duration::from_secs(60),
            Duration::ZERO,
            Duration::from_secs(10),
        )
        .expect("valid");
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            p.next_delay(2, None, false, &mut rng),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn default_policy_is_valid() {
        let d = RetryPolicy::default();
        let rebuilt = RetryPolicy::new(
            d.schedule.clone(),
            d.jitter,
            d.max_attempts,
            d.max_age,
            d.rate_limit_floor,
            d.retry_after_max,
        );
        assert_eq!(rebuilt, Ok(d));
    }
}
