//! Discovery routes: API versions, the version root, `limits`, and describe (global and per object).

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde_json::{Value, json};

use super::error::ApiError;
use super::gate::{self, ApiVersion};
use super::org::ObjectSchema;
use super::seed::FieldType;
use super::{AppState, limits};
pub(super) async fn versions() -> Json<Value> {
    let seasons = ["Winter", "Spring", "Summer"];
    let list: Vec<Value> = (gate::MIN_VERSION as i64..=gate::MAX_VERSION as i64)
        .map(|v| {
            let season = seasons[(v - 62).rem_euclid(3) as usize];
            let year = 25 + (v - 62).div_euclid(3);
            json!({"label": format!("{season} '{year}"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")})
        })
        .collect();
    Json(Value::Array(list))
}

pub(super) async fn resources(Extension(v): Extension<ApiVersion>) -> Json<Value> {
    let base = format!("/services/data/v{}", v.0);
    Json(json!({
        "sobjects": format!("{base}/sobjects"), "query": format!("{base}/query"),
        "queryAll": format!("{base}/queryAll"), "limits": format!("{base}/limits"),
        "composite": format!("{base}/composite"),
    }))
}

pub(super) async fn limits(State(st): State<AppState>) -> Json<Value> {
    let max = st
        .faults
        .lock()
        .daily_api_limit
        .unwrap_or(st.opts.daily_api_limit);
    let used = st.stats.lock().api_calls_total;
    Json(limits::limits_json(used, max))
}

pub(super) async fn describe_global(
    State(st): State<AppState>,
    Extension(v): Extension<ApiVersion>,
) -> Json<Value> {
    let org = st.org.read();
    let sobjects: Vec<Value> = org
        .objects()
        .iter()
        .map(|o| object_summary(o, &v.0))
        .collect();
    Json(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}))
}

pub(super) async fn object_info(
    State(st): State<AppState>,
    Extension(v): Extension<ApiVersion>,
    Path((_, object)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let org = st.org.read();
    let schema = org.schema_or_invalid(&object)?;
    Ok(Json(
        json!({"objectDescribe": object_summary(schema, &v.0), "recentItems": []}),
    ))
}

pub(super) async fn describe(
    State(st): State<AppState>,
    Extension(v): Extension<ApiVersion>,
    Path((_, object)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let org = st.org.read();
    let schema = org.schema_or_invalid(&object)?;
    let fields: Vec<Value> = schema.fields.iter().map(describe_field).collect();
    let mut body = object_summary(schema, &v.0);
    body["fields"] = Value::Array(fields);
    Ok(Json(body))
}

fn object_summary(o: &ObjectSchema, version: &str) -> Value {
    let base = format!("/services/data/v{version}/sobjects/{}", o.name);
    json!({
        "name": o.name, "label": o.name.trim_end_matches("__c").replace('_', " "), "keyPrefix": o.key_prefix,
        "custom": o.name.ends_with("__c"), "createable": true, "updateable": true, "deletable": true,
        "queryable": true, "retrieveable": true,
        "urls": {"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")},
    })
}

fn describe_field(f: &super::seed::FieldSpec) -> Value {
    let kind = serde_json::to_value(f.kind).unwrap_or(Value::Null);
    let picklist: Vec<Value> = f
        .values
        .iter()
        .map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": f.default.as_ref().and_then(Value::as_str) == Some(v)}))
        .collect();
    json!({
        "name": f.name, "label": f.name.trim_end_matches("__c").replace('_', " "), "type": kind,
        "length": f.length.unwrap_or(0), "precision": f.precision.unwrap_or(0), "scale": f.scale.unwrap_or(0),
        "nillable": !f.required && f.kind != FieldType::Boolean, "createable": f.createable,
        "updateable": f.updateable, "unique": f.unique, "externalId": f.external_id, "idLookup": f.external_id || f.name == "Id",
        "defaultValue": f.default, "picklistValues": picklist, "restrictedPicklist": f.restricted,
        "referenceTo": f.reference_to.iter().collect::<Vec<_>>(), "custom": f.name.ends_with("__c"),
    })
}
