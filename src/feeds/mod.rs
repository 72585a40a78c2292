//! Credit data feeds: banks upload their tradelines (CSV, NDJSON or XML), creditlink checks every row, upserts the
//! good ones into `Credit_Record__c` and gives every row a verdict with reasons a bank clerk can act on.
//!
//! # Flow
//! 1. **Intake** (`http.rs`, `POST /api/v1/uploads`): the bank's token is checked from the headers; the body
//!    is streamed (never held whole) into an encrypted spool file (`spool.rs`) under
//!    `<data dir>/uploads/`, fsynced, and only then recorded in the ledger (`ledger.rs`) and answered
//!    `202`. Framing errors (content type, not CSV, no header, unknown or missing required columns, too
//!    large; XML that is not well-formed, has a DOCTYPE or entities, or the wrong root — checked by one
//!    streaming read of the spool before `202`) are refused at once and leave nothing behind.
//! 2. **Processing** (`worker.rs`), asynchronous: one worker takes received uploads oldest first. A blocking
//!    thread decrypts and parses the spool twice: pass 1 validates every row (`validate.rs`) and finds the
//!    winner of every tradeline that occurs more than once (latest `as_of_date`); pass 2 streams batches of
//!    200 rows to the async side, which reads the existing records, upserts new and changed ones through
//!    the [`sink::RecordSink`] seam and records the batch's verdicts durably. The stored batch *is* the
//!    checkpoint: after a crash the worker skips recorded batches, and a batch that was being sent is
//!    re-sent with the classification it had (`feeds.pending`), so no row is lost, none is counted twice,
//!    and the upsert by `Record_Key__c` makes a re-send harmless in Salesforce.
//! 3. **Answers** (`http.rs`): status with counts, per-row verdicts, `errors.csv` (rejected rows as
//!    uploaded, plus the reasons), the reason-code registry (`reasons.rs`).
//! 4. **Completion**: `upload.completed` (or `upload.failed`) webhook and e-mails through the outbox, the
//!    spool deleted.
//!
//! # Personal data
//! Spools are encrypted under a key derived from the report vault's active key; rejected rows' values
//! (needed for `errors.csv` after the spool is gone) are sealed in their batch record the same way. Row
//! problems never quote values; logs carry upload ids, row numbers and counts only.
//!
//! # Delivery guarantees
//! Uploads are not outbox messages (a million rows would be a million messages): the upload record and its
//! batch checkpoints are their own durable queue. Transient Salesforce errors (whole calls or single
//! records) are retried with exponential backoff for up to `[uploads] retry_for`; past it, or on an error no
//! retry can fix, the upload is `failed` with the reason, and the batches recorded so far stay visible.

mod bulk;
mod dupes;
mod error;
mod http;
mod ledger;
mod model;
pub mod openapi;
mod query;
mod reasons;
mod rows;
mod sink;
mod spool;
mod validate;
mod worker;
mod xml;

pub use error::FeedError;
pub use http::router;
pub use model::{Counts, Outcome, RowResult, Status, Upload};
pub use reasons::{REGISTRY, ReasonCode, RowProblem, Severity};
pub use sink::{BulkApiSink, BulkSink, CollectionsSink, RecordSink};
pub use spool::{SpoolKey, SpoolKeys};
pub use worker::run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::config::BankConfig;
use crate::intake::{Authenticator, BankQuota};
use crate::mapping::MappingSet;
use crate::outbox::Outbox;
use crate::records::{Gatekeeper, RuleSet};
use crate::store::Store;

/// Settings of the feeds (`[uploads]`).
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Largest accepted upload body.
    pub max_bytes: u64,
    /// How long transient Salesforce errors are retried before an upload fails.
    pub retry_for: Duration,
    /// Base of links (`status_url`, `errors.csv`).
    pub public_url: String,
    /// Uploads of at least this many rows go through Bulk API 2.0 (0: never).
    pub bulk_threshold_rows: u64,
    /// Rows per Bulk API 2.0 job.
    pub bulk_job_rows: u64,
    /// Uploads per bank and hour (`None`: no quota).
    pub quota_per_hour: Option<u32>,
}

/// The feeds, assembled. Cheap to clone.
#[derive(Clone)]
pub struct Feeds {
    inner: Arc<Inner>,
}

struct Inner {
    settings: FeedSettings,
    ledger: ledger::Ledger,
    spool_dir: PathBuf,
    keys: SpoolKeys,
    mappings: Arc<ArcSwap<MappingSet>>,
    sink: Arc<dyn RecordSink>,
    bulk: Arc<dyn BulkSink>,
    rules: RuleSet,
    gatekeeper: Option<Gatekeeper>,
    quota: Option<BankQuota>,
    auth: Authenticator,
    outbox: Outbox,
    banks: Vec<BankConfig>,
    wake: Notify,
    /// Other daemons share the ledger (PostgreSQL) but not this daemon's spools.
    shared: bool,
}

/// What [`Feeds::new`] needs.
pub struct FeedParts {
    pub settings: FeedSettings,
    pub store: Store,
    pub data_dir: PathBuf,
    pub keys: SpoolKeys,
    pub mappings: Arc<ArcSwap<MappingSet>>,
    pub sink: Arc<dyn RecordSink>,
    pub bulk: Arc<dyn BulkSink>,
    /// The duplicate rules (`[records]`).
    pub rules: RuleSet,
    /// Audits reinstatements of stale-terminated records (absent in tests that do not need it).
    pub gatekeeper: Option<Gatekeeper>,
    pub auth: Authenticator,
    pub outbox: Outbox,
    pub banks: Vec<BankConfig>,
}

impl Feeds {
    /// Opens the ledger's trees and creates the spool directory (0700).
    pub fn new(parts: FeedParts) -> Result<Feeds, FeedError> {
        let spool_dir = parts.data_dir.join("uploads");
        crate::store::private_dir(&spool_dir)?;
        let quota = parts.settings.quota_per_hour.map(BankQuota::new);
        Ok(Feeds {
            inner: Arc::new(Inner {
                settings: parts.settings,
                ledger: ledger::Ledger::open(&parts.store)?,
                spool_dir,
                keys: parts.keys,
                mappings: parts.mappings,
                sink: parts.sink,
                bulk: parts.bulk,
                rules: parts.rules,
                gatekeeper: parts.gatekeeper,
                quota,
                auth: parts.auth,
                outbox: parts.outbox,
                shared: parts.store.is_shared(),
                banks: parts.banks,
                wake: Notify::new(),
            }),
        })
    }

    fn spool_path(&self, id: &str) -> PathBuf {
        self.inner.spool_dir.join(format!("{id}.spool"))
    }

    fn status_url(&self, id: &str) -> String {
        format!(
            "{}/api/v1/uploads/{id}",
            self.inner.settings.public_url.trim_end_matches('/')
        )
    }
}

/// Builds the feeds from the daemon config: `None` (with a warning) when no report vault keys are configured
/// (`[inbound] vault_keys`), because spools must be encrypted; uploads then answer 501.
pub fn assemble(
    config: &crate::config::Config,
    store: &Store,
    mappings: Arc<ArcSwap<MappingSet>>,
    client: &crate::salesforce::SalesforceClient,
    auth: Authenticator,
    outbox: Outbox,
    gatekeeper: Gatekeeper,
) -> Result<Option<Feeds>, FeedError> {
    let Some(inbound) = &config.inbound else {
        tracing::warn!(
            "no [inbound] vault keys: data-feed uploads are disabled (spools must be encrypted)"
        );
        return Ok(None);
    };
    let keyring = crate::vault::Keyring::from_dir(&inbound.vault_keys)
        .map_err(|_| FeedError::Crypto("the vault keyring could not be loaded"))?;
    let feeds = Feeds::new(FeedParts {
        settings: FeedSettings {
            max_bytes: config.uploads.max_bytes,
            retry_for: config.uploads.retry_for,
            public_url: config.server.public_url().to_string(),
            bulk_threshold_rows: config.uploads.bulk_threshold_rows,
            bulk_job_rows: config.uploads.bulk_job_rows,
            quota_per_hour: (config.uploads.quota_per_hour > 0)
                .then_some(config.uploads.quota_per_hour),
        },
        store: store.clone(),
        data_dir: config.store.data_dir.clone(),
        keys: SpoolKeys::from_keyring(&keyring)?,
        mappings,
        sink: Arc::new(CollectionsSink(client.clone())),
        bulk: Arc::new(BulkApiSink(client.clone())),
        rules: config
            .records
            .clone()
            .unwrap_or_default()
            .rule_set(&config.banks),
        gatekeeper: Some(gatekeeper),
        auth,
        outbox,
        banks: config.banks.clone(),
    })?;
    Ok(Some(feeds))
}

/// The upload routes of a daemon without feeds: 501 with the reason, not a bare 404.
pub fn router_unavailable() -> axum::Router {
    async fn unavailable() -> crate::intake::ApiError {
        crate::intake::ApiError::NotImplemented(
            "Data-feed uploads are not enabled on this creditlink: they need the report vault's keys ([inbound] vault_keys) to encrypt uploads at rest.".into(),
        )
    }
    axum::Router::new()
        .route("/api/v1/uploads", axum::routing::any(unavailable))
        .route("/api/v1/uploads/{*rest}", axum::routing::any(unavailable))
        .route(
            "/api/v1/reason-codes",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({ "reason_codes": REGISTRY }))
            }),
        )
}
