//! The seam between the outbox's rules and where messages are kept: the [`Queue`] trait, and the pure
//! transitions every implementation applies so that they all share one state machine.
//!
//! The outbox ([`super::Outbox`]) decides *what* happens to a message — retry delays, dead letters,
//! lease lengths, idempotency TTLs — and a [`Queue`] makes it happen atomically and durably. Every
//! write returns only once it would survive a crash: an embedded implementation group-commits inside
//! the call, a database implementation commits its transaction. Callers never flush.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::OutboxError;
use super::types::{
    Attempt, Counts, DestinationKind, Enqueued, Lane, LastError, LeaseToken, ListFilter, Message,
    MessageId, State,
};

/// Where messages are kept. Object-safe: the outbox holds an `Arc<dyn Queue>`.
///
/// Contract (checked for every implementation by the contract suite, `tests/it/outbox_contract*`):
/// - every `async fn` that writes returns `Ok` only once the write is durable;
/// - each call is atomic: a message, its attempt log entry, its indexes and its idempotency key
///   change together or not at all;
/// - [`Queue::resolve`] is fenced: it applies only while the message is InFlight under the given
///   token, otherwise it fails with [`OutboxError::LeaseLost`] and changes nothing;
/// - [`Queue::claim`] never hands one message to two callers under live leases (a database
///   implementation uses `FOR UPDATE SKIP LOCKED` or equivalent).
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Adds a new Pending message (built by [`fresh`](super::queue)).
    async fn insert(&self, message: Message) -> Result<(), OutboxError>;

    /// Adds `message` unless `key.hash` is held by a record that has not expired by `key.now`; then
    /// answers with that record's id and whether the body hash matches. Check and insert are one atomic
    /// step, so concurrent calls with one key create one message. An expired record is replaced.
    async fn insert_idempotent(
        &self,
        message: Message,
        key: IdemKey,
    ) -> Result<Enqueued, OutboxError>;

    /// First makes Pending (due `claim.now`, see [`released`]) every InFlight message whose lease
    /// ended by `claim.now`, then claims up to `claim.max` Pending messages of `(kind, lane)` due by
    /// `claim.now`, applying [`claimed`] to each with a fresh token.
    ///
    /// Fair between tenants: the claim is [`round_robin`] over the tenants that have messages due,
    /// each tenant's earliest due first, so one bank's backlog of a million never holds back another
    /// bank's one request for longer than one claim. The cost is one index seek per tenant with work
    /// due (banks are tens), not proportional to the backlog.
    async fn claim(&self, claim: Claim) -> Result<Vec<Message>, OutboxError>;

    /// Applies `resolution` (see [`Resolution::apply`]) if the message is InFlight under `token`;
    /// otherwise [`OutboxError::LeaseLost`] (or `NotFound`) and nothing changes. Appends the attempt,
    /// numbered by the new attempt count, when the resolution carries one.
    async fn resolve(
        &self,
        id: MessageId,
        token: LeaseToken,
        resolution: Resolution,
    ) -> Result<Message, OutboxError>;

    /// Several [`Queue::resolve`]s in one durable step (the pusher records a whole batch's attempts at
    /// once). Each entry is fenced and atomic on its own and gets its own result — a lost lease fails
    /// only that entry — while `Err` means none was applied. The default resolves one by one; the
    /// embedded store overrides it with one transaction and one group commit.
    async fn resolve_many(
        &self,
        items: Vec<(MessageId, LeaseToken, Resolution)>,
    ) -> Result<Resolved, OutboxError> {
        let mut out = Vec::with_capacity(items.len());
        for (id, token, resolution) in items {
            match self.resolve(id, token, resolution).await {
                Err(error @ (OutboxError::LeaseLost(_) | OutboxError::NotFound(_))) => {
                    out.push(Err(error))
                }
                Err(error) => return Err(error),
                Ok(m) => out.push(Ok(m)),
            }
        }
        Ok(out)
    }

    /// An admin move (see [`AdminMove::apply`]), atomic with the state check.
    async fn admin_move(&self, id: MessageId, mv: AdminMove) -> Result<Message, OutboxError>;

    /// Makes every InFlight message Pending, due `now` ([`released`]); returns how many. Only an
    /// embedded store, which one process owns, calls this at open: a shared database must wait for
    /// leases to expire instead, because other daemons may hold them.
    async fn release_all(&self, now: DateTime<Utc>) -> Result<usize, OutboxError>;

    async fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError>;

    /// A page in id (creation) order after `filter.after`, at most `filter.limit` messages.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError>;

    /// The attempt log of a message, oldest first.
    async fn attempts(&self, id: MessageId) -> Result<Vec<Attempt>, OutboxError>;

    /// Messages per state. Must not cost time proportional to history.
    async fn counts(&self) -> Result<Counts, OutboxError>;

    /// `created_at` of the oldest Pending or InFlight message.
    async fn oldest_live(&self) -> Result<Option<DateTime<Utc>>, OutboxError>;

    /// Forgets idempotency keys that expired by `now`; returns how many.
    async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<usize, OutboxError>;

    /// One batch of retention (see [`Retention`]): erases the payload ([`erased`]) of up to
    /// `retention.max` terminal messages completed by `erase_before`, then deletes up to
    /// `retention.max` terminal messages (with their attempt logs) completed by `purge_before`.
    /// Must cost time proportional to what it erases or deletes, not to the history kept.
    async fn retire(&self, retention: Retention) -> Result<Retired, OutboxError>;
}

/// Picks up to `max` items from per-tenant lists (each in its own order, earliest due first): the
/// first of every list, then the second of every list, and so on. Lists are visited in the order
/// given (backends give them by their earliest due item, so the longest-waiting tenant goes first in
/// every round). What one tenant leaves unused goes to the others.
pub fn round_robin<T>(lists: Vec<Vec<T>>, max: usize) -> Vec<T> {
    let mut iters: Vec<std::vec::IntoIter<T>> = lists.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(max.min(iters.iter().map(|i| i.len()).sum()));
    while out.len() < max && !iters.is_empty() {
        iters.retain(|i| i.len() > 0);
        for iter in &mut iters {
            if out.len() == max {
                break;
            }
            if let Some(item) = iter.next() {
                out.push(item);
            }
        }
    }
    out
}

/// [`round_robin`] over `items` given as `(tenant, due, item)`, each tenant's items in its own order
/// (earliest due first): grouped by tenant, tenants ordered by their earliest due item (then by
/// tenant, so equal times pick the same order on every backend).
pub fn fair_pick<K: Ord, D: Ord + Copy, T>(
    items: impl IntoIterator<Item = (K, D, T)>,
    max: usize,
) -> Vec<T> {
    let mut lists: Vec<(D, K, Vec<T>)> = Vec::new();
    for (tenant, due, item) in items {
        match lists.iter_mut().find(|(_, t, _)| *t == tenant) {
            Some((_, _, list)) => list.push(item),
            None => lists.push((due, tenant, vec![item])),
        }
    }
    lists.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    round_robin(lists.into_iter().map(|(_, _, list)| list).collect(), max)
}

/// One batch of the retention job, computed by the outbox from `[store] payload_retention_days` and
/// `history_retention_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Terminal messages completed at or before this lose their payload.
    pub erase_before: DateTime<Utc>,
    /// Terminal messages completed at or before this are deleted; `None` keeps history forever.
    pub purge_before: Option<DateTime<Utc>>,
    /// At most this many erasures and this many deletions in one call.
    pub max: usize,
    /// Recorded as `payload_erased_at`.
    pub now: DateTime<Utc>,
    /// Payload fields an erasure keeps (see [`erased`]).
    pub keep: std::sync::Arc<[String]>,
}

/// What one [`Queue::retire`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retired {
    /// Payloads erased.
    pub erased: usize,
    /// Messages deleted with their attempt logs.
    pub purged: usize,
}

/// Whether retention applies to `m` at all: terminal, with a completion time.
pub fn retirable(m: &Message) -> Option<DateTime<Utc>> {
    m.completed_at.filter(|_| m.state.is_terminal())
}

/// A terminal message whose payload retention erased at `now`: of the payload only the top-level
/// fields named in `keep` stay (the references the status document shows: the request key, the bank's
/// reference — never personal data), or `Null` when none does; everything else about the message (the
/// history) stays.
pub fn erased(old: &Message, now: DateTime<Utc>, keep: &[String]) -> Message {
    let mut new = old.clone();
    new.payload = match &old.payload {
        serde_json::Value::Object(fields) => {
            let kept: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .filter(|(k, _)| keep.iter().any(|f| f == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if kept.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::Object(kept)
            }
        }
        _ => serde_json::Value::Null,
    };
    new.payload_erased_at = Some(now);
    new
}

/// An idempotency key as the queue sees it: a hash only (a bank's key may embed personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdemKey {
    /// SHA-256 of `tenant NUL key` ([`super::idempotency_hash`]).
    pub hash: [u8; 32],
    /// SHA-256 of the request body, to tell a replay from a reused key.
    pub body_hash: [u8; 32],
    pub expires_at: DateTime<Utc>,
    /// Records that expired by this time count as absent.
    pub now: DateTime<Utc>,
}

/// The outcome of each entry of a [`Queue::resolve_many`], in order.
pub type Resolved = Vec<Result<Message, OutboxError>>;

/// What a claim asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub kind: DestinationKind,
    pub lane: Lane,
    pub max: usize,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// How a claimed message moves on, computed by the outbox from the message it claimed (the fence
/// guarantees nothing else changed it meanwhile).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// Pending, Delivered, Failed or Dead.
    pub state: State,
    /// When Pending: the next due time.
    pub next_attempt_at: DateTime<Utc>,
    /// The attempt to count and log; `None` for a shutdown release.
    pub attempt: Option<Attempt>,
    /// Set on Delivered.
    pub remote_id: Option<String>,
    pub now: DateTime<Utc>,
}

impl Resolution {
    /// The message after the resolution. Backends call this inside their atomic step.
    pub fn apply(&self, old: &Message) -> Message {
        let mut new = old.clone();
        new.updated_at = self.now;
        new.lease_until = None;
        new.lease_token = None;
        if let Some(attempt) = &self.attempt {
            new.attempts += 1;
            if let Some(class) = attempt.outcome.error_class() {
                new.last_error = Some(LastError {
                    class,
                    code: attempt.error_code.clone(),
                    message: attempt.message.clone(),
                    http_status: attempt.http_status,
                });
            }
        }
        new.state = self.state;
        if self.state == State::Pending {
            new.next_attempt_at = self.next_attempt_at;
        } else {
            new.completed_at = Some(self.now);
        }
        if self.state == State::Delivered {
            new.remote_id.clone_from(&self.remote_id);
        }
        new
    }
}

/// An admin action on a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminMove {
    /// Failed or Dead → Pending, due now.
    Retry { now: DateTime<Utc> },
    /// Pending, Failed or Dead → Discarded.
    Discard { now: DateTime<Utc> },
}

impl AdminMove {
    /// The message after the move, or the state error to report. Backends call this inside their
    /// atomic step.
    pub fn apply(&self, old: &Message) -> Result<Message, OutboxError> {
        let (operation, expected, from, to, now): (_, _, &[State], _, _) = match *self {
            AdminMove::Retry { now } => (
                "retry",
                "failed or dead",
                &[State::Failed, State::Dead],
                State::Pending,
                now,
            ),
            AdminMove::Discard { now } => (
                "discard",
                "pending, failed or dead",
                &[State::Pending, State::Failed, State::Dead],
                State::Discarded,
                now,
            ),
        };
        if to == State::Pending && old.payload_erased_at.is_some() {
            return Err(OutboxError::PayloadErased(old.id));
        }
        if !from.contains(&old.state) {
            return Err(OutboxError::WrongState {
                id: old.id,
                operation,
                expected,
                actual: old.state,
            });
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
        Ok(new)
    }
}

/// A Pending message claimed under `token` until `lease_until`.
pub fn claimed(
    old: &Message,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    token: LeaseToken,
) -> Message {
    let mut new = old.clone();
    new.state = State::InFlight;
    new.lease_until = Some(lease_until);
    new.lease_token = Some(token);
    new.updated_at = now;
    new
}

/// An InFlight message whose lease is given up (expired, or recovered at open): Pending, due `now`,
/// attempts unchanged.
pub fn released(old: &Message, now: DateTime<Utc>) -> Message {
    let mut new = old.clone();
    new.state = State::Pending;
    new.lease_until = None;
    new.lease_token = None;
    new.next_attempt_at = now;
    new.updated_at = now;
    new
}

/// Whether a message matches a list filter's state and lane (tenant and cursor are the backend's).
pub fn list_keeps(filter: &ListFilter, m: &Message) -> bool {
    filter.state.is_none_or(|s| m.state == s)
        && filter.lane.is_none_or(|l| m.lane == l)
        && filter.tenant.as_deref().is_none_or(|t| m.tenant == t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_pick_leads_with_the_longest_waiting_tenant() {
        let items = [
            ("b", 5, "b1"),
            ("a", 1, "a1"),
            ("b", 6, "b2"),
            ("c", 5, "c1"),
            ("a", 9, "a2"),
        ];
        assert_eq!(fair_pick(items, 4), ["a1", "b1", "c1", "a2"]);
    }

    #[test]
    fn round_robin_takes_one_of_each_tenant_per_round() {
        let lists = vec![vec!["a1", "a2", "a3", "a4"], vec!["b1"], vec!["c1", "c2"]];
        assert_eq!(
            round_robin(lists.clone(), 6),
            ["a1", "b1", "c1", "a2", "c2", "a3"]
        );
        assert_eq!(round_robin(lists.clone(), 2), ["a1", "b1"]);
        assert_eq!(round_robin(lists, 100).len(), 7);
        assert!(round_robin(Vec::<Vec<u8>>::new(), 5).is_empty());
    }

    #[test]
    fn erasure_keeps_only_the_named_reference_fields() {
        let now = Utc::now();
        let m = crate::outbox::test_email(
            serde_json::json!({ "Ref__c": "R-1", "National_Id__c": "850101-1234" }),
            now,
        );
        let kept = erased(&m, now, &["Ref__c".to_owned()]);
        assert_eq!(kept.payload, serde_json::json!({ "Ref__c": "R-1" }));
        assert_eq!(kept.payload_erased_at, Some(now));
        assert_eq!(erased(&m, now, &[]).payload, serde_json::Value::Null);
    }
}
