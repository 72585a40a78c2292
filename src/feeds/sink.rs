//! Where validated rows go: the seam between an upload's processing and the Salesforce API that carries it.
//!
//! [`RecordSink`] is what the worker needs — read the existing records of a batch of keys, upsert a batch —
//! and [`CollectionsSink`] does it with SOQL and sObject Collections (≤ 200 records per call), which suits
//! uploads of any size at one or two API calls per 200 rows. [`BulkSink`] is the other way in, for large
//! uploads: Bulk API 2.0 ingest jobs ([`BulkApiSink`]), a few calls per job of up to `[uploads] bulk_job_rows`
//! rows, results mapped back to rows by `Record_Key__c`. The worker chooses by the upload's row count.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use bytes::Bytes;

use crate::salesforce::{
    BulkJobInfo, BulkOperation, BulkResults, IngestSpec, JsonMap, PollPolicy, RecordResult,
    SalesforceClient, SfError,
};

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

    /// Sets `key_field` of the records `(Salesforce id, new key)` (an account-number change re-keys the
    /// existing record); one result per record, in order.
    async fn rekey(
        &self,
        object: &str,
        key_field: &str,
        records: &[(String, String)],
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

    async fn rekey(
        &self,
        object: &str,
        key_field: &str,
        records: &[(String, String)],
    ) -> Result<Vec<RecordResult>, SfError> {
        let updates: Vec<(String, JsonMap)> = records
            .iter()
            .map(|(id, key)| {
                let mut m = JsonMap::new();
                m.insert("Id".into(), Value::String(id.clone()));
                m.insert(key_field.to_owned(), Value::String(key.clone()));
                (object.to_owned(), m)
            })
            .collect();
        self.0.collections_update(&updates).await
    }
}

/// Upserts by Bulk API 2.0 ingest jobs, one step at a time so the caller can store the job id durably between
/// creating a job and uploading to it.
#[async_trait]
pub trait BulkSink: Send + Sync {
    /// Creates an `Open` upsert job and answers its id.
    async fn create(&self, object: &str, key_field: &str) -> Result<String, SfError>;

    /// Uploads the job's one CSV and closes it (`UploadComplete`); on an error the job is aborted.
    async fn upload_and_close(&self, job_id: &str, csv: Bytes) -> Result<(), SfError>;

    /// Polls the job until it is terminal (an `Open` one is aborted: its rows come back unprocessed).
    async fn wait(&self, job_id: &str) -> Result<BulkJobInfo, SfError>;

    /// The job's successful, failed and unprocessed rows by the value of `key_field`.
    async fn results(&self, job_id: &str, key_field: &str) -> Result<BulkResults, SfError>;
}

/// The Bulk API 2.0 sink over the Salesforce client.
pub struct BulkApiSink(pub SalesforceClient);

#[async_trait]
impl BulkSink for BulkApiSink {
    async fn create(&self, object: &str, key_field: &str) -> Result<String, SfError> {
        let spec = IngestSpec {
            object: object.to_owned(),
            operation: BulkOperation::Upsert,
            external_id_field: Some(key_field.to_owned()),
        };
        Ok(self.0.bulk_create_job(&spec).await?.id)
    }

    async fn upload_and_close(&self, job_id: &str, csv: Bytes) -> Result<(), SfError> {
        self.0.bulk_send(job_id, csv).await
    }

    async fn wait(&self, job_id: &str) -> Result<BulkJobInfo, SfError> {
        self.0.bulk_wait(job_id, PollPolicy::default()).await
    }

    async fn results(&self, job_id: &str, key_field: &str) -> Result<BulkResults, SfError> {
        self.0.bulk_results(job_id, key_field).await
    }
}
