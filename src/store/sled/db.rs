//! The sled database and *group commit*: the one place creditlink flushes.
//!
//! sled's `insert` returns once the write is in an in-memory buffer; only a flush makes it survive
//! `kill -9`. Every write of the sled backend therefore ends with [`SledDb::durable`]. With
//! [`Durability::GroupCommit`] a single background thread batches waiters: it takes every waiter queued
//! so far, flushes once, releases them all, and meanwhile the next batch forms. A waiter is always
//! released by a flush that began after it queued, hence after its writes completed. (The thread calls
//! the blocking `flush`, which is what `flush_async` runs underneath; a dedicated thread keeps the store
//! independent of whichever tokio runtime opened it.)
//!
//! Every flush is sled's blocking `flush` (on that thread or a blocking-pool thread), never
//! `flush_async`: concurrent `flush_async` calls deadlock in sled 0.34 (spacejam/sled#1308; the
//! benchmark hung with one `flush_async` per request).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::store::{Durability, StoreError};

use super::high_water::HighWater;

/// sled's page cache bound: memory stays flat as the queue grows (the benchmark measured 520 MB
/// resident with 100,000 queued under sled's 1 GiB default, 186 MB under 64 MiB and 116 MB under 24 MiB,
/// with the same intake and drain rates: BENCHMARKS.md, "sled's page cache").
const CACHE_CAPACITY_BYTES: u64 = 24 * 1024 * 1024;

/// The database and its flusher. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SledDb {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    durability: Durability,
    flushes: Arc<AtomicU64>,
    high_water: Arc<HighWater>,
    /// Waiters for the group-commit thread. `None` only while dropping.
    waiters: Option<mpsc::Sender<Waiter>>,
    flusher: Option<JoinHandle<()>>,
}

type Waiter = oneshot::Sender<Result<(), StoreError>>;

impl SledDb {
    /// Opens (or creates) the database in `dir`. sled's own periodic flush stays on (every 500 ms): it
    /// bounds how much unacknowledged work a crash can lose, but acknowledgements never rely on it.
    pub(crate) fn open(dir: &Path, durability: Durability) -> Result<SledDb, StoreError> {
        let high_water = Arc::new(HighWater::open(dir)?);
        let db = open_waiting_for_lock(dir)?;
        let flushes = Arc::new(AtomicU64::new(0));
        let (waiters, flusher) = match durability {
            Durability::GroupCommit => {
                let (tx, rx) = mpsc::channel::<Waiter>();
                let db = db.clone();
                let flushes = flushes.clone();
                let high_water = high_water.clone();
                let handle = std::thread::Builder::new()
                    .name("store-flusher".into())
                    .spawn(move || group_commit_loop(db, rx, flushes, &high_water))
                    .map_err(StoreError::Io)?;
                (Some(tx), Some(handle))
            }
            Durability::PerRequest | Durability::None => (None, None),
        };
        Ok(SledDb {
            inner: Arc::new(Inner {
                db,
                durability,
                flushes,
                high_water,
                waiters,
                flusher,
            }),
        })
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    /// The high-water mark: writers report inserted message ids to it before waiting for durability.
    pub(crate) fn high_water(&self) -> &HighWater {
        &self.inner.high_water
    }

    /// Returns once every write completed before the call is on disk (crash-safe).
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        match self.inner.durability {
            Durability::None => Ok(()),
            Durability::PerRequest => {
                let mark = self.inner.high_water.snapshot();
                self.blocking_flush().await?;
                self.inner.flushes.fetch_add(1, Ordering::Relaxed);
                self.inner.high_water.flushed(mark);
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

    /// [`SledDb::durable`] for a caller that is itself a batching thread (the outbox's enqueue thread,
    /// `outbox/batch.rs`): it flushes here and now, once for its whole batch, instead of handing every
    /// waiter to the group-commit thread. Blocking.
    pub(crate) fn durable_here(&self) -> Result<(), sled::Error> {
        if self.inner.durability == Durability::None {
            return Ok(());
        }
        let mark = self.inner.high_water.snapshot();
        self.inner.db.flush()?;
        self.inner.high_water.flushed(mark);
        self.inner.flushes.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::ops::metrics::STORE_FLUSHES_TOTAL).increment(1);
        Ok(())
    }

    pub(crate) fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }

    /// sled's blocking `flush` on a blocking thread (see the module documentation for why not
    /// `flush_async`).
    pub(crate) async fn blocking_flush(&self) -> Result<(), StoreError> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|_| StoreError::Closed)??;
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the flusher loop; joining it releases its handle on the
        // database so the same directory can be reopened at once (tests, restarts in-process).
        self.waiters.take();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
        let mark = self.high_water.snapshot();
        if self.db.flush().is_ok() {
            self.high_water.flushed(mark);
        }
    }
}

/// How long [`SledDb::open`] waits for the directory's lock. sled's own IO threads can still hold it
/// for a moment after the previous handle in this process was dropped (CI saw a reopen fail with
/// `EWOULDBLOCK` under load); a second daemon on the same directory still fails after this bound.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Opens sled in `dir`, retrying while another handle still holds the directory's lock.
fn open_waiting_for_lock(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .open();
        match opened {
            Err(sled::Error::Io(e)) if is_lock_contention(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(sled::Error::Io(e)) if is_lock_contention(&e) => {
                return Err(StoreError::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} is in use by another process (is another creditlink running on this data directory?): {e}",
                        dir.display()
                    ),
                )));
            }
            other => return Ok(other?),
        }
    }
}

/// sled reports a held `flock` as an `Other` IO error with this text (sled 0.34 `config.rs`).
fn is_lock_contention(e: &std::io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// The group-commit thread: wait for one waiter, take every other waiter already queued, flush
/// once, answer them all. Waiters arriving during the flush wait for the next round, because the
/// flush in progress may have started before their writes.
fn group_commit_loop(
    db: sled::Db,
    rx: mpsc::Receiver<Waiter>,
    flushes: Arc<AtomicU64>,
    high_water: &HighWater,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        // The mark is taken before the flush, so it names only writes that completed before it.
        let mark = high_water.snapshot();
        let result = db.flush();
        if result.is_ok() {
            high_water.flushed(mark);
        }
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

/// Runs blocking sled work on the blocking pool, off the async workers.
pub(crate) async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<StoreError>,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| E::from(StoreError::Closed))?
}
