//! The upload worker: takes received uploads oldest first and processes each to completion (module doc of
//! `feeds` for the passes and the checkpoint).

use std::io::Read;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Feeds;
use super::dupes::{Dupes, Fired, RowFields};
use super::error::FeedError;
use super::model::{BATCH_ROWS, Batch, Counts, Format, Outcome, RowResult, Status, Upload};
use super::reasons::{self as r, RowProblem};
use super::rows::RowReader;
use super::spool::SpoolReader;
use super::validate::{KIND, ValidRow, Validator};
use crate::mapping::MappingSet;
use crate::ops::Heartbeat;
use crate::ops::metrics as m;
use crate::outbox::{Destination, Lane, NewMessage};
use crate::records::Action;
use crate::salesforce::{ErrorClass, JsonMap, SfError};

/// Idle poll: the worker is woken at once by intake; this only bounds a missed wake-up.
const IDLE: Duration = Duration::from_secs(5);
/// Field that says why a record was terminated; cleared when fresh data reinstates it.
pub(super) const TERMINATION_REASON: &str = "Termination_Reason__c";
const STALE: &str = "Stale";
const TERMINATED: &str = "Terminated";

/// What the reader thread hands to the sender: the row count after pass 1, then pass 2's batches.
pub(super) enum Msg {
    Rows(u64),
    Batch(Vec<Prepared>),
}

/// One row as pass 2 hands it to the sender.
pub(super) enum Prepared {
    /// Kicked out by validation, or a duplicate within the upload: never sent.
    Decided(Done),
    Send {
        row: u64,
        valid: ValidRow,
        original: Vec<String>,
    },
}

/// A row whose verdict is decided: what its stored [`RowResult`] is made of.
pub(super) enum Done {
    Rejected {
        row: u64,
        problems: Vec<RowProblem>,
        original: Vec<String>,
    },
    Duplicate {
        row: u64,
        key: String,
        of: u64,
        /// The duplicate rule that fired.
        rule: String,
    },
    /// Sent to (or found unchanged in) Salesforce; a Salesforce-side kick-out keeps the row as uploaded.
    Sent {
        row: u64,
        key: String,
        warnings: Vec<RowProblem>,
        result: Result<(Outcome, Option<String>), (RowProblem, Vec<String>)>,
    },
}

/// A batch's classification, stored before its first send so a re-send after a crash repeats it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Plan {
    classes: Vec<Class>,
    /// Rows (by index among the sends) whose existing record is re-keyed first, with its Salesforce id.
    #[serde(default)]
    rekey: Vec<(usize, String)>,
}

impl Plan {
    fn decode(bytes: &[u8]) -> Result<Plan, FeedError> {
        let corrupt = |e: serde_json::Error| FeedError::Corrupt(e.to_string());
        // Plans stored before re-keying existed are a bare list of classes.
        match serde_json::from_slice::<Plan>(bytes) {
            Ok(plan) => Ok(plan),
            Err(_) => Ok(Plan {
                classes: serde_json::from_slice(bytes).map_err(corrupt)?,
                rekey: Vec::new(),
            }),
        }
    }
}

/// Audits (who, when, why) each stale-terminated record this batch revived.
async fn audit_reinstated(
    feeds: &Feeds,
    upload: &Upload,
    sends: &[&ValidRow],
    plan: &[Class],
    outcomes: &[Option<Sent>],
) {
    let Some(gatekeeper) = &feeds.inner.gatekeeper else {
        return;
    };
    for (i, class) in plan.iter().enumerate() {
        let Some(Ok((Some(sf_id), _))) = &outcomes[i] else {
            continue;
        };
        if *class != Class::Reinstate {
            continue;
        }
        let record = crate::records::RecordRef {
            id: sf_id.clone(),
            record_key: Some(sends[i].record_key.clone()),
            furnisher: Some(upload.tenant.clone()),
        };
        if let Err(e) = gatekeeper
            .record_reinstated(&record, &format!("feeds:{}", upload.id))
            .await
        {
            tracing::warn!(upload_id = %upload.id, error = %e, "reinstatement not audited");
        }
    }
}

/// How a row to send relates to what Salesforce holds (decided once per batch, kept across a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Class {
    New,
    Changed,
    Same,
    Reinstate,
}

/// Runs until `stop` fires.
pub async fn run(feeds: Feeds, stop: CancellationToken, beat: Heartbeat) {
    loop {
        beat.beat();
        match feeds.inner.ledger.active().await {
            Ok(ids) => {
                for id in ids {
                    if stop.is_cancelled() {
                        return;
                    }
                    if let Err(e) = process(&feeds, &id, &stop, &beat).await {
                        tracing::warn!(upload_id = %id, error = %e, "upload processing interrupted; retrying later");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "upload ledger unreadable"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = feeds.inner.wake.notified() => {}
            () = tokio::time::sleep(IDLE) => {}
        }
    }
}

impl Feeds {
    /// Wakes the worker (a new upload is durable).
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }
}

/// Processes one upload to a final state. `Err` only for store trouble (the upload stays active).
async fn process(
    feeds: &Feeds,
    id: &str,
    stop: &CancellationToken,
    beat: &Heartbeat,
) -> Result<(), FeedError> {
    let ledger = &feeds.inner.ledger;
    // With a shared ledger (PostgreSQL) an upload's spool is on the disk of the daemon that took it:
    // only that daemon processes it (the spool exists until its upload is finished).
    if feeds.inner.shared && !feeds.spool_path(id).exists() {
        return Ok(());
    }
    let Some(mut upload) = ledger.get(id).await? else {
        ledger.drop_active(id).await?;
        remove_spool(feeds, id);
        return Ok(());
    };
    if upload.status.is_final() {
        ledger.finish(&upload).await?;
        return Ok(());
    }
    if upload.status == Status::Received {
        upload.status = Status::Processing;
        ledger.put(&upload).await?;
        tracing::info!(upload_id = %id, bank = %upload.bank_code, "processing upload");
    }
    // Counts of the recorded batches (the checkpoint) are the truth after a restart.
    upload.counts = Counts::default();
    for index in 0..upload.batches_done {
        if let Some(batch) = ledger.batch(id, index).await? {
            for row in &batch.rows {
                upload.counts.add(row);
            }
        }
    }
    match send_all(feeds, &mut upload, stop, beat).await {
        Ok(true) => {
            upload.status = Status::Completed;
            upload.completed_at = Some(Utc::now());
        }
        Ok(false) => return Ok(()), // stopping: resumes at the next start
        Err(FeedError::Store(e)) => return Err(FeedError::Store(e)),
        Err(e) => {
            tracing::warn!(upload_id = %id, error = %e, "upload failed");
            upload.status = Status::Failed;
            upload.completed_at = Some(Utc::now());
            upload.failure = Some(e.to_string());
        }
    }
    ledger.finish(&upload).await?;
    remove_spool(feeds, id);
    metrics::counter!(m::UPLOADS_TOTAL, "status" => upload.status.as_str()).increment(1);
    tracing::info!(upload_id = %id, status = upload.status.as_str(), rows = upload.counts.rows,
        rejected = upload.counts.rejected, "upload finished");
    if let Err(e) = notify(feeds, &upload).await {
        tracing::warn!(upload_id = %id, error = %e, "upload notification not queued");
    }
    Ok(())
}

fn remove_spool(feeds: &Feeds, id: &str) {
    let path = feeds.spool_path(id);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(upload_id = %id, error = %e, "spool file not removed");
    }
}

/// Streams the upload's batches from a blocking reader thread and sends them. `Ok(false)` when stopped.
async fn send_all(
    feeds: &Feeds,
    upload: &mut Upload,
    stop: &CancellationToken,
    beat: &Heartbeat,
) -> Result<bool, FeedError> {
    let mappings = feeds.inner.mappings.load_full();
    let (tx, mut rx) = mpsc::channel::<Result<Msg, FeedError>>(2);
    let reader = {
        let feeds = feeds.clone();
        let upload = upload.clone();
        let mappings = mappings.clone();
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || read_batches(&feeds, &upload, &mappings, &tx, &stop))
    };
    let mut index = 0u64;
    let mut part: Option<super::bulk::Part> = None;
    let result = loop {
        let Some(next) = rx.recv().await else {
            if stop.is_cancelled() {
                break Ok(false);
            }
            // The last, shorter Bulk part.
            if let Some(p) = part.take() {
                match p.send(feeds, upload, &mappings, stop).await {
                    Ok(true) => {}
                    other => break other,
                }
            }
            break Ok(true);
        };
        let batch = match next {
            Ok(Msg::Rows(rows)) => {
                choose_bulk(feeds, upload, rows).await?;
                continue;
            }
            Ok(Msg::Batch(batch)) => batch,
            Err(e) => break Err(e),
        };
        if index < upload.batches_done {
            index += 1;
            continue;
        }
        beat.beat();
        let sent = match upload.bulk_batches {
            None => send_batch(feeds, upload, &mappings, index, batch, stop).await,
            Some(per_job) => {
                let p = part.get_or_insert_with(|| super::bulk::Part::new(index));
                p.push(batch, &mappings, &upload.bank_code);
                if p.batches() as u64 >= per_job {
                    let full = part.take().expect("a part");
                    full.send(feeds, upload, &mappings, stop).await
                } else {
                    Ok(true)
                }
            }
        };
        match sent {
            Ok(true) => {}
            Ok(false) => break Ok(false),
            Err(e) => break Err(e),
        }
        index += 1;
    };
    drop(rx);
    let _ = reader.await;
    result
}

/// Decides (once per upload, stored) whether its rows go through Bulk API 2.0.
async fn choose_bulk(feeds: &Feeds, upload: &mut Upload, rows: u64) -> Result<(), FeedError> {
    let settings = &feeds.inner.settings;
    if upload.bulk_batches.is_some()
        || settings.bulk_threshold_rows == 0
        || rows < settings.bulk_threshold_rows
    {
        return Ok(());
    }
    upload.bulk_batches = Some(settings.bulk_job_rows.div_ceil(BATCH_ROWS).max(1));
    feeds.inner.ledger.put(upload).await?;
    tracing::info!(upload_id = %upload.id, rows, "upload goes through Bulk API 2.0");
    Ok(())
}

/// A valid row's fate under the duplicate rule that fired for it (if any).
fn judge_duplicate(
    row: u64,
    mut valid: ValidRow,
    original: Vec<String>,
    fired: Option<Fired>,
) -> Prepared {
    let Some(fired) = fired else {
        return Prepared::Send {
            row,
            valid,
            original,
        };
    };
    let named = |code: &'static str| {
        let meaning = r::lookup(code).map_or("", |c| c.meaning);
        RowProblem::with_message(
            code,
            "",
            format!(
                "{meaning} Duplicate rule: {}; row {}.",
                fired.rule, fired.winner
            ),
        )
    };
    match fired.action {
        Action::Merge => Prepared::Decided(Done::Duplicate {
            row,
            key: valid.record_key,
            of: fired.winner,
            rule: fired.rule,
        }),
        Action::Reject => Prepared::Decided(Done::Rejected {
            row,
            problems: vec![named(r::DUPLICATE_REJECTED)],
            original,
        }),
        Action::Flag => {
            valid.warnings.push(named(r::DUPLICATE_FLAGGED));
            Prepared::Send {
                row,
                valid,
                original,
            }
        }
    }
}

/// The reader thread: pass 1 (validate all, find duplicate winners), pass 2 (batches of prepared rows).
fn read_batches(
    feeds: &Feeds,
    upload: &Upload,
    mappings: &MappingSet,
    tx: &mpsc::Sender<Result<Msg, FeedError>>,
    stop: &CancellationToken,
) {
    let run = || -> Result<(), FeedError> {
        // Pass 1: the winning row of every tradeline, under every within-upload duplicate rule.
        let mut dupes = Dupes::new(&feeds.inner.rules);
        let columns = &upload.columns;
        let furnisher = upload.tenant.as_str();
        let mut rows = 0u64;
        each_row(feeds, upload, mappings, |row, verdict, original| {
            rows = row;
            if let Ok(valid) = verdict {
                let fields = RowFields {
                    columns,
                    cells: &original,
                };
                dupes.observe(furnisher, row, valid.as_of, &valid.record_key, &fields);
            }
            !stop.is_cancelled()
        })?;
        dupes.settle();
        if tx.blocking_send(Ok(Msg::Rows(rows))).is_err() {
            return Ok(());
        }
        // Pass 2.
        let mut batch = Vec::with_capacity(BATCH_ROWS as usize);
        let skip_until = upload.batches_done * BATCH_ROWS;
        let mut closed = false;
        each_row(feeds, upload, mappings, |row, verdict, original| {
            let prepared = if row <= skip_until {
                // A recorded batch: only its boundary matters.
                Prepared::Decided(Done::Duplicate {
                    row,
                    key: String::new(),
                    of: 0,
                    rule: String::new(),
                })
            } else {
                match verdict {
                    Err(problems) => Prepared::Decided(Done::Rejected {
                        row,
                        problems,
                        original,
                    }),
                    Ok(valid) => {
                        let fields = RowFields {
                            columns,
                            cells: &original,
                        };
                        let fired = dupes.fired(furnisher, row, &valid.record_key, &fields);
                        judge_duplicate(row, valid, original, fired)
                    }
                }
            };
            batch.push(prepared);
            if batch.len() as u64 == BATCH_ROWS
                && tx
                    .blocking_send(Ok(Msg::Batch(std::mem::take(&mut batch))))
                    .is_err()
            {
                closed = true;
                return false;
            }
            !stop.is_cancelled()
        })?;
        if !batch.is_empty() && !closed {
            let _ = tx.blocking_send(Ok(Msg::Batch(batch)));
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = tx.blocking_send(Err(e));
    }
}

type Verdict = Result<ValidRow, Vec<RowProblem>>;

/// How one record's upsert ended: its Salesforce id and whether it was created, or the row's kick-out.
pub(super) type Sent = Result<(Option<String>, bool), RowProblem>;

/// The rows of an upload's spool (decrypted as read).
pub(super) fn open_rows(
    feeds: &Feeds,
    id: &str,
    bank_code: &str,
    format: Format,
    mappings: &MappingSet,
) -> Result<RowReader, FeedError> {
    let spool = SpoolReader::open(&feeds.spool_path(id), &feeds.inner.keys, id)?;
    let known_columns: Vec<String> = mappings
        .inbound_fields(KIND, Some(bank_code))
        .into_iter()
        .map(|f| f.from)
        .collect();
    let body: Box<dyn Read + Send> = Box::new(spool);
    RowReader::new(
        format,
        body,
        known_columns,
        mappings.accepts_xml(KIND, Some(bank_code)),
    )
    .map_err(|e| FeedError::Corrupt(format!("spool header: {e:?}")))
}

/// Reads every row of the spool and validates it; `f` returns false to stop early.
fn each_row(
    feeds: &Feeds,
    upload: &Upload,
    mappings: &MappingSet,
    mut f: impl FnMut(u64, Verdict, Vec<String>) -> bool,
) -> Result<(), FeedError> {
    let mut rows = open_rows(
        feeds,
        &upload.id,
        &upload.bank_code,
        upload.format,
        mappings,
    )?;
    let columns = rows.columns().to_vec();
    let validator = Validator::new(
        mappings,
        &upload.tenant,
        &upload.bank_code,
        upload.received_at,
        &columns,
    );
    while let Some(raw) = rows.next_row()? {
        let verdict = match raw.cells {
            Err(_) => Err(vec![RowProblem::new(r::MALFORMED_ROW, "")]),
            Ok(()) => validator.check(&raw.values),
        };
        if !f(raw.row, verdict, raw.values) {
            break;
        }
    }
    Ok(())
}

/// Sends one batch and records its verdicts. `Ok(false)` when stopped before it was recorded.
async fn send_batch(
    feeds: &Feeds,
    upload: &mut Upload,
    mappings: &MappingSet,
    index: u64,
    batch: Vec<Prepared>,
    stop: &CancellationToken,
) -> Result<bool, FeedError> {
    let ledger = &feeds.inner.ledger;
    let id = upload.id.clone();
    let object = mappings
        .object(KIND, Some(&upload.bank_code))
        .ok_or_else(|| FeedError::Mapping("no credit_record mapping for this bank".into()))?
        .to_owned();
    let key_field = upsert_key_field(&batch).unwrap_or_else(|| "Record_Key__c".to_owned());
    let status_field = mappings
        .inbound_fields(KIND, Some(&upload.bank_code))
        .into_iter()
        .find(|f| f.from == "status")
        .map(|f| f.to);

    // Classify the rows to send against Salesforce (once: a crash re-uses the stored plan).
    let sends: Vec<&ValidRow> = batch
        .iter()
        .filter_map(|p| match p {
            Prepared::Send { valid, .. } => Some(valid),
            _ => None,
        })
        .collect();
    let Plan {
        classes: plan,
        rekey,
    } = match ledger.pending(&id, index).await? {
        Some(bytes) => Plan::decode(&bytes)?,
        None => {
            let keys: Vec<String> = sends
                .iter()
                .flat_map(|v| std::iter::once(&v.record_key).chain(v.previous_key.as_ref()))
                .cloned()
                .collect();
            // Every field the batch writes (context fields such as the furnisher included), plus the ones
            // that say whether a record was terminated as stale.
            let mut read: Vec<String> = Vec::new();
            for field in sends
                .iter()
                .flat_map(|v| v.record.keys())
                .chain(status_field.iter())
            {
                if !read.contains(field) {
                    read.push(field.clone());
                }
            }
            read.push(TERMINATION_REASON.to_owned());
            let existing = retrying(feeds, stop, || {
                feeds.inner.sink.existing(&object, &key_field, &keys, &read)
            })
            .await?;
            let Some(existing) = existing else {
                return Ok(false);
            };
            let mut plan = Plan::default();
            for (i, v) in sends.iter().enumerate() {
                let current = existing.get(&v.record_key);
                // An account-number change: the tradeline's record under its old key gets the new key.
                let previous = v
                    .previous_key
                    .as_ref()
                    .filter(|_| current.is_none())
                    .and_then(|old| existing.get(old));
                let class = match previous {
                    Some(old) => {
                        if let Some(sf_id) = old.get("Id").and_then(Value::as_str) {
                            plan.rekey.push((i, sf_id.to_owned()));
                        }
                        match classify(v, Some(old), status_field.as_deref(), &key_field) {
                            Class::Reinstate => Class::Reinstate,
                            _ => Class::Changed,
                        }
                    }
                    None => classify(v, current, status_field.as_deref(), &key_field),
                };
                plan.classes.push(class);
            }
            ledger
                .put_pending(&id, index, &serde_json::to_vec(&plan).expect("plan"))
                .await?;
            plan
        }
    };

    // Upsert what is new or changed, retrying transient failures (whole call or single records).
    let mut outcomes: Vec<Option<Sent>> = vec![None; sends.len()];
    let mut todo: Vec<usize> = Vec::new();
    for (i, class) in plan.iter().enumerate() {
        if *class == Class::Same {
            outcomes[i] = Some(Ok((None, false)));
        } else {
            todo.push(i);
        }
    }
    if !rekey.is_empty() {
        let records: Vec<(String, String)> = rekey
            .iter()
            .map(|(i, sf_id)| (sf_id.clone(), sends[*i].record_key.clone()))
            .collect();
        let Some(results) = retrying(feeds, stop, || {
            feeds.inner.sink.rekey(&object, &key_field, &records)
        })
        .await?
        else {
            return Ok(false);
        };
        for ((i, _), result) in rekey.iter().zip(results) {
            if result.error_class().is_some() {
                let values = sends[*i].record.values().filter_map(Value::as_str);
                outcomes[*i] = Some(Err(RowProblem::with_message(
                    r::SALESFORCE_REJECTED,
                    "previous_account_number",
                    salesforce_message(&result.errors, values),
                )));
                todo.retain(|t| t != i);
            }
        }
    }
    let started = Instant::now();
    let mut attempt = 0u32;
    while !todo.is_empty() {
        let records: Vec<JsonMap> = todo
            .iter()
            .map(|&i| {
                let mut rec = sends[i].record.clone();
                if plan[i] == Class::Reinstate {
                    rec.insert(TERMINATION_REASON.to_owned(), Value::Null);
                }
                rec
            })
            .collect();
        let results = retrying(feeds, stop, || {
            feeds.inner.sink.upsert(&object, &key_field, &records)
        })
        .await?;
        let Some(results) = results else {
            return Ok(false);
        };
        let mut again = Vec::new();
        for (&i, result) in todo.iter().zip(results) {
            match result.error_class() {
                None => outcomes[i] = Some(Ok((result.id.clone(), result.created == Some(true)))),
                Some(ErrorClass::Permanent) => {
                    // A duplicate of the record's own key means it is there (a lost answer, re-sent).
                    if result.errors.iter().all(|e| e.code == "DUPLICATE_VALUE") {
                        outcomes[i] = Some(Ok((result.id.clone(), false)));
                        continue;
                    }
                    let values = sends[i].record.values().filter_map(Value::as_str);
                    let message = salesforce_message(&result.errors, values);
                    outcomes[i] = Some(Err(RowProblem::with_message(
                        r::SALESFORCE_REJECTED,
                        &salesforce_field(&result.errors, mappings, &upload.bank_code),
                        message,
                    )));
                }
                Some(_) => again.push(i),
            }
        }
        todo = again;
        if !todo.is_empty() {
            attempt += 1;
            if started.elapsed() > feeds.inner.settings.retry_for {
                return Err(FeedError::Corrupt(format!(
                    "{} record(s) of batch {index} stayed unwritable (transient Salesforce errors)",
                    todo.len()
                )));
            }
            if !backoff(attempt, stop).await {
                return Ok(false);
            }
        }
    }

    audit_reinstated(feeds, upload, &sends, &plan, &outcomes).await;

    // Record the batch's verdicts.
    let mut done = Vec::with_capacity(batch.len());
    let mut send_index = 0usize;
    for p in batch {
        done.push(match p {
            Prepared::Decided(done) => done,
            Prepared::Send {
                row,
                valid,
                original,
            } => {
                let i = send_index;
                send_index += 1;
                let result = match outcomes[i].take() {
                    Some(Ok((sf_id, _created))) => {
                        let outcome = match plan[i] {
                            Class::Same => Outcome::Unchanged,
                            Class::Reinstate => Outcome::Reinstated,
                            // New before this batch's first send: a re-send after a crash finds the
                            // record (created = false), but creating it was still this row's doing.
                            Class::New => Outcome::Accepted,
                            Class::Changed => Outcome::Updated,
                        };
                        Ok((outcome, sf_id))
                    }
                    Some(Err(problem)) => Err((problem, original)),
                    None => Err((RowProblem::new(r::SALESFORCE_REJECTED, ""), original)),
                };
                Done::Sent {
                    row,
                    key: valid.record_key,
                    warnings: valid.warnings,
                    result,
                }
            }
        });
    }
    store_batch(feeds, upload, index, done).await?;
    upload.batches_done = index + 1;
    feeds.inner.ledger.put(upload).await?;
    Ok(true)
}

/// Stores one batch of verdicts (rejected rows' values sealed) and adds them to the upload's counts; the
/// caller moves the checkpoint (`batches_done`).
pub(super) async fn store_batch(
    feeds: &Feeds,
    upload: &mut Upload,
    index: u64,
    batch: Vec<Done>,
) -> Result<(), FeedError> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut rejected: Vec<(u64, Vec<String>)> = Vec::new();
    for d in batch {
        rows.push(match d {
            Done::Rejected {
                row,
                problems,
                original,
            } => {
                rejected.push((row, original));
                RowResult {
                    row,
                    outcome: Outcome::Rejected,
                    record_key: None,
                    salesforce_id: None,
                    problems,
                    duplicate_of: None,
                }
            }
            Done::Duplicate { row, key, of, rule } => RowResult {
                row,
                outcome: Outcome::Duplicate,
                record_key: Some(key),
                salesforce_id: None,
                problems: vec![RowProblem::with_message(
                    r::DUPLICATE_IN_UPLOAD,
                    "",
                    format!(
                        "{} Duplicate rule: {rule}.",
                        r::lookup(r::DUPLICATE_IN_UPLOAD).map_or("", |c| c.meaning)
                    ),
                )],
                duplicate_of: Some(of),
            },
            Done::Sent {
                row,
                key,
                warnings,
                result,
            } => {
                let (outcome, salesforce_id, mut problems) = match result {
                    Ok((outcome, sf_id)) => (outcome, sf_id, Vec::new()),
                    Err((problem, original)) => {
                        rejected.push((row, original));
                        (Outcome::Rejected, None, vec![problem])
                    }
                };
                problems.extend(warnings);
                RowResult {
                    row,
                    outcome,
                    record_key: Some(key),
                    salesforce_id,
                    problems,
                    duplicate_of: None,
                }
            }
        });
    }
    let id = upload.id.clone();
    let sealed = if rejected.is_empty() {
        None
    } else {
        let plain = serde_json::to_vec(&rejected).expect("rows");
        let blob = feeds.inner.keys.seal(&sealed_context(&id, index), &plain)?;
        use base64::Engine;
        Some(base64::engine::general_purpose::STANDARD.encode(blob))
    };
    let record = Batch {
        rows,
        rejected: sealed,
    };
    feeds.inner.ledger.put_batch(&id, index, &record).await?;
    for row in &record.rows {
        upload.counts.add(row);
        metrics::counter!(m::UPLOAD_ROWS_TOTAL, "outcome" => row.outcome.as_str()).increment(1);
    }
    Ok(())
}

/// The associated data of a batch's sealed rejected rows.
pub(crate) fn sealed_context(id: &str, index: u64) -> String {
    format!("feeds/rejected/{id}/{index}")
}

fn upsert_key_field(batch: &[Prepared]) -> Option<String> {
    batch.iter().find_map(|p| match p {
        Prepared::Send { valid, .. } => valid
            .record
            .iter()
            .find(|(_, v)| v.as_str() == Some(valid.record_key.as_str()))
            .map(|(k, _)| k.clone()),
        _ => None,
    })
}

fn classify(
    valid: &ValidRow,
    existing: Option<&JsonMap>,
    status_field: Option<&str>,
    key_field: &str,
) -> Class {
    let Some(existing) = existing else {
        return Class::New;
    };
    let terminated_stale = status_field
        .and_then(|f| existing.get(f))
        .and_then(Value::as_str)
        == Some(TERMINATED)
        && existing.get(TERMINATION_REASON).and_then(Value::as_str) == Some(STALE);
    if terminated_stale {
        return Class::Reinstate;
    }
    let same = valid
        .record
        .iter()
        .filter(|(k, _)| k.as_str() != key_field)
        .all(|(k, v)| same_value(v, existing.get(k).unwrap_or(&Value::Null)));
    if same { Class::Same } else { Class::Changed }
}

/// Salesforce answers numbers as numbers and may omit nulls; the mapping may produce either.
fn same_value(a: &Value, b: &Value) -> bool {
    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Number(_), _) | (_, Value::Number(_)) => match (number(a), number(b)) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9,
            _ => false,
        },
        _ => a == b,
    }
}

/// Salesforce's reason for refusing a record, without any of the record's values (it may quote them).
pub(super) fn salesforce_message<'a>(
    errors: &[crate::salesforce::ApiError],
    values: impl Iterator<Item = &'a str> + Clone,
) -> String {
    let mut parts = Vec::new();
    for e in errors {
        let mut message = e.message.clone();
        for value in values.clone() {
            if value.chars().count() >= 3 {
                message = message.replace(value, "[value]");
            }
        }
        parts.push(format!("{} ({})", message.trim(), e.code));
    }
    format!(
        "The bureau's system refused this record: {}",
        parts.join("; ")
    )
}

/// The feed column Salesforce's error names (by the mapping's target field), if any.
pub(super) fn salesforce_field(
    errors: &[crate::salesforce::ApiError],
    mappings: &MappingSet,
    bank_code: &str,
) -> String {
    let fields = mappings.inbound_fields(KIND, Some(bank_code));
    errors
        .iter()
        .flat_map(|e| e.fields.iter())
        .find_map(|sf| fields.iter().find(|f| &f.to == sf).map(|f| f.from.clone()))
        .unwrap_or_default()
}

/// Calls `f` until it succeeds, fails permanently, or transient failures outlast `retry_for`.
/// `Ok(None)` when stopped.
pub(super) async fn retrying<T, F, Fut>(
    feeds: &Feeds,
    stop: &CancellationToken,
    mut f: F,
) -> Result<Option<T>, FeedError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SfError>>,
{
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.class() == ErrorClass::Permanent => return Err(FeedError::Salesforce(e)),
            Err(e) => {
                if started.elapsed() > feeds.inner.settings.retry_for {
                    return Err(FeedError::Salesforce(e));
                }
                attempt += 1;
                tracing::debug!(error = %e, attempt, "transient Salesforce error; retrying");
                let wait = e.retry_after();
                if let Some(wait) = wait {
                    tokio::select! {
                        () = stop.cancelled() => return Ok(None),
                        () = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
                    }
                } else if !backoff(attempt, stop).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Sleeps 250 ms × 2^attempt (capped at 30 s, ±20 %); false when stopped meanwhile.
pub(super) async fn backoff(attempt: u32, stop: &CancellationToken) -> bool {
    let base = Duration::from_millis(250).saturating_mul(1 << attempt.min(7));
    let base = base.min(Duration::from_secs(30));
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(base.mul_f64(jitter)) => true,
    }
}

/// Queues the `upload.completed` / `upload.failed` webhook and e-mails to the bank's contacts.
async fn notify(feeds: &Feeds, upload: &Upload) -> Result<(), FeedError> {
    let Some(bank) = feeds
        .inner
        .banks
        .iter()
        .find(|b| b.account_id == upload.tenant)
    else {
        return Ok(());
    };
    let event = match upload.status {
        Status::Failed => "upload.failed",
        _ => "upload.completed",
    };
    let status_url = feeds.status_url(&upload.id);
    let errors_url = format!("{status_url}/errors.csv");
    let data = json!({
        "id": upload.id,
        "name": upload.name,
        "status": upload.status.as_str(),
        "received_at": upload.received_at,
        "completed_at": upload.completed_at,
        "counts": upload.counts,
        "failure": upload.failure,
        "status_url": status_url,
        "errors_url": errors_url,
    });
    let key = format!("{event}:{}", upload.id);
    let outbox = &feeds.inner.outbox;
    let enqueue = |key: String, message: NewMessage| async move {
        outbox
            .enqueue_once(&upload.tenant, &key, message)
            .await
            .map_err(|e| FeedError::Mapping(format!("outbox: {e}")))
    };
    enqueue(
        key.clone(),
        NewMessage {
            tenant: upload.tenant.clone(),
            lane: Lane::Interactive,
            destination: Destination::Bank {
                endpoint: bank.code.clone(),
                event: event.to_owned(),
            },
            payload: data,
            mapping_version: None,
        },
    )
    .await?;
    let c = &upload.counts;
    let vars = json!({
        "bank_name": bank.name,
        "name": upload.name,
        "upload_id": upload.id,
        "status": upload.status.as_str(),
        "rows": c.rows.to_string(),
        "accepted": c.accepted.to_string(),
        "updated": c.updated.to_string(),
        "unchanged": c.unchanged.to_string(),
        "reinstated": c.reinstated.to_string(),
        "duplicate": c.duplicate.to_string(),
        "rejected": c.rejected.to_string(),
        "warnings": c.warnings.to_string(),
        "failure": upload.failure.as_ref().map(|f| format!("\nThe upload failed: {f}\n")).unwrap_or_default(),
        "errors_url": errors_url,
        "status_url": status_url,
    });
    for to in &bank.contacts {
        enqueue(
            format!("{key}:email:{to}"),
            NewMessage {
                tenant: upload.tenant.clone(),
                lane: Lane::Interactive,
                destination: Destination::Email {
                    to: to.clone(),
                    template: crate::notify::Template::UploadCompleted.name().to_owned(),
                },
                payload: vars.clone(),
                mapping_version: None,
            },
        )
        .await?;
    }
    Ok(())
}
