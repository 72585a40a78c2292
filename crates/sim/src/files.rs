//! Files (reference §2.11): ContentVersion uploads as JSON (base64 `VersionData`) or multipart
//! (`entity_content` JSON part plus a binary part named after the blob field), and what Salesforce does on
//! insert: create the ContentDocument (069), link it to `FirstPublishLocationId` (06A) and fill
//! `ContentDocumentId`, `IsLatest`, `FileExtension` and `ContentSize`.

use axum::http::{HeaderMap, header};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::{ApiError, RecordError};
use super::org::{Org, Record};

pub fn is_multipart(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
}

/// The record a multipart upload describes: the `entity_content` JSON with each binary part added as base64
/// under its part name (the blob field, e.g. `VersionData`).
pub fn parse_multipart(headers: &HeaderMap, body: &[u8]) -> Result<Record, ApiError> {
    let malformed = |m: &str| ApiError::bad_request("MALFORMED_REQUEST", m.to_string());
    let ct = content_type(headers).unwrap_or_default();
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| malformed("multipart request without a boundary"))?;
    let delimiter = format!("--{boundary}");
    let mut entity: Option<Record> = None;
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    for part in split(body, delimiter.as_bytes()).into_iter().skip(1) {
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(split_at) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split_at]).to_string();
        let mut content = &part[split_at + 4..];
        content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let Some(name) = part_name(&head) else {
            continue;
        };
        if name == "entity_content" || name.starts_with("entity_") {
            entity = Some(super::rest::parse_record(content)?);
        } else {
            blobs.push((name, content.to_vec()));
        }
    }
    let mut record =
        entity.ok_or_else(|| malformed("multipart request without an entity_content part"))?;
    for (name, bytes) in blobs {
        record.insert(
            name,
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        );
    }
    Ok(record)
}

/// Salesforce's side effects of inserting a ContentVersion.
pub fn after_version_insert(
    org: &mut Org,
    id: &str,
    user: &str,
    now: DateTime<Utc>,
) -> Result<(), RecordError> {
    let version = org.get("ContentVersion", id)?.clone();
    let path = version
        .get("PathOnClient")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let file_name = path.rsplit(['/', '\\']).next().unwrap_or_default();
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let title = version
        .get("Title")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            file_name
                .rsplit_once('.')
                .map_or(file_name, |(stem, _)| stem)
                .to_string()
        });
    let size = org.blob(id, "VersionData").map_or(0, Vec::len);

    let existing_doc = version
        .get("ContentDocumentId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let doc_id = match existing_doc {
        Some(doc) => {
            let older: Vec<String> = org
                .all("ContentVersion")
                .filter(|r| {
                    r.get("ContentDocumentId").and_then(Value::as_str) == Some(doc.as_str())
                })
                .filter_map(|r| r.get("Id").and_then(Value::as_str).map(str::to_owned))
                .filter(|v| v != id)
                .collect();
            for v in older {
                org.set_system("ContentVersion", &v, fields([("IsLatest", false.into())]));
            }
            doc
        }
        None => {
            let doc = org.create(
                "ContentDocument",
                &fields([("Title", title.clone().into())]),
                user,
                now,
            )?;
            if let Some(target) = version
                .get("FirstPublishLocationId")
                .and_then(Value::as_str)
            {
                let link = fields([
                    ("ContentDocumentId", doc.clone().into()),
                    ("LinkedEntityId", target.into()),
                    ("ShareType", "V".into()),
                    ("Visibility", "AllUsers".into()),
                ]);
                org.create("ContentDocumentLink", &link, user, now)?;
            }
            doc
        }
    };
    org.set_system(
        "ContentVersion",
        id,
        fields([
            ("ContentDocumentId", doc_id.clone().into()),
            ("IsLatest", true.into()),
            ("Title", title.clone().into()),
            ("FileExtension", extension.clone().into()),
            ("ContentSize", size.into()),
        ]),
    );
    org.set_system(
        "ContentDocument",
        &doc_id,
        fields([
            ("LatestPublishedVersionId", id.into()),
            ("Title", title.into()),
            ("FileExtension", extension.into()),
            ("ContentSize", size.into()),
        ]),
    );
    Ok(())
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Record {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE)?.to_str().ok()
}

fn part_name(head: &str) -> Option<String> {
    let disposition = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
    let start = disposition.find("name=\"")? + 6;
    let rest = &disposition[start..];
    Some(rest[..rest.find('"')?].to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut data: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(i) = find(data, delimiter) {
        parts.push(&data[..i]);
        data = &data[i + delimiter.len()..];
    }
    parts.push(data);
    parts
}
