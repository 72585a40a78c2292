//! Where validated rows go: the seam between an upload's processing and the Salesforce API that carries it.
//!
//! [`RecordSink`] is what the worker needs — read the existing records of a batch of keys, upsert a batch —
//! and [`CollectionsSink`] does it with SOQL and sObject Collections (≤ 200 records per call), which suits
//! uploads of any size at one or two API calls per 200 rows. A Bulk API 2.0 sink for very large uploads
//! (one ingest job per upload, results mapped back by row) plugs in here: the worker only chooses the sink.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use crate::salesforce::{JsonMap, RecordResult, SalesforceClient, SfError};

/// Reads and writes the records of one object by its External ID field.
#[async_trait]
pub trait RecordSink: Send + Sync {
    /// The existing records whose `key_field` is one of `keys`, keyed by that value, with `fields` read.
    async fn existing(
        &self,
        object: &str,
        key_field: &str,
        keys: &[String],
        fields: &[String],
    ) -> Result<HashMap<String, JsonMap>, SfError>;

    /// Upserts `records` (each holding `key_field`) and answers one result per record, in order.
    async fn upsert(
        &self,
        object: &str,
        key_field: &str,
        records: &[JsonMap],
    ) -> Result<Vec<RecordResult>, SfError>;
}

/// The default sink: SOQL `IN` reads and sObject Collections upserts.
pub struct CollectionsSink(pub SalesforceClient);

#[async_trait]
impl RecordSink for CollectionsSink {
    async fn existing(
        &self,
        object: &str,
        key_field: &str,
        keys: &[String],
        fields: &[String],
    ) -> Result<HashMap<String, JsonMap>, SfError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        // Record keys are `rk_` + hex, generated here: safe to quote as they are.
        if let Some(bad) = keys
            .iter()
            .find(|k| !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(SfError::Usage(format!("{bad:?} is not a record key")));
        }
        let mut select: Vec<&str> = vec!["Id", key_field];
        for f in fields {
            if !select.contains(&f.as_str()) {
                select.push(f);
            }
        }
        let list: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
        let soql = format!(
            "SELECT {} FROM {object} WHERE {key_field} IN ({})",
            select.join(", "),
            list.join(",")
        );
        let rows = self.0.query_all(&soql).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let key = r.get(key_field).and_then(Value::as_str)?.to_owned();
                Some((key, r))
            })
            .collect())
    }

    async fn upsert(
        &self,
        object: &str,
        key_field: &str,
        records: &[JsonMap],
    ) -> Result<Vec<RecordResult>, SfError> {
        self.0.collections_upsert(object, key_field, records).await
    }
}
