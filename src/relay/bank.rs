//! The bank pusher: drains `Bank` messages from the outbox into signed webhooks (Standard Webhooks).
//!
//! The running loop (`dispatch.rs`) sends every claimed message in its own task, at most `concurrency` at once
//! and at most `per_endpoint` to one bank, so a hanging endpoint never holds up another bank's webhooks; a
//! step (tests drive steps) claims up to `concurrency` due messages (interactive lane first) and sends them
//! concurrently. Both use [`WebhookSender`] and record every attempt. The sender classifies each answer once; this file only maps
//! that classification onto the outbox's state machine and the endpoint's health:
//!
//! | [`SendOutcome`] | [`Transition`] | endpoint |
//! |---|---|---|
//! | `Success` | `Delivered` | failure clock reset |
//! | `Retry` | `Retry` (`Retry-After` as hint, `throttled` as rate-limited) | failure clock runs; past `disable_after` disabled |
//! | `DontRetry` | `Failed` | unchanged (the endpoint answered; this payload is the problem) |
//! | `Gone` (410) | `Failed` | disabled at once |
//!
//! Disabling enqueues `endpoint_failing` e-mails (bank contacts and bureau contacts) through the same outbox,
//! so the notice itself is durable and retried. Messages for a disabled endpoint fail at once with
//! `endpoint_disabled`; an admin enables the endpoint ([`BankPusher::enable_endpoint`]) and retries them.
//!
//! The `webhook-id` is the outbox message id, so receivers dedupe retries and crash replays alike.

mod dispatch;
mod endpoints;

pub use endpoints::{Disabled, EndpointState, EndpointStore};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use crate::bank::{
    Delivery, Endpoint, SendError, SendOutcome, SenderConfig, WebhookSecret, WebhookSender,
};
use crate::config::{BankConfig, Config, WebhooksConfig};
use crate::ops::metrics::ATTEMPTS_TOTAL;
use crate::outbox::{
    Attempt, AttemptOutcome, Destination, DestinationKind, Lane, Message, NewMessage, Outbox,
    OutboxError, PolicyError, RetryPolicy, Transition,
};
use crate::store::StoreError;

/// What one step of a pusher did. Tests drive steps one at a time; `run` loops over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Nothing was due.
    Idle,
    /// This many messages were attempted (each attempt is recorded).
    Worked(usize),
}

/// Why a step could not run. Attempts that fail are not errors: they are recorded outcomes.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("endpoint state: {0}")]
    Store(#[from] StoreError),
    #[error("bank {code}: invalid webhook secret")]
    Secret { code: String },
    #[error("webhook sender: {0}")]
    Sender(#[from] SendError),
}

impl RelayError {
    /// Store trouble may pass (a full disk freed); a bad config does not.
    pub fn is_retryable(&self) -> bool {
        match self {
            RelayError::Outbox(_) | RelayError::Store(_) => true,
            RelayError::Secret { .. } | RelayError::Sender(_) => false,
        }
    }
}

/// One bank as the pusher needs it.
#[derive(Debug, Clone)]
pub struct BankTarget {
    pub code: String,
    pub name: String,
    pub account_id: String,
    /// `None` when the bank has no `webhook_url`: its events fail with a clear reason.
    pub endpoint: Option<Endpoint>,
    /// Told by e-mail when the endpoint is disabled.
    pub contacts: Vec<String>,
}

impl BankTarget {
    /// From config: the current secret signs first, the previous one (during a rotation) second.
    pub fn from_config(bank: &BankConfig) -> Result<Self, RelayError> {
        let parse = |s: &secrecy::SecretString| {
            s.expose_secret()
                .parse::<WebhookSecret>()
                .map_err(|_| RelayError::Secret {
                    code: bank.code.clone(),
                })
        };
        let mut secrets = Vec::new();
        for secret in [&bank.webhook_secret, &bank.webhook_secret_previous]
            .into_iter()
            .flatten()
        {
            secrets.push(parse(secret)?);
        }
        let endpoint = bank
            .webhook_url
            .clone()
            .map(|url| Endpoint { url, secrets });
        Ok(BankTarget {
            code: bank.code.clone(),
            name: bank.name.clone(),
            account_id: bank.account_id.clone(),
            endpoint,
            contacts: bank.contacts.clone(),
        })
    }
}

/// Pusher settings.
#[derive(Debug, Clone)]
pub struct BankPusherSettings {
    /// Deliveries in flight at once (one step claims at most this many).
    pub concurrency: usize,
    /// Deliveries in flight at once to one bank's endpoint (the running loop; a step ignores it), so a slow
    /// endpoint holds only its own slots.
    pub per_endpoint: usize,
    /// Continuous failure after which an endpoint is disabled.
    pub disable_after: Duration,
    /// How often an idle pusher looks for retries that became due (a wake-up comes sooner).
    pub poll_interval: Duration,
    /// Bureau staff told when an endpoint is disabled.
    pub bureau_contacts: Vec<String>,
}

impl Default for BankPusherSettings {
    fn default() -> Self {
        BankPusherSettings {
            concurrency: 8,
            per_endpoint: 4,
            disable_after: crate::bank::DEFAULT_DISABLE_AFTER,
            poll_interval: Duration::from_secs(1),
            bureau_contacts: Vec::new(),
        }
    }
}

/// Delivers bank events. Cheap to clone.
#[derive(Clone)]
pub struct BankPusher {
    inner: Arc<Inner>,
}

struct Inner {
    outbox: Outbox,
    sender: WebhookSender,
    banks: HashMap<String, BankTarget>,
    endpoints: EndpointStore,
    settings: BankPusherSettings,
    wake: Notify,
}

/// The retry policy of bank (and e-mail) messages from `[webhooks]`: the schedule as configured, a 60 s floor
/// after 429s and timeouts, `Retry-After` honoured up to the longest step, and a maximum age that lets every
/// scheduled attempt happen (plus the jitter).
pub fn webhook_retry_policy(webhooks: &WebhooksConfig) -> Result<RetryPolicy, PolicyError> {
    let steps = webhooks.max_attempts.saturating_sub(1) as usize;
    let last = webhooks.retry_schedule.last().copied().unwrap_or_default();
    let total: Duration = (0..steps)
        .map(|i| webhooks.retry_schedule.get(i).copied().unwrap_or(last))
        .sum();
    RetryPolicy::new(
        webhooks.retry_schedule.clone(),
        webhooks.jitter,
        webhooks.max_attempts,
        total.mul_f64(1.0 + webhooks.jitter) + Duration::from_secs(3600),
        Duration::from_secs(60),
        last.max(Duration::from_secs(60)),
    )
}

impl BankPusher {
    /// The pusher as the daemon runs it: every configured bank, `[webhooks]` settings, the bureau contacts of
    /// `[notifications]`.
    pub fn from_config(outbox: Outbox, config: &Config) -> Result<Self, RelayError> {
        let sender = WebhookSender::new(SenderConfig {
            timeout: config.webhooks.timeout,
            policy: config.webhooks.url_policy,
            proxy: config.webhooks.proxy.clone(),
            ..SenderConfig::default()
        })?;
        let banks = config
            .banks
            .iter()
            .map(BankTarget::from_config)
            .collect::<Result<Vec<_>, _>>()?;
        let settings = BankPusherSettings {
            disable_after: config.webhooks.disable_after,
            bureau_contacts: config.notifications.bureau_contacts.clone(),
            ..BankPusherSettings::default()
        };
        Self::new(outbox, sender, banks, settings)
    }

    pub fn new(
        outbox: Outbox,
        sender: WebhookSender,
        banks: Vec<BankTarget>,
        settings: BankPusherSettings,
    ) -> Result<Self, RelayError> {
        let endpoints = EndpointStore::open(outbox.store())?;
        Ok(BankPusher {
            inner: Arc::new(Inner {
                outbox,
                sender,
                banks: banks.into_iter().map(|b| (b.code.clone(), b)).collect(),
                endpoints,
                settings: BankPusherSettings {
                    concurrency: settings.concurrency.max(1),
                    per_endpoint: settings.per_endpoint.max(1),
                    ..settings
                },
                wake: Notify::new(),
            }),
        })
    }

    /// Wakes an idle `run` loop (a producer just enqueued a bank event).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The persisted endpoint state of a bank.
    pub async fn endpoint_state(&self, code: &str) -> Result<EndpointState, RelayError> {
        Ok(self.inner.endpoints.get(code).await?)
    }

    /// Re-enables a disabled endpoint (admin API). Returns whether it was disabled. Messages that failed
    /// with `endpoint_disabled` stay failed until an admin retries them.
    pub async fn enable_endpoint(&self, code: &str) -> Result<bool, RelayError> {
        let was = self.inner.endpoints.enable(code).await?;
        if was {
            tracing::info!(bank = code, "webhook endpoint enabled by an admin");
        }
        Ok(was)
    }

    /// One step: claim due bank messages and attempt each once, concurrently.
    #[tracing::instrument(name = "bank_pusher_step", skip_all)]
    pub async fn try_execute_task(&self) -> Result<StepOutcome, RelayError> {
        let max = self.inner.settings.concurrency;
        let claimed = self.claim(max).await?;
        super::worker::attempt_all(claimed, max, |m| self.deliver(m)).await
    }

    /// Claims up to `max` due bank messages, the interactive lane first.
    async fn claim(&self, max: usize) -> Result<Vec<Message>, RelayError> {
        let now = self.inner.outbox.now();
        let timeout = self.inner.sender.timeout();
        let outbox = &self.inner.outbox;
        let mut claimed = outbox
            .claim_due(Lane::Interactive, DestinationKind::Bank, max, now, timeout)
            .await?;
        if claimed.len() < max {
            let rest = max - claimed.len();
            claimed.extend(
                outbox
                    .claim_due(Lane::Bulk, DestinationKind::Bank, rest, now, timeout)
                    .await?,
            );
        }
        Ok(claimed)
    }

    /// One attempt on one claimed message, recorded.
    async fn deliver(&self, message: Message) -> Result<(), RelayError> {
        let started_at = Utc::now();
        let clock = Instant::now();
        let (code, event) = match &message.destination {
            Destination::Bank { endpoint, event } => (endpoint.clone(), event.clone()),
            other => {
                let reason = format!("not a bank message ({:?})", other.kind());
                return self
                    .fail(&message, started_at, "wrong_destination", &reason, None)
                    .await;
            }
        };
        let Some(bank) = self.inner.banks.get(&code) else {
            let reason = format!("no bank with code {code} is configured");
            return self
                .fail(&message, started_at, "unknown_bank", &reason, Some(&code))
                .await;
        };
        let Some(endpoint) = &bank.endpoint else {
            let reason = format!("bank {code} has no webhook_url");
            return self
                .fail(&message, started_at, "no_webhook_url", &reason, Some(&code))
                .await;
        };
        if let Some(disabled) = self.inner.endpoints.get(&code).await?.disabled {
            let reason = format!("endpoint disabled: {}", disabled.reason);
            return self
                .fail(
                    &message,
                    started_at,
                    "endpoint_disabled",
                    &reason,
                    Some(&code),
                )
                .await;
        }
        let delivery = Delivery {
            webhook_id: message.id.to_string(),
            event_type: event,
            payload: message.payload.clone(),
            timestamp: Some(message.created_at),
        };
        let outcome = match self.inner.sender.send(endpoint, &delivery).await {
            Ok(outcome) => outcome,
            Err(e) => {
                return self
                    .fail(
                        &message,
                        started_at,
                        "send_error",
                        &e.to_string(),
                        Some(&code),
                    )
                    .await;
            }
        };
        let now = Utc::now();
        let latency_ms = clock.elapsed().as_millis() as u64;
        let status = outcome.status();
        let (transition, attempt_outcome, label, error_code, text) = match &outcome {
            SendOutcome::Success { .. } => {
                self.inner.endpoints.record_success(&code, now).await?;
                let t = Transition::Delivered { remote_id: None };
                (t, AttemptOutcome::Success, "success", None, None)
            }
            SendOutcome::Retry {
                reason,
                retry_after,
                throttled,
                excerpt,
                ..
            } => {
                if let Some(disabled) = self
                    .inner
                    .endpoints
                    .record_failure(&code, now, self.inner.settings.disable_after)
                    .await?
                {
                    self.endpoint_disabled(bank, &disabled).await?;
                }
                let t = Transition::Retry {
                    hint: *retry_after,
                    rate_limited: *throttled,
                };
                let (o, label) = if *throttled {
                    (AttemptOutcome::RateLimited, "throttled")
                } else {
                    (AttemptOutcome::Retryable, "retry")
                };
                (t, o, label, Some("retry"), Some(summary(reason, excerpt)))
            }
            SendOutcome::DontRetry {
                reason, excerpt, ..
            } => (
                Transition::Failed,
                AttemptOutcome::Permanent,
                "failed",
                Some("rejected"),
                Some(summary(reason, excerpt)),
            ),
            SendOutcome::Gone { excerpt } => {
                if let Some(disabled) = self
                    .inner
                    .endpoints
                    .disable(&code, now, "the endpoint answered 410 Gone")
                    .await?
                {
                    self.endpoint_disabled(bank, &disabled).await?;
                }
                (
                    Transition::Failed,
                    AttemptOutcome::Permanent,
                    "gone",
                    Some("gone"),
                    Some(summary("410 Gone", excerpt)),
                )
            }
        };
        let attempt = Attempt {
            started_at,
            finished_at: now,
            outcome: attempt_outcome,
            http_status: status,
            error_code: error_code.map(str::to_owned),
            message: text,
            latency_ms,
        };
        let recorded = self
            .inner
            .outbox
            .record_attempt(&message, attempt, transition)
            .await?;
        metrics::counter!(ATTEMPTS_TOTAL, "destination" => "bank", "outcome" => label).increment(1);
        tracing::info!(
            message_id = %message.id,
            bank = %code,
            outcome = label,
            http_status = status,
            latency_ms,
            state = ?recorded.state,
            "bank webhook attempt"
        );
        Ok(())
    }

    /// Records a permanent failure found before (or instead of) sending.
    async fn fail(
        &self,
        message: &Message,
        started_at: DateTime<Utc>,
        code: &str,
        reason: &str,
        bank: Option<&str>,
    ) -> Result<(), RelayError> {
        let attempt = Attempt {
            started_at,
            finished_at: Utc::now(),
            outcome: AttemptOutcome::Permanent,
            http_status: None,
            error_code: Some(code.to_owned()),
            message: Some(reason.to_owned()),
            latency_ms: 0,
        };
        self.inner
            .outbox
            .record_attempt(message, attempt, Transition::Failed)
            .await?;
        metrics::counter!(ATTEMPTS_TOTAL, "destination" => "bank", "outcome" => code.to_owned())
            .increment(1);
        tracing::warn!(message_id = %message.id, bank, error_code = code, reason, "bank message failed");
        Ok(())
    }

    /// Tells the bank's contacts and the bureau, through the outbox, that an endpoint was disabled.
    async fn endpoint_disabled(
        &self,
        bank: &BankTarget,
        disabled: &Disabled,
    ) -> Result<(), RelayError> {
        tracing::warn!(bank = %bank.code, reason = %disabled.reason, "webhook endpoint disabled");
        let url = bank
            .endpoint
            .as_ref()
            .map(|e| e.url.to_string())
            .unwrap_or_default();
        let recipients = bank
            .contacts
            .iter()
            .chain(&self.inner.settings.bureau_contacts);
        for to in recipients {
            self.inner.outbox.enqueue(NewMessage {
                tenant: bank.account_id.clone(),
                lane: Lane::Interactive,
                destination: Destination::Email {
                    to: to.clone(),
                    template: "endpoint_failing".into(),
                },
                payload: serde_json::json!({
                    "bank_name": bank.name,
                    "bank_code": bank.code,
                    "endpoint_url": url,
                    "reason": disabled.reason,
                    "disabled_at": disabled.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }),
                mapping_version: None,
            })
            .await?;
        }
        Ok(())
    }
}

/// The attempt log's text: the reason and a short excerpt of what the receiver said (never our payload).
fn summary(reason: &str, excerpt: &str) -> String {
    let excerpt: String = excerpt.chars().take(200).collect();
    if excerpt.is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}: {excerpt}")
    }
}
