//! The feeds' part of the OpenAPI document (`intake::openapi` merges it): paths, schemas and webhooks of the
//! upload routes, with the reason codes listed from the registry itself.

use serde_json::{Value, json};

use super::model::Outcome;
use super::reasons::REGISTRY;

fn problems(mut responses: Value, statuses: &[&str]) -> Value {
    for status in statuses {
        responses[*status] = json!({ "$ref": format!("#/components/responses/Problem{status}") });
    }
    responses
}

fn json_of(schema: &str) -> Value {
    json!({ "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } })
}

/// Paths to add to the document's `paths`.
pub fn paths() -> Value {
    let id = json!({ "name": "id", "in": "path", "required": true, "description": "The upload id returned at creation.",
                     "schema": { "type": "string", "format": "uuid" } });
    let limit = json!({ "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } });
    json!({
        "/api/v1/uploads": {
            "post": {
                "tags": ["uploads"], "operationId": "createUpload", "summary": "Upload a credit data feed",
                "description": "Streams the file to encrypted storage and answers 202 once it is durable; processing is \
                    asynchronous. Framing problems (content type, not CSV/NDJSON, no header, unknown or missing required \
                    columns, size; for XML: not well-formed, a DOCTYPE or an entity other than the predefined ones (400), \
                    a root other than the mapping's `xml_root` (422)) are refused at once and nothing is stored; problems of single rows never fail the \
                    upload. Large uploads are loaded into Salesforce through Bulk API 2.0 jobs. Beyond the bank's upload quota ([uploads] quota_per_hour, uploads per hour) the answer is 429 with Retry-After and nothing is stored. Repeating an upload with the same Idempotency-Key and body returns the first answer.",
                "parameters": [
                    { "$ref": "#/components/parameters/IdempotencyKey" },
                    { "name": "name", "in": "query", "required": false, "description": "A display name (else the Content-Disposition file name).", "schema": { "type": "string", "maxLength": 200 } }
                ],
                "requestBody": { "required": true, "content": {
                    "text/csv": { "schema": { "type": "string" }, "example": "account_number,product_type,date_opened,balance,status,as_of_date,subject_type,national_id\r\nLN-1,installment,2020-01-15,1500.00,active,2025-06-30,person,CW-1980013101\r\n" },
                    "application/x-ndjson": { "schema": { "type": "string" } },
                    "application/xml": { "schema": { "type": "string", "description": "Only when the bank's credit_record mapping accepts XML (else 415). The root element is the mapping's `xml_root`; each child of the root is one row, each child of a row one column named like the CSV header; an empty or absent element is an empty cell. No DOCTYPE, no entities beyond the five predefined ones and character references. text/xml is accepted too." }, "example": "<CreditRecords><record><account_number>LN-1</account_number><product_type>installment</product_type><date_opened>2020-01-15</date_opened><balance>1500.00</balance><status>active</status><as_of_date>2025-06-30</as_of_date><subject_type>person</subject_type><national_id>CW-1980013101</national_id></record></CreditRecords>" }
                } },
                "responses": problems(json!({
                    "202": { "description": "Durably stored; follow `status_url`.",
                             "headers": { "Location": { "$ref": "#/components/headers/Location" } },
                             "content": json_of("UploadAccepted") }
                }), &["400", "401", "403", "409", "413", "415", "422", "429", "503"])
            },
            "get": {
                "tags": ["uploads"], "operationId": "listUploads", "summary": "Your bank's uploads, newest first",
                "parameters": [limit, { "name": "after", "in": "query", "required": false, "description": "`next_after` of the previous page.", "schema": { "type": "string" } }],
                "responses": problems(json!({ "200": { "description": "One page.", "content": json_of("UploadList") } }), &["400", "401"])
            }
        },
        "/api/v1/uploads/{id}": { "get": {
            "tags": ["uploads"], "operationId": "getUpload", "summary": "Status and counts of an upload",
            "parameters": [id.clone()],
            "responses": problems(json!({ "200": { "description": "The upload.", "content": json_of("UploadStatus") } }), &["401", "404"])
        } },
        "/api/v1/uploads/{id}/records": { "get": {
            "tags": ["uploads"], "operationId": "getUploadRecords", "summary": "The verdict of every row",
            "parameters": [id.clone(),
                { "name": "outcome", "in": "query", "required": false, "schema": { "type": "string", "enum": outcome_names() } },
                limit,
                { "name": "after", "in": "query", "required": false, "description": "Row number to continue after (`next_after`).", "schema": { "type": "integer", "minimum": 0 } }],
            "responses": problems(json!({ "200": { "description": "One page of rows.", "content": json_of("UploadRecords") } }), &["400", "401", "404"])
        } },
        "/api/v1/uploads/{id}/errors.csv": { "get": {
            "tags": ["uploads"], "operationId": "getUploadErrors", "summary": "Rejected rows as uploaded, with the reasons",
            "description": "Every rejected row with its values as uploaded, followed by `error_row, error_code, error_field, \
                error_message, error_remedy`; one line per problem. Fix the rows, drop the error columns and upload them again.",
            "parameters": [id],
            "responses": problems(json!({ "200": { "description": "CSV.", "content": { "text/csv": { "schema": { "type": "string" } } } } }), &["401", "404"])
        } },
        "/api/v1/reason-codes": { "get": {
            "tags": ["uploads"], "operationId": "getReasonCodes", "summary": "Every reason code a row problem can carry", "security": [],
            "responses": { "200": { "description": "The registry.", "content": json_of("ReasonCodes") } }
        } }
    })
}

fn outcome_names() -> Vec<&'static str> {
    Outcome::ALL.iter().map(|o| o.as_str()).collect()
}

/// Schemas to add to `components.schemas`.
pub fn schemas() -> Value {
    let codes: Vec<&str> = REGISTRY.iter().map(|r| r.code).collect();
    let count = json!({ "type": "integer", "minimum": 0 });
    json!({
        "UploadAccepted": { "type": "object", "required": ["id", "status", "status_url"], "properties": {
            "id": { "type": "string", "format": "uuid" },
            "status": { "type": "string", "enum": ["received", "processing", "completed", "failed"],
                "description": "`received` for a new upload; a replay of its Idempotency-Key answers the upload's current status." },
            "status_url": { "type": "string", "format": "uri-reference" } } },
        "UploadStatus": { "type": "object", "required": ["id", "name", "status", "received_at", "completed_at", "counts"], "properties": {
            "id": { "type": "string", "format": "uuid" },
            "name": { "type": "string" },
            "status": { "type": "string", "enum": ["received", "processing", "completed", "failed"] },
            "received_at": { "type": "string", "format": "date-time" },
            "completed_at": { "type": ["string", "null"], "format": "date-time" },
            "counts": { "type": "object", "required": ["rows", "accepted", "updated", "unchanged", "duplicate", "rejected", "warnings", "reinstated"],
                "properties": { "rows": count, "accepted": count, "updated": count, "unchanged": count, "duplicate": count,
                                "rejected": count, "warnings": count, "reinstated": count } },
            "failure": { "type": "string", "description": "Why a failed upload failed." },
            "status_url": { "type": "string" }, "records_url": { "type": "string" }, "errors_url": { "type": "string" } } },
        "UploadList": { "type": "object", "required": ["uploads", "next_after"], "properties": {
            "uploads": { "type": "array", "items": { "$ref": "#/components/schemas/UploadStatus" } },
            "next_after": { "type": ["string", "null"] } } },
        "RowProblem": { "type": "object", "required": ["code", "field", "severity", "message", "remedy"], "properties": {
            "code": { "type": "string", "enum": codes },
            "field": { "type": "string", "description": "The feed column; empty for the row as a whole." },
            "severity": { "type": "string", "enum": ["error", "warning"] },
            "message": { "type": "string" }, "remedy": { "type": "string" } } },
        "UploadRecord": { "type": "object", "required": ["row", "outcome", "record_key", "salesforce_id", "problems", "duplicate_of"], "properties": {
            "row": { "type": "integer", "minimum": 1 },
            "outcome": { "type": "string", "enum": outcome_names(), "description": "Uploads large enough to go \
                through Salesforce Bulk API 2.0 ([uploads] bulk_threshold_rows) report `accepted` or `updated` for the \
                rows they send, never `unchanged` or `reinstated`. A duplicate rule's verdict names the rule in the \
                problem's message." },
            "record_key": { "type": ["string", "null"] },
            "salesforce_id": { "type": ["string", "null"] },
            "problems": { "type": "array", "items": { "$ref": "#/components/schemas/RowProblem" } },
            "duplicate_of": { "type": ["integer", "null"] } } },
        "UploadRecords": { "type": "object", "required": ["records", "next_after"], "properties": {
            "records": { "type": "array", "items": { "$ref": "#/components/schemas/UploadRecord" } },
            "next_after": { "type": ["integer", "null"] } } },
        "ReasonCodes": { "type": "object", "required": ["reason_codes"], "properties": {
            "reason_codes": { "type": "array", "items": { "type": "object", "required": ["code", "meaning", "severity", "remedy"], "properties": {
                "code": { "type": "string" }, "meaning": { "type": "string" },
                "severity": { "type": "string", "enum": ["error", "warning"] }, "remedy": { "type": "string" } } } } } }
    })
}

/// Webhooks to add to the document's `webhooks`.
pub fn webhooks() -> Value {
    let hook = |summary: &str| {
        json!({ "post": {
        "summary": summary,
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/UploadStatus" } } } },
        "responses": { "2XX": { "description": "Received; any 2xx stops the retries." } }
    } })
    };
    json!({
        "upload.completed": hook("An upload finished: its counts and the errors.csv link (`errors_url`)."),
        "upload.failed": hook("An upload failed (`failure` says why); rows recorded before stay visible."),
    })
}
