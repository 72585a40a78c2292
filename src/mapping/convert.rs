//! Field types, transforms and validation rules: the per-value work of a mapping.
//!
//! Everything here is pure and works on one `serde_json::Value` at a time; `apply` decides the
//! order (transforms → value map → type → validation) and collects the failures.

use std::collections::BTreeMap;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, Timelike, Utc};
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
    /// Dates and datetimes: not after the request's receipt (a day of slack for dates, for time zones
    /// ahead of UTC; five minutes for datetimes, for clock skew).
    pub not_future: bool,
    /// Dates of birth: the subject's age in full years at receipt.
    pub min_age_years: Option<u32>,
    pub max_age_years: Option<u32>,
    /// Dates and datetimes: not older than this many days at receipt (e.g. a consent's validity).
    pub max_age_days: Option<u32>,
}

/// Which characters a text field accepts (`chars` in a `[[field]]`). Names and references with control or
/// invisible characters are echoed into webhooks, e-mails and the bureau's screens: a NUL truncates, CR/LF
/// forges lines, U+202E reverses what a reader sees, and a flood of combining marks buries text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CharPolicy {
    /// No C0/C1 controls (tab and line breaks included), no bidirectional controls, no invisible format
    /// characters (zero-width space, word joiner, BOM...), at most [`MAX_COMBINING_RUN`] combining marks in a row.
    Plain,
    /// As `Plain`, but tab, LF and CR are allowed (free-text fields).
    Multiline,
    /// Anything (values from Salesforce, or a field that really carries raw text).
    Any,
}

/// Combining marks (and zero-width joiners / variation selectors) allowed in a row: real scripts stack two or
/// three; "Zalgo" text stacks dozens.
pub(crate) const MAX_COMBINING_RUN: usize = 4;

impl CharPolicy {
    /// The first rule `text` breaks. The detail names the code point, never the value.
    pub(crate) fn check(self, text: &str) -> Option<Failure> {
        if self == CharPolicy::Any {
            return None;
        }
        // Most values are plain ASCII without control characters: nothing below can object to them.
        if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_control()) {
            return None;
        }
        let mut run = 0;
        for c in text.chars() {
            let why = match c {
                '\t' | '\n' | '\r' if self == CharPolicy::Multiline => None,
                c if c.is_control() => Some("a control character"),
                '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}' => Some("a bidirectional control"),
                '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}' => {
                    Some("an invisible character")
                }
                _ => None,
            };
            if let Some(why) = why {
                return Some(fail(
                    "invalid_characters",
                    format!(
                        "contains U+{:04X} ({why}), which is not allowed",
                        u32::from(c)
                    ),
                ));
            }
            run = if is_combining(c) { run + 1 } else { 0 };
            if run > MAX_COMBINING_RUN {
                return Some(fail(
                    "invalid_characters",
                    format!("has more than {MAX_COMBINING_RUN} combining marks in a row"),
                ));
            }
        }
        None
    }
}

/// Combining marks of the combining-diacritics blocks, zero-width (non-)joiners and variation selectors.
fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0483}'..='\u{0489}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200C}' | '\u{200D}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{E0100}'..='\u{E01EF}')
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
                .find_map(|f| parse_date(s.trim(), f))
                .map(|d| Value::String(iso_date(d)))
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

/// `NaiveDate::parse_from_str(text, format)`, except that the two date formats of nearly every feed cell
/// (`%Y-%m-%d`, `%d-%m-%Y`) are read directly when the text has their exact 10-character shape: chrono
/// parses the format string again on every call, which was a measurable share of a 1,000,000-row upload.
/// The result is the same as chrono's for every input (other shapes and formats go through chrono).
pub(crate) fn parse_date(text: &str, format: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10 {
        let ymd = match format {
            "%Y-%m-%d" if b[4] == b'-' && b[7] == b'-' => {
                Some((number(0, 4), number(5, 7), number(8, 10)))
            }
            "%d-%m-%Y" if b[2] == b'-' && b[5] == b'-' => {
                Some((number(6, 10), number(3, 5), number(0, 2)))
            }
            _ => None,
        };
        if let Some((Some(y), Some(m), Some(d))) = ymd {
            return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
        }
    }
    NaiveDate::parse_from_str(text, format).ok()
}

/// A date as `YYYY-MM-DD` (chrono's `%Y-%m-%d`, without parsing that format per call for years 0-9999).
fn iso_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&d.year()) {
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        d.format("%Y-%m-%d").to_string()
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
        // Written field by field: `format` parses its pattern on every call, on intake's hot path.
        Target::Salesforce if (0..=9999).contains(&dt.year()) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.nanosecond() % 1_000_000_000 / 1_000_000
        ),
        Target::Salesforce => dt.format(SALESFORCE_DATETIME).to_string(),
        Target::Bank => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

impl Validate {
    /// Every rule the converted value breaks. `now` is the request's receipt time; without it (values from
    /// Salesforce) the date plausibility rules are skipped.
    pub(crate) fn check(
        &self,
        value: &Value,
        sensitive: bool,
        now: Option<DateTime<Utc>>,
    ) -> Vec<Failure> {
        let mut out = Vec::new();
        if let (Some(now), Value::String(s)) = (now, value) {
            out.extend(self.check_dates(s, now));
        }
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
                let range = range_text(self.min, self.max);
                out.push(fail("out_of_range", format!("{n} is not {range}")));
            }
        }
        out
    }
}

/// "between 1 and 2", "at least 1", "at most 2" for a rule's bounds.
fn range_text<T: std::fmt::Display>(lo: Option<T>, hi: Option<T>) -> String {
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
        (Some(lo), None) => format!("at least {lo}"),
        (None, Some(hi)) => format!("at most {hi}"),
        (None, None) => String::new(),
    }
}

impl Validate {
    fn has_date_rules(&self) -> bool {
        self.not_future
            || self.min_age_years.is_some()
            || self.max_age_years.is_some()
            || self.max_age_days.is_some()
    }

    /// The plausibility rules on a converted date (`YYYY-MM-DD`) or datetime (Salesforce or RFC 3339 text).
    fn check_dates(&self, text: &str, now: DateTime<Utc>) -> Vec<Failure> {
        if !self.has_date_rules() {
            return Vec::new();
        }
        let (date, instant, slack) = match parse_date(text, "%Y-%m-%d") {
            Some(d) => (
                d,
                d.and_time(chrono::NaiveTime::MIN).and_utc(),
                chrono::Duration::days(1),
            ),
            None => {
                let Some(dt) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
                    .or_else(|_| DateTime::parse_from_rfc3339(text))
                    .ok()
                    .map(|d| d.with_timezone(&Utc))
                else {
                    return Vec::new();
                };
                (dt.date_naive(), dt, chrono::Duration::minutes(5))
            }
        };
        let mut out = Vec::new();
        if self.not_future && instant > now + slack {
            out.push(fail("in_future", "is in the future".to_string()));
        }
        let today = now.date_naive();
        if self.min_age_years.is_some() || self.max_age_years.is_some() {
            let age = today.years_since(date).unwrap_or(0);
            let too_young = self.min_age_years.is_some_and(|min| age < min);
            let too_old = self.max_age_years.is_some_and(|max| age > max);
            if too_young || too_old {
                let range = range_text(self.min_age_years, self.max_age_years);
                out.push(fail(
                    "implausible_age",
                    format!("gives an age of {age} years; the subject must be {range} years old"),
                ));
            }
        }
        if let Some(days) = self.max_age_days
            && now - instant > chrono::Duration::days(i64::from(days))
        {
            out.push(fail(
                "too_old",
                format!("is more than {days} days before the request"),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written Salesforce form is exactly chrono's `SALESFORCE_DATETIME` rendering.
    #[test]
    fn salesforce_datetimes_match_the_format_string() {
        for text in [
            "2026-11-20T10:00:00Z",
            "2026-01-02T03:04:05.678901234Z",
            "1999-12-31T23:59:59.999Z",
            "0001-01-01T00:00:00.001Z",
        ] {
            let dt = DateTime::parse_from_rfc3339(text)
                .expect("rfc3339")
                .with_timezone(&Utc);
            assert_eq!(
                write_datetime(dt, Target::Salesforce),
                dt.format(SALESFORCE_DATETIME).to_string(),
                "{text}"
            );
        }
    }

    #[test]
    fn plain_text_refuses_controls_bidi_invisibles_and_mark_floods() {
        for ok in [
            "Maria Martina",
            "Nguyễn Văn A",
            "Ærøskøbing",
            "O'Neil-Smith",
            "李小龙",
            "👩\u{200D}💻",
        ] {
            assert_eq!(CharPolicy::Plain.check(ok), None, "{ok}");
        }
        for (bad, code_point) in [
            ("Ann\u{0}a", "U+0000"),
            ("line\r\nBcc: x", "U+000D"),
            ("tab\there", "U+0009"),
            ("c1\u{85}", "U+0085"),
            ("evil\u{202E}fdp.exe", "U+202E"),
            ("iso\u{2066}late", "U+2066"),
            ("zero\u{200B}width", "U+200B"),
            ("\u{FEFF}bom", "U+FEFF"),
        ] {
            let failure = CharPolicy::Plain.check(bad).expect(bad);
            assert_eq!(failure.code, "invalid_characters");
            assert!(failure.detail.contains(code_point), "{}", failure.detail);
        }
        let zalgo = format!("Z{}algo", "\u{0301}".repeat(MAX_COMBINING_RUN + 1));
        assert!(CharPolicy::Plain.check(&zalgo).is_some());
        let fine = format!("Z{}algo", "\u{0301}".repeat(MAX_COMBINING_RUN));
        assert_eq!(CharPolicy::Plain.check(&fine), None);
        assert_eq!(CharPolicy::Multiline.check("two\r\nlines\tok"), None);
        assert!(CharPolicy::Multiline.check("nul\u{0}").is_some());
        assert_eq!(CharPolicy::Any.check("anything\u{202E}\u{0}"), None);
    }

    #[test]
    fn date_plausibility_rules() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .expect("literal")
            .with_timezone(&Utc);
        let birth = Validate {
            not_future: true,
            min_age_years: Some(16),
            max_age_years: Some(120),
            ..Validate::default()
        };
        let codes = |v: &Validate, text: &str| -> Vec<&'static str> {
            v.check(&Value::String(text.into()), false, Some(now))
                .into_iter()
                .map(|f| f.code)
                .collect()
        };
        assert!(codes(&birth, "1980-01-31").is_empty());
        assert!(codes(&birth, "2010-12-01").is_empty(), "16 today");
        assert_eq!(codes(&birth, "2010-12-02"), ["implausible_age"]);
        assert_eq!(
            codes(&birth, "2030-01-01"),
            ["in_future", "implausible_age"]
        );
        assert_eq!(codes(&birth, "1900-01-01"), ["implausible_age"]);
        // Without a receipt time (values from Salesforce) the rules do not apply.
        assert!(
            birth
                .check(&Value::String("2030-01-01".into()), false, None)
                .is_empty()
        );

        let consent = Validate {
            not_future: true,
            max_age_days: Some(365),
            ..Validate::default()
        };
        assert!(codes(&consent, "2026-11-20T10:00:00.000+0000").is_empty());
        assert!(
            codes(&consent, "2026-12-01T12:04:00.000+0000").is_empty(),
            "clock skew"
        );
        assert_eq!(
            codes(&consent, "2026-12-01T13:00:00.000+0000"),
            ["in_future"]
        );
        assert_eq!(codes(&consent, "2025-11-01T10:00:00.000+0000"), ["too_old"]);
    }

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
    fn fast_dates_agree_with_chrono() {
        for text in [
            "2020-01-15",
            "2020-02-30",
            "2020-13-01",
            "0000-01-01",
            "15-01-2020",
            "31-04-2020",
            "2020-1-5",
            "2020/01/15",
            "+2020-01-1",
            "2020-01-1x",
            " 2020-01-15",
            "99999-01-01",
        ] {
            for format in ["%Y-%m-%d", "%d-%m-%Y"] {
                assert_eq!(
                    parse_date(text, format),
                    NaiveDate::parse_from_str(text, format).ok(),
                    "{text} {format}"
                );
            }
        }
        for d in [
            NaiveDate::MIN,
            NaiveDate::MAX,
            NaiveDate::from_ymd_opt(7, 3, 9).unwrap(),
        ] {
            assert_eq!(iso_date(d), d.format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn strftime_formats_are_checked() {
        assert!(format_is_valid("%d-%m-%Y"));
        assert!(format_is_valid(RFC3339));
        assert!(!format_is_valid("%Y-%Q"));
    }
}
