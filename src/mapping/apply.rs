//! Running a compiled mapping over one body. Pure: no I/O, no clock, no randomness.
//!
//! Per field, in this order: read the value (a missing value, `null` and a string that is empty
//! after the transforms all count as missing) → transforms → value map → type conversion →
//! validation. A missing value takes the `default` (converted and validated, but not
//! value-mapped: defaults are written in the target's vocabulary), else is a `required` problem
//! when the field is required, else is left out. Every field is processed so that every problem
//! in the body is reported at once.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::compile::{Mapping, When};
use super::convert::{Failure, FieldType, RFC3339, Target, write_datetime};
use super::field::{ContextVar, FieldRule, Source};
use super::{FieldProblem, MapContext, MappedRecord};

/// Picks the mapping whose `when` matches the body, else the one without `when`.
pub(crate) fn select<'a>(
    candidates: &[&'a Mapping],
    input: &Value,
    kind: &str,
) -> Result<&'a Mapping, Vec<FieldProblem>> {
    if candidates.is_empty() {
        return Err(vec![problem(
            "",
            "not_allowed",
            format!("{kind} bodies are not accepted for your bank"),
        )]);
    }
    if !input.is_object() {
        return Err(vec![problem(
            "",
            "invalid_type",
            "the body must be a JSON object".to_string(),
        )]);
    }
    let matching = candidates.iter().find(|m| {
        m.when.as_ref().is_some_and(|w| {
            get_path(input, &w.path)
                .and_then(scalar_text)
                .is_some_and(|v| v == w.equals)
        })
    });
    if let Some(m) = matching.or_else(|| candidates.iter().find(|m| m.when.is_none())) {
        return Ok(m);
    }
    // Nothing matched and there is no fallback: one problem per selector field.
    let mut fields: Vec<&When> = Vec::new();
    for when in candidates.iter().filter_map(|m| m.when.as_ref()) {
        if !fields.iter().any(|w| w.field == when.field) {
            fields.push(when);
        }
    }
    let problems = fields
        .into_iter()
        .map(|when| {
            let allowed: Vec<&str> = candidates
                .iter()
                .filter_map(|m| {
                    m.when
                        .as_ref()
                        .filter(|w| w.field == when.field)
                        .map(|w| w.equals.as_str())
                })
                .collect();
            match get_path(input, &when.path) {
                None => problem(
                    &when.field,
                    "required",
                    format!("is required (one of: {})", allowed.join(", ")),
                ),
                Some(v) => {
                    let shown = scalar_text(v).map_or_else(|| v.to_string(), |s| format!("'{s}'"));
                    problem(
                        &when.field,
                        "unknown_value",
                        format!("{shown} is not one of: {}", allowed.join(", ")),
                    )
                }
            }
        })
        .collect();
    Err(problems)
}

pub(crate) fn map_inbound(
    mapping: &Mapping,
    input: &Value,
    ctx: &MapContext,
    version: &str,
) -> Result<MappedRecord, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut fields = Map::new();
    for (to, value) in &mapping.constants {
        fields.insert(to.clone(), value.clone());
    }
    for rule in &mapping.fields {
        let (raw, context_ty) = match &rule.source {
            Source::Path(path) => (get_path(input, path).cloned(), None),
            Source::Context(var) => context_value(*var, rule, ctx),
        };
        let ty = context_ty.as_ref().unwrap_or(&rule.ty);
        match map_value(
            rule,
            ty,
            raw,
            ctx.lenient_scalars,
            Target::Salesforce,
            Some(ctx.received_at),
        ) {
            Ok(Some(v)) => {
                fields.insert(rule.to.clone(), v);
            }
            Ok(None) => {}
            Err(failures) => problems.extend(
                failures
                    .into_iter()
                    .map(|f| problem(&rule.from, f.code, f.detail)),
            ),
        }
    }
    if mapping.reject_unknown {
        problems.extend(unknown_fields(mapping, input));
    }
    let upsert_key = mapping.upsert_key.clone().unwrap_or_default();
    let upsert_value = fields.get(&upsert_key).and_then(scalar_text);
    if problems.is_empty() && upsert_value.is_none() {
        problems.push(problem(
            &upsert_key,
            "required",
            "the upsert key has no value".to_string(),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(MappedRecord {
        object: mapping.object.clone(),
        upsert_key,
        upsert_value: upsert_value.unwrap_or_default(),
        fields,
        mapping: mapping.name.clone(),
        mapping_version: version.to_string(),
    })
}

pub(crate) fn map_outbound(mapping: &Mapping, input: &Value) -> Result<Value, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut out = Map::new();
    for (to, value) in &mapping.constants {
        set_path(&mut out, to, value.clone());
    }
    for rule in &mapping.fields {
        let Source::Path(path) = &rule.source else {
            continue;
        };
        let raw = get_path(input, path).cloned();
        // Dates from Salesforce are the org's business: plausibility rules are for bank input.
        match map_value(rule, &rule.ty, raw, false, Target::Bank, None) {
            Ok(Some(v)) => set_path(&mut out, &rule.to, v),
            Ok(None) => {}
            Err(failures) => problems.extend(
                failures
                    .into_iter()
                    .map(|f| problem(&rule.from, f.code, f.detail)),
            ),
        }
    }
    if mapping.reject_unknown {
        problems.extend(
            unknown_fields(mapping, input)
                .into_iter()
                .filter(|p| p.field != "attributes"),
        );
    }
    if problems.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(problems)
    }
}

/// A context variable as a string, and for `$received_at` the type that reads it back (the
/// field's own `formats` describe bank input, not our timestamp).
fn context_value(
    var: ContextVar,
    rule: &FieldRule,
    ctx: &MapContext,
) -> (Option<Value>, Option<FieldType>) {
    let text = match var {
        ContextVar::RequestKey => Some(ctx.request_key.to_string()),
        ContextVar::BankAccountId => Some(ctx.bank_account_id.to_string()),
        ContextVar::BankCode => ctx.bank_code.map(str::to_string),
        ContextVar::ReceivedAt => Some(write_datetime(ctx.received_at, Target::Bank)),
    };
    let ty = match (&rule.ty, var) {
        (FieldType::Datetime { .. }, ContextVar::ReceivedAt) => Some(FieldType::Datetime {
            formats: vec![RFC3339.into()],
        }),
        _ => None,
    };
    (text.map(Value::String), ty)
}

fn map_value(
    rule: &FieldRule,
    ty: &FieldType,
    raw: Option<Value>,
    lenient: bool,
    target: Target,
    now: Option<DateTime<Utc>>,
) -> Result<Option<Value>, Vec<Failure>> {
    let present = match raw {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let s = rule.transforms.iter().fold(s, |acc, t| t.apply(acc));
            (!s.is_empty()).then_some(Value::String(s))
        }
        Some(other) => Some(other),
    };
    let value = match (present, &rule.default) {
        (Some(v), _) => match (&rule.values, &v) {
            (Some(map), Value::String(s)) => {
                Value::String(map.apply(s, rule.sensitive).map_err(|f| vec![f])?)
            }
            _ => v,
        },
        (None, Some(default)) => default.clone(),
        (None, None) if rule.required => {
            return Err(vec![Failure {
                code: "required",
                detail: "is required".to_string(),
            }]);
        }
        (None, None) => return Ok(None),
    };
    let converted = ty
        .convert(&value, lenient, target, rule.sensitive)
        .map_err(|f| vec![f])?;
    let mut failures = rule.validate.check(&converted, rule.sensitive, now);
    if let (FieldType::String | FieldType::Picklist, Value::String(text)) = (ty, &converted) {
        failures.extend(rule.chars.check(text));
    }
    if failures.is_empty() {
        Ok(Some(converted))
    } else {
        Err(failures)
    }
}

/// Body paths no field reads and no `when` inspects.
fn unknown_fields(mapping: &Mapping, input: &Value) -> Vec<FieldProblem> {
    let mut known: Vec<&str> = mapping
        .fields
        .iter()
        .filter(|f| matches!(f.source, Source::Path(_)))
        .map(|f| f.from.as_str())
        .collect();
    known.extend(mapping.when.as_ref().map(|w| w.field.as_str()));
    let mut found = Vec::new();
    if let Value::Object(map) = input {
        walk_unknown(map, &mut String::new(), &known, &mut found);
    }
    found
        .into_iter()
        .map(|path| {
            problem(
                &path,
                "unknown_field",
                "is not a field of this request".to_owned(),
            )
        })
        .collect()
}

/// The dotted paths under `map` (whose own path, with a trailing dot, is `prefix`) that are neither
/// `known` nor the parent of a known path; `prefix` is a scratch buffer, as it was on return.
fn walk_unknown(
    map: &Map<String, Value>,
    prefix: &mut String,
    known: &[&str],
    found: &mut Vec<String>,
) {
    for (key, value) in map {
        let len = prefix.len();
        prefix.push_str(key);
        if !known.contains(&prefix.as_str()) {
            prefix.push('.');
            match value {
                Value::Object(inner) if known.iter().any(|k| k.starts_with(prefix.as_str())) => {
                    walk_unknown(inner, prefix, known, found)
                }
                _ => found.push(prefix[..prefix.len() - 1].to_owned()),
            }
        }
        prefix.truncate(len);
    }
}

fn get_path<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object()?.get(key))
}

fn set_path(out: &mut Map<String, Value>, dotted: &str, value: Value) {
    match dotted.split_once('.') {
        None => {
            out.insert(dotted.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = out
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Text of a scalar (strings unquoted), `None` for arrays, objects and null.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn problem(field: &str, code: &'static str, detail: String) -> FieldProblem {
    FieldProblem {
        field: field.to_string(),
        code,
        detail,
    }
}
