//! The dashboard's query layer: report requests as a bank (or the bureau) sees them, with tenancy enforced
//! here and nowhere else.
//!
//! Every read takes a [`Scope`]. `Scope::Bank` lists with the outbox's tenant filter, so another bank's
//! messages are never read, and [`one`] answers another bank's id exactly like an unknown one. Rows are the
//! same status documents the bank API serves (`crate::lifecycle`), so the dashboard, the API and the webhooks
//! cannot disagree.
//!
//! The outbox lists in creation order; the history shows newest first, so a scope's report requests are read
//! whole (in pages of [`PAGE`]) and reversed. At most [`MAX_SCAN`] messages are read per view; beyond that the
//! page says the history is truncated (a reverse index in the store is the way past it).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::UiState;
use super::error::UiError;
use crate::lifecycle::{self, Lifecycle, REPORT_REQUEST_KIND};
use crate::outbox::{ListFilter, Message, MessageId, State as MsgState};

/// Outbox messages read per list call.
const PAGE: usize = 1000;
/// Messages read per view at most.
pub const MAX_SCAN: usize = 20_000;

/// Whose data a query may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One bank, by its Salesforce Account id.
    Bank(String),
    /// Every bank (bureau admins).
    All,
}

impl Scope {
    fn tenant(&self) -> Option<String> {
        match self {
            Scope::Bank(account) => Some(account.clone()),
            Scope::All => None,
        }
    }

    fn allows(&self, tenant: &str) -> bool {
        match self {
            Scope::Bank(account) => account == tenant,
            Scope::All => true,
        }
    }
}

/// A state a list can be filtered by: the report-request lifecycle, an upload's status.
pub trait StatusName: Copy + PartialEq + 'static {
    /// Every state, in lifecycle order (the filter's choices).
    const CHOICES: &'static [Self];
    fn name(self) -> &'static str;
}

impl StatusName for Lifecycle {
    const CHOICES: &'static [Self] = &Lifecycle::ALL;
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// What a list's filters ask for (all optional): report requests ([`Lifecycle`]) or uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<S = Lifecycle> {
    pub status: Option<S>,
    /// Created (received) on or after / on or before, UTC days.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Case-insensitive substring of the bank's reference (an upload's file name).
    pub text: Option<String>,
    /// A bank code (admins only; a bank scope ignores it).
    pub bank: Option<String>,
}

impl<S> Default for Filter<S> {
    fn default() -> Self {
        Filter {
            status: None,
            from: None,
            to: None,
            text: None,
            bank: None,
        }
    }
}

impl<S: StatusName> Filter<S> {
    /// From the page's query string; an unparsable value is a 400 naming the field.
    pub fn from_query(q: &std::collections::HashMap<String, String>) -> Result<Self, UiError> {
        let status = query_value(q, "status")
            .map(|s| {
                S::CHOICES
                    .iter()
                    .copied()
                    .find(|c| c.name() == s)
                    .ok_or_else(|| UiError::BadRequest("`status` is not a known state.".into()))
            })
            .transpose()?;
        Ok(Filter {
            status,
            from: query_date(q, "from")?,
            to: query_date(q, "to")?,
            text: query_value(q, "q").map(str::to_owned),
            bank: query_value(q, "bank").map(str::to_owned),
        })
    }

    /// The filter as query pairs (links to other pages and to the CSV export keep it).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(s) = self.status {
            out.push(("status", s.name().to_owned()));
        }
        if let Some(d) = self.from {
            out.push(("from", d.to_string()));
        }
        if let Some(d) = self.to {
            out.push(("to", d.to_string()));
        }
        if let Some(t) = &self.text {
            out.push(("q", t.clone()));
        }
        if let Some(b) = &self.bank {
            out.push(("bank", b.clone()));
        }
        out
    }

    /// Whether an item with this state, day, text and bank code passes the filter.
    pub fn matches(&self, status: &str, day: NaiveDate, text: &str, bank: &str) -> bool {
        self.status.is_none_or(|s| s.name() == status)
            && self.from.is_none_or(|d| day >= d)
            && self.to.is_none_or(|d| day <= d)
            && self.bank.as_deref().is_none_or(|b| bank == b)
            && self
                .text
                .as_deref()
                .is_none_or(|t| text.to_lowercase().contains(&t.to_lowercase()))
    }

    fn keeps(&self, row: &Row) -> bool {
        self.matches(
            &row.status,
            row.created_at.date_naive(),
            &row.reference,
            &row.bank_code,
        )
    }
}

/// A query parameter, trimmed; `None` when absent or empty.
pub fn query_value<'a>(
    q: &'a std::collections::HashMap<String, String>,
    k: &str,
) -> Option<&'a str> {
    q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A date query parameter (`YYYY-MM-DD`); a malformed one is a 400 naming it.
pub fn query_date(
    q: &std::collections::HashMap<String, String>,
    k: &str,
) -> Result<Option<NaiveDate>, UiError> {
    query_value(q, k)
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| UiError::BadRequest(format!("`{k}` must be a date (YYYY-MM-DD).")))
        })
        .transpose()
}

/// One report request as the history shows it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: MessageId,
    pub bank_code: String,
    pub created_at: DateTime<Utc>,
    pub reference: String,
    pub status: String,
    pub reason: Option<String>,
    pub salesforce_id: Option<String>,
    pub attempts: u32,
}

/// The scope's report requests matching `filter`, newest first, and whether [`MAX_SCAN`] cut the read short.
pub async fn rows(
    state: &UiState,
    scope: &Scope,
    filter: &Filter,
) -> Result<(Vec<Row>, bool), UiError> {
    let (messages, truncated) = report_requests(state, scope).await?;
    let mut out = Vec::new();
    for m in messages.iter().rev() {
        let row = row(state, m).await;
        if filter.keeps(&row) {
            out.push(row);
        }
    }
    Ok((out, truncated))
}

/// Dead and failed messages of every kind (admins): what an operator retries or discards.
pub async fn dead_letters(state: &UiState) -> Result<Vec<Message>, UiError> {
    let mut out = Vec::new();
    for s in [MsgState::Dead, MsgState::Failed] {
        let filter = ListFilter {
            state: Some(s),
            limit: PAGE,
            ..ListFilter::default()
        };
        out.extend(
            state
                .intake
                .outbox
                .list(&filter)
                .await
                .map_err(UiError::internal)?,
        );
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.updated_at));
    Ok(out)
}

/// One report request of the scope, with its status document; another bank's id is [`UiError::NotFound`].
pub async fn one(state: &UiState, scope: &Scope, id: &str) -> Result<(Message, Row), UiError> {
    let id: MessageId = id.parse().map_err(|_| UiError::NotFound)?;
    let message = state
        .intake
        .outbox
        .get(id)
        .await
        .map_err(UiError::internal)?
        .filter(|m| scope.allows(&m.tenant))
        .filter(|m| is_report_request(state, m))
        .ok_or(UiError::NotFound)?;
    let row = row(state, &message).await;
    Ok((message, row))
}

/// The bank code of an account (empty for an account no `[[banks]]` lists).
pub fn bank_code(state: &UiState, account_id: &str) -> String {
    state
        .settings
        .bank_list
        .iter()
        .find(|b| b.account_id == account_id)
        .map(|b| b.code.clone())
        .unwrap_or_default()
}

fn is_report_request(state: &UiState, m: &Message) -> bool {
    let code = bank_code(state, &m.tenant);
    let object = state
        .intake
        .mappings
        .load()
        .object(REPORT_REQUEST_KIND, Some(&code))
        .map(str::to_owned);
    lifecycle::is_report_request(m, object.as_deref())
}

/// The scope's report-request messages in creation order (the outbox's), read page by page.
async fn report_requests(state: &UiState, scope: &Scope) -> Result<(Vec<Message>, bool), UiError> {
    let mut out = Vec::new();
    let mut after = None;
    let mut scanned = 0;
    loop {
        let filter = ListFilter {
            tenant: scope.tenant(),
            state: None,
            lane: None,
            limit: PAGE,
            after,
        };
        let page = state
            .intake
            .outbox
            .list(&filter)
            .await
            .map_err(UiError::internal)?;
        let n = page.len();
        scanned += n;
        after = page.last().map(|m| m.id);
        out.extend(page.into_iter().filter(|m| is_report_request(state, m)));
        if n < PAGE {
            return Ok((out, false));
        }
        if scanned >= MAX_SCAN {
            return Ok((out, true));
        }
    }
}

async fn row(state: &UiState, m: &Message) -> Row {
    let code = bank_code(state, &m.tenant);
    let doc = crate::intake::api::status_body(&state.intake, m, &code).await;
    let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    Row {
        id: m.id,
        bank_code: code,
        created_at: m.created_at,
        reference: text("reference").unwrap_or_default(),
        status: text("status").unwrap_or_default(),
        reason: text("reason"),
        salesforce_id: text("salesforce_id"),
        attempts: m.attempts,
    }
}
