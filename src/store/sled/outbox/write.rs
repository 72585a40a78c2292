//! The sled queue's writes, each one transaction over the outbox trees. Synchronous: `mod.rs` runs
//! them on a blocking thread and then waits for group commit.

use chrono::{DateTime, Utc};

use crate::outbox::backend::{
    self, AdminMove, Claim, IdemKey, Resolution, Resolved, Retention, Retired,
};
use crate::outbox::{Enqueued, LeaseToken, Message, MessageId, OutboxError, State};
use crate::store::StoreError;

use super::idem::IdemRecord;
use super::keys;
use super::tx::{Change, Trees, Tx, TxResult, abort};

impl Trees {
    /// One enqueue in its own transaction (the queue batches them, `batch.rs`; tests call this).
    #[cfg(test)]
    pub(crate) fn insert(&self, message: &Message) -> Result<Vec<Change>, OutboxError> {
        Ok(self.transact(|tx| tx.enqueue(message, None, false))?.1)
    }

    /// One retention batch: erases up to `r.max` payloads, then deletes up to `r.max` messages, each
    /// found by a range over the `meta` retention entries (nothing else is read).
    pub(crate) fn retire(&self, r: &Retention) -> Result<(Retired, Vec<Change>), OutboxError> {
        let mut changes = Vec::new();
        let mut done = Retired::default();
        let to_erase = self.retiring(false, r.erase_before, r.max)?;
        let (erased, more) = self.transact(|tx| {
            let mut erased = 0;
            for id in &to_erase {
                let Some(old) = tx.get_full(*id)? else {
                    continue;
                };
                if old.payload_erased_at.is_none()
                    && backend::retirable(&old).is_some_and(|at| at <= r.erase_before)
                {
                    tx.put(Some(&old), &backend::erased(&old, r.now, &r.keep))?;
                    erased += 1;
                }
            }
            Ok(erased)
        })?;
        done.erased = erased;
        changes.extend(more);
        if let Some(before) = r.purge_before {
            let mut to_purge = self.retiring(true, before, r.max)?;
            if to_purge.len() < r.max {
                to_purge.extend(self.retiring(false, before, r.max - to_purge.len())?);
            }
            let (purged, more) = self.transact(|tx| {
                let mut purged = 0;
                for id in &to_purge {
                    let Some(old) = tx.get(*id)? else { continue };
                    if backend::retirable(&old).is_some_and(|at| at <= before) {
                        tx.remove(&old)?;
                        purged += 1;
                    }
                }
                Ok(purged)
            })?;
            done.purged = purged;
            changes.extend(more);
        }
        Ok((done, changes))
    }

    /// Ids of terminal messages (payload `erased` or not) completed by `until`, oldest first.
    fn retiring(
        &self,
        erased: bool,
        until: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<MessageId>, OutboxError> {
        let (lo, hi) = keys::retire_range(erased, until);
        let mut out = Vec::new();
        for entry in self.meta.range(&lo[..]..=&hi[..]).take(max) {
            let (key, _) = entry.map_err(StoreError::from)?;
            out.extend(keys::trailing_id(&key));
        }
        Ok(out)
    }

    pub(crate) fn claim(&self, claim: &Claim) -> Result<(Vec<Message>, Vec<Change>), OutboxError> {
        let mut changes = self.release_expired(claim.now)?;
        let candidates = self.fair_candidates(claim)?;
        if candidates.is_empty() {
            return Ok((Vec::new(), changes));
        }
        let (claimed, more) = self.transact(|tx| {
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
                let new = backend::claimed(&old, claim.now, claim.lease_until, LeaseToken::new());
                tx.put(Some(&old), &new)?;
                claimed.push(new);
            }
            Ok(claimed)
        })?;
        changes.extend(more);
        let claimed = claimed
            .into_iter()
            .map(|m| self.with_payload(m))
            .collect::<Result<_, _>>()?;
        Ok((claimed, changes))
    }

    /// The due keys a claim tries, fairly: every tenant with something due (one seek each), up to
    /// `claim.max` of each, then [`backend::round_robin`] across tenants in order of their earliest
    /// due message.
    fn fair_candidates(&self, claim: &Claim) -> Result<Vec<(sled::IVec, MessageId)>, OutboxError> {
        let prefix = keys::due_prefix(claim.kind, claim.lane);
        let now = keys::millis(claim.now);
        let mut tenants: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut cursor = prefix.to_vec();
        while let Some(entry) = self.due.range(cursor.as_slice()..).next() {
            let (key, _) = entry.map_err(StoreError::from)?;
            if !key.starts_with(&prefix) {
                break;
            }
            let Some((tenant, first_due)) = keys::split_due(&key) else {
                break;
            };
            cursor = keys::tenant_after(tenant);
            if first_due <= now {
                tenants.push((first_due, tenant.to_vec()));
            }
        }
        tenants.sort();
        let mut lists = Vec::with_capacity(tenants.len());
        for (_, tenant) in &tenants {
            let mut list = Vec::new();
            let until = keys::due_until(tenant, claim.now);
            for entry in self
                .due
                .range(tenant.as_slice()..=until.as_slice())
                .take(claim.max)
            {
                let (key, _) = entry.map_err(StoreError::from)?;
                if let Some(id) = keys::trailing_id(&key) {
                    list.push((key, id));
                }
            }
            lists.push(list);
        }
        Ok(backend::round_robin(lists, claim.max))
    }

    pub(crate) fn resolve(
        &self,
        id: MessageId,
        token: LeaseToken,
        resolution: &Resolution,
    ) -> Result<(Message, Vec<Change>), OutboxError> {
        let attempt = encode_attempt(resolution)?;
        let (resolved, changes) = self.transact(|tx| {
            resolve_in(tx, id, token, resolution, attempt.as_deref())?.map_err(abort)
        })?;
        Ok((self.with_payload(resolved)?, changes))
    }

    /// [`Trees::resolve`] for many messages in one transaction; a lost lease fails only its entry.
    pub(crate) fn resolve_many(
        &self,
        items: &[(MessageId, LeaseToken, Resolution)],
    ) -> Result<(Resolved, Vec<Change>), OutboxError> {
        let attempts = items
            .iter()
            .map(|(_, _, r)| encode_attempt(r))
            .collect::<Result<Vec<_>, _>>()?;
        let (resolved, changes): (Resolved, _) = self.transact(|tx| {
            items
                .iter()
                .zip(&attempts)
                .map(|((id, token, r), attempt)| resolve_in(tx, *id, *token, r, attempt.as_deref()))
                .collect()
        })?;
        let resolved = resolved
            .into_iter()
            .map(|one| one.and_then(|m| self.with_payload(m)))
            .collect();
        Ok((resolved, changes))
    }

    pub(crate) fn admin_move(
        &self,
        id: MessageId,
        mv: AdminMove,
    ) -> Result<(Message, Vec<Change>), OutboxError> {
        let (moved, changes) = self.transact(|tx| {
            let old = tx.get_existing(id)?;
            let new = mv.apply(&old).map_err(abort)?;
            tx.put(Some(&old), &new)?;
            Ok(new)
        })?;
        Ok((self.with_payload(moved)?, changes))
    }

    /// Every InFlight message back to Pending, due `now` (crash recovery at open).
    pub(crate) fn release_all(&self, now: DateTime<Utc>) -> Result<Vec<Change>, OutboxError> {
        self.release_where(None, now)
    }

    /// Messages whose lease expired by `now` back to Pending, due now.
    fn release_expired(&self, now: DateTime<Utc>) -> Result<Vec<Change>, OutboxError> {
        self.release_where(Some(now), now)
    }

    fn release_where(
        &self,
        expired_by: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, OutboxError> {
        let mut changes = Vec::new();
        loop {
            let leased = self.leased_ids(expired_by, 256)?;
            if leased.is_empty() {
                return Ok(changes);
            }
            let (_, more) = self.transact(|tx| {
                for (key, id) in &leased {
                    let old = match tx.get(*id)? {
                        Some(m) if m.state == State::InFlight => m,
                        _ => {
                            tx.leases.unset(&key[..]);
                            continue;
                        }
                    };
                    if let (Some(limit), Some(until)) = (expired_by, old.lease_until)
                        && until > limit
                    {
                        continue;
                    }
                    tx.put(Some(&old), &backend::released(&old, now))?;
                }
                Ok(())
            })?;
            changes.extend(more);
        }
    }

    /// Lease entries (key, id), oldest lease first, optionally only those expired by `until`.
    fn leased_ids(
        &self,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, MessageId)>, OutboxError> {
        let iter = match until {
            Some(now) => self.leases.range(..=keys::lease_until(now)),
            None => self.leases.iter(),
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
}

impl Tx<'_> {
    /// Queues `message` unless `key` names a live idempotency record (then the message it created).
    /// `known`: whether a record under the key may be stored (the key filter, `idem.rs`); when it
    /// certainly is not, the tree is not read. Also returns whether a key was newly stored (not an
    /// expired record overwritten), for the filter.
    pub(crate) fn enqueue(
        &self,
        message: &Message,
        key: Option<&IdemKey>,
        known: bool,
    ) -> TxResult<(Enqueued, bool)> {
        let Some(key) = key else {
            self.put(None, message)?;
            return Ok((Enqueued::Created(message.id), false));
        };
        let mut existed = false;
        if known && let Some(bytes) = self.idempotency.get(key.hash)? {
            let record = IdemRecord::decode(&bytes).map_err(abort)?;
            if record.expires_at > key.now {
                let existing = Enqueued::Existing {
                    id: record.id,
                    same_body: record.body_hash == key.body_hash,
                };
                return Ok((existing, false));
            }
            existed = true;
        }
        self.put(None, message)?;
        let record = IdemRecord {
            id: message.id,
            body_hash: key.body_hash,
            expires_at: key.expires_at,
        };
        self.idempotency.set(&key.hash, &record.encode()[..]);
        Ok((Enqueued::Created(message.id), !existed))
    }
}

/// The attempt a resolution logs, encoded before the transaction (which may run more than once).
fn encode_attempt(resolution: &Resolution) -> Result<Option<Vec<u8>>, OutboxError> {
    resolution
        .attempt
        .as_ref()
        .map(serde_json::to_vec)
        .transpose()
        .map_err(OutboxError::Encode)
}

/// One fenced resolution inside a transaction: `Ok(Err(..))` when the message is gone or no longer held
/// under `token` (nothing written), `Err` only for the transaction itself.
fn resolve_in(
    tx: &Tx<'_>,
    id: MessageId,
    token: LeaseToken,
    resolution: &Resolution,
    attempt: Option<&[u8]>,
) -> TxResult<Result<Message, OutboxError>> {
    let Some(old) = tx.get(id)? else {
        return Ok(Err(OutboxError::NotFound(id)));
    };
    if old.state != State::InFlight || old.lease_token != Some(token) {
        return Ok(Err(OutboxError::LeaseLost(id)));
    }
    let new = resolution.apply(&old);
    if let Some(bytes) = attempt {
        tx.attempts.set(&keys::attempt(id, new.attempts), bytes);
    }
    tx.put(Some(&old), &new)?;
    Ok(Ok(new))
}
