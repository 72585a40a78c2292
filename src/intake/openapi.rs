//! The OpenAPI 3.1 document of `/api/v1`, served at `GET /api/v1/openapi.json`.
//!
//! Built by hand as a `serde_json::Value` rather than with utoipa's derives: the request body has no Rust
//! type (a bank's JSON is mapped by admin-edited TOML, so the *document* is the contract, not a struct),
//! and the handlers are assembled elsewhere. Deriving would mean inventing types only to describe them.
//! A hand-built document also keeps every status, header and problem type visible in one file. Tests
//! check it parses, validates with an independent validator, and that its example is the default body of docs/bank-api.md.
//!
//! Truthfulness: the document lists only what the daemon serves (the data-feed routes come from
//! `crate::feeds::openapi`, next to their handlers). Its status vocabulary is `crate::lifecycle`'s, for the status document and
//! the `webhooks` alike.

use serde_json::{Value, json};

use super::problem::{PROBLEM_JSON, ProblemType};
use crate::lifecycle::Lifecycle;

/// Local name of the root element of an XML report request (`<report_request>…</report_request>`).
pub const REPORT_REQUEST_XML_ROOT: &str = "report_request";

/// The whole document.
pub fn openapi_json() -> Value {
    let mut doc = report_requests_document();
    let merge = |target: &mut Value, extra: Value| {
        if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
            t.extend(e);
        }
    };
    merge(&mut doc["paths"], crate::feeds::openapi::paths());
    merge(
        &mut doc["components"]["schemas"],
        crate::feeds::openapi::schemas(),
    );
    merge(&mut doc["webhooks"], crate::feeds::openapi::webhooks());
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(json!({ "name": "uploads", "description": "Credit data feeds (tradelines) and their verdicts" }));
    }
    doc
}

fn report_requests_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "creditlink bank API",
            "version": "1.0.0",
            "description": "Credit report requests from member banks. Authenticate with the \
                Salesforce access token of a bank user. Errors are RFC 9457 problem documents \
                (application/problem+json); 400 means a body that cannot be parsed, 422 a well-formed body \
                whose content is invalid, with every field problem listed."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearerAuth": [] }],
        "tags": [
            { "name": "report-requests", "description": "Credit report requests" },
            { "name": "meta", "description": "This document" }
        ],
        "paths": paths(),
        "webhooks": webhooks(),
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

/// The default request body (docs/bank-api.md), used as the example.
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
    json!({
        "/api/v1/report-requests": { "post": create_report_request() },
        "/api/v1/report-requests/{id}": { "get": {
            "tags": ["report-requests"], "operationId": "getReportRequest", "summary": "Status of a report request",
            "parameters": [{ "$ref": "#/components/parameters/ReportRequestId" }],
            "responses": with_problems(json!({
                "200": { "description": "The request's status.",
                         "headers": { "x-request-id": { "$ref": "#/components/headers/XRequestId" } },
                         "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ReportRequestStatus" } } } }
            }), &["401", "404", "405", "429"])
        } },
        "/api/v1/report-requests/{id}/report": { "get": {
            "tags": ["report-requests"], "operationId": "getReport", "summary": "The finished credit report",
            "description": "Only for a `completed` request; otherwise 409 `report-not-available` with the request's \
                `request_status` and the bureau's `reason`.",
            "parameters": [{ "$ref": "#/components/parameters/ReportRequestId" }],
            "responses": with_problems(json!({
                "200": { "description": "The report PDF; `ETag` and `Repr-Digest` carry its SHA-256.",
                         "content": { "application/pdf": { "schema": { "type": "string", "contentMediaType": "application/pdf" } } } }
            }), &["401", "404", "405", "409", "429"])
        } },
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
        }), &["400", "401", "403", "405", "409", "413", "415", "422", "429", "500", "503"])
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
                             "description": "The creditlink id returned at creation (a UUID; not the Salesforce id).",
                             "schema": { "type": "string", "format": "uuid" } }
    })
}

fn headers() -> Value {
    json!({
        "Location": { "description": "URL of the request's status.", "schema": { "type": "string", "format": "uri-reference" } },
        "PreferenceApplied": { "description": "Preferences honoured (RFC 7240), e.g. `wait=5`.", "schema": { "type": "string" } },
        "XRequestId": { "description": "Id of this request (UUID v7); quote it when reporting a problem.",
                        "schema": { "type": "string", "format": "uuid" } },
        "RetryAfter": { "description": "Seconds to wait before retrying.", "schema": { "type": "integer", "minimum": 1 } },
        "Allow": { "description": "The methods this path supports.", "schema": { "type": "string" } },
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
        "ReportRequestEvent": report_request_event(),
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

fn lifecycle_names() -> Vec<&'static str> {
    Lifecycle::ALL.iter().map(|s| s.as_str()).collect()
}

/// The members a webhook's `data` and the status document share (the lifecycle's one vocabulary).
fn request_view_properties() -> Value {
    let meanings: Vec<String> = Lifecycle::ALL
        .iter()
        .map(|s| format!("`{}`: {}", s.as_str(), s.meaning()))
        .collect();
    json!({
        "id": { "type": "string", "format": "uuid", "description": "The creditlink id (what every URL takes)." },
        "reference": { "type": ["string", "null"], "description": "The bank's own reference, as posted." },
        "status": { "type": "string", "enum": lifecycle_names(), "description": meanings.join("; ") },
        "reason": { "type": ["string", "null"],
                    "description": "Why: the bureau's reason (rejected, action_required) or why delivery failed (failed)." },
        "salesforce_id": { "type": ["string", "null"], "description": "The record id in the bureau's org, once submitted." },
        "report": { "oneOf": [
            { "type": "null" },
            { "type": "object", "required": ["url", "sha256", "size"], "properties": {
                "url": { "type": "string", "format": "uri" },
                "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                "size": { "type": "integer", "minimum": 0 } } }
        ], "description": "Set when completed: where to download the PDF, its SHA-256 and size in bytes." },
        "changed_at": { "type": "string", "format": "date-time", "description": "When the request entered this status." }
    })
}

fn report_request_status() -> Value {
    let mut properties = request_view_properties();
    properties["created_at"] = json!({ "type": "string", "format": "date-time" });
    properties["status_url"] = json!({ "type": "string", "format": "uri-reference" });
    properties["delivery"] = json!({
        "type": "object", "required": ["state", "attempts", "last_error", "updated_at"],
        "description": "creditlink's delivery of the request to Salesforce.",
        "properties": {
            "state": { "type": "string", "enum": ["pending", "in_flight", "delivered", "failed", "dead", "discarded"],
                       "description": "pending: waiting for its next attempt; in_flight: being sent; delivered: in \
                           Salesforce; failed: refused; dead: attempts exhausted; discarded: cancelled by an operator." },
            "attempts": { "type": "integer", "minimum": 0 },
            "last_error": { "oneOf": [
                { "type": "null" },
                { "type": "object", "required": ["code", "message"],
                  "properties": { "code": { "type": "string" }, "message": { "type": ["string", "null"] } } }
            ] },
            "updated_at": { "type": "string", "format": "date-time" }
        }
    });
    json!({
        "type": "object",
        "description": "The request's lifecycle. Every member of a webhook's `data` appears here with the same value.",
        "required": ["id", "status", "reason", "salesforce_id", "report", "changed_at", "created_at", "status_url", "delivery"],
        "properties": properties,
        "example": {
            "id": "0193a5f2-7c1e-7d2a-9b4e-3f6a1c2d4e5f", "reference": "LN-2026-000123", "status": "completed",
            "reason": null, "salesforce_id": "a015Y00001Suvw6QAB",
            "report": { "url": "https://creditlink.bureau.example/api/v1/report-requests/0193a5f2-7c1e-7d2a-9b4e-3f6a1c2d4e5f/report",
                        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "size": 48213 },
            "changed_at": "2026-11-20T10:12:40.000Z", "created_at": "2026-11-20T10:00:01.000Z",
            "status_url": "/api/v1/report-requests/0193a5f2-7c1e-7d2a-9b4e-3f6a1c2d4e5f",
            "delivery": { "state": "delivered", "attempts": 1, "last_error": null, "updated_at": "2026-11-20T10:00:02.000Z" }
        }
    })
}

/// The webhook `data` of every `report_request.<status>` event.
fn report_request_event() -> Value {
    json!({
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "description": "A Standard Webhooks event (`webhook-id`, `webhook-timestamp`, `webhook-signature` headers). \
            `type` is `report_request.<status>`; `data` carries the same members, with the same values, as the \
            status document.",
        "properties": {
            "type": { "type": "string", "enum": Lifecycle::ALL.iter().filter(|s| !matches!(s, Lifecycle::Received | Lifecycle::Submitted)).map(|s| s.event_type()).collect::<Vec<_>>() },
            "timestamp": { "type": "string", "format": "date-time" },
            "data": { "type": "object", "required": ["id", "status", "reason", "salesforce_id", "report", "changed_at"],
                      "properties": request_view_properties() }
        }
    })
}

/// OpenAPI 3.1 `webhooks`: what creditlink posts to a bank's endpoint.
fn webhooks() -> Value {
    let mut hooks = serde_json::Map::new();
    for state in Lifecycle::ALL {
        if matches!(state, Lifecycle::Received | Lifecycle::Submitted) {
            continue;
        }
        hooks.insert(
            state.event_type(),
            json!({ "post": {
            "summary": format!("The request is {}: {}", state.as_str(), state.meaning()),
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/ReportRequestEvent" } } } },
            "responses": { "2XX": { "description": "Received; any 2xx stops the retries." } }
        } }),
        );
    }
    Value::Object(hooks)
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
            "code": { "type": "string" },
            "request_status": { "type": "string", "enum": lifecycle_names() },
            "reason": { "type": "string" }
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
            "405",
            "This path does not support this method (`Allow` lists the ones it does).",
            &["Allow"][..],
        ),
        (
            "409",
            "The request with this Idempotency-Key is still in flight; or (report download) the request has no \
             report: `request_status` and `reason` say why.",
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
