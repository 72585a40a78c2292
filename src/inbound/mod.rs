//! The Salesforce → creditlink direction: status changes and finished reports flow back to the banks.
//!
//! ```text
//!  Salesforce ──SOAP──▶ listener ──hint──▶ ┌──────────────┐
//!  (Outbound Messages)   (Ack once durable) │ inbound.hints │──▶ mirror worker ──▶ outbox (bank events, e-mails)
//!  Salesforce ◀─SOQL──── poller ───hint──▶ └──────────────┘      │  re-reads the record (REST)
//!  (SystemModstamp > watermark − overlap)                          └─▶ report PDF ──▶ vault (encrypted)
//! ```
//!
//! **Push is a hint, polling is the safety net** (ARCHITECTURE.md, "Data flow back to the bank"). Outbound Messages are at-least-once, may
//! arrive out of order and are dropped after 24 h, so neither the listener nor the poller trusts the data they
//! receive: both only write a durable *hint* ("record X may have changed"), and the mirror worker re-reads the
//! record and decides. See `mirror` for the decision (echo suppression, state hash, idempotent enqueue) and
//! `state` for the key layout.
//!
//! | File | Role |
//! | --- | --- |
//! | `soap.rs` | the `notifications` envelope, the exact `Ack`, SOAP faults |
//! | `listener.rs` | the HTTP routes: secret path / source networks, org check, dedupe, durable hint, `Ack` |
//! | `mirror.rs` | hints → one batched re-read → bank events (+ e-mails) and report PDFs into the vault |
//! | `events.rs` | the enqueued event and e-mails of one change, keyed by the record's change sequence |
//! | `names.rs` | the Salesforce object and field names, from the mappings |
//! | `poller.rs` | the reconciliation poll and its watermark |
//! | `state.rs` | the durable trees: hints, seen notification ids, mirrored state hashes, request views, watermark |
//! | `error.rs` | [`InboundError`] with its retryable/permanent split |
//!
//! Architecture invariants:
//! - Nothing is acknowledged to Salesforce before the hints it carries are durable.
//! - The poll watermark never moves past a change whose hint is not durable.
//! - One bank event per state change, however many times and in whatever order the change is reported, and
//!   one per change even when a record returns to a state it had before (idempotency key
//!   `mirror:<record>:<change sequence>:<state hash>`).
//! - No Salesforce object or field name of the bureau's is written in this module: they come from the mappings.
//! - Report bytes reach disk only through `Vault::put` (encrypted); webhooks carry a link and a hash.

mod error;
mod events;
mod listener;
mod mirror;
mod names;
mod poller;
mod soap;
mod state;

pub use error::InboundError;
pub use listener::{PATH as LISTENER_PATH, SEEN_TTL};
pub use mirror::{BATCH as MIRROR_BATCH, MirrorOutcome, SkipReason};
pub use names::{MAPPING_KIND, RequestNames};
pub use poller::{PollOutcome, soql_datetime};
pub use soap::{ACK, Notification, OutboundMessage, SoapError, parse as parse_envelope};
pub use state::{Hint, InboundState, NextDue};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use secrecy::SecretString;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{BankConfig, Cidr, Config, InboundConfig};
use crate::mapping::MappingSet;
use crate::ops::Heartbeat;
use crate::outbox::Outbox;
use crate::salesforce::SalesforceClient;
use crate::store::Store;
use crate::vault::{Keyring, Vault, VaultError, VaultLimits};

use listener::Listener;
use mirror::Mirror;
use poller::Poller;

/// How long the idle mirror worker sleeps at most between looks at the hint tree (it is woken at once by the
/// listener and the poller; this only bounds heartbeat gaps).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// Pause after a store failure in a worker loop.
const STORE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The settings [`Inbound::new`] needs, in one place (built from [`Config`] by [`InboundSettings::from_config`]).
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// `[salesforce] org_id`: Outbound Messages naming another org are refused.
    pub org_id: String,
    pub listener_secret: Option<SecretString>,
    pub allowed_sources: Vec<Cidr>,
    pub poll_interval: Duration,
    pub poll_overlap: Duration,
    pub max_soap_bytes: usize,
    /// Base of the report and status links sent to banks.
    pub public_url: url::Url,
}

impl InboundSettings {
    /// `None` when the config has no `[inbound]` section.
    pub fn from_config(config: &Config) -> Option<InboundSettings> {
        let inbound = config.inbound.as_ref()?;
        Some(InboundSettings {
            org_id: config.salesforce.org_id.clone(),
            listener_secret: inbound.listener_secret.clone(),
            allowed_sources: inbound.allowed_sources.clone(),
            poll_interval: inbound.poll_interval,
            poll_overlap: inbound.poll_overlap,
            max_soap_bytes: inbound.max_soap_bytes,
            public_url: inbound
                .public_url
                .clone()
                .unwrap_or_else(|| config.server.public_url()),
        })
    }
}

/// Opens the report vault the config describes (`vault_dir`, default `<data_dir>/vault`; keys from
/// `vault_keys`; `report_max_bytes`), or, when the store keeps the vault (PostgreSQL shared by several
/// daemons), the store's. The intake API's report download shares the same `Arc<Vault>`.
pub fn open_vault(
    inbound: &InboundConfig,
    data_dir: &Path,
    store: &Store,
) -> Result<Vault, VaultError> {
    let keyring = Keyring::from_dir(&inbound.vault_keys)?;
    let limits = VaultLimits {
        max_pdf_bytes: inbound.report_max_bytes,
    };
    match store.vault_storage() {
        Some(storage) => Vault::with_storage(storage, keyring, limits),
        None => Vault::open(&inbound.vault_dir(data_dir), keyring, limits),
    }
}

/// The inbound direction, assembled. Cheap to clone.
#[derive(Clone)]
pub struct Inbound {
    listener: Listener,
    mirror: Mirror,
    poller: Poller,
    poll_interval: Duration,
    wake: Arc<Notify>,
    /// For leadership: with a shared store one daemon at a time runs the poller.
    store: Store,
}

impl Inbound {
    /// Wires the listener, mirror worker and poller to the shared store, outbox, Salesforce client, vault,
    /// live mapping set (swapped on SIGHUP) and configured banks. Opens the inbound store trees; does no
    /// network I/O.
    pub fn new(
        settings: InboundSettings,
        store: Store,
        outbox: Outbox,
        client: SalesforceClient,
        vault: Arc<Vault>,
        mappings: Arc<ArcSwap<MappingSet>>,
        banks: Vec<BankConfig>,
    ) -> Result<Inbound, InboundError> {
        let state = InboundState::open(&store)?;
        let wake = Arc::new(Notify::new());
        let public_url = settings
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        Ok(Inbound {
            listener: Listener {
                secret: settings.listener_secret,
                allowed_sources: Arc::new(settings.allowed_sources),
                org_id: settings.org_id,
                max_soap_bytes: settings.max_soap_bytes,
                state: state.clone(),
                wake: wake.clone(),
                mappings: mappings.clone(),
            },
            mirror: Mirror {
                state: state.clone(),
                outbox,
                client: client.clone(),
                vault,
                mappings: mappings.clone(),
                banks: Arc::new(banks),
                public_url,
            },
            poller: Poller::new(state, client, mappings, settings.poll_overlap),
            poll_interval: settings.poll_interval,
            store: store.clone(),
            wake,
        })
    }

    /// The listener routes (`POST /salesforce/outbound-messages/{secret}`, and the bare path when
    /// `allowed_sources` is set). Serve with `into_make_service_with_connect_info::<SocketAddr>()`: source
    /// checks need the peer address, and without it every source-checked request is refused.
    pub fn router(&self) -> axum::Router {
        self.listener.clone().router()
    }

    /// The vault reports are written to.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.mirror.vault
    }

    /// The durable inbound bookkeeping (for tests and admin views).
    pub fn state(&self) -> &InboundState {
        &self.mirror.state
    }

    /// Processes up to [`MIRROR_BATCH`] due hints, one outcome each, or `[Idle]` (tests drive the worker with
    /// this).
    pub async fn mirror_step(&self) -> Result<Vec<MirrorOutcome>, crate::store::StoreError> {
        self.mirror.step(Utc::now()).await
    }

    /// Runs one reconciliation poll and wakes the mirror if it found anything.
    pub async fn poll_once(&self) -> Result<PollOutcome, InboundError> {
        self.poll_at(Utc::now()).await
    }

    /// [`Inbound::poll_once`] as if the clock read `now` (the idle-cost measurement runs an hour of polls in
    /// seconds with it). Polls must not run concurrently.
    pub async fn poll_at(&self, now: chrono::DateTime<Utc>) -> Result<PollOutcome, InboundError> {
        let outcome = self.poller.poll_once(now).await?;
        if outcome.hinted > 0 {
            self.wake.notify_one();
        }
        Ok(outcome)
    }

    /// Runs the mirror worker and the poller until `shutdown` fires. Both beat `heartbeat` once per loop
    /// iteration (also when idle). The mirror stops between hints, never in the middle of one.
    pub async fn run(&self, shutdown: CancellationToken, heartbeat: Heartbeat) {
        tokio::join!(
            self.run_mirror(shutdown.clone(), heartbeat.clone()),
            self.run_poller(shutdown, heartbeat)
        );
    }

    async fn run_mirror(&self, shutdown: CancellationToken, heartbeat: Heartbeat) {
        while !shutdown.is_cancelled() {
            heartbeat.beat();
            let wait = match self.mirror.step(Utc::now()).await.as_deref() {
                Ok([MirrorOutcome::Idle { next_due }]) => next_due
                    .and_then(|t| (t - Utc::now()).to_std().ok())
                    .unwrap_or(IDLE_WAIT)
                    .min(IDLE_WAIT),
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "mirror worker: store failure");
                    STORE_ERROR_PAUSE
                }
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Polls every interval while this daemon leads the `inbound.poller` role (always, with an
    /// embedded store; one daemon at a time, with a shared database — a standby takes over at its
    /// next interval after the leader dies).
    async fn run_poller(&self, shutdown: CancellationToken, heartbeat: Heartbeat) {
        let mut leadership = match self.store.lead("inbound.poller").await {
            Ok(leadership) => leadership,
            Err(e) => {
                tracing::error!(error = %e, "poller: leader election unavailable; not polling");
                return;
            }
        };
        while !shutdown.is_cancelled() {
            heartbeat.beat();
            if !leadership.is_leader().await {
                tracing::debug!("poller: another daemon leads; standing by");
            } else if let Err(e) = self.poll_once().await {
                tracing::warn!(error = %e, "reconciliation poll failed; retrying next interval");
                metrics::counter!("creditlink_inbound_poll_errors_total").increment(1);
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll_interval) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }
}
