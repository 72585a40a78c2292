//! A plain named key-value tree, for small state that needs no transaction with the outbox (endpoint
//! health of bank webhooks, for instance). It keeps sled inside the store module: callers see bytes only.

use super::{Store, StoreError};

/// One named tree of byte keys and values. Cheap to clone. Writes are not durable until
/// [`Store::durable`] returns, like every other write.
#[derive(Clone)]
pub struct KvTree {
    tree: sled::Tree,
}

impl Store {
    /// Opens (or creates) the key-value tree `name`. Names are shared across the process: use a prefix
    /// per module (`bank.endpoints`), and never an `outbox.` name.
    pub fn kv(&self, name: &str) -> Result<KvTree, StoreError> {
        Ok(KvTree {
            tree: self.tree(name)?,
        })
    }
}

impl KvTree {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(key, value)?;
        Ok(())
    }

    pub fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.tree.remove(key)?;
        Ok(())
    }

    /// Every key in order. Meant for small trees (tens of entries).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tree
            .iter()
            .keys()
            .map(|key| Ok(key?.to_vec()))
            .collect()
    }
}
