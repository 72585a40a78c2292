//! The dashboard's query layer for data-feed uploads: a bank's uploads as the feeds' ledger holds them, with
//! tenancy enforced here (every read takes a [`Scope`] and asks the feeds for that tenant only; another bank's
//! upload answers exactly like an unknown one).
//!
//! The ledger lists one bank's uploads newest first; the bureau's view (`Scope::All`) reads each enrolled bank
//! and merges by time. At most [`MAX_SCAN`] uploads are read per bank and view; beyond that the page says so.

use super::UiState;
use super::error::UiError;
use super::history::{Filter, Scope, StatusName};
use crate::feeds::{Feeds, Status, Upload};

/// Uploads read per ledger call.
const PAGE: usize = 500;
/// Uploads read per bank and view at most.
pub const MAX_SCAN: usize = 20_000;
/// Every upload status, in lifecycle order (the filter's choices).
pub const STATUSES: [Status; 4] = [
    Status::Received,
    Status::Processing,
    Status::Completed,
    Status::Failed,
];

/// What the uploads view's filters ask for (`q` is a substring of the file name).
pub type UploadFilter = Filter<Status>;

impl StatusName for Status {
    const CHOICES: &'static [Self] = &STATUSES;
    fn name(self) -> &'static str {
        self.as_str()
    }
}

fn keeps(filter: &UploadFilter, u: &Upload) -> bool {
    filter.matches(
        u.status.as_str(),
        u.received_at.date_naive(),
        &u.name,
        &u.bank_code,
    )
}

/// The feeds, or the page saying this daemon has none.
pub fn feeds(state: &UiState) -> Result<&Feeds, UiError> {
    state.feeds.as_ref().ok_or_else(|| {
        UiError::BadRequest(
            "Data-feed uploads are not enabled on this daemon (they need the report vault's keys)."
                .into(),
        )
    })
}

/// The scope's uploads matching `filter`, newest first, and whether [`MAX_SCAN`] cut a bank's read short.
pub async fn rows(
    state: &UiState,
    scope: &Scope,
    filter: &UploadFilter,
) -> Result<(Vec<Upload>, bool), UiError> {
    let feeds = feeds(state)?;
    let tenants: Vec<String> = match scope {
        Scope::Bank(account) => vec![account.clone()],
        Scope::All => state
            .settings
            .bank_list
            .iter()
            .map(|b| b.account_id.clone())
            .collect(),
    };
    let mut out = Vec::new();
    let mut truncated = false;
    for tenant in tenants {
        let mut after: Option<String> = None;
        let mut scanned = 0;
        loop {
            let page = feeds
                .uploads_of(&tenant, after.as_deref(), PAGE)
                .await
                .map_err(UiError::internal)?;
            let n = page.len();
            scanned += n;
            after = page.last().map(|u| u.id.clone());
            out.extend(page.into_iter().filter(|u| keeps(filter, u)));
            if n < PAGE {
                break;
            }
            if scanned >= MAX_SCAN {
                truncated = true;
                break;
            }
        }
    }
    out.sort_by(|a, b| b.received_at.cmp(&a.received_at).then(b.id.cmp(&a.id)));
    Ok((out, truncated))
}

/// One upload of the scope; another bank's is [`UiError::NotFound`].
pub async fn one(state: &UiState, scope: &Scope, id: &str) -> Result<Upload, UiError> {
    let tenant = match scope {
        Scope::Bank(account) => Some(account.as_str()),
        Scope::All => None,
    };
    feeds(state)?
        .upload_of(tenant, id)
        .await
        .map_err(UiError::internal)?
        .ok_or(UiError::NotFound)
}
