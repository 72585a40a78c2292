//! Idempotency keys in sled: the stored record under each key's hash, and the in-memory filter that lets
//! an enqueue with a new key (nearly every one) skip reading the `idempotency` tree.
//!
//! The filter counts the stored keys by the first 4 bytes of their hash (a SHA-256, so uniform). A
//! count of zero means no stored key has that prefix, and the enqueue writes its record without reading;
//! any other count means "read the tree". It must never count fewer keys than are stored, so:
//! - it is filled at open from the tree, before any enqueue or purge runs;
//! - only the batch thread adds (`batch.rs`), after its transaction commits and before it checks the next
//!   batch; a key written earlier in the same transaction is checked against that transaction's own list;
//! - purge takes a key off only after the transaction that removed it committed.
//!
//! Adds and removals of different threads commute (counts, not a set), so their order does not matter.
//! Counting more than stored (a prefix shared by two keys, one since removed) only costs a read.
//!
//! Memory: one map entry per stored key, 10-20 bytes with the map's spare capacity. A key is stored for
//! `[intake] idempotency_ttl_hours` (24 h by default) and purged within 10 minutes after, so the count
//! follows the requests of the last day: 100,000 keys take 1-2 MB. Four bytes of prefix make a shared
//! prefix (a read that finds nothing) rare: with a million keys stored, about one new key in 4,300.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::outbox::{MessageId, OutboxError};
use crate::store::StoreError;
use crate::store::binary::Reader;

use super::keys;
use super::tx::Trees;

/// The value under an idempotency key: `id (16) | body hash (32) | expires_at ms (8)`.
pub(crate) struct IdemRecord {
    pub(crate) id: MessageId,
    pub(crate) body_hash: [u8; 32],
    pub(crate) expires_at: DateTime<Utc>,
}

impl IdemRecord {
    pub(crate) fn encode(&self) -> [u8; 56] {
        let mut v = [0u8; 56];
        v[..16].copy_from_slice(&self.id.to_bytes());
        v[16..48].copy_from_slice(&self.body_hash);
        v[48..].copy_from_slice(&keys::millis(self.expires_at).to_be_bytes());
        v
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, OutboxError> {
        let mut r = Reader(bytes);
        let (Some(id), Some(body_hash), Some(ms)) = (r.array(), r.array(), r.array()) else {
            return Err(OutboxError::Corrupt("idempotency record"));
        };
        Ok(IdemRecord {
            id: MessageId::from_bytes(id),
            body_hash,
            expires_at: keys::from_millis(u64::from_be_bytes(ms)),
        })
    }
}

/// Stored idempotency keys counted by hash prefix (see the module documentation).
#[derive(Default)]
pub(crate) struct KeyFilter {
    counts: HashMap<u32, u32>,
}

/// The filter, shared by the batch thread (adds) and purge (removes).
pub(crate) type SharedKeyFilter = Arc<Mutex<KeyFilter>>;

fn prefix(hash: &[u8; 32]) -> u32 {
    u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]])
}

impl KeyFilter {
    /// Whether a key with this hash may be stored (`false`: it certainly is not).
    pub(crate) fn may_hold(&self, hash: &[u8; 32]) -> bool {
        self.counts.contains_key(&prefix(hash))
    }

    /// A key newly stored (not one overwritten in place).
    pub(crate) fn added(&mut self, hash: &[u8; 32]) {
        *self.counts.entry(prefix(hash)).or_default() += 1;
    }

    /// A key removed from the store.
    pub(crate) fn removed(&mut self, hash: &[u8; 32]) {
        let slot = prefix(hash);
        if let Some(n) = self.counts.get_mut(&slot) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&slot);
            }
        }
    }

    /// How many prefixes are counted (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.counts.len()
    }
}

/// Most keys purged in one transaction.
const PURGE_BATCH: usize = 256;

impl Trees {
    /// Fills the filter from the stored keys (at open, before any enqueue or purge). Returns how many.
    pub(crate) fn fill_key_filter(&self) -> Result<usize, OutboxError> {
        let mut filter = self.keys.lock();
        let mut n = 0;
        for key in self.idempotency.iter().keys() {
            let key = key.map_err(StoreError::from)?;
            if let Ok(hash) = <[u8; 32]>::try_from(&key[..]) {
                filter.added(&hash);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes every key that expired by `now`: a scan of the key records (they are few: one per request
    /// within the TTL), then transactions of up to [`PURGE_BATCH`] that check each record again (an
    /// enqueue may have renewed it since).
    pub(crate) fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        let mut expired = Vec::new();
        for entry in self.idempotency.iter() {
            let (key, value) = entry.map_err(StoreError::from)?;
            let Ok(hash) = <[u8; 32]>::try_from(&key[..]) else {
                continue;
            };
            if IdemRecord::decode(&value)?.expires_at <= now {
                expired.push(hash);
            }
        }
        let mut purged = 0;
        for chunk in expired.chunks(PURGE_BATCH) {
            let (removed, _) = self.transact(|tx| {
                let mut removed = Vec::new();
                for hash in chunk {
                    let Some(bytes) = tx.idempotency.get(hash)? else {
                        continue;
                    };
                    let record = IdemRecord::decode(&bytes).map_err(super::tx::abort)?;
                    if record.expires_at <= now {
                        tx.idempotency.unset(&hash[..]);
                        removed.push(*hash);
                    }
                }
                Ok(removed)
            })?;
            // Committed: only now may the filter forget them.
            let mut filter = self.keys.lock();
            for hash in &removed {
                filter.removed(hash);
            }
            purged += removed.len();
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(first: u8, last: u8) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[0] = first;
        h[31] = last;
        h
    }

    #[test]
    fn the_filter_counts_keys_by_prefix() {
        let mut filter = KeyFilter::default();
        assert!(!filter.may_hold(&hash(1, 0)));
        filter.added(&hash(1, 0));
        // Two keys with one prefix: both must go before the prefix reads as absent.
        filter.added(&hash(1, 9));
        assert!(filter.may_hold(&hash(1, 0)));
        assert!(
            filter.may_hold(&hash(1, 5)),
            "a shared prefix means: read the tree"
        );
        assert!(!filter.may_hold(&hash(2, 0)));
        filter.removed(&hash(1, 0));
        assert!(filter.may_hold(&hash(1, 9)));
        filter.removed(&hash(1, 9));
        assert!(!filter.may_hold(&hash(1, 9)));
        assert_eq!(filter.len(), 0);
        // A removal of an uncounted key changes nothing.
        filter.removed(&hash(3, 0));
        assert_eq!(filter.len(), 0);
    }

    #[test]
    fn records_round_trip_and_short_ones_are_corrupt() {
        let record = IdemRecord {
            id: MessageId::new(),
            body_hash: [5; 32],
            expires_at: keys::from_millis(1_700_000_000_123),
        };
        let back = IdemRecord::decode(&record.encode()).expect("decode");
        assert_eq!(
            (back.id, back.body_hash, back.expires_at),
            (record.id, record.body_hash, record.expires_at)
        );
        assert!(IdemRecord::decode(&record.encode()[..55]).is_err());
    }
}
