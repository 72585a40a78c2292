//! `[records]`: duplicate rules, bank formats and gatekeeper thresholds load, and every mistake is reported with
//! its file and line.

use creditlink::records::{Action, Normaliser, Scope};

use crate::config_support::*;

const RECORDS: &str = r#"
[records]
stale_after = 200
warn_before = 20
gatekeeper_interval_hours = 6

[[records.thresholds]]
bank = "DBA"
product_type = "mortgage"
stale_after = 400

[[records.thresholds]]
product_type = "Revolving"
stale_after = 90
warn_before = 10

[[records.bank_formats]]
bank = "DBA"
account_prefixes = ["ACC", "ACC-"]
date_formats = ["%d.%m.%Y"]

[[records.rules]]
name = "same_person"
scope = "existing"
action = "flag"
fields = [
  { field = "furnisher" },
  { field = "national_id", normalise = ["alnum", "upper", "strip_leading_zeros"] },
  { field = "last_name", normalise = ["name"] },
]
"#;

#[test]
fn a_records_section_loads_with_its_rules_and_thresholds() {
    let fixture = ConfigDir::new(&format!("{VALID}{RECORDS}"), SECRET_FILES);
    let config = fixture.load(VALID_ENV).expect("valid");
    let records = config.records.expect("[records]");
    assert_eq!(
        (records.stale_after_days, records.warn_before_days),
        (200, 20)
    );
    assert_eq!(
        records.gatekeeper_interval,
        Some(std::time::Duration::from_secs(6 * 3600))
    );
    // The most specific threshold wins; product types are matched case-insensitively.
    assert_eq!(records.threshold(Some("DBA"), "Mortgage"), (400, 20));
    assert_eq!(records.threshold(Some("DBB"), "Mortgage"), (200, 20));
    assert_eq!(records.threshold(Some("DBA"), "Revolving"), (90, 10));
    assert_eq!(records.threshold(None, "Installment"), (200, 20));
    assert_eq!(records.earliest_attention_days(), 80);
    let rules = records.rule_set(&config.banks);
    let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["default", "same_person"]);
    let person = &rules.rules()[1];
    assert_eq!(person.action, Action::Flag);
    assert_eq!(person.scopes, [Scope::Existing]);
    assert_eq!(person.fields[2].normalise, [Normaliser::Name]);
    // The bank's prefixes are keyed by its Salesforce Account id, longest first.
    assert_eq!(
        rules.formats().get("0015Y00000BANKAQA5").prefixes,
        ["ACC-", "ACC"]
    );
}

#[test]
fn without_a_records_section_the_gatekeeper_is_not_scheduled() {
    let config = ConfigDir::valid().load(VALID_ENV).expect("valid");
    assert!(config.records.is_none());
    let defaults = creditlink::config::RecordsConfig::default();
    assert_eq!(
        (defaults.stale_after_days, defaults.warn_before_days),
        (180, 30)
    );
    assert_eq!(defaults.gatekeeper_interval, None);
}

#[test]
fn every_records_problem_is_reported_with_its_line() {
    let bad = r#"
[records]
stale_after = 30
warn_before = 30
colour = "red"

[[records.thresholds]]
bank = "NOPE"
stale_after = 10

[[records.bank_formats]]
bank = "DBA"
date_formats = ["%Q"]

[[records.rules]]
name = "r1"
action = "delete"
fields = [{ field = "account_number", normalise = ["lowercase"] }]

[[records.rules]]
name = "r1"
scope = "everywhere"
fields = [{ field = "account_number" }]

[[records.rules]]
name = "r3"
fields = []
"#;
    let fixture = ConfigDir::new(&format!("{VALID}{bad}"), SECRET_FILES);
    let errors = fixture.load(VALID_ENV).expect_err("problems");
    let base = VALID.lines().count();
    let at = |line: usize| base + line;
    assert_problem(
        &errors,
        at(4),
        &["'warn_before' in [records]", "less than stale_after"],
    );
    assert_problem(&errors, at(5), &["unknown key 'colour' in [records]"]);
    assert_problem(
        &errors,
        at(8),
        &["'bank'", "\"NOPE\" is not the code of any [[banks]] entry"],
    );
    assert_problem(
        &errors,
        at(13),
        &["'date_formats'", "\"%Q\" is not a valid date format"],
    );
    assert_problem(&errors, at(17), &["'action'", "\"delete\""]);
    assert_problem(&errors, at(18), &["\"lowercase\""]);
    assert_problem(
        &errors,
        at(21),
        &["'name'", "\"r1\" is used by another rule too"],
    );
    assert_problem(&errors, at(22), &["'scope'", "\"everywhere\""]);
    assert_problem(&errors, at(27), &["'fields'", "at least one key field"]);
}
