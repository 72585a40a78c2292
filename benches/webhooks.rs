//! Webhook delivery throughput: the real `BankPusher` (signing, HTTP, outbox transitions, attempt log) draining
//! bank events to a local receiver, with no failures and with 20 % of attempts answered 500.
//!
//! Run: `cargo bench --bench webhooks` (`BENCH_EVENTS=3000` by default). Prints one line per scenario. The
//! receiver runs in the same process on 127.0.0.1; the retry schedule is shortened (0, 20, 50, 100 ms ...) so the
//! failure run measures throughput, not Svix's production waits.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use creditlink::bank::{Endpoint, SenderConfig, UrlPolicy, WebhookSecret, WebhookSender};
use creditlink::outbox::{
    Destination, DestinationKind, Lane, NewMessage, Outbox, OutboxOptions, RetryPolicy,
    State as MsgState,
};
use creditlink::relay::bank::{BankPusher, BankPusherSettings, BankTarget};
use creditlink::store::{Durability, Store};
use parking_lot::Mutex;
use rand::RngExt;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Receiver {
    fail_rate: f64,
    attempts: Arc<AtomicU64>,
    seen: Arc<Mutex<HashSet<String>>>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap) -> StatusCode {
    r.attempts.fetch_add(1, Ordering::Relaxed);
    if rand::rng().random::<f64>() < r.fail_rate {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        r.seen.lock().insert(id.to_owned());
    }
    StatusCode::OK
}

async fn scenario(events: usize, fail_rate: f64) -> anyhow::Result<()> {
    let receiver = Receiver {
        fail_rate,
        attempts: Arc::default(),
        seen: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks/bench", listener.local_addr()?);
    let app = Router::new()
        .route("/hooks/bench", post(hook))
        .with_state(receiver.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), Durability::GroupCommit)?;
    let ms = Duration::from_millis;
    let policy = RetryPolicy::new(
        vec![ms(0), ms(20), ms(50), ms(100), ms(200), ms(400)],
        0.2,
        30,
        Duration::from_secs(3600),
        ms(50),
        ms(500),
    )?;
    let outbox = Outbox::open_with_policies(
        store,
        policy.clone(),
        [(DestinationKind::Bank, policy)].into_iter().collect(),
        OutboxOptions::default(),
    )?;
    let target = BankTarget {
        code: "DBA".into(),
        name: "Bench Bank".into(),
        account_id: "0015Y00000BANKAQA5".into(),
        endpoint: Some(Endpoint {
            url: url.parse()?,
            secrets: vec![WebhookSecret::generate()],
        }),
        contacts: Vec::new(),
    };
    let sender = WebhookSender::new(SenderConfig {
        policy: UrlPolicy {
            allow_http: true,
            allow_private: true,
        },
        ..SenderConfig::default()
    })?;
    let settings = BankPusherSettings {
        concurrency: 32,
        per_endpoint: 32,
        poll_interval: ms(10),
        ..BankPusherSettings::default()
    };
    let pusher = BankPusher::new(outbox.clone(), sender, vec![target], settings)?;
    for i in 0..events {
        outbox.enqueue(NewMessage {
            tenant: "0015Y00000BANKAQA5".into(),
            lane: Lane::Interactive,
            destination: Destination::Bank { endpoint: "DBA".into(), event: "report_request.completed".into() },
            payload: serde_json::json!({ "id": format!("bench-{i}"), "status": "completed",
                                         "report": { "url": "https://example.invalid/r", "sha256": "00", "size": 1 } }),
            mapping_version: None,
        }).await?;
    }

    let stop = CancellationToken::new();
    let started = Instant::now();
    let run = tokio::spawn(pusher.run(stop.clone(), creditlink::ops::Heartbeat::new()));
    let deadline = started + Duration::from_secs(300);
    while outbox.counts().await?.get(MsgState::Delivered) < events as u64 {
        anyhow::ensure!(Instant::now() < deadline, "not drained within 300 s");
        tokio::time::sleep(ms(20)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = run.await;
    server.abort();
    let attempts = receiver.attempts.load(Ordering::Relaxed);
    let unique = receiver.seen.lock().len();
    println!(
        "webhooks fail_rate={:>3.0}%: {events} events delivered in {:.2} s = {:.0} deliveries/s; {attempts} HTTP attempts ({:.2} per event); {unique} unique webhook-ids accepted",
        fail_rate * 100.0,
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        attempts as f64 / events as f64,
    );
    anyhow::ensure!(unique == events, "every event accepted exactly once by id");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        scenario(events, 0.0).await?;
        scenario(events, 0.2).await
    })
}
