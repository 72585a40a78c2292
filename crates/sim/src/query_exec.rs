//! Runs a parsed query against one object's [`Table`]: picks the records to read from the query's access
//! path and the table's indexes, and reads them by reference.
//!
//! - `WHERE Id = …` / `IN (…)`: the records by id; `=` / `IN` on a unique or External ID field: that index;
//!   range comparisons on `CreatedDate`, `LastModifiedDate` or `SystemModstamp`: the ordered index, stopping
//!   early when the rows are wanted in that order. Everything else reads the object (only that object).
//! - The full filter is evaluated on every record read, except for a *covered* range (the range is the whole
//!   filter and the rows come in index order): then the index entries are the answer, the count is the
//!   entries' count and only the rows of a page are ever rendered ([`Matches::Range`]), which is what keeps
//!   the reconciliation poller's query fast over millions of records.
//! - `queryAll` (deleted records too) and tables holding a datetime not in the stored form scan.

use std::collections::BTreeSet;
use std::ops::Bound;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ids;
use super::org::{Record, sf_datetime};
use super::soql::{self, Access, Query, Selected};
use super::table::{StampKey, Table, lower_bound, upper_bound};

/// The rows a query matched, in order, after `OFFSET` and `LIMIT`.
pub enum Matches {
    Count(usize),
    /// The ids of every row.
    Ids(Vec<String>),
    /// A covered range read from the ordered index of `field`: the rows are the `total` entries from `start`
    /// on, up to `upper`.
    Range {
        field: String,
        start: Bound<StampKey>,
        upper: Bound<StampKey>,
        total: usize,
    },
}

/// Find what `query` matches in `table`; `all` includes deleted records (`queryAll`).
pub fn run(
    query: &Query,
    table: &Table,
    all: bool,
    now: DateTime<Utc>,
) -> Result<Matches, soql::SoqlError> {
    let live = |r: &Record| all || r.get("IsDeleted") != Some(&Value::Bool(true));
    let access = if all { Access::Scan } else { query.access() };
    let selected = match access {
        Access::Equals {
            field: "Id",
            values,
        } => {
            let ids: BTreeSet<String> = values.iter().filter_map(|v| ids::normalize(v)).collect();
            let records = ids
                .iter()
                .filter_map(|id| table.entry(id))
                .filter(|(_, r)| live(r));
            soql::select(query, records, now, false)?
        }
        Access::Equals { field, values } if table.is_unique_indexed(field) => {
            let ids: BTreeSet<&str> = values
                .iter()
                .flat_map(|v| table.find_unique(field, v).unwrap_or_default())
                .collect();
            let records = ids
                .into_iter()
                .filter_map(|id| table.get(id).map(|r| (id, r)))
                .filter(|(_, r)| live(r));
            soql::select(query, records, now, false)?
        }
        Access::Range {
            field,
            lower,
            upper,
            covered,
        } if table.ordered_complete() => {
            let lower = lower_bound(stamp(&lower).as_ref().map(String::as_str));
            let upper = upper_bound(stamp(&upper).as_ref().map(String::as_str));
            let Some(entries) = table.range(field, lower.clone(), upper.clone()) else {
                return scan(query, table, live, now);
            };
            let in_order = query.ordered_by_only(field);
            if covered && in_order {
                return Ok(covered_range(query, field, entries, lower, upper));
            }
            let ids: Vec<&str> = entries.map(|(_, id)| id.as_str()).collect();
            let mut ids = ids;
            if !in_order {
                // Without the index's order the rows keep the stored (id) order, as a scan gives them.
                ids.sort_unstable();
            }
            let records = ids
                .into_iter()
                .filter_map(|id| table.get(id).map(|r| (id, r)));
            soql::select(query, records, now, in_order)?
        }
        _ => return scan(query, table, live, now),
    };
    Ok(owned(selected))
}

fn scan(
    query: &Query,
    table: &Table,
    live: impl Fn(&Record) -> bool,
    now: DateTime<Utc>,
) -> Result<Matches, soql::SoqlError> {
    let records = table
        .iter()
        .map(|(id, r)| (id.as_str(), r))
        .filter(|(_, r)| live(r));
    Ok(owned(soql::select(query, records, now, false)?))
}

fn owned(selected: Selected<&str>) -> Matches {
    match selected {
        Selected::Count(n) => Matches::Count(n),
        Selected::Keys(ids) => Matches::Ids(ids.into_iter().map(str::to_owned).collect()),
    }
}

/// A covered range in index order: count the entries, apply `OFFSET` and `LIMIT`, render nothing yet.
fn covered_range<'t>(
    query: &Query,
    field: &str,
    entries: impl Iterator<Item = &'t StampKey>,
    lower: Bound<StampKey>,
    upper: Bound<StampKey>,
) -> Matches {
    let offset = query.offset().unwrap_or(0);
    let limit = query.limit().unwrap_or(usize::MAX);
    if query.is_count() {
        return Matches::Count(entries.count().saturating_sub(offset).min(limit));
    }
    let mut entries = entries;
    // The page starts after the OFFSET'th entry; counting the rest gives the total.
    let start = match offset {
        0 => lower,
        n => match entries.nth(n - 1) {
            Some(key) => Bound::Excluded(key.clone()),
            None => return Matches::Ids(Vec::new()),
        },
    };
    Matches::Range {
        field: field.to_owned(),
        start,
        upper,
        total: entries.count().min(limit),
    }
}

/// A datetime bound as stored text.
fn stamp(bound: &Bound<DateTime<Utc>>) -> Bound<String> {
    match bound {
        Bound::Included(t) => Bound::Included(sf_datetime(*t)),
        Bound::Excluded(t) => Bound::Excluded(sf_datetime(*t)),
        Bound::Unbounded => Bound::Unbounded,
    }
}
