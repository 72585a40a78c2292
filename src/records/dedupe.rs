//! `creditlink records dedupe`: finds the duplicates already in the org and merges them.
//!
//! Duplicates predate creditlink (records loaded by hand or by an older integration, each formatted its own
//! way) or come from rule changes. The scan reads every `Credit_Record__c` once (SOQL paging), computes each
//! record's key under every rule whose scope includes `existing`, and groups records sharing a key —
//! transitively across `merge` rules, so A~B by one rule and B~C by another make one group. `flag` and
//! `reject` rules only report their groups: an existing record cannot be rejected, and flagged ones are for a
//! person to look at.
//!
//! Merging keeps the most recently reported record of each group (latest `Last_Reported__c`; ties: the
//! smallest Id, so a rerun picks the same one) and *marks* the others rather than deleting them, so their
//! history stays: `Status__c = Terminated`, `Termination_Reason__c = Duplicate`, `Record_Key__c` cleared. The
//! survivor then takes its canonical `Record_Key__c` (the default rule's key of its own furnisher, product type
//! and account number), so the next upload of that tradeline lands on it. Both steps go through sObject
//! Collections, 200 records per call. A rerun finds nothing more: marked records are left out of the scan.
//!
//! Nothing personal is printed or logged: groups are listed by Salesforce Id and record key only. Memory is a
//! few hundred bytes per record scanned (ids, dates, 16-byte keys), never the records themselves.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::RecordsError;
use super::fields::{self, RecordRow};
use super::rules::{Action, RuleSet, Scope};
use crate::salesforce::{JsonMap, MAX_COLLECTION_RECORDS, SalesforceClient};

/// At most this many groups are listed one by one in a report (all are counted).
pub const MAX_LISTED_GROUPS: usize = 10_000;

/// What a dedupe run found and did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DedupeReport {
    pub dry_run: bool,
    pub scanned: u64,
    /// Groups of records that are one tradeline (`merge` rules).
    pub groups: u64,
    /// Records that are merged (or, in a dry run, would be) into their group's survivor.
    pub duplicates: u64,
    /// Of those, marked in Salesforce.
    pub merged: u64,
    /// Marks or re-keys Salesforce refused.
    pub failed: u64,
    /// Per rule: groups and records (`flag`/`reject` rules too).
    pub by_rule: BTreeMap<String, RuleCount>,
    pub listed: Vec<Group>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RuleCount {
    pub action: String,
    pub groups: u64,
    pub records: u64,
}

/// One group: the record kept and those merged into it (Salesforce ids).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Group {
    pub rule: String,
    pub keep: String,
    pub merge: Vec<String>,
}

/// Reports progress (a terminal progress bar in the CLI).
pub trait Progress {
    fn total(&self, records: u64);
    fn advance(&self, records: u64);
}

/// No progress shown.
pub struct Quiet;

impl Progress for Quiet {
    fn total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

impl Progress for indicatif::ProgressBar {
    fn total(&self, records: u64) {
        self.set_length(records);
    }
    fn advance(&self, records: u64) {
        self.inc(records);
    }
}

/// What the scan keeps of each record.
struct Seen {
    id: Box<str>,
    last_reported: Option<NaiveDate>,
    /// The default rule's key of the record's own fields, kept only when its `Record_Key__c` differs
    /// (a survivor is re-keyed to it); `None` for the usual record already keyed so, which keeps the
    /// scan's memory to about one id and one date per record.
    rekey_to: Option<Box<str>>,
}

/// Scans the org and, unless `dry_run`, merges the groups found.
pub async fn run(
    client: &SalesforceClient,
    rules: &RuleSet,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<DedupeReport, RecordsError> {
    let (seen, links) = scan(client, rules, progress).await?;
    let mut report = DedupeReport {
        dry_run,
        scanned: seen.len() as u64,
        ..DedupeReport::default()
    };
    let groups = group(&seen, &links, rules, &mut report);
    if !dry_run {
        merge(client, &seen, &groups, &mut report).await?;
    }
    tracing::info!(
        dry_run,
        scanned = report.scanned,
        groups = report.groups,
        duplicates = report.duplicates,
        merged = report.merged,
        failed = report.failed,
        "dedupe scan"
    );
    Ok(report)
}

/// Per rule: every key shared by at least two records, with those records (indexes into the scan).
type Links = Vec<HashMap<[u8; 16], Vec<u32>>>;

async fn scan(
    client: &SalesforceClient,
    rules: &RuleSet,
    progress: &dyn Progress,
) -> Result<(Vec<Seen>, Links), RecordsError> {
    let mut columns: Vec<&str> = vec![
        fields::ID,
        fields::RECORD_KEY,
        fields::FURNISHER,
        fields::TERMINATION_REASON,
    ];
    columns.extend(fields::COLUMNS.iter().map(|(f, _)| *f));
    columns.dedup();
    let soql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        fields::OBJECT,
        fields::ID
    );
    let mut seen: Vec<Seen> = Vec::new();
    // Per rule, the first record of every key (one small entry each: most keys are never shared),
    // and the records of keys seen again (the few that matter).
    let mut first: Vec<HashMap<[u8; 16], u32>> = vec![HashMap::new(); rules.rules().len()];
    let mut links: Links = vec![HashMap::new(); rules.rules().len()];
    let mut page = client.query(&soql).await?;
    progress.total(page.total_size);
    loop {
        progress.advance(page.records.len() as u64);
        for record in &page.records {
            if fields::text(record, fields::TERMINATION_REASON) == Some(fields::DUPLICATE) {
                continue;
            }
            let id = fields::text(record, fields::ID).ok_or(RecordsError::Malformed(fields::ID))?;
            let furnisher = fields::text(record, fields::FURNISHER).unwrap_or_default();
            let index = seen.len() as u32;
            for key in rules.keys(furnisher, &RecordRow(record), Scope::Existing) {
                let mut bytes = [0u8; 16];
                if hex::decode_to_slice(&key.key, &mut bytes).is_ok() {
                    match first[key.rule].entry(bytes) {
                        Entry::Vacant(slot) => {
                            slot.insert(index);
                        }
                        Entry::Occupied(earlier) => links[key.rule]
                            .entry(bytes)
                            .or_insert_with(|| vec![*earlier.get()])
                            .push(index),
                    }
                }
            }
            seen.push(Seen {
                id: id.into(),
                last_reported: fields::text(record, fields::LAST_REPORTED)
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                rekey_to: canonical_key(furnisher, record)
                    .filter(|k| fields::text(record, fields::RECORD_KEY) != Some(k.as_str()))
                    .map(Into::into),
            });
        }
        match (page.done, page.next_records_url.take()) {
            (false, Some(next)) => page = client.query_more(&next).await?,
            _ => break,
        }
    }
    drop(first);
    Ok((seen, links))
}

/// The default rule's `Record_Key__c` of a record's own fields.
fn canonical_key(furnisher: &str, record: &JsonMap) -> Option<String> {
    let product = fields::text(record, fields::PRODUCT_TYPE)?;
    let account = fields::text(record, fields::ACCOUNT_NUMBER)?;
    (!furnisher.is_empty() && !super::normalise_identifier(account).is_empty())
        .then(|| super::record_key(furnisher, product, account))
}

/// The merge groups (survivor first), counting every rule's groups into `report`.
fn group(
    seen: &[Seen],
    links: &Links,
    rules: &RuleSet,
    report: &mut DedupeReport,
) -> Vec<(usize, Vec<u32>)> {
    let mut parent: Vec<u32> = (0..seen.len() as u32).collect();
    fn find(parent: &mut [u32], mut i: u32) -> u32 {
        while parent[i as usize] != i {
            parent[i as usize] = parent[parent[i as usize] as usize];
            i = parent[i as usize];
        }
        i
    }
    // The first merge rule that joined a group names it.
    let mut named_by: HashMap<u32, usize> = HashMap::new();
    for (rule_index, per_rule) in links.iter().enumerate() {
        let rule = rules.rule(rule_index);
        let count = report
            .by_rule
            .entry(rule.name.clone())
            .or_insert_with(|| RuleCount {
                action: rule.action.name().to_owned(),
                ..RuleCount::default()
            });
        count.groups += per_rule.len() as u64;
        count.records += per_rule.values().map(|m| m.len() as u64).sum::<u64>();
        if rule.action != Action::Merge {
            continue;
        }
        for members in per_rule.values() {
            let root = find(&mut parent, members[0]);
            named_by.entry(root).or_insert(rule_index);
            for &m in &members[1..] {
                let other = find(&mut parent, m);
                if other != root {
                    parent[other as usize] = root;
                    if let Some(rule) = named_by.remove(&other) {
                        named_by.entry(root).or_insert(rule);
                    }
                }
            }
        }
    }
    let mut by_root: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for i in 0..seen.len() as u32 {
        let root = find(&mut parent, i);
        if root != i || named_by.contains_key(&root) {
            by_root.entry(root).or_default().push(i);
        }
    }
    let mut groups = Vec::new();
    for (root, mut members) in by_root {
        if members.len() < 2 {
            continue;
        }
        // Survivor first: latest Last_Reported__c, then the smallest Id.
        members.sort_by(|&a, &b| {
            let (a, b) = (&seen[a as usize], &seen[b as usize]);
            b.last_reported
                .cmp(&a.last_reported)
                .then_with(|| a.id.cmp(&b.id))
        });
        let rule = named_by.get(&root).copied().unwrap_or(0);
        report.groups += 1;
        report.duplicates += members.len() as u64 - 1;
        if report.listed.len() < MAX_LISTED_GROUPS {
            report.listed.push(Group {
                rule: rules.rule(rule).name.clone(),
                keep: seen[members[0] as usize].id.to_string(),
                merge: members[1..]
                    .iter()
                    .map(|&m| seen[m as usize].id.to_string())
                    .collect(),
            });
        }
        groups.push((rule, members));
    }
    groups
}

/// Marks every non-survivor, then gives each survivor its canonical key.
async fn merge(
    client: &SalesforceClient,
    seen: &[Seen],
    groups: &[(usize, Vec<u32>)],
    report: &mut DedupeReport,
) -> Result<(), RecordsError> {
    let losers = groups.iter().flat_map(|(_, m)| m[1..].iter().copied());
    let marks: Vec<(String, JsonMap)> = losers
        .map(|i| {
            update(
                &seen[i as usize].id,
                [
                    (fields::STATUS, json!(fields::TERMINATED)),
                    (fields::TERMINATION_REASON, json!(fields::DUPLICATE)),
                    (fields::RECORD_KEY, Value::Null),
                ],
            )
        })
        .collect();
    let (ok, failed) = send(client, &marks).await?;
    report.merged += ok;
    report.failed += failed;
    let rekeys: Vec<(String, JsonMap)> = groups
        .iter()
        .map(|(_, m)| &seen[m[0] as usize])
        .filter_map(|s| Some((&s.id, s.rekey_to.as_deref()?)))
        .map(|(id, key)| update(id, [(fields::RECORD_KEY, json!(key))]))
        .collect();
    let (_, failed) = send(client, &rekeys).await?;
    report.failed += failed;
    Ok(())
}

fn update<const N: usize>(id: &str, values: [(&str, Value); N]) -> (String, JsonMap) {
    let mut m = JsonMap::new();
    m.insert(fields::ID.into(), json!(id));
    for (k, v) in values {
        m.insert(k.into(), v);
    }
    (fields::OBJECT.to_owned(), m)
}

/// Sends updates 200 per call; `(succeeded, refused)`.
async fn send(
    client: &SalesforceClient,
    updates: &[(String, JsonMap)],
) -> Result<(u64, u64), RecordsError> {
    let (mut ok, mut failed) = (0, 0);
    for chunk in updates.chunks(MAX_COLLECTION_RECORDS) {
        for (result, (_, fields)) in client.collections_update(chunk).await?.iter().zip(chunk) {
            if result.success {
                ok += 1;
            } else {
                failed += 1;
                let codes: Vec<&str> = result.errors.iter().map(|e| e.code.as_str()).collect();
                tracing::warn!(record_id = ?fields.get(fields::ID), errors = ?codes, "dedupe update refused by Salesforce");
            }
        }
    }
    Ok((ok, failed))
}
