//! The read side (dashboard, status endpoints, metrics) and the admin actions on dead letters.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::StoreError;

use super::keys;
use super::tx::{abort, decode};
use super::types::{Attempt, Counts, ListFilter, Message, MessageId, State};
use super::{Outbox, OutboxError};

impl Outbox {
    /// One message, if it exists.
    pub fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        self.inner.trees.get(id)
    }

    /// A page of messages in id (creation) order, after `filter.after`.
    ///
    /// A tenant filter uses the `by_tenant` index; state and lane filters are applied while
    /// scanning, so a rare state over a large history costs a long scan (bounded by the store
    /// size, never by memory: at most `limit` messages are held).
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        let trees = &self.inner.trees;
        let mut out = Vec::with_capacity(filter.limit.min(1024));
        if filter.limit == 0 {
            return Ok(out);
        }
        let keep = |m: &Message| {
            filter.state.is_none_or(|s| m.state == s) && filter.lane.is_none_or(|l| m.lane == l)
        };
        match &filter.tenant {
            Some(tenant) => {
                let prefix = keys::tenant_prefix(tenant);
                let start = match filter.after {
                    Some(after) => successor(keys::tenant(tenant, after)),
                    None => prefix.clone(),
                };
                for entry in trees.by_tenant.range(start..) {
                    let (key, _) = entry.map_err(StoreError::from)?;
                    if !key.starts_with(&prefix) || out.len() >= filter.limit {
                        break;
                    }
                    let Some(id) = keys::trailing_id(&key) else {
                        continue;
                    };
                    if let Some(m) = trees.get(id)?
                        && keep(&m)
                    {
                        out.push(m);
                    }
                }
            }
            None => {
                let start = match filter.after {
                    Some(after) => successor(keys::message(after).to_vec()),
                    None => Vec::new(),
                };
                for entry in trees.messages.range(start..) {
                    if out.len() >= filter.limit {
                        break;
                    }
                    let (_, bytes) = entry.map_err(StoreError::from)?;
                    let m: Message = decode(&bytes)?;
                    if keep(&m) {
                        out.push(m);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The attempt log of a message, oldest first. Kept after the message completes.
    pub fn attempts(&self, id: MessageId) -> Result<Vec<Attempt>, OutboxError> {
        let mut out = Vec::new();
        for entry in self.inner.trees.attempts.scan_prefix(keys::message(id)) {
            let (_, bytes) = entry.map_err(StoreError::from)?;
            out.push(decode(&bytes)?);
        }
        Ok(out)
    }

    /// Messages per state, from counters maintained in memory (no disk access).
    pub fn counts(&self) -> Counts {
        let signed = self.inner.counts.lock();
        let mut counts = Counts::default();
        for (state, n) in signed.iter() {
            *counts.slot(*state) = u64::try_from(*n).unwrap_or(0);
        }
        counts
    }

    /// How long the oldest message not yet finished (Pending or InFlight) has existed, or `None`
    /// when there is none. One index seek: ids are time-ordered.
    pub fn oldest_pending_age(&self, now: DateTime<Utc>) -> Result<Option<Duration>, OutboxError> {
        let Some((key, _)) = self.inner.trees.live.first().map_err(StoreError::from)? else {
            return Ok(None);
        };
        let Some(id) = keys::trailing_id(&key) else {
            return Ok(None);
        };
        Ok(self
            .get(id)?
            .map(|m| (now - m.created_at).to_std().unwrap_or(Duration::ZERO)))
    }

    /// Admin: sends a Failed or Dead message again, due now. Attempts and history are kept, so a
    /// message past its attempt or age limit gets exactly one more try.
    pub fn retry(&self, id: MessageId) -> Result<Message, OutboxError> {
        self.admin_move(
            id,
            "retry",
            "failed or dead",
            &[State::Failed, State::Dead],
            State::Pending,
        )
    }

    /// Admin: gives up on a Pending, Failed or Dead message. It stays stored, for audit.
    pub fn discard(&self, id: MessageId) -> Result<Message, OutboxError> {
        self.admin_move(
            id,
            "discard",
            "pending, failed or dead",
            &[State::Pending, State::Failed, State::Dead],
            State::Discarded,
        )
    }

    fn admin_move(
        &self,
        id: MessageId,
        operation: &'static str,
        expected: &'static str,
        from: &[State],
        to: State,
    ) -> Result<Message, OutboxError> {
        let now = Utc::now();
        self.commit(|tx| {
            let old = tx.get_existing(id)?;
            if !from.contains(&old.state) {
                return Err(abort(OutboxError::WrongState {
                    id,
                    operation,
                    expected,
                    actual: old.state,
                }));
            }
            let mut new = old.clone();
            new.state = to;
            new.updated_at = now;
            if to == State::Pending {
                new.next_attempt_at = now;
                new.completed_at = None;
            } else {
                new.completed_at = Some(now);
            }
            tx.put(Some(&old), &new)?;
            Ok(new)
        })
    }
}

/// The smallest key greater than `key` (for "after" cursors).
fn successor(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}
