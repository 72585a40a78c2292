//! The audit of record terminations and reinstatements: who, when, why — durable, in the store.
//!
//! One entry per record and event, in the `records.audit` tree, keyed by a UUID v7 (time-ordered, unique), so
//! the tree lists oldest first and a reader pages with `after`. Entries name the record by its Salesforce id
//! and `Record_Key__c` (a hash) and the furnisher's Account id: no account number, national id or name is
//! ever written. An entry is written right after Salesforce confirmed the change; a crash between the two
//! loses that one entry (the change itself shows in Salesforce's field history).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::RecordsError;
use crate::store::{KvTree, Store};

/// The store tree of audit entries.
pub const AUDIT_TREE: &str = "records.audit";

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// `terminate` or `reinstate`.
    pub action: String,
    pub record_id: String,
    pub record_key: Option<String>,
    pub furnisher: Option<String>,
    pub last_reported: Option<NaiveDate>,
    /// Who asked: `gatekeeper:schedule`, `gatekeeper:admin` (with the admin request's id), `feeds:<upload>`.
    pub actor: String,
    pub reason: String,
}

/// The audit log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    tree: KvTree,
}

impl Audit {
    pub fn open(store: &Store) -> Result<Audit, RecordsError> {
        Ok(Audit {
            tree: store.kv_tree(AUDIT_TREE)?,
        })
    }

    /// Appends `entry` (its `id` and `at` are set here); durable when it returns.
    pub async fn append(&self, mut entry: AuditEntry) -> Result<AuditEntry, RecordsError> {
        entry.id = Uuid::now_v7();
        entry.at = Utc::now();
        let value = serde_json::to_vec(&entry).expect("audit entries serialise");
        self.tree.insert(entry.id.as_bytes(), &value).await?;
        Ok(entry)
    }

    /// Up to `limit` entries after `after` (exclusive), oldest first.
    pub async fn list(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, RecordsError> {
        let mut from = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
        if after.is_some() {
            from.push(0);
        }
        let entries = self.tree.scan_from(&from, limit).await?;
        Ok(entries
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }
}

impl AuditEntry {
    /// An entry to [`Audit::append`]; id and time are filled in there.
    pub fn new(action: &str, record_id: &str, actor: &str, reason: String) -> AuditEntry {
        AuditEntry {
            id: Uuid::nil(),
            at: DateTime::<Utc>::MIN_UTC,
            action: action.to_owned(),
            record_id: record_id.to_owned(),
            record_key: None,
            furnisher: None,
            last_reported: None,
            actor: actor.to_owned(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_list_in_order_and_page() {
        let audit = Audit::open(&Store::memory()).expect("tree");
        for i in 0..3 {
            audit
                .append(AuditEntry::new(
                    "terminate",
                    &format!("a02{i}"),
                    "gatekeeper:schedule",
                    "stale".into(),
                ))
                .await
                .expect("append");
        }
        let all = audit.list(None, 10).await.expect("list");
        let ids: Vec<&str> = all.iter().map(|e| e.record_id.as_str()).collect();
        assert_eq!(ids, ["a020", "a021", "a022"]);
        let rest = audit.list(Some(all[0].id), 10).await.expect("page");
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].record_id, "a021");
    }
}
