//! The sled queue's reads: one message, pages, attempt logs, the oldest live message.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::outbox::backend::list_keeps;
use crate::outbox::{Attempt, ListFilter, Message, MessageId, OutboxError, State};
use crate::store::StoreError;

use super::keys;
use super::tx::{Trees, decode};

impl Trees {
    /// A page of messages in id (creation) order, after `filter.after`.
    ///
    /// A tenant filter uses the `by_tenant` index; state and lane filters are applied while
    /// scanning, so a rare state over a large history costs a long scan (bounded by the store
    /// size, never by memory: at most `limit` messages are held).
    pub(crate) fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        let mut out = Vec::with_capacity(filter.limit.min(1024));
        match &filter.tenant {
            Some(tenant) => {
                let prefix = keys::tenant_prefix(tenant);
                let start = match filter.after {
                    Some(after) => successor(keys::tenant(tenant, after)),
                    None => prefix.clone(),
                };
                for entry in self.by_tenant.range(start..) {
                    let (key, _) = entry.map_err(StoreError::from)?;
                    if !key.starts_with(&prefix) || out.len() >= filter.limit {
                        break;
                    }
                    let Some(id) = keys::trailing_id(&key) else {
                        continue;
                    };
                    if let Some(m) = self.get(id)?
                        && list_keeps(filter, &m)
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
                for entry in self.messages.range(start..) {
                    if out.len() >= filter.limit {
                        break;
                    }
                    let (_, bytes) = entry.map_err(StoreError::from)?;
                    let m: Message = decode(&bytes)?;
                    if list_keeps(filter, &m) {
                        out.push(m);
                    }
                }
            }
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

    /// `created_at` of the oldest Pending or InFlight message: one index seek (ids are time-ordered).
    pub(crate) fn oldest_live(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let Some((key, _)) = self.live.first().map_err(StoreError::from)? else {
            return Ok(None);
        };
        let Some(id) = keys::trailing_id(&key) else {
            return Ok(None);
        };
        Ok(self.get(id)?.map(|m| m.created_at))
    }

    /// Messages per state, by decoding every message once: O(messages) time at open, O(1) memory.
    pub(crate) fn count_states(&self) -> Result<HashMap<State, i64>, OutboxError> {
        let mut counts = HashMap::new();
        for entry in self.messages.iter() {
            let (_, bytes) = entry.map_err(StoreError::from)?;
            let message: Message = decode(&bytes)?;
            *counts.entry(message.state).or_default() += 1;
        }
        Ok(counts)
    }
}

/// The smallest key greater than `key` (for "after" cursors).
fn successor(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}
