//! The store: creditlink's only door to sled, and the owner of *group commit*.
//!
//! # Boundary
//! Only this module names `sled`. The outbox is its one crate-internal user of raw trees and
//! transactions, through the `pub(crate)` module `raw`: sled transactions over several trees cannot be
//! wrapped generically without re-implementing them, so the outbox borrows the types but never
//! opens, configures or flushes the database itself. Nothing outside the crate sees a sled type.
//!
//! # Durability
//! sled's `insert` returns once the write is in an in-memory buffer; only a flush makes it survive
//! `kill -9` (reference/delivery.md §5.2). Writers therefore call [`Store::durable`] after their
//! writes and acknowledge upstream only when it returns. With [`Durability::GroupCommit`] a single
//! background thread batches waiters: it takes every waiter queued so far, flushes once, releases
//! them all, and meanwhile the next batch forms. A waiter is always released by a flush that began
//! after it queued, hence after its writes completed. (The thread calls the blocking `flush`,
//! which is what `flush_async` runs underneath; a dedicated thread keeps the store independent of
//! whichever tokio runtime opened it.)
//!
//! Power loss is a different matter: on Linux sled flushes with `sync_file_range`, which is not a
//! device-cache barrier (sled issues #1351, #1452). creditlink promises survival of process
//! crashes, not of power loss on drives without power-loss protection.

mod error;
mod kv;

pub use error::StoreError;
pub use kv::{KvEntry, KvTree};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// Raw sled types for the outbox's own key layout and transactions. Crate-internal by design.
pub(crate) mod raw {
    pub(crate) use sled::Tree;
    pub(crate) use sled::transaction::{
        ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
        Transactional, TransactionalTree,
    };
}

/// How [`Store::durable`] makes writes survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Concurrent callers share one flush (the production setting).
    #[default]
    GroupCommit,
    /// Each call flushes on its own: the baseline that benchmarks compare group commit with.
    PerRequest,
    /// No flush at all; sled's own 500 ms background flush only. Benchmarks only: acknowledged
    /// writes can be lost on a crash.
    None,
}

/// A handle to the database. Cheap to clone; the database closes when the last clone drops.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    durability: Durability,
    flushes: Arc<AtomicU64>,
    /// Waiters for the group-commit thread. `None` only while dropping.
    waiters: Option<mpsc::Sender<Waiter>>,
    flusher: Option<JoinHandle<()>>,
}

type Waiter = oneshot::Sender<Result<(), StoreError>>;

impl Store {
    /// Opens (or creates) the database in `dir`.
    ///
    /// sled's own periodic flush stays on (every 500 ms): it bounds how much unacknowledged work a
    /// crash can lose, but acknowledgements never rely on it.
    pub fn open(dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        // sled's page cache defaults to 1 GiB and fills as the queue grows; bounded, memory stays flat
        // (the benchmark measured 520 MB resident with 100,000 queued before this bound).
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .open()?;
        let flushes = Arc::new(AtomicU64::new(0));
        let (waiters, flusher) = match durability {
            Durability::GroupCommit => {
                let (tx, rx) = mpsc::channel::<Waiter>();
                let db = db.clone();
                let flushes = flushes.clone();
                let handle = std::thread::Builder::new()
                    .name("store-flusher".into())
                    .spawn(move || group_commit_loop(db, rx, flushes))
                    .map_err(StoreError::Io)?;
                (Some(tx), Some(handle))
            }
            Durability::PerRequest | Durability::None => (None, None),
        };
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                durability,
                flushes,
                waiters,
                flusher,
            }),
        })
    }

    /// Returns once every write this task completed before the call is on disk (crash-safe).
    ///
    /// Nothing may be acknowledged upstream before this returns `Ok`.
    pub async fn durable(&self) -> Result<(), StoreError> {
        match self.inner.durability {
            Durability::None => Ok(()),
            Durability::PerRequest => {
                self.blocking_flush().await?;
                self.inner.flushes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Durability::GroupCommit => {
                let (tx, rx) = oneshot::channel();
                let waiters = self.inner.waiters.as_ref().ok_or(StoreError::Closed)?;
                waiters.send(tx).map_err(|_| StoreError::Closed)?;
                rx.await.map_err(|_| StoreError::Closed)?
            }
        }
    }

    /// How many flushes `durable` has performed since open: lets tests prove coalescing and
    /// benchmarks report writes per flush.
    pub fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }

    /// The configured durability mode.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Opens (or creates) a named tree. Crate-internal: only the outbox lays out keys.
    pub(crate) fn tree(&self, name: &str) -> Result<raw::Tree, StoreError> {
        Ok(self.inner.db.open_tree(name)?)
    }

    /// Opens (or creates) a named [`KvTree`] for a module's own bookkeeping. Names are global: prefix them
    /// with the module (`inbound.hints`).
    pub fn kv_tree(&self, name: &str) -> Result<KvTree, StoreError> {
        Ok(KvTree::new(self.inner.db.open_tree(name)?))
    }

    /// Checks that the store still accepts writes (for `/readyz`): writes and flushes a probe key.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let probe = self.tree("__probe")?;
        probe.insert(b"probe", &[1u8][..])?;
        self.blocking_flush().await
    }

    /// sled's blocking `flush` on a blocking thread. Never `flush_async`: concurrent `flush_async` calls can
    /// deadlock in sled 0.34 (spacejam/sled#1308; the benchmark hung with one `flush_async` per request), and
    /// the group-commit thread uses the blocking `flush` too, so every flush in the process takes one path.
    async fn blocking_flush(&self) -> Result<(), StoreError> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|_| StoreError::Closed)??;
        Ok(())
    }
}

/// sled's page cache bound.
const CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the flusher loop; joining it releases its handle on the
        // database so the same directory can be reopened at once (tests, restarts in-process).
        self.waiters.take();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
        let _ = self.db.flush();
    }
}

/// The group-commit thread: wait for one waiter, take every other waiter already queued, flush
/// once, answer them all. Waiters arriving during the flush wait for the next round, because the
/// flush in progress may have started before their writes.
fn group_commit_loop(db: sled::Db, rx: mpsc::Receiver<Waiter>, flushes: Arc<AtomicU64>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let result = db.flush();
        flushes.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::ops::metrics::STORE_FLUSHES_TOTAL).increment(1);
        for waiter in batch {
            let answer = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(StoreError::from(e.clone())),
            };
            // A waiter that gave up (its request was cancelled) is not an error.
            let _ = waiter.send(answer);
        }
    }
}
