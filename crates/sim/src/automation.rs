//! Automation that plays the bureau's side: the bureau analyst works each new credit report request
//! and the org sends Outbound Messages about every request change (see `outbound`).
//!
//! How it is driven: every write the org applies lands in its change journal (`journal`). A middleware wakes
//! the worker after every non-GET request; the worker drains the journal, schedules analyst work on a due-time
//! queue (a binary heap of `Instant`s, never a sleep per record) and hands request changes to the outbound
//! queue. The analyst's own writes go through `Org::update` and `rest::create_record`, the same code paths as
//! REST writes, so validation, `LastModifiedById` and `SystemModstamp` behave as for any user, and they land in
//! the journal too (which is how the analyst's status changes become Outbound Messages).
//!
//! The analyst's work on request number N (counting every request created while automation is on):
//! `complete_after` after creation it sets `Status__c = In Progress`; half that delay later it either rejects
//! it (`reject_every` divides N), asks for action (`action_required_every` divides N), or attaches a generated
//! PDF as a ContentVersion published to the request and sets `Completed`. A step is skipped when someone else
//! moved the request on in the meantime or deleted it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, RecordError};
use super::journal::ChangeKind;
use super::org::{Org, Record};
use super::{AppState, Shared, outbound, pdf};

pub use super::automation_options::{AutomationOptions, AutomationUpdate, OutboundOptions};

/// The object the bureau works and Outbound Messages are configured for.
pub const REQUEST_OBJECT: &str = "Credit_Report_Request__c";
const REJECT_REASON: &str = "Consent could not be verified with the bank";
const ACTION_REASON: &str = "Please confirm the subject's date of birth";

/// Why the analyst could not do a step; logged, never fatal (the request simply stays where it is).
#[derive(Debug, thiserror::Error)]
pub enum AutomationError {
    #[error("the bureau user {0} is not in the seed")]
    NoAnalyst(String),
    #[error("writing the request failed: {0}")]
    Write(#[from] RecordError),
}

/// Automation state shared by the worker, the outbound sender and the control routes.
pub(crate) struct Automation {
    options: parking_lot::Mutex<AutomationOptions>,
    /// Wakes the worker: a write happened or the options changed.
    wake: tokio::sync::Notify,
    pub outbound: outbound::Outbound,
}

impl Automation {
    pub fn new(options: AutomationOptions) -> Automation {
        Automation {
            options: parking_lot::Mutex::new(options),
            wake: tokio::sync::Notify::new(),
            outbound: outbound::Outbound::default(),
        }
    }

    pub fn options(&self) -> AutomationOptions {
        self.options.lock().clone()
    }

    pub fn set_options(&self, options: AutomationOptions) {
        *self.options.lock() = options;
        self.wake.notify_one();
        self.outbound.wake();
    }
}

/// Routes: `GET`/`PUT /__sim/automation` plus the outbound control routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/__sim/automation", get(get_options).put(put_options))
        .merge(outbound::routes())
}

/// Middleware: after any request that may have written, let the worker look at the journal.
pub async fn wake_after_writes(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let writes = req.method() != Method::GET && req.method() != Method::HEAD;
    let resp = next.run(req).await;
    if writes {
        st.automation.wake.notify_one();
    }
    resp
}

/// The worker: runs until `shutdown` fires. Spawned next to the HTTP server.
pub async fn run(st: AppState, shutdown: CancellationToken) {
    let sender = tokio::spawn(outbound::run(st.clone(), shutdown.clone()));
    let mut bureau = Bureau::default();
    loop {
        let next = bureau.step(&st, Instant::now());
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = st.automation.wake.notified() => {}
            () = sleep => {}
        }
    }
    if let Err(e) = sender.await {
        tracing::warn!(error = %e, "outbound sender task ended abnormally");
    }
}

/// What the analyst does when a task comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Start(Verdict),
    Finish(Verdict),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Complete,
    Reject,
    ActionRequired,
}

/// The analyst's queue: tasks ordered by due time.
#[derive(Default)]
struct Bureau {
    queue: BinaryHeap<Reverse<(Instant, String, Step)>>,
    /// Requests seen so far; decides which verdict the next one gets.
    seen: u64,
}

impl Bureau {
    /// Take new changes, do every task that is due, and say when the next one is.
    fn step(&mut self, st: &Shared, now: Instant) -> Option<Instant> {
        self.take_changes(st, now);
        while let Some(Reverse((due, _, _))) = self.queue.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, id, step))) = self.queue.pop() else {
                break;
            };
            let opts = st.automation.options();
            if !opts.enabled {
                continue;
            }
            match self.work(st, &opts, &id, step, now) {
                Ok(()) => {}
                Err(e) => tracing::warn!(record = %id, error = %e, "bureau automation step failed"),
            }
            // The analyst's own writes become Outbound Messages like anyone's.
            self.take_changes(st, now);
        }
        self.queue.peek().map(|Reverse((due, _, _))| *due)
    }

    fn take_changes(&mut self, st: &Shared, now: Instant) {
        let changes = st.org.write().journal.take();
        let opts = st.automation.options();
        if !opts.enabled {
            return;
        }
        for change in changes.iter().filter(|c| c.object == REQUEST_OBJECT) {
            match change.kind {
                ChangeKind::Created => {
                    self.seen += 1;
                    let verdict = verdict_for(self.seen, &opts);
                    let due = after(now, opts.complete_after);
                    self.queue
                        .push(Reverse((due, change.id.clone(), Step::Start(verdict))));
                    st.automation.outbound.enqueue(&change.id, &opts);
                }
                ChangeKind::Updated => st.automation.outbound.enqueue(&change.id, &opts),
                ChangeKind::Deleted => {}
            }
        }
    }

    fn work(
        &mut self,
        st: &Shared,
        opts: &AutomationOptions,
        id: &str,
        step: Step,
        now: Instant,
    ) -> Result<(), AutomationError> {
        let analyst = st
            .seed
            .users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(&st.seed.bureau_user))
            .map(|u| u.id.clone())
            .ok_or_else(|| AutomationError::NoAnalyst(st.seed.bureau_user.clone()))?;
        let mut org = st.org.write();
        let Ok(current) = org.get(REQUEST_OBJECT, id) else {
            return Ok(()); // deleted or gone after a reset: nothing to work on
        };
        let status = current.get("Status__c").and_then(Value::as_str);
        match step {
            Step::Start(verdict) => {
                if status.is_some_and(|s| s != "New") {
                    return Ok(());
                }
                set(
                    &mut org,
                    id,
                    &[("Status__c", "In Progress".into())],
                    &analyst,
                )?;
                let due = after(now, opts.complete_after / 2);
                self.queue
                    .push(Reverse((due, id.to_string(), Step::Finish(verdict))));
            }
            Step::Finish(_) if status != Some("In Progress") => {}
            Step::Finish(Verdict::Reject) => {
                let fields = [
                    ("Status__c", "Rejected".into()),
                    ("Status_Reason__c", REJECT_REASON.into()),
                ];
                set(&mut org, id, &fields, &analyst)?;
            }
            Step::Finish(Verdict::ActionRequired) => {
                let fields = [
                    ("Status__c", "Action Required".into()),
                    ("Status_Reason__c", ACTION_REASON.into()),
                ];
                set(&mut org, id, &fields, &analyst)?;
            }
            Step::Finish(Verdict::Complete) => {
                let report = report_version(current, id);
                super::rest::create_record(&mut org, "ContentVersion", &report, &analyst)?;
                set(&mut org, id, &[("Status__c", "Completed".into())], &analyst)?;
            }
        }
        Ok(())
    }
}

fn verdict_for(n: u64, opts: &AutomationOptions) -> Verdict {
    let every = |k: u32| k > 0 && n.is_multiple_of(u64::from(k));
    if every(opts.reject_every) {
        Verdict::Reject
    } else if every(opts.action_required_every) {
        Verdict::ActionRequired
    } else {
        Verdict::Complete
    }
}

fn set(org: &mut Org, id: &str, fields: &[(&str, Value)], user: &str) -> Result<(), RecordError> {
    let input: Record = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    org.update(REQUEST_OBJECT, id, &input, user, chrono::Utc::now())
        .map(|_| ())
}

/// The ContentVersion insert for a finished report: a generated PDF published to the request.
fn report_version(request: &Record, id: &str) -> Record {
    let name = request.get("Name").and_then(Value::as_str).unwrap_or(id);
    let subject = request
        .get("Subject_Type__c")
        .and_then(Value::as_str)
        .unwrap_or("Unknown");
    let lines = [
        format!("Request: {name}"),
        format!("Subject type: {subject}"),
        "Issued by the simulated credit bureau.".to_string(),
    ];
    let pdf = pdf::render(&format!("Credit report {name}"), &lines);
    let data = base64::engine::general_purpose::STANDARD.encode(pdf);
    [
        ("Title", Value::from(format!("Credit report {name}"))),
        ("PathOnClient", format!("{name}.pdf").into()),
        ("VersionData", data.into()),
        ("FirstPublishLocationId", id.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn get_options(State(st): State<AppState>) -> Json<Value> {
    Json(st.automation.options().to_json())
}

async fn put_options(State(st): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let update: AutomationUpdate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("JSON_PARSER_ERROR", e.to_string()))?;
    let mut opts = st.automation.options();
    update
        .apply(&mut opts)
        .map_err(|e| ApiError::bad_request("INVALID_INPUT", e))?;
    st.automation.set_options(opts.clone());
    Ok(Json(opts.to_json()))
}

/// A due time `d` from now, saturating far in the future rather than overflowing on absurd settings.
pub fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}
