//! `[webhooks]` and `[notifications]`: how bank events are delivered (Standard Webhooks, Svix's retry
//! schedule) and how notification e-mails leave the daemon (SMTP).

use std::time::Duration;

use secrecy::SecretString;

use super::banks::BankConfig;
use super::problem::Problem;
use super::reader::{self, Ctx, HOUR, MS, Section};
use crate::bank::UrlPolicy;

/// `[webhooks]`: the retry schedule and limits of deliveries to banks.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// Delay before each retry (the first attempt is immediate): Svix's 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
    /// 10 h. A bank's outage of a day is ridden out without anyone touching anything.
    pub retry_schedule: Vec<Duration>,
    /// Each delay is scaled by a random factor in `1 ± jitter`.
    pub jitter: f64,
    /// Attempts before a message is `dead` (Svix: 8, about 27.6 hours).
    pub max_attempts: u32,
    /// Whole-attempt timeout (the spec recommends 15-30 s).
    pub timeout: Duration,
    /// An endpoint failing continuously this long is disabled and its contacts are told (Svix: 5 days).
    pub disable_after: Duration,
    /// The SSRF policy for webhook URLs; both switches are for the sandbox and local runs only.
    pub url_policy: UrlPolicy,
    /// An explicit egress proxy for webhooks. Without one, webhooks never use a proxy, whatever
    /// `HTTPS_PROXY`/`HTTP_PROXY` say: a proxy resolves and connects on its own, past the SSRF check.
    pub proxy: Option<url::Url>,
}

/// `[notifications]`: the SMTP relay notification e-mails go through.
#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// Off unless an SMTP host is configured: e-mails then stay queued rather than fail.
    pub enabled: bool,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub starttls: StartTls,
    pub smtp_username: Option<SecretString>,
    pub smtp_password: Option<SecretString>,
    /// The `From` address of every notification.
    pub from: String,
    /// Bureau staff told when a bank's endpoint is disabled.
    pub bureau_contacts: Vec<String>,
}

/// Whether the SMTP session must be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    /// STARTTLS or no mail: the default, since notifications carry request references.
    Required,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// Plain text: only for the local SMTP sink of the sandbox.
    None,
}

/// Svix's schedule after the immediate first attempt (Svix's documented retry schedule).
pub const DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS: [u64; 7] = [
    5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

pub(crate) fn read_webhooks(s: &mut Section<'_>) -> WebhooksConfig {
    let day_ms = 86_400_000;
    WebhooksConfig {
        retry_schedule: s.or(
            "retry_schedule_ms",
            DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            reader::list(true, reader::duration(MS, 0, day_ms)),
        ),
        jitter: s.or("jitter", 0.2, reader::fraction(0.0, 1.0)),
        max_attempts: s.or("max_attempts", 8, reader::integer(1, 1000)) as u32,
        timeout: s.or(
            "timeout_ms",
            Duration::from_secs(15),
            reader::duration(MS, 100, 60_000),
        ),
        disable_after: s.or(
            "disable_after_hours",
            120 * HOUR,
            reader::duration(HOUR, 1, 24 * 90),
        ),
        url_policy: UrlPolicy {
            allow_http: s.or("allow_http", false, boolean),
            allow_private: s.or("allow_private", false, boolean),
        },
        proxy: s.optional("proxy", reader::http_url),
    }
}

pub(crate) fn read_notifications(s: &mut Section<'_>) -> NotificationsConfig {
    let secret = reader::secret(s.ctx());
    let smtp_host = s.optional("smtp_host", reader::non_empty);
    let notifications = NotificationsConfig {
        enabled: s.or("enabled", smtp_host.is_some(), boolean),
        smtp_port: s.or("smtp_port", 587, reader::integer(1, 65535)) as u16,
        starttls: s.or(
            "starttls",
            StartTls::Required,
            reader::one_of(&[
                ("required", StartTls::Required),
                ("opportunistic", StartTls::Opportunistic),
                ("none", StartTls::None),
            ]),
        ),
        smtp_username: s.optional("smtp_username", &secret),
        smtp_password: s.optional("smtp_password", &secret),
        from: s.or("from", "creditlink@localhost".into(), email),
        bureau_contacts: s.or("bureau_contacts", Vec::new(), reader::list(false, email)),
        smtp_host,
    };
    if notifications.enabled && notifications.smtp_host.is_none() {
        s.invalid("enabled", "notifications need 'smtp_host'");
    }
    if notifications.smtp_username.is_some() != notifications.smtp_password.is_some() {
        s.invalid(
            "smtp_username",
            "set both smtp_username and smtp_password, or neither",
        );
    }
    notifications
}

/// Refuses webhook URLs the SSRF policy forbids, at load rather than at the first delivery.
pub(crate) fn check_webhook_urls(ctx: &Ctx<'_>, banks: &[BankConfig], webhooks: &WebhooksConfig) {
    for bank in banks {
        let Some(url) = &bank.webhook_url else {
            continue;
        };
        if let Err(e) = webhooks.url_policy.check_url(url) {
            ctx.report(Problem::in_file(
                ctx.source.path(),
                format!(
                    "'webhook_url' of bank {}: {e} (see [webhooks] allow_http / allow_private)",
                    bank.code
                ),
            ));
        }
    }
}

fn boolean(node: &super::tree::Node) -> Result<bool, String> {
    match &node.value {
        super::tree::Value::Boolean(b) => Ok(*b),
        other => Err(format!(
            "expected true or false, found {}",
            other.type_name()
        )),
    }
}

/// A plain `local@domain` address, without whitespace or header-breaking characters.
pub(crate) fn email(node: &super::tree::Node) -> Result<String, String> {
    let address = reader::non_empty(node)?;
    match address.split_once('@') {
        Some((user, domain))
            if !user.is_empty()
                && domain.contains('.')
                && !address.contains(|c: char| c.is_whitespace() || c.is_control()) =>
        {
            Ok(address)
        }
        _ if address.ends_with("@localhost") => Ok(address),
        _ => Err(format!("\"{address}\" is not an e-mail address")),
    }
}
