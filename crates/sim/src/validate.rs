//! Write validation: what Salesforce checks field by field before a record is stored (types, lengths,
//! restricted picklists, ids and references, createable/updateable), with its error codes and messages.
//! Record-level rules (required fields, uniqueness) live in `org`, which sees the whole record.

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::error::RecordError;
use super::ids;
use super::org::{Blobs, Fields, ObjectSchema, Org, Record, sf_datetime};
use super::seed::{FieldSpec, FieldType};

impl Org {
    /// Check and coerce every input field; returns canonical-name values and decoded blobs.
    pub(super) fn validate(
        &self,
        schema: &ObjectSchema,
        input: Fields<'_>,
        existing: Option<&Record>,
    ) -> Result<(Record, Blobs), RecordError> {
        let mut out = Record::new();
        let mut blobs = Vec::new();
        for (key, value) in input.iter() {
            if key == "attributes" {
                continue;
            }
            let f = schema.field(key).ok_or_else(|| {
                RecordError::new(
                    "INVALID_FIELD",
                    format!("No such column '{key}' on sobject of type {}", schema.name),
                    vec![],
                )
            })?;
            let allowed = if existing.is_some() {
                f.updateable
            } else {
                f.createable
            };
            if !allowed {
                // Updating a field to the value it already has is accepted (clients echo records back).
                if existing.and_then(|e| e.get(&f.name)) == Some(value) {
                    continue;
                }
                let verb = if existing.is_some() {
                    "update"
                } else {
                    "create"
                };
                return Err(RecordError::new(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!(
                        "Unable to {verb} fields: {}. Please check the security settings of this field and \
                         verify that it is read/write for your profile or permission set.",
                        f.name
                    ),
                    vec![f.name.clone()],
                ));
            }
            if value.is_null() {
                out.insert(f.name.clone(), Value::Null);
                continue;
            }
            if f.kind == FieldType::Base64 {
                let text = value.as_str().ok_or_else(|| bad_value(f, value))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| bad_value(f, value))?;
                blobs.push((f.name.clone(), bytes));
                out.insert(f.name.clone(), Value::Null);
                continue;
            }
            out.insert(f.name.clone(), self.coerce(f, value)?);
        }
        Ok((out, blobs))
    }

    fn coerce(&self, f: &FieldSpec, value: &Value) -> Result<Value, RecordError> {
        let text = || match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match f.kind {
            FieldType::String
            | FieldType::Textarea
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Picklist => {
                let s = text().ok_or_else(|| bad_value(f, value))?;
                if let Some(max) = f.length
                    && s.chars().count() > max
                {
                    return Err(RecordError::new(
                        "STRING_TOO_LONG",
                        format!("{}: data value too large: {s} (max length={max})", f.name),
                        vec![f.name.clone()],
                    ));
                }
                if f.kind == FieldType::Picklist
                    && f.restricted
                    && !f.values.iter().any(|v| v == &s)
                {
                    return Err(RecordError::new(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        format!("{}: bad value for restricted picklist field: {s}", f.name),
                        vec![f.name.clone()],
                    ));
                }
                Ok(s.into())
            }
            FieldType::Boolean => match value {
                Value::Bool(b) => Ok((*b).into()),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true.into()),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false.into()),
                _ => Err(bad_value(f, value)),
            },
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
                let n = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|n| n.is_finite())
                .ok_or_else(|| bad_value(f, value))?;
                if f.kind == FieldType::Int {
                    Ok(Value::from(n.round() as i64))
                } else {
                    Ok(serde_json::Number::from_f64(n)
                        .map(Value::Number)
                        .unwrap_or(Value::Null))
                }
            }
            FieldType::Date => {
                let s = value.as_str().ok_or_else(|| bad_value(f, value))?;
                let d = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                    .map_err(|_| bad_value(f, value))?;
                Ok(d.format("%Y-%m-%d").to_string().into())
            }
            FieldType::Datetime => {
                let s = value.as_str().ok_or_else(|| bad_value(f, value))?;
                parse_datetime(s)
                    .map(|t| sf_datetime(t).into())
                    .ok_or_else(|| bad_value(f, value))
            }
            FieldType::Id | FieldType::Reference => {
                let s = value.as_str().unwrap_or_default();
                let id = ids::normalize(s).ok_or_else(|| {
                    RecordError::new(
                        "MALFORMED_ID",
                        format!("{}: id value of incorrect type: {s}", f.name),
                        vec![f.name.clone()],
                    )
                })?;
                let target = f.reference_to.as_deref().and_then(|t| self.schema(t));
                if let Some(target) = target
                    && id.starts_with(&target.key_prefix)
                    && !self.is_live(&target.name, &id)
                {
                    return Err(RecordError::new(
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("invalid cross reference id: {}", f.name),
                        vec![f.name.clone()],
                    ));
                }
                Ok(id.into())
            }
            FieldType::Base64 => Err(bad_value(f, value)),
        }
    }
}

/// Datetimes as clients send them: RFC 3339, or Salesforce's own colon-less offset.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn bad_value(f: &FieldSpec, value: &Value) -> RecordError {
    RecordError::json_parser(format!(
        "Cannot deserialize instance of {:?} from value {value} for field {}",
        f.kind, f.name
    ))
}
