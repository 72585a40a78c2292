//! The outage breaker: while Salesforce fails whole calls, the pusher stops sending the backlog and probes
//! with one message at a time.
//!
//! Without it, every batch claimed during an outage spends one attempt of each of its messages and pushes
//! them down the retry schedule: a 40 s outage had left a 20,000-message backlog five attempts deep and due
//! up to two minutes *after* the org came back, and an outage of some hours would spend every message's
//! attempts and end them Dead while nothing was wrong with them. With the breaker, the first whole-call
//! failure (timeout, connection error, 5xx, 429 — any call-level verdict the outbox would retry) opens it;
//! while open, nothing is claimed; when its delay is over, one probe of a single message is sent (and
//! nothing else until it is answered); a probe that gets through closes it and the whole backlog is due at
//! once, a failed one reopens it for twice as long (capped). Record-level errors never open it: the org
//! answered.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// What the breaker allows the next step to claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allow {
    /// Closed: a full batch.
    Batch,
    /// Half-open: one message, the probe.
    Probe,
    /// Open, or a probe is in flight: nothing.
    Wait,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    min: Duration,
    max: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whole-call failures since the last call that got through.
    failures: u32,
    /// While `Some`, open until then.
    open_until: Option<Instant>,
    /// A probe was handed out and has not been answered.
    probing: bool,
}

impl Breaker {
    /// A closed breaker whose open delay starts at `min` and doubles up to `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Breaker {
        Breaker {
            min,
            max: max.max(min),
            state: Mutex::new(State::default()),
        }
    }

    /// True while open (readiness and the metric report it).
    pub(crate) fn is_open(&self) -> bool {
        self.state.lock().open_until.is_some()
    }

    /// Whether the next step may claim, and how much. Handing out [`Allow::Probe`] marks the probe in
    /// flight: the caller must answer it with [`Breaker::got_through`] or [`Breaker::failed`] (or
    /// [`Breaker::unanswered`] when it claimed nothing).
    pub(crate) fn allow(&self) -> Allow {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Allow {
        let mut s = self.state.lock();
        match s.open_until {
            None => Allow::Batch,
            Some(_) if s.probing => Allow::Wait,
            Some(until) if now < until => Allow::Wait,
            Some(_) => {
                s.probing = true;
                Allow::Probe
            }
        }
    }

    /// A call got an answer from the org (whatever it said of each record): closes the breaker.
    pub(crate) fn got_through(&self) {
        let mut s = self.state.lock();
        if s.open_until.is_some() {
            tracing::info!(
                failed_calls = s.failures,
                "Salesforce answers again: sending the backlog"
            );
            metrics::gauge!("creditlink_salesforce_unreachable").set(0.0);
        }
        *s = State::default();
    }

    /// A call failed as a whole in a way worth retrying: opens (or reopens) the breaker.
    pub(crate) fn failed(&self, code: &str) {
        self.failed_at(code, Instant::now());
    }

    fn failed_at(&self, code: &str, now: Instant) {
        let mut s = self.state.lock();
        s.failures = s.failures.saturating_add(1);
        let doublings = s.failures.saturating_sub(1).min(16);
        let delay = self.min.saturating_mul(1 << doublings).min(self.max);
        if s.open_until.is_none() {
            tracing::warn!(
                code,
                probe_in_ms = delay.as_millis() as u64,
                "Salesforce is failing whole calls: holding the backlog and probing with one message"
            );
            metrics::gauge!("creditlink_salesforce_unreachable").set(1.0);
        }
        s.open_until = Some(now + delay);
        s.probing = false;
    }

    /// A probe was handed out but nothing was claimed: the next step may probe again.
    pub(crate) fn unanswered(&self) {
        self.state.lock().probing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_probes_one_at_a_time_and_closes_on_an_answer() {
        let b = Breaker::new(Duration::from_secs(1), Duration::from_secs(4));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(b.allow_at(t0), Allow::Batch);
        b.failed_at("SERVER_UNAVAILABLE", t0);
        assert!(b.is_open());
        assert_eq!(b.allow_at(at(999)), Allow::Wait);
        assert_eq!(b.allow_at(at(1000)), Allow::Probe);
        assert_eq!(b.allow_at(at(1000)), Allow::Wait, "one probe at a time");
        b.failed_at("TIMEOUT", at(1000));
        assert_eq!(
            b.allow_at(at(2999)),
            Allow::Wait,
            "the second delay is twice the first"
        );
        assert_eq!(b.allow_at(at(3000)), Allow::Probe);
        b.unanswered();
        assert_eq!(
            b.allow_at(at(3000)),
            Allow::Probe,
            "a probe that claimed nothing is handed out again"
        );
        for _ in 0..3 {
            b.failed_at("TIMEOUT", at(3000));
        }
        assert_eq!(b.allow_at(at(7000)), Allow::Probe, "the delay is capped");
        b.got_through();
        assert!(!b.is_open());
        assert_eq!(b.allow_at(at(7000)), Allow::Batch);
    }
}
