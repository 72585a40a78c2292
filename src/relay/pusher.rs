//! The Salesforce pusher: claims due messages, sends them in sObject Collections upserts, records
//! every attempt. One step is [`SalesforcePusher::try_execute_task`]; [`SalesforcePusher::run`] is
//! the loop around it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use crate::lifecycle::FailureNotice;
use crate::ops::Heartbeat;
use crate::outbox::{Destination, DestinationKind, Lane, Message, Outbox, OutboxError, State};
use crate::salesforce::SalesforceClient;

use super::batch::{self, Call};
use super::breaker::{Allow, Breaker};
use super::events::{self, BatchDone};
use super::governor::{Admission, Governor};
use super::settings::PusherSettings;
use super::verdict::{self, Verdict};
use super::{RelayError, StepOutcome};

/// Back-off after a store failure in the loop: doubles from the first value up to the second.
const ERROR_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));
/// Time allowed on shutdown, beyond the request timeout, for recording the last attempts.
const DRAIN_MARGIN: Duration = Duration::from_secs(2);

/// Drains Salesforce-bound messages from the outbox. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SalesforcePusher {
    inner: Arc<Inner>,
}

struct Inner {
    outbox: Outbox,
    client: SalesforceClient,
    settings: PusherSettings,
    /// One permit per batch in flight: messages are claimed only while holding one.
    slots: Arc<Semaphore>,
    /// Intake's "something was queued" signal.
    wake: Arc<Notify>,
    governor: Governor,
    /// Holds the backlog while the org fails whole calls.
    breaker: Breaker,
    /// Tells banks and the bureau about report requests that end Failed or Dead (set once at assembly).
    failure_notice: std::sync::OnceLock<FailureNotice>,
}

impl SalesforcePusher {
    /// Builds a pusher; fails only on invalid settings. No I/O happens here.
    pub fn new(
        outbox: Outbox,
        client: SalesforceClient,
        settings: PusherSettings,
    ) -> Result<Self, RelayError> {
        settings.validate()?;
        Ok(SalesforcePusher {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(settings.concurrency)),
                breaker: Breaker::new(settings.outage_probe_min, settings.outage_probe_max),
                outbox,
                client,
                settings,
                wake: Arc::new(Notify::new()),
                governor: Governor::default(),
                failure_notice: std::sync::OnceLock::new(),
            }),
        })
    }

    /// From now on, a report request recorded Failed or Dead enqueues a `report_request.failed` webhook and
    /// e-mails (`crate::lifecycle::FailureNotice`). Set once; later calls are ignored.
    pub fn set_failure_notice(&self, notice: FailureNotice) {
        let _ = self.inner.failure_notice.set(notice);
    }

    /// The wake-up intake calls (`notify_one()`) after each durable enqueue, so a new message is
    /// sent at once instead of at the next poll.
    pub fn notifier(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    /// True while sending is paused because the org's daily API allocation is nearly spent
    /// (a readiness warning: intake still accepts and queues).
    pub fn paused(&self) -> bool {
        self.inner.governor.paused()
    }

    /// True while the org fails whole calls and the backlog is held (one message probes; see
    /// `breaker`). Intake still accepts and queues.
    pub fn unreachable(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// One step: claim due messages (Interactive first, Bulk with the room left), lingering briefly
    /// for more when the batch is not full, send them, record every attempt.
    pub async fn try_execute_task(&self) -> Result<StepOutcome, RelayError> {
        let Ok(slot) = self.inner.slots.clone().acquire_owned().await else {
            // The semaphore is never closed; a closed one would mean no slot will ever be free.
            return Ok(StepOutcome::Idle);
        };
        if self.admit().await == Admission::Paused {
            return Ok(StepOutcome::Paused);
        }
        let Some(messages) = self.take_allowed().await? else {
            return Ok(StepOutcome::Paused);
        };
        if messages.is_empty() {
            return Ok(StepOutcome::Idle);
        }
        self.deliver(messages, slot).await
    }

    /// The worker loop: steps while work is due, waits for a wake-up or the poll interval when
    /// idle, beats `heartbeat` every iteration. Up to `concurrency` batches run at once.
    ///
    /// On `shutdown` it stops claiming and waits for the batches in flight (never cancelling a
    /// send), at most the request timeout plus a margin; a batch still running then is abandoned
    /// and its messages return to Pending when their lease ends or the outbox is reopened.
    pub async fn run(self, shutdown: CancellationToken, heartbeat: Heartbeat) {
        let settings = &self.inner.settings;
        let mut in_flight: JoinSet<Result<StepOutcome, RelayError>> = JoinSet::new();
        let mut backoff = ERROR_BACKOFF.0;
        tracing::info!(
            concurrency = settings.concurrency,
            batch_max = settings.batch_max,
            "Salesforce pusher started"
        );
        loop {
            heartbeat.beat();
            while let Some(done) = in_flight.try_join_next() {
                log_batch_end(done);
            }
            let slot = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                slot = self.inner.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                // All slots busy: come round to beat the heartbeat.
                _ = tokio::time::sleep(settings.poll_interval) => continue,
            };
            let admission = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                admission = self.admit() => admission,
            };
            if admission == Admission::Paused {
                drop(slot);
                self.idle_wait(&shutdown, false).await;
                continue;
            }
            // Not cancellable: once messages are claimed they are sent (the linger is short).
            match self.take_allowed().await {
                Ok(None) => {
                    drop(slot);
                    self.idle_wait(&shutdown, false).await;
                }
                Ok(Some(messages)) if messages.is_empty() => {
                    drop(slot);
                    backoff = ERROR_BACKOFF.0;
                    self.idle_wait(&shutdown, true).await;
                }
                Ok(Some(messages)) => {
                    backoff = ERROR_BACKOFF.0;
                    let this = self.clone();
                    in_flight.spawn(async move { this.deliver(messages, slot).await });
                }
                Err(error) => {
                    drop(slot);
                    tracing::error!(error = %error, "claiming from the outbox failed; backing off");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ERROR_BACKOFF.1);
                }
            }
        }
        let grace = settings.request_timeout + DRAIN_MARGIN;
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = in_flight.join_next().await {
                log_batch_end(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                batches = in_flight.len(),
                "batches still running after the shutdown grace period were abandoned"
            );
            in_flight.abort_all();
        }
        tracing::info!("Salesforce pusher stopped");
    }

    async fn admit(&self) -> Admission {
        let inner = &self.inner;
        inner.governor.admit(&inner.client, &inner.settings).await
    }

    /// Waits for a wake-up (when `wakeable`), the poll interval, or shutdown.
    async fn idle_wait(&self, shutdown: &CancellationToken, wakeable: bool) {
        let poll = tokio::time::sleep(self.inner.settings.poll_interval);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = poll => {}
            _ = self.inner.wake.notified(), if wakeable => {}
        }
    }

    /// What the outage breaker allows: a batch ([`Self::take`]), a probe of one message, or nothing
    /// (`None`: the org is failing whole calls and the backlog waits).
    async fn take_allowed(&self) -> Result<Option<Vec<Message>>, RelayError> {
        let breaker = &self.inner.breaker;
        match breaker.allow() {
            Allow::Wait => Ok(None),
            Allow::Batch => self.take().await.map(Some),
            Allow::Probe => {
                let probe = self.claim(1).await;
                if !matches!(&probe, Ok(m) if !m.is_empty()) {
                    breaker.unanswered();
                }
                Ok(Some(probe?))
            }
        }
    }

    /// Claims up to `batch_max` due messages; when some but fewer are due, lingers for more (each
    /// wake-up re-claims) until the batch is full or the linger is over.
    async fn take(&self) -> Result<Vec<Message>, RelayError> {
        let settings = &self.inner.settings;
        let mut batch = self.claim(settings.batch_max).await?;
        if batch.is_empty() || settings.linger.is_zero() {
            return Ok(batch);
        }
        let deadline = Instant::now() + settings.linger;
        while batch.len() < settings.batch_max {
            let woken = tokio::select! {
                _ = self.inner.wake.notified() => true,
                _ = tokio::time::sleep_until(deadline) => false,
            };
            batch.extend(self.claim(settings.batch_max - batch.len()).await?);
            if !woken || Instant::now() >= deadline {
                break;
            }
        }
        Ok(batch)
    }

    /// Interactive first, Bulk only with the room left: report requests never wait behind feeds.
    async fn claim(&self, room: usize) -> Result<Vec<Message>, OutboxError> {
        let outbox = &self.inner.outbox;
        let now = outbox.now();
        let timeout = self.inner.settings.request_timeout;
        let sf = DestinationKind::Salesforce;
        let mut claimed = outbox
            .claim_due(Lane::Interactive, sf, room, now, timeout)
            .await?;
        if claimed.len() < room {
            let left = room - claimed.len();
            claimed.extend(outbox.claim_due(Lane::Bulk, sf, left, now, timeout).await?);
        }
        Ok(claimed)
    }

    /// Sends claimed messages (one call per object and key, in claim order) and records each
    /// attempt. Holds `_slot` until done. A store error does not stop the other records; the first
    /// one is returned after all were tried.
    async fn deliver(
        &self,
        messages: Vec<Message>,
        _slot: OwnedSemaphorePermit,
    ) -> Result<StepOutcome, RelayError> {
        let (calls, unsendable) = batch::plan(messages);
        let mut total = BatchDone::default();
        let mut first_error = None;
        for item in unsendable {
            let now = Utc::now();
            tracing::warn!(message_id = %item.message.id, reason = %item.reason, "message cannot be sent");
            let verdict = verdict::malformed(item.reason);
            tally(
                &mut total,
                self.record(&item.message, verdict, now, now).await,
                &mut first_error,
            );
        }
        for call in calls {
            let (done, error) = self.send(call).await;
            total.delivered += done.delivered;
            total.retried += done.retried;
            total.failed += done.failed;
            first_error = first_error.or(error);
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(StepOutcome::Worked {
                delivered: total.delivered,
                retried: total.retried,
                failed: total.failed,
            }),
        }
    }

    /// One Collections call and the attempts of its messages.
    #[instrument(skip_all, fields(batch = call.records.len(), object = %call.object))]
    async fn send(&self, call: Call) -> (BatchDone, Option<OutboxError>) {
        let inner = &self.inner;
        let timeout = inner.settings.request_timeout;
        let started_at = Utc::now();
        let clock = Instant::now();
        let answer = tokio::time::timeout(
            timeout,
            inner
                .client
                .collections_upsert(&call.object, &call.ext_field, &call.records),
        )
        .await;
        let finished_at = Utc::now();
        let latency = clock.elapsed();
        events::api_usage(inner.client.api_usage());
        let (verdicts, call_error): (Vec<Verdict>, Option<String>) = match answer {
            Ok(Ok(results)) => {
                inner.breaker.got_through();
                let verdicts = results
                    .iter()
                    .map(|r| verdict::judge_record(r, &call.ext_field))
                    .collect();
                (verdicts, None)
            }
            Ok(Err(error)) => {
                let v = verdict::judge_call(&error);
                let code = v.code().to_owned();
                // An outage holds the backlog; any other answer (even a refusal) means the org is there.
                if matches!(v, Verdict::Retry { .. }) {
                    inner.breaker.failed(&code);
                } else {
                    inner.breaker.got_through();
                }
                (vec![v; call.messages.len()], Some(code))
            }
            Err(_) => {
                inner.breaker.failed("TIMEOUT");
                let v = verdict::timed_out(timeout);
                (vec![v; call.messages.len()], Some("TIMEOUT".to_owned()))
            }
        };
        let mut done = BatchDone {
            records: call.records.len(),
            ..BatchDone::default()
        };
        let mut first_error = None;
        let mut judged = Vec::with_capacity(call.messages.len());
        for (message, verdict) in call.messages.iter().zip(verdicts) {
            let verdict = match verdict {
                Verdict::SuccessIdUnknown(why) => self.look_up_id(message, why).await,
                other => other,
            };
            judged.push((message, verdict));
        }
        // Recorded together: one durable store step for the whole call instead of one per message.
        let prepared: Vec<_> = judged
            .into_iter()
            .map(|(message, verdict)| (message, prepare(message, verdict, started_at, finished_at)))
            .collect();
        let items = prepared
            .iter()
            .map(|(message, p)| (*message, p.attempt.clone(), p.transition.clone()))
            .collect();
        match inner.outbox.record_attempts(items).await {
            Ok(results) => {
                for ((message, p), result) in prepared.iter().zip(results) {
                    let one = self.recorded(message, p, result).await;
                    tally(&mut done, one, &mut first_error);
                }
            }
            Err(error) => tally(&mut done, Err(error), &mut first_error),
        }
        done.emit(latency, call_error.as_deref());
        (done, first_error)
    }

    /// Records one attempt; `None` when the message was no longer ours (its lease ran out and
    /// another step handled it: the outbox's lease caveat).
    async fn record(
        &self,
        message: &Message,
        verdict: Verdict,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    ) -> Result<Option<State>, OutboxError> {
        let p = prepare(message, verdict, started_at, finished_at);
        let result = self
            .inner
            .outbox
            .record_attempt(message, p.attempt.clone(), p.transition.clone())
            .await;
        self.recorded(message, &p, result).await
    }

    /// After an attempt was recorded (or not): metrics, the failure notice, and `None` for a lost lease.
    async fn recorded(
        &self,
        message: &Message,
        p: &Prepared,
        result: Result<Message, OutboxError>,
    ) -> Result<Option<State>, OutboxError> {
        match result {
            Ok(updated) => {
                events::attempt(p.attempt.outcome, &p.code);
                if updated.state == State::Delivered {
                    events::delivered(message.created_at, p.attempt.finished_at);
                }
                if let Some(notice) = self.inner.failure_notice.get() {
                    notice.report_failed(&updated).await?;
                }
                Ok(Some(updated.state))
            }
            Err(OutboxError::LeaseLost(_)) => {
                tracing::debug!(message_id = %message.id, "lease lost: attempt already handled elsewhere");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The id of a record Salesforce reported as an own-key duplicate without naming it. The
    /// record exists either way; without an id it is delivered all the same.
    async fn look_up_id(&self, message: &Message, why: verdict::Why) -> Verdict {
        let Destination::Salesforce {
            object,
            ext_field,
            ext_value,
        } = &message.destination
        else {
            return Verdict::SuccessIdUnknown(why);
        };
        let inner = &self.inner;
        let lookup = inner
            .client
            .get_by_external_id(object, ext_field, ext_value);
        match tokio::time::timeout(inner.settings.request_timeout, lookup).await {
            Ok(Ok(record)) => match record.get("Id").and_then(|v| v.as_str()) {
                Some(id) => Verdict::Success {
                    remote_id: Some(id.to_owned()),
                    why: Some(why),
                },
                None => Verdict::SuccessIdUnknown(why),
            },
            Ok(Err(error)) => {
                tracing::debug!(code = error.code(), "looking up a duplicate's id failed");
                Verdict::SuccessIdUnknown(why)
            }
            Err(_) => Verdict::SuccessIdUnknown(why),
        }
    }
}

/// An attempt ready to record: what the verdict means for the message.
struct Prepared {
    code: String,
    attempt: crate::outbox::Attempt,
    transition: crate::outbox::Transition,
}

fn prepare(
    message: &Message,
    verdict: Verdict,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
) -> Prepared {
    let code = verdict.code().to_owned();
    let (mut attempt, transition) = verdict.into_attempt(started_at, finished_at);
    // Salesforce quotes submitted values in some messages (`STRING_TOO_LONG`, restricted picklists);
    // the attempt log and status API must not carry a bank's personal data back out.
    attempt.message = attempt
        .message
        .map(|text| verdict::redact_values(&text, &message.payload));
    Prepared {
        code,
        attempt,
        transition,
    }
}

/// Adds one recorded attempt to the counts, keeping the first store error.
fn tally(
    done: &mut BatchDone,
    recorded: Result<Option<State>, OutboxError>,
    first_error: &mut Option<OutboxError>,
) {
    match recorded {
        Ok(Some(State::Delivered)) => done.delivered += 1,
        Ok(Some(State::Pending)) => done.retried += 1,
        Ok(Some(_)) => done.failed += 1,
        Ok(None) => done.stale += 1,
        Err(error) => {
            tracing::error!(error = %error, "recording an attempt failed");
            first_error.get_or_insert(error);
        }
    }
}

fn log_batch_end(done: Result<Result<StepOutcome, RelayError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::error!(error = %error, "a batch could not record all attempts"),
        Err(error) => tracing::error!(error = %error, "a batch task ended abnormally"),
    }
}
