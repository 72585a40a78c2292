//! `creditlink-sim`: the simulated world creditlink talks to. Mainly a simulated Salesforce org (the real OAuth
//! and REST paths with Salesforce's shapes, plus a `/__sim/` control surface so tests can inspect records, count
//! API calls and inject faults); also the sandbox's other demo actors, bank webhook receivers and an SMTP sink.
//!
//! A crate of its own so the production build (`creditlink` without its `sim` feature) holds none of it, and so
//! Cargo keeps the layering: nothing here can reach the daemon's outbox, store or Salesforce client; the only
//! code shared with the daemon is `creditlink-signing` (Standard Webhooks, which the demo banks verify).
//!
//! Entry points: [`serve`] runs on a listener until cancelled; [`spawn`] binds and runs it in the background
//! (tests, the sandbox); [`run_standalone`] is `creditlink sim salesforce`. The org starts from a [`Seed`]
//! (`config/sim/default-seed.json` by default) and all state lives in memory behind `parking_lot` locks.
//!
//! Code map (one file per concern; a new API surface is a new file, or a folder like `soql/`, whose `routes()`
//! `router` merges): `seed` (seed format), `ids` (18-char ids), `org` (records and record-level rules),
//! `table` (one object's records and indexes), `standard` (standard objects' common standard fields),
//! `validate` (field-level write checks), `oauth` (token, introspect, userinfo, identity), `authorize` (the
//! login page of the web server flow), `gate` (auth, limits,
//! faults around every REST call), `rest` (route table and single-record routes), `describe` (versions, limits,
//! describe), `query` (routes, paging) and `query_exec` (index choice), `collections` (sObject Collections),
//! `json_out` (hot answers written as JSON text, no `Value` trees),
//! `bulk`, `bulk_job`, `bulk_csv`, `bulk_run` (Bulk API 2.0 ingest: routes, jobs, CSV, background processing),
//! `files` (ContentVersion), `control` (`/__sim/`),
//! `faults`, `limits`, `info` (the info file), `snapshot` (optional persistence), `soql` (query parsing and
//! evaluation). The bureau's side: `journal` (the org's log of applied writes), `automation` and
//! `automation_options` (the analyst working new requests), `pdf` (the generated reports), `outbound` and
//! `envelope` (Outbound Messaging). Demo actors: `banks`, `smtp`. `testkit`: the default seed's constants and HTTP
//! helpers for tests (this crate's and the daemon's).

mod authorize;
mod automation;
mod automation_options;
pub mod banks;
mod bulk;
mod bulk_csv;
mod bulk_job;
mod bulk_run;
mod collections;
mod control;
mod describe;
mod envelope;
mod error;
mod faults;
mod files;
mod gate;
mod ids;
mod info;
mod journal;
mod json_out;
mod limits;
mod oauth;
mod org;
mod outbound;
mod pdf;
mod query;
mod query_exec;
mod rest;
mod seed;
pub mod smtp;
mod snapshot;
pub mod soql;
mod standard;
mod table;
pub mod testkit;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use tokio_util::sync::CancellationToken;

pub use automation_options::{AutomationOptions, OutboundOptions};
pub use seed::{
    CertificateSource, ConnectedAppSpec, FieldSpec, FieldType, NameField, ObjectSpec, Seed,
    UserSpec,
};

/// How a simulated org behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: Seed,
    /// How long an access token stays valid (Salesforce's default session timeout is 2 hours).
    pub token_lifetime: Duration,
    /// `DailyApiRequests.Max` until a fault sets `daily_api_limit` (Developer Edition's 15,000).
    pub daily_api_limit: u64,
    /// Where to keep the org's data across restarts: read on start when present, written on shutdown.
    pub snapshot: Option<PathBuf>,
    /// The bureau's side: analyst work on new requests and Outbound Messages (`automation`). Off by default.
    pub automation: AutomationOptions,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: Seed::default_org(),
            token_lifetime: Duration::from_secs(2 * 3600),
            daily_api_limit: 15_000,
            snapshot: None,
            automation: AutomationOptions::default(),
        }
    }
}

/// A simulator running in the background; dropping it (or [`SimHandle::shutdown`]) stops it.
pub struct SimHandle {
    base_url: String,
    state: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, no trailing slash; also every token response's `instance_url`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The info-file JSON (`salesforce_url`, `integration`, `banks`).
    pub fn info(&self) -> serde_json::Value {
        info::info_json(&self.base_url, &self.state.seed)
    }

    /// Every stored record of an object (deleted ones included), as `GET /__sim/records/{Object}` shows them.
    pub fn records(&self, object: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        control::stored_records(&self.state, object)
    }

    /// `{"api_calls_total", "by_route"}`, as `GET /__sim/stats` shows them.
    pub fn stats(&self) -> serde_json::Value {
        self.state.stats.lock().json()
    }

    /// Replace the automation settings at runtime, as `PUT /__sim/automation` does.
    pub fn set_automation(&self, options: AutomationOptions) {
        self.state.automation.set_options(options);
    }

    /// `{"queued", "delivered", "dropped", "delivered_ids", …}`, as `GET /__sim/outbound` shows them.
    pub fn outbound_stats(&self) -> serde_json::Value {
        self.state.automation.outbound.stats_json()
    }

    /// Stop serving and wait for the server task to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.context("simulator task panicked")?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serve on an already-bound listener until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: SimOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let base_url = base_url_of(&listener)?;
    let state = Shared::new(base_url, opts)?;
    serve_state(listener, state, shutdown).await
}

/// Bind, spawn in the background, return a handle (tests and the sandbox use this).
pub async fn spawn(listen: SocketAddr, opts: SimOptions) -> anyhow::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding simulator to {listen}"))?;
    let base_url = base_url_of(&listener)?;
    let state = Shared::new(base_url.clone(), opts)?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_state(listener, state.clone(), shutdown.clone()));
    Ok(SimHandle {
        base_url,
        state,
        shutdown,
        task: Some(task),
    })
}

/// What `creditlink sim salesforce --listen ADDR [--seed FILE] [--info-file FILE]` runs.
#[derive(Debug, Clone)]
pub struct StandaloneOptions {
    pub listen: SocketAddr,
    pub seed: Option<PathBuf>,
    pub info_file: Option<PathBuf>,
}

/// Run the simulator until `shutdown` fires, writing the info file once the listener is bound.
pub async fn run_standalone(
    opts: StandaloneOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let seed = match &opts.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::default_org(),
    };
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding simulator to {}", opts.listen))?;
    let base_url = base_url_of(&listener)?;
    let state = Shared::new(
        base_url.clone(),
        SimOptions {
            seed,
            ..SimOptions::default()
        },
    )?;
    if let Some(path) = &opts.info_file {
        info::write_atomically(path, &info::info_json(&base_url, &state.seed))?;
    }
    tracing::info!(url = %base_url, "simulated Salesforce org listening");
    serve_state(listener, state, shutdown).await
}

fn base_url_of(listener: &tokio::net::TcpListener) -> anyhow::Result<String> {
    let addr = listener
        .local_addr()
        .context("reading the listener's address")?;
    Ok(format!("http://{addr}"))
}

async fn serve_state(
    listener: tokio::net::TcpListener,
    state: Arc<Shared>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let worker = tokio::spawn(automation::run(state.clone(), shutdown.clone()));
    let app = router(state.clone());
    // Trailing slashes are stripped before routing: simple-salesforce sends `/sobjects/Obj/`, jsforce doesn't.
    let app = tower::Layer::layer(
        &tower::util::MapRequestLayer::new(strip_trailing_slash),
        app,
    );
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await
    .context("simulator server failed")?;
    shutdown.cancel();
    worker.await.context("simulator automation task panicked")?;
    if let Some(path) = &state.opts.snapshot {
        let snap = state.org.read().to_snapshot();
        snapshot::save(path, &snap)?;
    }
    Ok(())
}

fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(authorize::routes())
        .merge(rest::routes(state.clone()))
        .merge(control::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            automation::wake_after_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::outage,
        ))
        .with_state(state)
}

/// Unknown paths answer like Salesforce does, with the REST error array.
async fn not_found() -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

fn strip_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let new = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = new.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Everything a request handler can reach. Each piece has its own lock so token checks never wait on writes.
/// The org is behind a reader-writer lock: queries, reads and describes run together; a write holds it for one
/// indexed operation (a map read per look-up, never a scan of another object).
pub(crate) struct Shared {
    pub base_url: String,
    pub seed: Seed,
    pub opts: SimOptions,
    pub org: parking_lot::RwLock<org::Org>,
    pub tokens: parking_lot::Mutex<oauth::TokenStore>,
    /// Authorization codes the login page issued, until redeemed or expired.
    pub auth_codes: parking_lot::Mutex<authorize::AuthCodes>,
    pub faults: parking_lot::Mutex<faults::Faults>,
    pub stats: parking_lot::Mutex<limits::Stats>,
    pub cursors: parking_lot::Mutex<query::Cursors>,
    pub bulk: parking_lot::Mutex<bulk_job::Jobs>,
    pub automation: automation::Automation,
}

impl Shared {
    fn new(base_url: String, opts: SimOptions) -> anyhow::Result<Arc<Shared>> {
        let mut org = org::Org::from_seed(&opts.seed, chrono::Utc::now())?;
        if let Some(snap) = opts
            .snapshot
            .as_deref()
            .map(snapshot::load)
            .transpose()?
            .flatten()
        {
            org.restore(snap)?;
        }
        Ok(Arc::new(Shared {
            base_url,
            seed: opts.seed.clone(),
            org: parking_lot::RwLock::new(org),
            tokens: parking_lot::Mutex::new(oauth::TokenStore::default()),
            auth_codes: parking_lot::Mutex::new(authorize::AuthCodes::default()),
            faults: parking_lot::Mutex::new(faults::Faults::default()),
            stats: parking_lot::Mutex::new(limits::Stats::default()),
            cursors: parking_lot::Mutex::new(query::Cursors::default()),
            bulk: parking_lot::Mutex::new(bulk_job::Jobs::default()),
            automation: automation::Automation::new(opts.automation.clone()),
            opts,
        }))
    }
}

type AppState = Arc<Shared>;
