//! Shared set-up for the bank relay and e-mail tests: a temp store and outbox with fast retry policies,
//! the demo bank receivers and the SMTP sink on port 0, pushers built like the daemon builds them.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use creditlink::bank::{SenderConfig, UrlPolicy, WebhookSecret, WebhookSender};
use creditlink::config::{NotificationsConfig, StartTls};
use creditlink::outbox::{
    Destination, DestinationKind, Lane, Message, MessageId, NewMessage, Outbox, OutboxOptions,
    RetryPolicy,
};
use creditlink::relay::bank::{BankPusher, BankPusherSettings, BankTarget};
use creditlink::relay::email::{EmailPusher, EmailPusherSettings, smtp_transport};
use creditlink::sim::banks::{BankReceivers, spawn_bank_receivers_with_mail};
use creditlink::sim::smtp::{SmtpSink, spawn_smtp_sink};
use creditlink::store::{Durability, Store};
use tokio_util::sync::CancellationToken;

pub const ACCOUNT: &str = "0015Y00000BANKAQA5";
pub const CODE: &str = "DBA";
pub const SLUG: &str = "demo-bank-a";
pub const BANK_CONTACT: &str = "ops@bank-a.example";
pub const BUREAU_CONTACT: &str = "admin@bureau.example";

pub struct Harness {
    _dir: tempfile::TempDir,
    pub outbox: Outbox,
    pub receivers: BankReceivers,
    pub sink: SmtpSink,
    pub secret: WebhookSecret,
    pub shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A jitter-free policy: `step_ms` between attempts, no floor after 429, `Retry-After` up to an hour.
pub fn fast_policy(step_ms: u64, max_attempts: u32) -> RetryPolicy {
    RetryPolicy::new(
        vec![Duration::from_millis(step_ms)],
        0.0,
        max_attempts,
        Duration::from_secs(3600),
        Duration::ZERO,
        Duration::from_secs(3600),
    )
    .expect("valid policy")
}

impl Harness {
    pub async fn start(policy: RetryPolicy) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), Durability::GroupCommit).expect("store");
        let policies = HashMap::from([
            (DestinationKind::Bank, policy.clone()),
            (DestinationKind::Email, policy),
        ]);
        // The default policy is deliberately slow: if Bank or Email used it, tests would stall.
        let slow = RetryPolicy::new(
            vec![Duration::from_secs(3600)],
            0.0,
            3,
            Duration::from_secs(7200),
            Duration::ZERO,
            Duration::from_secs(3600),
        )
        .expect("valid policy");
        let outbox = Outbox::open_with_policies(store, slow, policies, OutboxOptions::default())
            .expect("outbox");
        let shutdown = CancellationToken::new();
        let sink = spawn_smtp_sink("127.0.0.1:0".parse().expect("addr"), shutdown.clone())
            .await
            .expect("smtp sink");
        let secret = WebhookSecret::generate();
        let receivers = spawn_bank_receivers_with_mail(
            "127.0.0.1:0".parse().expect("addr"),
            vec![(SLUG.to_owned(), secret.clone())],
            Some(sink.clone()),
            shutdown.clone(),
        )
        .await
        .expect("receivers");
        Harness {
            _dir: dir,
            outbox,
            receivers,
            sink,
            secret,
            shutdown,
        }
    }

    pub fn target(&self, url: url::Url) -> BankTarget {
        BankTarget {
            code: CODE.into(),
            name: "Demo Bank A".into(),
            account_id: ACCOUNT.into(),
            endpoint: Some(creditlink::bank::Endpoint {
                url,
                secrets: vec![self.secret.clone()],
            }),
            contacts: vec![BANK_CONTACT.into()],
        }
    }

    pub fn bank_pusher(&self, disable_after: Duration) -> BankPusher {
        let url = self.receivers.url_for(SLUG);
        self.bank_pusher_to(url, disable_after)
    }

    pub fn bank_pusher_to(&self, url: url::Url, disable_after: Duration) -> BankPusher {
        let sender = WebhookSender::new(SenderConfig {
            timeout: Duration::from_secs(10),
            policy: UrlPolicy {
                allow_http: true,
                allow_private: true,
            },
            ..SenderConfig::default()
        })
        .expect("sender");
        BankPusher::new(
            self.outbox.clone(),
            sender,
            vec![self.target(url)],
            BankPusherSettings {
                concurrency: 4,
                per_endpoint: 4,
                disable_after,
                poll_interval: Duration::from_millis(20),
                bureau_contacts: vec![BUREAU_CONTACT.into()],
            },
        )
        .expect("bank pusher")
    }

    pub fn email_pusher(&self) -> EmailPusher {
        let config = NotificationsConfig {
            enabled: true,
            smtp_host: Some("127.0.0.1".into()),
            smtp_port: self.sink.addr.port(),
            starttls: StartTls::None,
            smtp_username: None,
            smtp_password: None,
            from: "creditlink@bureau.example".into(),
            bureau_contacts: vec![BUREAU_CONTACT.into()],
        };
        EmailPusher::new(
            self.outbox.clone(),
            smtp_transport(&config).expect("transport"),
            EmailPusherSettings {
                from: config.from.clone(),
                concurrency: 4,
                poll_interval: Duration::from_millis(20),
            },
        )
    }

    pub async fn enqueue_event(&self, event: &str, n: u32) -> MessageId {
        self.outbox
            .enqueue(NewMessage {
                tenant: ACCOUNT.into(),
                lane: Lane::Interactive,
                destination: Destination::Bank {
                    endpoint: CODE.into(),
                    event: event.into(),
                },
                payload: serde_json::json!({ "request_id": format!("req-{n}"), "status": "Completed" }),
                mapping_version: None,
            }).await
            .expect("enqueue")
    }

    pub async fn message(&self, id: MessageId) -> Message {
        self.outbox.get(id).await.expect("get").expect("exists")
    }
}

/// Polls `check` every 10 ms until it returns `Some`, failing the test after `limit`.
pub async fn until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
