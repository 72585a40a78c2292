//! Query routes (reference §2.6): `query`, `queryAll` and paging through `nextRecordsUrl` locators.
//!
//! Parsing and evaluation belong to `soql`, choosing which records to read to `query_exec`; this module
//! renders rows with their `attributes` and pages results (2,000 rows a page unless `Sforce-Query-Options:
//! batchSize=N`, 200..=2000). Rows are rendered page by page, when the page is fetched.

use std::collections::HashMap;
use std::ops::Bound;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::error::{ApiError, RecordError};
use super::gate::ApiVersion;
use super::org::Org;
use super::query_exec::{self, Matches};
use super::rest::attributes;
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
) -> Result<Json<Value>, ApiError> {
    run_query(&st, &v, &headers, &q, false)
}

pub(super) async fn query_all(
    st: State<AppState>,
    v: Extension<ApiVersion>,
    headers: HeaderMap,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    run_query(&st, &v, &headers, &q, true)
}

fn run_query(
    st: &AppState,
    v: &ApiVersion,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    all: bool,
) -> Result<Json<Value>, ApiError> {
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
    let (total, rows) =
        match query_exec::run(&parsed, table, all, chrono::Utc::now()).map_err(soql_error)? {
            Matches::Count(n) => {
                return Ok(Json(json!({"totalSize": n, "done": true, "records": []})));
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
    let first = cursor.page(&org, &v.0, 0);
    drop(org);
    if total <= batch {
        return Ok(Json(
            json!({"totalSize": total, "done": true, "records": first}),
        ));
    }
    let mut cursors = st.cursors.lock();
    cursors.seq += 1;
    let locator = ids::generate("01g", cursors.seq);
    cursors.open.insert(locator.clone(), cursor);
    while cursors.open.len() > MAX_OPEN_CURSORS {
        cursors.open.pop_first();
    }
    Ok(Json(json!({
        "totalSize": total, "done": false,
        "nextRecordsUrl": format!("/services/data/v{}/query/{locator}-{batch}", v.0),
        "records": first,
    })))
}

pub(super) async fn query_more(
    State(st): State<AppState>,
    Extension(v): Extension<ApiVersion>,
    Path((_, locator)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
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
    let page = cursor.page(&org, &v.0, offset);
    let mut body = json!({"totalSize": total, "done": end >= total, "records": page});
    if end < total {
        body["nextRecordsUrl"] = format!("/services/data/v{}/query/{id}-{end}", v.0).into();
    } else {
        cursors.open.remove(id);
    }
    Ok(Json(body))
}

impl Cursor {
    /// Whether a page may start at row `offset` (any row of an id list; a page boundary of a range).
    fn can_start_at(&self, offset: usize) -> bool {
        match &self.rows {
            Rows::Ids(_) => true,
            Rows::Range { resume, .. } => resume.contains_key(&offset),
        }
    }

    /// The rendered rows `offset..offset + batch` (fewer at the end), each with its `attributes`.
    fn page(&mut self, org: &Org, version: &str, offset: usize) -> Vec<Value> {
        let end = (offset + self.batch).min(self.total);
        let Some(schema) = org.schema(&self.query.object) else {
            return Vec::new();
        };
        let Some(table) = org.table(&schema.name) else {
            return Vec::new();
        };
        let ids: Vec<String> = match &mut self.rows {
            Rows::Ids(ids) => ids.get(offset..end).unwrap_or_default().to_vec(),
            Rows::Range {
                field,
                upper,
                resume,
            } => {
                let start = resume.get(&offset).cloned().unwrap_or(Bound::Unbounded);
                let entries: Vec<&StampKey> = table
                    .range(field, start, upper.clone())
                    .map(|r| r.take(end - offset).collect())
                    .unwrap_or_default();
                if let Some(last) = entries.last() {
                    resume.insert(end, Bound::Excluded((*last).clone()));
                }
                entries.into_iter().map(|(_, id)| id.clone()).collect()
            }
        };
        ids.iter()
            .filter_map(|id| table.get(id).map(|r| (id, r)))
            .map(|(id, record)| {
                let mut row = soql::project(&self.query, record);
                org.render_blobs(schema, id, &mut row, version);
                row.insert(
                    "attributes".into(),
                    attributes(&schema.name, Some(id), version),
                );
                Value::Object(row)
            })
            .collect()
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
