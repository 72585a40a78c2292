//! Bulk API 2.0 ingest jobs as the org keeps them: the job's settings, its state machine
//! (`Open → UploadComplete → InProgress → JobComplete | Failed`, `Aborted` from any live state), the uploaded
//! data and one outcome per row once processed, and the job-info JSON Salesforce answers with.
//!
//! Kept apart from the routes (`bulk`) and the processing (`bulk_run`) so the state rules are in one place:
//! every transition a handler or the worker makes goes through [`Job::transition`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::bulk_csv::Table;
use super::error::RecordError;
use super::org::sf_datetime;

/// Records a day across all ingest jobs (Salesforce's org-wide Bulk API 2.0 allocation).
pub const DAILY_RECORD_LIMIT: u64 = 150_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::JobComplete | JobState::Failed | JobState::Aborted
        )
    }

    /// Whether `self → to` is a transition Salesforce allows.
    fn allows(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Open, UploadComplete)
                | (UploadComplete, InProgress)
                | (InProgress, JobComplete)
                | (UploadComplete | InProgress, Failed)
                | (Open | UploadComplete | InProgress, Aborted)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Insert,
    Upsert,
    Update,
    Delete,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "insert" => Some(Operation::Insert),
            "upsert" => Some(Operation::Upsert),
            "update" => Some(Operation::Update),
            "delete" => Some(Operation::Delete),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Upsert => "upsert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// What happened to one uploaded row.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done {
        id: String,
        created: bool,
    },
    Failed {
        id: Option<String>,
        error: RecordError,
    },
}

/// One ingest job.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub operation: Operation,
    pub object: String,
    pub external_id: Option<String>,
    pub created_by: String,
    pub created: DateTime<Utc>,
    pub modstamp: DateTime<Utc>,
    pub state: JobState,
    pub api_version: String,
    pub line_ending: &'static str,
    pub delimiter: &'static str,
    /// Each `PUT …/batches` body; Salesforce accepts one per job and refuses to close a job with more.
    pub uploads: Vec<Bytes>,
    /// The parsed upload, once processing started.
    pub data: Option<Arc<Table>>,
    /// One entry per processed row, in upload order.
    pub outcomes: Vec<Outcome>,
    pub failed: u64,
    pub error_message: Option<String>,
    pub processing_ms: u64,
}

impl Job {
    /// Move to `to`, or say why not (`INVALIDJOBSTATE`).
    pub fn transition(&mut self, to: JobState) -> Result<(), RecordError> {
        if !self.state.allows(to) {
            return Err(RecordError::new(
                "INVALIDJOBSTATE",
                format!(
                    "Job {} cannot change state from {} to {}",
                    self.id,
                    self.state.name(),
                    to.name()
                ),
                vec![],
            ));
        }
        self.state = to;
        self.modstamp = Utc::now();
        Ok(())
    }

    pub fn fail(&mut self, message: impl Into<String>) {
        self.state = JobState::Failed;
        self.error_message = Some(message.into());
        self.modstamp = Utc::now();
    }

    /// The `contentUrl` Salesforce gives (no leading slash).
    pub fn content_url(&self) -> String {
        format!(
            "services/data/v{}/jobs/ingest/{}/batches",
            self.api_version, self.id
        )
    }

    /// The short form: what create, close/abort and the job list answer with.
    pub fn summary_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "operation": self.operation.name(),
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": sf_datetime(self.created),
            "systemModstamp": sf_datetime(self.modstamp),
            "state": self.state.name(),
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": self.api_version.parse::<f64>().unwrap_or(0.0),
            "jobType": "V2Ingest",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        });
        if let Some(field) = &self.external_id {
            v["externalIdFieldName"] = field.clone().into();
        }
        if self.state == JobState::Open {
            v["contentUrl"] = self.content_url().into();
        }
        v
    }

    /// The full form of `GET …/jobs/ingest/{id}`, with counts and timings.
    pub fn info_json(&self) -> Value {
        let mut v = self.summary_json();
        v["numberRecordsProcessed"] = (self.outcomes.len() as u64).into();
        v["numberRecordsFailed"] = self.failed.into();
        v["retries"] = 0.into();
        v["totalProcessingTime"] = self.processing_ms.into();
        v["apiActiveProcessingTime"] = self.processing_ms.into();
        v["apexProcessingTime"] = 0.into();
        if let Some(message) = &self.error_message {
            v["errorMessage"] = message.clone().into();
        }
        v
    }
}

/// Every ingest job of the org, and the day's record count against [`DAILY_RECORD_LIMIT`].
#[derive(Debug, Default)]
pub struct Jobs {
    pub jobs: HashMap<String, Job>,
    seq: u64,
    pub records_today: u64,
    pub day: Option<chrono::NaiveDate>,
}

impl Jobs {
    /// A fresh job id with Salesforce's `750` key prefix.
    pub fn next_id(&mut self) -> String {
        self.seq += 1;
        super::ids::generate("750", self.seq)
    }

    /// Count `n` records against today's allocation; `false` when it would be exceeded.
    pub fn take_records(&mut self, n: u64, today: chrono::NaiveDate) -> bool {
        if self.day != Some(today) {
            self.day = Some(today);
            self.records_today = 0;
        }
        if self.records_today + n > DAILY_RECORD_LIMIT {
            return false;
        }
        self.records_today += n;
        true
    }

    /// A job by id, case-insensitively on the 18-character form as Salesforce ids are.
    pub fn get_mut(&mut self, id: &str) -> Result<&mut Job, RecordError> {
        let id = super::ids::normalize(id).ok_or_else(RecordError::not_found)?;
        self.jobs.get_mut(&id).ok_or_else(RecordError::not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::JobState::*;

    #[test]
    fn only_documented_transitions_are_allowed() {
        assert!(Open.allows(UploadComplete));
        assert!(Open.allows(Aborted));
        assert!(InProgress.allows(Aborted));
        assert!(!Open.allows(JobComplete));
        assert!(!UploadComplete.allows(UploadComplete));
        for terminal in [JobComplete, Failed, Aborted] {
            assert!(terminal.is_terminal());
            for to in [
                Open,
                UploadComplete,
                InProgress,
                JobComplete,
                Failed,
                Aborted,
            ] {
                assert!(!terminal.allows(to), "{terminal:?} -> {to:?}");
            }
        }
    }
}
