//! Files: `ContentVersion` upload and download (REST API "Insert or Update Blob Data").
//!
//! Finished credit reports are PDFs stored as ContentVersions linked to their request. Upload comes in two forms:
//! base64 inside JSON (simple, up to 37.5 MB of file) and `multipart/form-data` (up to 2 GB, no base64 overhead).
//! Download is the raw `VersionData` blob. File bytes are personal data: never logged, never in `Debug`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tracing::instrument;

use super::client::{SalesforceClient, read_json};
use super::error::SfError;
use super::types::{ContentUpload, SaveResult};

/// Largest file Salesforce accepts base64-encoded in a JSON body (50 MB of text).
pub const MAX_JSON_UPLOAD_BYTES: usize = 37_500_000;

impl SalesforceClient {
    /// `POST /sobjects/ContentVersion`, as JSON with base64 `VersionData` or as multipart (`upload.multipart`).
    #[instrument(name = "salesforce", skip_all, fields(op = "upload_content_version", bytes = upload.data.len(), multipart = upload.multipart))]
    pub async fn upload_content_version(
        &self,
        upload: ContentUpload,
    ) -> Result<SaveResult, SfError> {
        let mut entity = json!({ "Title": upload.title, "PathOnClient": upload.path_on_client });
        if let Some(location) = &upload.first_publish_location_id {
            entity["FirstPublishLocationId"] = Value::String(location.clone());
        }
        let response = if upload.multipart {
            let entity = entity.to_string();
            self.send(|c| {
                Ok(c.data(Method::POST, &["sobjects", "ContentVersion"])?
                    .multipart(multipart_form(&entity, &upload)?))
            })
            .await?
        } else {
            if upload.data.len() > MAX_JSON_UPLOAD_BYTES {
                return Err(SfError::Usage(format!(
                    "{} bytes is too large for a JSON upload (max {MAX_JSON_UPLOAD_BYTES}); use multipart",
                    upload.data.len()
                )));
            }
            entity["VersionData"] = Value::String(BASE64.encode(&upload.data));
            self.send(|c| {
                Ok(c.data(Method::POST, &["sobjects", "ContentVersion"])?
                    .json(&entity))
            })
            .await?
        };
        read_json(response).await
    }

    /// `GET /sobjects/ContentVersion/{id}/VersionData`: the file's bytes.
    #[instrument(name = "salesforce", skip_all, fields(op = "download_version_data"))]
    pub async fn download_version_data(&self, content_version_id: &str) -> Result<Bytes, SfError> {
        let response = self.request_version_data(content_version_id).await?;
        response.bytes().await.map_err(SfError::transport)
    }

    /// The `VersionData` request both downloads share; the caller decides how to read the body.
    async fn request_version_data(
        &self,
        content_version_id: &str,
    ) -> Result<reqwest::Response, SfError> {
        self.send(|c| {
            Ok(c.data(
                Method::GET,
                &[
                    "sobjects",
                    "ContentVersion",
                    content_version_id,
                    "VersionData",
                ],
            )?
            .header(ACCEPT, HeaderValue::from_static("*/*")))
        })
        .await
    }

    /// `GET /sobjects/ContentVersion/{id}/VersionData`, read as a stream and cut off with
    /// [`SfError::TooLarge`] as soon as it passes `limit` bytes (or announces more in `Content-Length`), so a
    /// file larger than the caller can store never sits in memory whole.
    #[instrument(
        name = "salesforce",
        skip_all,
        fields(op = "download_version_data", limit)
    )]
    pub async fn download_version_data_capped(
        &self,
        content_version_id: &str,
        limit: u64,
    ) -> Result<Bytes, SfError> {
        let mut response = self.request_version_data(content_version_id).await?;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(SfError::TooLarge { limit });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(SfError::transport)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(SfError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// The newest ContentVersion published on each of `record_ids` (`FirstPublishLocationId`), with its
    /// `ContentSize`: one query for the whole batch. Records without a file are absent from the map. The ids
    /// must be valid Salesforce ids (they are written into the SOQL literal).
    #[instrument(name = "salesforce", skip_all, fields(op = "latest_content_versions", records = record_ids.len()))]
    pub async fn latest_content_versions(
        &self,
        record_ids: &[&str],
    ) -> Result<HashMap<String, ContentVersionRef>, SfError> {
        if record_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let soql = format!(
            "SELECT Id, ContentSize, FirstPublishLocationId FROM ContentVersion \
             WHERE FirstPublishLocationId IN ({}) ORDER BY CreatedDate DESC",
            soql_id_list(record_ids)?
        );
        let mut latest = HashMap::new();
        for row in self.query_all(&soql).await? {
            let text = |field: &str| row.get(field).and_then(Value::as_str);
            let (Some(id), Some(location)) = (text("Id"), text("FirstPublishLocationId")) else {
                return Err(SfError::Decode {
                    status: 200,
                    message: "ContentVersion row without Id or FirstPublishLocationId".into(),
                });
            };
            // Newest first: the first row of a record is its latest version.
            latest
                .entry(location.to_owned())
                .or_insert_with(|| ContentVersionRef {
                    id: id.to_owned(),
                    size: row.get("ContentSize").and_then(Value::as_u64),
                });
        }
        Ok(latest)
    }
}

/// A ContentVersion as a reader needs it before downloading: its id and announced size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentVersionRef {
    pub id: String,
    /// `ContentSize` in bytes, when the org sent it.
    pub size: Option<u64>,
}

/// `'id1','id2'` for a SOQL `IN (...)`; refuses anything that is not a 15- or 18-character alphanumeric id, so
/// no caller can put SOQL syntax into the literal.
pub fn soql_id_list(ids: &[&str]) -> Result<String, SfError> {
    let mut list = String::with_capacity(ids.len() * 21);
    for (i, id) in ids.iter().enumerate() {
        if !(id.len() == 15 || id.len() == 18) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SfError::Usage(format!("{id:?} is not a Salesforce id")));
        }
        if i > 0 {
            list.push(',');
        }
        list.push('\'');
        list.push_str(id);
        list.push('\'');
    }
    Ok(list)
}

/// The documented two-part form: `entity_content` (JSON metadata) and `VersionData` (the file).
/// Rebuilt per attempt because a form is consumed when sent; the bytes themselves are shared, not copied.
fn multipart_form(entity: &str, upload: &ContentUpload) -> Result<Form, SfError> {
    let metadata = Part::text(entity.to_owned())
        .mime_str("application/json")
        .map_err(|e| SfError::Usage(format!("multipart metadata: {e}")))?;
    let file = Part::stream_with_length(upload.data.clone(), upload.data.len() as u64)
        .file_name(upload.path_on_client.clone())
        .mime_str(mime_for(&upload.path_on_client))
        .map_err(|e| SfError::Usage(format!("multipart file part: {e}")))?;
    Ok(Form::new()
        .part("entity_content", metadata)
        .part("VersionData", file))
}

fn mime_for(path: &str) -> &'static str {
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("pdf") => "application/pdf",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_refuse_anything_but_ids() {
        assert_eq!(
            soql_id_list(&["a0B5Y00000ABCDEFGH", "a0B5Y00000ABCDE"]).unwrap(),
            "'a0B5Y00000ABCDEFGH','a0B5Y00000ABCDE'"
        );
        assert!(soql_id_list(&["a0B5Y00000ABCD' OR Name != '"]).is_err());
        assert!(soql_id_list(&["short"]).is_err());
    }

    #[test]
    fn mime_from_extension() {
        assert_eq!(mime_for("report.PDF"), "application/pdf");
        assert_eq!(mime_for("noext"), "application/octet-stream");
    }
}
