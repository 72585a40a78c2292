//! The embedded sled backend: the only code that names `sled`.
//!
//! | file | role |
//! |---|---|
//! | `db.rs` | opening, group commit, the blocking-pool helper |
//! | `high_water.rs` | the mark file that detects a log which lost its tail |
//! | `kv.rs` | [`crate::store::Kv`] trees |
//! | `outbox/` | the outbox's [`crate::outbox::Queue`]: key layout, transactions, reads |

mod db;
mod high_water;
mod kv;
mod outbox;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::outbox::Queue;
use crate::store::{Backend, Durability, Kv, StoreError, files};

use db::SledDb;

/// sled behind the [`Backend`] seam.
pub(crate) struct SledBackend {
    db: SledDb,
    queue: Arc<outbox::SledQueue>,
}

impl SledBackend {
    /// Opens the database and the outbox's trees, recovering in-flight messages.
    /// Refuses damaged files (see `store/files.rs`) and keeps them private.
    pub(crate) fn open(dir: &Path, durability: Durability) -> Result<SledBackend, StoreError> {
        files::private_dir(dir)?;
        files::check_before_open(dir)?;
        let (db, queue) = files::guarded(&dir.join("db"), || {
            let db = SledDb::open(dir, durability)?;
            let queue = Arc::new(outbox::SledQueue::open(&db)?);
            if let Some(mark) = db.high_water().snapshot()
                && !queue.holds(mark)?
            {
                return Err(StoreError::Damaged {
                    path: dir.join("db"),
                    reason: format!(
                        "the log ends before message {}, which it held when last flushed (see {}): \
                         later writes were lost to damage",
                        crate::outbox::MessageId::from_bytes(mark),
                        high_water::FILE
                    ),
                });
            }
            Ok((db, queue))
        })?;
        files::seal_after_open(dir)?;
        Ok(SledBackend { db, queue })
    }
}

#[async_trait]
impl Backend for SledBackend {
    fn queue(&self) -> Result<Arc<dyn Queue>, StoreError> {
        Ok(self.queue.clone())
    }

    fn kv(&self, name: &str) -> Result<Arc<dyn Kv>, StoreError> {
        Ok(Arc::new(kv::SledKv::open(&self.db, name)?))
    }

    /// Writes and flushes a probe key (a full disk fails here).
    async fn check_writable(&self) -> Result<(), StoreError> {
        let probe = self.db.db().open_tree("__probe")?;
        probe.insert(b"probe", &[1u8][..])?;
        self.db.blocking_flush().await
    }

    fn flush_count(&self) -> u64 {
        self.db.flush_count()
    }
}
