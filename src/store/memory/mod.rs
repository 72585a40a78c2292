//! The in-memory backend, for tests: the same seams as sled, nothing on disk, every write "durable" at
//! once. It lets relay and intake tests run under `tokio::time::pause` without touching a disk, and
//! serves as the reference implementation of the contract suite.

mod kv;
mod queue;

pub use kv::MemoryKv;
pub use queue::MemoryQueue;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::outbox::Queue;
use crate::store::{Backend, Kv, StoreError};

/// A queue and named trees in memory. Trees are shared by name, like a database's.
#[derive(Default)]
pub struct MemoryBackend {
    queue: Arc<MemoryQueue>,
    trees: Mutex<HashMap<String, Arc<MemoryKv>>>,
}

#[async_trait]
impl Backend for MemoryBackend {
    fn queue(&self) -> Result<Arc<dyn Queue>, StoreError> {
        Ok(self.queue.clone())
    }

    fn kv(&self, name: &str) -> Result<Arc<dyn Kv>, StoreError> {
        let mut trees = self.trees.lock();
        let tree = trees
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(MemoryKv::new(name)))
            .clone();
        Ok(tree)
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
