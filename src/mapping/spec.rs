//! The mapping file format as written by admins, before any checking beyond TOML syntax.
//!
//! Values that `compile` checks keep their `Spanned` wrapper so a problem can point at its line.
//! Unknown keys are found by walking the parsed document ([`unknown_keys`]) rather than with
//! `deny_unknown_fields`, because serde stops at the first one and admins want all of them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One mapping file.
#[derive(Debug, Deserialize)]
pub(crate) struct RawMapping {
    pub name: Option<Spanned<String>>,
    pub object: Option<Spanned<String>>,
    pub direction: Option<Spanned<String>>,
    pub upsert_key: Option<Spanned<String>>,
    pub accepts: Option<Spanned<Vec<String>>>,
    pub xml_root: Option<Spanned<String>>,
    pub unknown_fields: Option<Spanned<String>>,
    pub when: Option<Spanned<RawWhen>>,
    #[serde(default)]
    pub constants: BTreeMap<Spanned<String>, toml::Value>,
    #[serde(default)]
    pub field: Vec<Spanned<RawField>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawWhen {
    pub field: String,
    pub equals: String,
}

/// One `[[field]]` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct RawField {
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub ty: Option<Spanned<String>>,
    pub scale: Option<Spanned<u32>>,
    pub formats: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub sensitive: bool,
    pub default: Option<Spanned<toml::Value>>,
    pub values: Option<Spanned<BTreeMap<String, String>>>,
    pub unknown: Option<Spanned<String>>,
    pub truthy: Option<Spanned<Vec<String>>>,
    pub falsy: Option<Spanned<Vec<String>>>,
    pub transform: Option<Spanned<Vec<RawTransform>>>,
    pub validate: Option<Spanned<RawValidate>>,
    pub chars: Option<Spanned<String>>,
}

/// A transform step: a short string (`"pad_left:8:0"`) or, for regexes whose pattern or
/// replacement contains colons, a table `{ regex_replace = "…", replacement = "…" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawTransform {
    Short(String),
    Regex {
        regex_replace: String,
        #[serde(default)]
        replacement: String,
    },
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawValidate {
    pub regex: Option<String>,
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(rename = "enum")]
    pub allowed: Option<Vec<String>>,
    pub not_future: Option<bool>,
    pub min_age_years: Option<u32>,
    pub max_age_years: Option<u32>,
    pub max_age_days: Option<u32>,
}

const TOP_KEYS: &[&str] = &[
    "name",
    "object",
    "direction",
    "upsert_key",
    "accepts",
    "xml_root",
    "unknown_fields",
    "when",
    "constants",
    "field",
];
const WHEN_KEYS: &[&str] = &["field", "equals"];
const FIELD_KEYS: &[&str] = &[
    "from",
    "to",
    "type",
    "scale",
    "formats",
    "required",
    "sensitive",
    "default",
    "values",
    "unknown",
    "truthy",
    "falsy",
    "transform",
    "validate",
    "chars",
];
const VALIDATE_KEYS: &[&str] = &[
    "regex",
    "min_len",
    "max_len",
    "min",
    "max",
    "enum",
    "not_future",
    "min_age_years",
    "max_age_years",
    "max_age_days",
];
const TRANSFORM_TABLE_KEYS: &[&str] = &["regex_replace", "replacement"];

/// Every key the format does not know, as (byte offset, message). `constants` and `values` hold
/// admin-chosen keys and are not walked.
pub(crate) fn unknown_keys(doc: &DeTable<'_>) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    check_table(doc, TOP_KEYS, "", &mut found);
    if let Some(when) = doc.get("when").and_then(|v| v.get_ref().as_table()) {
        check_table(when, WHEN_KEYS, "when.", &mut found);
    }
    let fields = doc.get("field").and_then(|v| v.get_ref().as_array());
    for entry in fields.into_iter().flat_map(|a| a.iter()) {
        let Some(field) = entry.get_ref().as_table() else {
            continue;
        };
        check_table(field, FIELD_KEYS, "field.", &mut found);
        if let Some(validate) = field.get("validate").and_then(|v| v.get_ref().as_table()) {
            check_table(validate, VALIDATE_KEYS, "field.validate.", &mut found);
        }
        let steps = field.get("transform").and_then(|v| v.get_ref().as_array());
        for step in steps.into_iter().flat_map(|a| a.iter()) {
            if let DeValue::Table(t) = step.get_ref() {
                check_table(t, TRANSFORM_TABLE_KEYS, "field.transform.", &mut found);
            }
        }
    }
    found
}

fn check_table(
    table: &DeTable<'_>,
    known: &[&str],
    prefix: &str,
    found: &mut Vec<(usize, String)>,
) {
    for key in table.keys() {
        if !known.contains(&key.get_ref().as_ref()) {
            found.push((
                key.span().start,
                format!(
                    "unknown key `{prefix}{}` (expected one of: {})",
                    key.get_ref(),
                    known.join(", ")
                ),
            ));
        }
    }
}

/// 1-based line number of a byte offset in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
