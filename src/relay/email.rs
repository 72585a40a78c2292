//! The e-mail pusher: drains `Email` messages from the outbox through an SMTP relay.
//!
//! Same shape as the bank pusher: a step claims due messages, sends each once and records the attempt.
//! Classification of what went wrong:
//!
//! | Failure | Transition | Why |
//! |---|---|---|
//! | unknown template, missing variable, bad address | `Failed` | the same message fails the same way every time |
//! | SMTP 5xx (permanent negative reply) | `Failed` | the server refused this mail for good (no such mailbox, policy) |
//! | SMTP 4xx (transient negative reply) | `Retry` | greylisting, a full mailbox, a busy server |
//! | connection, TLS, timeout | `Retry` | the relay is unreachable for now |
//!
//! Recipient addresses are personal data: logs show them masked (`m***@bank.example`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::bank::{RelayError, StepOutcome};
use crate::config::{NotificationsConfig, StartTls};
use crate::notify::{Template, build_message, mask_address};
use crate::ops::Heartbeat;
use crate::ops::metrics::ATTEMPTS_TOTAL;
use crate::outbox::{
    Attempt, AttemptOutcome, Destination, DestinationKind, Lane, Message, Outbox, Transition,
};

/// Why the SMTP transport could not be built from config.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("notifications are enabled but no smtp_host is set")]
    NoHost,
    #[error("TLS settings for {host}: {source}")]
    Tls {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

/// Pusher settings.
#[derive(Debug, Clone)]
pub struct EmailPusherSettings {
    /// The `From` address.
    pub from: String,
    /// Mails in flight at once.
    pub concurrency: usize,
    /// How often an idle pusher looks for retries that became due.
    pub poll_interval: Duration,
}

/// Sends notification e-mails. Cheap to clone.
#[derive(Clone)]
pub struct EmailPusher {
    inner: Arc<Inner>,
}

struct Inner {
    outbox: Outbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    settings: EmailPusherSettings,
    wake: Notify,
}

/// The SMTP transport's timeout: the longest one attempt can take (the outbox lease must be longer).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the SMTP transport: STARTTLS required unless the config says otherwise, a 30 s timeout.
pub fn smtp_transport(
    config: &NotificationsConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailerError> {
    let host = config.smtp_host.clone().ok_or(MailerError::NoHost)?;
    let tls_params = || {
        TlsParameters::new(host.clone()).map_err(|source| MailerError::Tls {
            host: host.clone(),
            source,
        })
    };
    let tls = match config.starttls {
        StartTls::Required => Tls::Required(tls_params()?),
        StartTls::Opportunistic => Tls::Opportunistic(tls_params()?),
        StartTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
        .port(config.smtp_port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(password)) = (&config.smtp_username, &config.smtp_password) {
        builder = builder.credentials(Credentials::new(
            user.expose_secret().to_owned(),
            password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}

impl EmailPusher {
    /// The pusher as the daemon runs it, or `None` when notifications are disabled (e-mails then wait in
    /// the outbox until they are enabled).
    pub fn from_config(
        outbox: Outbox,
        config: &NotificationsConfig,
    ) -> Result<Option<Self>, MailerError> {
        if !config.enabled {
            return Ok(None);
        }
        let settings = EmailPusherSettings {
            from: config.from.clone(),
            concurrency: 4,
            poll_interval: Duration::from_secs(1),
        };
        Ok(Some(Self::new(outbox, smtp_transport(config)?, settings)))
    }

    pub fn new(
        outbox: Outbox,
        transport: AsyncSmtpTransport<Tokio1Executor>,
        settings: EmailPusherSettings,
    ) -> Self {
        EmailPusher {
            inner: Arc::new(Inner {
                outbox,
                transport,
                settings: EmailPusherSettings {
                    concurrency: settings.concurrency.max(1),
                    ..settings
                },
                wake: Notify::new(),
            }),
        }
    }

    /// Wakes an idle `run` loop.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// One step: claim due e-mails and attempt each once, concurrently.
    #[tracing::instrument(name = "email_pusher_step", skip_all)]
    pub async fn try_execute_task(&self) -> Result<StepOutcome, RelayError> {
        let max = self.inner.settings.concurrency;
        let outbox = &self.inner.outbox;
        let claimed = outbox
            .claim_due(
                Lane::Interactive,
                DestinationKind::Email,
                max,
                outbox.now(),
                SMTP_TIMEOUT,
            )
            .await?;
        super::worker::attempt_all(claimed, max, |m| self.deliver(m)).await
    }

    /// Runs steps until `shutdown`; stops between steps, never mid-send.
    pub async fn run(self, shutdown: CancellationToken, heartbeat: Heartbeat) {
        let poll = self.inner.settings.poll_interval;
        super::worker::drive(
            "e-mail pusher",
            || self.try_execute_task(),
            &self.inner.wake,
            poll,
            shutdown,
            heartbeat,
        )
        .await;
    }

    async fn deliver(&self, message: Message) -> Result<(), RelayError> {
        let started_at = Utc::now();
        let clock = Instant::now();
        let (transition, outcome, code, text, masked, template) = match self.send(&message).await {
            Ok((masked, template)) => (
                Transition::Delivered { remote_id: None },
                AttemptOutcome::Success,
                None,
                None,
                masked,
                template,
            ),
            Err(failure) => {
                let (t, o) = if failure.retry {
                    let t = Transition::Retry {
                        hint: None,
                        rate_limited: false,
                    };
                    (t, AttemptOutcome::Retryable)
                } else {
                    (Transition::Failed, AttemptOutcome::Permanent)
                };
                (
                    t,
                    o,
                    Some(failure.code),
                    Some(failure.text),
                    failure.masked,
                    failure.template,
                )
            }
        };
        let label = match outcome {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Permanent => "failed",
            _ => "retry",
        };
        let attempt = Attempt {
            started_at,
            finished_at: Utc::now(),
            outcome,
            http_status: None,
            error_code: code.clone(),
            message: text,
            latency_ms: clock.elapsed().as_millis() as u64,
        };
        let recorded = self
            .inner
            .outbox
            .record_attempt(&message, attempt, transition)
            .await?;
        metrics::counter!(ATTEMPTS_TOTAL, "destination" => "email", "outcome" => label)
            .increment(1);
        tracing::info!(
            message_id = %message.id,
            to = %masked,
            template = %template,
            outcome = label,
            error_code = code.as_deref(),
            state = ?recorded.state,
            "notification e-mail attempt"
        );
        Ok(())
    }

    /// Renders, builds and sends one mail; returns the masked recipient and the template name.
    async fn send(&self, message: &Message) -> Result<(String, String), Failure> {
        let Destination::Email { to, template } = &message.destination else {
            return Err(Failure::permanent(
                "wrong_destination",
                "not an e-mail message".into(),
                String::new(),
                String::new(),
            ));
        };
        let masked = mask_address(to);
        let permanent = |code: &'static str, e: &dyn std::fmt::Display| {
            Failure::permanent(code, e.to_string(), masked.clone(), template.clone())
        };
        let kind: Template = template.parse().map_err(|e| permanent("template", &e))?;
        let rendered = kind
            .render(&message.payload)
            .map_err(|e| permanent("template", &e))?;
        let mail = build_message(&self.inner.settings.from, to, rendered)
            .map_err(|e| permanent("address", &e))?;
        match self.inner.transport.send(mail).await {
            Ok(_) => Ok((masked, template.clone())),
            Err(e) => Err(classify_smtp(&e, masked, template.clone())),
        }
    }
}

/// A failed attempt, classified.
struct Failure {
    retry: bool,
    code: String,
    text: String,
    masked: String,
    template: String,
}

impl Failure {
    fn permanent(code: &str, text: String, masked: String, template: String) -> Self {
        Failure {
            retry: false,
            code: code.to_owned(),
            text,
            masked,
            template,
        }
    }
}

/// SMTP 5xx is permanent; 4xx and everything below the protocol (connection, TLS, timeout) is retried.
fn classify_smtp(e: &lettre::transport::smtp::Error, masked: String, template: String) -> Failure {
    let status = e.status().map(u16::from);
    let text: String = e.to_string().chars().take(200).collect();
    let (retry, code) = if e.is_permanent() {
        (false, format!("smtp_{}", status.unwrap_or(500)))
    } else if e.is_transient() {
        (true, format!("smtp_{}", status.unwrap_or(400)))
    } else if e.is_timeout() {
        (true, "smtp_timeout".to_owned())
    } else if e.is_tls() {
        (true, "smtp_tls".to_owned())
    } else {
        (true, "smtp_connection".to_owned())
    };
    Failure {
        retry,
        code,
        text,
        masked,
        template,
    }
}
