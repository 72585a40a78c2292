//! Large uploads through Bulk API 2.0: the rows of `[uploads] bulk_job_rows` (whole 200-row batches) form a
//! *part*, and each part is loaded by ingest jobs through the [`super::BulkSink`].
//!
//! # Crash safety
//! A part's job ids are stored in the ledger (`feeds.bulk`, under the part's first batch) **before** the job
//! gets any data. A restarted worker re-reads the part from the spool and first replays the stored jobs in
//! order: it waits for each (a job found still `Open` — the process died before or during the upload — is
//! aborted by the client, its rows come back unprocessed or not at all) and maps its result files back to rows
//! by `Record_Key__c`. Only rows no stored job settled go into a new job. So a row is uploaded again only when
//! Salesforce never wrote it, and its verdict (`accepted` when Salesforce created the record, `updated`
//! otherwise) is the one Salesforce reported. The part's batches of verdicts are stored and the checkpoint
//! (`batches_done`) moved only when every row of the part is settled.
//!
//! # What Bulk does not tell
//! Without a read of the existing records per batch (which would cost the API calls Bulk saves), a Bulk upload
//! cannot tell `unchanged` from `updated` nor see that it revived a stale-terminated record: such rows are
//! `updated`. A row whose status maps to `Active` clears `Termination_Reason__c`, so a revived record does not
//! keep a stale reason.
//!
//! # Memory
//! A part holds its rows compactly: per row its number, record key and field values as one byte string
//! (varint field index and length, then the text), about 0.4 KB per row of the default feed. The row as
//! uploaded is not held: for the rare row Salesforce kicks out it is read again from the spool (for
//! `errors.csv`). The rows' settlements are a list in the part's order, found by key through an index that
//! borrows the held keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Feeds;
use super::error::FeedError;
use super::model::{Outcome, Upload};
use super::reasons::{self as r, RowProblem};
use super::validate::KIND;
use super::worker::{
    Done, Prepared, TERMINATION_REASON, backoff, open_rows, retrying, salesforce_field,
    salesforce_message, store_batch,
};
use crate::mapping::MappingSet;
use crate::salesforce::{ApiError, BulkJobState, BulkResults, ErrorClass};
use crate::store::binary::{Reader, put_var_bytes, put_varint};

/// How Salesforce settled one row: written (its id, whether created) or refused for good (boxed: rare).
type Settled = Result<(Option<String>, bool), Box<ApiError>>;

/// A row to load, held compactly until its part is settled.
struct Held {
    row: u64,
    key: Box<str>,
    /// `(field index varint, length varint, UTF-8 text)` repeated; the text `#N/A` clears a field.
    cells: Box<[u8]>,
    /// What few rows have: warnings, an account-number change.
    extra: Option<Box<Extra>>,
}

struct Extra {
    warnings: Vec<RowProblem>,
    /// The record key under the row's `previous_account_number` (an account-number change).
    previous_key: Option<String>,
}

impl Held {
    fn previous_key(&self) -> Option<&str> {
        self.extra.as_ref()?.previous_key.as_deref()
    }
}

enum Slot {
    /// Boxed: decided rows are few, and a `Done` is several times the size of a `Held`.
    Done(Box<Done>),
    Load(Held),
}

/// The batches of one part, being collected and then loaded.
pub(super) struct Part {
    first: u64,
    batches: Vec<Vec<Slot>>,
    fields: Vec<String>,
    field_index: HashMap<String, u16>,
}

impl Part {
    pub(super) fn new(first: u64) -> Part {
        Part {
            first,
            batches: Vec::new(),
            fields: Vec::new(),
            field_index: HashMap::new(),
        }
    }

    pub(super) fn batches(&self) -> usize {
        self.batches.len()
    }

    /// Takes a batch of prepared rows into the part.
    pub(super) fn push(&mut self, batch: Vec<Prepared>, mappings: &MappingSet, bank_code: &str) {
        let status_field = mappings
            .inbound_fields(KIND, Some(bank_code))
            .into_iter()
            .find(|f| f.from == "status")
            .map(|f| f.to);
        let mut slots = Vec::with_capacity(batch.len());
        for p in batch {
            slots.push(match p {
                Prepared::Decided(done) => Slot::Done(Box::new(done)),
                Prepared::Send { row, valid, .. } => {
                    let active = status_field
                        .as_ref()
                        .and_then(|f| valid.record.get(f))
                        .and_then(Value::as_str)
                        == Some("Active");
                    let mut cells = Vec::with_capacity(256);
                    for (field, value) in &valid.record {
                        let text = match value {
                            Value::Null => "#N/A".to_owned(),
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        self.put_cell(&mut cells, field, &text);
                    }
                    if active && !valid.record.contains_key(TERMINATION_REASON) {
                        self.put_cell(&mut cells, TERMINATION_REASON, "#N/A");
                    }
                    let extra =
                        (!valid.warnings.is_empty() || valid.previous_key.is_some()).then(|| {
                            Box::new(Extra {
                                warnings: valid.warnings,
                                previous_key: valid.previous_key,
                            })
                        });
                    Slot::Load(Held {
                        row,
                        key: valid.record_key.into_boxed_str(),
                        cells: cells.into_boxed_slice(),
                        extra,
                    })
                }
            });
        }
        self.batches.push(slots);
    }

    fn put_cell(&mut self, out: &mut Vec<u8>, field: &str, text: &str) {
        let next = self.fields.len() as u16;
        let index = *self.field_index.entry(field.to_owned()).or_insert_with(|| {
            self.fields.push(field.to_owned());
            next
        });
        put_varint(out, u64::from(index));
        put_var_bytes(out, text.as_bytes());
    }

    fn held(&self) -> impl Iterator<Item = &Held> {
        self.batches.iter().flatten().filter_map(|s| match s {
            Slot::Load(h) => Some(h),
            Slot::Done(_) => None,
        })
    }

    /// The CSV of the rows not yet settled (header: every field the part's rows fill).
    fn csv(&self, todo: &Todo) -> Result<Bytes, FeedError> {
        // Sized up front (a row's cells plus a separator per field, unquoted): growing by doubling would
        // copy and briefly hold the CSV one and a half times.
        let size: usize = self
            .held()
            .enumerate()
            .filter(|(i, _)| todo.open(*i))
            .map(|(_, h)| h.cells.len() + self.fields.len())
            .sum::<usize>()
            + self.fields.iter().map(|f| f.len() + 1).sum::<usize>();
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::with_capacity(size));
        let bad = |e: csv::Error| FeedError::Corrupt(format!("Bulk CSV: {e}"));
        writer.write_record(&self.fields).map_err(bad)?;
        let mut row: Vec<&str> = vec![""; self.fields.len()];
        for (_, h) in self.held().enumerate().filter(|(i, _)| todo.open(*i)) {
            row.iter_mut().for_each(|c| *c = "");
            for (index, text) in cells(&h.cells) {
                row[index] = text;
            }
            writer.write_record(&row).map_err(bad)?;
        }
        writer
            .into_inner()
            .map(Bytes::from)
            .map_err(|e| FeedError::Corrupt(format!("Bulk CSV: {e}")))
    }

    /// Loads the part (replaying stored jobs first), stores its batches of verdicts and moves the checkpoint.
    /// `Ok(false)` when stopped before the part was recorded.
    pub(super) async fn send(
        self,
        feeds: &Feeds,
        upload: &mut Upload,
        mappings: &MappingSet,
        stop: &CancellationToken,
    ) -> Result<bool, FeedError> {
        let ledger = &feeds.inner.ledger;
        let sink = &feeds.inner.bulk;
        let object = mappings
            .object(KIND, Some(&upload.bank_code))
            .ok_or_else(|| FeedError::Mapping("no credit_record mapping for this bank".into()))?
            .to_owned();
        let key_field = self
            .held()
            .next()
            .and_then(|h| {
                cells(&h.cells)
                    .find(|(_, text)| *text == &*h.key)
                    .map(|(i, _)| self.fields[i].clone())
            })
            .unwrap_or_else(|| "Record_Key__c".to_owned());
        // Every row to load (in the part's order), settled or not yet; and where each key's row is.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let slot_of: Vec<u32> = self
            .held()
            .enumerate()
            .map(|(i, h)| *index.entry(&*h.key).or_insert(i) as u32)
            .collect();
        let mut todo = Todo {
            settled: slot_of.iter().map(|_| None).collect(),
            slot_of,
        };
        if !self.rekey(feeds, &object, &key_field, stop).await? {
            return Ok(false);
        }
        let mut jobs = ledger.bulk_jobs(&upload.id, self.first).await?;
        for job in &jobs {
            match settle(feeds, job, &key_field, &index, &mut todo, stop).await? {
                Some(()) => {}
                None => return Ok(false),
            }
        }
        let started = Instant::now();
        let mut attempt = 0u32;
        while (0..todo.slot_of.len()).any(|i| todo.open(i)) {
            if attempt > 0 {
                if started.elapsed() > feeds.inner.settings.retry_for {
                    return Err(FeedError::Corrupt(format!(
                        "rows of the Bulk part at batch {} stayed unwritable (transient Salesforce errors)",
                        self.first
                    )));
                }
                if !backoff(attempt, stop).await {
                    return Ok(false);
                }
            }
            attempt += 1;
            let csv = self.csv(&todo)?;
            let Some(job) = retrying(feeds, stop, || sink.create(&object, &key_field)).await?
            else {
                return Ok(false);
            };
            // Durable before the job gets any data: a restart replays this job instead of loading again.
            jobs.push(job.clone());
            ledger.put_bulk_jobs(&upload.id, self.first, &jobs).await?;
            tracing::info!(upload_id = %upload.id, batch = self.first, bytes = csv.len(), "Bulk job created");
            if let Err(e) = sink.upload_and_close(&job, csv).await {
                if e.class() == ErrorClass::Permanent {
                    return Err(FeedError::Salesforce(e));
                }
                tracing::debug!(error = %e, "Bulk upload failed; the job was aborted and is sent again");
                continue;
            }
            if settle(feeds, &job, &key_field, &index, &mut todo, stop)
                .await?
                .is_none()
            {
                return Ok(false);
            }
        }
        drop(index);
        self.record(feeds, upload, mappings, todo).await?;
        Ok(true)
    }

    /// Re-keys the existing records of rows that changed account number (rare: SOQL and Collections calls for
    /// those rows only), so the job's upsert by the new key updates them instead of creating a second record.
    /// Idempotent: a record already under its new key is left alone. `Ok(false)` when stopped.
    async fn rekey(
        &self,
        feeds: &Feeds,
        object: &str,
        key_field: &str,
        stop: &CancellationToken,
    ) -> Result<bool, FeedError> {
        let sink = &feeds.inner.sink;
        let changes: Vec<(&str, &str)> = self
            .held()
            .filter_map(|h| Some((&*h.key, h.previous_key()?)))
            .collect();
        for chunk in changes.chunks(100) {
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|(new, old)| [new.to_string(), old.to_string()])
                .collect();
            let Some(existing) =
                retrying(feeds, stop, || sink.existing(object, key_field, &keys, &[])).await?
            else {
                return Ok(false);
            };
            let records: Vec<(String, String)> = chunk
                .iter()
                .filter(|(new, _)| !existing.contains_key(*new))
                .filter_map(|(new, old)| {
                    let id = existing.get(*old)?.get("Id")?.as_str()?;
                    Some((id.to_owned(), new.to_string()))
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            let Some(results) =
                retrying(feeds, stop, || sink.rekey(object, key_field, &records)).await?
            else {
                return Ok(false);
            };
            let refused = results.iter().filter(|r| r.error_class().is_some()).count();
            if refused > 0 {
                // The row is still loaded (as a record under its new key); say so without values.
                tracing::warn!(
                    refused,
                    "Salesforce refused re-keying records for account-number changes"
                );
            }
        }
        Ok(true)
    }

    /// Turns the settled rows into verdicts, stores the part's batches and moves the checkpoint.
    async fn record(
        self,
        feeds: &Feeds,
        upload: &mut Upload,
        mappings: &MappingSet,
        mut todo: Todo,
    ) -> Result<(), FeedError> {
        let first = self.first;
        let count = self.batches.len() as u64;
        // The rows as uploaded of those Salesforce did not write (for `errors.csv`), read again from the spool.
        let refused: Vec<u64> = self
            .held()
            .enumerate()
            .filter(|(i, _)| !todo.written(*i))
            .map(|(_, h)| h.row)
            .collect();
        let mut originals = if refused.is_empty() {
            HashMap::new()
        } else {
            reread(feeds, upload, refused).await?
        };
        let mut held = 0usize;
        for (offset, batch) in self.batches.into_iter().enumerate() {
            let mut done = Vec::with_capacity(batch.len());
            for slot in batch {
                done.push(match slot {
                    Slot::Done(d) => *d,
                    Slot::Load(h) => {
                        let sent = todo.take(held);
                        held += 1;
                        let mut original =
                            || -> Vec<String> { originals.remove(&h.row).unwrap_or_default() };
                        let result = match sent {
                            Some(Ok((id, created))) => Ok((
                                if created {
                                    Outcome::Accepted
                                } else {
                                    Outcome::Updated
                                },
                                id,
                            )),
                            Some(Err(error)) => {
                                let errors = std::slice::from_ref(&*error);
                                // Salesforce may quote the row's values: they are scrubbed.
                                let message =
                                    salesforce_message(errors, cells(&h.cells).map(|(_, t)| t));
                                let field = salesforce_field(errors, mappings, &upload.bank_code);
                                let problem = RowProblem::with_message(
                                    r::SALESFORCE_REJECTED,
                                    &field,
                                    message,
                                );
                                Err((problem, original()))
                            }
                            None => Err((RowProblem::new(r::SALESFORCE_REJECTED, ""), original())),
                        };
                        Done::Sent {
                            row: h.row,
                            key: h.key.into_string(),
                            warnings: h.extra.map(|e| e.warnings).unwrap_or_default(),
                            result,
                        }
                    }
                });
            }
            store_batch(feeds, upload, first + offset as u64, done).await?;
        }
        upload.batches_done = first + count;
        feeds.inner.ledger.put(upload).await?;
        Ok(())
    }
}

/// The settlements of a part's rows to load, in the part's order. Rows sharing a record key share the first
/// one's settlement: all are sent while it is open, only the first gets it.
struct Todo {
    settled: Vec<Option<Settled>>,
    /// Per row, the row whose settlement it shares (itself unless an earlier row has its key).
    slot_of: Vec<u32>,
}

impl Todo {
    /// Whether row `i` is still to be sent.
    fn open(&self, i: usize) -> bool {
        self.settled[self.slot_of[i] as usize].is_none()
    }

    /// Whether row `i` ends written (its own settlement says so).
    fn written(&self, i: usize) -> bool {
        self.slot_of[i] as usize == i && matches!(self.settled[i], Some(Ok(_)))
    }

    fn take(&mut self, i: usize) -> Option<Settled> {
        if self.slot_of[i] as usize == i {
            self.settled[i].take()
        } else {
            None
        }
    }
}

/// Reads the rows `wanted` (ascending) of the upload's spool again, as uploaded, on a blocking thread.
async fn reread(
    feeds: &Feeds,
    upload: &Upload,
    wanted: Vec<u64>,
) -> Result<HashMap<u64, Vec<String>>, FeedError> {
    let feeds = feeds.clone();
    let upload = upload.clone();
    let mappings: Arc<MappingSet> = feeds.inner.mappings.load_full();
    tokio::task::spawn_blocking(move || {
        let mut rows = open_rows(
            &feeds,
            &upload.id,
            &upload.bank_code,
            upload.format,
            &mappings,
        )?;
        let last = wanted.last().copied().unwrap_or(0);
        let mut found = HashMap::with_capacity(wanted.len());
        while let Some(raw) = rows.next_row()? {
            if raw.row > last {
                break;
            }
            if wanted.binary_search(&raw.row).is_ok() {
                found.insert(raw.row, raw.values);
            }
        }
        Ok(found)
    })
    .await
    .map_err(|e| FeedError::Corrupt(format!("spool re-read: {e}")))?
}

/// The cells of a held row: `(field index, text)`.
fn cells(bytes: &[u8]) -> impl Iterator<Item = (usize, &str)> + Clone {
    struct Cells<'b>(&'b [u8]);
    impl<'b> Iterator for Cells<'b> {
        type Item = (usize, &'b str);
        fn next(&mut self) -> Option<Self::Item> {
            let mut r = Reader(self.0);
            let index = r.varint()?;
            let text = std::str::from_utf8(r.var_bytes()?).unwrap_or_default();
            self.0 = r.0;
            Some((index as usize, text))
        }
    }
    impl Clone for Cells<'_> {
        fn clone(&self) -> Self {
            Cells(self.0)
        }
    }
    Cells(bytes)
}

/// Waits for `job` and settles the rows its results name. `Ok(None)` when stopped.
async fn settle(
    feeds: &Feeds,
    job: &str,
    key_field: &str,
    index: &HashMap<&str, usize>,
    todo: &mut Todo,
    stop: &CancellationToken,
) -> Result<Option<()>, FeedError> {
    let sink = &feeds.inner.bulk;
    let info = loop {
        let Some(info) = retrying(feeds, stop, || sink.wait(job)).await? else {
            return Ok(None);
        };
        if info.state.is_terminal() {
            break info;
        }
    };
    let Some(results) = retrying(feeds, stop, || sink.results(job, key_field)).await? else {
        return Ok(None);
    };
    if info.state == BulkJobState::Failed
        && results.successful.is_empty()
        && results.failed.is_empty()
    {
        // The whole job was refused (e.g. a field the org does not have): sending again cannot help.
        return Err(FeedError::Corrupt(format!(
            "Salesforce's Bulk API refused the job: {}",
            info.error_message.unwrap_or_default()
        )));
    }
    apply(results, index, todo);
    Ok(Some(()))
}

/// Settles rows from one job's results: written rows and permanent refusals; rows refused for a transient
/// reason and unprocessed rows stay unsettled (a later job sends them). A row already settled keeps its verdict.
fn apply(results: BulkResults, index: &HashMap<&str, usize>, todo: &mut Todo) {
    let mut settle = |key: &str, sent: Settled| {
        if let Some(&i) = index.get(key)
            && let Some(slot) = todo.settled.get_mut(i)
            && slot.is_none()
        {
            *slot = Some(sent);
        }
    };
    for s in results.successful {
        settle(&s.reference, Ok((Some(s.id), s.created)));
    }
    for f in results.failed {
        if f.class() == ErrorClass::Retryable {
            continue;
        }
        // A duplicate of the record's own key means it is there.
        if f.error.code == "DUPLICATE_VALUE" {
            settle(&f.reference, Ok((f.id.clone(), false)));
            continue;
        }
        settle(&f.reference, Err(Box::new(f.error)));
    }
}
