//! sObject Collections: up to 200 records in one API call (REST API "sObject Collections").
//!
//! This is what keeps API usage near the floor of one call per 200 records. Requests always use
//! `allOrNone: false`, so one bad record never blocks the other 199: the answer is a per-record result array in
//! input order, and each failed item is classified on its own ([`RecordResult::error_class`]).

use reqwest::Method;
use serde_json::{Value, json};
use tracing::instrument;

use super::client::{SalesforceClient, read_json};
use super::error::SfError;
use super::types::{JsonMap, RecordResult};

/// Salesforce refuses larger collections with a 400; refusing locally says why.
pub const MAX_COLLECTION_RECORDS: usize = 200;

impl SalesforceClient {
    /// `POST /composite/sobjects`: insert records, each of its own object type.
    #[instrument(name = "salesforce", skip_all, fields(op = "collections_create", records = records.len()))]
    pub async fn collections_create(
        &self,
        records: &[(String, JsonMap)],
    ) -> Result<Vec<RecordResult>, SfError> {
        check_batch(records.len())?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let body: Vec<Value> = records
            .iter()
            .map(|(object, fields)| with_type(object, fields))
            .collect();
        self.collection_call(Method::POST, &["composite", "sobjects"], body)
            .await
    }

    /// `PATCH /composite/sobjects`: update records by Salesforce id. Each map must hold the record's `Id`.
    #[instrument(name = "salesforce", skip_all, fields(op = "collections_update", records = records.len()))]
    pub async fn collections_update(
        &self,
        records: &[(String, JsonMap)],
    ) -> Result<Vec<RecordResult>, SfError> {
        check_batch(records.len())?;
        if let Some(index) = records
            .iter()
            .position(|(_, fields)| !has_text(fields, "Id") && !has_text(fields, "id"))
        {
            return Err(SfError::Usage(format!(
                "collections_update: record {index} has no Id"
            )));
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let body: Vec<Value> = records
            .iter()
            .map(|(object, fields)| with_type(object, fields))
            .collect();
        self.collection_call(Method::PATCH, &["composite", "sobjects"], body)
            .await
    }

    /// `PATCH /composite/sobjects/{object}/{ext_field}`: upsert records of one object by external id. Unlike the
    /// single-record upsert, the external id value goes **inside** each record, so each map must hold `ext_field`.
    #[instrument(name = "salesforce", skip_all, fields(op = "collections_upsert", object = %object, records = records.len()))]
    pub async fn collections_upsert(
        &self,
        object: &str,
        ext_field: &str,
        records: &[JsonMap],
    ) -> Result<Vec<RecordResult>, SfError> {
        check_batch(records.len())?;
        if let Some(index) = records
            .iter()
            .position(|fields| !has_text(fields, ext_field))
        {
            return Err(SfError::Usage(format!(
                "collections_upsert: record {index} has no value for {ext_field}"
            )));
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let body: Vec<Value> = records
            .iter()
            .map(|fields| with_type(object, fields))
            .collect();
        self.collection_call(
            Method::PATCH,
            &["composite", "sobjects", object, ext_field],
            body,
        )
        .await
    }

    async fn collection_call(
        &self,
        method: Method,
        segments: &[&str],
        records: Vec<Value>,
    ) -> Result<Vec<RecordResult>, SfError> {
        let expected = records.len();
        let body = json!({ "allOrNone": false, "records": records });
        let response = self
            .send(|c| Ok(c.data(method.clone(), segments)?.json(&body)))
            .await?;
        let status = response.status();
        let results: Vec<RecordResult> = read_json(response).await?;
        if results.len() != expected {
            // Results are matched to records by position; a length mismatch would attach outcomes to the wrong
            // records, so refuse the whole answer.
            return Err(SfError::decode(
                status,
                format!("{} results for {expected} records", results.len()),
            ));
        }
        Ok(results)
    }
}

fn check_batch(len: usize) -> Result<(), SfError> {
    if len > MAX_COLLECTION_RECORDS {
        return Err(SfError::Usage(format!(
            "{len} records in one collection call; Salesforce accepts at most {MAX_COLLECTION_RECORDS}"
        )));
    }
    Ok(())
}

/// The record with `attributes.type` set, as Collections require.
fn with_type(object: &str, fields: &JsonMap) -> Value {
    let mut record = fields.clone();
    record.insert("attributes".to_owned(), json!({ "type": object }));
    Value::Object(record)
}

fn has_text(fields: &JsonMap, key: &str) -> bool {
    match fields.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_get_their_type_attribute() {
        let mut fields = JsonMap::new();
        fields.insert("Name".into(), json!("Demo"));
        let record = with_type("Account", &fields);
        assert_eq!(
            record,
            json!({ "attributes": { "type": "Account" }, "Name": "Demo" })
        );
    }

    #[test]
    fn batches_over_200_are_refused_locally() {
        assert!(check_batch(200).is_ok());
        assert!(matches!(check_batch(201), Err(SfError::Usage(_))));
    }
}
