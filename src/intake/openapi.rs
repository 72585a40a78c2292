//! The OpenAPI 3.1 document of `/api/v1`, served at `GET /api/v1/openapi.json`.
//!
//! Built by hand as a `serde_json::Value` rather than with utoipa's derives: the request body has no Rust
//! type (a bank's JSON is mapped by admin-edited TOML, so the *document* is the contract, not a struct),
//! and the handlers are assembled elsewhere. Deriving would mean inventing types only to describe them.
//! A hand-built document also keeps every status, header and problem type visible in one file. Tests
//! check it parses, validates with an independent validator, and that its example is the DESIGN.md body.
//!
//! Truthfulness: endpoints the daemon does not serve yet carry `x-creditlink-status: planned`.

use serde_json::{Value, json};

use super::problem::{PROBLEM_JSON, ProblemType};

/// Local name of the root element of an XML report request (`<report_request>…</report_request>`).
pub const REPORT_REQUEST_XML_ROOT: &str = "report_request";

/// The vendor extension marking an operation the server does not serve yet.
pub const PLANNED: (&str, &str) = ("x-creditlink-status", "planned");

/// The whole document.
pub fn openapi_json() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "creditlink bank API",
            "version": "1.0.0",
            "description": "Credit report requests and data feeds from member banks. Authenticate with the \
                Salesforce access token of a bank user. Errors are RFC 9457 problem documents \
                (application/problem+json); 400 means a body that cannot be parsed, 422 a well-formed body \
                whose content is invalid, with every field problem listed."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearerAuth": [] }],
        "tags": [
            { "name": "report-requests", "description": "Credit report requests" },
            { "name": "uploads", "description": "Data feeds of credit records (planned)" },
            { "name": "meta", "description": "This document" }
        ],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Access token of a bank user, issued by the bureau's Salesforce org."
                }
            },
            "parameters": parameters(),
            "headers": headers(),
            "schemas": schemas(),
            "responses": problem_responses()
        }
    })
}

/// The default request body of DESIGN.md §4, used as the example.
pub fn example_report_request() -> Value {
    json!({
        "reference": "LN-2026-000123",
        "subject": { "type": "person", "national_id": "CW-1980013101", "first_name": "Maria",
                     "last_name": "Martina", "date_of_birth": "1980-01-31" },
        "purpose": "loan_application",
        "consent": { "given_at": "2026-11-20T10:00:00Z" }
    })
}

fn example_company_request() -> Value {
    json!({
        "reference": "LN-2026-000124",
        "subject": { "type": "company", "registry_number": "CW-123456", "name": "Kaya Trading B.V." },
        "purpose": "account_review",
        "consent": { "given_at": "2026-11-20T10:00:00Z" }
    })
}

fn paths() -> Value {
    let mut uploads = json!({
        "post": {
            "tags": ["uploads"], "operationId": "createUpload", "summary": "Upload a data feed of credit records",
            "parameters": [{ "$ref": "#/components/parameters/IdempotencyKey" }],
            "requestBody": { "required": true, "content": {
                "text/csv": { "schema": { "type": "string" } },
                "application/json": { "schema": { "type": "array", "items": { "type": "object" } } }
            } },
            "responses": with_problems(json!({
                "202": { "description": "Upload stored; records are checked one by one.",
                         "content": { "application/json": { "schema": { "$ref": "#/components/schemas/UploadStatus" } } } }
            }), &["400", "401", "403", "409", "413", "415", "422", "429"])
        }
    });
    let mut upload = json!({
        "get": {
            "tags": ["uploads"], "operationId": "getUpload", "summary": "Status and per-record outcome counts",
            "parameters": [{ "$ref": "#/components/parameters/UploadId" }],
            "responses": with_problems(json!({
                "200": { "description": "The upload.",
                         "content": { "application/json": { "schema": { "$ref": "#/components/schemas/UploadStatus" } } } }
            }), &["401", "404", "429"])
        }
    });
    let mut upload_errors = json!({
        "get": {
            "tags": ["uploads"], "operationId": "getUploadErrors", "summary": "Rejected records with reason codes",
            "parameters": [{ "$ref": "#/components/parameters/UploadId" }],
            "responses": with_problems(json!({
                "200": { "description": "One line per rejected record.",
                         "content": { "text/csv": { "schema": { "type": "string" } } } }
            }), &["401", "404", "429"])
        }
    });
    for planned in [
        &mut uploads["post"],
        &mut upload["get"],
        &mut upload_errors["get"],
    ] {
        planned[PLANNED.0] = PLANNED.1.into();
    }
    json!({
        "/api/v1/report-requests": { "post": create_report_request() },
        "/api/v1/report-requests/{id}": { "get": {
            "tags": ["report-requests"], "operationId": "getReportRequest", "summary": "Status of a report request",
            "parameters": [{ "$ref": "#/components/parameters/ReportRequestId" }],
            "responses": with_problems(json!({
                "200": { "description": "The request's status.",
                         "headers": { "x-request-id": { "$ref": "#/components/headers/XRequestId" } },
                         "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ReportRequestStatus" } } } }
            }), &["401", "404", "429"])
        } },
        "/api/v1/report-requests/{id}/report": { "get": {
            "tags": ["report-requests"], "operationId": "getReport", "summary": "The finished credit report",
            "parameters": [{ "$ref": "#/components/parameters/ReportRequestId" }],
            "responses": with_problems(json!({
                "200": { "description": "The report PDF.",
                         "content": { "application/pdf": { "schema": { "type": "string", "contentMediaType": "application/pdf" } } } }
            }), &["401", "404", "429"])
        } },
        "/api/v1/uploads": uploads,
        "/api/v1/uploads/{id}": upload,
        "/api/v1/uploads/{id}/errors.csv": upload_errors,
        "/api/v1/openapi.json": { "get": {
            "tags": ["meta"], "operationId": "getOpenApi", "summary": "This document", "security": [],
            "responses": { "200": { "description": "OpenAPI 3.1 document.",
                                    "content": { "application/json": { "schema": { "type": "object" } } } } }
        } }
    })
}

fn create_report_request() -> Value {
    let status = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/ReportRequestStatus" } } });
    let headers = json!({
        "Location": { "$ref": "#/components/headers/Location" },
        "Preference-Applied": { "$ref": "#/components/headers/PreferenceApplied" },
        "x-request-id": { "$ref": "#/components/headers/XRequestId" }
    });
    json!({
        "tags": ["report-requests"],
        "operationId": "createReportRequest",
        "summary": "Request a credit report",
        "description": "Answers 202 once the request is durably stored. With `Prefer: wait=N` the server waits \
            up to N seconds (clamped to its configured maximum) for the Salesforce record and answers 201 if it \
            arrives in time. Repeating a request with the same Idempotency-Key and body returns the first answer; \
            the same key with a different body is 422; while the first is still being stored, 409.",
        "parameters": [
            { "$ref": "#/components/parameters/IdempotencyKey" },
            { "$ref": "#/components/parameters/Prefer" }
        ],
        "requestBody": {
            "required": true,
            "description": "JSON. XML is accepted where the bank's mapping allows it: root element `report_request`, \
                child elements as the JSON members, no attributes, repeated elements form arrays.",
            "content": {
                "application/json": {
                    "schema": { "$ref": "#/components/schemas/ReportRequest" },
                    "examples": {
                        "person": { "summary": "An individual", "value": example_report_request() },
                        "company": { "summary": "A legal entity", "value": example_company_request() }
                    }
                },
                "application/xml": { "schema": { "$ref": "#/components/schemas/ReportRequest" } }
            }
        },
        "responses": with_problems(json!({
            "201": { "description": "Stored and created in Salesforce within the preferred wait; `salesforce_id` is set.",
                     "headers": headers.clone(), "content": status.clone() },
            "202": { "description": "Durably stored; follow `status_url`.", "headers": headers, "content": status }
        }), &["400", "401", "403", "409", "413", "415", "422", "429", "500", "503"])
    })
}

/// Adds `$ref`s to the shared problem responses for `statuses`.
fn with_problems(mut responses: Value, statuses: &[&str]) -> Value {
    for status in statuses {
        responses[*status] = json!({ "$ref": format!("#/components/responses/Problem{status}") });
    }
    responses
}

fn parameters() -> Value {
    json!({
        "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1-255 printable ASCII characters, bare or as a quoted string. Replays with the same \
                key and body return the first answer.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 257 },
            "example": "8e03978e-40d5-43e8-bc93-6894a57f9324"
        },
        "Prefer": {
            "name": "Prefer", "in": "header", "required": false,
            "description": "RFC 7240. `wait=N`: wait up to N seconds (clamped) for the Salesforce outcome. \
                `respond-async`: answer 202 at once. Unknown or malformed preferences are ignored.",
            "schema": { "type": "string" },
            "examples": { "wait": { "value": "wait=5" }, "async": { "value": "respond-async, wait=10" } }
        },
        "ReportRequestId": { "name": "id", "in": "path", "required": true,
                             "description": "The creditlink id returned at creation.", "schema": { "type": "string" } },
        "UploadId": { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }
    })
}

fn headers() -> Value {
    json!({
        "Location": { "description": "URL of the request's status.", "schema": { "type": "string", "format": "uri-reference" } },
        "PreferenceApplied": { "description": "Preferences honoured (RFC 7240), e.g. `wait=5`.", "schema": { "type": "string" } },
        "XRequestId": { "description": "Id of this request (UUID v7); quote it when reporting a problem.",
                        "schema": { "type": "string", "format": "uuid" } },
        "RetryAfter": { "description": "Seconds to wait before retrying.", "schema": { "type": "integer", "minimum": 1 } },
        "WWWAuthenticate": { "description": "`Bearer realm=\"creditlink\"`, with `error=\"invalid_token\"` for a bad token.",
                             "schema": { "type": "string" } }
    })
}

fn schemas() -> Value {
    json!({
        "ReportRequest": {
            "type": "object", "additionalProperties": false,
            "required": ["reference", "subject", "purpose", "consent"],
            "properties": {
                "reference": { "type": "string", "minLength": 1, "description": "The bank's own reference." },
                "subject": { "oneOf": [{ "$ref": "#/components/schemas/PersonSubject" },
                                       { "$ref": "#/components/schemas/CompanySubject" }] },
                "purpose": { "type": "string", "enum": ["loan_application", "account_review", "dispute", "other"] },
                "consent": { "type": "object", "additionalProperties": false, "required": ["given_at"],
                             "properties": { "given_at": { "type": "string", "format": "date-time" } } }
            }
        },
        "PersonSubject": {
            "type": "object", "additionalProperties": false,
            "required": ["type", "national_id", "first_name", "last_name", "date_of_birth"],
            "properties": {
                "type": { "const": "person" },
                "national_id": { "type": "string", "minLength": 1 },
                "first_name": { "type": "string", "minLength": 1 },
                "last_name": { "type": "string", "minLength": 1 },
                "date_of_birth": { "type": "string", "format": "date" }
            }
        },
        "CompanySubject": {
            "type": "object", "additionalProperties": false, "required": ["type", "registry_number", "name"],
            "properties": {
                "type": { "const": "company" },
                "registry_number": { "type": "string", "minLength": 1 },
                "name": { "type": "string", "minLength": 1 }
            }
        },
        "ReportRequestStatus": report_request_status(),
        "UploadStatus": {
            "type": "object", "required": ["id", "status"],
            "properties": {
                "id": { "type": "string" },
                "status": { "type": "string", "enum": ["pending", "processing", "completed", "failed"] },
                "records_accepted": { "type": "integer", "minimum": 0 },
                "records_rejected": { "type": "integer", "minimum": 0 },
                "errors_url": { "type": "string", "format": "uri-reference" }
            }
        },
        "Problem": problem_schema(),
        "FieldError": {
            "type": "object", "required": ["field", "code", "detail"],
            "properties": {
                "field": { "type": "string", "description": "JSON Pointer (RFC 6901) into the body; empty for the whole body." },
                "code": { "type": "string", "examples": ["required", "invalid_format", "unknown_field"] },
                "detail": { "type": "string" }
            }
        }
    })
}

fn report_request_status() -> Value {
    json!({
        "type": "object",
        "required": ["id", "status", "salesforce_id", "attempts", "last_error", "created_at", "updated_at", "status_url"],
        "properties": {
            "id": { "type": "string", "description": "The creditlink id (Request_Key__c in Salesforce)." },
            "status": { "type": "string", "enum": ["pending", "in_flight", "delivered", "failed", "dead"],
                        "description": "pending: stored, not yet sent; in_flight: being sent; delivered: in Salesforce; \
                            failed: refused permanently; dead: retries exhausted." },
            "salesforce_id": { "type": ["string", "null"] },
            "attempts": { "type": "integer", "minimum": 0 },
            "last_error": { "oneOf": [
                { "type": "null" },
                { "type": "object", "required": ["code", "message"],
                  "properties": { "code": { "type": "string" }, "message": { "type": "string" } } }
            ] },
            "created_at": { "type": "string", "format": "date-time" },
            "updated_at": { "type": "string", "format": "date-time" },
            "status_url": { "type": "string", "format": "uri-reference" }
        },
        "example": {
            "id": "0193a5f2-7c1e-7d2a-9b4e-3f6a1c2d4e5f", "status": "delivered", "salesforce_id": "a015Y00001Suvw6QAB",
            "attempts": 1, "last_error": null, "created_at": "2026-11-20T10:00:01Z", "updated_at": "2026-11-20T10:00:02Z",
            "status_url": "/api/v1/report-requests/0193a5f2-7c1e-7d2a-9b4e-3f6a1c2d4e5f"
        }
    })
}

fn problem_schema() -> Value {
    let types: Vec<&str> = ProblemType::ALL.iter().map(|t| t.uri()).collect();
    json!({
        "type": "object", "required": ["type", "title", "status", "detail"],
        "description": "RFC 9457 problem details. Extension members: `errors`, `request_id`, and for malformed \
            bodies `line`, `column`, `code`.",
        "properties": {
            "type": { "type": "string", "format": "uri", "enum": types },
            "title": { "type": "string" },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "detail": { "type": "string" },
            "instance": { "type": "string", "format": "uri" },
            "request_id": { "type": "string", "format": "uuid" },
            "errors": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" } },
            "line": { "type": "integer", "minimum": 1 },
            "column": { "type": "integer", "minimum": 1 },
            "code": { "type": "string" }
        }
    })
}

/// One shared response per problem status.
fn problem_responses() -> Value {
    let mut responses = serde_json::Map::new();
    let described = [
        (
            "400",
            "Malformed body or header (with line/column for bodies).",
            &[][..],
        ),
        (
            "401",
            "Missing, malformed, expired or revoked bearer token.",
            &["WWW-Authenticate"][..],
        ),
        ("403", "The token's user may not do this.", &[]),
        (
            "404",
            "No such resource, or it belongs to another bank.",
            &[],
        ),
        (
            "409",
            "The request with this Idempotency-Key is still in flight.",
            &[],
        ),
        ("413", "Body too large.", &[]),
        ("415", "Unsupported Content-Type.", &[]),
        (
            "422",
            "Well-formed but invalid: every field problem is listed; or Idempotency-Key reused with another body.",
            &[],
        ),
        ("429", "Too many requests.", &["Retry-After"]),
        ("500", "Unexpected failure; quote request_id.", &[]),
        ("503", "Temporarily unavailable.", &["Retry-After"]),
    ];
    for (status, description, extra_headers) in described {
        let mut headers = json!({ "x-request-id": { "$ref": "#/components/headers/XRequestId" } });
        for name in extra_headers {
            headers[*name] =
                json!({ "$ref": format!("#/components/headers/{}", name.replace('-', "")) });
        }
        responses.insert(
            format!("Problem{status}"),
            json!({
                "description": description,
                "headers": headers,
                "content": { PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } } }
            }),
        );
    }
    Value::Object(responses)
}
