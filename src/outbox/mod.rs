//! The durable outbox: every message creditlink owes to Salesforce, a bank or a mailbox.
//!
//! # Design
//!
//! One queue, several destinations. Intake and the Salesforce listener *enqueue*; one relay worker
//! per destination kind *claims* due messages, tries them and *records* the attempt. Retries are
//! stored with a due time, never slept on in memory.
//!
//! ## The seam: [`Outbox`] over a [`Queue`]
//!
//! [`Outbox`] holds the rules — retry policy per destination kind, lease length and its check against
//! the worker's attempt timeout, idempotency TTL, the clock, `wait_terminal` — and turns every call
//! into one atomic step of a [`Queue`] (`backend.rs`), the object-safe async trait an implementation
//! of storage provides:
//!
//! | `Queue` method | what it does atomically |
//! |---|---|
//! | `insert` / `insert_idempotent` | a new Pending message (and its key hash: check-and-insert) |
//! | `claim` | expired leases back to Pending, then due Pending → InFlight with a fresh [`LeaseToken`] |
//! | `resolve` | *fenced by that token*: InFlight → Pending (retry) / Delivered / Failed / Dead, plus the attempt |
//! | `admin_move` | Failed/Dead → Pending (retry), Pending/Failed/Dead → Discarded |
//! | `release_all` | every InFlight → Pending (embedded stores at open only) |
//! | `get` `list` `attempts` `counts` `oldest_live` `purge_expired_keys` | reads and housekeeping |
//! | `retire` | retention: erase old terminal messages' payloads, delete old history (`retention.rs`) |
//!
//! The state changes themselves are pure functions in `backend.rs` ([`backend::claimed`],
//! [`backend::released`], [`Resolution::apply`], [`AdminMove::apply`]), so every implementation
//! applies the same machine; the contract suite (`tests/it/outbox_contract*.rs`) runs the same tests
//! against each implementation.
//!
//! **Durable by construction.** A `Queue` write returns only once it would survive `kill -9`: the
//! sled implementation (`store/sled/outbox/`) runs its transaction on a blocking thread and then
//! waits for the store's group commit; a database implementation simply commits. The in-memory
//! implementation (`store/memory/`) is for tests. No caller ever flushes: when `enqueue` returns,
//! intake may answer 202.
//!
//! Implementations today: sled (embedded default, `store/sled/`), memory (`store/memory/`). A
//! PostgreSQL implementation plugs in as another [`crate::store::Backend`]: it returns its `Queue`
//! from `Backend::queue` and its durable key-value trees from `Backend::kv`; no caller changes.
//!
//! ## State machine
//!
//! ```text
//!            enqueue
//!               │
//!               ▼     claim (lease + token)       Delivered
//!   ┌──────▶ Pending ───────────────▶ InFlight ───▶ Failed     (permanent error, never retried)
//!   │           ▲  ▲                   │  │   └───▶ Dead       (attempts or age exhausted)
//!   │           │  └── Retry (due later) ┘  │
//!   │           └── lease expired / restart ┘  (ReleaseNoAttempt: shutdown, not counted)
//!   └── admin retry ◀── Failed | Dead        admin discard: Pending | Failed | Dead ──▶ Discarded
//! ```
//!
//! ## Leases and fencing
//!
//! A claim sets `lease_until = now + lease` and a fresh random [`LeaseToken`] on the message and
//! returns it; [`Outbox::record_attempt`] takes that claimed message and the queue applies the
//! outcome only while the message is still InFlight *under that token*. A worker whose lease expired
//! (it hung, or was paused longer than the lease) gets [`OutboxError::LeaseLost`] and changes
//! nothing, even if another worker re-claimed the message meanwhile. Because the fence guarantees the
//! message did not change since the claim, the outbox computes the next state (retry delay, Dead)
//! from the claimed copy; the queue only checks the token and writes.
//!
//! A lease must outlast the slowest attempt, or a slow send is claimed and sent again while it is
//! still running: [`Outbox::claim_due`] takes the worker's attempt timeout and refuses
//! ([`OutboxError::LeaseTooShort`]) unless the lease is longer. A lease expiry does not count as an
//! attempt, so a message that kills its worker every time would cycle forever; that rule bounds it.
//!
//! ## Crash recovery
//!
//! An embedded store is owned by one process, so at open every InFlight message goes back to Pending,
//! due now, attempt count unchanged (sending again is safe: every write is an upsert by External ID,
//! banks dedupe on `webhook-id`). A shared database does not do that (other daemons hold leases):
//! expired leases are released by the next claim, which is also what happens at run time when a
//! worker dies.
//!
//! ## Invariants
//!
//! - Every write is durable when it returns; each is atomic over the message, its indexes, its
//!   attempt and its idempotency key.
//! - A message is InFlight iff it has a lease and a token; only the holder of the token moves it on.
//! - `attempts` equals the number of entries in the attempt log for that message.
//! - Failed, Dead, Delivered and Discarded messages are never claimed; only an admin `retry`
//!   brings Failed or Dead back.
//! - Idempotency keys are stored only as hashes and honoured for `idempotency_ttl` (≥ 24 h), across
//!   restarts.
//!
//! ## Memory
//!
//! Messages live in the store, not in an in-memory map: the outbox holds one small channel per caller
//! currently blocked in [`Outbox::wait_terminal`]. Memory stays flat as the queue grows.

mod admin;
pub mod backend;
mod error;
mod policy;
mod queue;
mod retention;
mod types;

pub use backend::{AdminMove, Claim, IdemKey, Queue, Resolution, Retention, Retired};
pub use error::OutboxError;
pub use policy::{PolicyError, RetryPolicy};
pub(crate) use queue::fresh;
#[cfg(test)]
pub(crate) use queue::test_email;
pub use retention::{RETENTION_BATCH, RETENTION_ROLE, RetentionPolicy};
pub use types::{
    Attempt, AttemptOutcome, Counts, Destination, DestinationKind, Enqueued, ErrorClass, Lane,
    LastError, LeaseToken, ListFilter, Message, MessageId, NewMessage, State, Transition,
};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::store::Store;

/// How often [`Outbox::wait_terminal`] re-reads a message it waits on, besides being woken by this
/// process's own transitions: a message another daemon (sharing a database) finished is seen this late
/// at worst.
const WAIT_RECHECK: Duration = Duration::from_secs(1);

/// The clock the outbox reads "now" from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system clock (production).
    #[default]
    System,
    /// Tokio's clock, anchored to the system time at open: under `tokio::time::pause` tests advance it
    /// (and with it every due time and lease) without waiting.
    Tokio,
}

/// Outbox settings beyond the retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxOptions {
    /// How long a claimed message stays reserved for its worker. Longer than the slowest attempt
    /// (request timeout plus a margin), or a slow attempt gets sent twice: checked at every claim.
    pub lease: Duration,
    /// How long an idempotency key is honoured. At least 24 h: banks retry through outages.
    pub idempotency_ttl: Duration,
    pub clock: Clock,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            lease: Duration::from_secs(60),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            clock: Clock::System,
        }
    }
}

/// The durable outbox. Cheap to clone: every clone shares the same queue.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Shared>,
}

struct Shared {
    queue: Arc<dyn Queue>,
    /// The store the queue lives in, for modules that keep their own trees beside it.
    store: Store,
    policy: RetryPolicy,
    /// Per-destination overrides of `policy`: a bank webhook follows Svix's multi-day schedule while
    /// a Salesforce write retries within hours. Kinds absent here use `policy`.
    policies: HashMap<DestinationKind, RetryPolicy>,
    options: OutboxOptions,
    /// `(system time, tokio instant)` at open, for [`Clock::Tokio`].
    epoch: (DateTime<Utc>, tokio::time::Instant),
    /// One channel per message someone waits on; removed when the last waiter leaves.
    waiters: Mutex<HashMap<MessageId, watch::Sender<()>>>,
}

impl Outbox {
    /// Opens the outbox over `store`'s queue with default [`OutboxOptions`]. An embedded store has
    /// recovered its in-flight messages when it opened (see the module documentation).
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
        Ok(Outbox {
            inner: Arc::new(Shared {
                queue: store.queue()?,
                store,
                policy,
                policies,
                options,
                epoch: (Utc::now(), tokio::time::Instant::now()),
                waiters: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The store this outbox's queue lives in.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// "Now" by the outbox's [`Clock`]. Workers use it for claims so tests can run under a paused clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self.inner.options.clock {
            Clock::System => Utc::now(),
            Clock::Tokio => {
                let (wall, instant) = self.inner.epoch;
                let elapsed = tokio::time::Instant::now().saturating_duration_since(instant);
                wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
            }
        }
    }

    /// The lease length claims use.
    pub fn lease(&self) -> Duration {
        self.inner.options.lease
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
    ///
    /// Woken at once by this process's own transitions, and re-reads the message every second in case
    /// another process sharing the store finished it.
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
            match self.get(id).await {
                Ok(Some(m)) if m.state.is_terminal() => break Ok(Some(m)),
                Ok(None) => break Err(OutboxError::NotFound(id)),
                Err(e) => break Err(e),
                Ok(Some(_)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break Ok(None);
            }
            let recheck = (tokio::time::Instant::now() + WAIT_RECHECK).min(deadline);
            match tokio::time::timeout_at(recheck, rx.changed()).await {
                Ok(Ok(())) | Err(_) => continue,
                Ok(Err(_)) => break Ok(None),
            }
        };
        drop(rx);
        let mut waiters = self.inner.waiters.lock();
        if waiters.get(&id).is_some_and(|tx| tx.receiver_count() == 0) {
            waiters.remove(&id);
        }
        result
    }

    /// Wakes whoever waits on `message` when it became terminal.
    fn settled(&self, message: &Message) {
        if message.state.is_terminal()
            && let Some(tx) = self.inner.waiters.lock().get(&message.id)
        {
            tx.send_replace(());
        }
    }
}

/// The idempotency key hash: SHA-256 of `tenant NUL key`. Only the hash is stored: a bank's key may
/// embed personal data (a national id), and the store keeps none in keys.
pub fn idempotency_hash(tenant: &str, key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    h.finalize().into()
}
