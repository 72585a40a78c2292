//! Query routes (reference §2.6): `query`, `queryAll` and paging through `nextRecordsUrl` locators.
//!
//! Parsing and evaluation belong to `soql`, choosing which records to read to `query_exec`; this module
//! renders rows with their `attributes` and pages results (2,000 rows a page unless `Sforce-Query-Options:
//! batchSize=N`, 200..=2000). Rows are rendered page by page, when the page is fetched, straight into the
//! answer's text (`json_out`): no `Value` tree per row.

use std::collections::HashMap;
use std::ops::Bound;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{ApiError, RecordError};
use super::gate::ApiVersion;
use super::json_out::{self, JsonText};
use super::org::{ObjectSchema, Org, Record};
use super::query_exec::{self, Matches};
use super::seed::FieldType;
use super::table::StampKey;
use super::{AppState, ids, soql};

const DEFAULT_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;

type Params = Query<HashMap<String, String>>;

/// Open query cursors, by locator.
#[derive(Default)]
pub struct Cursors {
    seq: u64,
    /// Locators sort in creation order (zero-padded base 62), so the first entry is the oldest.
    open: std::collections::BTreeMap<String, Cursor>,
}

/// Cursors a client abandoned are dropped oldest first beyond this many.
const MAX_OPEN_CURSORS: usize = 1000;

/// The rest of a query's answer. Rows are rendered when their page is fetched, from the ids (or index entries)
/// matched when the query ran, so an open cursor over a million rows holds ids, not rows.
struct Cursor {
    query: soql::Query,
    total: usize,
    batch: usize,
    rows: Rows,
}

enum Rows {
    Ids(Vec<String>),
    /// A covered range of an ordered index: each page resumes after the last entry of the page before it
    /// (`resume`: row offset → that entry), so no page but the one fetched is ever read.
    Range {
        field: String,
        upper: Bound<StampKey>,
        resume: HashMap<usize, Bound<StampKey>>,
    },
}

pub(super) async fn query(
    st: State<AppState>,
    v: Extension<ApiVersion>,
    headers: HeaderMap,
    q: Params,
) -> Result<Response, ApiError> {
    run_query(&st, &v, &headers, &q, false)
}

pub(super) async fn query_all(
    st: State<AppState>,
    v: Extension<ApiVersion>,
    headers: HeaderMap,
    q: Params,
) -> Result<Response, ApiError> {
    run_query(&st, &v, &headers, &q, true)
}

fn run_query(
    st: &AppState,
    v: &ApiVersion,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    all: bool,
) -> Result<Response, ApiError> {
    let soql_text = q
        .get("q")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("MALFORMED_QUERY", "A query string has to be specified")
        })?;
    let soql_error = |e: soql::SoqlError| ApiError::bad_request(e.error_code(), e.to_string());
    let batch = batch_size(headers);
    let org = st.org.read();
    let parsed = soql::parse(soql_text, &SchemaView(&org)).map_err(soql_error)?;
    let schema = org.schema_or_invalid(&parsed.object)?;
    let table = org
        .table(&schema.name)
        .ok_or_else(|| RecordError::invalid_type(&schema.name))?;
    let (total, rows) = match query_exec::run(&parsed, table, all, chrono::Utc::now())
        .map_err(soql_error)?
    {
        Matches::Count(n) => {
            return Ok(Json(json!({"totalSize": n, "done": true, "records": []})).into_response());
        }
        Matches::Ids(ids) => (ids.len(), Rows::Ids(ids)),
        Matches::Range {
            field,
            start,
            upper,
            total,
        } => (
            total,
            Rows::Range {
                field,
                upper,
                resume: HashMap::from([(0, start)]),
            },
        ),
    };
    let mut cursor = Cursor {
        query: parsed,
        total,
        batch,
        rows,
    };
    if total <= batch {
        let body = answer(total, None, |out| cursor.page(&org, &v.0, 0, out));
        return Ok(body.into_response());
    }
    // The locator is taken first so the page is rendered once, straight into the answer.
    let locator = {
        let mut cursors = st.cursors.lock();
        cursors.seq += 1;
        ids::generate("01g", cursors.seq)
    };
    let next = format!("/services/data/v{}/query/{locator}-{batch}", v.0);
    let body = answer(total, Some(&next), |out| cursor.page(&org, &v.0, 0, out));
    drop(org);
    let mut cursors = st.cursors.lock();
    cursors.open.insert(locator, cursor);
    while cursors.open.len() > MAX_OPEN_CURSORS {
        cursors.open.pop_first();
    }
    Ok(body.into_response())
}

/// A page answer, `{"done","nextRecordsUrl"?,"records","totalSize"}` (the keys in the order a `serde_json`
/// map writes them); `records` writes the rows' JSON array.
fn answer(total: usize, next: Option<&str>, records: impl FnOnce(&mut Vec<u8>)) -> JsonText {
    let mut out = Vec::new();
    out.push(b'{');
    json_out::key(&mut out, "done", true);
    json_out::push(&mut out, &next.is_none());
    if let Some(next) = next {
        json_out::key(&mut out, "nextRecordsUrl", false);
        json_out::push_str_parts(&mut out, &[next]);
    }
    json_out::key(&mut out, "records", false);
    records(&mut out);
    json_out::key(&mut out, "totalSize", false);
    json_out::push(&mut out, &total);
    out.push(b'}');
    JsonText(out)
}

pub(super) async fn query_more(
    State(st): State<AppState>,
    Extension(v): Extension<ApiVersion>,
    Path((_, locator)): Path<(String, String)>,
) -> Result<JsonText, ApiError> {
    let invalid = || ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    let org = st.org.read();
    let mut cursors = st.cursors.lock();
    let cursor = cursors.open.get_mut(id).ok_or_else(invalid)?;
    let total = cursor.total;
    if offset > total || !cursor.can_start_at(offset) {
        return Err(invalid());
    }
    let end = (offset + cursor.batch).min(total);
    let next = (end < total).then(|| format!("/services/data/v{}/query/{id}-{end}", v.0));
    let body = answer(total, next.as_deref(), |out| {
        cursor.page(&org, &v.0, offset, out);
    });
    if next.is_none() {
        cursors.open.remove(id);
    }
    Ok(body)
}

impl Cursor {
    /// Whether a page may start at row `offset` (any row of an id list; a page boundary of a range).
    fn can_start_at(&self, offset: usize) -> bool {
        match &self.rows {
            Rows::Ids(_) => true,
            Rows::Range { resume, .. } => resume.contains_key(&offset),
        }
    }

    /// Write the rows `offset..offset + batch` (fewer at the end) into `out` as a JSON array, each with its
    /// `attributes`, read by reference from the table (nothing cloned but the resume entry of the next page).
    fn page(&mut self, org: &Org, version: &str, offset: usize, out: &mut Vec<u8>) {
        let end = (offset + self.batch).min(self.total);
        let schema = org.schema(&self.query.object);
        let table = schema.and_then(|s| org.table(&s.name));
        let (Some(schema), Some(table)) = (schema, table) else {
            out.extend_from_slice(b"[]");
            return;
        };
        let mut rows = RowWriter::new(org, schema, &self.query, version, end - offset, out);
        match &mut self.rows {
            Rows::Ids(ids) => {
                for id in ids.get(offset..end).unwrap_or_default() {
                    if let Some((id, record)) = table.entry(id) {
                        rows.write(id, record);
                    }
                }
            }
            Rows::Range {
                field,
                upper,
                resume,
            } => {
                let start = resume.get(&offset).cloned().unwrap_or(Bound::Unbounded);
                let mut last = None;
                for entry in table
                    .range(field, start, upper.clone())
                    .into_iter()
                    .flatten()
                    .take(end - offset)
                {
                    if let Some((id, record)) = table.entry(&entry.1) {
                        rows.write(id, record);
                    }
                    last = Some(entry);
                }
                if let Some(last) = last {
                    resume.insert(end, Bound::Excluded(last.clone()));
                }
            }
        }
        rows.finish();
    }
}

/// One value of a row being written.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Attributes,
    Value(Option<&'a Value>),
    /// A blob field holding a blob: its relative download URL.
    BlobUrl,
}

/// Writes rows of one page into the answer: each row's selected fields and its `attributes`, keys in sorted
/// order, as the `serde_json::Map` the rows once were serialises them.
struct RowWriter<'a, 'o> {
    org: &'a Org,
    schema: &'a ObjectSchema,
    query: &'a soql::Query,
    version: &'a str,
    /// Per selected field (query order): whether it is a blob (base64) field.
    blob: Vec<bool>,
    cells: Vec<(&'a str, Cell<'a>)>,
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'a, 'o> RowWriter<'a, 'o> {
    fn new(
        org: &'a Org,
        schema: &'a ObjectSchema,
        query: &'a soql::Query,
        version: &'a str,
        rows: usize,
        out: &'o mut Vec<u8>,
    ) -> Self {
        let blob: Vec<bool> = query
            .selected_fields()
            .iter()
            .map(|f| schema.field(f).is_some_and(|f| f.kind == FieldType::Base64))
            .collect();
        // A row of the poller's two fields is ~200 bytes; reserving up front spares the buffer's regrowth.
        out.reserve(64 + rows * (160 + 48 * blob.len()));
        out.push(b'[');
        RowWriter {
            org,
            schema,
            query,
            version,
            blob,
            cells: Vec::with_capacity(query.selected_fields().len() + 1),
            out,
            first: true,
        }
    }

    fn write(&mut self, id: &'a str, record: &'a Record) {
        self.cells.clear();
        self.cells.push(("attributes", Cell::Attributes));
        for ((name, value), blob) in soql::project_ref(self.query, record).zip(&self.blob) {
            let cell = if *blob && self.org.blob(id, name).is_some() {
                Cell::BlobUrl
            } else {
                Cell::Value(value)
            };
            self.cells.push((name, cell));
        }
        // Stable: of a field selected twice the first is kept (both hold the same value).
        self.cells.sort_by(|a, b| a.0.cmp(b.0));
        self.cells.dedup_by(|a, b| a.0 == b.0);
        let out = &mut *self.out;
        if !self.first {
            out.push(b',');
        }
        self.first = false;
        out.push(b'{');
        let object = self.schema.name.as_str();
        let version = self.version;
        for (i, (name, cell)) in self.cells.iter().enumerate() {
            json_out::key(out, name, i == 0);
            match cell {
                Cell::Attributes => {
                    out.push(b'{');
                    json_out::key(out, "type", true);
                    json_out::push_str_parts(out, &[object]);
                    json_out::key(out, "url", false);
                    json_out::push_str_parts(
                        out,
                        &["/services/data/v", version, "/sobjects/", object, "/", id],
                    );
                    out.push(b'}');
                }
                Cell::Value(Some(value)) => json_out::push_value(out, value),
                Cell::Value(None) => out.extend_from_slice(b"null"),
                Cell::BlobUrl => json_out::push_str_parts(
                    out,
                    &[
                        "/services/data/v",
                        version,
                        "/sobjects/",
                        object,
                        "/",
                        id,
                        "/",
                        name,
                    ],
                ),
            }
        }
        out.push(b'}');
    }

    fn finish(self) {
        self.out.push(b']');
    }
}

/// `Sforce-Query-Options: batchSize=N`, clamped to 200..=2000.
fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|kv| {
                kv.trim()
                    .strip_prefix("batchSize=")?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
        })
        .map(|n| n.clamp(MIN_BATCH, DEFAULT_BATCH))
        .unwrap_or(DEFAULT_BATCH)
}

/// The org's schema as the SOQL parser sees it.
struct SchemaView<'a>(&'a Org);

impl soql::SchemaLookup for SchemaView<'_> {
    fn object(&self, name: &str) -> Option<String> {
        self.0.schema(name).map(|s| s.name.clone())
    }

    fn field(&self, object: &str, name: &str) -> Option<(String, soql::ValueKind)> {
        let f = self.0.schema(object)?.field(name)?;
        let kind = match f.kind {
            FieldType::Boolean => soql::ValueKind::Boolean,
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
                soql::ValueKind::Number
            }
            FieldType::Date => soql::ValueKind::Date,
            FieldType::Datetime => soql::ValueKind::DateTime,
            FieldType::Base64 => soql::ValueKind::Blob,
            _ => soql::ValueKind::Text,
        };
        Some((f.name.clone(), kind))
    }
}
