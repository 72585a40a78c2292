//! The feeds' durable bookkeeping, over the store's key-value trees (sled or PostgreSQL alike):
//!
//! ```text
//! feeds.uploads      <upload id>                      → Upload (JSON)       the history; never purged
//! feeds.by_bank      <account id>/<inverted id>       → upload id           newest first per bank
//! feeds.active       <upload id>                      → ""                  received or processing
//! feeds.batches      <upload id>/<batch, 8 hex>       → Batch (JSON)        row verdicts, 200 per batch
//! feeds.pending      <upload id>/<batch, 8 hex>       → Plan (JSON)         a batch being sent (see worker)
//! feeds.bulk         <upload id>/<first batch, 8 hex> → [job id] (JSON)    a Bulk job's part being sent
//! feeds.idempotency  <account id> NUL <key>           → {id, sha256}
//! ```
//! Upload ids are UUID v7, so they sort by receipt time; the per-bank index inverts them so that a forward
//! scan lists the newest first. Every write is durable when it returns.

use serde::{Deserialize, Serialize};

use super::error::FeedError;
use super::model::{Batch, Upload};
use crate::store::{KvTree, Store};

#[derive(Clone, Debug)]
pub struct Ledger {
    uploads: KvTree,
    by_bank: KvTree,
    active: KvTree,
    batches: KvTree,
    pending: KvTree,
    bulk: KvTree,
    idempotency: KvTree,
}

/// What an `Idempotency-Key` points to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdemEntry {
    pub id: String,
    pub sha256: String,
    /// When the key was claimed: a claim whose upload never got recorded (a crash in between) is taken
    /// over after a minute.
    pub at: chrono::DateTime<chrono::Utc>,
}

fn batch_key(id: &str, batch: u64) -> Vec<u8> {
    format!("{id}/{batch:08x}").into_bytes()
}

fn bank_key(tenant: &str, id: &str) -> Vec<u8> {
    let inverted = uuid::Uuid::parse_str(id)
        .map(|u| format!("{:032x}", u128::MAX - u.as_u128()))
        .unwrap_or_else(|_| id.to_owned());
    format!("{tenant}/{inverted}").into_bytes()
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, FeedError> {
    serde_json::from_slice(bytes).map_err(|e| FeedError::Corrupt(e.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("feeds records serialise")
}

impl Ledger {
    pub fn open(store: &Store) -> Result<Ledger, FeedError> {
        Ok(Ledger {
            uploads: store.kv_tree("feeds.uploads")?,
            by_bank: store.kv_tree("feeds.by_bank")?,
            active: store.kv_tree("feeds.active")?,
            batches: store.kv_tree("feeds.batches")?,
            pending: store.kv_tree("feeds.pending")?,
            bulk: store.kv_tree("feeds.bulk")?,
            idempotency: store.kv_tree("feeds.idempotency")?,
        })
    }

    /// Records a newly received upload: the active mark first, then the record, then the bank index. A crash
    /// in between leaves an active id without a record, which the worker drops (with its spool): the client
    /// got no answer and sends the upload again.
    pub async fn create(&self, upload: &Upload) -> Result<(), FeedError> {
        self.active.insert(upload.id.as_bytes(), b"").await?;
        self.uploads
            .insert(upload.id.as_bytes(), &encode(upload))
            .await?;
        self.by_bank
            .insert(&bank_key(&upload.tenant, &upload.id), upload.id.as_bytes())
            .await?;
        Ok(())
    }

    /// Drops an active id whose upload was never recorded (see [`Ledger::create`]).
    pub async fn drop_active(&self, id: &str) -> Result<(), FeedError> {
        self.active.remove(id.as_bytes()).await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Upload>, FeedError> {
        match self.uploads.get(id.as_bytes()).await? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub async fn put(&self, upload: &Upload) -> Result<(), FeedError> {
        self.uploads
            .insert(upload.id.as_bytes(), &encode(upload))
            .await?;
        Ok(())
    }

    pub async fn finish(&self, upload: &Upload) -> Result<(), FeedError> {
        self.put(upload).await?;
        self.active.remove(upload.id.as_bytes()).await?;
        let prefix = format!("{}/", upload.id);
        for tree in [&self.pending, &self.bulk] {
            let keys: Vec<Vec<u8>> = tree
                .scan_from(prefix.as_bytes(), 10_000)
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(prefix.as_bytes()))
                .collect();
            tree.remove_all(&keys).await?;
        }
        Ok(())
    }

    /// Ids of uploads still to process, oldest first.
    pub async fn active(&self) -> Result<Vec<String>, FeedError> {
        Ok(self
            .active
            .keys()
            .await?
            .into_iter()
            .filter_map(|k| String::from_utf8(k).ok())
            .collect())
    }

    /// A bank's uploads, newest first, starting after the upload `after` (exclusive).
    pub async fn list(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Upload>, FeedError> {
        let prefix = format!("{tenant}/").into_bytes();
        let mut from = match after {
            Some(id) => {
                let mut k = bank_key(tenant, id);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let page = self.by_bank.scan_from(&from, 100).await?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (k, id) in page {
                if !k.starts_with(&prefix) {
                    return Ok(out);
                }
                let id = String::from_utf8_lossy(&id).into_owned();
                if let Some(u) = self.get(&id).await? {
                    out.push(u);
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    pub async fn put_batch(&self, id: &str, index: u64, batch: &Batch) -> Result<(), FeedError> {
        self.batches
            .insert(&batch_key(id, index), &encode(batch))
            .await?;
        Ok(())
    }

    pub async fn batch(&self, id: &str, index: u64) -> Result<Option<Batch>, FeedError> {
        match self.batches.get(&batch_key(id, index)).await? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub async fn put_pending(&self, id: &str, index: u64, plan: &[u8]) -> Result<(), FeedError> {
        self.pending.insert(&batch_key(id, index), plan).await?;
        Ok(())
    }

    pub async fn pending(&self, id: &str, index: u64) -> Result<Option<Vec<u8>>, FeedError> {
        Ok(self.pending.get(&batch_key(id, index)).await?)
    }

    /// The Bulk API jobs created so far for the part of an upload that starts at batch `first`, oldest first.
    pub async fn bulk_jobs(&self, id: &str, first: u64) -> Result<Vec<String>, FeedError> {
        match self.bulk.get(&batch_key(id, first)).await? {
            Some(bytes) => decode(&bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Records the part's jobs; durable before a new job gets any data.
    pub async fn put_bulk_jobs(
        &self,
        id: &str,
        first: u64,
        jobs: &[String],
    ) -> Result<(), FeedError> {
        self.bulk
            .insert(&batch_key(id, first), &encode(&jobs))
            .await?;
        Ok(())
    }

    /// Claims `key` for the upload `entry`; on a replay returns what the key already points to.
    pub async fn claim_key(
        &self,
        tenant: &str,
        key: &str,
        entry: &IdemEntry,
    ) -> Result<Option<IdemEntry>, FeedError> {
        let k = format!("{tenant}\0{key}").into_bytes();
        if self
            .idempotency
            .insert_if_absent(&k, &encode(entry))
            .await?
        {
            return Ok(None);
        }
        match self.idempotency.get(&k).await? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Points `key` at `entry` instead of `old` (taking over an abandoned claim); false when it changed.
    pub async fn take_over_key(
        &self,
        tenant: &str,
        key: &str,
        old: &IdemEntry,
        entry: &IdemEntry,
    ) -> Result<bool, FeedError> {
        let k = format!("{tenant}\0{key}").into_bytes();
        Ok(self
            .idempotency
            .replace_if_eq(&k, &encode(old), &encode(entry))
            .await?)
    }
}
