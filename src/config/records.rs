//! `[records]`: data quality of credit records — duplicate rules, the banks' formatting habits, and the
//! stale-record gatekeeper's thresholds and schedule.
//!
//! Thresholds are in whole days (a tradeline's `Last_Reported__c` is a date). The most specific
//! `[[records.thresholds]]` entry wins: bank and product type, then bank, then product type, then the section's
//! `stale_after` / `warn_before`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::records::{
    Action, BankFormats, FormatBook, KeyField, Normaliser, Rule, RuleSet, Scope, check_date_format,
};

use super::BankConfig;
use super::reader::{self, HOUR, Section};
use super::tree::{Node, Value};

/// The product types of the default `Credit_Record__c` picklist, in their Salesforce spelling.
pub const PRODUCT_TYPES: &[&str] = &["Installment", "Revolving", "Mortgage", "Open", "Other"];

/// `[records]` settings. [`RecordsConfig::default`] is what applies when the section is absent (the gatekeeper
/// then runs only on demand).
#[derive(Debug, Clone)]
pub struct RecordsConfig {
    /// Days after `Last_Reported__c` at which a record is terminated as stale.
    pub stale_after_days: u32,
    /// Days before termination at which the furnishing bank is warned.
    pub warn_before_days: u32,
    /// Per bank and/or product type.
    pub thresholds: Vec<Threshold>,
    /// How often the gatekeeper runs on its own; `None` = only on demand.
    pub gatekeeper_interval: Option<Duration>,
    /// Configured duplicate rules (the default rule is added unless one is named `default`).
    pub rules: Vec<Rule>,
    /// Per bank code: known account-number prefixes and date formats.
    pub bank_formats: BTreeMap<String, BankFormats>,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            stale_after_days: 180,
            warn_before_days: 30,
            thresholds: Vec::new(),
            gatekeeper_interval: None,
            rules: Vec::new(),
            bank_formats: BTreeMap::new(),
        }
    }
}

/// One `[[records.thresholds]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    /// A `[[banks]]` code; `None` = every bank.
    pub bank: Option<String>,
    /// A product type in its Salesforce spelling; `None` = every product type.
    pub product_type: Option<String>,
    pub stale_after_days: u32,
    /// `None` = the section's `warn_before`.
    pub warn_before_days: Option<u32>,
}

impl RecordsConfig {
    /// `(stale_after, warn_before)` in days for a record of bank `bank_code` and `product_type`.
    pub fn threshold(&self, bank_code: Option<&str>, product_type: &str) -> (u32, u32) {
        let matches = |t: &&Threshold| {
            t.bank.as_deref().is_none_or(|b| Some(b) == bank_code)
                && t.product_type
                    .as_deref()
                    .is_none_or(|p| p.eq_ignore_ascii_case(product_type))
        };
        let best = self
            .thresholds
            .iter()
            .filter(matches)
            .max_by_key(|t| (t.bank.is_some(), t.product_type.is_some()));
        match best {
            Some(t) => (
                t.stale_after_days,
                t.warn_before_days.unwrap_or(self.warn_before_days),
            ),
            None => (self.stale_after_days, self.warn_before_days),
        }
    }

    /// The smallest `stale_after - warn_before` of any threshold: records reported more recently than that
    /// many days ago need no look at all.
    pub fn earliest_attention_days(&self) -> u32 {
        std::iter::once((self.stale_after_days, self.warn_before_days))
            .chain(self.thresholds.iter().map(|t| {
                (
                    t.stale_after_days,
                    t.warn_before_days.unwrap_or(self.warn_before_days),
                )
            }))
            .map(|(stale, warn)| stale.saturating_sub(warn))
            .min()
            .unwrap_or(0)
    }

    /// The rules in force, with bank formats keyed by Salesforce Account id.
    pub fn rule_set(&self, banks: &[BankConfig]) -> RuleSet {
        let by_furnisher = self
            .bank_formats
            .iter()
            .filter_map(|(code, formats)| {
                let bank = banks.iter().find(|b| &b.code == code)?;
                Some((bank.account_id.clone(), formats.clone()))
            })
            .collect();
        RuleSet::new(self.rules.clone(), FormatBook::new(by_furnisher))
    }
}

pub(crate) fn read_records(s: &mut Section<'_>, banks: &[BankConfig]) -> RecordsConfig {
    let days = reader::integer(1, 36_500);
    let stale_after_days = s.or("stale_after", 180, &days) as u32;
    let warn_before_days = s.or("warn_before", 30, reader::integer(0, 36_500)) as u32;
    if warn_before_days >= stale_after_days {
        s.invalid(
            "warn_before",
            format!("must be less than stale_after ({stale_after_days} days)"),
        );
    }
    let hours = s.or(
        "gatekeeper_interval_hours",
        24,
        reader::integer(0, 24 * 366),
    );
    let gatekeeper_interval = (hours > 0).then(|| HOUR * hours as u32);
    let thresholds = elements(s, "thresholds", "[[records.thresholds]]", |e| {
        read_threshold(e, banks, warn_before_days)
    });
    let mut names: Vec<String> = Vec::new();
    let rules = elements(s, "rules", "[[records.rules]]", |e| {
        let rule = read_rule(e)?;
        if names.contains(&rule.name) {
            e.invalid(
                "name",
                format!("\"{}\" is used by another rule too", rule.name),
            );
        }
        names.push(rule.name.clone());
        Some(rule)
    });
    let bank_formats = elements(s, "bank_formats", "[[records.bank_formats]]", |e| {
        read_bank_formats(e, banks)
    })
    .into_iter()
    .collect();
    RecordsConfig {
        stale_after_days,
        warn_before_days,
        thresholds,
        gatekeeper_interval,
        rules,
        bank_formats,
    }
}

/// Reads each table of the array of tables `key` with `read`, reporting every problem.
fn elements<T>(
    s: &mut Section<'_>,
    key: &'static str,
    display: &str,
    mut read: impl FnMut(&mut Section<'_>) -> Option<T>,
) -> Vec<T> {
    let ctx = s.ctx();
    let items = match s.node(key).map(|n| (&n.value, &n.origin)) {
        None => return Vec::new(),
        Some((Value::Array(items), _)) => items,
        Some((other, origin)) => {
            ctx.report_at(
                origin,
                format!(
                    "'{key}' must be an array of tables ({display}), found {}",
                    other.type_name()
                ),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut e = Section::from_node(ctx, Some(item), format!("{display} #{}", i + 1));
        if let Some(value) = read(&mut e) {
            out.push(value);
        }
        e.finish();
    }
    out
}

fn bank_code<'a>(banks: &'a [BankConfig]) -> impl Fn(&Node) -> Result<String, String> + 'a {
    move |node| {
        let code = reader::non_empty(node)?;
        if banks.iter().any(|b| b.code == code) {
            Ok(code)
        } else {
            Err(format!("\"{code}\" is not the code of any [[banks]] entry"))
        }
    }
}

fn product_type(node: &Node) -> Result<String, String> {
    let value = reader::non_empty(node)?;
    PRODUCT_TYPES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(value.trim()))
        .map(|p| (*p).to_owned())
        .ok_or_else(|| {
            format!(
                "\"{value}\" is not a product type (one of {})",
                PRODUCT_TYPES.join(", ")
            )
        })
}

fn read_threshold(
    e: &mut Section<'_>,
    banks: &[BankConfig],
    warn_default: u32,
) -> Option<Threshold> {
    let bank = e.optional("bank", bank_code(banks));
    let product_type = e.optional("product_type", product_type);
    let stale_after_days = e.required("stale_after", reader::integer(1, 36_500))? as u32;
    let warn_before_days = e
        .optional("warn_before", reader::integer(0, 36_500))
        .map(|d| d as u32);
    if warn_before_days.unwrap_or(warn_default) >= stale_after_days {
        e.invalid("stale_after", "must be more than its warn_before");
    }
    if bank.is_none() && product_type.is_none() && !e.has("bank") && !e.has("product_type") {
        e.missing(
            "bank",
            " (or 'product_type': an entry without either is just [records] stale_after)",
        );
        return None;
    }
    Some(Threshold {
        bank,
        product_type,
        stale_after_days,
        warn_before_days,
    })
}

fn read_rule(e: &mut Section<'_>) -> Option<Rule> {
    let ctx = e.ctx();
    let name = e.required("name", |node| {
        let name = reader::non_empty(node)?;
        if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            Ok(name)
        } else {
            Err(format!("\"{name}\" may hold only letters, digits, '-' and '_' (it is shown in row verdicts)"))
        }
    });
    let scopes = e.or(
        "scope",
        vec![Scope::WithinUpload, Scope::Existing],
        |node| match &node.value {
            Value::Array(_) => reader::list(true, reader::one_of(Scope::ALL))(node),
            _ => reader::one_of(Scope::ALL)(node).map(|s| vec![s]),
        },
    );
    let action = e.or("action", Action::Merge, reader::one_of(Action::ALL));
    let fields = e.required("fields", |node| {
        let Value::Array(items) = &node.value else {
            return Err(format!(
                "expected an array of {{ field, normalise }} tables, found {}",
                node.value.type_name()
            ));
        };
        if items.is_empty() {
            return Err("a rule needs at least one key field".into());
        }
        Ok(items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let mut f = Section::from_node(ctx, Some(item), format!("key field #{}", i + 1));
                let field = f.required("field", reader::non_empty);
                let normalise = f.or(
                    "normalise",
                    Vec::new(),
                    reader::list(false, reader::one_of(Normaliser::ALL)),
                );
                f.finish();
                Some(KeyField {
                    field: field?,
                    normalise,
                })
            })
            .collect::<Vec<_>>())
    });
    let fields = fields?;
    if fields.is_empty() {
        return None;
    }
    Some(Rule {
        name: name?,
        fields,
        scopes,
        action,
    })
}

fn read_bank_formats(e: &mut Section<'_>, banks: &[BankConfig]) -> Option<(String, BankFormats)> {
    let bank = e.required("bank", bank_code(banks));
    let prefixes = e.or(
        "account_prefixes",
        Vec::new(),
        reader::list(false, reader::non_empty),
    );
    let date_formats = e.or(
        "date_formats",
        Vec::new(),
        reader::list(false, |node| {
            let format = reader::non_empty(node)?;
            check_date_format(&format)?;
            Ok(format)
        }),
    );
    Some((bank?, BankFormats::new(prefixes, date_formats)))
}
