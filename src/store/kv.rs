//! [`Kv`]: the durable key-value seam, and [`KvTree`], the handle modules hold.

use std::sync::Arc;

use async_trait::async_trait;

use super::StoreError;

/// One key and its value, as returned by scans.
pub type KvEntry = (Vec<u8>, Vec<u8>);

/// A named, ordered byte map. Every write is atomic and durable when it returns `Ok`.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    /// The tree's name, for logs.
    fn name(&self) -> &str;
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `value`, returning the previous value.
    async fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` only if it is absent; returns whether it was inserted. Two concurrent callers cannot
    /// both win.
    async fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<bool, StoreError>;
    /// Replaces `key`'s value only if it still holds `expected` (`None`: absent); returns whether it
    /// did. `new = None` removes it.
    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    async fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes every key in `keys` in one durable step.
    async fn remove_all(&self, keys: &[Vec<u8>]) -> Result<(), StoreError>;
    /// Up to `limit` entries with keys `>= from`, in key order.
    async fn scan_from(&self, from: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError>;
    /// Number of entries (may scan: for tests and metrics, not hot paths).
    async fn len(&self) -> Result<usize, StoreError>;
    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.scan_from(&[], 1).await?.is_empty())
    }
}

/// One named tree of the store. Cheap to clone; keys iterate in byte order.
#[derive(Clone)]
pub struct KvTree {
    kv: Arc<dyn Kv>,
}

impl std::fmt::Debug for KvTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvTree")
            .field("name", &self.kv.name())
            .finish()
    }
}

impl KvTree {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        KvTree { kv }
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(key).await
    }

    /// Sets `key` to `value` durably, returning the previous value.
    pub async fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.insert(key, value).await
    }

    /// Sets `key` only if it is absent; returns whether it was inserted.
    pub async fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        self.kv.insert_if_absent(key, value).await
    }

    /// Sets `key` to `value` only if it still holds `expected`; returns whether it did.
    pub async fn replace_if_eq(
        &self,
        key: &[u8],
        expected: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        self.kv
            .compare_and_swap(key, Some(expected), Some(value))
            .await
    }

    /// Removes `key` only if it still holds `expected`; returns whether it did. Lets a worker drop an entry
    /// it processed without losing a newer write made meanwhile.
    pub async fn remove_if_eq(&self, key: &[u8], expected: &[u8]) -> Result<bool, StoreError> {
        self.kv.compare_and_swap(key, Some(expected), None).await
    }

    pub async fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.remove(key).await
    }

    /// Removes every key in `keys` in one durable step.
    pub async fn remove_all(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.kv.remove_all(keys).await
    }

    /// Up to `limit` entries with keys `>= from`, in key order.
    pub async fn scan_from(&self, from: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        self.kv.scan_from(from, limit).await
    }

    /// Number of entries (a full scan: for tests and metrics, not hot paths).
    pub async fn len(&self) -> Result<usize, StoreError> {
        self.kv.len().await
    }

    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        self.kv.is_empty().await
    }

    /// Every key in order. Meant for small trees (tens of entries).
    pub async fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        let mut from = Vec::new();
        loop {
            let batch = self.kv.scan_from(&from, 256).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(out);
            };
            from = last.clone();
            from.push(0);
            out.extend(batch.into_iter().map(|(k, _)| k));
        }
    }
}
