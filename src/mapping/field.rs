//! Compiling one `[[field]]` entry: its source, type, value map, transforms, validation rules
//! and default, each checked against the others so a mapping that loads cannot fail at runtime
//! for reasons of its own.

use serde_json::Value;
use toml::Spanned;

use super::compile::{Direction, FileProblems};
use super::convert::{
    CharPolicy, FieldType, RFC3339, Target, Transform, UnknownValue, Validate, ValueMap,
    format_is_valid,
};
use super::spec::{RawField, RawTransform};

/// Values a field can take from the request instead of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextVar {
    RequestKey,
    BankAccountId,
    BankCode,
    ReceivedAt,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Dotted path split into segments.
    Path(Vec<String>),
    Context(ContextVar),
}

#[derive(Debug, Clone)]
pub(crate) struct FieldRule {
    /// The `from` text as written, used as the problem's field name.
    pub from: String,
    pub source: Source,
    pub to: String,
    pub ty: FieldType,
    pub required: bool,
    /// Masked in problem details: explicit `sensitive = true`, or a national id by name.
    pub sensitive: bool,
    pub default: Option<Value>,
    pub values: Option<ValueMap>,
    pub transforms: Vec<Transform>,
    pub validate: Validate,
    /// Characters a text value may contain (inbound text fields refuse controls by default).
    pub chars: CharPolicy,
}

pub(crate) fn parse_path(text: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = text.split('.').map(str::to_string).collect();
    (!parts.iter().any(|s| s.is_empty() || s.starts_with('$'))).then_some(parts)
}

pub(crate) fn toml_to_json(value: &toml::Value) -> Option<Value> {
    match value {
        toml::Value::String(s) => Some(Value::String(s.clone())),
        toml::Value::Integer(i) => Some(Value::from(*i)),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number),
        toml::Value::Boolean(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}

pub(crate) fn compile_field(
    raw: RawField,
    at: usize,
    direction: Direction,
    target: Target,
    p: &mut FileProblems<'_>,
) -> Option<FieldRule> {
    let before = p.found.len();
    let Some(from_s) = raw.from.as_ref() else {
        p.at(at, "field is missing `from`");
        return None;
    };
    let Some(to) = raw.to.as_ref().map(|t| t.get_ref().clone()) else {
        p.at(at, "field is missing `to`");
        return None;
    };
    let from = from_s.get_ref().clone();
    let source = match (from.strip_prefix('$'), direction) {
        (Some(var), Direction::Inbound) => match var {
            "request_key" => Some(Source::Context(ContextVar::RequestKey)),
            "bank_account_id" => Some(Source::Context(ContextVar::BankAccountId)),
            "bank_code" => Some(Source::Context(ContextVar::BankCode)),
            "received_at" => Some(Source::Context(ContextVar::ReceivedAt)),
            _ => None,
        },
        (Some(_), Direction::Outbound) => None,
        (None, _) => parse_path(&from).map(Source::Path),
    };
    let Some(source) = source else {
        p.at(
            from_s.span().start,
            format!(
                "`from = {from:?}` is neither a dotted path nor a context variable \
             ($request_key, $bank_account_id, $bank_code, $received_at; inbound only)"
            ),
        );
        return None;
    };

    let ty = compile_type(&raw, at, direction, p)?;
    let values = raw.values.as_ref().map(|v| {
        if !matches!(ty, FieldType::String | FieldType::Picklist) {
            p.at(
                v.span().start,
                "`values` applies to string and picklist fields only",
            );
        }
        v.get_ref().clone()
    });
    let unknown = match raw
        .unknown
        .as_ref()
        .map(|u| (u.get_ref().as_str(), u.span().start))
    {
        None => UnknownValue::Reject,
        Some((_, at)) if values.is_none() => {
            p.at(at, "`unknown` needs a `values` map");
            UnknownValue::Reject
        }
        Some(("reject", _)) => UnknownValue::Reject,
        Some(("passthrough", _)) => UnknownValue::Passthrough,
        Some((other, at)) => match other.strip_prefix("default:") {
            Some(v) => UnknownValue::Default(v.to_string()),
            None => {
                p.at(at, format!("unknown must be \"reject\", \"passthrough\" or \"default:<value>\", not {other:?}"));
                UnknownValue::Reject
            }
        },
    };

    let mut transforms = Vec::new();
    if let Some(list) = &raw.transform {
        for step in list.get_ref() {
            let parsed = match step {
                RawTransform::Short(s) => Transform::parse(s),
                RawTransform::Regex {
                    regex_replace,
                    replacement,
                } => Transform::regex(regex_replace, replacement),
            };
            match parsed {
                Ok(t) => transforms.push(t),
                Err(message) => p.at(list.span().start, message),
            }
        }
    }

    let validate = compile_validate(&raw, &ty, p);
    let chars = compile_chars(&raw, &ty, direction, p);
    let sensitive = raw.sensitive
        || [&from, &to].iter().any(|n| {
            let n = n.to_lowercase().replace('_', "");
            n.contains("nationalid")
        });

    let default = raw.default.as_ref().and_then(|d| {
        let Some(json) = toml_to_json(d.get_ref()) else {
            p.at(
                d.span().start,
                "default must be a string, number or boolean",
            );
            return None;
        };
        if let Err(f) = ty.convert(&json, false, target, sensitive) {
            p.at(
                d.span().start,
                format!("default does not fit type {}: {}", ty.name(), f.detail),
            );
        }
        Some(json)
    });

    (p.found.len() == before).then(|| FieldRule {
        from,
        source,
        to,
        ty,
        required: raw.required,
        sensitive,
        default,
        values: values.map(|map| ValueMap { map, unknown }),
        transforms,
        validate,
        chars,
    })
}

/// `chars = "plain" | "multiline" | "any"`: text fields only; inbound defaults to `plain`, outbound (values
/// that come from Salesforce) to `any`.
fn compile_chars(
    raw: &RawField,
    ty: &FieldType,
    direction: Direction,
    p: &mut FileProblems<'_>,
) -> CharPolicy {
    let textual = matches!(ty, FieldType::String | FieldType::Picklist);
    let default = match (direction, textual) {
        (Direction::Inbound, true) => CharPolicy::Plain,
        _ => CharPolicy::Any,
    };
    let Some(chars) = raw.chars.as_ref() else {
        return default;
    };
    let at = chars.span().start;
    if !textual {
        p.at(
            at,
            format!(
                "`chars` applies to string and picklist fields, not {}",
                ty.name()
            ),
        );
        return default;
    }
    match chars.get_ref().as_str() {
        "plain" => CharPolicy::Plain,
        "multiline" => CharPolicy::Multiline,
        "any" => CharPolicy::Any,
        other => {
            p.at(
                at,
                format!("chars must be \"plain\", \"multiline\" or \"any\", not {other:?}"),
            );
            default
        }
    }
}

fn compile_type(
    raw: &RawField,
    at: usize,
    direction: Direction,
    p: &mut FileProblems<'_>,
) -> Option<FieldType> {
    let Some(ty) = raw.ty.as_ref() else {
        p.at(at, "field is missing `type`");
        return None;
    };
    let ty_at = ty.span().start;
    let formats = |defaults: &[&str], p: &mut FileProblems<'_>| match &raw.formats {
        None => defaults.iter().map(|s| s.to_string()).collect(),
        Some(list) => {
            if list.get_ref().is_empty() {
                p.at(list.span().start, "`formats` is empty");
            }
            for f in list.get_ref().iter().filter(|f| !format_is_valid(f)) {
                p.at(list.span().start, format!("invalid date/time format {f:?}"));
            }
            list.get_ref().clone()
        }
    };
    let name = ty.get_ref().as_str();
    let compiled = match name {
        "string" => FieldType::String,
        "integer" => FieldType::Integer,
        "picklist" => FieldType::Picklist,
        "decimal" => match &raw.scale {
            Some(s) => FieldType::Decimal {
                scale: *s.get_ref(),
            },
            None => {
                p.at(
                    ty_at,
                    "decimal fields need `scale` (digits after the point)",
                );
                return None;
            }
        },
        "boolean" => {
            let list = |l: &Option<Spanned<Vec<String>>>| {
                l.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default()
            };
            FieldType::Boolean {
                truthy: list(&raw.truthy),
                falsy: list(&raw.falsy),
            }
        }
        "date" => FieldType::Date {
            formats: formats(&["%Y-%m-%d"], p),
        },
        "datetime" => {
            let defaults: &[&str] = match direction {
                Direction::Inbound => &[RFC3339],
                Direction::Outbound => &["%Y-%m-%dT%H:%M:%S%.f%z", RFC3339],
            };
            FieldType::Datetime {
                formats: formats(defaults, p),
            }
        }
        other => {
            p.at(ty_at, format!(
                "unknown type {other:?} (string, integer, decimal, boolean, date, datetime, picklist)"
            ));
            return None;
        }
    };
    let misplaced = [
        (
            "scale",
            raw.scale.as_ref().map(|s| s.span().start),
            name == "decimal",
        ),
        (
            "formats",
            raw.formats.as_ref().map(|s| s.span().start),
            name == "date" || name == "datetime",
        ),
        (
            "truthy",
            raw.truthy.as_ref().map(|s| s.span().start),
            name == "boolean",
        ),
        (
            "falsy",
            raw.falsy.as_ref().map(|s| s.span().start),
            name == "boolean",
        ),
    ];
    for (key, at, fits) in misplaced {
        if let (Some(at), false) = (at, fits) {
            p.at(at, format!("`{key}` does not apply to type {name}"));
        }
    }
    Some(compiled)
}

fn compile_validate(raw: &RawField, ty: &FieldType, p: &mut FileProblems<'_>) -> Validate {
    let Some(v) = raw.validate.as_ref() else {
        return Validate::default();
    };
    let at = v.span().start;
    let v = v.get_ref();
    let numeric = matches!(ty, FieldType::Integer | FieldType::Decimal { .. });
    let textual = matches!(ty, FieldType::String | FieldType::Picklist);
    if (v.min.is_some() || v.max.is_some()) && !numeric {
        p.at(
            at,
            format!(
                "validate.min/max apply to integer and decimal fields, not {}",
                ty.name()
            ),
        );
    }
    if (v.min_len.is_some() || v.max_len.is_some() || v.allowed.is_some() || v.regex.is_some())
        && !textual
    {
        p.at(
            at,
            format!(
                "validate.regex/min_len/max_len/enum apply to string and picklist fields, not {}",
                ty.name()
            ),
        );
    }
    if let (Some(lo), Some(hi)) = (v.min_len, v.max_len)
        && lo > hi
    {
        p.at(
            at,
            format!("validate.min_len {lo} is greater than max_len {hi}"),
        );
    }
    if let (Some(lo), Some(hi)) = (v.min, v.max)
        && lo > hi
    {
        p.at(at, format!("validate.min {lo} is greater than max {hi}"));
    }
    let dated = matches!(ty, FieldType::Date { .. } | FieldType::Datetime { .. });
    let plausibility = v.not_future.is_some()
        || v.min_age_years.is_some()
        || v.max_age_years.is_some()
        || v.max_age_days.is_some();
    if plausibility && !dated {
        p.at(
            at,
            format!(
                "validate.not_future/min_age_years/max_age_years/max_age_days apply to date and datetime fields, not {}",
                ty.name()
            ),
        );
    }
    if let (Some(lo), Some(hi)) = (v.min_age_years, v.max_age_years)
        && lo > hi
    {
        p.at(
            at,
            format!("validate.min_age_years {lo} is greater than max_age_years {hi}"),
        );
    }
    let regex = v.regex.as_ref().and_then(|r| match regex::Regex::new(r) {
        Ok(re) => Some(re),
        Err(e) => {
            p.at(at, format!("bad regex {r:?}: {e}"));
            None
        }
    });
    Validate {
        regex,
        min_len: v.min_len,
        max_len: v.max_len,
        min: v.min,
        max: v.max,
        allowed: v.allowed.clone(),
        not_future: v.not_future.unwrap_or(false),
        min_age_years: v.min_age_years,
        max_age_years: v.max_age_years,
        max_age_days: v.max_age_days,
    }
}
