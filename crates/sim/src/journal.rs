//! The org's change journal: every record write the org applies, in order, so the bureau automation and the
//! Outbound Messaging sender learn of creates and updates made through any path (REST, collections, `/__sim/`
//! edits, the automation itself).
//!
//! The journal lives inside [`Org`](super::org::Org) on purpose: an `allOrNone` collection call that rolls back
//! restores the org from a clone, and the journal with it, so a rolled-back write never triggers anything, just
//! as a Salesforce workflow never fires for a rolled-back transaction.

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// One applied write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Canonical object name.
    pub object: String,
    pub id: String,
    pub kind: ChangeKind,
    /// The acting user's id.
    pub user: String,
}

/// Writes not yet taken by the automation worker.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pending: Vec<Change>,
}

/// Without a worker draining it (the worker always runs while the sim serves), the journal must still not grow
/// without bound: beyond this many entries the oldest are forgotten.
const MAX_PENDING: usize = 100_000;

impl Journal {
    pub fn record(&mut self, object: &str, id: &str, kind: ChangeKind, user: &str) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(Change {
            object: object.to_string(),
            id: id.to_string(),
            kind,
            user: user.to_string(),
        });
    }

    /// Everything recorded since the last call.
    pub fn take(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.pending)
    }
}
