//! The relay: workers that drain the outbox toward its destinations. One outbox, one worker per
//! destination kind: the Salesforce pusher (below), [`bank`] (signed webhooks to banks, endpoint health and
//! disabling) and [`email`] (notification e-mails over SMTP).
//!
//! # The Salesforce pusher
//!
//! ```text
//!  intake ──enqueue + durable──▶ outbox ──claim_due (Interactive, then Bulk)──▶ SalesforcePusher
//!     └──── notifier().notify_one() ───────────────────────────────────────────▶ (wakes the loop)
//!                                                                                   │ group by (object, ext field)
//!   record_attempt(Delivered | Retry | Failed) ◀── verdict per record ◀── collections_upsert (≤ 200)
//! ```
//!
//! - **Batching.** Every send is an sObject Collections upsert of up to `batch_max` (≤ 200)
//!   records, one API call. When fewer are due, a step lingers a few milliseconds for more, so a
//!   burst of intake requests shares one call; a full batch never lingers. API usage stays near
//!   the floor of one call per 200 records.
//! - **Lanes.** Each step claims the Interactive lane (report requests, a person waiting) first and
//!   the Bulk lane (data feeds) only with the room left, so requests never queue behind feeds.
//! - **Concurrency.** Up to `concurrency` batches in flight; a step claims only once it holds a
//!   slot, so claimed messages never sit waiting while their lease runs down.
//! - **One classification.** Every answer becomes a verdict in `verdict.rs`: success (including a
//!   `DUPLICATE_VALUE` on the message's own external id), retry (with `Retry-After` and the rate
//!   limit flag), or never retry. A whole call failing applies its verdict to every message of it;
//!   a single record failing touches only its message.
//! - **Effectively once.** Writes are upserts by the External ID creditlink assigned, so sending a
//!   message again (after a crash, a lost answer or a lease expiry) updates the same record.
//!   Attempts of one call are recorded concurrently, so their durable writes share a group commit.
//! - **API budget.** `governor.rs` reads the usage Salesforce reports with every answer: above
//!   `api_usage_slow_pct` it spaces batches out, above `api_usage_pause_pct` it stops sending
//!   ([`StepOutcome::Paused`], [`SalesforcePusher::paused`]) and re-checks with one `GET /limits`
//!   per `pause_recheck`.
//! - **Shutdown.** The loop stops claiming when its token is cancelled, lets batches in flight
//!   finish (bounded by the request timeout), and returns. A send is never cut off half-way.
//!
//! Architecture invariant: the relay never builds Salesforce JSON or parses its errors itself; the
//! client does (`salesforce/`), and the relay decides what an answer means for a message.
//! Logs carry message ids, object names, counts and codes, never payload values.
//!
//! | File | Role |
//! | --- | --- |
//! | `pusher.rs` | [`SalesforcePusher`]: the step, the loop, claiming, sending, recording |
//! | `batch.rs` | claimed messages → Collections calls (pure) |
//! | `verdict.rs` | the one retry classification; verdict → `Attempt` + `Transition` |
//! | `governor.rs` | API usage pacing and pause |
//! | `events.rs` | log line + metric per notable event |
//! | `settings.rs` | [`PusherSettings`] |

pub mod bank;
mod batch;
mod breaker;
pub mod email;
mod events;
mod governor;
mod pusher;
mod settings;
mod verdict;
mod worker;

pub use pusher::SalesforcePusher;
pub use settings::PusherSettings;

use crate::outbox::OutboxError;

/// What one step of a relay worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Messages were sent; counts by the state each message ended in (`failed` includes Dead).
    Worked {
        delivered: usize,
        retried: usize,
        failed: usize,
    },
    /// Nothing was due.
    Idle,
    /// Sending is paused (API usage above the pause mark); nothing was claimed.
    Paused,
}

/// What can stop a relay step. Salesforce errors are not here: they are outcomes of attempts,
/// recorded on the messages.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Claiming or recording failed in the outbox's store; the loop logs it and backs off.
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// A pusher setting is invalid (reported when the pusher is built).
    #[error("invalid pusher setting: {0}")]
    Settings(&'static str),
}

impl RelayError {
    /// True when the same step may succeed later (a transient store failure).
    pub fn is_retryable(&self) -> bool {
        match self {
            RelayError::Outbox(error) => error.is_retryable(),
            RelayError::Settings(_) => false,
        }
    }
}
