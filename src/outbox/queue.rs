//! The producer and worker side: enqueue, claim, record attempts, expire keys. Every call is one
//! durable step of the [`super::Queue`]: when it returns `Ok`, the change survives a crash.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::backend::{Claim, IdemKey, Resolution, Resolved};
use super::types::{
    Attempt, Enqueued, LeaseToken, Message, MessageId, NewMessage, State, Transition,
};
use super::{DestinationKind, Lane, Outbox, OutboxError, idempotency_hash};

/// Longest a chrono duration conversion may fail on; delays beyond it are treated as "never".
const FAR: chrono::Duration = chrono::Duration::days(365 * 100);

impl Outbox {
    /// Queues a message, due now. Durable when it returns.
    pub async fn enqueue(&self, new: NewMessage) -> Result<MessageId, OutboxError> {
        self.enqueue_at(new, self.now()).await
    }

    /// [`Outbox::enqueue`] with an explicit clock, for tests and replays.
    pub async fn enqueue_at(
        &self,
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<MessageId, OutboxError> {
        self.enqueue_as(MessageId::new(), new, now).await
    }

    /// [`Outbox::enqueue_at`] under an id the producer chose beforehand: intake maps the request
    /// with its creditlink id (the Salesforce External ID) before queueing it.
    pub async fn enqueue_as(
        &self,
        id: MessageId,
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<MessageId, OutboxError> {
        self.insert_fresh(fresh(id, new, now)).await?;
        Ok(id)
    }

    /// Queues `message`, built by the caller with [`fresh`] (intake answers from it without a copy).
    pub(crate) async fn insert_fresh(&self, message: Message) -> Result<(), OutboxError> {
        self.inner.queue.insert(message).await
    }

    /// Queues a message unless `(tenant, idempotency_key)` was seen within the TTL.
    ///
    /// Check and insert are one atomic step, so concurrent posts with one key create one message.
    /// Only a hash of the key and the caller's `body_hash` are stored. `tenant` scopes the key (two
    /// banks may use the same key) and should equal `new.tenant`. An expired key that was not yet
    /// purged counts as absent.
    pub async fn enqueue_idempotent(
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
        .await
    }

    /// Queues a message at most once per `(tenant, key)` within the TTL, for keys the daemon derives itself (one per
    /// event, notice or warning): the key's SHA-256 stands in for the body hash, so a repeat is always a replay,
    /// never a conflict.
    pub async fn enqueue_once(
        &self,
        tenant: &str,
        key: &str,
        new: NewMessage,
    ) -> Result<Enqueued, OutboxError> {
        let fingerprint: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.enqueue_idempotent(tenant, key, fingerprint, new, Utc::now())
            .await
    }

    /// [`Outbox::enqueue_idempotent`] under an id the producer chose beforehand; on a replay the
    /// stored id wins and `id` is unused.
    pub async fn enqueue_idempotent_as(
        &self,
        id: MessageId,
        tenant: &str,
        idempotency_key: &str,
        body_hash: [u8; 32],
        new: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, OutboxError> {
        self.insert_fresh_idempotent(fresh(id, new, now), tenant, idempotency_key, body_hash)
            .await
    }

    /// [`Outbox::enqueue_idempotent_as`] of a message built by the caller with [`fresh`] (its
    /// `created_at` dates the key).
    pub(crate) async fn insert_fresh_idempotent(
        &self,
        message: Message,
        tenant: &str,
        idempotency_key: &str,
        body_hash: [u8; 32],
    ) -> Result<Enqueued, OutboxError> {
        let ttl = chrono::Duration::from_std(self.inner.options.idempotency_ttl).unwrap_or(FAR);
        let now = message.created_at;
        let key = IdemKey {
            hash: idempotency_hash(tenant, idempotency_key),
            body_hash,
            expires_at: now + ttl,
            now,
        };
        self.inner.queue.insert_idempotent(message, key).await
    }

    /// Forgets idempotency keys that expired by `now`; returns how many. Run periodically.
    pub async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        self.inner.queue.purge_expired_keys(now).await
    }

    /// Claims up to `max` due Pending messages of one lane and destination kind, oldest due first,
    /// moving them to InFlight under a lease with a fresh fencing token. Messages whose lease expired
    /// are first made Pending again, so a dead worker's messages are picked up here.
    ///
    /// `attempt_timeout` is the longest one attempt of the caller can take; the claim is refused
    /// unless the lease is longer ([`OutboxError::LeaseTooShort`]).
    pub async fn claim_due(
        &self,
        lane: Lane,
        kind: DestinationKind,
        max: usize,
        now: DateTime<Utc>,
        attempt_timeout: Duration,
    ) -> Result<Vec<Message>, OutboxError> {
        let lease = self.inner.options.lease;
        if lease <= attempt_timeout {
            return Err(OutboxError::LeaseTooShort {
                lease,
                attempt_timeout,
            });
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        let claim = Claim {
            kind,
            lane,
            max,
            now,
            lease_until: now + chrono::Duration::from_std(lease).unwrap_or(FAR),
        };
        self.inner.queue.claim(claim).await
    }

    /// Records how an attempt on a message this worker claimed ended, and moves it on (see
    /// [`Transition`]). `claimed` is the message as [`Outbox::claim_due`] returned it: the outcome is
    /// applied only while it is still InFlight under that claim's token, else
    /// [`OutboxError::LeaseLost`]. The attempt's `finished_at` is "now" for every time computed here.
    pub async fn record_attempt(
        &self,
        claimed: &Message,
        attempt: Attempt,
        next: Transition,
    ) -> Result<Message, OutboxError> {
        let token = lease_of(claimed, "record_attempt")?;
        let resolution = self.resolution(claimed, attempt, next);
        let updated = self
            .inner
            .queue
            .resolve(claimed.id, token, resolution)
            .await?;
        self.settled(&updated);
        Ok(updated)
    }

    /// [`Outbox::record_attempt`] for a whole batch in one durable step. Each entry gets its own
    /// result (a lost lease or a message not claimed fails only that one); `Err` means nothing was
    /// recorded.
    pub async fn record_attempts(
        &self,
        items: Vec<(&Message, Attempt, Transition)>,
    ) -> Result<Resolved, OutboxError> {
        let mut out: Vec<Option<Result<Message, OutboxError>>> = Vec::with_capacity(items.len());
        let mut batch = Vec::with_capacity(items.len());
        for (claimed, attempt, next) in items {
            match lease_of(claimed, "record_attempts") {
                Ok(token) => {
                    batch.push((claimed.id, token, self.resolution(claimed, attempt, next)));
                    out.push(None);
                }
                Err(error) => out.push(Some(Err(error))),
            }
        }
        let mut resolved = self.inner.queue.resolve_many(batch).await?.into_iter();
        Ok(out
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    let one = resolved.next().unwrap_or(Err(OutboxError::Corrupt(
                        "resolve_many answered too few results",
                    )));
                    if let Ok(updated) = &one {
                        self.settled(updated);
                    }
                    one
                })
            })
            .collect())
    }

    /// What `next` means for `claimed`, by its destination's retry policy.
    fn resolution(&self, claimed: &Message, attempt: Attempt, next: Transition) -> Resolution {
        let now = attempt.finished_at;
        // A shutdown release is not an attempt: nothing counted, nothing logged.
        let counted = next != Transition::ReleaseNoAttempt;
        let attempts = claimed.attempts + u32::from(counted);
        let (state, next_attempt_at, remote_id) = match next {
            Transition::Delivered { remote_id } => (State::Delivered, now, remote_id),
            Transition::Failed => (State::Failed, now, None),
            Transition::ReleaseNoAttempt => (State::Pending, now, None),
            Transition::Retry { hint, rate_limited } => {
                let policy = self.policy_for(claimed.destination.kind());
                let max_age = chrono::Duration::from_std(policy.max_age()).unwrap_or(FAR);
                let delay = policy.next_delay(attempts, hint, rate_limited, &mut rand::rng());
                let due = now + chrono::Duration::from_std(delay).unwrap_or(FAR);
                if attempts >= policy.max_attempts() || due > claimed.created_at + max_age {
                    (State::Dead, now, None)
                } else {
                    (State::Pending, due, None)
                }
            }
        };
        Resolution {
            state,
            next_attempt_at,
            attempt: counted.then_some(attempt),
            remote_id,
            now,
        }
    }
}

/// The lease token of a message as a claim returned it; an outcome can be recorded only under it.
fn lease_of(claimed: &Message, operation: &'static str) -> Result<LeaseToken, OutboxError> {
    claimed
        .lease_token
        .filter(|_| claimed.state == State::InFlight)
        .ok_or(OutboxError::WrongState {
            id: claimed.id,
            operation,
            expected: "a claimed (in_flight) message",
            actual: claimed.state,
        })
}

/// Tests' stock message: a new Pending e-mail for tenant `001A` carrying `payload`, due `now`.
#[cfg(test)]
pub(crate) fn test_email(payload: serde_json::Value, now: DateTime<Utc>) -> Message {
    let new = NewMessage {
        tenant: "001A".into(),
        lane: super::Lane::Interactive,
        destination: super::Destination::Email {
            to: "ops@bureau.example".into(),
            template: "t".into(),
        },
        payload,
        mapping_version: None,
    };
    fresh(MessageId::new(), new, now)
}

/// A new Pending message, due `now`.
pub(crate) fn fresh(id: MessageId, new: NewMessage, now: DateTime<Utc>) -> Message {
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
        lease_token: None,
        last_error: None,
        remote_id: None,
        completed_at: None,
        payload_erased_at: None,
    }
}
