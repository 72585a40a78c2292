//! The outbox's trees and its one way to change them: a transaction over all of them in which a
//! message and every index entry derived from it are written together.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use sled::Tree;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError, Transactional,
    TransactionalTree,
};

use crate::outbox::backend;
use crate::outbox::{Message, MessageId, OutboxError, State};
use crate::store::StoreError;
use crate::store::sled::db::SledDb;

use super::idem::SharedKeyFilter;
use super::{codec, keys};

/// The trees of the key layout (see the module documentation).
#[derive(Clone)]
pub(crate) struct Trees {
    pub(crate) messages: Tree,
    pub(crate) payloads: Tree,
    pub(crate) due: Tree,
    pub(crate) leases: Tree,
    pub(crate) attempts: Tree,
    pub(crate) by_tenant: Tree,
    pub(crate) idempotency: Tree,
    /// Durable counters, the dead-letter index and the retention index (`keys::META_*`).
    pub(crate) meta: Tree,
    /// `outbox.live` of index versions before 3 (ids of every Pending or InFlight message): read only by
    /// the version-2 migration, then emptied (`read.rs`, `ensure_meta`).
    pub(crate) legacy_live: Tree,
    /// `outbox.idem_expiry` of index versions before 4 (an expiry index of the idempotency keys, now found
    /// by a scan of the keys' records): emptied at open.
    pub(crate) legacy_idem_expiry: Tree,
    /// The stored idempotency keys, counted in memory (`idem.rs`).
    pub(crate) keys: SharedKeyFilter,
    /// The ids of every Pending or InFlight message, in memory (see [`Live`]).
    pub(crate) live: Live,
}

/// The ids of every Pending or InFlight message, in id (creation) order: the oldest-pending age and the
/// unfiltered Pending / InFlight listing read it. It is derived state, kept in memory instead of a tree
/// (one sled write less per enqueue and per delivery): rebuilt at open from the `due` and `leases` keys
/// (which `count_states` reads anyway), then moved by each committed transaction's changes with the
/// counters. Changes of two threads may be applied out of commit order, so an id may linger after its
/// message finished; readers check the stored header and drop such an id ([`Trees::oldest_live`]).
pub(crate) type Live = Arc<Mutex<BTreeSet<MessageId>>>;

/// A state change committed by a transaction: `(id, state before, state after)`; `None` before for a
/// new message, after for a deleted one.
pub(crate) type Change = (MessageId, Option<State>, Option<State>);

pub(crate) type TxResult<A> = ConflictableTransactionResult<A, OutboxError>;

/// The views of one transaction run. sled may run the closure more than once on conflict, so it
/// must not do I/O outside these views; `changes` is rebuilt on every run. Writes are blind (`set` and
/// `unset` of the vendored sled, `crates/sled/PATCHED.md`): nothing here uses a key's old value, and
/// sled's `insert` would read the tree for it on every write.
pub(crate) struct Tx<'a> {
    pub(crate) messages: &'a TransactionalTree,
    pub(crate) payloads: &'a TransactionalTree,
    pub(crate) due: &'a TransactionalTree,
    pub(crate) leases: &'a TransactionalTree,
    pub(crate) attempts: &'a TransactionalTree,
    pub(crate) by_tenant: &'a TransactionalTree,
    pub(crate) idempotency: &'a TransactionalTree,
    pub(crate) meta: &'a TransactionalTree,
    changes: RefCell<Vec<Change>>,
}

impl Trees {
    pub(crate) fn open(db: &SledDb) -> Result<Trees, StoreError> {
        let tree = |name: &str| db.db().open_tree(name);
        Ok(Trees {
            messages: tree("outbox.messages")?,
            payloads: tree("outbox.payloads")?,
            due: tree("outbox.due")?,
            leases: tree("outbox.leases")?,
            attempts: tree("outbox.attempts")?,
            by_tenant: tree("outbox.by_tenant")?,
            idempotency: tree("outbox.idempotency")?,
            meta: tree("outbox.meta")?,
            legacy_live: tree("outbox.live")?,
            legacy_idem_expiry: tree("outbox.idem_expiry")?,
            keys: SharedKeyFilter::default(),
            live: Live::default(),
        })
    }

    /// Runs `f` atomically over every tree. Returns its value and the state changes it made.
    pub(crate) fn transact<A>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<A>,
    ) -> Result<(A, Vec<Change>), OutboxError> {
        let trees = (
            &self.messages,
            &self.payloads,
            &self.due,
            &self.leases,
            &self.attempts,
            &self.by_tenant,
            &self.idempotency,
            &self.meta,
        );
        let result = trees.transaction(
            |(messages, payloads, due, leases, attempts, by_tenant, idempotency, meta)| {
                let tx = Tx {
                    messages,
                    payloads,
                    due,
                    leases,
                    attempts,
                    by_tenant,
                    idempotency,
                    meta,
                    changes: RefCell::new(Vec::new()),
                };
                let out = f(&tx)?;
                Ok((out, tx.changes.into_inner()))
            },
        );
        match result {
            Ok(done) => Ok(done),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::from(e).into()),
        }
    }

    /// Whether message `id` is stored, or is no newer than the newest one retention deleted.
    pub(crate) fn holds(&self, id: [u8; 16]) -> Result<bool, OutboxError> {
        if self.messages.contains_key(id).map_err(StoreError::from)? {
            return Ok(true);
        }
        let purged = self.meta.get(keys::META_PURGED).map_err(StoreError::from)?;
        Ok(purged.is_some_and(|newest| newest.as_ref() >= &id[..]))
    }

    /// Reads and decodes one message, payload included, outside a transaction.
    pub(crate) fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        let key = keys::message(id);
        let Some(header) = self.messages.get(key).map_err(StoreError::from)? else {
            return Ok(None);
        };
        let payload = if codec::is_legacy(&header) {
            None
        } else {
            self.payloads.get(key).map_err(StoreError::from)?
        };
        codec::decode(&header, payload.as_deref()).map(Some)
    }

    /// One message's header (payload `null`, but see [`codec::decode_header_only`]), outside a transaction.
    pub(crate) fn get_header(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        self.messages
            .get(keys::message(id))
            .map_err(StoreError::from)?
            .map(|bytes| codec::decode_header_only(&bytes))
            .transpose()
    }

    /// `m` with its stored payload (read outside a transaction: a payload never changes while its message
    /// is live, and retention erases it only from terminal messages).
    pub(crate) fn with_payload(&self, mut m: Message) -> Result<Message, OutboxError> {
        if let Some(bytes) = self
            .payloads
            .get(keys::message(m.id))
            .map_err(StoreError::from)?
        {
            m.payload = codec::decode_payload(&bytes)?;
        }
        Ok(m)
    }
}

impl Tx<'_> {
    /// One message's header: its payload reads as `null` (state changes never touch the payload).
    pub(crate) fn get(&self, id: MessageId) -> TxResult<Option<Message>> {
        match self.messages.get(keys::message(id))? {
            Some(bytes) => codec::decode_header_only(&bytes).map(Some).map_err(abort),
            None => Ok(None),
        }
    }

    /// One message with its payload (retention's erasure keeps some of its fields).
    pub(crate) fn get_full(&self, id: MessageId) -> TxResult<Option<Message>> {
        let key = keys::message(id);
        let Some(header) = self.messages.get(key)? else {
            return Ok(None);
        };
        let payload = if codec::is_legacy(&header) {
            None
        } else {
            self.payloads.get(key)?
        };
        codec::decode(&header, payload.as_deref())
            .map(Some)
            .map_err(abort)
    }

    /// Reads a message that must exist.
    pub(crate) fn get_existing(&self, id: MessageId) -> TxResult<Message> {
        self.get(id)?
            .ok_or_else(|| abort(OutboxError::NotFound(id)))
    }

    /// Writes `new` over `old` (None for a new message), moving the derived index entries:
    /// `due` exactly while Pending, `leases` exactly while InFlight, and in
    /// `meta` the terminal counters, the dead-letter and the retention entries. This and
    /// [`Tx::remove`] are the only writers of those trees, which is what keeps them consistent.
    ///
    /// The payload is written with a new message and again only when retention erases it (then `new`
    /// carries what is kept of it, or `null`); any other change rewrites the header alone, so `old` and
    /// `new` may come from [`Tx::get`] without their payload (an `old` with a payload is a legacy record
    /// or [`Tx::get_full`]'s, and its payload is written too).
    pub(crate) fn put(&self, old: Option<&Message>, new: &Message) -> TxResult<()> {
        let key = keys::message(new.id);
        let erasing = new.payload_erased_at.is_some()
            && old.is_some_and(|old| old.payload_erased_at.is_none());
        // A legacy record read whole (see `codec`) moves its payload out on its first change.
        let legacy = old.is_some_and(|old| !old.payload.is_null());
        if let Some(old) = old {
            self.unindex(old)?;
        } else {
            self.by_tenant
                .set(keys::tenant(&new.tenant, new.id).to_vec(), &[][..]);
        }
        if old.is_none() || erasing || legacy {
            if new.payload.is_null() {
                self.payloads.unset(&key);
            } else {
                let payload = codec::encode_payload(&new.payload).map_err(abort)?;
                self.payloads.set(&key, payload);
            }
        }
        self.messages.set(&key, codec::encode_header(new));
        self.index(new)?;
        self.changes
            .borrow_mut()
            .push((new.id, old.map(|m| m.state), Some(new.state)));
        Ok(())
    }

    /// Deletes `old` (retention), with its indexes and attempt log.
    pub(crate) fn remove(&self, old: &Message) -> TxResult<()> {
        self.unindex(old)?;
        self.messages.unset(&keys::message(old.id));
        self.payloads.unset(&keys::message(old.id));
        self.by_tenant
            .unset(keys::tenant(&old.tenant, old.id).as_slice());
        for n in 1..=old.attempts {
            self.attempts.unset(&keys::attempt(old.id, n));
        }
        let id = old.id.to_bytes();
        if self
            .meta
            .get(keys::META_PURGED)?
            .is_none_or(|newest| newest.as_ref() < &id[..])
        {
            self.meta.set(keys::META_PURGED, &id[..]);
        }
        self.changes
            .borrow_mut()
            .push((old.id, Some(old.state), None));
        Ok(())
    }

    fn index(&self, new: &Message) -> TxResult<()> {
        match new.state {
            State::Pending => {
                let key = keys::due(
                    new.destination.kind(),
                    new.lane,
                    &new.tenant,
                    new.next_attempt_at,
                    new.id,
                );
                self.due.set(key.as_slice(), &[][..]);
            }
            State::InFlight => {
                if let Some(until) = new.lease_until {
                    self.leases.set(&keys::lease(until, new.id), &[][..]);
                }
            }
            _ => {}
        }
        if new.state.is_terminal() {
            self.meta_entries(new, true)?;
        }
        Ok(())
    }

    fn unindex(&self, old: &Message) -> TxResult<()> {
        match old.state {
            State::Pending => {
                let key = keys::due(
                    old.destination.kind(),
                    old.lane,
                    &old.tenant,
                    old.next_attempt_at,
                    old.id,
                );
                self.due.unset(key.as_slice());
            }
            State::InFlight => {
                if let Some(until) = old.lease_until {
                    self.leases.unset(&keys::lease(until, old.id));
                }
            }
            _ => {}
        }
        if old.state.is_terminal() {
            self.meta_entries(old, false)?;
        }
        Ok(())
    }

    /// Adds (or removes) a terminal message's `meta` entries: its state's counter, its dead-letter
    /// entry, its retention entry.
    fn meta_entries(&self, m: &Message, add: bool) -> TxResult<()> {
        let mut keys_of: Vec<Vec<u8>> = Vec::with_capacity(2);
        if keys::indexed_by_state(m.state) {
            keys_of.push(keys::by_state(m.state, m.id).to_vec());
        }
        if let Some(completed) = backend::retirable(m) {
            keys_of.push(keys::retire(m.payload_erased_at.is_some(), completed, m.id).to_vec());
        }
        for key in keys_of {
            if add {
                self.meta.set(key, &[][..]);
            } else {
                self.meta.unset(key);
            }
        }
        let counter = keys::count(m.state);
        let n = self.meta.get(counter)?.map_or(0, |v| decode_count(&v));
        let n = if add { n + 1 } else { n - 1 };
        self.meta.set(&counter[..], &n.to_be_bytes()[..]);
        Ok(())
    }
}

/// A `meta` counter's value (0 when damaged: counts are informational).
pub(crate) fn decode_count(bytes: &[u8]) -> i64 {
    <[u8; 8]>::try_from(bytes).map_or(0, i64::from_be_bytes)
}

/// A JSON value stored by this backend (attempt records).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, OutboxError> {
    serde_json::from_slice(bytes).map_err(|source| {
        StoreError::Decode {
            what: "outbox",
            source,
        }
        .into()
    })
}

pub(crate) fn abort(e: OutboxError) -> ConflictableTransactionError<OutboxError> {
    ConflictableTransactionError::Abort(e)
}
