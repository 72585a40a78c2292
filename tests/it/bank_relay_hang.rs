//! A bank endpoint that hangs holds only its own delivery slots: another bank's webhooks go out meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use creditlink::bank::{Endpoint, SenderConfig, UrlPolicy, WebhookSender};
use creditlink::outbox::{Destination, Lane, NewMessage, State};
use creditlink::relay::bank::{BankPusher, BankPusherSettings, BankTarget};

use super::bank_relay_support::{BUREAU_CONTACT, Harness, fast_policy, until};

const HUNG: &str = "HNG";

/// A webhook receiver that accepts connections and never answers; counts the connections (each hanging send
/// holds one).
async fn hanging_receiver() -> (url::Url, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let url = url::Url::parse(&format!("http://{addr}/hooks")).expect("url");
    (url, accepted, task)
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_hold_up_another_banks_webhooks() {
    let h = Harness::start(fast_policy(20, 5)).await;
    let (hung_url, connections, receiver) = hanging_receiver().await;
    let hung = BankTarget {
        code: HUNG.into(),
        name: "Hanging Bank".into(),
        account_id: "0015Y00000HANGSQA5".into(),
        endpoint: Some(Endpoint {
            url: hung_url,
            secrets: vec![h.secret.clone()],
        }),
        contacts: Vec::new(),
    };
    let sender = WebhookSender::new(SenderConfig {
        // Far longer than the test waits for the other bank (and below the outbox lease, as it must be).
        timeout: Duration::from_secs(25),
        policy: UrlPolicy {
            allow_http: true,
            allow_private: true,
        },
        ..SenderConfig::default()
    })
    .expect("sender");
    let pusher = BankPusher::new(
        h.outbox.clone(),
        sender,
        vec![
            h.target(h.receivers.url_for(super::bank_relay_support::SLUG)),
            hung,
        ],
        BankPusherSettings {
            concurrency: 4,
            per_endpoint: 2,
            disable_after: Duration::from_secs(86_400),
            poll_interval: Duration::from_millis(20),
            bureau_contacts: vec![BUREAU_CONTACT.into()],
        },
    )
    .expect("pusher");
    // The hanging bank's events are queued first, more of them than the pusher sends at once.
    for n in 0..8 {
        h.outbox
            .enqueue(NewMessage {
                tenant: "0015Y00000HANGSQA5".into(),
                lane: Lane::Interactive,
                destination: Destination::Bank {
                    endpoint: HUNG.into(),
                    event: "report_request.updated".into(),
                },
                payload: serde_json::json!({ "request_id": format!("hung-{n}") }),
                mapping_version: None,
            })
            .await
            .expect("enqueue");
    }
    let other = h.enqueue_event("report_request.completed", 1).await;

    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(
        pusher
            .clone()
            .run(shutdown.clone(), creditlink::ops::Heartbeat::new()),
    );
    until(
        Duration::from_secs(10),
        "the other bank's event delivered",
        || async { (h.message(other).await.state == State::Delivered).then_some(()) },
    )
    .await;
    // The hanging bank is still waiting on its sends, at most two at a time; none of its events was delivered
    // or charged an attempt for being released.
    let hung_messages: Vec<_> = h
        .outbox
        .list(&creditlink::outbox::ListFilter {
            tenant: Some("0015Y00000HANGSQA5".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(hung_messages.len(), 8);
    assert!(hung_messages.iter().all(|m| m.state != State::Delivered));
    let sends = connections.load(Ordering::SeqCst);
    assert!(sends <= 2, "{sends} sends to the hanging bank at once");
    for m in &hung_messages {
        assert!(h.outbox.attempts(m.id).await.expect("attempts").is_empty());
    }
    running.abort();
    receiver.abort();
}
