//! The store: where creditlink keeps its durable state, behind two seams — the outbox's
//! [`crate::outbox::Queue`] and the small ordered key-value trees of [`Kv`] — with one rule for both:
//! **a write returns only once it is durable.** Nobody outside this module flushes anything.
//!
//! # Backends
//! A [`Backend`] hands out the outbox's queue and named key-value trees:
//! - `sled/` — the embedded default. Only that directory names `sled`. Writes run on a blocking
//!   thread, then wait for *group commit*: one flusher thread coalesces every concurrent waiter into one
//!   `flush` (see `sled/db.rs` for why it is sled's blocking flush and never `flush_async`).
//! - `memory/` — for tests: nothing survives the process, every write is "durable" at once.
//! - `postgres/` — one database shared by several daemons (`[store] backend = "postgres"`): its
//!   `Queue` and `Kv` commit a transaction per write; it also wakes workers across daemons
//!   ([`Backend::enqueued`], `LISTEN/NOTIFY`) and elects one leader per singleton role
//!   ([`Backend::lead`], advisory locks) and keeps the report vault's sealed reports
//!   ([`Backend::vault_storage`]). Only that directory writes SQL.
//!
//! ## Adding a backend
//! 1. Implement [`Backend`]: `queue()` returns one shared [`crate::outbox::Queue`], `kv(name)` a [`Kv`] per
//!    name, `check_writable()` a cheap durable probe.
//! 2. In the `Queue`, apply the pure transitions of `outbox::backend` (`claimed`, `released`,
//!    `Resolution::apply`, `AdminMove::apply`) inside one transaction per call; `claim` releases expired
//!    leases first and must never hand one message to two callers (`FOR UPDATE SKIP LOCKED`); `resolve`
//!    checks state *and* token; `counts` must not scan history. Do not release leases at open: other
//!    daemons may hold them.
//! 3. Add the backend to `tests/it/outbox_contract_support.rs` (`Backend` and `Rig::open`) and one
//!    `backend_tests!` line in `tests/it/outbox_contract.rs`; the whole contract must pass.
//!
//! # Key-value trees
//! [`KvTree`] is a named, ordered byte map for modules' own bookkeeping (the inbound listener's hints,
//! seen-sets, watermarks; bank endpoint health). Each write is atomic and durable on return, so a
//! module that needs "A before B" after a crash simply awaits A's write before starting B's.
//!
//! # Power loss
//! On Linux sled flushes with `sync_file_range`, which is not a device-cache barrier (sled issues
//! #1351, #1452). creditlink promises survival of process crashes, not of power loss on drives without
//! power-loss protection.

pub(crate) mod binary;
mod error;
mod files;
mod kv;
pub mod memory;
pub mod postgres;
mod sled;

pub use error::StoreError;
pub use files::private_dir;
pub use kv::{Kv, KvEntry, KvTree};

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::outbox::Queue;

/// How the sled backend makes writes survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Concurrent writers share one flush (the production setting).
    #[default]
    GroupCommit,
    /// Each write flushes on its own: the baseline that benchmarks compare group commit with.
    PerRequest,
    /// No flush at all; sled's own 500 ms background flush only. Benchmarks only: acknowledged
    /// writes can be lost on a crash.
    None,
}

/// A storage implementation: the outbox's queue and named key-value trees over one database.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The outbox's queue. One per backend: every call returns the same queue.
    fn queue(&self) -> Result<Arc<dyn Queue>, StoreError>;
    /// The key-value tree `name` (created when absent). Names are global: prefix them with the module
    /// (`inbound.hints`).
    fn kv(&self, name: &str) -> Result<Arc<dyn Kv>, StoreError>;
    /// Whether the store still accepts durable writes (for `/readyz`).
    async fn check_writable(&self) -> Result<(), StoreError>;
    /// How many flushes durability has cost since open (0 where that means nothing).
    fn flush_count(&self) -> u64 {
        0
    }
    /// Destination kinds of messages other processes sharing the store made due (so this process's
    /// workers wake at once instead of at their next poll); `None` when nobody else shares it.
    fn enqueued(&self) -> Option<tokio::sync::broadcast::Receiver<crate::outbox::DestinationKind>> {
        None
    }
    /// Whether other processes may share this store (a database several daemons use): state on a
    /// process's own disk (a feed's spool) is then invisible to the others.
    fn shared(&self) -> bool {
        false
    }
    /// Where the report vault keeps its sealed reports and audit trail when the store provides it (a
    /// database shared by several daemons); `None`: the vault's own files under the data dir.
    fn vault_storage(&self) -> Option<Arc<dyn crate::vault::VaultStorage>> {
        None
    }
    /// A candidate for the singleton `role` (one process at a time runs it). A store that one process
    /// owns makes that process the leader for good.
    async fn lead(&self, role: &str) -> Result<Box<dyn Leadership>, StoreError> {
        let _ = role;
        Ok(Box::new(SoleLeader))
    }
}

/// Whether this process currently holds a singleton role; see [`Backend::lead`].
#[async_trait]
pub trait Leadership: Send + Sync {
    /// Campaigns when not leading and re-checks when leading; call it before each round of the
    /// singleton's work, and skip the round on `false`.
    async fn is_leader(&mut self) -> bool;
}

/// The only process of an embedded store: always the leader.
struct SoleLeader;

#[async_trait]
impl Leadership for SoleLeader {
    async fn is_leader(&mut self) -> bool {
        true
    }
}

/// A handle to the store. Cheap to clone; the database closes when the last clone drops.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    /// Opens (or creates) the embedded sled database in `dir`, recovering the outbox's in-flight
    /// messages (they go back to Pending: this process owns the store). Blocking: call it from a
    /// blocking thread in async code.
    pub fn open(dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        Ok(Store::from_backend(Arc::new(sled::SledBackend::open(
            dir, durability,
        )?)))
    }

    /// A store in memory, for tests.
    pub fn memory() -> Store {
        Store::from_backend(Arc::new(memory::MemoryBackend::default()))
    }

    /// Connects to PostgreSQL and applies missing schema migrations. Other daemons may share the
    /// database: nothing in flight is released (their leases end on their own).
    pub async fn connect_postgres(url: &secrecy::SecretString) -> Result<Store, StoreError> {
        Ok(Store::from_backend(Arc::new(
            postgres::PgBackend::connect(url).await?,
        )))
    }

    /// A store over any backend.
    pub fn from_backend(backend: Arc<dyn Backend>) -> Store {
        Store { backend }
    }

    /// The outbox's queue; see [`crate::outbox::Outbox::open`].
    pub fn queue(&self) -> Result<Arc<dyn Queue>, StoreError> {
        self.backend.queue()
    }

    /// Opens (or creates) a named [`KvTree`].
    pub fn kv_tree(&self, name: &str) -> Result<KvTree, StoreError> {
        Ok(KvTree::new(self.backend.kv(name)?))
    }

    /// Checks that the store still accepts durable writes (for `/readyz`).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.backend.check_writable().await
    }

    /// See [`Backend::enqueued`].
    pub fn enqueued(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<crate::outbox::DestinationKind>> {
        self.backend.enqueued()
    }

    /// See [`Backend::shared`].
    pub fn is_shared(&self) -> bool {
        self.backend.shared()
    }

    /// See [`Backend::vault_storage`].
    pub fn vault_storage(&self) -> Option<Arc<dyn crate::vault::VaultStorage>> {
        self.backend.vault_storage()
    }

    /// See [`Backend::lead`].
    pub async fn lead(&self, role: &str) -> Result<Box<dyn Leadership>, StoreError> {
        self.backend.lead(role).await
    }

    /// How many flushes durability has performed since open: lets tests prove coalescing and
    /// benchmarks report writes per flush.
    pub fn flush_count(&self) -> u64 {
        self.backend.flush_count()
    }
}
