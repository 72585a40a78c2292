//! The feeds' read side, shared by the bank API (`http.rs`) and the dashboard (`crate::ui::uploads`): every
//! read names its tenant, so tenancy is decided here, not by the caller's templates.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::StreamExt;

use super::model::{BATCH_ROWS, Outcome, RowResult, Upload};
use super::{FeedError, Feeds};

impl Feeds {
    /// `tenant`'s uploads, newest first, starting after the upload `after` (exclusive), at most `limit`.
    pub async fn uploads_of(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Upload>, FeedError> {
        self.inner.ledger.list(tenant, after, limit).await
    }

    /// Upload `id` when it is `tenant`'s (any bank's with `None`): an unknown id, a malformed one and
    /// another bank's are all `None`.
    pub async fn upload_of(
        &self,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<Option<Upload>, FeedError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Ok(None);
        }
        Ok(self
            .inner
            .ledger
            .get(id)
            .await?
            .filter(|u| tenant.is_none_or(|t| u.tenant == t)))
    }

    /// The verdicts of `upload`'s rows after row `after`, of `outcome` when given, at most `limit`; and
    /// whether more follow.
    pub async fn verdicts(
        &self,
        upload: &Upload,
        outcome: Option<Outcome>,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<RowResult>, bool), FeedError> {
        let mut out = Vec::new();
        let mut index = after / BATCH_ROWS;
        while index < upload.batches_done {
            let Some(batch) = self.inner.ledger.batch(&upload.id, index).await? else {
                break;
            };
            for row in batch.rows {
                if row.row <= after || outcome.is_some_and(|o| o != row.outcome) {
                    continue;
                }
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(row);
            }
            index += 1;
        }
        Ok((out, false))
    }

    /// `upload`'s `errors.csv` (already checked to be the caller's): the rejected rows as uploaded, one line
    /// per problem, plus the error columns; streamed batch by batch.
    pub fn errors_csv(&self, upload: Upload) -> Response {
        let mut header = upload.columns.clone();
        header.extend(
            [
                "error_row",
                "error_code",
                "error_field",
                "error_message",
                "error_remedy",
            ]
            .map(String::from),
        );
        let first = super::http::csv_line(&header);
        let filename = format!("attachment; filename=\"upload-{}-errors.csv\"", upload.id);
        let state = (self.clone(), upload, 0u64);
        let rest = futures::stream::unfold(state, |(feeds, upload, index)| async move {
            if index >= upload.batches_done {
                return None;
            }
            let chunk = super::http::errors_chunk(&feeds, &upload, index).await;
            Some((chunk, (feeds, upload, index + 1)))
        });
        let stream =
            futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
        let mut response = Response::new(Body::from_stream(stream));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        if let Ok(v) = HeaderValue::from_str(&filename) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        response
    }
}
