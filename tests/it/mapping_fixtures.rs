//! Data-driven mapping tests: every directory under `tests/fixtures/mapping/` (except `_sets`) is
//! one case, so adding a case is adding files:
//!
//! - `input.json`: the body (inbound) or Salesforce record (outbound).
//! - `context.json` (optional): `kind` (default `report_request`), `direction` (`inbound` |
//!   `outbound`), `set` (a mapping directory under `_sets/`; default the shipped `mappings/`),
//!   `bank_code`, `request_key`, `bank_account_id`, `received_at`, `lenient_scalars`, and
//!   `secret`: a string no problem detail may contain (a national id).
//! - `bank` (optional): the bank code, same as `bank_code` in `context.json`.
//! - `expected.json`: the mapped record (`object`, `upsert_key`, `upsert_value`, `mapping`,
//!   `fields`) inbound, the bank body outbound; or `problems.json`: `[{field, code}]`, each
//!   optionally with `detail_contains`, compared as a set.
//!
//! `MAPPING_BLESS=1` writes the actual result of cases that have no expectation yet, for review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use creditlink::mapping::{FieldProblem, MapContext, MappingSet};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mapping")
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn every_fixture_case_maps_as_expected() {
    let mut sets: BTreeMap<String, MappingSet> = BTreeMap::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 15,
        "expected the full fixture suite, found {} cases",
        cases.len()
    );

    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case(case, &mut sets)
                .err()
                .map(|e| format!("{}: {e}", case.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run_case(case: &Path, sets: &mut BTreeMap<String, MappingSet>) -> Result<(), String> {
    let ctx_json = read_json(&case.join("context.json")).unwrap_or_else(|| json!({}));
    let get = |key: &str| {
        ctx_json
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let set_name = get("set").unwrap_or_default();
    let dir = if set_name.is_empty() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings")
    } else {
        fixtures().join("_sets").join(&set_name)
    };
    let set = sets
        .entry(set_name)
        .or_insert_with(|| match MappingSet::load_dir(&dir) {
            Ok(set) => set,
            Err(problems) => panic!("mapping set {} does not load: {problems:?}", dir.display()),
        });

    let bank_file = std::fs::read_to_string(case.join("bank"))
        .ok()
        .map(|s| s.trim().to_string());
    let bank_code = bank_file.or_else(|| get("bank_code"));
    let received_at: DateTime<Utc> = get("received_at")
        .unwrap_or_else(|| "2026-11-25T12:00:00Z".into())
        .parse()
        .map_err(|e| format!("bad received_at: {e}"))?;
    let request_key = get("request_key").unwrap_or_else(|| "req-0001".into());
    let bank_account_id = get("bank_account_id").unwrap_or_else(|| "001000000000001AAA".into());
    let ctx = MapContext {
        request_key: &request_key,
        bank_account_id: &bank_account_id,
        bank_code: bank_code.as_deref(),
        received_at,
        lenient_scalars: ctx_json
            .get("lenient_scalars")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let kind = get("kind").unwrap_or_else(|| "report_request".into());
    let input = read_json(&case.join("input.json")).ok_or("missing input.json")?;

    let outcome: Result<Value, Vec<FieldProblem>> =
        if get("direction").as_deref() == Some("outbound") {
            let record = input.as_object().cloned().unwrap_or_default();
            set.map_outbound(&kind, &record, ctx.bank_code)
        } else {
            set.map_inbound(&kind, &input, &ctx).map(|r| {
            assert_eq!(r.mapping_version, set.version(), "record carries the set's version");
            json!({ "object": r.object, "upsert_key": r.upsert_key, "upsert_value": r.upsert_value,
                    "mapping": r.mapping, "fields": r.fields })
        })
        };

    if let (Some(secret), Err(problems)) = (get("secret"), &outcome)
        && let Some(p) = problems.iter().find(|p| p.detail.contains(&secret))
    {
        return Err(format!("problem detail leaks a sensitive value: {p}"));
    }
    compare(case, outcome)
}

fn compare(case: &Path, outcome: Result<Value, Vec<FieldProblem>>) -> Result<(), String> {
    let expected = read_json(&case.join("expected.json"));
    let expected_problems = read_json(&case.join("problems.json"));
    match (outcome, expected, expected_problems) {
        (Ok(actual), Some(expected), None) if actual == expected => Ok(()),
        (Ok(actual), Some(expected), None) => Err(format!(
            "mapped differently\n  expected: {expected}\n  actual:   {actual}"
        )),
        (Err(problems), None, Some(expected)) => compare_problems(&problems, &expected),
        (outcome, None, None) if std::env::var_os("MAPPING_BLESS").is_some() => {
            bless(case, outcome)
        }
        (Ok(actual), _, _) => Err(format!("expected problems, got a record: {actual}")),
        (Err(problems), _, _) => Err(format!("expected a record, got problems: {problems:#?}")),
    }
}

fn compare_problems(actual: &[FieldProblem], expected: &Value) -> Result<(), String> {
    let expected = expected
        .as_array()
        .ok_or("problems.json must be an array")?;
    let mut got: Vec<(String, String)> = actual
        .iter()
        .map(|p| (p.field.clone(), p.code.to_string()))
        .collect();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or_default().into(),
                e["code"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    if got != want {
        return Err(format!(
            "problems differ\n  expected: {want:?}\n  actual:   {actual:#?}"
        ));
    }
    for e in expected {
        let Some(needle) = e.get("detail_contains").and_then(Value::as_str) else {
            continue;
        };
        let field = e["field"].as_str().unwrap_or_default();
        if !actual
            .iter()
            .any(|p| p.field == field && p.detail.contains(needle))
        {
            return Err(format!(
                "no problem on {field:?} has a detail containing {needle:?}: {actual:#?}"
            ));
        }
    }
    Ok(())
}

fn bless(case: &Path, outcome: Result<Value, Vec<FieldProblem>>) -> Result<(), String> {
    let (file, value) =
        match outcome {
            Ok(v) => ("expected.json", v),
            Err(problems) => (
                "problems.json",
                json!(problems
            .iter()
            .map(|p| json!({ "field": p.field, "code": p.code, "detail_contains": p.detail }))
            .collect::<Vec<_>>()),
            ),
        };
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())? + "\n";
    std::fs::write(case.join(file), text).map_err(|e| e.to_string())?;
    Err(format!("blessed {file}; review it"))
}
