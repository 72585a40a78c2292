//! One object's records and the indexes that keep look-ups off full scans.
//!
//! A real bureau's org holds millions of records, and the daemon's hot paths (upsert by External ID, unique
//! checks on every write, the reconciliation poller's `SystemModstamp` range) must not cost a scan of them:
//! - records by `Id` (a `BTreeMap`: ids are generated in sequence, so its order is creation order, the order a
//!   query without `ORDER BY` returns);
//! - every unique or External ID text field by its lowercased value (Salesforce matches them
//!   case-insensitively), live records only, because deleted ones neither collide nor match an upsert;
//! - `CreatedDate`, `LastModifiedDate` and `SystemModstamp` ordered by value, live records only (what `query`
//!   reads; `queryAll` scans). Stored datetimes are all `…+0000` with milliseconds, so their text order is
//!   their time order; a value in another form is left out of the index and the query planner does not use
//!   the index for that object (see [`Table::ordered_complete`]).
//!
//! Every change goes through [`Table::put`], which removes the old version's index entries before adding the
//! new one's, so the indexes can never disagree with the records.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use serde_json::Value;

use super::org::Record;

/// The datetime fields with an ordered index.
pub const ORDERED_FIELDS: [&str; 3] = ["CreatedDate", "LastModifiedDate", "SystemModstamp"];

/// An id as the indexes hold it: inline, without an allocation, up to 22 bytes (every Salesforce id is 18),
/// on the heap beyond. Ordered and compared as its bytes, the order of its text, so an index orders ids as
/// the text would.
#[derive(Clone)]
pub enum IdKey {
    Inline { len: u8, bytes: [u8; 22] },
    Heap(Box<str>),
}

impl IdKey {
    pub fn new(id: &str) -> IdKey {
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= 22 => {
                let mut bytes = [0; 22];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                IdKey::Inline { len, bytes }
            }
            _ => IdKey::Heap(id.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // The bytes are a copy of a `&str`'s, cut at its length: valid UTF-8.
            IdKey::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            IdKey::Heap(s) => s,
        }
    }

    /// The id's bytes, without the UTF-8 check of [`IdKey::as_str`]: what comparisons read (byte order is
    /// the text's order), so an index insert does not validate both ids at every step of its search.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            IdKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            IdKey::Heap(s) => s.as_bytes(),
        }
    }
}

impl std::ops::Deref for IdKey {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &IdKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for IdKey {}

impl PartialOrd for IdKey {
    fn partial_cmp(&self, other: &IdKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdKey {
    fn cmp(&self, other: &IdKey) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// An entry of an ordered index: `(stamp, id)`, the stamp being the stored datetime text's digits read as one
/// decimal number (`2024-05-20T20:49:32.000+0000` → `20240520204932000`): the same order as the text, kept
/// inline (no string to allocate, follow or compare per entry).
pub type StampKey = (u64, IdKey);
type Ordered = BTreeSet<StampKey>;

/// The ordered-index value of a canonical stamp (see [`canonical_stamp`]); `None` for any other text.
pub fn stamp_value(s: &str) -> Option<u64> {
    if !canonical_stamp(s) {
        return None;
    }
    // 17 digits (YYYYMMDDhhmmssmmm) fit in a u64; fixed width, so numeric order is the text's order.
    Some(
        s.bytes()
            .take(23)
            .filter(u8::is_ascii_digit)
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

/// The index bound for "value `>=` / `>` `stamp`" (datetime text in the stored form).
pub fn lower_bound(stamp: Bound<&str>) -> Bound<StampKey> {
    // `(value, id)` pairs: an excluded value skips every id of it, hence the id above every id.
    match stamp {
        Bound::Included(v) => Bound::Included((bound_value(v), IdKey::new(""))),
        Bound::Excluded(v) => Bound::Excluded((bound_value(v), IdKey::new(MAX_ID))),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The index bound for "value `<=` / `<` `stamp`".
pub fn upper_bound(stamp: Bound<&str>) -> Bound<StampKey> {
    match stamp {
        Bound::Included(v) => Bound::Included((bound_value(v), IdKey::new(MAX_ID))),
        Bound::Excluded(v) => Bound::Excluded((bound_value(v), IdKey::new(""))),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Above every id (ids are ASCII).
const MAX_ID: &str = "\u{10FFFF}";

/// A bound's value: bounds are written by `sf_datetime`, in the stored form; any other text (a year beyond
/// 9999 is written longer) is past every stored value.
fn bound_value(v: &str) -> u64 {
    stamp_value(v).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    records: BTreeMap<String, Record>,
    idx: Indexes,
}

/// A table's indexes, apart from its records so a write can keep its place in the records while it updates
/// them (one search of the records per write, not a removal and an insertion).
#[derive(Debug, Clone, Default)]
struct Indexes {
    /// Unique / External ID field → lowercased value → ids of the live records holding it.
    unique: HashMap<String, HashMap<String, Holders>>,
    /// One per entry of [`ORDERED_FIELDS`], same order.
    ordered: [Ordered; 3],
    /// Records whose ordered-field value could not be indexed (not in the canonical form).
    unordered: usize,
}

impl Table {
    /// An empty table indexing `unique_fields` (canonical names).
    pub fn new(unique_fields: impl IntoIterator<Item = String>) -> Table {
        Table {
            idx: Indexes {
                unique: unique_fields
                    .into_iter()
                    .map(|f| (f, HashMap::new()))
                    .collect(),
                ..Indexes::default()
            },
            ..Table::default()
        }
    }

    pub fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }

    /// The record `id` with the table's own copy of its id (borrowed as long as the table).
    pub fn entry(&self, id: &str) -> Option<(&str, &Record)> {
        self.records
            .get_key_value(id)
            .map(|(id, r)| (id.as_str(), r))
    }

    /// Every record, deleted ones included, in id (creation) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &Record)> {
        self.records.iter()
    }

    /// The records as stored, for snapshots.
    pub fn records(&self) -> &BTreeMap<String, Record> {
        &self.records
    }

    /// Insert or replace the record `id`, keeping every index in step.
    pub fn put(&mut self, id: String, record: Record) {
        match self.records.entry(id) {
            Entry::Occupied(mut slot) => {
                self.idx.unindex(slot.key(), slot.get());
                self.idx.index(slot.key(), &record);
                slot.insert(record);
            }
            Entry::Vacant(slot) => {
                self.idx.index(slot.key(), &record);
                slot.insert(record);
            }
        }
    }

    /// Whether `field` has a unique-value index.
    pub fn is_unique_indexed(&self, field: &str) -> bool {
        self.idx.unique.contains_key(field)
    }

    /// Ids of the live records whose indexed `field` may equal `value` case-insensitively (the same lowercased
    /// value; callers compare exactly); `None` when `field` has no index.
    pub fn find_unique(&self, field: &str, value: &str) -> Option<Vec<&str>> {
        let index = self.idx.unique.get(field)?;
        Some(
            index
                .get(normalize(value).as_ref())
                .map(|ids| ids.iter().map(IdKey::as_str).collect())
                .unwrap_or_default(),
        )
    }

    /// Whether every record is in the ordered indexes, so a range read from them misses nothing.
    pub fn ordered_complete(&self) -> bool {
        self.idx.unordered == 0
    }

    /// Entries `(datetime text, id)` of the ordered index of `field` within the bounds, in value order then id
    /// order; `None` when `field` has no ordered index. Build bounds with [`lower_bound`] and [`upper_bound`],
    /// or resume after an entry with `Bound::Excluded(entry)`.
    pub fn range(
        &self,
        field: &str,
        lower: Bound<StampKey>,
        upper: Bound<StampKey>,
    ) -> Option<impl Iterator<Item = &StampKey>> {
        let slot = ORDERED_FIELDS.iter().position(|f| *f == field)?;
        // An empty interval (lower above upper) is answered empty; `BTreeSet::range` would panic on it.
        let empty = matches!((&lower, &upper),
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) if a > b);
        let upper = if empty { Bound::Unbounded } else { upper };
        Some(
            self.idx.ordered[slot]
                .range((lower, upper))
                .take(if empty { 0 } else { usize::MAX }),
        )
    }

    /// How many entries of the ordered index of `field` lie within the bounds, in O(min(inside, outside))
    /// steps: the entries inside and those outside are counted side by side and the first count to finish
    /// gives the answer (a poller's recent range is small; "everything since the epoch" has nothing outside).
    pub fn count_range(
        &self,
        field: &str,
        lower: Bound<StampKey>,
        upper: Bound<StampKey>,
    ) -> Option<usize> {
        let slot = ORDERED_FIELDS.iter().position(|f| *f == field)?;
        let set = &self.idx.ordered[slot];
        let mut inside = self.range(field, lower.clone(), upper.clone())?;
        let below = match lower {
            Bound::Included(k) => Some((Bound::Unbounded, Bound::Excluded(k))),
            Bound::Excluded(k) => Some((Bound::Unbounded, Bound::Included(k))),
            Bound::Unbounded => None,
        };
        let above = match upper {
            Bound::Included(k) => Some((Bound::Excluded(k), Bound::Unbounded)),
            Bound::Excluded(k) => Some((Bound::Included(k), Bound::Unbounded)),
            Bound::Unbounded => None,
        };
        let mut outside = below
            .into_iter()
            .flat_map(|r| set.range::<StampKey, _>(r))
            .chain(above.into_iter().flat_map(|r| set.range::<StampKey, _>(r)));
        let (mut n_in, mut n_out) = (0, 0);
        loop {
            if inside.next().is_none() {
                return Some(n_in);
            }
            n_in += 1;
            if outside.next().is_none() {
                return Some(set.len().saturating_sub(n_out));
            }
            n_out += 1;
        }
    }
}

impl Indexes {
    fn index(&mut self, id: &str, record: &Record) {
        let live = record.get("IsDeleted") != Some(&Value::Bool(true));
        for (field, index) in &mut self.unique {
            if let (true, Some(value)) = (live, record.get(field).and_then(Value::as_str)) {
                // One hash: the value is nearly always new to the index (a created record's key).
                index
                    .entry(normalize(value).into_owned())
                    .and_modify(|ids| ids.insert(id))
                    .or_insert_with(|| Holders::One(IdKey::new(id)));
            }
        }
        for (slot, field) in ORDERED_FIELDS.iter().enumerate() {
            match record.get(*field) {
                _ if !live => {}
                // `stamp_value` checks the canonical form: anything else is counted as not indexed.
                Some(Value::String(stamp)) if let Some(v) = stamp_value(stamp) => {
                    self.ordered[slot].insert((v, IdKey::new(id)));
                }
                None | Some(Value::Null) => {}
                Some(_) => self.unordered += 1,
            }
        }
    }

    fn unindex(&mut self, id: &str, record: &Record) {
        let live = record.get("IsDeleted") != Some(&Value::Bool(true));
        for (field, index) in &mut self.unique {
            if let Some(value) = record.get(field).and_then(Value::as_str) {
                let key = normalize(value);
                if let Some(ids) = index.get_mut(key.as_ref())
                    && ids.remove(id)
                {
                    index.remove(key.as_ref());
                }
            }
        }
        for (slot, field) in ORDERED_FIELDS.iter().enumerate() {
            match record.get(*field) {
                _ if !live => {}
                Some(Value::String(stamp)) if let Some(v) = stamp_value(stamp) => {
                    self.ordered[slot].remove(&(v, IdKey::new(id)));
                }
                None | Some(Value::Null) => {}
                Some(_) => self.unordered -= 1,
            }
        }
    }
}

/// The ids of the live records holding one unique-index value, in id order: nearly always one, held inline.
#[derive(Debug, Clone)]
enum Holders {
    One(IdKey),
    /// Two or more, sorted, no repeats.
    Many(Vec<IdKey>),
}

impl Holders {
    fn iter(&self) -> std::slice::Iter<'_, IdKey> {
        match self {
            Holders::One(id) => std::slice::from_ref(id).iter(),
            Holders::Many(ids) => ids.iter(),
        }
    }

    fn insert(&mut self, id: &str) {
        let key = IdKey::new(id);
        match self {
            Holders::One(one) if *one == key => {}
            Holders::One(one) => {
                let mut ids = vec![one.clone(), key];
                ids.sort();
                *self = Holders::Many(ids);
            }
            Holders::Many(ids) => {
                if let Err(at) = ids.binary_search(&key) {
                    ids.insert(at, key);
                }
            }
        }
    }

    /// Remove `id`; whether none are left.
    fn remove(&mut self, id: &str) -> bool {
        let Holders::Many(ids) = self else {
            return matches!(self, Holders::One(one) if one.as_bytes() == id.as_bytes());
        };
        ids.retain(|i| i.as_bytes() != id.as_bytes());
        if ids.len() == 1
            && let Some(one) = ids.pop()
        {
            *self = Holders::One(one);
        }
        matches!(self, Holders::Many(ids) if ids.is_empty())
    }
}

/// The unique-index key of a value: Unicode lowercase, so values equal ignoring case (ASCII or not) share it.
/// Borrowed when the value is already lowercase ASCII (most keys), so a look-up allocates nothing.
fn normalize(value: &str) -> Cow<'_, str> {
    if value
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.to_lowercase())
    }
}

/// `2024-05-20T20:49:32.000+0000`: the form the org writes, whose text order is time order.
pub fn canonical_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 28
        && s.ends_with("+0000")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23..) || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rec(key: &str, stamp: &str, deleted: bool) -> Record {
        json!({"Key__c": key, "SystemModstamp": stamp, "CreatedDate": stamp, "LastModifiedDate": stamp,
               "IsDeleted": deleted})
        .as_object()
        .cloned()
        .unwrap()
    }

    const T1: &str = "2024-01-01T00:00:00.000+0000";
    const T2: &str = "2024-01-02T00:00:00.000+0000";

    #[test]
    fn unique_index_follows_updates_and_deletes() {
        let mut t = Table::new(["Key__c".to_string()]);
        t.put("a".into(), rec("K-1", T1, false));
        assert_eq!(t.find_unique("Key__c", "k-1"), Some(vec!["a"]));
        t.put("a".into(), rec("K-2", T1, false));
        assert_eq!(t.find_unique("Key__c", "K-1"), Some(vec![]));
        assert_eq!(t.find_unique("Key__c", "K-2"), Some(vec!["a"]));
        t.put("a".into(), rec("K-2", T1, true));
        assert_eq!(t.find_unique("Key__c", "K-2"), Some(vec![]));
        assert_eq!(t.find_unique("Other__c", "x"), None);
    }

    #[test]
    fn unique_index_holds_several_ids_of_one_value_in_id_order() {
        let mut t = Table::new(["Key__c".to_string()]);
        for id in ["c", "a", "b"] {
            t.put(id.into(), rec("K-1", T1, false));
        }
        assert_eq!(t.find_unique("Key__c", "K-1"), Some(vec!["a", "b", "c"]));
        t.put("b".into(), rec("K-2", T1, false));
        assert_eq!(t.find_unique("Key__c", "K-1"), Some(vec!["a", "c"]));
        t.put("a".into(), rec("K-2", T1, false));
        assert_eq!(t.find_unique("Key__c", "K-1"), Some(vec!["c"]));
        assert_eq!(t.find_unique("Key__c", "K-2"), Some(vec!["a", "b"]));
        t.put("c".into(), rec("K-1", T1, true));
        assert_eq!(t.find_unique("Key__c", "K-1"), Some(vec![]));
        let long = "x".repeat(40);
        t.put(long.clone(), rec("K-2", T1, false));
        assert_eq!(
            t.find_unique("Key__c", "K-2"),
            Some(vec!["a", "b", long.as_str()])
        );
        assert_eq!(stamp_value(T1), Some(20240101000000000));
        assert_eq!(stamp_value("2024-01-01T00:00:00Z"), None);
    }

    fn ids(t: &Table, field: &str, lower: Bound<&str>, upper: Bound<&str>) -> Vec<String> {
        t.range(field, lower_bound(lower), upper_bound(upper))
            .unwrap()
            .map(|(_, id)| id.to_string())
            .collect()
    }

    #[test]
    fn ordered_index_ranges_live_records_by_value_then_id() {
        let mut t = Table::new([]);
        t.put("b".into(), rec("", T1, false));
        t.put("a".into(), rec("", T2, false));
        t.put("d".into(), rec("", T1, false));
        t.put("c".into(), rec("", T1, true));
        let all = ids(&t, "SystemModstamp", Bound::Unbounded, Bound::Unbounded);
        assert_eq!(all, ["b", "d", "a"]);
        let after = ids(&t, "SystemModstamp", Bound::Excluded(T1), Bound::Unbounded);
        assert_eq!(after, ["a"]);
        let upto = ids(&t, "CreatedDate", Bound::Unbounded, Bound::Included(T1));
        assert_eq!(upto, ["b", "d"]);
        let before = ids(&t, "CreatedDate", Bound::Unbounded, Bound::Excluded(T2));
        assert_eq!(before, ["b", "d"]);
        assert!(ids(&t, "CreatedDate", Bound::Included(T2), Bound::Excluded(T1)).is_empty());
        for (lower, upper) in [
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Excluded(T1), Bound::Unbounded),
            (Bound::Included(T1), Bound::Excluded(T2)),
            (Bound::Unbounded, Bound::Included(T1)),
            (Bound::Included(T2), Bound::Excluded(T1)),
        ] {
            let counted = t.count_range("SystemModstamp", lower_bound(lower), upper_bound(upper));
            assert_eq!(counted, Some(ids(&t, "SystemModstamp", lower, upper).len()));
        }
        let resumed: Vec<&str> = t
            .range(
                "SystemModstamp",
                Bound::Excluded((stamp_value(T1).unwrap(), IdKey::new("b"))),
                Bound::Unbounded,
            )
            .unwrap()
            .map(|(_, id)| id.as_str())
            .collect();
        assert_eq!(resumed, ["d", "a"]);
        t.put("a".into(), rec("", T1, false));
        assert!(ids(&t, "SystemModstamp", Bound::Excluded(T1), Bound::Unbounded).is_empty());
        assert!(
            t.range("Name", Bound::Unbounded, Bound::Unbounded)
                .is_none()
        );
        assert!(t.ordered_complete());
    }

    #[test]
    fn a_stamp_in_another_form_marks_the_index_incomplete() {
        let mut t = Table::new([]);
        t.put("a".into(), rec("", "2024-01-01T00:00:00Z", false));
        assert!(!t.ordered_complete());
        t.put("a".into(), rec("", T1, false));
        assert!(t.ordered_complete());
        assert!(canonical_stamp(T1));
        assert!(!canonical_stamp("2024-01-01T00:00:00.000Z"));
    }
}
