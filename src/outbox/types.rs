//! The outbox's data model: messages, their destinations, states and attempts.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message's id: a UUID v7, so ids sort by creation time (the `messages` tree is in age order).
/// It is also the External ID written to Salesforce and the `webhook-id` sent to banks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(Uuid);

impl MessageId {
    /// A fresh time-ordered id.
    pub fn new() -> Self {
        MessageId(Uuid::now_v7())
    }

    /// The 16 big-endian bytes used in keys; they sort like the id.
    pub fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    /// Rebuilds an id from key bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        MessageId(Uuid::from_bytes(bytes))
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(MessageId)
    }
}

/// A lease's fencing token: random, fresh on every claim (see [`Message::lease_token`]). A 63-bit value,
/// so a database can keep it in a signed `bigint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseToken(pub u64);

impl LeaseToken {
    /// A fresh random token.
    pub fn new() -> Self {
        LeaseToken(rand::random::<u64>() >> 1)
    }
}

impl Default for LeaseToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Which queue a message waits in. Report requests are interactive (a person is waiting) and must
/// never queue behind bulk data feeds, so the two lanes are claimed separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Interactive,
    Bulk,
}

impl Lane {
    pub fn tag(self) -> u8 {
        match self {
            Lane::Interactive => 0,
            Lane::Bulk => 1,
        }
    }
}

/// Where a message goes. One outbox, several destinations: each kind has its own relay worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// An upsert into a Salesforce object by External ID (`ext_field` = `ext_value`).
    Salesforce {
        object: String,
        ext_field: String,
        ext_value: String,
    },
    /// A signed webhook to a bank's endpoint.
    Bank { endpoint: String, event: String },
    /// A notification e-mail.
    Email { to: String, template: String },
}

impl Destination {
    /// The kind, which selects the worker that drains it.
    pub fn kind(&self) -> DestinationKind {
        match self {
            Destination::Salesforce { .. } => DestinationKind::Salesforce,
            Destination::Bank { .. } => DestinationKind::Bank,
            Destination::Email { .. } => DestinationKind::Email,
        }
    }
}

/// The kind of a [`Destination`], without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    Salesforce,
    Bank,
    Email,
}

impl DestinationKind {
    pub fn tag(self) -> u8 {
        match self {
            DestinationKind::Salesforce => 0,
            DestinationKind::Bank => 1,
            DestinationKind::Email => 2,
        }
    }
}

/// A message's place in the state machine (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for `next_attempt_at`.
    Pending,
    /// Claimed by a worker until `lease_until`.
    InFlight,
    /// Done; `remote_id` holds the Salesforce id when there is one.
    Delivered,
    /// A permanent error: never retried unless an admin says so.
    Failed,
    /// Attempts or age exhausted.
    Dead,
    /// Given up on by an admin; kept for audit.
    Discarded,
}

impl State {
    /// Every state, in [`State::tag`] order.
    pub const ALL: [State; 6] = [
        State::Pending,
        State::InFlight,
        State::Delivered,
        State::Failed,
        State::Dead,
        State::Discarded,
    ];

    /// A stable small number for keys and columns (the index in [`State::ALL`]; terminal states are ≥ 2).
    pub fn tag(self) -> u8 {
        match self {
            State::Pending => 0,
            State::InFlight => 1,
            State::Delivered => 2,
            State::Failed => 3,
            State::Dead => 4,
            State::Discarded => 5,
        }
    }

    /// No worker will touch the message again without an admin action.
    pub fn is_terminal(self) -> bool {
        !matches!(self, State::Pending | State::InFlight)
    }
}

/// The class of the last error, as the relay classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Retryable,
    RateLimited,
    Reauth,
    Permanent,
}

/// The last error a message met, kept on the message for the dashboard (the full history is in
/// the attempt log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    pub class: ErrorClass,
    pub code: Option<String>,
    pub message: Option<String>,
    pub http_status: Option<u16>,
}

/// One queued unit of work and its delivery history in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    /// The bank (Salesforce Account id) this message belongs to: tenancy is enforced on it.
    pub tenant: String,
    pub lane: Lane,
    pub destination: Destination,
    pub payload: serde_json::Value,
    /// The mapping set that produced `payload`, so a replay can tell what it is resending.
    pub mapping_version: Option<String>,
    pub state: State,
    /// Attempts counted so far (a shutdown release does not count).
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    /// The fencing token of the current lease: set by a claim, cleared when the message leaves
    /// InFlight. An attempt is recorded only under the token it was claimed with, so a worker whose
    /// lease ran out cannot overwrite the outcome of the worker that claimed the message next.
    #[serde(default)]
    pub lease_token: Option<LeaseToken>,
    pub last_error: Option<LastError>,
    pub remote_id: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    /// When retention erased `payload` (then `Null`): the message is history only — state, attempts,
    /// errors and Salesforce id stay, the personal data is gone, and it can never be sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_erased_at: Option<DateTime<Utc>>,
}

/// What a producer hands to [`crate::outbox::Outbox::enqueue`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub tenant: String,
    pub lane: Lane,
    pub destination: Destination,
    pub payload: serde_json::Value,
    pub mapping_version: Option<String>,
}

/// The answer of an idempotent enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new message was queued.
    Created(MessageId),
    /// The key was seen before (within its TTL); `same_body` tells a replay from a key reused with a
    /// different body (which HTTP answers with 422).
    Existing { id: MessageId, same_body: bool },
}

impl Enqueued {
    pub fn id(&self) -> MessageId {
        match self {
            Enqueued::Created(id) | Enqueued::Existing { id, .. } => *id,
        }
    }
}

/// How one attempt ended, as the relay classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Success,
    Retryable,
    Reauth,
    Permanent,
    RateLimited,
}

impl AttemptOutcome {
    pub(crate) fn error_class(self) -> Option<ErrorClass> {
        match self {
            AttemptOutcome::Success => None,
            AttemptOutcome::Retryable => Some(ErrorClass::Retryable),
            AttemptOutcome::Reauth => Some(ErrorClass::Reauth),
            AttemptOutcome::Permanent => Some(ErrorClass::Permanent),
            AttemptOutcome::RateLimited => Some(ErrorClass::RateLimited),
        }
    }
}

/// One delivery attempt, kept in the attempt log after the message completes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub http_status: Option<u16>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub latency_ms: u64,
}

/// What [`crate::outbox::Outbox::record_attempt`] does with the message after the attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Delivered {
        remote_id: Option<String>,
    },
    /// Try again later: the delay comes from the retry policy (with `hint` from `Retry-After`);
    /// the message goes Dead instead when attempts or age are exhausted.
    Retry {
        hint: Option<std::time::Duration>,
        rate_limited: bool,
    },
    /// A permanent error: never retried.
    Failed,
    /// Shutdown: back to Pending, due now, without counting or logging the attempt.
    ReleaseNoAttempt,
}

/// A page request for [`crate::outbox::Outbox::list`]; results are in id (creation) order.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub tenant: Option<String>,
    pub state: Option<State>,
    pub lane: Option<Lane>,
    pub limit: usize,
    /// Start after this id (keyset pagination).
    pub after: Option<MessageId>,
}

/// Number of messages in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
    pub discarded: u64,
}

impl Counts {
    pub fn get(&self, state: State) -> u64 {
        *self.slot_ref(state)
    }

    pub fn slot(&mut self, state: State) -> &mut u64 {
        match state {
            State::Pending => &mut self.pending,
            State::InFlight => &mut self.in_flight,
            State::Delivered => &mut self.delivered,
            State::Failed => &mut self.failed,
            State::Dead => &mut self.dead,
            State::Discarded => &mut self.discarded,
        }
    }

    fn slot_ref(&self, state: State) -> &u64 {
        match state {
            State::Pending => &self.pending,
            State::InFlight => &self.in_flight,
            State::Delivered => &self.delivered,
            State::Failed => &self.failed,
            State::Dead => &self.dead,
            State::Discarded => &self.discarded,
        }
    }
}
