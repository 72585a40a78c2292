//! [`SledKv`]: a [`Kv`] tree in sled. Each write runs on a blocking thread and returns after group commit.

use async_trait::async_trait;

use super::db::{SledDb, blocking};
use crate::store::{Kv, KvEntry, StoreError};

pub(crate) struct SledKv {
    name: String,
    tree: sled::Tree,
    db: SledDb,
}

impl SledKv {
    pub(crate) fn open(db: &SledDb, name: &str) -> Result<SledKv, StoreError> {
        Ok(SledKv {
            name: name.to_owned(),
            tree: db.db().open_tree(name)?,
            db: db.clone(),
        })
    }

    /// Runs `f` over the tree on a blocking thread, then waits until it is durable.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&sled::Tree) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let tree = self.tree.clone();
        let out = blocking(move || f(&tree)).await?;
        self.db.durable().await?;
        Ok(out)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&sled::Tree) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let tree = self.tree.clone();
        blocking(move || f(&tree)).await
    }
}

#[async_trait]
impl Kv for SledKv {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.read(move |t| Ok(t.get(key)?.map(|v| v.to_vec())))
            .await
    }

    async fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.write(move |t| Ok(t.insert(key, value)?.map(|v| v.to_vec())))
            .await
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
        let (key, expected, new) = (
            key.to_vec(),
            expected.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
        );
        self.write(move |t| Ok(t.compare_and_swap(key, expected, new)?.is_ok()))
            .await
    }

    async fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.write(move |t| Ok(t.remove(key)?.map(|v| v.to_vec())))
            .await
    }

    async fn remove_all(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let keys = keys.to_vec();
        self.write(move |t| {
            let mut batch = sled::Batch::default();
            for key in keys {
                batch.remove(key);
            }
            Ok(t.apply_batch(batch)?)
        })
        .await
    }

    async fn scan_from(&self, from: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        let from = from.to_vec();
        self.read(move |t| {
            t.range(from..)
                .take(limit)
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
                .collect()
        })
        .await
    }

    async fn len(&self) -> Result<usize, StoreError> {
        self.read(|t| Ok(t.len())).await
    }
}
