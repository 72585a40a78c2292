//! sObject Collections (reference §2.7): up to 200 records per call, one API call, per-record results in
//! input order with `statusCode` errors, and `allOrNone` rollback. The results are written straight into the
//! answer's text (`json_out`); only a failure's error object is built as a `Value`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, RecordError};
use super::gate::{ApiVersion, InjectedFault};
use super::json_out::{self, JsonText};
use super::oauth::Session;
use super::org::{Org, Record, UpsertOutcome};
use super::rest::{create_record, field_list, present};

const MAX_RECORDS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/services/data/{version}/composite/sobjects",
            get(get_unsupported)
                .post(create_all)
                .patch(update_all)
                .delete(delete_all),
        )
        .route(
            "/services/data/{version}/composite/sobjects/{object}",
            get(retrieve_get).post(retrieve_post),
        )
        .route(
            "/services/data/{version}/composite/sobjects/{object}/{field}",
            patch(upsert_all),
        )
}

/// One record's result: `{"id","success","errors"[, "created"]}`.
type ItemResult = Result<(String, Option<bool>), RecordError>;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Batch {
    #[serde(default)]
    all_or_none: bool,
    records: Vec<Record>,
}

fn parse_batch(body: &[u8]) -> Result<Batch, ApiError> {
    let batch: Batch = serde_json::from_slice(body)
        .map_err(|e| ApiError::from(RecordError::json_parser(e.to_string())))?;
    check_size(batch.records.len())?;
    Ok(batch)
}

fn check_size(n: usize) -> Result<(), ApiError> {
    if n > MAX_RECORDS {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    Ok(())
}

/// Apply `op` to each record in order; on `allOrNone` with any failure, restore the org and roll back the rest.
fn run_batch(
    org: &mut Org,
    records: &[Record],
    all_or_none: bool,
    fault: Option<Extension<InjectedFault>>,
    op: impl FnMut(&mut Org, &Record) -> ItemResult,
) -> JsonText {
    let mut out = Vec::with_capacity(16 + records.len() * 96);
    out.push(b'[');
    for (i, result) in batch_results(org, records, all_or_none, fault, op)
        .iter()
        .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        write_result(&mut out, result);
    }
    out.push(b']');
    JsonText(out)
}

/// One record's result as it is answered.
enum Outcome {
    Ok(String, Option<bool>),
    Failed(Value),
}

/// `{"created"?,"errors":[],"id","success":true}` (the keys in the order a `serde_json` map writes them), or
/// a failure's object.
fn write_result(out: &mut Vec<u8>, result: &Outcome) {
    match result {
        Outcome::Ok(id, created) => {
            out.push(b'{');
            if let Some(created) = created {
                json_out::key(out, "created", true);
                out.extend_from_slice(if *created { b"true" } else { b"false" });
            }
            json_out::key(out, "errors", created.is_none());
            out.extend_from_slice(b"[]");
            json_out::key(out, "id", false);
            json_out::push_str_parts(out, &[id]);
            json_out::key(out, "success", false);
            out.extend_from_slice(b"true}");
        }
        Outcome::Failed(v) => json_out::push_value(out, v),
    }
}

fn batch_results(
    org: &mut Org,
    records: &[Record],
    all_or_none: bool,
    fault: Option<Extension<InjectedFault>>,
    mut op: impl FnMut(&mut Org, &Record) -> ItemResult,
) -> Vec<Outcome> {
    if let Some(Extension(InjectedFault(kind))) = fault {
        let err = kind.record_error();
        return records
            .iter()
            .map(|_| Outcome::Failed(failure(None, &err)))
            .collect();
    }
    let before = all_or_none.then(|| org.clone());
    let results: Vec<(Option<String>, ItemResult)> = records
        .iter()
        .map(|r| {
            // A record's own id is only needed to report its failure (or its rollback).
            let result = op(org, r);
            let id = (result.is_err() || all_or_none)
                .then(|| record_id(r))
                .flatten();
            (id, result)
        })
        .collect();
    let any_failed = results.iter().any(|(_, r)| r.is_err());
    if let (Some(before), true) = (before, any_failed) {
        *org = before;
        let rolled_back = RecordError::new(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
            vec![],
        );
        return results
            .into_iter()
            .map(|(id, r)| match r {
                Err(e) => Outcome::Failed(failure(id.as_deref(), &e)),
                Ok(_) => Outcome::Failed(failure(id.as_deref(), &rolled_back)),
            })
            .collect();
    }
    results
        .into_iter()
        .map(|(id, r)| match r {
            Ok((id, created)) => Outcome::Ok(id, created),
            Err(e) => Outcome::Failed(failure(id.as_deref(), &e)),
        })
        .collect()
}

fn failure(id: Option<&str>, e: &RecordError) -> Value {
    let mut v = json!({"success": false, "errors": [e.collection_json()]});
    if let Some(id) = id {
        v["id"] = id.into();
    }
    v
}

fn record_id(r: &Record) -> Option<String> {
    r.get("id")
        .or_else(|| r.get("Id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn record_type(r: &Record) -> Result<String, RecordError> {
    r.get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| RecordError::invalid_type(""))
}

async fn create_all(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    fault: Option<Extension<InjectedFault>>,
    body: Bytes,
) -> Result<JsonText, ApiError> {
    let batch = parse_batch(&body)?;
    let mut org = st.org.write();
    let results = run_batch(
        &mut org,
        &batch.records,
        batch.all_or_none,
        fault,
        |org, r| {
            if record_id(r).is_some() {
                return Err(RecordError::new(
                    "INVALID_FIELD",
                    "cannot specify Id in an insert call",
                    vec![],
                ));
            }
            let object = record_type(r)?;
            create_record(org, &object, r, &session.user_id).map(|id| (id, None))
        },
    );
    Ok(results)
}

async fn update_all(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    fault: Option<Extension<InjectedFault>>,
    body: Bytes,
) -> Result<JsonText, ApiError> {
    let batch = parse_batch(&body)?;
    let mut org = st.org.write();
    let now = chrono::Utc::now();
    let results = run_batch(
        &mut org,
        &batch.records,
        batch.all_or_none,
        fault,
        |org, r| {
            let id = record_id(r).ok_or_else(|| {
                RecordError::new(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    vec![],
                )
            })?;
            let object = record_type(r)?;
            let mut fields = r.clone();
            fields.retain(|k, _| k != "id" && k != "Id");
            org.update(&object, &id, &fields, &session.user_id, now)
                .map(|id| (id, None))
        },
    );
    Ok(results)
}

async fn upsert_all(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    fault: Option<Extension<InjectedFault>>,
    Path((_, object, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<JsonText, ApiError> {
    let batch = parse_batch(&body)?;
    let mut org = st.org.write();
    let key = {
        let schema = org.schema_or_invalid(&object)?;
        schema
            .field(&field)
            .filter(|f| f.external_id || f.name == "Id")
            .ok_or_else(RecordError::not_found)?
            .name
            .clone()
    };
    let now = chrono::Utc::now();
    let results = run_batch(
        &mut org,
        &batch.records,
        batch.all_or_none,
        fault,
        |org, r| {
            upsert_one(org, &object, &key, r, &session.user_id, now)
                .map(|(id, created)| (id, Some(created)))
        },
    );
    Ok(results)
}

/// Upsert one record by the value of its `key` field (an External ID, canonical name): `(id, created)`, or the
/// error Salesforce reports for that record. Shared with Bulk API 2.0 upserts.
pub fn upsert_one(
    org: &mut Org,
    object: &str,
    key: &str,
    r: &Record,
    user: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, bool), RecordError> {
    let value = r
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
        .ok_or_else(|| {
            RecordError::new(
                "MISSING_ARGUMENT",
                format!("{key} not specified"),
                vec![key.to_owned()],
            )
        })?;
    match org.upsert(object, key, value, r, user, now)? {
        UpsertOutcome::Created(id) => Ok((id, true)),
        UpsertOutcome::Updated(id) => Ok((id, false)),
        UpsertOutcome::Multiple(ids) => Err(RecordError::new(
            "DUPLICATE_EXTERNAL_ID",
            format!(
                "{key}: more than one record found for external id field: [{}]",
                ids.join(", ")
            ),
            vec![key.to_owned()],
        )),
    }
}

async fn delete_all(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    fault: Option<Extension<InjectedFault>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<JsonText, ApiError> {
    let ids: Vec<Record> = q
        .get("ids")
        .map(|s| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(|id| {
                    let mut r = Record::new();
                    r.insert("id".into(), id.trim().into());
                    r
                })
                .collect()
        })
        .unwrap_or_default();
    check_size(ids.len())?;
    let all_or_none = q
        .get("allOrNone")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut org = st.org.write();
    let now = chrono::Utc::now();
    let results = run_batch(&mut org, &ids, all_or_none, fault, |org, r| {
        let id = record_id(r).unwrap_or_default();
        let normalized =
            super::ids::normalize(&id).ok_or_else(|| RecordError::malformed_id(&id))?;
        let object = org
            .objects()
            .iter()
            .find(|o| normalized.starts_with(&o.key_prefix))
            .map(|o| o.name.clone())
            .ok_or_else(RecordError::not_found)?;
        org.delete(&object, &normalized, &session.user_id, now)
            .map(|()| (normalized, None))
    });
    Ok(results)
}

async fn get_unsupported() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "HTTP Method 'GET' not allowed. Allowed are POST,PATCH,DELETE",
    )
}

async fn retrieve_get(
    st: State<AppState>,
    v: Extension<ApiVersion>,
    Path((_, object)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let ids: Vec<String> = q
        .get("ids")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default();
    retrieve(&st, &v, &object, &ids, q.get("fields").cloned())
}

#[derive(serde::Deserialize)]
struct RetrieveBody {
    ids: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

async fn retrieve_post(
    st: State<AppState>,
    v: Extension<ApiVersion>,
    Path((_, object)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: RetrieveBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::from(RecordError::json_parser(e.to_string())))?;
    let fields = (!req.fields.is_empty()).then(|| req.fields.join(","));
    retrieve(&st, &v, &object, &req.ids, fields)
}

/// Records in the order asked, `null` for unknown or deleted ones.
fn retrieve(
    st: &AppState,
    v: &ApiVersion,
    object: &str,
    ids: &[String],
    fields: Option<String>,
) -> Result<Json<Value>, ApiError> {
    if ids.len() > 2000 {
        return Err(ApiError::bad_request("EXCEEDED_ID_LIMIT", "too many ids"));
    }
    let org = st.org.read();
    let schema = org.schema_or_invalid(object)?;
    let fields = field_list(schema, fields.as_ref())?;
    let out: Vec<Value> = ids
        .iter()
        .map(|id| match org.get(&schema.name, id) {
            Ok(rec) => present(&org, schema, rec, &v.0, fields.as_deref()),
            Err(_) => Value::Null,
        })
        .collect();
    Ok(Json(Value::Array(out)))
}
