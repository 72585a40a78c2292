//! The outbox's [`Queue`] in sled.
//!
//! ## Key layout (see `keys.rs`; integers big-endian so byte order is value order)
//!
//! | tree | key | value |
//! |---|---|---|
//! | `outbox.messages` | id (16 B, UUID v7: creation order) | the message's header, binary, without its payload (`codec.rs`; a legacy record is the whole message as JSON) |
//! | `outbox.payloads` | id | the payload as JSON, written once at enqueue; rewritten or removed only by retention's erasure |
//! | `outbox.due` | kind (1) · lane (1) · len (2) · tenant · next_attempt_at ms (8) · id | empty; only Pending |
//! | `outbox.leases` | lease_until ms (8) · id | empty; only InFlight |
//! | `outbox.attempts` | id · attempt number (4) | the [`crate::outbox::Attempt`] as JSON |
//! | `outbox.by_tenant` | len (2) · tenant · id | empty; a bank's messages in order |
//! | `outbox.idempotency` | SHA-256(tenant · NUL · key) | id · body hash · expires_at; purge scans these records |
//! | `outbox.meta` | `c`·state / `s`·state·id / `r`·erased·completed ms·id / `v` | terminal counters (i64); dead letters; retention; index version |
//!
//! Every write is one sled transaction over the trees (`tx.rs`; `Tx::put` is the only writer of the
//! derived indexes `due` and `leases`), durable before it returns. Enqueues go to one thread that
//! writes every enqueue waiting in one transaction and flushes once for them (`batch.rs`); the other
//! writes run on a blocking thread each and then wait for the group-commit thread (`db.rs`). A state
//! change rewrites the header (about 150 bytes) and moves the index entries; it never re-encodes or
//! rewrites the payload. An enqueue writes `messages`, `payloads`, `by_tenant` and `due`, plus
//! `idempotency` with an Idempotency-Key; the stored keys are also counted in memory by hash prefix
//! (`idem.rs`), so a new key (nearly every one) is written without reading the tree first. (Stores
//! before index version 4 also had an expiry index, `outbox.idem_expiry`; it is emptied at open.) The
//! ids of the Pending and InFlight messages (the oldest-pending age, the unfiltered live listing) are
//! kept in memory (`tx::Live`), not in a tree: rebuilt at open from `due` and `leases`, moved by every
//! commit's changes. (Stores before index version 3 had an `outbox.live` tree; it is emptied at open.)
//! Claiming seeks from tenant to tenant within one `(kind, lane)` prefix of `due` and takes each
//! tenant's messages due by "now" with a range scan, round robin across tenants (fair between banks),
//! so its cost depends on the number of banks with work due and the batch size, not on the queue
//! length.
//!
//! Counters per state live in memory, maintained from each committed transaction's changes. At open
//! they are rebuilt from live state only: Pending and InFlight by counting `due` and `leases` keys,
//! terminal states from durable counters in `meta` that the transactions moving a message into or out
//! of a terminal state update. Startup therefore costs nothing proportional to history, and neither does
//! listing dead letters (their `meta` entries) or retention (a range over the `r` entries).
//!
//! At open every InFlight message goes back to Pending (this process owns the store).

mod batch;
mod codec;
mod idem;
mod keys;
mod read;
mod tx;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use crate::outbox::backend::{AdminMove, Claim, IdemKey, Resolution, Resolved, Retention, Retired};
use crate::outbox::{
    Attempt, Counts, Enqueued, LeaseToken, ListFilter, Message, MessageId, OutboxError, Queue,
    State,
};
use crate::store::StoreError;

use super::db::{SledDb, blocking};
use tx::{Change, Trees};

/// The sled queue. The trees and counters are shared with blocking threads.
pub(crate) struct SledQueue {
    shared: Arc<Shared>,
}

struct Shared {
    db: SledDb,
    trees: Trees,
    /// Per-state counters, signed: changes are applied after their transactions commit, so a claim may
    /// be counted before the enqueue it follows; a counter then dips below zero for an instant instead of
    /// losing the decrement (reads clamp at zero).
    counts: batch::Counts,
    /// The thread that writes enqueues in batches (`batch.rs`).
    batcher: batch::Batcher,
    /// Index and counter entries read to count states at open (tests check it stays with live state).
    #[cfg_attr(not(test), allow(dead_code))]
    open_reads: u64,
}

impl SledQueue {
    /// Opens the trees, releases every lease left by a previous process and rebuilds the counters.
    /// Blocking.
    pub(crate) fn open(db: &SledDb) -> Result<SledQueue, StoreError> {
        let trees = Trees::open(db)?;
        trees.ensure_meta().map_err(into_store)?;
        trees.release_all(Utc::now()).map_err(into_store)?;
        let (counts, open_reads) = trees.count_states().map_err(into_store)?;
        let keys = trees.fill_key_filter().map_err(into_store)?;
        tracing::debug!(
            entries_read = open_reads,
            idempotency_keys = keys,
            "outbox states counted at open"
        );
        let counts = Arc::new(Mutex::new(counts));
        let batcher = batch::Batcher::start(trees.clone(), counts.clone(), db.clone())?;
        Ok(SledQueue {
            shared: Arc::new(Shared {
                db: db.clone(),
                trees,
                counts,
                batcher,
                open_reads,
            }),
        })
    }

    /// Whether the message `id` is stored, or was deleted by retention (the high-water check at open).
    pub(crate) fn holds(&self, id: [u8; 16]) -> Result<bool, StoreError> {
        self.shared.trees.holds(id).map_err(into_store)
    }

    /// How many index and counter entries counting the states read at open.
    #[cfg(test)]
    pub(crate) fn open_reads(&self) -> u64 {
        self.shared.open_reads
    }

    /// Runs a write on a blocking thread, applies its changes to the counters, then waits for durability.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Trees) -> Result<(T, Vec<Change>), OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let shared = self.shared.clone();
        let out = blocking(move || {
            let (out, changes) = f(&shared.trees)?;
            settle(&shared.trees, &shared.counts, &shared.db, &changes);
            Ok::<_, OutboxError>(out)
        })
        .await?;
        self.shared.db.durable().await?;
        Ok(out)
    }

    /// An enqueue through the batch thread, which answers once it is durable.
    async fn enqueue(
        &self,
        message: Message,
        key: Option<IdemKey>,
    ) -> Result<Enqueued, OutboxError> {
        self.shared.batcher.enqueue(message, key).await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Trees) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let shared = self.shared.clone();
        blocking(move || f(&shared.trees)).await
    }
}

/// A committed transaction's changes into the counters, the live ids and the high-water mark (every
/// writer calls it right after its commit: the batch thread and [`SledQueue::write`]).
fn settle(trees: &Trees, counts: &batch::Counts, db: &SledDb, changes: &[Change]) {
    apply(counts, &trees.live, changes);
    for (id, _, _) in changes.iter().filter(|(_, old, _)| old.is_none()) {
        db.high_water().inserted(id.to_bytes());
    }
}

/// A committed transaction's state changes into the counters and the live ids.
fn apply(counts: &Mutex<HashMap<State, i64>>, live: &tx::Live, changes: &[Change]) {
    {
        let mut counts = counts.lock();
        for &(_, old, new) in changes {
            if let Some(old) = old {
                *counts.entry(old).or_default() -= 1;
            }
            if let Some(new) = new {
                *counts.entry(new).or_default() += 1;
            }
        }
    }
    let mut live = live.lock();
    for &(id, _, new) in changes {
        if new.is_some_and(|s| !s.is_terminal()) {
            live.insert(id);
        } else {
            live.remove(&id);
        }
    }
}

/// Errors met while opening are store errors (the outbox is not built yet).
fn into_store(e: OutboxError) -> StoreError {
    match e {
        OutboxError::Store(e) => e,
        other => StoreError::Fatal(other.to_string()),
    }
}

#[async_trait]
impl Queue for SledQueue {
    async fn insert(&self, message: Message) -> Result<(), OutboxError> {
        self.enqueue(message, None).await.map(|_| ())
    }

    async fn insert_idempotent(
        &self,
        message: Message,
        key: IdemKey,
    ) -> Result<Enqueued, OutboxError> {
        self.enqueue(message, Some(key)).await
    }

    async fn claim(&self, claim: Claim) -> Result<Vec<Message>, OutboxError> {
        self.write(move |t| t.claim(&claim)).await
    }

    async fn resolve(
        &self,
        id: MessageId,
        token: LeaseToken,
        resolution: Resolution,
    ) -> Result<Message, OutboxError> {
        self.write(move |t| t.resolve(id, token, &resolution)).await
    }

    async fn resolve_many(
        &self,
        items: Vec<(MessageId, LeaseToken, Resolution)>,
    ) -> Result<Resolved, OutboxError> {
        self.write(move |t| t.resolve_many(&items)).await
    }

    async fn admin_move(&self, id: MessageId, mv: AdminMove) -> Result<Message, OutboxError> {
        self.write(move |t| t.admin_move(id, mv)).await
    }

    async fn release_all(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        self.write(move |t| {
            let changes = t.release_all(now)?;
            Ok((changes.len(), changes))
        })
        .await
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        self.read(move |t| t.get(id)).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        let filter = filter.clone();
        self.read(move |t| t.list(&filter)).await
    }

    async fn attempts(&self, id: MessageId) -> Result<Vec<Attempt>, OutboxError> {
        self.read(move |t| t.attempts(id)).await
    }

    async fn counts(&self) -> Result<Counts, OutboxError> {
        let signed = self.shared.counts.lock();
        let mut counts = Counts::default();
        for (state, n) in signed.iter() {
            *counts.slot(*state) = u64::try_from(*n).unwrap_or(0);
        }
        Ok(counts)
    }

    async fn oldest_live(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        self.read(|t| t.oldest_live()).await
    }

    async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        self.write(move |t| Ok((t.purge_expired_keys(now)?, Vec::new())))
            .await
    }

    async fn retire(&self, retention: Retention) -> Result<Retired, OutboxError> {
        self.write(move |t| t.retire(&retention)).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::outbox::{Destination, Lane, NewMessage};
    use crate::store::Durability;

    fn message(n: u32) -> Message {
        let new = NewMessage {
            tenant: "001A".into(),
            lane: Lane::Interactive,
            destination: Destination::Email {
                to: "ops@bureau.example".into(),
                template: format!("t{n}"),
            },
            payload: serde_json::json!({ "n": n }),
            mapping_version: None,
        };
        crate::outbox::fresh(MessageId::new(), new, Utc::now())
    }

    /// The resolution of a delivered attempt at `now`.
    fn delivered_at(now: chrono::DateTime<Utc>) -> Resolution {
        Resolution {
            state: State::Delivered,
            next_attempt_at: now,
            attempt: None,
            remote_id: None,
            now,
        }
    }

    /// Inserts `total` messages, the first `delivered` of them delivered.
    fn fill(trees: &Trees, total: u32, delivered: u32) {
        for n in 0..total {
            let m = message(n);
            let now = m.next_attempt_at;
            trees.insert(&m).expect("insert");
            if n < delivered {
                let claim = Claim {
                    kind: m.destination.kind(),
                    lane: m.lane,
                    max: 1,
                    now,
                    lease_until: now + chrono::Duration::seconds(30),
                };
                let (claimed, _) = trees.claim(&claim).expect("claim");
                let token = claimed[0].lease_token.expect("token");
                trees
                    .resolve(claimed[0].id, token, &delivered_at(now))
                    .expect("resolve");
            }
        }
    }

    /// What a store written before index version 3 also held: `outbox.live`, an entry per Pending or
    /// InFlight message (their ids from `due` and `leases`).
    fn write_legacy_live(trees: &Trees) {
        for tree in [&trees.due, &trees.leases] {
            for key in tree.iter().keys() {
                let id = keys::trailing_id(&key.expect("key")).expect("id");
                trees
                    .legacy_live
                    .insert(keys::message(id), &[][..])
                    .expect("insert");
            }
        }
    }

    /// A store written before the `meta` indexes gets them built once at open.
    #[test]
    fn a_store_without_meta_indexes_gets_them_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = SledDb::open(dir.path(), Durability::None).expect("open");
            let queue = SledQueue::open(&db).expect("queue");
            fill(&queue.shared.trees, 7, 5);
            write_legacy_live(&queue.shared.trees);
            queue.shared.trees.meta.clear().expect("forget the indexes");
        }
        let db = SledDb::open(dir.path(), Durability::None).expect("reopen");
        let queue = SledQueue::open(&db).expect("queue");
        let counts = queue.shared.counts.lock().clone();
        assert_eq!(counts.get(&State::Delivered), Some(&5));
        assert_eq!(counts.get(&State::Pending), Some(&2));
        let retention = Retention {
            erase_before: Utc::now() + chrono::Duration::days(1),
            purge_before: None,
            max: 100,
            now: Utc::now(),
            keep: Vec::new().into(),
        };
        let (done, _) = queue.shared.trees.retire(&retention).expect("retire");
        assert_eq!(
            done.erased, 5,
            "the rebuilt retention index finds every delivered message"
        );
    }

    /// A version-1 store (due keys without the tenant) gets its `due` index rewritten once at open, so
    /// its pending messages are claimed as before.
    #[test]
    fn a_version_1_due_index_is_rebuilt_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pending: Vec<MessageId>;
        {
            let db = SledDb::open(dir.path(), Durability::None).expect("open");
            let queue = SledQueue::open(&db).expect("queue");
            let trees = &queue.shared.trees;
            fill(trees, 7, 5);
            write_legacy_live(trees);
            let due: Vec<_> = trees.due.iter().keys().map(|k| k.expect("key")).collect();
            pending = due.iter().filter_map(|k| keys::trailing_id(k)).collect();
            trees.due.clear().expect("clear");
            for key in &due {
                // Version 1: kind | lane | next_attempt_at ms | id.
                let (_, at) = keys::split_due(key).expect("a due key");
                let mut old = key[..2].to_vec();
                old.extend_from_slice(&at.to_be_bytes());
                old.extend_from_slice(&key[key.len() - 16..]);
                trees.due.insert(old, &[][..]).expect("insert");
            }
            trees
                .meta
                .insert(keys::META_VERSION, &[1u8][..])
                .expect("v1");
        }
        let db = SledDb::open(dir.path(), Durability::None).expect("reopen");
        let queue = SledQueue::open(&db).expect("queue");
        let now = Utc::now() + chrono::Duration::seconds(1);
        let claim = Claim {
            kind: crate::outbox::DestinationKind::Email,
            lane: Lane::Interactive,
            max: 10,
            now,
            lease_until: now + chrono::Duration::seconds(30),
        };
        let (claimed, _) = queue.shared.trees.claim(&claim).expect("claim");
        let mut ids: Vec<_> = claimed.iter().map(|m| m.id).collect();
        ids.sort();
        let mut expected = pending.clone();
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(pending.len(), 2);
        assert!(
            queue.shared.trees.legacy_live.is_empty(),
            "the old live tree is emptied (version 3 keeps the live ids in memory)"
        );
    }

    /// A version-3 store also had an expiry index of its idempotency keys: version 4 empties it. The keys
    /// stored before are counted at open (so a replay reads the tree and finds its message),
    /// and purge finds the expired ones by their records; a purged key is new again, then replays.
    #[tokio::test]
    async fn idempotency_keys_after_the_version_4_migration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let key = |n: u8, hours: i64| IdemKey {
            hash: [n; 32],
            body_hash: [1; 32],
            expires_at: now + chrono::Duration::hours(hours),
            now,
        };
        let kept = {
            let db = SledDb::open(dir.path(), Durability::None).expect("open");
            let queue = SledQueue::open(&db).expect("queue");
            let kept = queue
                .insert_idempotent(message(1), key(1, 24))
                .await
                .expect("enqueue");
            queue
                .insert_idempotent(message(2), key(2, 1))
                .await
                .expect("enqueue");
            let trees = &queue.shared.trees;
            // What version 3 wrote beside each key: `expires_at ms | key hash`.
            for n in [1u8, 2] {
                trees
                    .legacy_idem_expiry
                    .insert([n; 40], &[][..])
                    .expect("insert");
            }
            trees
                .meta
                .insert(keys::META_VERSION, &[3u8][..])
                .expect("v3");
            kept
        };
        let db = SledDb::open(dir.path(), Durability::None).expect("reopen");
        let queue = SledQueue::open(&db).expect("queue");
        assert!(queue.shared.trees.legacy_idem_expiry.is_empty());
        assert_eq!(queue.shared.trees.keys.lock().len(), 2, "both keys counted");
        let replay = queue
            .insert_idempotent(message(3), key(1, 24))
            .await
            .expect("replay");
        assert_eq!(
            replay,
            Enqueued::Existing {
                id: kept.id(),
                same_body: true
            }
        );
        let later = now + chrono::Duration::hours(2);
        assert_eq!(queue.purge_expired_keys(later).await.expect("purge"), 1);
        assert_eq!(queue.shared.trees.keys.lock().len(), 1, "key 2 forgotten");
        let again = |now| IdemKey { now, ..key(2, 48) };
        let fresh = queue
            .insert_idempotent(message(4), again(later))
            .await
            .expect("fresh");
        assert!(matches!(fresh, Enqueued::Created(_)));
        let replay = queue
            .insert_idempotent(message(5), again(later))
            .await
            .expect("replay");
        assert_eq!(
            replay,
            Enqueued::Existing {
                id: fresh.id(),
                same_body: true
            }
        );
        assert_eq!(queue.shared.counts.lock().get(&State::Pending), Some(&3));
    }

    /// The live ids follow every state change and are rebuilt at open: the oldest-pending age names the
    /// oldest message not finished, the unfiltered Pending listing pages through them, and after a
    /// reopen both still hold.
    #[test]
    fn live_ids_follow_changes_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first_pending;
        {
            let db = SledDb::open(dir.path(), Durability::None).expect("open");
            let queue = SledQueue::open(&db).expect("queue");
            let trees = &queue.shared.trees;
            fill(trees, 6, 0);
            // `fill` writes through the trees alone; counting rebuilds the live ids as at open.
            let (counts, _) = trees.count_states().expect("count");
            assert_eq!(counts.get(&State::Pending), Some(&6));
            // Deliver the two oldest: the oldest live one is then the third.
            let all: Vec<MessageId> = trees.live.lock().iter().copied().collect();
            for id in &all[..2] {
                let m = trees.get(*id).expect("get").expect("stored");
                let now = m.next_attempt_at;
                let mut claimed = Vec::new();
                while !claimed.iter().any(|c: &Message| c.id == *id) {
                    let claim = Claim {
                        kind: m.destination.kind(),
                        lane: m.lane,
                        max: 1,
                        now: now + chrono::Duration::seconds(1),
                        lease_until: now + chrono::Duration::seconds(30),
                    };
                    let (got, changes) = trees.claim(&claim).expect("claim");
                    apply(&queue.shared.counts, &trees.live, &changes);
                    claimed.extend(got);
                }
                for c in claimed {
                    let token = c.lease_token.expect("token");
                    let (_, changes) = trees
                        .resolve(c.id, token, &delivered_at(now))
                        .expect("resolve");
                    apply(&queue.shared.counts, &trees.live, &changes);
                }
            }
            let live: Vec<MessageId> = trees.live.lock().iter().copied().collect();
            assert_eq!(live.len(), 4, "six queued, two delivered");
            first_pending = live[0];
            let oldest = trees.oldest_live().expect("oldest").expect("some");
            let expected = trees
                .get(first_pending)
                .expect("get")
                .expect("m")
                .created_at;
            assert_eq!(oldest, expected);
        }
        let db = SledDb::open(dir.path(), Durability::None).expect("reopen");
        let queue = SledQueue::open(&db).expect("queue");
        let trees = &queue.shared.trees;
        let filter = |after| ListFilter {
            state: Some(State::Pending),
            after,
            limit: 3,
            ..ListFilter::default()
        };
        let page1 = trees.list(&filter(None)).expect("list");
        let page2 = trees
            .list(&filter(page1.last().map(|m| m.id)))
            .expect("list");
        let listed: Vec<MessageId> = page1.iter().chain(&page2).map(|m| m.id).collect();
        assert_eq!(listed.len(), 4);
        assert_eq!(listed[0], first_pending);
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "in id order");
        assert!(
            page1
                .iter()
                .chain(&page2)
                .all(|m| m.state == State::Pending)
        );
        let oldest = trees.oldest_live().expect("oldest").expect("some");
        assert_eq!(oldest, page1[0].created_at);
    }

    /// Startup counts states from live index entries and the terminal counters, not from history: with
    /// 40 delivered messages and 3 pending, opening reads 3 `due` keys and 1 counter.
    #[test]
    fn opening_reads_only_live_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = SledDb::open(dir.path(), Durability::None).expect("open");
            let queue = SledQueue::open(&db).expect("queue");
            fill(&queue.shared.trees, 43, 40);
        }
        let db = SledDb::open(dir.path(), Durability::None).expect("reopen");
        let queue = SledQueue::open(&db).expect("queue");
        let counts = queue.shared.counts.lock().clone();
        assert_eq!(counts.get(&State::Pending), Some(&3));
        assert_eq!(counts.get(&State::Delivered), Some(&40));
        assert_eq!(queue.open_reads(), 3 + 1, "entries read to count at open");
    }
}
