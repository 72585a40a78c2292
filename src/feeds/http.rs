//! The feeds' bank API: `POST /api/v1/uploads` (streamed, encrypted, durable before `202`), the upload
//! history, per-row verdicts, `errors.csv`, and the reason-code registry.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Feeds;
use super::ledger::IdemEntry;
use super::model::{Counts, Format, Outcome, Status, Upload};
use super::reasons::REGISTRY;
use super::rows::{HeaderError, csv_header};
use super::spool::{SpoolKey, SpoolWriter};
use super::validate::KIND;
use crate::intake::problem::ProblemType;
use crate::intake::{
    ApiError, Authenticated, Authenticator, FieldError, IdempotencyKey, Principal, Problem,
    query_of,
};
use crate::ops::metrics as m;

/// The media types an upload may have.
const ACCEPTED: [&str; 4] = [
    "text/csv",
    "application/x-ndjson",
    "application/xml",
    "text/xml",
];
/// The media types of a bank whose mapping does not accept XML.
const ACCEPTED_NO_XML: [&str; 2] = ["text/csv", "application/x-ndjson"];
/// Plaintext buffered before each blocking spool write.
const WRITE_CHUNK: usize = 1024 * 1024;
/// The header line must end within this many bytes.
const MAX_HEADER: usize = 64 * 1024;
/// An idempotency claim without an upload record is abandoned after this long.
const ABANDONED_CLAIM: Duration = Duration::from_secs(60);

impl FromRef<Feeds> for Authenticator {
    fn from_ref(feeds: &Feeds) -> Self {
        feeds.inner.auth.clone()
    }
}

/// The feeds' routes (mounted next to the report-request routes, under the same limits).
pub fn router(feeds: Feeds) -> Router {
    Router::new()
        .route("/api/v1/uploads", post(create_upload).get(list_uploads))
        .route("/api/v1/uploads/{id}", get(get_upload))
        .route("/api/v1/uploads/{id}/records", get(get_records))
        .route("/api/v1/uploads/{id}/errors.csv", get(get_errors_csv))
        .route("/api/v1/reason-codes", get(reason_codes))
        .method_not_allowed_fallback(crate::intake::api::method_not_allowed)
        .with_state(feeds)
}

fn not_found() -> Response {
    Problem::new(
        ProblemType::NotFound,
        "No upload of your bank has this id. Use the `id` from the answer to POST /api/v1/uploads.",
    )
    .into_response()
}

async fn reason_codes() -> Json<Value> {
    Json(json!({ "reason_codes": REGISTRY }))
}

#[derive(Debug, Deserialize)]
struct NameQuery {
    name: Option<String>,
}

/// The media type of the upload, or the 415 that refuses it.
fn format_of(headers: &HeaderMap) -> Result<Format, Box<Problem>> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let refuse = || Box::new(Problem::unsupported_media_type(raw, &ACCEPTED));
    let raw_value = raw.ok_or_else(refuse)?;
    let mut parts = raw_value.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    for param in parts {
        if let Some((k, v)) = param.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
            && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(refuse());
        }
    }
    match media.as_str() {
        "text/csv" => Ok(Format::Csv),
        "application/x-ndjson" | "application/ndjson" => Ok(Format::Ndjson),
        "application/xml" | "text/xml" => Ok(Format::Xml),
        _ => Err(refuse()),
    }
}

/// A display name for the upload: `?name=`, else the `Content-Disposition` file name, else a generated one.
/// Only printable characters, at most 200.
fn upload_name(query: Option<String>, headers: &HeaderMap, format: Format) -> String {
    let from_header = headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("filename=").nth(1))
        .map(|f| {
            f.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"')
                .to_owned()
        });
    let name: String = query
        .or(from_header)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if name.trim().is_empty() {
        let ext = match format {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Xml => "xml",
        };
        format!("upload-{}.{ext}", Utc::now().format("%Y%m%dT%H%M%SZ"))
    } else {
        name.trim().to_owned()
    }
}

/// Checks the header line (CSV) or first line (NDJSON) against the bank's mapping; the columns rows will
/// be aligned to.
fn check_head(
    feeds: &Feeds,
    principal: &Principal,
    format: Format,
    head: &[u8],
) -> Result<Vec<String>, Box<Problem>> {
    check_head_unboxed(feeds, principal, format, head).map_err(Box::new)
}

#[allow(clippy::result_large_err)] // boxed by its one caller, `check_head`
fn check_head_unboxed(
    feeds: &Feeds,
    principal: &Principal,
    format: Format,
    head: &[u8],
) -> Result<Vec<String>, Problem> {
    let mappings = feeds.inner.mappings.load();
    let fields = mappings.inbound_fields(KIND, Some(&principal.bank_code));
    if fields.is_empty() {
        return Err(Problem::forbidden(
            "Your bank has no credit record mapping; ask the bureau to enable uploads.",
        ));
    }
    let known: Vec<&str> = fields.iter().map(|f| f.from.as_str()).collect();
    match format {
        // The whole document is checked once it is spooled (`check_xml`): elements, not a header line.
        Format::Xml => Ok(known.iter().map(|s| (*s).to_owned()).collect()),
        Format::Ndjson => {
            let first = head
                .split(|b| *b == b'\n')
                .find(|l| !l.iter().all(u8::is_ascii_whitespace))
                .ok_or_else(|| {
                    Problem::malformed_body(
                        "The upload is empty: NDJSON needs one JSON object per line.",
                        None,
                    )
                })?;
            match serde_json::from_slice::<Value>(first) {
                Ok(Value::Object(_)) => Ok(known.iter().map(|s| (*s).to_owned()).collect()),
                _ => Err(Problem::malformed_body(
                    "The first line is not a JSON object: this is not NDJSON (one JSON object per line).",
                    None,
                )),
            }
        }
        Format::Csv => {
            let columns = csv_header(head).map_err(|e| match e {
                HeaderError::Empty => Problem::malformed_body(
                    "The upload has no header row: the first line must name the columns.",
                    None,
                ),
                HeaderError::NotUtf8 => {
                    Problem::malformed_body("The header row is not UTF-8 text.", None)
                }
                HeaderError::NotCsv(_) => {
                    Problem::malformed_body("The header row is not CSV (RFC 4180).", None)
                }
            })?;
            let mut errors = Vec::new();
            for (i, c) in columns.iter().enumerate() {
                let pointer = format!("/header/{i}");
                if c.is_empty() {
                    errors.push(FieldError::new(
                        pointer,
                        "empty_column",
                        "A header column has no name.",
                    ));
                } else if !known.contains(&c.as_str()) {
                    let shown: String = c.chars().filter(|ch| !ch.is_control()).take(64).collect();
                    errors.push(FieldError::new(pointer, "unknown_column", format!("Unknown column '{shown}'; see GET /api/v1/openapi.json or the feed documentation for the columns.")));
                } else if columns[..i].contains(c) {
                    errors.push(FieldError::new(
                        pointer,
                        "duplicate_column",
                        format!("Column '{c}' appears twice."),
                    ));
                }
            }
            for f in fields.iter().filter(|f| f.required) {
                if !columns.contains(&f.from) {
                    errors.push(FieldError::new(
                        "/header",
                        "missing_column",
                        format!("Required column '{}' is missing.", f.from),
                    ));
                }
            }
            if errors.is_empty() {
                Ok(columns)
            } else {
                Err(Problem::validation(errors))
            }
        }
    }
}

/// Why streaming the body stopped early.
enum Refusal {
    Problem(Box<Problem>),
    Api(ApiError),
}

impl From<Problem> for Refusal {
    fn from(p: Problem) -> Self {
        Refusal::Problem(Box::new(p))
    }
}

impl From<Box<Problem>> for Refusal {
    fn from(p: Box<Problem>) -> Self {
        Refusal::Problem(p)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Problem(p) => p.into_response(),
            Refusal::Api(e) => e.into_response(),
        }
    }
}

async fn create_upload(
    State(feeds): State<Feeds>,
    Authenticated(principal): Authenticated,
    key: Option<IdempotencyKey>,
    query: Result<Query<NameQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = match query_of(query) {
        Ok(query) => query,
        Err(refusal) => return refusal.into_response(),
    };
    match accept_upload(&feeds, principal, key, query, &headers, body).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn accept_upload(
    feeds: &Feeds,
    principal: Principal,
    key: Option<IdempotencyKey>,
    query: NameQuery,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let format = format_of(headers)?;
    if format == Format::Xml
        && feeds
            .inner
            .mappings
            .load()
            .accepts_xml(KIND, Some(&principal.bank_code))
            .is_none()
    {
        let raw = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        return Err(Problem::unsupported_media_type(raw, &ACCEPTED_NO_XML).into());
    }
    // The bank's upload quota, before the body is read (nothing stored on refusal).
    if let Some(quota) = &feeds.inner.quota {
        quota
            .take(&principal.bank_code, std::time::Instant::now())
            .map_err(|retry_after| Refusal::Api(ApiError::RateLimited { retry_after }))?;
    }
    let max = feeds.inner.settings.max_bytes;
    let too_large = || Problem::body_too_large(usize::try_from(max).ok());
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(too_large().into());
    }
    let name = upload_name(query.name, headers, format);
    let id = uuid::Uuid::now_v7().to_string();
    let path = feeds.spool_path(&id);
    let spool_key: SpoolKey = feeds.inner.keys.active().clone();
    let writer = {
        let (path, id) = (path.clone(), id.clone());
        tokio::task::spawn_blocking(move || SpoolWriter::create(&path, &spool_key, &id))
            .await
            .map_err(|e| Refusal::Api(ApiError::internal(e)))?
            .map_err(|e| Refusal::Api(ApiError::unavailable(Some(Duration::from_secs(5)), e)))?
    };
    // Whatever happens from here on, a refused upload leaves no spool behind.
    let streamed = stream_body(feeds, &principal, format, body, writer, &path, max).await;
    let streamed = match streamed {
        Ok(done) if format == Format::Xml => check_xml(feeds, &id, &principal.bank_code)
            .await
            .map(|()| done),
        other => other,
    };
    let (columns, sha256, bytes) = match streamed {
        Ok(done) => done,
        Err(refusal) => {
            let _ = std::fs::remove_file(&path);
            return Err(refusal);
        }
    };
    let upload = Upload {
        id: id.clone(),
        tenant: principal.account_id.clone(),
        bank_code: principal.bank_code.clone(),
        name,
        format,
        status: Status::Received,
        received_at: Utc::now(),
        completed_at: None,
        counts: Counts::default(),
        bytes,
        sha256: sha256.clone(),
        failure: None,
        columns,
        batches_done: 0,
        bulk_batches: None,
    };
    let recorded = record(feeds, &principal, key.as_ref(), &upload).await;
    let (upload, replayed) = match recorded {
        Ok(found) => found,
        Err(refusal) => {
            let _ = std::fs::remove_file(&path);
            return Err(refusal);
        }
    };
    if replayed {
        let _ = std::fs::remove_file(&path);
    } else {
        metrics::counter!(m::UPLOADS_TOTAL, "status" => "received").increment(1);
        tracing::info!(upload_id = %upload.id, bank = %principal.bank_code, bytes, "upload received");
        feeds.wake();
    }
    let status_url = feeds.status_url(&upload.id);
    let mut response = (
        StatusCode::ACCEPTED,
        Json(
            json!({ "id": upload.id, "status": upload.status.as_str(), "status_url": status_url }),
        ),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Streams the body into the spool (checking the head as soon as its first line is complete), then makes
/// it durable. Returns the columns, the body's SHA-256 (hex) and its size.
async fn stream_body(
    feeds: &Feeds,
    principal: &Principal,
    format: Format,
    body: Body,
    writer: SpoolWriter,
    path: &std::path::Path,
    max: u64,
) -> Result<(Vec<String>, String, u64), Refusal> {
    let mut writer = Some(writer);
    let mut stream = body.into_data_stream();
    let mut hash = Sha256::new();
    let mut head: Vec<u8> = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
    let mut total: u64 = 0;
    let unavailable =
        |e: std::io::Error| Refusal::Api(ApiError::unavailable(Some(Duration::from_secs(5)), e));
    loop {
        let frame = stream.next().await;
        let end = frame.is_none();
        if let Some(frame) = frame {
            let data = frame.map_err(|_| {
                Problem::malformed_body("The upload body could not be read to its end.", None)
            })?;
            total += data.len() as u64;
            if total > max {
                return Err(Problem::body_too_large(usize::try_from(max).ok()).into());
            }
            hash.update(&data);
            if columns.is_none() && head.len() < MAX_HEADER {
                head.extend_from_slice(&data[..data.len().min(MAX_HEADER - head.len())]);
            }
            pending.extend_from_slice(&data);
        }
        if columns.is_none() {
            let has_line = format == Format::Xml || head.contains(&b'\n');
            if has_line || end || head.len() >= MAX_HEADER {
                if !has_line && !end {
                    return Err(Problem::malformed_body(
                        "The header row is longer than 64 KiB.",
                        None,
                    )
                    .into());
                }
                columns = Some(check_head(feeds, principal, format, &head)?);
                head = Vec::new();
            }
        }
        if pending.len() >= WRITE_CHUNK || (end && !pending.is_empty()) {
            let mut w = writer.take().expect("writer");
            let data = std::mem::take(&mut pending);
            let w = tokio::task::spawn_blocking(move || w.write(&data).map(|()| w))
                .await
                .map_err(|e| Refusal::Api(ApiError::internal(e)))?
                .map_err(unavailable)?;
            writer = Some(w);
        }
        if end {
            break;
        }
    }
    let w = writer.take().expect("writer");
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || w.finish(&path))
        .await
        .map_err(|e| Refusal::Api(ApiError::internal(e)))?
        .map_err(unavailable)?;
    Ok((
        columns.unwrap_or_default(),
        hex::encode(hash.finalize()),
        total,
    ))
}

/// Reads a spooled XML upload through once (streaming) so a document that is not well-formed, not safe
/// (`<!DOCTYPE>`, entities) or not of the mapping's root is refused before anything is recorded.
async fn check_xml(feeds: &Feeds, id: &str, bank_code: &str) -> Result<(), Refusal> {
    let (feeds, id, bank_code) = (feeds.clone(), id.to_owned(), bank_code.to_owned());
    let scanned = tokio::task::spawn_blocking(move || -> Result<(), Refusal> {
        let mappings = feeds.inner.mappings.load_full();
        let unavailable = |e: super::FeedError| {
            Refusal::Api(ApiError::unavailable(Some(Duration::from_secs(5)), e))
        };
        let mut rows = super::worker::open_rows(&feeds, &id, &bank_code, Format::Xml, &mappings)
            .map_err(unavailable)?;
        loop {
            match rows.next_row() {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => {
                    let framing = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<super::xml::Framing>());
                    return Err(match framing {
                        Some(f) => {
                            let err = crate::intake::XmlError {
                                kind: f.kind.clone(),
                                position: None,
                            };
                            Refusal::Problem(Box::new(
                                crate::intake::body::xml_problem(&err)
                                    .with_extra("offset", f.offset),
                            ))
                        }
                        None => unavailable(super::FeedError::Io(e)),
                    });
                }
            }
        }
    });
    scanned
        .await
        .map_err(|e| Refusal::Api(ApiError::internal(e)))?
}

/// Records the upload durably, honouring `Idempotency-Key`: returns the upload to answer with and whether
/// it is an earlier one (a replay).
async fn record(
    feeds: &Feeds,
    principal: &Principal,
    key: Option<&IdempotencyKey>,
    upload: &Upload,
) -> Result<(Upload, bool), Refusal> {
    let ledger = &feeds.inner.ledger;
    let store_error =
        |e: super::FeedError| Refusal::Api(ApiError::unavailable(Some(Duration::from_secs(1)), e));
    if let Some(key) = key {
        let entry = IdemEntry {
            id: upload.id.clone(),
            sha256: upload.sha256.clone(),
            at: Utc::now(),
        };
        if let Some(existing) = ledger
            .claim_key(&principal.account_id, key.as_str(), &entry)
            .await
            .map_err(store_error)?
        {
            match ledger.get(&existing.id).await.map_err(store_error)? {
                Some(first) if existing.sha256 == upload.sha256 => return Ok((first, true)),
                Some(_) => return Err(Refusal::Api(ApiError::IdempotencyKeyReused)),
                None if Utc::now()
                    .signed_duration_since(existing.at)
                    .to_std()
                    .unwrap_or_default()
                    > ABANDONED_CLAIM =>
                {
                    if !ledger
                        .take_over_key(&principal.account_id, key.as_str(), &existing, &entry)
                        .await
                        .map_err(store_error)?
                    {
                        return Err(Refusal::Api(ApiError::RequestInFlight));
                    }
                }
                None => return Err(Refusal::Api(ApiError::RequestInFlight)),
            }
        }
    }
    ledger.create(upload).await.map_err(store_error)?;
    Ok((upload.clone(), false))
}

async fn owned(feeds: &Feeds, principal: &Principal, id: &str) -> Result<Upload, Response> {
    match feeds.upload_of(Some(&principal.account_id), id).await {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(not_found()),
        Err(e) => Err(ApiError::unavailable(Some(Duration::from_secs(1)), e).into_response()),
    }
}

fn status_doc(feeds: &Feeds, u: &Upload) -> Value {
    let url = feeds.status_url(&u.id);
    let mut doc = json!({
        "id": u.id,
        "name": u.name,
        "status": u.status.as_str(),
        "received_at": u.received_at,
        "completed_at": u.completed_at,
        "counts": u.counts,
        "status_url": url,
        "records_url": format!("{url}/records"),
        "errors_url": format!("{url}/errors.csv"),
    });
    if let Some(f) = &u.failure {
        doc["failure"] = Value::from(f.clone());
    }
    doc
}

async fn get_upload(
    State(feeds): State<Feeds>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Response {
    match owned(&feeds, &principal, &id).await {
        Ok(u) => Json(status_doc(&feeds, &u)).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<usize>,
    after: Option<String>,
    outcome: Option<String>,
}

fn limit_of(page: &Page) -> Result<usize, ApiError> {
    match page.limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::InvalidRequest(
            "limit must be between 1 and 1000.".into(),
        )),
    }
}

async fn list_uploads(
    State(feeds): State<Feeds>,
    Authenticated(principal): Authenticated,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    let page = match query_of(page) {
        Ok(page) => page,
        Err(refusal) => return refusal.into_response(),
    };
    let limit = match limit_of(&page) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    match feeds
        .uploads_of(&principal.account_id, page.after.as_deref(), limit)
        .await
    {
        Ok(uploads) => {
            let next = (uploads.len() == limit)
                .then(|| uploads.last().map(|u| u.id.clone()))
                .flatten();
            let docs: Vec<Value> = uploads.iter().map(|u| status_doc(&feeds, u)).collect();
            Json(json!({ "uploads": docs, "next_after": next })).into_response()
        }
        Err(e) => ApiError::unavailable(Some(Duration::from_secs(1)), e).into_response(),
    }
}

async fn get_records(
    State(feeds): State<Feeds>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    let page = match query_of(page) {
        Ok(page) => page,
        Err(refusal) => return refusal.into_response(),
    };
    let upload = match owned(&feeds, &principal, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let limit = match limit_of(&page) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let outcome = match page.outcome.as_deref() {
        None | Some("") => None,
        Some(o) => match Outcome::parse(o) {
            Some(o) => Some(o),
            None => {
                return ApiError::InvalidRequest(
                    "outcome must be one of accepted, updated, unchanged, duplicate, rejected, reinstated.".into(),
                )
                .into_response();
            }
        },
    };
    let after: u64 = match page.after.as_deref().map(str::parse).transpose() {
        Ok(a) => a.unwrap_or(0),
        Err(_) => {
            return ApiError::InvalidRequest("after must be a row number.".into()).into_response();
        }
    };
    let (out, more) = match feeds.verdicts(&upload, outcome, after, limit).await {
        Ok(found) => found,
        Err(e) => return ApiError::unavailable(Some(Duration::from_secs(1)), e).into_response(),
    };
    let next = if more {
        out.last().map(|r| r.row)
    } else {
        None
    };
    Json(json!({ "records": out, "next_after": next })).into_response()
}

/// The rejected rows as uploaded, one line per problem, plus the error columns. Streamed batch by batch.
async fn get_errors_csv(
    State(feeds): State<Feeds>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Response {
    let upload = match owned(&feeds, &principal, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    feeds.errors_csv(upload)
}

pub(super) async fn errors_chunk(
    feeds: &Feeds,
    upload: &Upload,
    index: u64,
) -> Result<Vec<u8>, std::io::Error> {
    let batch = feeds
        .inner
        .ledger
        .batch(&upload.id, index)
        .await
        .map_err(std::io::Error::other)?
        .unwrap_or(super::model::Batch {
            rows: Vec::new(),
            rejected: None,
        });
    let Some(sealed) = batch.rejected else {
        return Ok(Vec::new());
    };
    use base64::Engine;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(std::io::Error::other)?;
    let plain = feeds
        .inner
        .keys
        .open(&super::worker::sealed_context(&upload.id, index), &blob)
        .map_err(std::io::Error::other)?;
    let originals: Vec<(u64, Vec<String>)> =
        serde_json::from_slice(&plain).map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    for row in batch.rows.iter().filter(|r| r.outcome == Outcome::Rejected) {
        let mut values = originals
            .iter()
            .find(|(n, _)| *n == row.row)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        values.resize(upload.columns.len().max(values.len()), String::new());
        for p in row.problems.iter().filter(|p| p.is_error()) {
            let mut line = values.clone();
            line.extend([
                row.row.to_string(),
                p.code.clone(),
                p.field.clone(),
                p.message.clone(),
                p.remedy.clone(),
            ]);
            out.extend(csv_line(&line));
        }
    }
    Ok(out)
}

pub(super) fn csv_line(cells: &[String]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record(cells);
    w.into_inner().unwrap_or_default()
}
