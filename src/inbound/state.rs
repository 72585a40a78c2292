//! The inbound side's durable bookkeeping, in four store trees.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `inbound.hints` | record id | [`Hint`] (JSON): "look at this record again" |
//! | `inbound.seen` | notification id | expires_at ms (8 B, big-endian) |
//! | `inbound.seen_expiry` | expires_at ms (8) · notification id | empty; purging is a range scan |
//! | `inbound.mirrored` | record id | hex SHA-256 of the last state turned into a bank event |
//! | `inbound.views` | creditlink request id | the `data` of the last bank event (JSON): what the status document shows |
//! | `inbound.meta` | `watermark` | the poll watermark, RFC 3339 |
//!
//! Invariants:
//! - A hint is removed only by the worker that processed exactly that value (compare-and-swap on the whole
//!   value, whose `nonce` changes on every re-hint), so a hint written while its record was being processed
//!   survives and the record is read once more.
//! - The listener writes a notification's hint *before* marking the notification seen, and every store
//!   write is durable when it returns, so after a crash "seen but not hinted" cannot happen on any backend.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{KvTree, Store, StoreError};

const WATERMARK: &[u8] = b"watermark";

/// A pending "re-read this record" with its retry state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hint {
    /// Changes on every (re-)hint so a concurrent re-hint is never removed by mistake.
    pub nonce: u64,
    /// Failed attempts so far (retryable errors back off).
    pub attempts: u32,
    /// Not to be tried before this time (ms since the epoch).
    pub not_before_ms: i64,
}

/// What [`InboundState::next_due`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextDue {
    /// The due hint with the smallest record id, with its record id.
    pub due: Option<(String, Hint)>,
    /// When the earliest not-yet-due hint becomes due (ms since the epoch), if no hint is due now.
    pub earliest_ms: Option<i64>,
}

/// What [`InboundState::due_batch`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueBatch {
    /// Due hints with their record ids, in record-id order.
    pub due: Vec<(String, Hint)>,
    /// When the earliest not-yet-due hint becomes due (ms since the epoch).
    pub earliest_ms: Option<i64>,
}

/// Handles to the inbound trees.
#[derive(Clone, Debug)]
pub struct InboundState {
    hints: KvTree,
    seen: KvTree,
    seen_expiry: KvTree,
    mirrored: KvTree,
    views: KvTree,
    meta: KvTree,
}

impl InboundState {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(InboundState {
            hints: store.kv_tree("inbound.hints")?,
            seen: store.kv_tree("inbound.seen")?,
            seen_expiry: store.kv_tree("inbound.seen_expiry")?,
            mirrored: store.kv_tree("inbound.mirrored")?,
            views: store.kv_tree("inbound.views")?,
            meta: store.kv_tree("inbound.meta")?,
        })
    }

    /// Records a hint for `record_id`, due now. An existing hint keeps its backoff (a record that keeps
    /// failing is not retried faster because Salesforce keeps pushing it) but gets a new nonce.
    pub async fn add_hint(&self, record_id: &str) -> Result<(), StoreError> {
        let key = record_id.as_bytes();
        let hint = match self.hints.get(key).await?.and_then(|v| decode(&v)) {
            Some(old) => Hint {
                nonce: rand::random(),
                ..old
            },
            None => Hint {
                nonce: rand::random(),
                attempts: 0,
                not_before_ms: 0,
            },
        };
        self.hints.insert(key, &encode(&hint)?).await?;
        Ok(())
    }

    /// The due hint with the smallest record id, and the earliest due time of those not yet due. Scans every
    /// hint: there are a handful at any time (one per recently changed record).
    pub async fn next_due(&self, now: DateTime<Utc>) -> Result<NextDue, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut from = Vec::new();
        let mut earliest = None;
        loop {
            let batch = self.hints.scan_from(&from, 256).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(NextDue {
                    due: None,
                    earliest_ms: earliest,
                });
            };
            let mut next_from = last.clone();
            next_from.push(0);
            for (key, value) in batch {
                let Some(hint) = decode(&value) else {
                    // Unreadable: written by something else. Retry it now rather than lose it.
                    let id = String::from_utf8_lossy(&key).into_owned();
                    let hint = Hint {
                        nonce: 0,
                        attempts: 0,
                        not_before_ms: 0,
                    };
                    self.hints.insert(&key, &encode(&hint)?).await?;
                    return Ok(due(id, hint));
                };
                if hint.not_before_ms <= now_ms {
                    let id = String::from_utf8_lossy(&key).into_owned();
                    return Ok(due(id, hint));
                }
                earliest =
                    Some(earliest.map_or(hint.not_before_ms, |e: i64| e.min(hint.not_before_ms)));
            }
            from = next_from;
        }
    }

    /// Up to `max` due hints in record-id order (a batch the mirror re-reads with one query); when none is due,
    /// the earliest due time of the others. Same scan as [`InboundState::next_due`].
    pub async fn due_batch(&self, now: DateTime<Utc>, max: usize) -> Result<DueBatch, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut due = Vec::new();
        let mut earliest = None;
        let mut from = Vec::new();
        while due.len() < max {
            let batch = self.hints.scan_from(&from, 256).await?;
            let Some((last, _)) = batch.last() else {
                break;
            };
            let mut next_from = last.clone();
            next_from.push(0);
            for (key, value) in batch {
                let id = String::from_utf8_lossy(&key).into_owned();
                let hint = match decode(&value) {
                    Some(hint) => hint,
                    None => {
                        // Unreadable: written by something else. Retry it now rather than lose it.
                        let hint = Hint {
                            nonce: 0,
                            attempts: 0,
                            not_before_ms: 0,
                        };
                        self.hints.insert(&key, &encode(&hint)?).await?;
                        hint
                    }
                };
                if hint.not_before_ms <= now_ms {
                    due.push((id, hint));
                    if due.len() == max {
                        break;
                    }
                } else {
                    earliest = Some(
                        earliest.map_or(hint.not_before_ms, |e: i64| e.min(hint.not_before_ms)),
                    );
                }
            }
            from = next_from;
        }
        Ok(DueBatch {
            due,
            earliest_ms: earliest,
        })
    }

    /// Removes the hint if it is still exactly `processed`; a re-hint made meanwhile stays.
    pub async fn finish_hint(&self, record_id: &str, processed: &Hint) -> Result<bool, StoreError> {
        self.hints
            .remove_if_eq(record_id.as_bytes(), &encode(processed)?)
            .await
    }

    /// Pushes the hint back after a retryable failure, unless it was re-hinted meanwhile (then it is retried
    /// at once: there may be news).
    pub async fn defer_hint(
        &self,
        record_id: &str,
        processed: &Hint,
        not_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let deferred = Hint {
            nonce: processed.nonce,
            attempts: processed.attempts.saturating_add(1),
            not_before_ms: not_before.timestamp_millis(),
        };
        self.hints
            .replace_if_eq(
                record_id.as_bytes(),
                &encode(processed)?,
                &encode(&deferred)?,
            )
            .await?;
        Ok(())
    }

    pub async fn hint_count(&self) -> Result<usize, StoreError> {
        self.hints.len().await
    }

    /// Marks a notification id seen until `expires_at`; false when it was seen already.
    pub async fn mark_seen(
        &self,
        notification_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let ms = expires_at.timestamp_millis().to_be_bytes();
        if !self
            .seen
            .insert_if_absent(notification_id.as_bytes(), &ms)
            .await?
        {
            return Ok(false);
        }
        self.seen_expiry
            .insert(&expiry_key(&ms, notification_id), &[])
            .await?;
        Ok(true)
    }

    pub async fn is_seen(&self, notification_id: &str) -> Result<bool, StoreError> {
        Ok(self.seen.get(notification_id.as_bytes()).await?.is_some())
    }

    /// Forgets notification ids whose TTL ended by `now`; returns how many.
    pub async fn purge_seen(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut purged = 0;
        loop {
            let batch = self.seen_expiry.scan_from(&[], 256).await?;
            let mut expired = Vec::new();
            let mut ids = Vec::new();
            let mut reached_live = false;
            for (key, _) in batch {
                match key.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                    Some(ms) if i64::from_be_bytes(ms) > now_ms => {
                        reached_live = true;
                        break;
                    }
                    Some(_) => ids.push(key[8..].to_vec()),
                    None => {}
                }
                expired.push(key);
            }
            if expired.is_empty() {
                return Ok(purged);
            }
            // Seen entries first: a crash in between leaves an expiry entry pointing at nothing, which the
            // next purge removes.
            self.seen.remove_all(&ids).await?;
            self.seen_expiry.remove_all(&expired).await?;
            purged += ids.len();
            if reached_live {
                return Ok(purged);
            }
        }
    }

    /// The hash of the state last mirrored for this record.
    pub async fn mirrored(&self, record_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .mirrored
            .get(record_id.as_bytes())
            .await?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub async fn set_mirrored(&self, record_id: &str, state_hash: &str) -> Result<(), StoreError> {
        self.mirrored
            .insert(record_id.as_bytes(), state_hash.as_bytes())
            .await?;
        Ok(())
    }

    /// The `data` of the last bank event sent for a request, by its creditlink id (the request's lifecycle as
    /// the bureau last left it; see `crate::lifecycle`).
    pub async fn view(&self, request_key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(self
            .views
            .get(request_key.as_bytes())
            .await?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    pub async fn set_view(
        &self,
        request_key: &str,
        data: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(data).map_err(|source| StoreError::Decode {
            what: "request view",
            source,
        })?;
        self.views.insert(request_key.as_bytes(), &bytes).await?;
        Ok(())
    }

    pub async fn watermark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.meta.get(WATERMARK).await?.and_then(|v| {
            DateTime::parse_from_rfc3339(&String::from_utf8_lossy(&v))
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }))
    }

    pub async fn set_watermark(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.meta
            .insert(WATERMARK, at.to_rfc3339().as_bytes())
            .await?;
        Ok(())
    }
}

fn due(record_id: String, hint: Hint) -> NextDue {
    NextDue {
        due: Some((record_id, hint)),
        earliest_ms: None,
    }
}

fn expiry_key(ms: &[u8; 8], id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(ms);
    key.extend_from_slice(id.as_bytes());
    key
}

fn encode(hint: &Hint) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(hint).map_err(|source| StoreError::Decode {
        what: "inbound hint",
        source,
    })
}

fn decode(bytes: &[u8]) -> Option<Hint> {
    serde_json::from_slice(bytes).ok()
}
