//! The producer and worker side: enqueue, claim, record attempts, expire leases and keys.

use chrono::{DateTime, Utc};

use crate::store::StoreError;

use super::keys;
use super::tx::abort;
use super::types::{
    Attempt, Enqueued, LastError, Message, MessageId, NewMessage, State, Transition,
};
use super::{DestinationKind, Lane, Outbox, OutboxError};

/// Longest a chrono duration conversion may fail on; delays beyond it are treated as "never".
const FAR: chrono::Duration = chrono::Duration::days(365 * 100);

impl Outbox {
    /// Queues a message, due now. Not durable until [`crate::store::Store::durable`] returns.
    pub fn enqueue(&self, new: NewMessage) -> Result<MessageId, OutboxError> {
        self.enqueue_at(new, Utc::now())
    }

    /// [`Outbox::enqueue`] with an explicit clock, for tests and replays.
    pub fn enqueue_at(
        &self,
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<MessageId, OutboxError> {
        self.enqueue_as(MessageId::new(), new, now)
    }

    /// [`Outbox::enqueue_at`] under an id the producer chose beforehand: intake maps the request
    /// with its creditlink id (the Salesforce External ID) before queueing it.
    pub fn enqueue_as(
        &self,
        id: MessageId,
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<MessageId, OutboxError> {
        let message = fresh(id, new, now);
        self.commit(|tx| tx.put(None, &message))?;
        Ok(message.id)
    }

    /// Queues a message unless `(tenant, idempotency_key)` was seen within the TTL.
    ///
    /// Check and insert are one transaction, so concurrent posts with one key create one message.
    /// Only a hash of the key and the caller's `body_hash` are stored. `tenant` scopes the key (two
    /// banks may use the same key) and should equal `new.tenant`. An expired key that was not yet
    /// purged counts as absent.
    pub fn enqueue_idempotent(
        &self,
        tenant: &str,
        idempotency_key: &str,
        body_hash: [u8; 32],
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, OutboxError> {
        self.enqueue_idempotent_as(
            MessageId::new(),
            tenant,
            idempotency_key,
            body_hash,
            new,
            now,
        )
    }

    /// [`Outbox::enqueue_idempotent`] under an id the producer chose beforehand; on a replay the
    /// stored id wins and `id` is unused.
    pub fn enqueue_idempotent_as(
        &self,
        id: MessageId,
        tenant: &str,
        idempotency_key: &str,
        body_hash: [u8; 32],
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, OutboxError> {
        let key = keys::idempotency(tenant, idempotency_key);
        let message = fresh(id, new, now);
        let ttl = chrono::Duration::from_std(self.inner.options.idempotency_ttl).unwrap_or(FAR);
        let expires_at = now + ttl;
        self.commit(|tx| {
            if let Some(bytes) = tx.idempotency.get(key)? {
                let record = IdemRecord::decode(&bytes).map_err(abort)?;
                if record.expires_at > now {
                    return Ok(Enqueued::Existing {
                        id: record.id,
                        same_body: record.body_hash == body_hash,
                    });
                }
                tx.idem_expiry
                    .remove(&keys::idem_expiry(record.expires_at, &key)[..])?;
            }
            tx.put(None, &message)?;
            let record = IdemRecord {
                id: message.id,
                body_hash,
                expires_at,
            };
            tx.idempotency.insert(&key, record.encode())?;
            tx.idem_expiry
                .insert(&keys::idem_expiry(expires_at, &key)[..], &[][..])?;
            Ok(Enqueued::Created(message.id))
        })
    }

    /// Forgets idempotency keys that expired by `now`; returns how many. Run periodically.
    pub fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        let trees = &self.inner.trees;
        let mut purged = 0;
        for entry in trees.idem_expiry.range(..=keys::idem_expiry_until(now)) {
            let (expiry_key, _) = entry.map_err(StoreError::from)?;
            let Ok(key_hash) = <[u8; 32]>::try_from(&expiry_key[8..]) else {
                continue;
            };
            self.commit(|tx| {
                tx.idem_expiry.remove(&expiry_key)?;
                if let Some(bytes) = tx.idempotency.get(key_hash)? {
                    let record = IdemRecord::decode(&bytes).map_err(abort)?;
                    if record.expires_at <= now {
                        tx.idempotency.remove(&key_hash)?;
                    }
                }
                Ok(())
            })?;
            purged += 1;
        }
        Ok(purged)
    }

    /// Claims up to `max` due Pending messages of one lane and destination kind, oldest due first,
    /// moving them to InFlight with a lease. Messages whose lease expired are first made Pending
    /// again, so a dead worker's messages are picked up here.
    pub fn claim_due(
        &self,
        lane: Lane,
        kind: DestinationKind,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Message>, OutboxError> {
        self.reclaim_expired(now)?;
        let trees = &self.inner.trees;
        let start = keys::due_prefix(kind, lane);
        let mut candidates = Vec::with_capacity(max.min(1024));
        for entry in trees
            .due
            .range(&start[..]..=&keys::due_until(kind, lane, now)[..])
            .take(max)
        {
            let (key, _) = entry.map_err(StoreError::from)?;
            if let Some(id) = keys::trailing_id(&key) {
                candidates.push((key, id));
            }
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let lease = chrono::Duration::from_std(self.inner.options.lease).unwrap_or(FAR);
        self.commit(|tx| {
            let mut claimed = Vec::with_capacity(candidates.len());
            for (key, id) in &candidates {
                // Reading the due key makes a concurrent claimer of the same message conflict.
                if tx.due.get(key)?.is_none() {
                    continue;
                }
                let Some(old) = tx.get(*id)? else { continue };
                if old.state != State::Pending {
                    continue;
                }
                let mut new = old.clone();
                new.state = State::InFlight;
                new.lease_until = Some(now + lease);
                new.updated_at = now;
                tx.put(Some(&old), &new)?;
                claimed.push(new);
            }
            Ok(claimed)
        })
    }

    /// Records how an attempt on an InFlight message ended and moves it on (see [`Transition`]).
    /// The attempt's `finished_at` is "now" for every time computed here.
    pub fn record_attempt(
        &self,
        id: MessageId,
        attempt: Attempt,
        next: Transition,
    ) -> Result<Message, OutboxError> {
        let now = attempt.finished_at;
        let policy = &self.inner.policy;
        let max_age = chrono::Duration::from_std(policy.max_age()).unwrap_or(FAR);
        let attempt_bytes = serde_json::to_vec(&attempt).map_err(OutboxError::Encode)?;
        self.commit(|tx| {
            let old = tx.get_existing(id)?;
            if old.state != State::InFlight {
                return Err(abort(OutboxError::WrongState {
                    id,
                    operation: "record_attempt",
                    expected: "in_flight",
                    actual: old.state,
                }));
            }
            let mut new = old.clone();
            new.updated_at = now;
            new.lease_until = None;
            // A shutdown release is not an attempt: nothing counted, nothing logged.
            if next != Transition::ReleaseNoAttempt {
                new.attempts += 1;
                tx.attempts
                    .insert(&keys::attempt(id, new.attempts), attempt_bytes.clone())?;
                if let Some(class) = attempt.outcome.error_class() {
                    new.last_error = Some(LastError {
                        class,
                        code: attempt.error_code.clone(),
                        message: attempt.message.clone(),
                        http_status: attempt.http_status,
                    });
                }
            }
            match &next {
                Transition::Delivered { remote_id } => {
                    new.state = State::Delivered;
                    new.remote_id.clone_from(remote_id);
                    new.completed_at = Some(now);
                }
                Transition::Failed => {
                    new.state = State::Failed;
                    new.completed_at = Some(now);
                }
                Transition::Retry { hint, rate_limited } => {
                    let delay =
                        policy.next_delay(new.attempts, *hint, *rate_limited, &mut rand::rng());
                    let due = now + chrono::Duration::from_std(delay).unwrap_or(FAR);
                    if new.attempts >= policy.max_attempts() || due > new.created_at + max_age {
                        new.state = State::Dead;
                        new.completed_at = Some(now);
                    } else {
                        new.state = State::Pending;
                        new.next_attempt_at = due;
                    }
                }
                Transition::ReleaseNoAttempt => {
                    new.state = State::Pending;
                    new.next_attempt_at = now;
                }
            }
            tx.put(Some(&old), &new)?;
            Ok(new)
        })
    }

    /// Makes messages whose lease expired by `now` Pending again, due now.
    fn reclaim_expired(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        let mut reclaimed = 0;
        loop {
            let expired = self.leased_ids(Some(now), 256)?;
            if expired.is_empty() {
                return Ok(reclaimed);
            }
            reclaimed += self.release_leases(&expired, now, Some(now))?;
        }
    }

    /// Lease entries (key, id), oldest lease first, optionally only those expired by `until`.
    pub(super) fn leased_ids(
        &self,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, MessageId)>, OutboxError> {
        let leases = &self.inner.trees.leases;
        let iter = match until {
            Some(now) => leases.range(..=keys::lease_until(now)),
            None => leases.iter(),
        };
        let mut out = Vec::new();
        for entry in iter.take(limit) {
            let (key, _) = entry.map_err(StoreError::from)?;
            if let Some(id) = keys::trailing_id(&key) {
                out.push((key.to_vec(), id));
            }
        }
        Ok(out)
    }

    /// Back to Pending, due `now`, for each leased message (only if its lease ended by
    /// `expired_by`, when given). A lease entry whose message is not InFlight is removed.
    pub(super) fn release_leases(
        &self,
        leased: &[(Vec<u8>, MessageId)],
        now: DateTime<Utc>,
        expired_by: Option<DateTime<Utc>>,
    ) -> Result<usize, OutboxError> {
        self.commit(|tx| {
            let mut released = 0;
            for (key, id) in leased {
                let old = match tx.get(*id)? {
                    Some(m) if m.state == State::InFlight => m,
                    _ => {
                        tx.leases.remove(&key[..])?;
                        continue;
                    }
                };
                if let (Some(limit), Some(until)) = (expired_by, old.lease_until)
                    && until > limit
                {
                    continue;
                }
                let mut new = old.clone();
                new.state = State::Pending;
                new.lease_until = None;
                new.next_attempt_at = now;
                new.updated_at = now;
                tx.put(Some(&old), &new)?;
                released += 1;
            }
            Ok(released)
        })
    }
}

fn fresh(id: MessageId, new: NewMessage, now: DateTime<Utc>) -> Message {
    Message {
        id,
        tenant: new.tenant,
        lane: new.lane,
        destination: new.destination,
        payload: new.payload,
        mapping_version: new.mapping_version,
        state: State::Pending,
        attempts: 0,
        created_at: now,
        updated_at: now,
        next_attempt_at: now,
        lease_until: None,
        last_error: None,
        remote_id: None,
        completed_at: None,
    }
}

/// The value under an idempotency key: `id (16) | body hash (32) | expires_at ms (8)`.
struct IdemRecord {
    id: MessageId,
    body_hash: [u8; 32],
    expires_at: DateTime<Utc>,
}

impl IdemRecord {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(56);
        v.extend_from_slice(&self.id.to_bytes());
        v.extend_from_slice(&self.body_hash);
        v.extend_from_slice(&keys::millis(self.expires_at).to_be_bytes());
        v
    }

    fn decode(bytes: &[u8]) -> Result<Self, OutboxError> {
        let (Ok(id), Ok(body_hash), Ok(ms)) = (
            <[u8; 16]>::try_from(bytes.get(..16).unwrap_or_default()),
            <[u8; 32]>::try_from(bytes.get(16..48).unwrap_or_default()),
            <[u8; 8]>::try_from(bytes.get(48..56).unwrap_or_default()),
        ) else {
            return Err(OutboxError::Corrupt("idempotency record"));
        };
        Ok(IdemRecord {
            id: MessageId::from_bytes(id),
            body_hash,
            expires_at: keys::from_millis(u64::from_be_bytes(ms)),
        })
    }
}
