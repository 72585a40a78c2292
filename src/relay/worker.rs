//! The loop shared by the bank and e-mail pushers: run a step, and when it found nothing (or failed) wait for a
//! wake-up, the poll interval or shutdown. Shutdown is only checked between steps, so a send is never cut off.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::bank::StepOutcome;
use crate::ops::Heartbeat;

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
