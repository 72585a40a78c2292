//! Files: `ContentVersion` upload and download (`reference/salesforce-wire.md` §2.11).
//!
//! Finished credit reports are PDFs stored as ContentVersions linked to their request. Upload comes in two forms:
//! base64 inside JSON (simple, up to 37.5 MB of file) and `multipart/form-data` (up to 2 GB, no base64 overhead).
//! Download is the raw `VersionData` blob. File bytes are personal data: never logged, never in `Debug`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
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
        let response = self
            .send(|c| {
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
            .await?;
        response.bytes().await.map_err(SfError::transport)
    }
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
    fn mime_from_extension() {
        assert_eq!(mime_for("report.PDF"), "application/pdf");
        assert_eq!(mime_for("noext"), "application/octet-stream");
    }
}
