//! The REST route table under `/services/data/vXX.X/`, and the single-record routes (reference §2.1–2.5).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::{ApiError, RecordError};
use super::gate::{self, ApiVersion};
use super::oauth::Session;
use super::org::{ObjectSchema, Org, Record, UpsertOutcome};
use super::seed::FieldType;
use super::{AppState, bulk, collections, describe, files, ids, query};

type Params = Query<HashMap<String, String>>;

pub fn routes(state: AppState) -> Router<AppState> {
    let data = Router::new()
        .route("/services/data/{version}", get(describe::resources))
        .route("/services/data/{version}/limits", get(describe::limits))
        .route(
            "/services/data/{version}/sobjects",
            get(describe::describe_global),
        )
        .route(
            "/services/data/{version}/sobjects/{object}",
            get(describe::object_info).post(create),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(retrieve)
                .patch(update)
                .post(post_override)
                .delete(delete),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{field}/{value}",
            get(retrieve_by_field).patch(upsert).post(upsert_override),
        )
        .route("/services/data/{version}/query", get(query::query))
        .route("/services/data/{version}/queryAll", get(query::query_all))
        .route(
            "/services/data/{version}/query/{locator}",
            get(query::query_more),
        )
        .route(
            "/services/data/{version}/queryAll/{locator}",
            get(query::query_more),
        )
        .merge(collections::routes())
        .merge(bulk::routes())
        .route_layer(axum::middleware::from_fn_with_state(state, gate::rest));
    Router::new()
        .route("/services/data", get(describe::versions))
        .merge(data)
}

/// The JSON body of a write, or `JSON_PARSER_ERROR`.
pub fn parse_record(body: &[u8]) -> Result<Record, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RecordError::json_parser(
            "Cannot deserialize instance of SObject from a non-object value",
        )
        .into()),
        Err(e) => Err(RecordError::json_parser(e.to_string()).into()),
    }
}

/// Create a record and run what Salesforce does after (content documents and links), under one lock.
pub fn create_record(
    org: &mut Org,
    object: &str,
    input: &Record,
    user: &str,
) -> Result<String, RecordError> {
    let now = chrono::Utc::now();
    let id = org.create(object, input, user, now)?;
    if org
        .schema(object)
        .is_some_and(|s| s.name == "ContentVersion")
    {
        files::after_version_insert(org, &id, user, now)?;
    }
    Ok(id)
}

/// A record as the API returns it, with `attributes` and blob URLs; `fields` limits it to those fields.
pub fn present(
    org: &Org,
    schema: &ObjectSchema,
    rec: &Record,
    version: &str,
    fields: Option<&[String]>,
) -> Value {
    let mut out = org.render(schema, rec, version);
    if let Some(fields) = fields {
        out.retain(|k, _| fields.iter().any(|f| f == k));
    }
    let id = rec.get("Id").and_then(Value::as_str).unwrap_or_default();
    out.insert(
        "attributes".into(),
        attributes(&schema.name, Some(id), version),
    );
    Value::Object(out)
}

pub fn attributes(object: &str, id: Option<&str>, version: &str) -> Value {
    match id {
        Some(id) => {
            json!({"type": object, "url": format!("/services/data/v{version}/sobjects/{object}/{id}")})
        }
        None => json!({"type": object}),
    }
}

/// Canonical names of a `fields=A,B` list; unknown ones fail with `INVALID_FIELD`.
pub fn field_list(
    schema: &ObjectSchema,
    list: Option<&String>,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    list.split(',')
        .map(str::trim)
        .map(|f| {
            schema.field(f).map(|s| s.name.clone()).ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_FIELD",
                    format!("No such column '{f}' on sobject of type {}", schema.name),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

async fn create(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(v): Extension<ApiVersion>,
    Path((_, object)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input = if files::is_multipart(&headers) {
        files::parse_multipart(&headers, &body)?
    } else {
        parse_record(&body)?
    };
    let mut org = st.org.write();
    let id = create_record(&mut org, &object, &input, &session.user_id)?;
    let name = org.schema_or_invalid(&object)?.name.clone();
    Ok(created(
        &v,
        &name,
        &id,
        json!({"id": id, "success": true, "errors": []}),
    ))
}

fn created(v: &ApiVersion, object: &str, id: &str, body: Value) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(loc) =
        HeaderValue::from_str(&format!("/services/data/v{}/sobjects/{object}/{id}", v.0))
    {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

async fn retrieve(
    State(st): State<AppState>,
    Extension(v): Extension<ApiVersion>,
    Path((_, object, id)): Path<(String, String, String)>,
    Query(q): Params,
) -> Result<Json<Value>, ApiError> {
    let org = st.org.read();
    let schema = org.schema_or_invalid(&object)?;
    let fields = field_list(schema, q.get("fields"))?;
    let rec = org.get(&schema.name, &id).map_err(hide_deleted)?;
    Ok(Json(present(&org, schema, rec, &v.0, fields.as_deref())))
}

/// Reads never see deleted records: the REST guide says they are "filtered out of most operations, such as
/// sObject Rows or Query", so a GET answers 404 `NOT_FOUND`. Writes to them keep `ENTITY_IS_DELETED`.
fn hide_deleted(error: RecordError) -> RecordError {
    if error.code == "ENTITY_IS_DELETED" {
        RecordError::not_found()
    } else {
        error
    }
}

// PATCH or DELETE of an unknown id answers 404 NOT_FOUND; whether real orgs say NOT_FOUND or
// INVALID_CROSS_REFERENCE_KEY here is unconfirmed (reference §6).
async fn update(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path((_, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let input = parse_record(&body)?;
    st.org
        .write()
        .update(&object, &id, &input, &session.user_id, chrono::Utc::now())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    st.org
        .write()
        .delete(&object, &id, &session.user_id, chrono::Utc::now())?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/{id}?_HttpMethod=PATCH` is an update; any other POST here is not allowed.
async fn post_override(
    state: State<AppState>,
    session: Extension<Session>,
    path: Path<(String, String, String)>,
    Query(q): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    match q.get("_HttpMethod").map(String::as_str) {
        Some("PATCH") => update(state, session, path, body)
            .await
            .map(IntoResponse::into_response),
        Some("DELETE") => delete(state, session, path)
            .await
            .map(IntoResponse::into_response),
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE",
        )),
    }
}

/// `GET …/{ExtField}/{value}`, or a blob download `GET …/{id}/{Base64Field}`.
async fn retrieve_by_field(
    State(st): State<AppState>,
    Extension(v): Extension<ApiVersion>,
    Path((_, object, field, value)): Path<(String, String, String, String)>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let org = st.org.read();
    let schema = org.schema_or_invalid(&object)?;
    if let (Some(id), Some(blob_field)) = (ids::normalize(&field), schema.field(&value))
        && blob_field.kind == FieldType::Base64
    {
        org.get(&schema.name, &id).map_err(hide_deleted)?;
        let bytes = org
            .blob(&id, &blob_field.name)
            .cloned()
            .ok_or_else(RecordError::not_found)?;
        return Ok(([(header::CONTENT_TYPE, "application/octetstream")], bytes).into_response());
    }
    let key = schema
        .field(&field)
        .filter(|f| f.external_id || f.name == "Id")
        .ok_or_else(RecordError::not_found)?;
    let fields = field_list(schema, q.get("fields"))?;
    let matches = if key.name == "Id" {
        ids::normalize(&value)
            .into_iter()
            .filter(|id| org.get(&schema.name, id).is_ok())
            .collect()
    } else {
        org.find_by_field(&schema.name, &key.name, &value)
    };
    match matches.as_slice() {
        [] => Err(RecordError::not_found().into()),
        [one] => {
            let rec = org.get(&schema.name, one)?;
            Ok(Json(present(&org, schema, rec, &v.0, fields.as_deref())).into_response())
        }
        _ => Ok(multiple_choices(&schema.name, &matches, &v.0)),
    }
}

/// 300 for an ambiguous external id: a JSON array of the matching records' URLs (exact shape unconfirmed, §6).
fn multiple_choices(object: &str, matches: &[String], version: &str) -> Response {
    let urls: Vec<String> = matches
        .iter()
        .map(|id| format!("/services/data/v{version}/sobjects/{object}/{id}"))
        .collect();
    (StatusCode::MULTIPLE_CHOICES, Json(urls)).into_response()
}

async fn upsert(
    State(st): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(v): Extension<ApiVersion>,
    Path((_, object, field, value)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input = parse_record(&body)?;
    let mut org = st.org.write();
    let outcome = org.upsert(
        &object,
        &field,
        &value,
        &input,
        &session.user_id,
        chrono::Utc::now(),
    )?;
    let name = org.schema_or_invalid(&object)?.name.clone();
    let modern = v.number() >= 46.0;
    Ok(match outcome {
        UpsertOutcome::Created(id) if modern => created(
            &v,
            &name,
            &id,
            json!({"id": id, "success": true, "errors": [], "created": true}),
        ),
        UpsertOutcome::Created(id) => created(
            &v,
            &name,
            &id,
            json!({"id": id, "success": true, "errors": []}),
        ),
        UpsertOutcome::Updated(id) if modern => (
            StatusCode::OK,
            Json(json!({"id": id, "success": true, "errors": [], "created": false})),
        )
            .into_response(),
        UpsertOutcome::Updated(_) => StatusCode::NO_CONTENT.into_response(),
        UpsertOutcome::Multiple(matches) => multiple_choices(&name, &matches, &v.0),
    })
}

async fn upsert_override(
    state: State<AppState>,
    session: Extension<Session>,
    version: Extension<ApiVersion>,
    path: Path<(String, String, String, String)>,
    Query(q): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    if q.get("_HttpMethod").map(String::as_str) == Some("PATCH") {
        upsert(state, session, version, path, body).await
    } else {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE",
        ))
    }
}
