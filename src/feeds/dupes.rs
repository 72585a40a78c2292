//! Duplicates within one upload, by the configured duplicate rules (`[records]`, `records::RuleSet`).
//!
//! Pass 1 feeds every valid row to [`Dupes::observe`]: for each rule whose scope includes `within_upload`, the
//! row's rule key (the rule's key fields, normalised) → the winning row so far (the latest `as_of_date`; on a
//! tie the later row). Pass 2 asks [`Dupes::fired`] for each row: the first rule, in configured order, under
//! which another row won. The rule's action decides the row's verdict (in the worker): `merge` → `duplicate`
//! of the winner, `reject` → kicked out (`duplicate_rejected`), `flag` → sent with a `duplicate_flagged`
//! warning. Each names the rule.
//!
//! Memory: pass 1 keeps 32 bytes per row and rule (16 of key, the row number and its `as_of_date`) in a plain
//! list; [`Dupes::settle`] sorts it by key and keeps only the rows another row beat (with their winner), so
//! pass 2 holds nothing for an upload without duplicates. The default rule's key is the row's `Record_Key__c`
//! (the same fields and normalisation), so with only the default rule nothing more is hashed.
//!
//! Rules scoped `existing` are the upsert by `Record_Key__c` for the default rule; other rules against the
//! records already in the org are the dedupe scan's (`creditlink records dedupe`), not applied per upload.

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};

use crate::records::{Action, DEFAULT_RULE, Fields, Rule, RuleSet, Scope};

/// A row's cells by the upload's column names.
pub(super) struct RowFields<'a> {
    pub columns: &'a [String],
    pub cells: &'a [String],
}

impl Fields for RowFields<'_> {
    fn field(&self, name: &str) -> Option<String> {
        let i = self.columns.iter().position(|c| c == name)?;
        let v = self.cells.get(i)?;
        (!v.trim().is_empty()).then(|| v.clone())
    }
}

/// Which rule fired for a row, against which winning row.
#[derive(Debug, Clone)]
pub(super) struct Fired {
    pub rule: String,
    pub action: Action,
    pub winner: u64,
}

/// One valid row under one rule, as pass 1 saw it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    key: [u8; 16],
    /// `as_of_date` as days since the Common Era; with the row number it orders the rows of one key.
    day: i32,
    row: u64,
}

/// One within-upload rule: the rows pass 1 saw, then the rows that lost (row, their key, winner; by row).
struct Tracked {
    rule: Rule,
    /// The shipped default rule: its key is the record key.
    is_default: bool,
    seen: Vec<Seen>,
    losers: Vec<(u64, [u8; 16], u64)>,
}

/// The within-upload rules of one upload and the winners pass 1 found.
pub(super) struct Dupes {
    rules: RuleSet,
    tracked: Vec<Tracked>,
}

impl Dupes {
    pub(super) fn new(rules: &RuleSet) -> Dupes {
        let default = Rule::default_rule();
        let tracked = rules
            .rules()
            .iter()
            .filter(|r| r.applies_to(Scope::WithinUpload))
            .map(|r| Tracked {
                rule: r.clone(),
                is_default: r.name == DEFAULT_RULE && *r == default,
                seen: Vec::new(),
                losers: Vec::new(),
            })
            .collect();
        Dupes {
            rules: rules.clone(),
            tracked,
        }
    }

    fn key(
        &self,
        t: &Tracked,
        furnisher: &str,
        record_key: &str,
        row: &RowFields,
    ) -> Option<[u8; 16]> {
        if t.is_default {
            return Some(key_bytes(record_key));
        }
        t.rule
            .key(furnisher, row, self.rules.formats())
            .map(|k| key_bytes(&k))
    }

    /// Pass 1: a valid row.
    pub(super) fn observe(
        &mut self,
        furnisher: &str,
        row: u64,
        as_of: NaiveDate,
        record_key: &str,
        fields: &RowFields,
    ) {
        for i in 0..self.tracked.len() {
            let Some(key) = self.key(&self.tracked[i], furnisher, record_key, fields) else {
                continue;
            };
            self.tracked[i].seen.push(Seen {
                key,
                day: as_of.num_days_from_ce(),
                row,
            });
        }
    }

    /// The end of pass 1: under each rule, the winner of each key is its latest row (by `as_of_date`, on a
    /// tie the later row); only the rows it beat are kept.
    pub(super) fn settle(&mut self) {
        for t in &mut self.tracked {
            let mut seen = std::mem::take(&mut t.seen);
            seen.sort_unstable();
            let mut losers = Vec::new();
            for group in seen.chunk_by(|a, b| a.key == b.key) {
                if let Some((winner, beaten)) = group.split_last() {
                    losers.extend(beaten.iter().map(|s| (s.row, s.key, winner.row)));
                }
            }
            losers.sort_unstable();
            losers.shrink_to_fit();
            t.losers = losers;
        }
    }

    /// Pass 2 (after [`Dupes::settle`]): the first rule under which another row of the upload won over this one.
    pub(super) fn fired(
        &self,
        furnisher: &str,
        row: u64,
        record_key: &str,
        fields: &RowFields,
    ) -> Option<Fired> {
        self.tracked.iter().find_map(|t| {
            if t.losers.is_empty() {
                return None;
            }
            let key = self.key(t, furnisher, record_key, fields)?;
            let i = t.losers.binary_search_by_key(&row, |&(r, _, _)| r).ok()?;
            let (_, lost_under, winner) = t.losers[i];
            (lost_under == key && winner != row).then(|| Fired {
                rule: t.rule.name.clone(),
                action: t.rule.action,
                winner,
            })
        })
    }
}

/// 16 bytes of a key: the hex of a record or rule key, or (for anything else) a hash of it.
pub(super) fn key_bytes(key: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let hex = key.trim_start_matches("rk_");
    if hex::decode_to_slice(hex, &mut out).is_err() {
        out = Sha256::digest(key.as_bytes())[..16]
            .try_into()
            .expect("16 bytes");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{FURNISHER, FormatBook, KeyField, Normaliser};

    fn cols() -> Vec<String> {
        ["account_number", "national_id", "as_of_date"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn the_first_rule_in_order_fires_against_the_latest_row() {
        let flag = Rule {
            name: "same_person".into(),
            fields: vec![
                KeyField::new(FURNISHER, &[]),
                KeyField::new("national_id", &[Normaliser::Alnum, Normaliser::Upper]),
            ],
            scopes: vec![Scope::WithinUpload],
            action: Action::Flag,
        };
        let rules = RuleSet::new(vec![flag], FormatBook::default());
        let mut d = Dupes::new(&rules);
        let columns = cols();
        let rows: Vec<Vec<String>> = vec![
            vec!["A-1".into(), "cw-1".into(), "".into()],
            vec!["A-2".into(), "CW1".into(), "".into()],
            vec!["A-1".into(), "CW-9".into(), "".into()],
        ];
        let day = |d: u32| NaiveDate::from_ymd_opt(2025, 6, d).expect("date");
        let keys = [
            "rk_00000000000000000000000000000001",
            "rk_00000000000000000000000000000002",
            "rk_00000000000000000000000000000001",
        ];
        for (i, cells) in rows.iter().enumerate() {
            let f = RowFields {
                columns: &columns,
                cells,
            };
            d.observe("001A", i as u64 + 1, day(1), keys[i], &f);
        }
        d.settle();
        let fired = |i: usize| {
            let f = RowFields {
                columns: &columns,
                cells: &rows[i],
            };
            d.fired("001A", i as u64 + 1, keys[i], &f)
        };
        // Row 1: the default rule (same record key as row 3, which is later) fires first.
        let first = fired(0).expect("fires");
        assert_eq!(
            (first.rule.as_str(), first.action, first.winner),
            (DEFAULT_RULE, Action::Merge, 3)
        );
        // Row 2: only the person rule (same national id as row 1, formatted otherwise; row 2 is later and wins).
        assert!(fired(1).is_none());
        let f = RowFields {
            columns: &columns,
            cells: &rows[0],
        };
        assert!(
            d.fired("001A", 1, "rk_00000000000000000000000000000009", &f)
                .is_some_and(|x| x.rule == "same_person" && x.winner == 2)
        );
        // Row 3 wins everything it is in.
        assert!(fired(2).is_none());
    }
}
