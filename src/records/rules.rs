//! Duplicate rules: named lists of key fields with their normalisers, a scope and an action.
//!
//! A rule *fires* for two rows when every one of its key fields is present in both and normalises to the same
//! value. Rules are tried in order and the first that fires names the verdict (`duplicate` by rule
//! `default`). Comparing is done through keys: [`RuleSet::keys`] turns a row into one opaque key per rule (a
//! SHA-256 of the rule name and the normalised parts), so a scan groups by key in one pass and no account
//! number or national id is held or shown in clear beyond the row itself.
//!
//! The furnisher (the uploading bank's Salesforce Account id) is a key field like any other, named
//! [`FURNISHER`]; rows are plain field maps ([`Fields`]) keyed by the default feed's column names.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::normalise::{FormatBook, Normaliser, normalise};

/// The key-field name that stands for the furnishing bank (not a column of the row).
pub const FURNISHER: &str = "furnisher";

/// Where a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Between rows of one upload.
    WithinUpload,
    /// Between a row and the records already in the org (and between those records: the dedupe scan).
    Existing,
}

impl Scope {
    pub const ALL: &'static [(&'static str, Scope)] = &[
        ("within_upload", Scope::WithinUpload),
        ("existing", Scope::Existing),
    ];
}

/// What happens to a row a rule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The row updates the record it duplicates (the newest data wins).
    Merge,
    /// The row is kicked out, naming the rule.
    Reject,
    /// The row goes through and is marked for review.
    Flag,
}

impl Action {
    pub const ALL: &'static [(&'static str, Action)] = &[
        ("merge", Action::Merge),
        ("reject", Action::Reject),
        ("flag", Action::Flag),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Merge => "merge",
            Action::Reject => "reject",
            Action::Flag => "flag",
        }
    }
}

/// One key field of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyField {
    /// A column of the row, or [`FURNISHER`].
    pub field: String,
    pub normalise: Vec<Normaliser>,
}

impl KeyField {
    pub fn new(field: &str, normalise: &[Normaliser]) -> Self {
        KeyField {
            field: field.to_owned(),
            normalise: normalise.to_vec(),
        }
    }
}

/// A named duplicate rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub fields: Vec<KeyField>,
    pub scopes: Vec<Scope>,
    pub action: Action,
}

impl Rule {
    /// The default rule: furnisher, product type (case-insensitive) and account number normalised like
    /// [`super::normalise_identifier`]; both scopes; merge.
    pub fn default_rule() -> Rule {
        use Normaliser::*;
        Rule {
            name: DEFAULT_RULE.to_owned(),
            fields: vec![
                KeyField::new(FURNISHER, &[]),
                KeyField::new("product_type", &[Alnum, Upper]),
                KeyField::new("account_number", &[Alnum, Upper, StripLeadingZeros]),
            ],
            scopes: vec![Scope::WithinUpload, Scope::Existing],
            action: Action::Merge,
        }
    }

    pub fn applies_to(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// This rule's key of a row, `None` when a key field is missing or normalises to nothing (an empty account
    /// number never makes two rows the same tradeline).
    pub fn key(&self, furnisher: &str, row: &dyn Fields, formats: &FormatBook) -> Option<String> {
        let bank = formats.get(furnisher);
        let mut hash = Sha256::new();
        hash.update((self.name.len() as u64).to_be_bytes());
        hash.update(self.name.as_bytes());
        for field in &self.fields {
            let raw = if field.field == FURNISHER {
                furnisher.to_owned()
            } else {
                row.field(&field.field)?
            };
            let value = normalise(raw.trim(), &field.normalise, bank);
            if value.trim().is_empty() {
                return None;
            }
            hash.update((value.len() as u64).to_be_bytes());
            hash.update(value.as_bytes());
        }
        Some(hex::encode(&hash.finalize()[..16]))
    }
}

/// The name of the built-in rule.
pub const DEFAULT_RULE: &str = "default";

/// A row as a field map: the default feed's column names to their text.
pub trait Fields {
    /// The value of `name`, `None` when absent or empty.
    fn field(&self, name: &str) -> Option<String>;
}

fn non_empty(value: &str) -> Option<String> {
    (!value.trim().is_empty()).then(|| value.to_owned())
}

impl Fields for BTreeMap<String, String> {
    fn field(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| non_empty(v))
    }
}

impl Fields for HashMap<String, String> {
    fn field(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| non_empty(v))
    }
}

impl Fields for serde_json::Map<String, serde_json::Value> {
    fn field(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            serde_json::Value::String(s) => non_empty(s),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

/// One rule's key of a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleKey {
    /// Index of the rule in its set (first fires first).
    pub rule: usize,
    pub key: String,
}

/// The rules in force, in order, with the banks' formats they normalise with.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    formats: FormatBook,
}

impl Default for RuleSet {
    /// Only the default rule, no bank formats.
    fn default() -> Self {
        RuleSet::new(Vec::new(), FormatBook::default())
    }
}

impl RuleSet {
    /// `configured` rules in their order; the default rule comes first unless a configured rule is named
    /// `default` (which then replaces it, in its own position).
    pub fn new(configured: Vec<Rule>, formats: FormatBook) -> Self {
        let mut rules = configured;
        if !rules.iter().any(|r| r.name == DEFAULT_RULE) {
            rules.insert(0, Rule::default_rule());
        }
        RuleSet { rules, formats }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    pub fn formats(&self) -> &FormatBook {
        &self.formats
    }

    /// The keys of `row` under every rule of `scope`, in rule order (rules whose fields the row lacks give
    /// none).
    pub fn keys(&self, furnisher: &str, row: &dyn Fields, scope: Scope) -> Vec<RuleKey> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.applies_to(scope))
            .filter_map(|(i, r)| {
                r.key(furnisher, row, &self.formats)
                    .map(|key| RuleKey { rule: i, key })
            })
            .collect()
    }

    /// The first rule of `scope` that fires for rows `a` and `b`.
    pub fn first_match(
        &self,
        scope: Scope,
        a: (&str, &dyn Fields),
        b: (&str, &dyn Fields),
    ) -> Option<&Rule> {
        self.rules.iter().filter(|r| r.applies_to(scope)).find(|r| {
            match (
                r.key(a.0, a.1, &self.formats),
                r.key(b.0, b.1, &self.formats),
            ) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            }
        })
    }
}

/// An account-number change: the `Record_Key__c` the tradeline had and the one it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekey {
    pub old_key: String,
    pub new_key: String,
}

/// The re-keying a row with `previous_account_number` asks for (Metro 2's L1 segment): the existing record
/// under the old number's key moves to the new number's key, so history stays on one record. `None` when there
/// is no previous number or it normalises to the current one (a reformatting, not a change).
pub fn rekey(
    furnisher: &str,
    product_type: &str,
    previous_account_number: &str,
    account_number: &str,
) -> Option<Rekey> {
    use super::{normalise_identifier, record_key};
    let previous = normalise_identifier(previous_account_number);
    if previous.is_empty() || previous == normalise_identifier(account_number) {
        return None;
    }
    Some(Rekey {
        old_key: record_key(furnisher, product_type, previous_account_number),
        new_key: record_key(furnisher, product_type, account_number),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::normalise::BankFormats;

    fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_default_rule_ignores_formatting_but_not_identity() {
        let rules = RuleSet::default();
        let a = row(&[
            ("product_type", "installment"),
            ("account_number", "000-12.345 a"),
        ]);
        let b = row(&[
            ("product_type", "Installment"),
            ("account_number", "12345A"),
        ]);
        let other_product = row(&[("product_type", "revolving"), ("account_number", "12345A")]);
        let one_off = row(&[
            ("product_type", "installment"),
            ("account_number", "12346A"),
        ]);
        let s = Scope::WithinUpload;
        assert_eq!(
            rules
                .first_match(s, ("001A", &a), ("001A", &b))
                .map(|r| r.name.as_str()),
            Some(DEFAULT_RULE)
        );
        assert!(rules.first_match(s, ("001A", &a), ("001B", &b)).is_none());
        assert!(
            rules
                .first_match(s, ("001A", &a), ("001A", &other_product))
                .is_none()
        );
        assert!(
            rules
                .first_match(s, ("001A", &a), ("001A", &one_off))
                .is_none()
        );
    }

    #[test]
    fn missing_or_empty_fields_never_match() {
        let rules = RuleSet::default();
        let empty = row(&[("product_type", "installment"), ("account_number", " - ")]);
        let absent = row(&[("product_type", "installment")]);
        assert!(rules.keys("001A", &empty, Scope::Existing).is_empty());
        assert!(rules.keys("001A", &absent, Scope::Existing).is_empty());
        assert!(
            rules
                .first_match(Scope::Existing, ("001A", &empty), ("001A", &empty))
                .is_none()
        );
    }

    #[test]
    fn rules_fire_in_order_within_their_scope_and_carry_their_action() {
        use Normaliser::*;
        let person = Rule {
            name: "same_person_same_opening".into(),
            fields: vec![
                KeyField::new(FURNISHER, &[]),
                KeyField::new("national_id", &[Alnum, Upper, StripLeadingZeros]),
                KeyField::new("last_name", &[Name]),
                KeyField::new("date_opened", &[Date]),
            ],
            scopes: vec![Scope::Existing],
            action: Action::Flag,
        };
        let formats = FormatBook::new(BTreeMap::from([(
            "001B".to_owned(),
            BankFormats::new(vec!["ACC-".into()], vec!["%d.%m.%Y".into()]),
        )]));
        let rules = RuleSet::new(vec![person], formats);
        assert_eq!(rules.rules()[0].name, DEFAULT_RULE);
        let a = row(&[
            ("product_type", "mortgage"),
            ("account_number", "ACC-77"),
            ("national_id", "cw 1980-013101"),
            ("last_name", "Martínez"),
            ("date_opened", "02.03.2020"),
        ]);
        let b = row(&[
            ("product_type", "mortgage"),
            ("account_number", "991"),
            ("national_id", "CW1980013101"),
            ("last_name", "MARTINEZ"),
            ("date_opened", "2020-03-02"),
        ]);
        let fired = rules
            .first_match(Scope::Existing, ("001B", &a), ("001B", &b))
            .expect("the person rule fires");
        assert_eq!(fired.name, "same_person_same_opening");
        assert_eq!(fired.action, Action::Flag);
        // The rule is not in the within-upload scope.
        assert!(
            rules
                .first_match(Scope::WithinUpload, ("001B", &a), ("001B", &b))
                .is_none()
        );
        // The bank's prefix is only stripped where a rule asks for it (the default rule does not).
        let c = row(&[("product_type", "mortgage"), ("account_number", "77")]);
        assert!(
            rules
                .first_match(Scope::Existing, ("001B", &a), ("001B", &c))
                .is_none()
        );
    }

    #[test]
    fn a_configured_default_replaces_the_built_in_one() {
        use Normaliser::*;
        let mut custom = Rule::default_rule();
        custom.fields[2] = KeyField::new(
            "account_number",
            &[StripPrefixes, Alnum, Upper, StripLeadingZeros],
        );
        custom.action = Action::Reject;
        let formats = FormatBook::new(BTreeMap::from([(
            "001B".to_owned(),
            BankFormats::new(vec!["ACC-".into()], Vec::new()),
        )]));
        let rules = RuleSet::new(vec![custom], formats);
        assert_eq!(rules.rules().len(), 1);
        let a = row(&[("product_type", "open"), ("account_number", "ACC-0077")]);
        let c = row(&[("product_type", "open"), ("account_number", "77")]);
        let fired = rules
            .first_match(Scope::WithinUpload, ("001B", &a), ("001B", &c))
            .expect("fires");
        assert_eq!(fired.action, Action::Reject);
    }

    #[test]
    fn keys_hold_no_identifier_in_clear() {
        let rules = RuleSet::default();
        let a = row(&[
            ("product_type", "installment"),
            ("account_number", "CW1980013101"),
        ]);
        let keys = rules.keys("001A", &a, Scope::Existing);
        assert_eq!(keys.len(), 1);
        assert!(!keys[0].key.contains("1980013101"));
        assert_eq!(keys[0].key.len(), 32);
    }

    #[test]
    fn json_maps_are_rows_too() {
        let rules = RuleSet::default();
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"product_type": "Installment", "account_number": "12345A", "balance": 10}"#,
        )
        .expect("json");
        let text = row(&[
            ("product_type", "installment"),
            ("account_number", "0012345a"),
        ]);
        assert!(
            rules
                .first_match(Scope::Existing, ("001A", &json), ("001A", &text))
                .is_some()
        );
    }

    #[test]
    fn rekey_moves_the_old_key_to_the_new_one() {
        let r = rekey("001A", "Installment", "000-111", "222").expect("a change");
        assert_eq!(
            r.old_key,
            crate::records::record_key("001A", "Installment", "111")
        );
        assert_eq!(
            r.new_key,
            crate::records::record_key("001A", "Installment", "222")
        );
        assert!(rekey("001A", "Installment", "0-222", "222").is_none());
        assert!(rekey("001A", "Installment", " ", "222").is_none());
    }
}
