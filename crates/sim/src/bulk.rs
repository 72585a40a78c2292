//! Bulk API 2.0 ingest (`/services/data/vXX.X/jobs/ingest…`): create a job, upload its CSV once, close or abort
//! it, read its state, list and delete jobs, and fetch `successfulResults`, `failedResults` and
//! `unprocessedrecords` as CSV. Mounted under the REST gate, so every call is authenticated, counted in
//! `/__sim/stats`, subject to the daily limit and to `/__sim/faults` like any REST call.
//!
//! Processing happens in the background after `UploadComplete` (`bulk_run`); the job model and its state rules
//! are in `bulk_job`, the CSV reading and writing in `bulk_csv`.
//!
//! Error bodies are the REST error array. Codes follow Salesforce's Bulk error names (`INVALIDJOB`,
//! `INVALIDJOBSTATE`, `NOT_FOUND` for an unknown job); where Salesforce's exact message is not documented the
//! message is the simulator's own wording (docs/simulator.md lists which).

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::bulk_csv::{self, Table};
use super::bulk_job::{Job, JobState, Operation, Outcome};
use super::error::{ApiError, RecordError};
use super::gate::ApiVersion;
use super::oauth::Session;

/// The largest upload Salesforce accepts in one `PUT …/batches` (150 MB once base64-encoded on its side).
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/services/data/{version}/jobs/ingest",
            get(list).post(create),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}",
            get(info).patch(set_state).delete(delete),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/batches",
            put(upload),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/{results}",
            get(results),
        )
}

fn invalid_job(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALIDJOB", message)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    object: Option<String>,
    operation: Option<String>,
    external_id_field_name: Option<String>,
    content_type: Option<String>,
    line_ending: Option<String>,
    column_delimiter: Option<String>,
}

async fn create(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(version): Extension<ApiVersion>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::from(RecordError::json_parser(e.to_string())))?;
    let operation = req.operation.as_deref().unwrap_or_default();
    let operation = Operation::parse(operation).ok_or_else(|| {
        invalid_job(format!(
            "Invalid operation: '{operation}'. Valid operations are insert, upsert, update and delete"
        ))
    })?;
    if req.content_type.as_deref().is_some_and(|c| c != "CSV") {
        return Err(invalid_job("contentType must be CSV"));
    }
    let line_ending = match req.line_ending.as_deref().unwrap_or("LF") {
        "LF" => "LF",
        "CRLF" => "CRLF",
        other => return Err(invalid_job(format!("Invalid lineEnding: '{other}'"))),
    };
    let delimiter = req.column_delimiter.as_deref().unwrap_or("COMMA");
    let (delimiter, _) = bulk_csv::delimiter(delimiter)
        .ok_or_else(|| invalid_job(format!("Invalid columnDelimiter: '{delimiter}'")))?;
    let object = req.object.unwrap_or_default();
    let (object, external_id) = {
        let org = st.org.read();
        let schema = org.schema(&object).ok_or_else(|| {
            ApiError::bad_request(
                "INVALIDENTITY",
                format!("sObject type '{object}' is not supported."),
            )
        })?;
        let external_id = match (operation, req.external_id_field_name) {
            (Operation::Upsert, None) => {
                return Err(invalid_job(
                    "External ID field name is required for the upsert operation",
                ));
            }
            (Operation::Upsert, Some(field)) => Some(
                schema
                    .field(&field)
                    .filter(|f| f.external_id || f.name == "Id")
                    .map(|f| f.name.clone())
                    .ok_or_else(|| {
                        invalid_job(format!(
                            "The field name provided, {field}, does not match an External ID, Salesforce Id, \
                             or indexed field for {}",
                            schema.name
                        ))
                    })?,
            ),
            (_, _) => None,
        };
        (schema.name.clone(), external_id)
    };
    let now = Utc::now();
    let mut bulk = st.bulk.lock();
    let id = bulk.next_id();
    let job = Job {
        id: id.clone(),
        operation,
        object,
        external_id,
        created_by: session.user_id,
        created: now,
        modstamp: now,
        state: JobState::Open,
        api_version: version.0,
        line_ending,
        delimiter,
        uploads: Vec::new(),
        data: None,
        outcomes: Vec::new(),
        failed: 0,
        error_message: None,
        processing_ms: 0,
    };
    let body = job.summary_json();
    bulk.jobs.insert(id, job);
    Ok(Json(body))
}

async fn upload(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    // Check the job before reading a possibly large body.
    check_uploadable(st.bulk.lock().get_mut(&id)?)?;
    let data = axum::body::to_bytes(body, MAX_UPLOAD_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "EXCEEDED_MAX_SIZE_REQUEST",
                format!("The upload exceeds the maximum of {MAX_UPLOAD_BYTES} bytes per request"),
            )
        })?;
    if data.is_empty() {
        return Err(ApiError::bad_request(
            "INVALIDBATCH",
            "No content found in the request",
        ));
    }
    let mut bulk = st.bulk.lock();
    let job = bulk.get_mut(&id)?;
    check_uploadable(job)?;
    job.uploads.push(data);
    Ok(StatusCode::CREATED)
}

fn check_uploadable(job: &Job) -> Result<(), ApiError> {
    if job.state == JobState::Open {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "INVALIDJOBSTATE",
        format!(
            "Job {} is in state {}: data can be uploaded only to an Open job",
            job.id,
            job.state.name()
        ),
    ))
}

#[derive(Deserialize)]
struct StateBody {
    state: Option<String>,
}

async fn set_state(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: StateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::from(RecordError::json_parser(e.to_string())))?;
    let wanted = req.state.unwrap_or_default();
    let mut bulk = st.bulk.lock();
    let job = bulk.get_mut(&id)?;
    let to = match wanted.as_str() {
        "UploadComplete" => JobState::UploadComplete,
        "Aborted" => JobState::Aborted,
        other => {
            return Err(ApiError::bad_request(
                "INVALIDJOBSTATE",
                format!("Invalid state '{other}': a job can be set to UploadComplete or Aborted"),
            ));
        }
    };
    if to == JobState::UploadComplete && job.state == JobState::Open && job.uploads.len() > 1 {
        return Err(invalid_job(format!(
            "Found multipe contents for job: <{}>, please 'Close' / 'Abort' / 'Delete' the current Job then \
             create a new Job and make sure you only do 'PUT' once on a given Job.",
            job.id
        )));
    }
    job.transition(to).map_err(ApiError::from)?;
    let body = job.summary_json();
    let id = job.id.clone();
    drop(bulk);
    if to == JobState::UploadComplete {
        super::bulk_run::spawn(st, id);
    }
    Ok(Json(body))
}

async fn info(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(st.bulk.lock().get_mut(&id)?.info_json()))
}

async fn list(State(st): State<AppState>) -> Json<Value> {
    let bulk = st.bulk.lock();
    let mut jobs: Vec<&Job> = bulk.jobs.values().collect();
    jobs.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let records: Vec<Value> = jobs.iter().map(|j| j.summary_json()).collect();
    Json(json!({"done": true, "records": records, "nextRecordsUrl": null}))
}

async fn delete(
    State(st): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut bulk = st.bulk.lock();
    let job = bulk.get_mut(&id)?;
    if matches!(job.state, JobState::Open | JobState::InProgress) {
        return Err(ApiError::bad_request(
            "INVALIDJOBSTATE",
            format!(
                "Job {} is in state {}: only UploadComplete, JobComplete, Aborted or Failed jobs can be deleted",
                job.id,
                job.state.name()
            ),
        ));
    }
    let id = job.id.clone();
    bulk.jobs.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Clone, Copy)]
enum Results {
    Successful,
    Failed,
    Unprocessed,
}

async fn results(
    State(st): State<AppState>,
    Path((_, id, kind)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    // simple-salesforce asks for `unprocessedRecords`; the documented path is `unprocessedrecords`.
    let kind = match kind.to_ascii_lowercase().as_str() {
        "successfulresults" => Results::Successful,
        "failedresults" => Results::Failed,
        "unprocessedrecords" => Results::Unprocessed,
        _ => return Err(RecordError::not_found().into()),
    };
    let mut bulk = st.bulk.lock();
    let job = bulk.get_mut(&id)?;
    if !job.state.is_terminal() {
        return Err(ApiError::bad_request(
            "INVALIDJOBSTATE",
            format!(
                "Job {} is in state {}: results are available once the job is JobComplete, Failed or Aborted",
                job.id,
                job.state.name()
            ),
        ));
    }
    let csv = render(job, kind);
    Ok(([(header::CONTENT_TYPE, "text/csv")], csv).into_response())
}

/// One result file. Rows keep upload order (Salesforce does not promise an order; keeping it costs nothing).
fn render(job: &Job, kind: Results) -> String {
    let parsed;
    let table: &Table = match &job.data {
        Some(t) => t,
        None => {
            let delimiter = bulk_csv::delimiter(job.delimiter).map_or(b',', |(_, c)| c);
            parsed = bulk_csv::parse(&job.uploads, delimiter).unwrap_or_default();
            &parsed
        }
    };
    let delimiter = bulk_csv::delimiter(job.delimiter).map_or(',', |(_, c)| c as char);
    let mut out = String::new();
    if table.header.is_empty() {
        return out;
    }
    let own = table.header.iter().map(String::as_str);
    match kind {
        Results::Successful => {
            bulk_csv::write_line(
                &mut out,
                ["sf__Id", "sf__Created"].into_iter().chain(own),
                delimiter,
            );
            for (outcome, row) in job.outcomes.iter().zip(&table.rows) {
                if let Outcome::Done { id, created } = outcome {
                    let created = if *created { "true" } else { "false" };
                    let cells = [id.as_str(), created].into_iter();
                    bulk_csv::write_line(
                        &mut out,
                        cells.chain(row.iter().map(String::as_str)),
                        delimiter,
                    );
                }
            }
        }
        Results::Failed => {
            bulk_csv::write_line(
                &mut out,
                ["sf__Id", "sf__Error"].into_iter().chain(own),
                delimiter,
            );
            for (outcome, row) in job.outcomes.iter().zip(&table.rows) {
                if let Outcome::Failed { id, error } = outcome {
                    let text = bulk_csv::error_text(error);
                    let cells = [id.as_deref().unwrap_or(""), text.as_str()].into_iter();
                    bulk_csv::write_line(
                        &mut out,
                        cells.chain(row.iter().map(String::as_str)),
                        delimiter,
                    );
                }
            }
        }
        Results::Unprocessed => {
            bulk_csv::write_line(&mut out, own, delimiter);
            for row in table.rows.iter().skip(job.outcomes.len()) {
                bulk_csv::write_line(&mut out, row.iter().map(String::as_str), delimiter);
            }
        }
    }
    out
}
