//! Key encodings for the outbox trees. Every integer is big-endian so byte order is value order,
//! and every key that sorts by time puts the time before the id.

use crate::outbox::{DestinationKind, Lane, MessageId, State};
use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the epoch, clamped at 0 so it fits an unsigned, order-preserving key.
pub(crate) fn millis(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

pub(crate) fn from_millis(ms: u64) -> DateTime<Utc> {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `messages` and `payloads`: the id alone.
pub(crate) fn message(id: MessageId) -> [u8; 16] {
    id.to_bytes()
}

/// `due`: `kind | lane | len(tenant) u16 | tenant | next_attempt_at ms | id` — one run of keys per
/// tenant, earliest due first, so a claim seeks from tenant to tenant ([`tenant_after`]) and takes
/// each one's due messages with a range scan up to "now" ([`due_until`]): fair between banks
/// without reading any backlog. (Version 1 stores had no tenant here; `ensure_meta` rebuilds them.)
pub(crate) fn due(
    kind: DestinationKind,
    lane: Lane,
    tenant: &str,
    at: DateTime<Utc>,
    id: MessageId,
) -> Vec<u8> {
    let mut k = due_tenant(kind, lane, tenant);
    k.extend_from_slice(&millis(at).to_be_bytes());
    k.extend_from_slice(&id.to_bytes());
    k
}

/// The prefix of one tenant's due keys in `(kind, lane)`.
pub(crate) fn due_tenant(kind: DestinationKind, lane: Lane, tenant: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + 2 + tenant.len() + 24);
    k.extend_from_slice(&due_prefix(kind, lane));
    k.extend_from_slice(&tenant_prefix(tenant));
    k
}

/// The inclusive upper bound of one tenant's due keys (`tenant_key` from [`due_tenant`]) due at `now`.
pub(crate) fn due_until(tenant_key: &[u8], now: DateTime<Utc>) -> Vec<u8> {
    let mut k = tenant_key.to_vec();
    k.extend_from_slice(&millis(now).to_be_bytes());
    k.extend_from_slice(&[0xff; 16]);
    k
}

/// Splits a due key into its tenant prefix (as [`due_tenant`] builds it) and its due time.
pub(crate) fn split_due(key: &[u8]) -> Option<(&[u8], u64)> {
    let len = usize::from(u16::from_be_bytes(key.get(2..4)?.try_into().ok()?));
    let tenant_end = 4 + len;
    let at = u64::from_be_bytes(key.get(tenant_end..tenant_end + 8)?.try_into().ok()?);
    Some((&key[..tenant_end], at))
}

/// The smallest key after every due key of the tenant whose prefix is `tenant_key`.
pub(crate) fn tenant_after(tenant_key: &[u8]) -> Vec<u8> {
    let mut k = tenant_key.to_vec();
    k.extend_from_slice(&[0xff; 24]);
    k.push(0);
    k
}

pub(crate) fn due_prefix(kind: DestinationKind, lane: Lane) -> [u8; 2] {
    [kind.tag(), lane.tag()]
}

/// `leases`: `lease_until ms | id` — expired leases are a range scan up to "now".
pub(crate) fn lease(until: DateTime<Utc>, id: MessageId) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&millis(until).to_be_bytes());
    k[8..].copy_from_slice(&id.to_bytes());
    k
}

pub(crate) fn lease_until(now: DateTime<Utc>) -> [u8; 24] {
    let mut k = [0xffu8; 24];
    k[..8].copy_from_slice(&millis(now).to_be_bytes());
    k
}

/// The id at the end of a `due` or `leases` key.
pub(crate) fn trailing_id(key: &[u8]) -> Option<MessageId> {
    let start = key.len().checked_sub(16)?;
    let bytes: [u8; 16] = key[start..].try_into().ok()?;
    Some(MessageId::from_bytes(bytes))
}

/// `attempts`: `id | attempt number` — one message's log is a prefix scan, in order.
pub(crate) fn attempt(id: MessageId, number: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&id.to_bytes());
    k[16..].copy_from_slice(&number.to_be_bytes());
    k
}

/// `by_tenant`: `len(tenant) u16 | tenant | id`. The length prefix keeps one tenant's prefix from
/// matching another tenant whose id starts with it.
pub(crate) fn tenant_prefix(tenant: &str) -> Vec<u8> {
    let len = u16::try_from(tenant.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(2 + tenant.len() + 16);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(tenant.as_bytes());
    k
}

pub(crate) fn tenant(tenant: &str, id: MessageId) -> Vec<u8> {
    let mut k = tenant_prefix(tenant);
    k.extend_from_slice(&id.to_bytes());
    k
}

/// `meta` keys, each under a one-byte prefix:
/// - `c | state` → the number of messages in a terminal state (i64, big-endian);
/// - `s | state | id` → empty, for dead letters (Failed, Dead, Discarded): listing them reads only them;
/// - `r | erased | completed_at ms | id` → empty, for terminal messages: retention reads only what is due;
/// - `v` → the version of these indexes (absent in a store written before them: built once at open);
/// - `p` → the newest message id retention deleted (the high-water check accepts it as gone on purpose).
pub(crate) const META_COUNT: u8 = b'c';
pub(crate) const META_STATE: u8 = b's';
pub(crate) const META_RETIRE: u8 = b'r';
pub(crate) const META_VERSION: &[u8] = b"v";
pub(crate) const META_PURGED: &[u8] = b"p";

pub(crate) fn count(state: State) -> [u8; 2] {
    [META_COUNT, state.tag()]
}

pub(crate) fn by_state_prefix(state: State) -> [u8; 2] {
    [META_STATE, state.tag()]
}

pub(crate) fn by_state(state: State, id: MessageId) -> [u8; 18] {
    let mut k = [0u8; 18];
    k[..2].copy_from_slice(&by_state_prefix(state));
    k[2..].copy_from_slice(&id.to_bytes());
    k
}

pub(crate) fn retire(erased: bool, completed: DateTime<Utc>, id: MessageId) -> [u8; 26] {
    let mut k = [0u8; 26];
    k[0] = META_RETIRE;
    k[1] = u8::from(erased);
    k[2..10].copy_from_slice(&millis(completed).to_be_bytes());
    k[10..].copy_from_slice(&id.to_bytes());
    k
}

/// The inclusive bounds of `retire` keys of one phase completed by `until`.
pub(crate) fn retire_range(erased: bool, until: DateTime<Utc>) -> ([u8; 2], [u8; 26]) {
    let mut hi = [0xffu8; 26];
    hi[0] = META_RETIRE;
    hi[1] = u8::from(erased);
    hi[2..10].copy_from_slice(&millis(until).to_be_bytes());
    ([META_RETIRE, u8::from(erased)], hi)
}

/// Dead letters get a `by_state` entry; Pending and InFlight are listed from the live ids in memory,
/// Delivered (most of history) from `messages`.
pub(crate) fn indexed_by_state(state: State) -> bool {
    matches!(state, State::Failed | State::Dead | State::Discarded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_tenant_then_time_within_a_lane() {
        let a = MessageId::new();
        let b = MessageId::new();
        let t0 = from_millis(1_000);
        let t1 = from_millis(2_000);
        let k = DestinationKind::Salesforce;
        let bank = due_tenant(k, Lane::Interactive, "001A");
        assert!(
            due(k, Lane::Interactive, "001A", t0, b) < due(k, Lane::Interactive, "001A", t1, a)
        );
        assert!(due(k, Lane::Interactive, "001A", t1, b) <= due_until(&bank, t1));
        assert!(due(k, Lane::Interactive, "001A", t1, b) < tenant_after(&bank));
        assert!(due(k, Lane::Interactive, "001B", t0, b) > tenant_after(&bank));
        assert!(due(k, Lane::Interactive, "001AA", t0, b) > tenant_after(&bank));
        assert!(due(k, Lane::Bulk, "001A", t0, a) > due_until(&bank, t1));
        let key = due(k, Lane::Bulk, "001A", t1, a);
        assert_eq!(trailing_id(&key), Some(a));
        assert_eq!(
            split_due(&key),
            Some((&due_tenant(k, Lane::Bulk, "001A")[..], 2_000))
        );
    }

    #[test]
    fn tenant_prefixes_do_not_overlap() {
        let id = MessageId::new();
        assert!(!tenant("ab", id).starts_with(&tenant_prefix("a")));
    }
}
