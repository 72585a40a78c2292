//! `[webhooks]`, `[notifications]` and `webhook_secret_previous`: loading, validation, and what the relay
//! builds from them.

use std::time::Duration;

use creditlink::bank::{Endpoint, WebhookSecret};
use creditlink::config::{DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS, StartTls};
use creditlink::outbox::State;
use creditlink::relay::bank::{BankPusher, BankTarget, webhook_retry_policy};
use creditlink::relay::email::EmailPusher;

use super::bank_relay_support::{Harness, SLUG, fast_policy};
use super::config_support::{ConfigDir, SECRET_FILES, VALID, VALID_ENV};

#[test]
fn defaults_follow_svix_and_notifications_stay_off_without_a_host() {
    let config = ConfigDir::valid().load(VALID_ENV).expect("valid config");
    let w = &config.webhooks;
    let expected: Vec<_> = DEFAULT_WEBHOOK_RETRY_SCHEDULE_MS
        .iter()
        .map(|&ms| Duration::from_millis(ms))
        .collect();
    assert_eq!(w.retry_schedule, expected);
    assert_eq!(w.jitter, 0.2);
    assert_eq!(w.max_attempts, 8);
    assert_eq!(w.timeout, Duration::from_secs(15));
    assert_eq!(w.disable_after, Duration::from_secs(120 * 3600));
    let n = &config.notifications;
    assert!(!n.enabled);
    assert_eq!(n.smtp_port, 587);
    assert_eq!(n.starttls, StartTls::Required);

    let policy = webhook_retry_policy(w).expect("valid policy");
    assert_eq!(policy.max_attempts(), 8);
    assert_eq!(policy.base_delay(1), Duration::from_secs(5));
    assert!(policy.max_age() > Duration::from_secs(28 * 3600));
    assert!(
        EmailPusher::from_config(open_outbox().1, n)
            .expect("no error")
            .is_none()
    );
}

#[test]
fn plain_http_webhooks_are_refused_unless_allowed() {
    let toml = VALID.replace("allow_http = true", "allow_http = false");
    let errors = ConfigDir::new(&toml, SECRET_FILES)
        .load(VALID_ENV)
        .expect_err("http refused");
    assert!(
        errors
            .problems()
            .iter()
            .any(|p| p.message.contains("'webhook_url' of bank DBA")
                && p.message.contains("https only")),
        "{errors}"
    );
}

#[test]
fn notification_settings_are_validated_together() {
    let toml = format!(
        "{VALID}\n[notifications]\nenabled = true\nstarttls = \"sometimes\"\n\
         smtp_username = {{ env = \"SMTP_USER\" }}\nbureau_contacts = [\"not-an-address\"]\n"
    );
    let mut env = VALID_ENV.to_vec();
    env.push(("SMTP_USER", "mailer"));
    let errors = ConfigDir::new(&toml, SECRET_FILES)
        .load(&env)
        .expect_err("invalid");
    let text = errors.to_string();
    for fragment in [
        "notifications need 'smtp_host'",
        "\"sometimes\"",
        "smtp_password",
        "not-an-address",
    ] {
        assert!(text.contains(fragment), "missing {fragment:?} in:\n{text}");
    }
}

#[test]
fn a_rotating_secret_signs_twice_and_the_pusher_builds_from_config() {
    let previous = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let toml = VALID.replace(
        "webhook_secret = { file = \"hook_secret\" }",
        "webhook_secret = { file = \"hook_secret\" }\nwebhook_secret_previous = { env = \"OLD_HOOK_SECRET\" }",
    );
    let mut env = VALID_ENV.to_vec();
    env.push(("OLD_HOOK_SECRET", previous));
    let config = ConfigDir::new(&toml, SECRET_FILES)
        .load(&env)
        .expect("valid config");
    let target = BankTarget::from_config(&config.banks[0]).expect("target");
    assert_eq!(target.endpoint.expect("endpoint").secrets.len(), 2);
    let (_dir, outbox) = open_outbox();
    BankPusher::from_config(outbox, &config).expect("pusher from config");
}

#[tokio::test]
async fn a_receiver_that_still_holds_the_previous_secret_accepts_deliveries() {
    let h = Harness::start(fast_policy(20, 3)).await;
    let mut target = h.target(h.receivers.url_for(SLUG));
    // The receiver knows only `h.secret`; the bank's config now has a new current secret.
    target.endpoint = Some(Endpoint {
        url: h.receivers.url_for(SLUG),
        secrets: vec![WebhookSecret::generate(), h.secret.clone()],
    });
    let sender = creditlink::bank::WebhookSender::new(creditlink::bank::SenderConfig {
        policy: creditlink::bank::UrlPolicy {
            allow_http: true,
            allow_private: true,
        },
        ..Default::default()
    })
    .expect("sender");
    let pusher = BankPusher::new(h.outbox.clone(), sender, vec![target], Default::default())
        .expect("pusher");
    let id = h.enqueue_event("report_request.updated", 1).await;
    pusher.try_execute_task().await.expect("step");
    assert_eq!(h.message(id).await.state, State::Delivered);
    assert_eq!(h.receivers.inbox(SLUG).expect("bank").events.len(), 1);
}

fn open_outbox() -> (tempfile::TempDir, creditlink::outbox::Outbox) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        creditlink::store::Store::open(dir.path(), creditlink::store::Durability::GroupCommit)
            .expect("store");
    let outbox = creditlink::outbox::Outbox::open(store, Default::default()).expect("outbox");
    (dir, outbox)
}
