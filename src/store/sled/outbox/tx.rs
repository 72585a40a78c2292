//! The outbox's trees and its one way to change them: a transaction over all of them in which a
//! message and every index entry derived from it are written together.

use std::cell::RefCell;

use sled::Tree;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError, Transactional,
    TransactionalTree,
};

use crate::outbox::{Message, MessageId, OutboxError, State};
use crate::store::StoreError;
use crate::store::sled::db::SledDb;

use super::keys;

/// The trees of the key layout (see the module documentation).
pub(crate) struct Trees {
    pub(crate) messages: Tree,
    pub(crate) due: Tree,
    pub(crate) leases: Tree,
    pub(crate) live: Tree,
    pub(crate) attempts: Tree,
    pub(crate) by_tenant: Tree,
    pub(crate) idempotency: Tree,
    pub(crate) idem_expiry: Tree,
}

/// A state change committed by a transaction: `(id, state before, state after)`.
pub(crate) type Change = (MessageId, Option<State>, State);

pub(crate) type TxResult<A> = ConflictableTransactionResult<A, OutboxError>;

/// The views of one transaction run. sled may run the closure more than once on conflict, so it
/// must not do I/O outside these views; `changes` is rebuilt on every run.
pub(crate) struct Tx<'a> {
    pub(crate) messages: &'a TransactionalTree,
    pub(crate) due: &'a TransactionalTree,
    pub(crate) leases: &'a TransactionalTree,
    pub(crate) live: &'a TransactionalTree,
    pub(crate) attempts: &'a TransactionalTree,
    pub(crate) by_tenant: &'a TransactionalTree,
    pub(crate) idempotency: &'a TransactionalTree,
    pub(crate) idem_expiry: &'a TransactionalTree,
    changes: RefCell<Vec<Change>>,
}

impl Trees {
    pub(crate) fn open(db: &SledDb) -> Result<Trees, StoreError> {
        let tree = |name: &str| db.db().open_tree(name);
        Ok(Trees {
            messages: tree("outbox.messages")?,
            due: tree("outbox.due")?,
            leases: tree("outbox.leases")?,
            live: tree("outbox.live")?,
            attempts: tree("outbox.attempts")?,
            by_tenant: tree("outbox.by_tenant")?,
            idempotency: tree("outbox.idempotency")?,
            idem_expiry: tree("outbox.idem_expiry")?,
        })
    }

    /// Runs `f` atomically over every tree. Returns its value and the state changes it made.
    pub(crate) fn transact<A>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<A>,
    ) -> Result<(A, Vec<Change>), OutboxError> {
        let trees = (
            &self.messages,
            &self.due,
            &self.leases,
            &self.live,
            &self.attempts,
            &self.by_tenant,
            &self.idempotency,
            &self.idem_expiry,
        );
        let result = trees.transaction(
            |(messages, due, leases, live, attempts, by_tenant, idempotency, idem_expiry)| {
                let tx = Tx {
                    messages,
                    due,
                    leases,
                    live,
                    attempts,
                    by_tenant,
                    idempotency,
                    idem_expiry,
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

    /// Reads and decodes one message outside a transaction.
    pub(crate) fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        match self
            .messages
            .get(keys::message(id))
            .map_err(StoreError::from)?
        {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }
}

impl Tx<'_> {
    pub(crate) fn get(&self, id: MessageId) -> TxResult<Option<Message>> {
        match self.messages.get(keys::message(id))? {
            Some(bytes) => decode(&bytes).map(Some).map_err(abort),
            None => Ok(None),
        }
    }

    /// Reads a message that must exist.
    pub(crate) fn get_existing(&self, id: MessageId) -> TxResult<Message> {
        self.get(id)?
            .ok_or_else(|| abort(OutboxError::NotFound(id)))
    }

    /// Writes `new` over `old` (None for a new message), moving the derived index entries:
    /// `due` exactly while Pending, `leases` exactly while InFlight, `live` while not terminal.
    /// This is the only writer of those three trees, which is what keeps them consistent.
    pub(crate) fn put(&self, old: Option<&Message>, new: &Message) -> TxResult<()> {
        if let Some(old) = old {
            self.unindex(old)?;
        } else {
            self.by_tenant
                .insert(keys::tenant(&new.tenant, new.id).to_vec(), &[][..])?;
        }
        let bytes = serde_json::to_vec(new).map_err(|e| abort(OutboxError::Encode(e)))?;
        self.messages.insert(&keys::message(new.id), bytes)?;
        match new.state {
            State::Pending => {
                let key = keys::due(
                    new.destination.kind(),
                    new.lane,
                    new.next_attempt_at,
                    new.id,
                );
                self.due.insert(&key, &[][..])?;
            }
            State::InFlight => {
                if let Some(until) = new.lease_until {
                    self.leases.insert(&keys::lease(until, new.id), &[][..])?;
                }
            }
            _ => {}
        }
        if !new.state.is_terminal() {
            self.live.insert(&keys::message(new.id), &[][..])?;
        }
        self.changes
            .borrow_mut()
            .push((new.id, old.map(|m| m.state), new.state));
        Ok(())
    }

    fn unindex(&self, old: &Message) -> TxResult<()> {
        match old.state {
            State::Pending => {
                let key = keys::due(
                    old.destination.kind(),
                    old.lane,
                    old.next_attempt_at,
                    old.id,
                );
                self.due.remove(&key)?;
            }
            State::InFlight => {
                if let Some(until) = old.lease_until {
                    self.leases.remove(&keys::lease(until, old.id))?;
                }
            }
            _ => {}
        }
        if !old.state.is_terminal() {
            self.live.remove(&keys::message(old.id))?;
        }
        Ok(())
    }
}

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
