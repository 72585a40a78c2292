//! The loop shared by the bank and e-mail pushers: run a step, and when it found nothing (or failed) wait for a
//! wake-up, the poll interval or shutdown. Shutdown is only checked between steps, so a send is never cut off.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use futures::StreamExt;

use super::bank::{RelayError, StepOutcome};
use crate::ops::Heartbeat;
use crate::outbox::Message;

/// Drives `step` until `shutdown`; `name` labels the log lines.
pub(crate) async fn drive<F, Fut, E>(
    name: &'static str,
    mut step: F,
    wake: &Notify,
    poll: Duration,
    shutdown: CancellationToken,
    heartbeat: Heartbeat,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<StepOutcome, E>>,
    E: std::fmt::Display,
{
    loop {
        heartbeat.beat();
        if shutdown.is_cancelled() {
            break;
        }
        let pause = match step().await {
            Ok(StepOutcome::Worked(_)) => continue,
            Ok(StepOutcome::Idle) => poll,
            Err(e) => {
                tracing::error!(worker = name, error = %e, "step failed");
                poll.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!(worker = name, "stopped");
}

/// Attempts every claimed message once, at most `concurrency` at a time, and reports the step: `Idle` when
/// nothing was claimed, otherwise `Worked` (after every attempt finished, even if one failed to record).
pub(crate) async fn attempt_all<F, Fut>(
    claimed: Vec<Message>,
    concurrency: usize,
    deliver: F,
) -> Result<StepOutcome, RelayError>
where
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = Result<(), RelayError>>,
{
    if claimed.is_empty() {
        return Ok(StepOutcome::Idle);
    }
    let n = claimed.len();
    let results: Vec<Result<(), RelayError>> = futures::stream::iter(claimed)
        .map(deliver)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(StepOutcome::Worked(n))
}
