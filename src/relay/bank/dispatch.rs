//! The bank pusher's running loop: independent progress per endpoint.
//!
//! A step-at-a-time loop (claim a batch, send it, wait for the whole batch) lets one endpoint that hangs for
//! its full timeout stall every other bank's webhooks queued behind that batch. Here each claimed message is
//! sent in its own task as soon as a slot is free, under two limits:
//!
//! - `concurrency` sends in flight overall (the claim asks for no more than the free slots), and
//! - `per_endpoint` sends in flight per bank: a message whose bank is at its limit is released at once
//!   (`ReleaseNoAttempt`: back to pending, due now, no attempt counted). Its new due time is later than every
//!   message that was already due, so the next claims reach the other banks' messages instead of the same ones.
//!
//! When a claim starts nothing (nothing due, or only busy banks' messages) the loop waits for a send to finish,
//! a wake-up, the poll interval or shutdown. On shutdown it stops claiming and lets the sends in flight finish
//! (each is bounded by the sender's timeout), so a send is never cut off.

use std::collections::HashMap;

use chrono::Utc;
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::ops::Heartbeat;
use crate::outbox::{Attempt, AttemptOutcome, Destination, Message, Transition};

use super::{BankPusher, RelayError};

/// Sends in flight: the bank of every task, and the count per bank.
#[derive(Default)]
struct Busy {
    tasks: HashMap<Id, String>,
    per_bank: HashMap<String, usize>,
}

impl Busy {
    fn start(&mut self, task: Id, code: String) {
        *self.per_bank.entry(code.clone()).or_default() += 1;
        self.tasks.insert(task, code);
    }

    fn in_flight(&self, code: &str) -> usize {
        self.per_bank.get(code).copied().unwrap_or(0)
    }

    /// Frees the slot of a finished task (panicked ones included) and logs what could not be recorded.
    fn finish(&mut self, done: Result<(Id, Result<(), RelayError>), JoinError>) {
        let task = match done {
            Ok((task, result)) => {
                if let Err(e) = result {
                    tracing::error!(worker = "bank pusher", error = %e, "delivery could not be recorded");
                }
                task
            }
            Err(e) => {
                // The message's lease runs out and it is claimed again.
                tracing::error!(worker = "bank pusher", error = %e, "a delivery task failed");
                e.id()
            }
        };
        let Some(code) = self.tasks.remove(&task) else {
            return;
        };
        if let Some(n) = self.per_bank.get_mut(&code) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_bank.remove(&code);
            }
        }
    }
}

impl BankPusher {
    /// Runs until `shutdown`; see the module documentation of `dispatch` for the scheduling.
    pub async fn run(self, shutdown: CancellationToken, heartbeat: Heartbeat) {
        let settings = &self.inner.settings;
        let (concurrency, per_endpoint, poll) = (
            settings.concurrency,
            settings.per_endpoint,
            settings.poll_interval,
        );
        let mut tasks: JoinSet<Result<(), RelayError>> = JoinSet::new();
        let mut busy = Busy::default();
        loop {
            heartbeat.beat();
            if shutdown.is_cancelled() {
                break;
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                busy.finish(done);
            }
            let free = concurrency.saturating_sub(tasks.len());
            let mut started = 0;
            if free > 0 {
                match self.claim(free).await {
                    Ok(claimed) => {
                        for message in claimed {
                            let code = bank_code(&message);
                            if busy.in_flight(&code) >= per_endpoint {
                                self.release(&message).await;
                                continue;
                            }
                            started += 1;
                            let pusher = self.clone();
                            let task = tasks.spawn(async move { pusher.deliver(message).await });
                            busy.start(task.id(), code);
                        }
                    }
                    Err(e) => tracing::error!(worker = "bank pusher", error = %e, "claim failed"),
                }
            }
            if started > 0 && tasks.len() < concurrency {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => busy.finish(done),
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
        while let Some(done) = tasks.join_next_with_id().await {
            busy.finish(done);
        }
        tracing::info!(worker = "bank pusher", "stopped");
    }

    /// Puts a claimed message back, due now, without counting an attempt.
    async fn release(&self, message: &Message) {
        let now = Utc::now();
        let attempt = Attempt {
            started_at: now,
            finished_at: now,
            outcome: AttemptOutcome::Retryable,
            http_status: None,
            error_code: None,
            message: None,
            latency_ms: 0,
        };
        if let Err(e) = self
            .inner
            .outbox
            .record_attempt(message, attempt, Transition::ReleaseNoAttempt)
            .await
        {
            // The lease runs out and the message is claimed again later: delayed, not lost.
            tracing::warn!(message_id = %message.id, error = %e, "could not release a message for a busy endpoint");
        }
    }
}

/// The bank a message is for (empty for a message that is not a bank event: it fails in `deliver`).
fn bank_code(message: &Message) -> String {
    match &message.destination {
        Destination::Bank { endpoint, .. } => endpoint.clone(),
        _ => String::new(),
    }
}
