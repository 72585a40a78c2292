//! [`MemoryKv`]: a [`Kv`] tree in a `BTreeMap`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::store::{Kv, KvEntry, StoreError};

pub struct MemoryKv {
    name: String,
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryKv {
    pub fn new(name: &str) -> MemoryKv {
        MemoryKv {
            name: name.to_owned(),
            map: Mutex::default(),
        }
    }
}

#[async_trait]
impl Kv for MemoryKv {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.lock().get(key).cloned())
    }

    async fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.lock().insert(key.to_vec(), value.to_vec()))
    }

    async fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        self.compare_and_swap(key, None, Some(value)).await
    }

    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let mut map = self.map.lock();
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        match new {
            Some(value) => map.insert(key.to_vec(), value.to_vec()),
            None => map.remove(key),
        };
        Ok(true)
    }

    async fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.lock().remove(key))
    }

    async fn remove_all(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut map = self.map.lock();
        for key in keys {
            map.remove(key);
        }
        Ok(())
    }

    async fn scan_from(&self, from: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        Ok(self
            .map
            .lock()
            .range(from.to_vec()..)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn len(&self) -> Result<usize, StoreError> {
        Ok(self.map.lock().len())
    }
}
