//! The feeds' durable bookkeeping, over the store's key-value trees (sled or PostgreSQL alike):
//!
//! ```text
//! feeds.uploads      <upload id>                      → Upload (JSON)       the history; never purged
//! feeds.by_bank      <account id>/<inverted id>       → upload id           newest first per bank
//! feeds.active       <upload id>                      → ""                  received or processing
//! feeds.batches      <upload id>/<batch, 8 hex>       → Batch (compact)     row verdicts, 200 per batch
//! feeds.pending      <upload id>/<batch, 8 hex>       → Plan (JSON)         a batch being sent (see worker)
//! feeds.bulk         <upload id>/<first batch, 8 hex> → [job id] (JSON)    a Bulk job's part being sent
//! feeds.idempotency  <account id> NUL <key>           → {id, sha256}
//! ```
//! Upload ids are UUID v7, so they sort by receipt time; the per-bank index inverts them so that a forward
//! scan lists the newest first. Every write is durable when it returns.
//!
//! A batch of verdicts is stored compactly (see [`encode_batch`]): about 40 bytes per row instead of about
//! 150 as JSON. sled keeps what was written in memory — its LRU pages out only after 64 accesses to a
//! shard's pages, which write-once trees like this one never reach — so a 1,000,000-row upload's verdicts
//! held about 150 MB of the daemon's RSS as JSON. Batches stored as JSON by earlier versions still decode.

use serde::{Deserialize, Serialize};

use super::error::FeedError;
use super::model::{Batch, Outcome, RowResult, Upload};
use crate::store::binary::{Reader, put_var_bytes, put_varint};
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
            .insert(&batch_key(id, index), &encode_batch(batch))
            .await?;
        Ok(())
    }

    pub async fn batch(&self, id: &str, index: u64) -> Result<Option<Batch>, FeedError> {
        match self.batches.get(&batch_key(id, index)).await? {
            Some(bytes) => Ok(Some(decode_batch(&bytes)?)),
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

/// The first byte of a compactly stored batch (a JSON one starts with `{`).
const COMPACT_V1: u8 = 1;

const HAS_KEY: u8 = 1 << 3;
/// The record key is `rk_` and 32 lowercase hex digits, stored as its 16 bytes.
const KEY_HEX: u8 = 1 << 4;
const HAS_ID: u8 = 1 << 5;
const HAS_PROBLEMS: u8 = 1 << 6;
const HAS_DUPLICATE_OF: u8 = 1 << 7;

fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::Accepted => 0,
        Outcome::Updated => 1,
        Outcome::Unchanged => 2,
        Outcome::Duplicate => 3,
        Outcome::Rejected => 4,
        Outcome::Reinstated => 5,
    }
}

fn outcome_of(code: u8) -> Option<Outcome> {
    Some(match code {
        0 => Outcome::Accepted,
        1 => Outcome::Updated,
        2 => Outcome::Unchanged,
        3 => Outcome::Duplicate,
        4 => Outcome::Rejected,
        5 => Outcome::Reinstated,
        _ => return None,
    })
}

/// The 16 bytes of a record key `rk_` + 32 lowercase hex digits (only a key that prints back the same).
fn key_hex(key: &str) -> Option<[u8; 16]> {
    let hex = key.strip_prefix("rk_")?;
    if hex.len() != 32
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// A batch as stored: [`COMPACT_V1`], the row count, then per row its number, a flags byte (the outcome in
/// the low 3 bits), the record key (16 bytes, or length and text), the Salesforce id, the problems (JSON)
/// and the row it duplicates, each only when there; last the sealed rejected rows, if any.
fn encode_batch(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + batch.rows.len() * 40);
    out.push(COMPACT_V1);
    put_varint(&mut out, batch.rows.len() as u64);
    for r in &batch.rows {
        put_varint(&mut out, r.row);
        let hex = r.record_key.as_deref().and_then(key_hex);
        let mut flags = outcome_code(r.outcome);
        if r.record_key.is_some() {
            flags |= HAS_KEY;
        }
        if hex.is_some() {
            flags |= KEY_HEX;
        }
        if r.salesforce_id.is_some() {
            flags |= HAS_ID;
        }
        if !r.problems.is_empty() {
            flags |= HAS_PROBLEMS;
        }
        if r.duplicate_of.is_some() {
            flags |= HAS_DUPLICATE_OF;
        }
        out.push(flags);
        match (hex, &r.record_key) {
            (Some(bytes), _) => out.extend_from_slice(&bytes),
            (None, Some(key)) => put_var_bytes(&mut out, key.as_bytes()),
            (None, None) => {}
        }
        if let Some(id) = &r.salesforce_id {
            put_var_bytes(&mut out, id.as_bytes());
        }
        if !r.problems.is_empty() {
            put_var_bytes(&mut out, &encode(&r.problems));
        }
        if let Some(of) = r.duplicate_of {
            put_varint(&mut out, of);
        }
    }
    match &batch.rejected {
        Some(sealed) => {
            out.push(1);
            put_var_bytes(&mut out, sealed.as_bytes());
        }
        None => out.push(0),
    }
    out
}

/// Reads what [`encode_batch`] wrote, or a batch stored as JSON.
fn decode_batch(bytes: &[u8]) -> Result<Batch, FeedError> {
    if bytes.first() != Some(&COMPACT_V1) {
        return decode(bytes);
    }
    let bad = || FeedError::Corrupt("stored batch: truncated or malformed".into());
    let mut r = Reader(&bytes[1..]);
    let count = r.varint().ok_or_else(bad)?;
    let mut rows = Vec::with_capacity(count.min(10_000) as usize);
    for _ in 0..count {
        let row = r.varint().ok_or_else(bad)?;
        let flags = r.u8().ok_or_else(bad)?;
        let outcome = outcome_of(flags & 0b111).ok_or_else(bad)?;
        let record_key = if flags & KEY_HEX != 0 {
            Some(format!("rk_{}", hex::encode(r.take(16).ok_or_else(bad)?)))
        } else if flags & HAS_KEY != 0 {
            Some(r.var_str().ok_or_else(bad)?.to_owned())
        } else {
            None
        };
        let salesforce_id = if flags & HAS_ID != 0 {
            Some(r.var_str().ok_or_else(bad)?.to_owned())
        } else {
            None
        };
        let problems = if flags & HAS_PROBLEMS != 0 {
            decode(r.var_bytes().ok_or_else(bad)?)?
        } else {
            Vec::new()
        };
        let duplicate_of = if flags & HAS_DUPLICATE_OF != 0 {
            Some(r.varint().ok_or_else(bad)?)
        } else {
            None
        };
        rows.push(RowResult {
            row,
            outcome,
            record_key,
            salesforce_id,
            problems,
            duplicate_of,
        });
    }
    let rejected = match r.u8().ok_or_else(bad)? {
        0 => None,
        1 => Some(r.var_str().ok_or_else(bad)?.to_owned()),
        _ => return Err(bad()),
    };
    if !r.0.is_empty() {
        return Err(bad());
    }
    Ok(Batch { rows, rejected })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::reasons::RowProblem;

    fn row(row: u64, outcome: Outcome) -> RowResult {
        RowResult {
            row,
            outcome,
            record_key: None,
            salesforce_id: None,
            problems: Vec::new(),
            duplicate_of: None,
        }
    }

    fn sample() -> Batch {
        let mut rows = Vec::new();
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            let mut r = row(1_000_000 + i as u64, outcome);
            r.record_key = Some(format!("rk_{:032x}", u128::MAX - i as u128));
            r.salesforce_id = Some(format!("a0B00000000{i:04}AAA"));
            rows.push(r);
        }
        // Keys that are not 16 bytes of lowercase hex are kept as text.
        for key in [
            "rk_ABCDEF0123456789abcdef0123456789",
            "rk_12",
            "",
            "rk_zz",
            "other",
        ] {
            let mut r = row(7, Outcome::Updated);
            r.record_key = Some(key.to_owned());
            rows.push(r);
        }
        let mut dup = row(8, Outcome::Duplicate);
        dup.duplicate_of = Some(123_456_789);
        dup.problems = vec![RowProblem::with_message(
            crate::feeds::reasons::DUPLICATE_IN_UPLOAD,
            "",
            "Duplicate rule: \"x\"; row 9.".into(),
        )];
        rows.push(dup);
        let mut rejected = row(9, Outcome::Rejected);
        rejected.problems = vec![
            RowProblem::new(crate::feeds::reasons::SALESFORCE_REJECTED, "balance"),
            RowProblem::new(crate::feeds::reasons::DUPLICATE_FLAGGED, ""),
        ];
        rows.push(rejected);
        rows.push(row(0, Outcome::Rejected));
        rows.push(row(u64::MAX, Outcome::Accepted));
        Batch {
            rows,
            rejected: Some("c2VhbGVk".into()),
        }
    }

    #[test]
    fn a_batch_round_trips_compactly() {
        for batch in [
            sample(),
            Batch {
                rows: Vec::new(),
                rejected: None,
            },
        ] {
            let bytes = encode_batch(&batch);
            let back = decode_batch(&bytes).expect("decodes");
            assert_eq!(back.rows, batch.rows);
            assert_eq!(back.rejected, batch.rejected);
        }
    }

    #[test]
    fn a_bulk_row_takes_about_40_bytes_and_json_still_decodes() {
        let rows: Vec<RowResult> = (1..=200u64)
            .map(|i| RowResult {
                record_key: Some(format!("rk_{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15)),
                salesforce_id: Some(format!("a0B5g00000{i:05}AAA")),
                ..row(900_000 + i, Outcome::Accepted)
            })
            .collect();
        let batch = Batch {
            rows,
            rejected: None,
        };
        let compact = encode_batch(&batch);
        let json = encode(&batch);
        assert!(compact.len() <= 200 * 40, "{} bytes", compact.len());
        assert!(
            json.len() > 3 * compact.len(),
            "{} vs {}",
            json.len(),
            compact.len()
        );
        // Batches stored as JSON (by earlier versions) still read.
        let back = decode_batch(&json).expect("JSON decodes");
        assert_eq!(back.rows, batch.rows);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let bytes = encode_batch(&sample());
        for cut in 1..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_batch(&long).is_err());
        assert!(decode_batch(&[COMPACT_V1, 0xff]).is_err());
    }
}
