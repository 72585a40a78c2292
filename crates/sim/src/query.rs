//! Query routes (reference §2.6): `query`, `queryAll` and paging through `nextRecordsUrl` locators.
//!
//! Parsing and evaluation belong to `soql`; this module feeds it the stored records, adds `attributes`, and
//! pages results (2,000 rows a page unless `Sforce-Query-Options: batchSize=N`, 200..=2000).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::error::ApiError;
use super::gate::ApiVersion;
use super::org::{Org, Record};
use super::rest::attributes;
use super::seed::FieldType;
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

struct Cursor {
    rows: Vec<Value>,
    batch: usize,
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
    let (result, object) = {
        let org = st.org.lock();
        let parsed = soql::parse(soql_text, &SchemaView(&org)).map_err(soql_error)?;
        let schema = org.schema_or_invalid(&parsed.object)?;
        let records: Vec<Record> = org
            .all(&schema.name)
            .filter(|r| all || r.get("IsDeleted") != Some(&Value::Bool(true)))
            .map(|r| org.render(schema, r, &v.0))
            .collect();
        (
            soql::execute(&parsed, &records, chrono::Utc::now()).map_err(soql_error)?,
            schema.name.clone(),
        )
    };
    let rows = match result {
        soql::QueryResult::Count(n) => {
            return Ok(Json(json!({"totalSize": n, "done": true, "records": []})));
        }
        soql::QueryResult::Rows(rows) => rows,
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|mut row| {
            let id = row.get("Id").and_then(Value::as_str).map(str::to_owned);
            row.insert(
                "attributes".into(),
                attributes(&object, id.as_deref(), &v.0),
            );
            Value::Object(row)
        })
        .collect();
    let batch = batch_size(headers);
    let total = rows.len();
    if total <= batch {
        return Ok(Json(
            json!({"totalSize": total, "done": true, "records": rows}),
        ));
    }
    let first: Vec<Value> = rows[..batch].to_vec();
    let mut cursors = st.cursors.lock();
    cursors.seq += 1;
    let locator = ids::generate("01g", cursors.seq);
    cursors.open.insert(locator.clone(), Cursor { rows, batch });
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
    let mut cursors = st.cursors.lock();
    let cursor = cursors.open.get(id).ok_or_else(invalid)?;
    let total = cursor.rows.len();
    let end = (offset + cursor.batch).min(total);
    let page: Vec<Value> = cursor.rows.get(offset..end).ok_or_else(invalid)?.to_vec();
    let mut body = json!({"totalSize": total, "done": end >= total, "records": page});
    if end < total {
        body["nextRecordsUrl"] = format!("/services/data/v{}/query/{id}-{end}", v.0).into();
    } else {
        cursors.open.remove(id);
    }
    Ok(Json(body))
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
