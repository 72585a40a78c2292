//! Processing a closed Bulk API 2.0 ingest job in the background, through the same write path the REST API uses
//! (`Org::create`/`update`/`delete` and the collections upsert), so a row fails with exactly the error a REST
//! write of it would get (`STRING_TOO_LONG`, a restricted picklist, a missing required field …).
//!
//! Rows are applied in chunks, each under one hold of the org's write lock, with a yield between chunks so REST
//! calls and polls interleave with a large job, and an abort stops the job at the next chunk (the rest of the
//! rows stay unprocessed). Injected faults apply to the job's HTTP calls (the REST gate), not to its rows.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::AppState;
use super::bulk_csv::{self, Table};
use super::bulk_job::{JobState, Operation, Outcome};
use super::collections::upsert_one;
use super::error::RecordError;
use super::org::{ObjectSchema, Org, Record};
use super::rest::create_record;

/// Rows applied per hold of the org's write lock.
const CHUNK: usize = 200;

/// Start processing job `id` (just moved to `UploadComplete`).
pub fn spawn(st: AppState, id: String) {
    tokio::spawn(run(st, id));
}

/// What the worker needs, read once under the jobs lock.
struct Plan {
    operation: Operation,
    object: String,
    external_id: Option<String>,
    user: String,
    schema: Arc<ObjectSchema>,
    fields: Vec<String>,
    table: Arc<Table>,
}

async fn run(st: AppState, id: String) {
    let started = Instant::now();
    let Some(plan) = prepare(&st, &id) else {
        return;
    };
    for (n, rows) in plan.table.rows.chunks(CHUNK).enumerate() {
        let outcomes: Vec<Outcome> = {
            let mut org = st.org.write();
            let now = Utc::now();
            rows.iter()
                .map(|row| apply(&mut org, &plan, row, now))
                .collect()
        };
        {
            let mut bulk = st.bulk.lock();
            let Ok(job) = bulk.get_mut(&id) else {
                return; // reset or deleted meanwhile
            };
            if job.state != JobState::InProgress {
                return; // aborted: the remaining rows stay unprocessed
            }
            job.failed += outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Failed { .. }))
                .count() as u64;
            job.outcomes.extend(outcomes);
            job.processing_ms = started.elapsed().as_millis() as u64;
            if (n + 1) * CHUNK >= plan.table.rows.len() {
                let _ = job.transition(JobState::JobComplete);
            }
        }
        tokio::task::yield_now().await;
    }
    if plan.table.rows.is_empty()
        && let Ok(job) = st.bulk.lock().get_mut(&id)
        && job.state == JobState::InProgress
    {
        let _ = job.transition(JobState::JobComplete);
    }
}

/// `UploadComplete → InProgress`, parse the upload and check its header; on a problem the job is `Failed`.
fn prepare(st: &AppState, id: &str) -> Option<Plan> {
    let schema = {
        let bulk = st.bulk.lock();
        let object = bulk.jobs.get(id)?.object.clone();
        let org = st.org.read();
        org.objects().iter().find(|o| o.name == object)?.clone()
    };
    let mut bulk = st.bulk.lock();
    let today = Utc::now().date_naive();
    let rows = {
        let job = bulk.get_mut(id).ok()?;
        job.transition(JobState::InProgress).ok()?;
        let delimiter = bulk_csv::delimiter(job.delimiter).map_or(b',', |(_, c)| c);
        let parsed = bulk_csv::parse(&job.uploads, delimiter);
        match parsed
            .and_then(|t| check_header(&schema, job.operation, job.external_id.as_deref(), t))
        {
            Ok(plan) => {
                job.uploads.clear();
                plan
            }
            Err(message) => {
                job.fail(message);
                return None;
            }
        }
    };
    let allowed = bulk.take_records(rows.1.rows.len() as u64, today);
    let job = bulk.get_mut(id).ok()?;
    let table = Arc::new(rows.1);
    job.data = Some(table.clone());
    if !allowed {
        job.fail("ExceededQuota : The daily limit of records processed by Bulk API 2.0 is reached");
        return None;
    }
    Some(Plan {
        operation: job.operation,
        object: job.object.clone(),
        external_id: job.external_id.clone(),
        user: job.created_by.clone(),
        schema,
        fields: rows.0,
        table,
    })
}

/// The header's canonical field names, and the columns each operation needs.
fn check_header(
    schema: &ObjectSchema,
    operation: Operation,
    external_id: Option<&str>,
    table: Table,
) -> Result<(Vec<String>, Table), String> {
    let fields = bulk_csv::resolve_header(schema, &table.header)?;
    let needed = match operation {
        Operation::Upsert => external_id,
        Operation::Update | Operation::Delete => Some("Id"),
        Operation::Insert => None,
    };
    if let Some(needed) = needed
        && !fields.iter().any(|f| f.eq_ignore_ascii_case(needed))
    {
        return Err(format!(
            "InvalidBatch : Field name not found : {needed} (required for {})",
            operation.name()
        ));
    }
    if operation == Operation::Delete && fields.len() != 1 {
        return Err("InvalidBatch : The 'delete' batch must contain only 'Id'".to_owned());
    }
    Ok((fields, table))
}

fn apply(org: &mut Org, plan: &Plan, row: &[String], now: chrono::DateTime<Utc>) -> Outcome {
    let result = bulk_csv::row_record(&plan.schema, &plan.fields, row).and_then(|rec| {
        let object = plan.object.as_str();
        match plan.operation {
            Operation::Insert => create_record(org, object, &rec, &plan.user).map(|id| (id, true)),
            Operation::Upsert => {
                let key = plan.external_id.as_deref().unwrap_or("Id");
                upsert_one(org, object, key, &rec, &plan.user, now)
            }
            Operation::Update => {
                let (id, fields) = split_id(rec)?;
                org.update(object, &id, &fields, &plan.user, now)
                    .map(|id| (id, false))
            }
            Operation::Delete => {
                let (id, _) = split_id(rec)?;
                let id18 =
                    super::ids::normalize(&id).ok_or_else(|| RecordError::malformed_id(&id))?;
                org.delete(object, &id18, &plan.user, now)
                    .map(|()| (id18, false))
            }
        }
    });
    match result {
        Ok((id, created)) => Outcome::Done { id, created },
        Err(error) => failed(plan, row, error),
    }
}

fn failed(plan: &Plan, row: &[String], error: RecordError) -> Outcome {
    let id = plan
        .fields
        .iter()
        .position(|f| f == "Id")
        .and_then(|i| row.get(i))
        .filter(|v| !v.is_empty())
        .cloned();
    Outcome::Failed { id, error }
}

fn split_id(mut rec: Record) -> Result<(String, Record), RecordError> {
    let id = rec
        .remove("Id")
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| {
            RecordError::new(
                "MISSING_ARGUMENT",
                "Id not specified in an update call",
                vec![],
            )
        })?;
    Ok((id, rec))
}
