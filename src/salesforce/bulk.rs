//! Bulk API 2.0 ingest: large loads as CSV jobs instead of 200-record Collections calls.
//!
//! A load is split into parts of at most [`MAX_UPLOAD_BYTES`] of CSV (Salesforce's limit per upload request),
//! and each part is its own job: create, one `PUT …/batches`, close (`UploadComplete`). Salesforce accepts one
//! upload per job (a second one makes the close fail), so several parts never share a job. Then
//! [`SalesforceClient::bulk_wait`] polls the job's state with exponential backoff until it is `JobComplete`,
//! `Failed` or `Aborted`, and [`SalesforceClient::bulk_results`] reads `successfulResults`, `failedResults`
//! and `unprocessedrecords` as typed rows.
//!
//! **Mapping results back.** Salesforce echoes every uploaded column in the result files and does not keep the
//! upload's order, so each result row is mapped back by the *reference column* the caller names: a column
//! whose value is unique per row (the External ID of an upsert, the `Id` of an update). The upload refuses
//! duplicate or empty references up front, so every result maps to exactly one input row.
//!
//! **Resuming.** The caller stores each job id as [`SalesforceClient::bulk_submit`] reports it (before the
//! upload), so a restarted process resumes with `bulk_wait` + `bulk_results` on the stored id instead of
//! uploading again. A job found still `Open` (the process died between create and close) never progresses on
//! its own: `bulk_wait` aborts it, and all its rows come back as unprocessed for the caller to send again.
//!
//! **Retries.** Polling and result reads are idempotent, so a `Retryable` error there is retried within the
//! poll's backoff. Creating, uploading and closing are not retried here (the caller owns write retries, as for
//! every other call); a failed upload or close aborts its job so nothing half-sent is processed later.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::json;
use tracing::instrument;

use super::bulk_results::{ResultRow, ResultStream};
use super::client::{SalesforceClient, read_json};
use super::error::{ApiError, ErrorClass, SfError, classify};

/// The most CSV one upload request may carry (Salesforce: 100 MB, which it stores as 150 MB of base64).
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

/// The DML operation of an ingest job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOperation {
    Insert,
    Upsert,
    Update,
    Delete,
}

impl BulkOperation {
    fn wire(self) -> &'static str {
        match self {
            BulkOperation::Insert => "insert",
            BulkOperation::Upsert => "upsert",
            BulkOperation::Update => "update",
            BulkOperation::Delete => "delete",
        }
    }
}

/// What to load: the object, the operation and (for upserts) the External ID field.
#[derive(Debug, Clone)]
pub struct IngestSpec {
    pub object: String,
    pub operation: BulkOperation,
    pub external_id_field: Option<String>,
}

/// A job's state (`Open → UploadComplete → InProgress → JobComplete | Failed | Aborted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BulkJobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl BulkJobState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BulkJobState::JobComplete | BulkJobState::Failed | BulkJobState::Aborted
        )
    }
}

/// The job info Salesforce answers with (the fields creditlink uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkJobInfo {
    pub id: String,
    pub state: BulkJobState,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub number_records_processed: u64,
    #[serde(default)]
    pub number_records_failed: u64,
    /// Why a `Failed` job failed (e.g. `InvalidBatch : Field name not found : X`).
    #[serde(default)]
    pub error_message: Option<String>,
}

/// Rows to load: a header of field names and rows as wide as it, plus the reference column that maps results
/// back to rows.
#[derive(Debug, Clone)]
pub struct BulkRows {
    header: Vec<String>,
    reference: usize,
    rows: Vec<Vec<String>>,
    seen: std::collections::HashSet<String>,
}

impl BulkRows {
    /// `reference_column` must be one of `header`.
    pub fn new(header: Vec<String>, reference_column: &str) -> Result<Self, SfError> {
        let reference = header
            .iter()
            .position(|h| h == reference_column)
            .ok_or_else(|| {
                SfError::Usage(format!(
                    "the reference column {reference_column} is not in the header"
                ))
            })?;
        Ok(BulkRows {
            header,
            reference,
            rows: Vec::new(),
            seen: Default::default(),
        })
    }

    /// Add a row; its reference value must be non-empty and not used by an earlier row.
    pub fn push(&mut self, row: Vec<String>) -> Result<(), SfError> {
        if row.len() != self.header.len() {
            return Err(SfError::Usage(format!(
                "a row has {} values for {} columns",
                row.len(),
                self.header.len()
            )));
        }
        let reference = &row[self.reference];
        if reference.is_empty() || !self.seen.insert(reference.clone()) {
            return Err(SfError::Usage(
                "every row needs a non-empty reference value of its own".to_owned(),
            ));
        }
        self.rows.push(row);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn reference_column(&self) -> &str {
        &self.header[self.reference]
    }

    /// The rows as CSV parts of at most `max_bytes` each (header included), with their row counts.
    fn parts(&self, max_bytes: usize) -> Result<Vec<(Bytes, usize)>, SfError> {
        let header = csv_line(&self.header)?;
        let mut parts = Vec::new();
        let mut current = header.clone();
        let mut count = 0;
        for row in &self.rows {
            let line = csv_line(row)?;
            if header.len() + line.len() > max_bytes {
                return Err(SfError::Usage(format!(
                    "one row is larger than the {max_bytes}-byte upload limit"
                )));
            }
            if current.len() + line.len() > max_bytes {
                parts.push((
                    Bytes::from(std::mem::replace(&mut current, header.clone())),
                    count,
                ));
                count = 0;
            }
            current.extend_from_slice(&line);
            count += 1;
        }
        if count > 0 {
            parts.push((Bytes::from(current), count));
        }
        Ok(parts)
    }
}

fn csv_line(cells: &[String]) -> Result<Vec<u8>, SfError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer
        .write_record(cells)
        .map_err(|e| SfError::Usage(format!("cannot write CSV: {e}")))?;
    writer
        .into_inner()
        .map_err(|e| SfError::Usage(format!("cannot write CSV: {e}")))
}

/// One job created by [`SalesforceClient::bulk_submit`] and the number of rows uploaded to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkPart {
    pub job_id: String,
    pub rows: usize,
}

/// How long and how often to poll a job.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Stop polling after about this much waiting and return the last (non-terminal) state.
    pub give_up_after: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            give_up_after: Duration::from_secs(30 * 60),
        }
    }
}

/// A row Salesforce wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSuccess {
    /// The row's reference value.
    pub reference: String,
    pub id: String,
    pub created: bool,
}

/// A row Salesforce refused, with its error (`sf__Error` is `CODE:message:fields --`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkFailure {
    pub reference: String,
    pub id: Option<String>,
    pub error: ApiError,
}

impl BulkFailure {
    /// Whether sending this row again can help (e.g. `UNABLE_TO_LOCK_ROW`), from the client's one table.
    pub fn class(&self) -> ErrorClass {
        classify(None, &self.error.code)
    }
}

/// A job's three result files, each row mapped back by its reference value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkResults {
    pub successful: Vec<BulkSuccess>,
    pub failed: Vec<BulkFailure>,
    /// References of rows never processed (job aborted or failed).
    pub unprocessed: Vec<String>,
}

#[derive(Debug)]
enum Poll {
    NotYet(BulkJobInfo),
    Error(SfError),
}

impl SalesforceClient {
    /// Split `rows` into parts of at most `max_part_bytes` (≤ [`MAX_UPLOAD_BYTES`]) and for each one create a
    /// job, report its id to `created` (store it durably there), upload and close it. Returns every part's job.
    /// On an error the part's job is aborted and the error returned; parts before it are already closed and
    /// processing (the caller has their ids from `created`).
    #[instrument(name = "salesforce", skip_all, fields(op = "bulk_submit", object = %spec.object, rows = rows.len()))]
    pub async fn bulk_submit(
        &self,
        spec: &IngestSpec,
        rows: &BulkRows,
        max_part_bytes: usize,
        mut created: impl FnMut(&str),
    ) -> Result<Vec<BulkPart>, SfError> {
        if max_part_bytes > MAX_UPLOAD_BYTES {
            return Err(SfError::Usage(format!(
                "parts may hold at most {MAX_UPLOAD_BYTES} bytes"
            )));
        }
        let mut jobs = Vec::new();
        for (csv, count) in rows.parts(max_part_bytes)? {
            let job = self.bulk_create_job(spec).await?;
            created(&job.id);
            self.bulk_send(&job.id, csv).await?;
            tracing::debug!(rows = count, "Bulk job closed");
            jobs.push(BulkPart {
                job_id: job.id,
                rows: count,
            });
        }
        Ok(jobs)
    }

    /// Uploads a job's one CSV and closes it; on an error the job is aborted (so nothing half-sent is processed
    /// later) and the error returned.
    pub async fn bulk_send(&self, job_id: &str, csv: Bytes) -> Result<(), SfError> {
        let sent = match self.bulk_upload(job_id, csv).await {
            Ok(()) => self.bulk_close(job_id).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if sent.is_err()
            && let Err(abort) = self.bulk_abort(job_id).await
        {
            tracing::warn!(code = abort.code(), "could not abort a half-sent Bulk job");
        }
        sent
    }

    /// `POST /jobs/ingest`: a new `Open` job.
    #[instrument(name = "salesforce", skip_all, fields(op = "bulk_create", object = %spec.object))]
    pub async fn bulk_create_job(&self, spec: &IngestSpec) -> Result<BulkJobInfo, SfError> {
        let mut body = json!({
            "object": spec.object,
            "operation": spec.operation.wire(),
            "contentType": "CSV",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        });
        if let Some(field) = &spec.external_id_field {
            body["externalIdFieldName"] = field.clone().into();
        }
        let response = self
            .send(|c| Ok(c.data(Method::POST, &["jobs", "ingest"])?.json(&body)))
            .await?;
        read_json(response).await
    }

    /// `PUT /jobs/ingest/{id}/batches`: the job's one CSV upload (≤ [`MAX_UPLOAD_BYTES`]).
    #[instrument(name = "salesforce", skip_all, fields(op = "bulk_upload", bytes = csv.len()))]
    pub async fn bulk_upload(&self, job_id: &str, csv: Bytes) -> Result<(), SfError> {
        if csv.len() > MAX_UPLOAD_BYTES {
            return Err(SfError::Usage(format!(
                "an upload may hold at most {MAX_UPLOAD_BYTES} bytes"
            )));
        }
        self.send(|c| {
            Ok(c.data(Method::PUT, &["jobs", "ingest", job_id, "batches"])?
                .header(CONTENT_TYPE, "text/csv")
                .body(csv.clone()))
        })
        .await?;
        Ok(())
    }

    /// `PATCH /jobs/ingest/{id}` `{"state":"UploadComplete"}`: processing starts.
    pub async fn bulk_close(&self, job_id: &str) -> Result<BulkJobInfo, SfError> {
        self.bulk_set_state(job_id, "UploadComplete").await
    }

    /// `PATCH /jobs/ingest/{id}` `{"state":"Aborted"}`: rows not yet processed stay unprocessed.
    pub async fn bulk_abort(&self, job_id: &str) -> Result<BulkJobInfo, SfError> {
        self.bulk_set_state(job_id, "Aborted").await
    }

    #[instrument(name = "salesforce", skip_all, fields(op = "bulk_state", state = %state))]
    async fn bulk_set_state(&self, job_id: &str, state: &str) -> Result<BulkJobInfo, SfError> {
        let body = json!({ "state": state });
        let response = self
            .send(|c| {
                Ok(c.data(Method::PATCH, &["jobs", "ingest", job_id])?
                    .json(&body))
            })
            .await?;
        read_json(response).await
    }

    /// `GET /jobs/ingest/{id}`.
    #[instrument(name = "salesforce", skip_all, fields(op = "bulk_job"))]
    pub async fn bulk_job(&self, job_id: &str) -> Result<BulkJobInfo, SfError> {
        let response = self
            .send(|c| c.data(Method::GET, &["jobs", "ingest", job_id]))
            .await?;
        read_json(response).await
    }

    /// `DELETE /jobs/ingest/{id}` (a closed job; its results go with it).
    #[instrument(name = "salesforce", skip_all, fields(op = "bulk_delete"))]
    pub async fn bulk_delete(&self, job_id: &str) -> Result<(), SfError> {
        self.send(|c| c.data(Method::DELETE, &["jobs", "ingest", job_id]))
            .await?;
        Ok(())
    }

    /// Poll until the job is terminal (or `policy.give_up_after` passes: then the last, non-terminal info is
    /// returned and the caller can wait again later). Retryable errors are retried within the same backoff. A job
    /// found `Open` is aborted: nobody will upload to it any more (see the module doc on resuming).
    pub async fn bulk_wait(
        &self,
        job_id: &str,
        policy: PollPolicy,
    ) -> Result<BulkJobInfo, SfError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.first_delay)
            .with_max_delay(policy.max_delay)
            .with_factor(2.0)
            .without_max_times()
            .with_total_delay(Some(policy.give_up_after));
        let outcome = (|| async {
            match self.bulk_job(job_id).await {
                Ok(info) if info.state == BulkJobState::Open => {
                    self.bulk_abort(job_id).await.map_err(Poll::Error)
                }
                Ok(info) if info.state.is_terminal() => Ok(info),
                Ok(info) => Err(Poll::NotYet(info)),
                Err(e) => Err(Poll::Error(e)),
            }
        })
        .retry(backoff)
        .when(|p: &Poll| match p {
            Poll::NotYet(_) => true,
            Poll::Error(e) => e.class() == ErrorClass::Retryable,
        })
        .await;
        match outcome {
            Ok(info) | Err(Poll::NotYet(info)) => Ok(info),
            Err(Poll::Error(e)) => Err(e),
        }
    }

    /// The job's successful, failed and unprocessed rows, mapped back by `reference_column`. Each of the three
    /// reads is retried a few times on a retryable error.
    #[instrument(name = "salesforce", skip_all, fields(op = "bulk_results"))]
    pub async fn bulk_results(
        &self,
        job_id: &str,
        reference_column: &str,
    ) -> Result<BulkResults, SfError> {
        let successful = self
            .bulk_result_file(
                job_id,
                "successfulResults",
                reference_column,
                &["sf__Id", "sf__Created"],
                |row| BulkSuccess {
                    id: row.get("sf__Id").unwrap_or_default(),
                    created: row.get("sf__Created").is_some_and(|c| c == "true"),
                    reference: row.reference,
                },
            )
            .await?;
        let failed = self
            .bulk_result_file(
                job_id,
                "failedResults",
                reference_column,
                &["sf__Id", "sf__Error"],
                |row| BulkFailure {
                    id: row.get("sf__Id").filter(|id| !id.is_empty()),
                    error: parse_error(&row.get("sf__Error").unwrap_or_default()),
                    reference: row.reference,
                },
            )
            .await?;
        let unprocessed = self
            .bulk_result_file(job_id, "unprocessedrecords", reference_column, &[], |row| {
                row.reference
            })
            .await?;
        let results = BulkResults {
            successful,
            failed,
            unprocessed,
        };
        Ok(results)
    }

    /// One result file's rows, streamed (see `bulk_results.rs`), each turned into a `T` by `each`; the read is
    /// retried a few times on a retryable error (from the start: the rows of a broken read are dropped).
    async fn bulk_result_file<T>(
        &self,
        job_id: &str,
        kind: &str,
        reference_column: &str,
        wanted: &[&'static str],
        mut each: impl FnMut(ResultRow) -> T,
    ) -> Result<Vec<T>, SfError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            let mut out = Vec::new();
            let read = self
                .read_result_file(job_id, kind, reference_column, wanted, &mut |row| {
                    out.push(each(row));
                })
                .await;
            match read {
                Ok(()) => return Ok(out),
                Err(e) if e.class() == ErrorClass::Retryable && attempt < 6 => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_result_file(
        &self,
        job_id: &str,
        kind: &str,
        reference_column: &str,
        wanted: &[&'static str],
        each: &mut impl FnMut(ResultRow),
    ) -> Result<(), SfError> {
        let mut response = self
            .send(|c| {
                Ok(c.data(Method::GET, &["jobs", "ingest", job_id, kind])?
                    .header(ACCEPT, "text/csv"))
            })
            .await?;
        let mut stream = ResultStream::new(reference_column, wanted);
        while let Some(chunk) = response.chunk().await.map_err(SfError::transport)? {
            stream.feed(&chunk, each)?;
        }
        stream.finish(each)
    }
}

/// `CODE:message:field,field --` → an [`ApiError`]; the message may itself hold colons.
fn parse_error(text: &str) -> ApiError {
    let text = text.trim_end().trim_end_matches("--").trim_end();
    let (code, rest) = text.split_once(':').unwrap_or((text, ""));
    let (message, fields) = rest.rsplit_once(':').unwrap_or((rest, ""));
    ApiError {
        code: code.to_owned(),
        message: message.to_owned(),
        fields: fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sf_error_text_is_split_into_code_message_and_fields() {
        let e = parse_error(
            "STRING_TOO_LONG:Account_Number__c: data value too large: x:y (max length=30):Account_Number__c --",
        );
        assert_eq!(e.code, "STRING_TOO_LONG");
        assert_eq!(
            e.message,
            "Account_Number__c: data value too large: x:y (max length=30)"
        );
        assert_eq!(e.fields, ["Account_Number__c"]);
        let bare =
            parse_error("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record: --");
        assert_eq!(
            (bare.code.as_str(), bare.fields.len()),
            ("UNABLE_TO_LOCK_ROW", 0)
        );
    }

    #[test]
    fn parts_respect_the_byte_limit_and_repeat_the_header() {
        let mut rows = BulkRows::new(vec!["Key__c".into(), "Name".into()], "Key__c").unwrap();
        for i in 0..10 {
            rows.push(vec![format!("K{i}"), "a, \"quoted\" name".into()])
                .unwrap();
        }
        let parts = rows.parts(80).unwrap();
        assert!(parts.len() > 1);
        assert_eq!(parts.iter().map(|(_, n)| n).sum::<usize>(), 10);
        for (csv, _) in &parts {
            assert!(csv.len() <= 80);
            assert!(csv.starts_with(b"Key__c,Name\n"));
        }
        assert!(
            rows.parts(20).is_err(),
            "a row larger than a part is refused"
        );
    }

    #[test]
    fn references_must_be_unique_and_present() {
        let mut rows = BulkRows::new(vec!["Key__c".into()], "Key__c").unwrap();
        rows.push(vec!["A".into()]).unwrap();
        assert!(rows.push(vec!["A".into()]).is_err());
        assert!(rows.push(vec![String::new()]).is_err());
        assert!(rows.push(vec!["B".into(), "extra".into()]).is_err());
        assert!(BulkRows::new(vec!["Name".into()], "Key__c").is_err());
    }
}
