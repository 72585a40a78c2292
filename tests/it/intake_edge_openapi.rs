//! The OpenAPI document: shape, truthfulness markers, the documented example, an independent validator.

use std::io::Write;
use std::process::{Command, Stdio};

use creditlink::intake::openapi::{example_report_request, openapi_json};
use creditlink::intake::problem::ProblemType;
use creditlink::lifecycle::Lifecycle;
use serde_json::{Value, json};

/// The default body of docs/bank-api.md, verbatim.
const DESIGN_BODY: &str = r#"{ "reference": "LN-2026-000123",
  "subject": { "type": "person", "national_id": "CW-1980013101", "first_name": "Maria",
               "last_name": "Martina", "date_of_birth": "1980-01-31" },
  "purpose": "loan_application",
  "consent": { "given_at": "2026-11-20T10:00:00Z" } }"#;

#[test]
fn declares_openapi_3_1_and_every_path() {
    let doc = openapi_json();
    let text = serde_json::to_string_pretty(&doc).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/report-requests", "post"),
        ("/api/v1/report-requests/{id}", "get"),
        ("/api/v1/report-requests/{id}/report", "get"),
        ("/api/v1/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
}

#[test]
fn the_document_promises_only_what_is_served() {
    let doc = openapi_json();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for served in [
        "/api/v1/uploads",
        "/api/v1/uploads/{id}",
        "/api/v1/uploads/{id}/records",
        "/api/v1/uploads/{id}/errors.csv",
        "/api/v1/reason-codes",
    ] {
        assert!(
            paths.iter().any(|p| *p == served),
            "{served} missing: {paths:?}"
        );
    }
}

#[test]
fn status_document_and_webhooks_use_the_lifecycle_vocabulary() {
    let doc = openapi_json();
    let names: Vec<&str> = Lifecycle::ALL.iter().map(|s| s.as_str()).collect();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ReportRequestStatus"]["properties"]["status"]["enum"],
        json!(names)
    );
    assert_eq!(
        schemas["ReportRequestEvent"]["properties"]["data"]["properties"]["status"]["enum"],
        json!(names)
    );
    let hooks: Vec<&String> = doc["webhooks"].as_object().unwrap().keys().collect();
    for state in [
        "in_progress",
        "completed",
        "rejected",
        "action_required",
        "failed",
    ] {
        assert!(
            hooks.contains(&&format!("report_request.{state}")),
            "{state}: {hooks:?}"
        );
    }
    // Every member of an event's data is a member of the status document.
    let status_props = schemas["ReportRequestStatus"]["properties"]
        .as_object()
        .unwrap();
    for key in schemas["ReportRequestEvent"]["properties"]["data"]["properties"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(status_props.contains_key(key), "{key}");
    }
}

#[test]
fn create_declares_its_statuses_headers_and_problem_types() {
    let doc = openapi_json();
    let op = &doc["paths"]["/api/v1/report-requests"]["post"];
    for status in [
        "201", "202", "400", "401", "403", "409", "413", "415", "422", "429",
    ] {
        assert!(op["responses"].get(status).is_some(), "status {status}");
    }
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        [
            "#/components/parameters/IdempotencyKey",
            "#/components/parameters/Prefer"
        ]
    );
    let problem_types = &doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"];
    assert_eq!(
        problem_types.as_array().unwrap().len(),
        ProblemType::ALL.len()
    );
    assert!(
        doc["components"]["responses"]["Problem401"]["headers"]
            .get("WWW-Authenticate")
            .is_some()
    );
    assert!(
        doc["components"]["responses"]["Problem429"]["headers"]
            .get("Retry-After")
            .is_some()
    );
    let status =
        &doc["components"]["schemas"]["ReportRequestStatus"]["properties"]["status"]["enum"];
    assert_eq!(
        status,
        &json!([
            "received",
            "submitted",
            "in_progress",
            "completed",
            "rejected",
            "action_required",
            "failed"
        ])
    );
}

#[test]
fn example_body_is_the_design_body_and_round_trips() {
    let doc = openapi_json();
    let example = &doc["paths"]["/api/v1/report-requests"]["post"]["requestBody"]["content"]["application/json"]
        ["examples"]["person"]["value"];
    let design: Value = serde_json::from_str(DESIGN_BODY).unwrap();
    assert_eq!(example, &design);
    assert_eq!(example, &example_report_request());
    let reparsed: Value = serde_json::from_str(&serde_json::to_string(example).unwrap()).unwrap();
    assert_eq!(&reparsed, example);
}

/// Validates the document with `openapi-spec-validator` and the examples against their schemas with
/// `jsonschema` (Draft 2020-12, as OpenAPI 3.1 uses), when Python has them; skipped otherwise.
const VALIDATE_PY: &str = r##"
import json, sys
from openapi_spec_validator import validate
import jsonschema
doc = json.load(sys.stdin)
validate(doc)
components = doc["components"]
def check(name, instance):
    schema = {"$ref": "#/components/schemas/" + name, "components": components}
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(instance)
body = doc["paths"]["/api/v1/report-requests"]["post"]["requestBody"]["content"]["application/json"]
for example in body["examples"].values():
    check("ReportRequest", example["value"])
check("ReportRequestStatus", components["schemas"]["ReportRequestStatus"]["example"])
bad = dict(body["examples"]["person"]["value"], purpose="fishing")
try:
    check("ReportRequest", bad)
    sys.exit("an invalid purpose passed the schema")
except jsonschema.ValidationError:
    pass
print("openapi ok")
"##;

#[test]
fn independent_validator_accepts_the_document() {
    let available = Command::new("python3")
        .args(["-c", "import openapi_spec_validator, jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        crate::skips::skip(
            "OpenAPI validation",
            "python3 with openapi-spec-validator and jsonschema",
            "pip install openapi-spec-validator jsonschema",
        );
        return;
    }
    let mut child = Command::new("python3")
        .args(["-c", VALIDATE_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let doc = serde_json::to_vec(&openapi_json()).unwrap();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&doc)
        .expect("write document");
    let out = child.wait_with_output().expect("python3 finished");
    assert!(
        out.status.success(),
        "validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
