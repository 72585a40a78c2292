//! Enqueues, batched: one thread takes every enqueue waiting and writes them in one sled transaction.
//!
//! Intake is the hot path: under load many requests enqueue at once, and sled 0.34 runs each multi-tree
//! transaction under one process-wide lock, so one transaction per request meant one blocking-pool thread
//! per request queueing for that lock, and the lock's cost paid every time. This thread instead takes the
//! first enqueue, every other one already queued (up to [`MAX_BATCH`]), runs them in one transaction and
//! answers each; the callers then wait for group commit as before, so nothing is acknowledged before it is
//! durable. A batch is all or nothing; when it fails, each of its enqueues is run alone, so one bad
//! message cannot fail the others and each caller gets its own error. Two enqueues with one idempotency
//! key in one batch behave as in two transactions: the second sees the first's record.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::outbox::backend::IdemKey;
use crate::outbox::{Enqueued, Message, OutboxError, State};
use crate::store::StoreError;
use crate::store::sled::db::SledDb;

use super::tx::{Change, Trees};

/// Most enqueues in one transaction.
const MAX_BATCH: usize = 256;

/// One enqueue waiting for the batch thread.
struct Job {
    message: Message,
    key: Option<IdemKey>,
    reply: oneshot::Sender<Result<Enqueued, OutboxError>>,
}

/// The per-state counters the queue keeps in memory (see `mod.rs`).
pub(crate) type Counts = Arc<Mutex<HashMap<State, i64>>>;

/// The batch thread's handle; dropping it ends the thread (and waits for it).
pub(crate) struct Batcher {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Batcher {
    pub(crate) fn start(trees: Trees, counts: Counts, db: SledDb) -> Result<Batcher, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("outbox-enqueue".into())
            .spawn(move || run(&trees, &counts, &db, &rx))
            .map_err(StoreError::Io)?;
        Ok(Batcher {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Writes `message` (idempotently under `key`) in the next batch; durable when it returns.
    pub(crate) async fn enqueue(
        &self,
        message: Message,
        key: Option<IdemKey>,
    ) -> Result<Enqueued, OutboxError> {
        let (reply, answer) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or(StoreError::Closed)?;
        jobs.send(Job {
            message,
            key,
            reply,
        })
        .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(trees: &Trees, counts: &Counts, db: &SledDb, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(MAX_BATCH - 1));
        let outcomes: Vec<Result<Enqueued, OutboxError>> = match write(trees, &batch) {
            Ok((outcomes, changes)) => {
                super::settle(trees, counts, db, &changes);
                outcomes.into_iter().map(Ok).collect()
            }
            Err(e) if batch.len() == 1 => vec![Err(e)],
            Err(_) => batch
                .iter()
                .map(|job| {
                    let (mut out, changes) = write(trees, std::slice::from_ref(job))?;
                    super::settle(trees, counts, db, &changes);
                    Ok(out.remove(0))
                })
                .collect(),
        };
        // One flush for the whole batch: nothing is answered before it is durable.
        let flushed = if outcomes.iter().any(Result::is_ok) {
            db.durable_here()
        } else {
            Ok(())
        };
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let outcome = match (&flushed, outcome) {
                (Err(e), Ok(_)) => Err(StoreError::from(e.clone()).into()),
                (_, outcome) => outcome,
            };
            // A caller that gave up (its request was cancelled) is not an error.
            let _ = job.reply.send(outcome);
        }
    }
}

/// The jobs' enqueues in one transaction, answers in job order. A key the filter does not know and no
/// earlier job of this transaction stored is written without reading the tree; the keys stored are
/// added to the filter once the transaction committed (this thread is the filter's only adder, so the
/// next batch sees them).
fn write(trees: &Trees, jobs: &[Job]) -> Result<(Vec<Enqueued>, Vec<Change>), OutboxError> {
    let ((outcomes, stored), changes) = trees.transact(|tx| {
        // Rebuilt on every run of the closure (sled may run it again on conflict).
        let mut stored: Vec<[u8; 32]> = Vec::new();
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let key = job.key.as_ref();
            let known = key
                .is_some_and(|k| trees.keys.lock().may_hold(&k.hash) || stored.contains(&k.hash));
            let (outcome, new_key) = tx.enqueue(&job.message, key, known)?;
            if let (true, Some(k)) = (new_key, key) {
                stored.push(k.hash);
            }
            outcomes.push(outcome);
        }
        Ok((outcomes, stored))
    })?;
    let mut filter = trees.keys.lock();
    for hash in &stored {
        filter.added(hash);
    }
    Ok((outcomes, changes))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::Durability;

    fn job(key: Option<IdemKey>) -> (Job, oneshot::Receiver<Result<Enqueued, OutboxError>>) {
        let (reply, answer) = oneshot::channel();
        let message = crate::outbox::test_email(serde_json::json!({ "n": 1 }), Utc::now());
        (
            Job {
                message,
                key,
                reply,
            },
            answer,
        )
    }

    /// Two enqueues with one idempotency key in one batch: the second finds the first's record.
    #[test]
    fn one_key_twice_in_a_batch_creates_one_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SledDb::open(dir.path(), Durability::None).expect("open");
        let trees = Trees::open(&db).expect("trees");
        let now = Utc::now();
        let key = IdemKey {
            hash: [7; 32],
            body_hash: [1; 32],
            expires_at: now + chrono::Duration::hours(1),
            now,
        };
        let (first, _a) = job(Some(key));
        let (second, _b) = job(Some(key));
        let (third, _c) = job(None);
        let first_id = first.message.id;
        let (out, changes) = write(&trees, &[first, second, third]).expect("batch");
        assert_eq!(out[0], Enqueued::Created(first_id));
        assert_eq!(
            out[1],
            Enqueued::Existing {
                id: first_id,
                same_body: true
            }
        );
        assert!(matches!(out[2], Enqueued::Created(_)));
        assert_eq!(changes.len(), 2, "two messages written");
    }
}
