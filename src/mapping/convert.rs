//! Field types, transforms and validation rules: the per-value work of a mapping.
//!
//! Everything here is pure and works on one `serde_json::Value` at a time; `apply` decides the
//! order (transforms → value map → type → validation) and collects the failures.

use std::collections::BTreeMap;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use regex::Regex;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

/// The name admins use for RFC 3339 in `formats` (chrono has no strftime spelling for it).
pub(crate) const RFC3339: &str = "rfc3339";

/// Salesforce's datetime wire format; always written in UTC.
const SALESFORCE_DATETIME: &str = "%Y-%m-%dT%H:%M:%S%.3f+0000";

/// What a field becomes on the target side.
#[derive(Debug, Clone)]
pub(crate) enum FieldType {
    String,
    Integer,
    /// Rejects values with more decimal places than `scale` rather than rounding money silently.
    Decimal {
        scale: u32,
    },
    /// `truthy`/`falsy` (compared case-insensitively) let banks send `"Y"`/`"N"` and the like.
    Boolean {
        truthy: Vec<String>,
        falsy: Vec<String>,
    },
    /// `formats` are tried in order; output is always `YYYY-MM-DD`.
    Date {
        formats: Vec<String>,
    },
    /// `formats` are tried in order; a format without offset is read as UTC.
    Datetime {
        formats: Vec<String>,
    },
    Picklist,
}

/// Which side a converted value is written for; only datetimes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Salesforce,
    Bank,
}

/// One step of a field's `transform` list, applied to string values in order.
#[derive(Debug, Clone)]
pub(crate) enum Transform {
    Trim,
    Upper,
    Lower,
    Strip(Vec<char>),
    PadLeft(usize, char),
    PadRight(usize, char),
    RegexReplace(Regex, String),
    /// Keeps the last four characters: for fields that must never carry a full identifier.
    Mask,
}

/// What to do with a value missing from a value map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnknownValue {
    Reject,
    Passthrough,
    Default(String),
}

#[derive(Debug, Clone)]
pub(crate) struct ValueMap {
    pub map: BTreeMap<String, String>,
    pub unknown: UnknownValue,
}

/// Rules checked on the converted value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Validate {
    pub regex: Option<Regex>,
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allowed: Option<Vec<String>>,
}

/// Why one value failed: a `FieldProblem` code and a detail safe to show the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub code: &'static str,
    pub detail: String,
}

fn fail(code: &'static str, detail: String) -> Failure {
    Failure { code, detail }
}

/// Renders a value for a problem detail; sensitive values (national ids) are masked.
pub(crate) fn show(text: &str, sensitive: bool) -> String {
    if sensitive {
        format!("'{}'", mask(text))
    } else {
        format!("'{text}'")
    }
}

/// Replaces all but the last four characters with `*` (all of them when there are four or fewer).
pub(crate) fn mask(text: &str) -> String {
    let n = text.chars().count();
    let keep = if n > 4 { 4 } else { 0 };
    text.chars()
        .enumerate()
        .map(|(i, c)| if i < n - keep { '*' } else { c })
        .collect()
}

/// Whether a strftime format string is well-formed (chrono only reports this while parsing).
pub(crate) fn format_is_valid(format: &str) -> bool {
    format == RFC3339 || !StrftimeItems::new(format).any(|item| matches!(item, Item::Error))
}

impl Transform {
    /// Parses the short form: `trim`, `upper`, `lower`, `mask`, `strip:<chars>`,
    /// `pad_left:<n>:<c>`, `pad_right:<n>:<c>`, `regex_replace:<pattern>:<replacement>` (split at
    /// the last colon; use the table form when the replacement needs one).
    pub(crate) fn parse(step: &str) -> Result<Self, String> {
        let (op, arg) = step.split_once(':').unwrap_or((step, ""));
        match (op, arg) {
            ("trim", "") => Ok(Self::Trim),
            ("upper", "") => Ok(Self::Upper),
            ("lower", "") => Ok(Self::Lower),
            ("mask", "") => Ok(Self::Mask),
            ("strip", chars) if !chars.is_empty() => Ok(Self::Strip(chars.chars().collect())),
            ("pad_left" | "pad_right", arg) => {
                let parsed = arg.split_once(':').and_then(|(n, c)| {
                    let mut chars = c.chars();
                    match (n.parse::<usize>(), chars.next(), chars.next()) {
                        (Ok(n), Some(c), None) => Some((n, c)),
                        _ => None,
                    }
                });
                let (n, c) =
                    parsed.ok_or_else(|| format!("`{op}` needs `{op}:<width>:<one char>`"))?;
                Ok(if op == "pad_left" {
                    Self::PadLeft(n, c)
                } else {
                    Self::PadRight(n, c)
                })
            }
            ("regex_replace", arg) => {
                let (pattern, replacement) = arg.rsplit_once(':').ok_or_else(|| {
                    "`regex_replace` needs `regex_replace:<pattern>:<replacement>`".to_string()
                })?;
                Self::regex(pattern, replacement)
            }
            _ => Err(format!(
                "unknown transform `{step}` (expected trim, upper, lower, mask, strip:<chars>, \
                 pad_left:<n>:<c>, pad_right:<n>:<c>, regex_replace:<pattern>:<replacement>)"
            )),
        }
    }

    pub(crate) fn regex(pattern: &str, replacement: &str) -> Result<Self, String> {
        let re = Regex::new(pattern).map_err(|e| format!("bad regex `{pattern}`: {e}"))?;
        Ok(Self::RegexReplace(re, replacement.to_string()))
    }

    pub(crate) fn apply(&self, text: String) -> String {
        match self {
            Self::Trim => text.trim().to_string(),
            Self::Upper => text.to_uppercase(),
            Self::Lower => text.to_lowercase(),
            Self::Strip(chars) => text.chars().filter(|c| !chars.contains(c)).collect(),
            Self::PadLeft(width, c) => {
                let pad = width.saturating_sub(text.chars().count());
                std::iter::repeat_n(*c, pad).chain(text.chars()).collect()
            }
            Self::PadRight(width, c) => {
                let pad = width.saturating_sub(text.chars().count());
                text.chars().chain(std::iter::repeat_n(*c, pad)).collect()
            }
            Self::RegexReplace(re, replacement) => {
                re.replace_all(&text, replacement.as_str()).into_owned()
            }
            Self::Mask => mask(&text),
        }
    }
}

impl ValueMap {
    pub(crate) fn apply(&self, text: &str, sensitive: bool) -> Result<String, Failure> {
        if let Some(mapped) = self.map.get(text) {
            return Ok(mapped.clone());
        }
        match &self.unknown {
            UnknownValue::Passthrough => Ok(text.to_string()),
            UnknownValue::Default(v) => Ok(v.clone()),
            UnknownValue::Reject => {
                let keys: Vec<&str> = self.map.keys().map(String::as_str).collect();
                Err(fail(
                    "unknown_value",
                    format!(
                        "{} is not one of: {}",
                        show(text, sensitive),
                        keys.join(", ")
                    ),
                ))
            }
        }
    }
}

impl FieldType {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Decimal { .. } => "decimal",
            Self::Boolean { .. } => "boolean",
            Self::Date { .. } => "date",
            Self::Datetime { .. } => "datetime",
            Self::Picklist => "picklist",
        }
    }

    /// Converts a present, non-null value. `lenient` accepts numbers and booleans as text.
    pub(crate) fn convert(
        &self,
        value: &Value,
        lenient: bool,
        target: Target,
        sensitive: bool,
    ) -> Result<Value, Failure> {
        let wrong_type = || {
            let got = match value {
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
                Value::Null => "null",
            };
            fail(
                "invalid_type",
                format!("expected {}, got {got}", self.name()),
            )
        };
        match (self, value) {
            (Self::String | Self::Picklist, Value::String(s)) => Ok(Value::String(s.clone())),
            (Self::Integer, Value::Number(n)) => n.as_i64().map(Value::from).ok_or_else(wrong_type),
            (Self::Integer, Value::String(s)) if lenient => {
                s.trim().parse::<i64>().map(Value::from).map_err(|_| {
                    fail(
                        "invalid_format",
                        format!("{} is not an integer", show(s, sensitive)),
                    )
                })
            }
            (Self::Decimal { scale }, Value::Number(n)) => {
                decimal(&n.to_string(), *scale, sensitive)
            }
            (Self::Decimal { scale }, Value::String(s)) if lenient => {
                decimal(s.trim(), *scale, sensitive)
            }
            (Self::Boolean { .. }, Value::Bool(b)) => Ok(Value::Bool(*b)),
            (Self::Boolean { truthy, falsy }, Value::String(_) | Value::Number(_)) => {
                let text = match value {
                    Value::String(s) => s.trim().to_lowercase(),
                    other => other.to_string(),
                };
                let is = |list: &[String]| list.iter().any(|t| t.to_lowercase() == text);
                let lenient_default = lenient && truthy.is_empty() && falsy.is_empty();
                if is(truthy) || (lenient_default && (text == "true" || text == "1")) {
                    Ok(Value::Bool(true))
                } else if is(falsy) || (lenient_default && (text == "false" || text == "0")) {
                    Ok(Value::Bool(false))
                } else if truthy.is_empty() && falsy.is_empty() && !lenient {
                    Err(wrong_type())
                } else {
                    Err(fail(
                        "invalid_format",
                        format!(
                            "{} is not a recognised yes/no value",
                            show(&text, sensitive)
                        ),
                    ))
                }
            }
            (Self::Date { formats }, Value::String(s)) => formats
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(s.trim(), f).ok())
                .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
                .ok_or_else(|| no_format(s, formats, sensitive)),
            (Self::Datetime { formats }, Value::String(s)) => formats
                .iter()
                .find_map(|f| parse_datetime(s.trim(), f))
                .map(|dt| Value::String(write_datetime(dt, target)))
                .ok_or_else(|| no_format(s, formats, sensitive)),
            _ => Err(wrong_type()),
        }
    }
}

fn decimal(text: &str, scale: u32, sensitive: bool) -> Result<Value, Failure> {
    let bad = || {
        fail(
            "invalid_format",
            format!("{} is not a decimal number", show(text, sensitive)),
        )
    };
    let d = text
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|_| bad())?
        .normalize();
    if d.scale() > scale {
        return Err(fail(
            "invalid_format",
            format!(
                "{} has more than {scale} decimal places",
                show(text, sensitive)
            ),
        ));
    }
    d.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(bad)
}

fn no_format(text: &str, formats: &[String], sensitive: bool) -> Failure {
    fail(
        "invalid_format",
        format!(
            "{} matches none of the formats: {}",
            show(text, sensitive),
            formats.join(", ")
        ),
    )
}

fn parse_datetime(text: &str, format: &str) -> Option<DateTime<Utc>> {
    if format == RFC3339 {
        return DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|d| d.with_timezone(&Utc));
    }
    DateTime::parse_from_str(text, format)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, format)
                .ok()
                .map(|n| n.and_utc())
        })
}

/// Salesforce wants `2026-11-20T10:00:00.000+0000`; banks get RFC 3339 in UTC.
pub(crate) fn write_datetime(dt: DateTime<Utc>, target: Target) -> String {
    match target {
        Target::Salesforce => dt.format(SALESFORCE_DATETIME).to_string(),
        Target::Bank => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

impl Validate {
    /// Every rule the converted value breaks.
    pub(crate) fn check(&self, value: &Value, sensitive: bool) -> Vec<Failure> {
        let mut out = Vec::new();
        if let Value::String(s) = value {
            let len = s.chars().count();
            if let Some(re) = &self.regex
                && !re.is_match(s)
            {
                out.push(fail(
                    "pattern_mismatch",
                    format!("{} does not match {}", show(s, sensitive), re.as_str()),
                ));
            }
            if let Some(min) = self.min_len
                && len < min
            {
                out.push(fail(
                    "too_short",
                    format!("{len} characters, at least {min} required"),
                ));
            }
            if let Some(max) = self.max_len
                && len > max
            {
                out.push(fail(
                    "too_long",
                    format!("{len} characters, at most {max} allowed"),
                ));
            }
            if let Some(allowed) = &self.allowed
                && !allowed.contains(s)
            {
                out.push(fail(
                    "not_allowed",
                    format!(
                        "{} is not one of: {}",
                        show(s, sensitive),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        if let Some(n) = value.as_f64() {
            let below = self.min.is_some_and(|min| n < min);
            let above = self.max.is_some_and(|max| n > max);
            if below || above {
                let range = match (self.min, self.max) {
                    (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                    (Some(lo), None) => format!("at least {lo}"),
                    (None, Some(hi)) => format!("at most {hi}"),
                    (None, None) => String::new(),
                };
                out.push(fail("out_of_range", format!("{n} is not {range}")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_the_last_four_characters_only() {
        assert_eq!(mask("CW-1980013101"), "*********3101");
        assert_eq!(mask("1234"), "****");
        assert_eq!(mask(""), "");
        assert_eq!(show("CW-1980013101", true), "'*********3101'");
    }

    #[test]
    fn short_transforms_parse_or_explain() {
        assert!(matches!(
            Transform::parse("pad_left:8:0"),
            Ok(Transform::PadLeft(8, '0'))
        ));
        assert!(
            matches!(Transform::parse("strip:- "), Ok(Transform::Strip(c)) if c == vec!['-', ' '])
        );
        for bad in [
            "pad_left:8",
            "pad_left:x:0",
            "pad_right:3:ab",
            "strip:",
            "trim:x",
            "reverse",
            "regex_replace:(:x",
        ] {
            assert!(Transform::parse(bad).is_err(), "{bad} should not parse");
        }
        // The pattern may contain colons: the replacement starts after the last one.
        let Ok(t) = Transform::parse("regex_replace:^(\\d+):(\\d+)$:$1$2") else {
            panic!("parses")
        };
        assert_eq!(t.apply("12:34".into()), "1234");
    }

    #[test]
    fn strftime_formats_are_checked() {
        assert!(format_is_valid("%d-%m-%Y"));
        assert!(format_is_valid(RFC3339));
        assert!(!format_is_valid("%Y-%Q"));
    }
}
