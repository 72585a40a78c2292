//! The read side (dashboard, status endpoints, metrics) and the admin actions on dead letters.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::backend::AdminMove;
use super::types::{Attempt, Counts, ListFilter, Message, MessageId};
use super::{Outbox, OutboxError};

impl Outbox {
    /// One message, if it exists.
    pub async fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        self.inner.queue.get(id).await
    }

    /// A page of messages in id (creation) order, after `filter.after`.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        self.inner.queue.list(filter).await
    }

    /// The attempt log of a message, oldest first. Kept after the message completes.
    pub async fn attempts(&self, id: MessageId) -> Result<Vec<Attempt>, OutboxError> {
        self.inner.queue.attempts(id).await
    }

    /// Messages per state.
    pub async fn counts(&self) -> Result<Counts, OutboxError> {
        self.inner.queue.counts().await
    }

    /// How long the oldest message not yet finished (Pending or InFlight) has existed, or `None`
    /// when there is none.
    pub async fn oldest_pending_age(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, OutboxError> {
        Ok(self
            .inner
            .queue
            .oldest_live()
            .await?
            .map(|created| (now - created).to_std().unwrap_or(Duration::ZERO)))
    }

    /// Admin: sends a Failed or Dead message again, due now. Attempts and history are kept, so a
    /// message past its attempt or age limit gets exactly one more try.
    pub async fn retry(&self, id: MessageId) -> Result<Message, OutboxError> {
        let now = self.now();
        self.inner
            .queue
            .admin_move(id, AdminMove::Retry { now })
            .await
    }

    /// Admin: gives up on a Pending, Failed or Dead message. It stays stored, for audit.
    pub async fn discard(&self, id: MessageId) -> Result<Message, OutboxError> {
        let now = self.now();
        let message = self
            .inner
            .queue
            .admin_move(id, AdminMove::Discard { now })
            .await?;
        self.settled(&message);
        Ok(message)
    }
}
