//! [`MemoryQueue`]: the outbox's [`Queue`] in ordered maps under one mutex (every call is atomic).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::outbox::backend::{
    self, AdminMove, Claim, IdemKey, Resolution, Retention, Retired, list_keeps, retirable,
};
use crate::outbox::{
    Attempt, Counts, Enqueued, LeaseToken, ListFilter, Message, MessageId, OutboxError, Queue,
    State,
};

/// `(kind tag, lane tag, due, id)`: claiming is a range over one `(kind, lane)`.
type DueKey = (u8, u8, DateTime<Utc>, MessageId);

#[derive(Default)]
pub struct MemoryQueue {
    state: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    messages: BTreeMap<MessageId, Message>,
    due: BTreeSet<DueKey>,
    leases: BTreeSet<(DateTime<Utc>, MessageId)>,
    attempts: HashMap<MessageId, Vec<Attempt>>,
    idempotency: HashMap<[u8; 32], (MessageId, [u8; 32], DateTime<Utc>)>,
    counts: Counts,
}

fn due_key(m: &Message) -> DueKey {
    (
        m.destination.kind().tag(),
        m.lane.tag(),
        m.next_attempt_at,
        m.id,
    )
}

impl Tables {
    /// Writes `new` over its previous version, keeping the indexes and counters in step.
    fn put(&mut self, new: Message) {
        if let Some(old) = self.messages.get(&new.id) {
            match old.state {
                State::Pending => {
                    self.due.remove(&due_key(old));
                }
                State::InFlight => {
                    if let Some(until) = old.lease_until {
                        self.leases.remove(&(until, old.id));
                    }
                }
                _ => {}
            }
            *self.counts.slot(old.state) -= 1;
        }
        match new.state {
            State::Pending => {
                self.due.insert(due_key(&new));
            }
            State::InFlight => {
                if let Some(until) = new.lease_until {
                    self.leases.insert((until, new.id));
                }
            }
            _ => {}
        }
        *self.counts.slot(new.state) += 1;
        self.messages.insert(new.id, new);
    }

    fn release_where(&mut self, expired_by: Option<DateTime<Utc>>, now: DateTime<Utc>) -> usize {
        let ids: Vec<MessageId> = self
            .leases
            .iter()
            .take_while(|(until, _)| expired_by.is_none_or(|limit| *until <= limit))
            .map(|(_, id)| *id)
            .collect();
        for id in &ids {
            if let Some(old) = self.messages.get(id) {
                let new = backend::released(old, now);
                self.put(new);
            }
        }
        ids.len()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn insert(&self, message: Message) -> Result<(), OutboxError> {
        self.state.lock().put(message);
        Ok(())
    }

    async fn insert_idempotent(
        &self,
        message: Message,
        key: IdemKey,
    ) -> Result<Enqueued, OutboxError> {
        let mut t = self.state.lock();
        if let Some(&(id, body_hash, expires_at)) = t.idempotency.get(&key.hash)
            && expires_at > key.now
        {
            return Ok(Enqueued::Existing {
                id,
                same_body: body_hash == key.body_hash,
            });
        }
        let id = message.id;
        t.idempotency
            .insert(key.hash, (id, key.body_hash, key.expires_at));
        t.put(message);
        Ok(Enqueued::Created(id))
    }

    async fn claim(&self, claim: Claim) -> Result<Vec<Message>, OutboxError> {
        let mut t = self.state.lock();
        t.release_where(Some(claim.now), claim.now);
        let (kind, lane) = (claim.kind.tag(), claim.lane.tag());
        // A scan of everything due: this backend is for tests, where backlogs are small.
        let due = t
            .due
            .range(
                (
                    kind,
                    lane,
                    DateTime::<Utc>::MIN_UTC,
                    MessageId::from_bytes([0; 16]),
                )..,
            )
            .take_while(|(k, l, at, _)| (*k, *l) == (kind, lane) && *at <= claim.now)
            .filter_map(|(_, _, at, id)| Some((t.messages.get(id)?.tenant.as_str(), *at, *id)));
        let ids = backend::fair_pick(due, claim.max);
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(old) = t.messages.get(&id) else {
                continue;
            };
            let new = backend::claimed(old, claim.now, claim.lease_until, LeaseToken::new());
            t.put(new.clone());
            claimed.push(new);
        }
        Ok(claimed)
    }

    async fn resolve(
        &self,
        id: MessageId,
        token: LeaseToken,
        resolution: Resolution,
    ) -> Result<Message, OutboxError> {
        let mut t = self.state.lock();
        let old = t.messages.get(&id).ok_or(OutboxError::NotFound(id))?;
        if old.state != State::InFlight || old.lease_token != Some(token) {
            return Err(OutboxError::LeaseLost(id));
        }
        let new = resolution.apply(old);
        if let Some(attempt) = resolution.attempt {
            t.attempts.entry(id).or_default().push(attempt);
        }
        t.put(new.clone());
        Ok(new)
    }

    async fn admin_move(&self, id: MessageId, mv: AdminMove) -> Result<Message, OutboxError> {
        let mut t = self.state.lock();
        let old = t.messages.get(&id).ok_or(OutboxError::NotFound(id))?;
        let new = mv.apply(old)?;
        t.put(new.clone());
        Ok(new)
    }

    async fn release_all(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        Ok(self.state.lock().release_where(None, now))
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        Ok(self.state.lock().messages.get(&id).cloned())
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        let t = self.state.lock();
        let start = filter
            .after
            .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(t.messages
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, m)| m)
            .filter(|m| list_keeps(filter, m))
            .take(filter.limit)
            .cloned()
            .collect())
    }

    async fn attempts(&self, id: MessageId) -> Result<Vec<Attempt>, OutboxError> {
        Ok(self
            .state
            .lock()
            .attempts
            .get(&id)
            .cloned()
            .unwrap_or_default())
    }

    async fn counts(&self) -> Result<Counts, OutboxError> {
        Ok(self.state.lock().counts)
    }

    async fn oldest_live(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        Ok(self
            .state
            .lock()
            .messages
            .values()
            .find(|m| !m.state.is_terminal())
            .map(|m| m.created_at))
    }

    async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        let mut t = self.state.lock();
        let before = t.idempotency.len();
        t.idempotency
            .retain(|_, (_, _, expires_at)| *expires_at > now);
        Ok(before - t.idempotency.len())
    }

    /// Scans every message: the memory backend serves tests, where history is small.
    async fn retire(&self, r: Retention) -> Result<Retired, OutboxError> {
        let mut t = self.state.lock();
        let to_erase: Vec<MessageId> = t
            .messages
            .values()
            .filter(|m| m.payload_erased_at.is_none())
            .filter(|m| retirable(m).is_some_and(|at| at <= r.erase_before))
            .map(|m| m.id)
            .take(r.max)
            .collect();
        for id in &to_erase {
            if let Some(m) = t.messages.get_mut(id) {
                *m = backend::erased(m, r.now, &r.keep);
            }
        }
        let to_purge: Vec<MessageId> = match r.purge_before {
            Some(before) => t
                .messages
                .values()
                .filter(|m| retirable(m).is_some_and(|at| at <= before))
                .map(|m| m.id)
                .take(r.max)
                .collect(),
            None => Vec::new(),
        };
        for id in &to_purge {
            if let Some(m) = t.messages.remove(id) {
                *t.counts.slot(m.state) -= 1;
            }
            t.attempts.remove(id);
        }
        Ok(Retired {
            erased: to_erase.len(),
            purged: to_purge.len(),
        })
    }
}
