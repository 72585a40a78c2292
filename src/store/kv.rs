//! [`KvTree`]: a named, ordered byte map for modules that keep small bookkeeping state of their own (the
//! inbound listener's hints, seen-sets, watermarks) without learning sled.
//!
//! Writes are like every store write: visible at once, crash-safe only after [`super::Store::durable`].

use super::StoreError;

/// One key and its value, as returned by scans.
pub type KvEntry = (Vec<u8>, Vec<u8>);

/// One named tree of the store. Cheap to clone; keys iterate in byte order.
#[derive(Clone)]
pub struct KvTree {
    tree: sled::Tree,
}

impl std::fmt::Debug for KvTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvTree")
            .field("name", &String::from_utf8_lossy(&self.tree.name()))
            .finish()
    }
}

impl KvTree {
    pub(super) fn new(tree: sled::Tree) -> Self {
        KvTree { tree }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.insert(key, value)?.map(|v| v.to_vec()))
    }

    /// Sets `key` only if it is absent; returns whether it was inserted. Atomic, so two concurrent callers
    /// cannot both win.
    pub fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .tree
            .compare_and_swap(key, None::<&[u8]>, Some(value))?
            .is_ok())
    }

    /// Removes `key` only if it still holds `expected`; returns whether it did. Lets a worker drop an entry
    /// it processed without losing a newer write made meanwhile.
    pub fn remove_if_eq(&self, key: &[u8], expected: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .tree
            .compare_and_swap(key, Some(expected), None::<&[u8]>)?
            .is_ok())
    }

    pub fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.remove(key)?.map(|v| v.to_vec()))
    }

    /// Up to `limit` entries with keys `>= from`, in key order.
    pub fn scan_from(&self, from: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        self.tree
            .range(from..)
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
            .collect()
    }

    /// Number of entries (a full scan: for tests and metrics, not hot paths).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}
