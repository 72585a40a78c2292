//! The bureau admin's read-only views of creditlink's own state: the mapping version in use (and what it
//! maps per bank), the stale-record gatekeeper's last report with its audit trail, and the report vault's
//! audit log.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::UiState;
use super::admin_pages::{self, BankMapping, Mappings};
use super::error::UiError;
use super::views::admin;
use crate::lifecycle::REPORT_REQUEST_KIND;

/// Newest entries shown of an audit log.
pub const AUDIT_SHOWN: usize = 500;
/// Entries read per page of the gatekeeper's audit tree.
const AUDIT_PAGE: usize = 1000;
/// The feeds' mapping kind.
const CREDIT_RECORD_KIND: &str = "credit_record";

pub async fn mappings(
    State(state): State<UiState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let session = admin(&state, &headers)?;
    let set = state.intake.mappings.load();
    let banks = state
        .settings
        .bank_list
        .iter()
        .map(|b| {
            let code = Some(b.code.as_str());
            BankMapping {
                code: b.code.clone(),
                name: b.name.clone(),
                variant: b.mapping_variant.clone(),
                request_object: set.object(REPORT_REQUEST_KIND, code).map(str::to_owned),
                request_fields: set
                    .inbound_fields(REPORT_REQUEST_KIND, code)
                    .into_iter()
                    .map(|f| f.from)
                    .collect(),
                record_object: set.object(CREDIT_RECORD_KIND, code).map(str::to_owned),
                record_columns: set
                    .inbound_fields(CREDIT_RECORD_KIND, code)
                    .into_iter()
                    .map(|f| f.from)
                    .collect(),
            }
        })
        .collect();
    let view = Mappings {
        version: set.version().to_owned(),
        banks,
    };
    Ok(admin_pages::mappings(&session, &view).into_response())
}

pub async fn gatekeeper(
    State(state): State<UiState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let session = admin(&state, &headers)?;
    let gatekeeper = state
        .gatekeeper
        .as_ref()
        .ok_or_else(|| UiError::internal("the dashboard has no gatekeeper"))?;
    // The audit tree is keyed by UUID v7 (oldest first): read it page by page, keep the newest.
    let mut newest = std::collections::VecDeque::with_capacity(AUDIT_SHOWN);
    let mut after = None;
    loop {
        let page = gatekeeper
            .audit()
            .list(after, AUDIT_PAGE)
            .await
            .map_err(UiError::internal)?;
        let n = page.len();
        after = page.last().map(|e| e.id);
        for entry in page {
            if newest.len() == AUDIT_SHOWN {
                newest.pop_front();
            }
            newest.push_back(entry);
        }
        if n < AUDIT_PAGE {
            break;
        }
    }
    let audit: Vec<_> = newest.into_iter().rev().collect();
    Ok(admin_pages::gatekeeper(&session, gatekeeper.last_run().as_ref(), &audit).into_response())
}

pub async fn vault_audit(
    State(state): State<UiState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let session = admin(&state, &headers)?;
    let entries = match state.intake.vault.clone() {
        Some(vault) => {
            let all = tokio::task::spawn_blocking(move || vault.audit_entries())
                .await
                .map_err(UiError::internal)?
                .map_err(UiError::internal)?;
            let skip = all.len().saturating_sub(AUDIT_SHOWN);
            all.into_iter().skip(skip).rev().collect()
        }
        None => Vec::new(),
    };
    let enabled = state.intake.vault.is_some();
    let rows: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let who = actor_label(&state, &e.actor);
            (e, who)
        })
        .collect();
    Ok(admin_pages::vault_audit(&session, enabled, &rows).into_response())
}

/// `bank:<account id>` as the bank's code (the audit log keeps the id).
fn actor_label(state: &UiState, actor: &str) -> String {
    match actor.strip_prefix("bank:") {
        Some(account) => {
            let code = super::history::bank_code(state, account);
            if code.is_empty() {
                actor.to_owned()
            } else {
                format!("bank {code}")
            }
        }
        None => actor.to_owned(),
    }
}
