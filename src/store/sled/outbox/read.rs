//! The sled queue's reads: one message, pages, attempt logs, the oldest live message.

use std::collections::HashMap;
use std::ops::Bound;

use chrono::{DateTime, Utc};

use crate::outbox::backend::{self, list_keeps};
use crate::outbox::{Attempt, ListFilter, Message, MessageId, OutboxError, State};
use crate::store::StoreError;

use super::tx::{Trees, decode, decode_count};
use super::{codec, keys};

impl Trees {
    /// A page of messages in id (creation) order, after `filter.after`.
    ///
    /// The scan follows the narrowest index: a tenant's `by_tenant` entries; without a tenant, a
    /// Pending or InFlight filter reads the live ids in memory, a dead-letter state (Failed, Dead,
    /// Discarded) reads its `meta` entries, so listing dead letters never reads delivered history. Other
    /// filters are applied while scanning (bounded by the store size, never by memory: at most `limit`
    /// messages are held).
    pub(crate) fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        let (tree, prefix) = match (&filter.tenant, filter.state) {
            (Some(tenant), _) => (&self.by_tenant, keys::tenant_prefix(tenant)),
            (None, Some(State::Pending | State::InFlight)) => return self.list_live(filter),
            (None, Some(state)) if keys::indexed_by_state(state) => {
                (&self.meta, keys::by_state_prefix(state).to_vec())
            }
            (None, _) => (&self.messages, Vec::new()),
        };
        let start = match filter.after {
            Some(after) => {
                let mut k = prefix.clone();
                k.extend_from_slice(&after.to_bytes());
                successor(k)
            }
            None => prefix.clone(),
        };
        let mut out = Vec::with_capacity(filter.limit.min(1024));
        for entry in tree.range(start..) {
            let (key, value) = entry.map_err(StoreError::from)?;
            if !key.starts_with(&prefix) || out.len() >= filter.limit {
                break;
            }
            let header = if std::ptr::eq(tree, &self.messages) {
                Some(codec::decode_header_only(&value)?)
            } else {
                keys::trailing_id(&key)
                    .map(|id| self.get_header(id))
                    .transpose()?
                    .flatten()
            };
            if let Some(m) = header
                && list_keeps(filter, &m)
            {
                out.push(self.with_payload(m)?);
            }
        }
        Ok(out)
    }

    /// [`Trees::list`] of Pending or InFlight messages of every tenant: the live ids from `filter.after` on,
    /// a chunk at a time (the lock is not held while messages are read).
    fn list_live(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        const CHUNK: usize = 256;
        let mut out = Vec::with_capacity(filter.limit.min(1024));
        let mut after = filter.after;
        while out.len() < filter.limit {
            let ids: Vec<MessageId> = {
                let live = self.live.lock();
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                live.range((from, Bound::Unbounded))
                    .take(CHUNK)
                    .copied()
                    .collect()
            };
            let Some(&last) = ids.last() else { break };
            for id in ids {
                if out.len() >= filter.limit {
                    break;
                }
                if let Some(m) = self.get_header(id)?
                    && list_keeps(filter, &m)
                {
                    out.push(self.with_payload(m)?);
                }
            }
            after = Some(last);
        }
        Ok(out)
    }

    /// The attempt log of a message, oldest first.
    pub(crate) fn attempts(&self, id: MessageId) -> Result<Vec<Attempt>, OutboxError> {
        let mut out = Vec::new();
        for entry in self.attempts.scan_prefix(keys::message(id)) {
            let (_, bytes) = entry.map_err(StoreError::from)?;
            out.push(decode(&bytes)?);
        }
        Ok(out)
    }

    /// `created_at` of the oldest Pending or InFlight message: the first live id (ids are time-ordered).
    /// An id whose message finished or is gone (its change was applied after a later one, see
    /// [`super::tx::Live`]) is dropped, checked again under the lock so that a message made live again
    /// meanwhile (an admin retry) keeps its id.
    pub(crate) fn oldest_live(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        loop {
            let Some(id) = self.live.lock().first().copied() else {
                return Ok(None);
            };
            if let Some(m) = self.get_header(id)?
                && !m.state.is_terminal()
            {
                return Ok(Some(m.created_at));
            }
            let mut live = self.live.lock();
            if self.get_header(id)?.is_none_or(|m| m.state.is_terminal()) {
                live.remove(&id);
            }
        }
    }

    /// Messages per state, reading only live state: Pending and InFlight by their index entries (one
    /// key each, no message decoded; their ids become the live ids in memory), terminal states from
    /// their durable `meta` counters. Returns the counts and how many entries it read (what a test
    /// checks: nothing proportional to history).
    pub(crate) fn count_states(&self) -> Result<(HashMap<State, i64>, u64), OutboxError> {
        let mut counts = HashMap::new();
        let mut read = 0u64;
        let mut live = self.live.lock();
        live.clear();
        for (tree, state) in [(&self.due, State::Pending), (&self.leases, State::InFlight)] {
            for entry in tree.iter() {
                let (key, _) = entry.map_err(StoreError::from)?;
                *counts.entry(state).or_default() += 1;
                read += 1;
                live.extend(keys::trailing_id(&key));
            }
        }
        for entry in self.meta.scan_prefix([keys::META_COUNT]) {
            let (key, value) = entry.map_err(StoreError::from)?;
            read += 1;
            if let Some(state) = State::ALL.iter().find(|s| keys::count(**s)[..] == key[..]) {
                counts.insert(*state, decode_count(&value));
            }
        }
        Ok((counts, read))
    }

    /// Brings the indexes of a store written by an older version up to date, once, at open: version 1
    /// added the `meta` indexes (one pass over history), version 2 put the tenant into `due` keys for
    /// fair claims (one pass over live messages), version 3 moved the live ids from the `outbox.live`
    /// tree into memory (the tree is emptied), version 4 dropped the idempotency keys' expiry index
    /// (emptied: purge scans the keys' records). A crash midway repeats the step at the next open: the
    /// version is written last.
    pub(crate) fn ensure_meta(&self) -> Result<(), OutboxError> {
        let version = self
            .meta
            .get(keys::META_VERSION)
            .map_err(StoreError::from)?
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        if version >= INDEX_VERSION {
            return Ok(());
        }
        if version < 1 {
            self.build_meta()?;
        }
        if version < 2 {
            self.rebuild_due()?;
            // `rebuild_due` reads the old live tree that version 3 empties: the version must say the
            // rebuild is done before that tree is gone (sled's log keeps this order across a crash).
            self.meta
                .insert(keys::META_VERSION, &[2u8][..])
                .map_err(StoreError::from)?;
        }
        if version < 3 {
            self.legacy_live.clear().map_err(StoreError::from)?;
        }
        if version < 4 {
            self.legacy_idem_expiry.clear().map_err(StoreError::from)?;
        }
        self.meta
            .insert(keys::META_VERSION, &[INDEX_VERSION][..])
            .map_err(StoreError::from)?;
        Ok(())
    }

    fn build_meta(&self) -> Result<(), OutboxError> {
        let mut counts: HashMap<State, i64> = HashMap::new();
        for entry in self.messages.iter() {
            let (_, bytes) = entry.map_err(StoreError::from)?;
            let m = codec::decode_header_only(&bytes)?;
            if !m.state.is_terminal() {
                continue;
            }
            *counts.entry(m.state).or_default() += 1;
            if keys::indexed_by_state(m.state) {
                self.meta
                    .insert(keys::by_state(m.state, m.id), &[][..])
                    .map_err(StoreError::from)?;
            }
            if let Some(completed) = backend::retirable(&m) {
                let key = keys::retire(m.payload_erased_at.is_some(), completed, m.id);
                self.meta.insert(key, &[][..]).map_err(StoreError::from)?;
            }
        }
        for (state, n) in counts {
            self.meta
                .insert(keys::count(state), &n.to_be_bytes()[..])
                .map_err(StoreError::from)?;
        }
        Ok(())
    }

    /// Rewrites `due` from the Pending messages (a version-1 store's `outbox.live` lists every
    /// non-terminal one).
    fn rebuild_due(&self) -> Result<(), OutboxError> {
        self.due.clear().map_err(StoreError::from)?;
        for entry in self.legacy_live.iter() {
            let (key, _) = entry.map_err(StoreError::from)?;
            let Some(id) = keys::trailing_id(&key) else {
                continue;
            };
            let Some(m) = self.get_header(id)? else {
                continue;
            };
            if m.state == State::Pending {
                let due = keys::due(
                    m.destination.kind(),
                    m.lane,
                    &m.tenant,
                    m.next_attempt_at,
                    id,
                );
                self.due.insert(due, &[][..]).map_err(StoreError::from)?;
            }
        }
        Ok(())
    }
}

/// The layout of the derived indexes this code writes (see [`Trees::ensure_meta`]).
const INDEX_VERSION: u8 = 4;

/// The smallest key greater than `key` (for "after" cursors).
fn successor(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}
