//! Loading mapping directories: the shipped set is clean, and broken files are reported all at
//! once with the right file and line.

use std::path::{Path, PathBuf};

use creditlink::mapping::{MappingProblem, MappingSet};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings")
}

/// A valid inbound mapping; tests append or substitute lines to break it.
const VALID: &str = r#"name = "sample"
object = "Sample__c"
direction = "inbound"
upsert_key = "Key__c"

[[field]]
from = "$request_key"
to = "Key__c"
type = "string"
required = true
"#;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn problems_for<'a>(problems: &'a [MappingProblem], file: &str) -> Vec<&'a MappingProblem> {
    problems.iter().filter(|p| p.file.ends_with(file)).collect()
}

#[test]
fn shipped_mappings_load_clean_with_a_stable_version() {
    let set = MappingSet::load_dir(&shipped()).unwrap_or_else(|p| {
        panic!(
            "shipped mappings have problems:\n{}",
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert_eq!(set.version().len(), 16);
    assert!(set.version().chars().all(|c| c.is_ascii_hexdigit()));
    let again = MappingSet::load_dir(&shipped()).expect("loads twice");
    assert_eq!(set.version(), again.version(), "same files, same version");

    assert_eq!(set.accepts_xml("report_request", None), None);
    assert_eq!(
        set.accepts_xml("report_request", Some("DBB")),
        Some("CreditReportRequest")
    );
    assert_eq!(set.accepts_xml("report_request", Some("UNKNOWN")), None);
    assert!(set.accepts_json("report_request", None));
    assert!(set.accepts_json("credit_record", Some("DBB")));
}

#[test]
fn version_changes_when_any_file_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "sample.toml", VALID);
    let first = MappingSet::load_dir(dir.path())
        .expect("valid")
        .version()
        .to_string();
    write(dir.path(), "banks/XB/sample.toml", VALID);
    let second = MappingSet::load_dir(dir.path())
        .expect("valid")
        .version()
        .to_string();
    assert_ne!(first, second);
}

#[test]
fn every_broken_file_is_reported_in_one_call_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "good.toml", VALID);
    // line 11: bad regex in validate
    write(
        dir.path(),
        "bad_regex.toml",
        &format!("{VALID}validate = {{ regex = \"([a-z\" }}\n"),
    );
    // line 3 (top level) and line 11 (inside a field): unknown keys
    let unknown = VALID.replace(
        "direction = \"inbound\"\n",
        "direction = \"inbound\"\ncolour = \"blue\"\n",
    );
    write(
        dir.path(),
        "unknown_key.toml",
        &format!("{unknown}requierd = true\n"),
    );
    // line 9: bad type
    write(
        dir.path(),
        "bad_type.toml",
        &VALID.replace("type = \"string\"", "type = \"text\""),
    );
    // line 14: second field writes Key__c again
    write(
        dir.path(),
        "duplicate.toml",
        &format!("{VALID}\n[[field]]\nfrom = \"other\"\nto = \"Key__c\"\ntype = \"string\"\n"),
    );
    // line 2 (object): no upsert_key in an inbound mapping
    write(
        dir.path(),
        "no_upsert.toml",
        &VALID.replace("upsert_key = \"Key__c\"\n", ""),
    );
    // line 11: a default that is not a date, and line 12: a format chrono cannot read
    write(
        dir.path(),
        "bad_default.toml",
        &format!(
            "{VALID}\n[[field]]\nfrom = \"d\"\nto = \"D__c\"\ntype = \"date\"\ndefault = \"yesterday\"\nformats = [\"%Y-%Q\"]\n"
        ),
    );
    // line 11: unknown transform; line 12: a value map on an integer field
    write(
        dir.path(),
        "bad_options.toml",
        &format!(
            "{}transform = [\"trim\", \"reverse\"]\nvalues = {{ a = \"b\" }}\n",
            VALID.replace("\"string\"", "\"integer\"")
        ),
    );
    // line 10: a known key with a value of the wrong TOML type
    write(
        dir.path(),
        "wrong_value_type.toml",
        &VALID.replace("required = true", "required = \"yes\""),
    );
    // TOML syntax error on line 3
    write(
        dir.path(),
        "syntax.toml",
        "name = \"x\"\nobject = \"O\"\ndirection = = \"inbound\"\n",
    );

    let problems = match MappingSet::load_dir(dir.path()) {
        Ok(_) => panic!("broken mappings must not load"),
        Err(problems) => problems,
    };
    let expect = |file: &str, line: usize, needle: &str| {
        let found = problems_for(&problems, file);
        assert!(
            found
                .iter()
                .any(|p| p.line == Some(line) && p.message.contains(needle)),
            "no problem in {file} at line {line} mentioning {needle:?}; got: {problems:#?}"
        );
    };
    expect("bad_regex.toml", 11, "bad regex");
    expect("unknown_key.toml", 4, "unknown key `colour`");
    expect("unknown_key.toml", 12, "unknown key `field.requierd`");
    expect("bad_type.toml", 9, "unknown type \"text\"");
    expect(
        "duplicate.toml",
        14,
        "duplicate target `Key__c` (first mapped at line 8)",
    );
    expect("no_upsert.toml", 2, "upsert_key");
    expect("bad_default.toml", 16, "default does not fit type date");
    expect("bad_default.toml", 17, "invalid date/time format");
    expect("syntax.toml", 3, "invalid TOML");
    expect("wrong_value_type.toml", 10, "boolean");
    expect("bad_options.toml", 11, "unknown transform `reverse`");
    expect(
        "bad_options.toml",
        12,
        "`values` applies to string and picklist fields only",
    );
    assert!(
        problems_for(&problems, "good.toml").is_empty(),
        "{problems:#?}"
    );

    let shown = problems
        .iter()
        .find(|p| p.file.ends_with("bad_type.toml"))
        .expect("bad_type problem")
        .to_string();
    assert!(shown.ends_with("bad_type.toml:9: unknown type \"text\" (string, integer, decimal, boolean, date, datetime, picklist)"), "{shown}");
}

#[test]
fn conflicting_selectors_are_reported_per_bank() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_when = |equals: &str| {
        VALID.replace(
            "upsert_key",
            &format!("when = {{ field = \"t\", equals = \"{equals}\" }}\nupsert_key"),
        )
    };
    write(dir.path(), "sample.a.toml", &with_when("a"));
    write(dir.path(), "sample.b.toml", &with_when("b"));
    // Bank XB adds a third file selecting "a" again: only XB's view conflicts.
    write(dir.path(), "banks/XB/sample.c.toml", &with_when("a"));
    // Two fallbacks (no `when`) of kind `other`.
    write(dir.path(), "other.one.toml", VALID);
    write(dir.path(), "other.two.toml", VALID);

    let problems = MappingSet::load_dir(dir.path())
        .err()
        .expect("conflicts must not load");
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let bank = problems_for(&problems, "banks/XB/sample.c.toml");
    assert_eq!(bank.len(), 1, "{problems:#?}");
    assert_eq!(bank[0].line, Some(4));
    assert!(
        bank[0].message.contains("both select t = \"a\""),
        "{}",
        bank[0]
    );
    assert!(
        problems_for(&problems, "other.two.toml")[0]
            .message
            .contains("no `when`")
    );
}

#[test]
fn a_bank_file_replaces_the_default_of_the_same_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "sample.toml", VALID);
    write(
        dir.path(),
        "banks/XB/sample.toml",
        &VALID.replace("name = \"sample\"", "name = \"sample.xb\""),
    );
    let set = MappingSet::load_dir(dir.path()).expect("valid");
    let ctx = |bank| creditlink::mapping::MapContext {
        request_key: "k1",
        bank_account_id: "001",
        bank_code: bank,
        received_at: chrono::Utc::now(),
        lenient_scalars: false,
    };
    let body = serde_json::json!({});
    assert_eq!(
        set.map_inbound("sample", &body, &ctx(None))
            .expect("maps")
            .mapping,
        "sample"
    );
    assert_eq!(
        set.map_inbound("sample", &body, &ctx(Some("XB")))
            .expect("maps")
            .mapping,
        "sample.xb"
    );
    assert_eq!(
        set.map_inbound("sample", &body, &ctx(Some("ZZ")))
            .expect("maps")
            .mapping,
        "sample"
    );
}

#[test]
fn a_missing_or_empty_directory_is_one_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let problems = MappingSet::load_dir(dir.path()).err().expect("empty dir");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("no mapping files"));
    let problems = MappingSet::load_dir(&dir.path().join("absent"))
        .err()
        .expect("absent dir");
    assert!(
        problems[0]
            .message
            .contains("cannot read mapping directory"),
        "{problems:?}"
    );
}
