//! The durable outbox: every message creditlink owes to Salesforce, a bank or a mailbox.
//!
//! # Design
//!
//! One queue, several destinations. Intake and the Salesforce listener *enqueue*; one relay worker
//! per destination kind *claims* due messages, tries them and *records* the attempt. Retries are
//! stored with a due time, never slept on in memory.
//!
//! ## Key layout (sled trees, see `keys.rs`; integers big-endian so byte order is value order)
//!
//! | tree | key | value |
//! |---|---|---|
//! | `outbox.messages` | id (16 B, UUID v7: creation order) | the [`Message`] as JSON |
//! | `outbox.due` | kind (1) · lane (1) · next_attempt_at ms (8) · id | empty; only Pending |
//! | `outbox.leases` | lease_until ms (8) · id | empty; only InFlight |
//! | `outbox.live` | id | empty; Pending or InFlight (oldest-pending age) |
//! | `outbox.attempts` | id · attempt number (4) | the [`Attempt`] as JSON; never purged with the message |
//! | `outbox.by_tenant` | len (2) · tenant · id | empty; a bank's messages in order |
//! | `outbox.idempotency` | SHA-256(tenant · NUL · key) | id · body hash · expires_at |
//! | `outbox.idem_expiry` | expires_at ms (8) · key hash | empty; purge is a range scan |
//!
//! Claiming is a range scan over one `(kind, lane)` prefix of `due` up to "now", so its cost
//! depends on how many messages are due, not on the queue length.
//!
//! ## State machine
//!
//! ```text
//!            enqueue
//!               │
//!               ▼     claim_due (lease)            Delivered
//!   ┌──────▶ Pending ───────────────▶ InFlight ───▶ Failed     (permanent error, never retried)
//!   │           ▲  ▲                   │  │   └───▶ Dead       (attempts or age exhausted)
//!   │           │  └── Retry (due later) ┘  │
//!   │           └── lease expired / restart ┘  (ReleaseNoAttempt: shutdown, not counted)
//!   └── admin retry ◀── Failed | Dead        admin discard: Pending | Failed | Dead ──▶ Discarded
//! ```
//!
//! ## Durability rule
//!
//! **Nothing is acknowledged upstream before the store's flush returns**: a producer enqueues, then
//! awaits [`Store::durable`] (group commit), and only then answers 202 or SOAP `Ack`. Every state
//! change is one sled transaction over all trees, so a message and its index entries never
//! disagree, even after a crash at any instant.
//!
//! ## Crash recovery
//!
//! At [`Outbox::open`], every InFlight message (found through `leases`) goes back to Pending, due
//! now, with its attempt count unchanged: the worker that held it may or may not have reached the
//! destination, and sending again is safe because every write is an upsert by External ID (banks
//! dedupe on `webhook-id`). The same happens at run time when a lease expires (a worker died or
//! hung). A lease expiry does not count as an attempt, so a message that kills its worker every
//! time would cycle forever; the relay bounds that with its request timeout being shorter than the
//! lease. Then the per-state counters are rebuilt by decoding every message once: O(messages) time
//! at startup, O(1) memory (a streaming scan). At a million messages this is seconds; persisting
//! the counters instead would add a hot key to every transaction.
//!
//! ## Invariants
//!
//! - A message has a `due` entry iff it is Pending, a `leases` entry iff it is InFlight, a `live`
//!   entry iff it is Pending or InFlight (all written only by `Tx::put`).
//! - `attempts` equals the number of entries in the attempt log for that message.
//! - Failed, Dead, Delivered and Discarded messages are never claimed; only an admin `retry`
//!   brings Failed or Dead back.
//! - Idempotency keys are stored only as hashes and honoured for `idempotency_ttl` (≥ 24 h), across
//!   restarts.
//!
//! ## Memory
//!
//! Messages live on disk, not in an in-memory map: the outbox holds only the six state counters and
//! one small channel per caller currently blocked in [`Outbox::wait_terminal`]. Memory stays flat
//! as the queue grows (sled's page cache is bounded by its own `cache_capacity`).

mod admin;
mod error;
mod keys;
mod policy;
mod queue;
mod tx;
mod types;

pub use error::OutboxError;
pub use policy::{PolicyError, RetryPolicy};
pub use types::{
    Attempt, AttemptOutcome, Counts, Destination, DestinationKind, Enqueued, ErrorClass, Lane,
    LastError, ListFilter, Message, MessageId, NewMessage, State, Transition,
};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::store::{Store, StoreError};
use tx::{Change, Trees};

/// Outbox settings beyond the retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxOptions {
    /// How long a claimed message stays reserved for its worker. Longer than the slowest attempt
    /// (request timeout plus a margin), or a slow attempt gets sent twice.
    pub lease: Duration,
    /// How long an idempotency key is honoured. At least 24 h: banks retry through outages.
    pub idempotency_ttl: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            lease: Duration::from_secs(60),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The durable outbox. Cheap to clone: every clone shares the same store and counters.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Shared>,
}

struct Shared {
    store: Store,
    trees: Trees,
    policy: RetryPolicy,
    /// Per-destination overrides of `policy`: a bank webhook follows Svix's multi-day schedule while
    /// a Salesforce write retries within hours. Kinds absent here use `policy`.
    policies: HashMap<DestinationKind, RetryPolicy>,
    options: OutboxOptions,
    /// Messages per state, maintained after each committed transaction.
    /// Per-state counters, signed: changes are applied after their transactions commit, so a claim may
    /// be counted before the enqueue it follows; a counter then dips below zero for an instant instead of
    /// losing the decrement (reads clamp at zero).
    counts: Mutex<HashMap<State, i64>>,
    /// One channel per message someone waits on; removed when the last waiter leaves.
    waiters: Mutex<HashMap<MessageId, watch::Sender<()>>>,
}

impl Outbox {
    /// Opens the outbox with default [`OutboxOptions`], recovering from a crash (see the module
    /// documentation for what that does and costs).
    pub fn open(store: Store, policy: RetryPolicy) -> Result<Outbox, OutboxError> {
        Self::open_with(store, policy, OutboxOptions::default())
    }

    /// Opens the outbox with explicit options.
    pub fn open_with(
        store: Store,
        policy: RetryPolicy,
        options: OutboxOptions,
    ) -> Result<Outbox, OutboxError> {
        Self::open_with_policies(store, policy, HashMap::new(), options)
    }

    /// Opens the outbox with a retry policy per destination kind: `policies` overrides `policy` (the
    /// default) for the kinds it names. The policy is looked up when an attempt is recorded, so it
    /// applies to messages already queued.
    pub fn open_with_policies(
        store: Store,
        policy: RetryPolicy,
        policies: HashMap<DestinationKind, RetryPolicy>,
        options: OutboxOptions,
    ) -> Result<Outbox, OutboxError> {
        if options.lease.is_zero() {
            return Err(OutboxError::Config("lease must be positive"));
        }
        if options.idempotency_ttl < Duration::from_secs(24 * 3600) {
            return Err(OutboxError::Config(
                "idempotency_ttl must be at least 24 hours",
            ));
        }
        let trees = Trees::open(&store)?;
        let outbox = Outbox {
            inner: Arc::new(Shared {
                store,
                trees,
                policy,
                policies,
                options,
                counts: Mutex::new(HashMap::new()),
                waiters: Mutex::new(HashMap::new()),
            }),
        };
        outbox.recover_in_flight(Utc::now())?;
        outbox.rebuild_counts()?;
        Ok(outbox)
    }

    /// The store this outbox writes to: await [`Store::durable`] before acknowledging.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Shorthand for `self.store().durable()`.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.inner.store.durable().await
    }

    /// The default retry policy (destinations without their own).
    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// The retry policy that applies to messages of `kind`.
    pub fn policy_for(&self, kind: DestinationKind) -> &RetryPolicy {
        self.inner.policies.get(&kind).unwrap_or(&self.inner.policy)
    }

    /// Waits until the message is Delivered, Failed, Dead or Discarded, or `timeout` passes.
    /// Returns the message if it is terminal, `None` on timeout. Used for `Prefer: wait=N`.
    pub async fn wait_terminal(
        &self,
        id: MessageId,
        timeout: Duration,
    ) -> Result<Option<Message>, OutboxError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = {
            let mut waiters = self.inner.waiters.lock();
            waiters
                .entry(id)
                .or_insert_with(|| watch::channel(()).0)
                .subscribe()
        };
        // Subscribed before reading, so a transition between the read and the wait still wakes us.
        let result = loop {
            match self.get(id) {
                Ok(Some(m)) if m.state.is_terminal() => break Ok(Some(m)),
                Ok(None) => break Err(OutboxError::NotFound(id)),
                Err(e) => break Err(e),
                Ok(Some(_)) => {}
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => break Ok(None),
            }
        };
        drop(rx);
        let mut waiters = self.inner.waiters.lock();
        if waiters.get(&id).is_some_and(|tx| tx.receiver_count() == 0) {
            waiters.remove(&id);
        }
        result
    }

    /// Runs a transaction, then applies its state changes to the counters and wakes waiters.
    fn commit<A>(&self, f: impl Fn(&tx::Tx<'_>) -> tx::TxResult<A>) -> Result<A, OutboxError> {
        let (out, changes) = self.inner.trees.transact(f)?;
        self.apply(&changes);
        Ok(out)
    }

    fn apply(&self, changes: &[Change]) {
        {
            let mut counts = self.inner.counts.lock();
            for &(_, old, new) in changes {
                if let Some(old) = old {
                    *counts.entry(old).or_default() -= 1;
                }
                *counts.entry(new).or_default() += 1;
            }
        }
        let waiters = self.inner.waiters.lock();
        for (id, _, new) in changes {
            if new.is_terminal()
                && let Some(tx) = waiters.get(id)
            {
                tx.send_replace(());
            }
        }
    }

    /// Puts every InFlight message back to Pending, due `now` (crash recovery at open).
    fn recover_in_flight(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        let mut recovered = 0;
        loop {
            let ids = self.leased_ids(None, 256)?;
            if ids.is_empty() {
                return Ok(recovered);
            }
            recovered += self.release_leases(&ids, now, None)?;
        }
    }

    fn rebuild_counts(&self) -> Result<(), OutboxError> {
        let mut counts: HashMap<State, i64> = HashMap::new();
        for entry in self.inner.trees.messages.iter() {
            let (_, bytes) = entry.map_err(StoreError::from)?;
            let message: Message = tx::decode(&bytes)?;
            *counts.entry(message.state).or_default() += 1;
        }
        *self.inner.counts.lock() = counts;
        Ok(())
    }
}
