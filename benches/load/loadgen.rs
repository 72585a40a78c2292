//! The load generator: 64 HTTP/1.1 clients (closed loop: each sends its next request when the previous one is
//! answered) or a paced open loop at a fixed rate. Every request is a valid default JSON body with a unique
//! `Idempotency-Key`, authenticated as Demo Bank A. It runs in the bench process, on
//! the same 2 cores as the daemon and the simulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use tokio::sync::Semaphore;

/// The demo bank whose requests use the default mapping (Demo Bank A).
const DEFAULT_BANK: &str = "0015Y00000BANKAQA5";

/// How much load to send.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// Closed loop, `clients` in parallel, for a fixed time.
    Duration { clients: usize, time: Duration },
    /// Closed loop, `clients` in parallel, a fixed number of requests in total.
    Count { clients: usize, requests: u64 },
    /// Open loop at `rate` requests/s for `time` (at most 64 in flight).
    Paced { rate: u32, time: Duration },
}

/// What one load run measured, latencies in microseconds.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
    /// The first few error descriptions (status or transport error), for the report.
    pub error_samples: Vec<String>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of the latencies in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile(&self.latencies_us, q) as f64 / 1000.0
    }
}

/// Nearest-rank quantile of unsorted values (sorts a copy).
pub fn quantile(values: &[u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Bearer tokens of Demo Bank A from the simulator's info file (`banks[].token_request`). Only that bank: it
/// uses the default person mapping; Demo Bank B posts its own body shape (`mappings/banks/DBB/`).
pub async fn bank_tokens(http: &reqwest::Client, info: &Value) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    let banks = info["banks"].as_array().context("banks")?;
    for bank in banks.iter().filter(|b| b["account_id"] == DEFAULT_BANK) {
        let req = &bank["token_request"];
        let url = req["url"].as_str().context("token url")?;
        let form: Vec<(String, String)> = req["form"]
            .as_object()
            .context("token form")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let body: Value = http
            .post(url)
            .form(&form)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        tokens.push(
            body["access_token"]
                .as_str()
                .context("access_token")?
                .to_owned(),
        );
    }
    anyhow::ensure!(!tokens.is_empty(), "the simulator lists no bank apps");
    Ok(tokens)
}

/// A client for the load: keeps one idle connection per concurrent client.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(128)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Sends the load at `daemon_url`; `tag` keeps idempotency keys unique across runs.
pub async fn run(
    http: &reqwest::Client,
    daemon_url: &str,
    tokens: &[String],
    tag: &str,
    load: Load,
) -> Outcome {
    let shared = Arc::new(Shared {
        http: http.clone(),
        url: format!("{daemon_url}/api/v1/report-requests"),
        tokens: tokens.to_vec(),
        tag: tag.to_owned(),
        next: AtomicU64::new(0),
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    match load {
        Load::Duration { clients, time } => {
            let deadline = start + time;
            for _ in 0..clients {
                let s = shared.clone();
                tasks.push(tokio::spawn(async move {
                    let mut out = Outcome::default();
                    while Instant::now() < deadline {
                        let n = s.next.fetch_add(1, Ordering::Relaxed);
                        s.send_one(n, &mut out).await;
                    }
                    out
                }));
            }
        }
        Load::Count { clients, requests } => {
            for _ in 0..clients {
                let s = shared.clone();
                tasks.push(tokio::spawn(async move {
                    let mut out = Outcome::default();
                    loop {
                        let n = s.next.fetch_add(1, Ordering::Relaxed);
                        if n >= requests {
                            break;
                        }
                        s.send_one(n, &mut out).await;
                    }
                    out
                }));
            }
        }
        Load::Paced { rate, time } => {
            let slots = Arc::new(Semaphore::new(64));
            let total = (f64::from(rate) * time.as_secs_f64()) as u64;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for _ in 0..total {
                tick.tick().await;
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let s = shared.clone();
                tasks.push(tokio::spawn(async move {
                    let mut out = Outcome::default();
                    let n = s.next.fetch_add(1, Ordering::Relaxed);
                    s.send_one(n, &mut out).await;
                    drop(permit);
                    out
                }));
            }
        }
    }
    let mut total = Outcome::default();
    for t in tasks {
        if let Ok(out) = t.await {
            total.ok += out.ok;
            total.errors += out.errors;
            total.latencies_us.extend(out.latencies_us);
            for e in out.error_samples {
                if total.error_samples.len() < 5 {
                    total.error_samples.push(e);
                }
            }
        }
    }
    total.elapsed = start.elapsed();
    total
}

struct Shared {
    http: reqwest::Client,
    url: String,
    tokens: Vec<String>,
    tag: String,
    next: AtomicU64,
}

impl Shared {
    async fn send_one(&self, n: u64, out: &mut Outcome) {
        let token = &self.tokens[(n as usize) % self.tokens.len()];
        let consent = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
        let body = format!(
            r#"{{"reference":"LN-BENCH-{n:09}","subject":{{"type":"person","national_id":"CW-1980013101","first_name":"Maria","last_name":"Martina","date_of_birth":"1980-01-31"}},"purpose":"loan_application","consent":{{"given_at":"{consent}"}}}}"#
        );
        let started = Instant::now();
        let result = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("idempotency-key", format!("bench-{}-{n}", self.tag))
            .body(body)
            .send()
            .await;
        let outcome = match result {
            Ok(resp) if resp.status().is_success() => {
                resp.bytes().await.map(|_| ()).map_err(|e| e.to_string())
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                Err(format!(
                    "{status}: {}",
                    text.chars().take(200).collect::<String>()
                ))
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                out.ok += 1;
                out.latencies_us.push(started.elapsed().as_micros() as u64);
            }
            Err(e) => {
                out.errors += 1;
                if out.error_samples.len() < 5 {
                    out.error_samples.push(e);
                }
            }
        }
    }
}
