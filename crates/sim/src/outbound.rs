//! Outbound Messaging (reference §3.1): every create or update of a credit report request, by any user, queues a
//! notification that is POSTed to the configured listener as Salesforce does it.
//!
//! Delivery semantics reproduced: at-least-once (a message counts as delivered only on HTTP 200 with
//! `<Ack>true</Ack>`; anything else is retried per `retry_schedule`), notifications older than `max_age` are
//! dropped, each message carries the record's *latest* data at send time, several notifications due together
//! share one message (up to 100), and on demand duplicates (`duplicate_rate`) and out-of-order batches
//! (`reorder`). Retries are stored with a due time in the queue, never slept on per notification.
//!
//! Control: `GET /__sim/outbound` (counts and delivered ids), `POST /__sim/outbound/drop` (lose everything
//! queued for good), `POST /__sim/outbound/pause` and `/resume`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::routing::{get, post};
use axum::{Json, Router};
use quick_xml::events::Event;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::automation::{OutboundOptions, after};
use super::{AppState, envelope, ids};

/// Salesforce allows at most 100 notifications in one message.
const MAX_PER_MESSAGE: usize = 100;
/// Salesforce waits this long for the listener's answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a delivery attempt failed. Every kind is retried: Salesforce does not tell permanent failures apart.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("listener unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("listener answered HTTP {0}")]
    Status(u16),
    #[error("listener answered a SOAP fault: {0}")]
    Fault(String),
    #[error("listener did not acknowledge (Ack is {0:?})")]
    Nack(String),
    #[error("listener's answer is not a SOAP acknowledgement: {0}")]
    Malformed(String),
}

/// One queued notification.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The `04l` notification id: the receiver's dedupe key, the same on every retry and duplicate.
    pub notification_id: String,
    pub record_id: String,
    queued_at: Instant,
    due: Instant,
    failures: u32,
    /// A deliberate second delivery; never duplicated again.
    duplicate: bool,
}

/// The queue and its counters.
#[derive(Default)]
pub(crate) struct Outbound {
    inner: parking_lot::Mutex<Queue>,
    paused: AtomicBool,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    seq: u64,
    delivered: u64,
    dropped: u64,
    attempts: u64,
    failed_attempts: u64,
    /// One entry per acknowledged notification delivery, in order (a duplicate appears twice).
    delivered_ids: Vec<String>,
}

impl Outbound {
    /// Queue a notification about `record_id` when Outbound Messaging is configured.
    pub fn enqueue(&self, record_id: &str, opts: &super::AutomationOptions) {
        if opts.outbound.is_none() {
            return;
        }
        let now = Instant::now();
        let mut q = self.inner.lock();
        q.seq += 1;
        let notification_id = ids::generate("04l", q.seq);
        q.pending.push(Pending {
            notification_id,
            record_id: record_id.to_string(),
            queued_at: now,
            due: now,
            failures: 0,
            duplicate: false,
        });
        drop(q);
        self.wake();
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The `GET /__sim/outbound` body.
    pub fn stats_json(&self) -> Value {
        let q = self.inner.lock();
        json!({
            "queued": q.pending.len(), "delivered": q.delivered, "dropped": q.dropped,
            "attempts": q.attempts, "failed_attempts": q.failed_attempts,
            "paused": self.paused.load(Ordering::SeqCst), "delivered_ids": q.delivered_ids,
        })
    }

    fn next_due(&self) -> Option<Instant> {
        if self.paused.load(Ordering::SeqCst) {
            return None;
        }
        self.inner.lock().pending.iter().map(|p| p.due).min()
    }

    /// Remove what is due, dropping what is too old, grouped into messages.
    fn take_due(&self, now: Instant, opts: &OutboundOptions) -> Vec<Vec<Pending>> {
        let mut q = self.inner.lock();
        let (mut due, rest): (Vec<Pending>, Vec<Pending>) =
            q.pending.drain(..).partition(|p| p.due <= now);
        q.pending = rest;
        let before = due.len();
        due.retain(|p| now.duration_since(p.queued_at) < opts.max_age);
        q.dropped += (before - due.len()) as u64;
        drop(q);
        if !opts.reorder {
            return due
                .chunks(MAX_PER_MESSAGE)
                .map(<[Pending]>::to_vec)
                .collect();
        }
        let mut rng = rand::rng();
        due.shuffle(&mut rng);
        let mut batches = Vec::new();
        while !due.is_empty() {
            let size = rand::random_range(1..=due.len().min(MAX_PER_MESSAGE));
            batches.push(due.drain(..size).collect());
        }
        batches
    }

    /// Record an attempt's outcome: acknowledged notifications are done (and maybe duplicated), the others wait
    /// for their next retry.
    fn settle(
        &self,
        batch: Vec<Pending>,
        outcome: Result<(), DeliveryError>,
        opts: &OutboundOptions,
    ) {
        let now = Instant::now();
        let mut q = self.inner.lock();
        q.attempts += 1;
        match outcome {
            Ok(()) => {
                for p in batch {
                    q.delivered += 1;
                    q.delivered_ids.push(p.notification_id.clone());
                    if !p.duplicate && rand::random_bool(opts.duplicate_rate) {
                        q.pending.push(Pending {
                            duplicate: true,
                            due: now,
                            ..p
                        });
                    }
                }
            }
            Err(e) => {
                q.failed_attempts += 1;
                tracing::debug!(error = %e, notifications = batch.len(), "outbound message not acknowledged");
                for mut p in batch {
                    p.failures += 1;
                    p.due = after(now, opts.retry_after(p.failures));
                    q.pending.push(p);
                }
            }
        }
    }

    fn put_back(&self, batches: impl IntoIterator<Item = Vec<Pending>>) {
        let mut q = self.inner.lock();
        for batch in batches {
            q.pending.extend(batch);
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/__sim/outbound", get(stats))
        .route("/__sim/outbound/drop", post(drop_all))
        .route("/__sim/outbound/pause", post(pause))
        .route("/__sim/outbound/resume", post(resume))
}

/// The sender: delivers due notifications until `shutdown` fires. Stops between messages or abandons the one
/// in flight (it stays queued), never loses a queued notification on shutdown.
pub async fn run(st: AppState, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "outbound sender cannot build its HTTP client");
            return;
        }
    };
    let out = &st.automation.outbound;
    loop {
        let next = out.next_due();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = out.wake.notified() => {}
            () = sleep => {}
        }
        let opts = st.automation.options();
        let Some(outbound) = opts.outbound.filter(|_| opts.enabled) else {
            continue;
        };
        if out.paused.load(Ordering::SeqCst) {
            continue;
        }
        let mut batches = out.take_due(Instant::now(), &outbound).into_iter();
        while let Some(batch) = batches.next() {
            let body = envelope::build(&st, &batch);
            let outcome = tokio::select! {
                () = shutdown.cancelled() => {
                    out.put_back(std::iter::once(batch).chain(batches));
                    return;
                }
                r = deliver(&client, &outbound.url, body) => r,
            };
            out.settle(batch, outcome, &outbound);
            if out.paused.load(Ordering::SeqCst) {
                out.put_back(batches.by_ref());
            }
        }
    }
}

/// One POST, judged as Salesforce judges it.
async fn deliver(client: &reqwest::Client, url: &str, body: String) -> Result<(), DeliveryError> {
    let resp = client
        .post(url)
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"")
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    if status != 200 {
        return Err(DeliveryError::Status(status));
    }
    check_ack(&text)
}

/// `Ok` only for a well-formed answer with an `Ack` element (any namespace prefix) whose text is `true`.
pub fn check_ack(body: &str) -> Result<(), DeliveryError> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut in_ack = false;
    let mut in_fault = false;
    let mut ack: Option<String> = None;
    let mut fault = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                "Ack" => {
                    in_ack = true;
                    ack.get_or_insert_default();
                }
                "Fault" => in_fault = true,
                _ => {}
            },
            Ok(Event::Empty(e)) if e.local_name().as_ref() == "Ack" => {
                ack.get_or_insert_default();
            }
            Ok(Event::End(e)) if e.local_name().as_ref() == "Ack" => in_ack = false,
            Ok(Event::Text(t)) if in_ack => {
                if let Some(a) = ack.as_mut() {
                    a.push_str(&t);
                }
            }
            Ok(Event::Text(t)) if in_fault => fault.push_str(t.trim()),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(DeliveryError::Malformed(e.to_string())),
        }
    }
    if in_fault {
        return Err(DeliveryError::Fault(fault));
    }
    match ack.map(|a| a.trim().to_string()) {
        Some(a) if a == "true" => Ok(()),
        Some(a) => Err(DeliveryError::Nack(a)),
        None => Err(DeliveryError::Malformed("no Ack element".into())),
    }
}

async fn stats(State(st): State<AppState>) -> Json<Value> {
    Json(st.automation.outbound.stats_json())
}

/// Lose every queued notification for good, as Salesforce does after 24 h; counted as dropped.
async fn drop_all(State(st): State<AppState>) -> Json<Value> {
    let out = &st.automation.outbound;
    {
        let mut q = out.inner.lock();
        q.dropped += q.pending.len() as u64;
        q.pending.clear();
    }
    Json(out.stats_json())
}

async fn pause(State(st): State<AppState>) -> Json<Value> {
    let out = &st.automation.outbound;
    out.paused.store(true, Ordering::SeqCst);
    Json(out.stats_json())
}

async fn resume(State(st): State<AppState>) -> Json<Value> {
    let out = &st.automation.outbound;
    out.paused.store(false, Ordering::SeqCst);
    out.wake();
    Json(out.stats_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_is_parsed_namespace_agnostic() {
        let ok = r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
            <s:Body><r:notificationsResponse xmlns:r="http://soap.sforce.com/2005/09/outbound">
            <r:Ack> true </r:Ack></r:notificationsResponse></s:Body></s:Envelope>"#;
        assert!(check_ack(ok).is_ok());
        assert!(matches!(
            check_ack(
                "<Envelope><Body><notificationsResponse><Ack>false</Ack></notificationsResponse></Body></Envelope>"
            ),
            Err(DeliveryError::Nack(_))
        ));
        assert!(matches!(
            check_ack(
                "<e:Envelope xmlns:e='x'><e:Body><e:Fault><faultstring>boom</faultstring></e:Fault></e:Body></e:Envelope>"
            ),
            Err(DeliveryError::Fault(_))
        ));
        assert!(check_ack("<Ack>true</Ack").is_err());
        assert!(check_ack("all good").is_err());
    }
}
