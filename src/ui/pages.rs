//! The dashboard's HTML, as maud templates: every interpolation is HTML-escaped by maud, so text from banks
//! (references, names, reasons) can never become markup. No inline script or style: the one stylesheet is
//! `/ui/static/ui.css`, and no page needs script.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::history::{Filter, Row, StatusName};
use super::session::{Role, Session};
use crate::lifecycle::{Lifecycle, timestamp};
use crate::outbox::{Attempt, Message};
use crate::relay::bank::EndpointState;

/// The frame of every page: header with who is logged in and the logout form, then `body`.
pub fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · creditlink" }
                link rel="stylesheet" href="/ui/static/ui.css";
            }
            body {
                header {
                    span.brand { "creditlink · Data Uploads" }
                    @if let Some(s) = session {
                        nav {
                            a href="/ui/requests" { "Report requests" }
                            a #nav-uploads href="/ui/uploads" { "Uploads" }
                            @if s.user.role == Role::Admin {
                                a href="/ui/admin/dead-letters" { "Dead letters" }
                                a href="/ui/admin/endpoints" { "Bank endpoints" }
                                a href="/ui/admin/mappings" { "Mappings" }
                                a href="/ui/admin/gatekeeper" { "Gatekeeper" }
                                a href="/ui/admin/vault-audit" { "Vault audit" }
                            }
                        }
                        span #who { (s.user.username) " · " (role_label(&s.user.role)) }
                        form #logout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn role_label(role: &Role) -> String {
    match role {
        Role::Bank { name, .. } => name.clone(),
        Role::Admin => "bureau admin".into(),
    }
}

/// The page of someone not logged in.
pub fn landing() -> Markup {
    layout(
        "Log in",
        None,
        html! {
            p { "Bank representatives and bureau admins log in with their account at the bureau's Salesforce." }
            p { a #login.button href="/ui/login" { "Log in with Salesforce" } }
        },
    )
}

/// The callback's answer: a same-site page that moves on to the history (a redirect chain that began at
/// Salesforce would count as cross-site, and the SameSite=Strict session cookie would not be sent).
pub fn signed_in() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0;url=/ui/requests";
                title { "Signed in · creditlink" }
                link rel="stylesheet" href="/ui/static/ui.css";
            }
            body { main { p { "Signed in. " a href="/ui/requests" { "Continue to the dashboard" } } } }
        }
    }
}

pub fn error_page(status: StatusCode, text: &str) -> Markup {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        None,
        html! {
            p.error { (text) }
            p { a href="/ui/" { "Back to the dashboard" } }
        },
    )
}

/// What the history page shows.
pub struct HistoryView<'a> {
    pub filter: &'a Filter,
    pub rows: &'a [Row],
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub truncated: bool,
    pub chart: Markup,
    /// Bank codes for the admin's bank filter (empty for a bank rep).
    pub banks: Vec<String>,
}

/// The filter form of a list page at `action` (state, dates, text, bank for admins) with the link to the same
/// list as CSV (`{action}.csv`, every page).
pub fn filter_form<S: StatusName>(
    action: &str,
    filter: &Filter<S>,
    text_label: &str,
    banks: &[String],
) -> Markup {
    let export = serde_urlencoded::to_string(filter.pairs()).unwrap_or_default();
    html! {
        form #filters method="get" action=(action) {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in S::CHOICES {
                        option value=(s.name()) selected[filter.status == Some(*s)] { (s.name()) }
                    }
                }
            }
            label { "From " input type="date" name="from" value=[filter.from.map(|d| d.to_string())]; }
            label { "To " input type="date" name="to" value=[filter.to.map(|d| d.to_string())]; }
            label { (text_label) " " input type="search" name="q" value=[filter.text.as_deref()]; }
            @if !banks.is_empty() {
                label { "Bank "
                    select name="bank" {
                        option value="" { "every bank" }
                        @for b in banks {
                            option value=(b) selected[filter.bank.as_deref() == Some(b.as_str())] { (b) }
                        }
                    }
                }
            }
            button #apply type="submit" { "Filter" }
            a #export.button href={ (action) ".csv?" (export) } download { "Export CSV" }
        }
    }
}

/// Newer/older links of a list page at `action`, keeping its filter.
pub fn pager<S: StatusName>(action: &str, filter: &Filter<S>, page: usize, pages: usize) -> Markup {
    let query = |page: usize| {
        let mut pairs = filter.pairs();
        pairs.push(("page", page.to_string()));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    };
    html! {
        nav.pager {
            @if page > 1 { a #prev href={ (action) "?" (query(page - 1)) } { "← Newer" } }
            span #page { "Page " (page) " of " (pages.max(1)) }
            @if page < pages { a #next href={ (action) "?" (query(page + 1)) } { "Older →" } }
        }
    }
}

pub fn history(session: &Session, v: &HistoryView<'_>) -> Markup {
    let body = html! {
        (filter_form("/ui/requests", v.filter, "Reference", &v.banks))
        section.chart { h2 { "Last 14 days" } (v.chart) p.legend { span.ok { "■ completed" } " " span.failed { "■ failed or rejected" } } }
        p #count { (v.total) " requests" @if v.truncated { " (only the newest are searched)" } }
        table #history {
            thead { tr {
                th { "Created" } th { "Bank" } th { "Reference" } th { "Status" } th { "Reason" } th { "Attempts" }
            } }
            tbody {
                @for r in v.rows {
                    tr data-id=(r.id.to_string()) {
                        td { a href={ "/ui/requests/" (r.id.to_string()) } { (timestamp(r.created_at)) } }
                        td { (r.bank_code) }
                        td.reference { (r.reference) }
                        td { span class={ "status " (r.status) } { (r.status) } }
                        td.reason { (r.reason.as_deref().unwrap_or_default()) }
                        td { (r.attempts) }
                    }
                }
            }
        }
        (pager("/ui/requests", v.filter, v.page, v.pages))
    };
    layout("Report requests", Some(session), body)
}

pub fn detail(session: &Session, message: &Message, row: &Row, attempts: &[Attempt]) -> Markup {
    let retryable = matches!(
        message.state,
        crate::outbox::State::Failed | crate::outbox::State::Dead
    );
    let body = html! {
        dl #detail {
            dt { "Id" } dd { (row.id.to_string()) }
            dt { "Bank" } dd { (row.bank_code) }
            dt { "Reference" } dd #reference { (row.reference) }
            dt { "Status" } dd #status { (row.status) }
            dt { "Reason" } dd #reason { (row.reason.as_deref().unwrap_or("—")) }
            dt { "Salesforce id" } dd { (row.salesforce_id.as_deref().unwrap_or("—")) }
            dt { "Created" } dd { (timestamp(row.created_at)) }
            @if let Some(e) = &message.last_error {
                dt { "Last error" }
                dd { (e.code.as_deref().unwrap_or_default()) " " (e.message.as_deref().unwrap_or_default()) }
            }
        }
        @if row.status == Lifecycle::Completed.as_str() {
            p { a #report.button href={ "/ui/requests/" (row.id.to_string()) "/report" } { "Download the report (PDF)" } }
        }
        @if retryable {
            form #retry method="post" action={ "/ui/requests/" (row.id.to_string()) "/retry" } {
                input type="hidden" name="csrf" value=(session.csrf);
                button type="submit" { "Send to Salesforce again" }
            }
        }
        h2 { "Attempts" }
        (attempt_table(attempts))
    };
    layout("Report request", Some(session), body)
}

fn attempt_table(attempts: &[Attempt]) -> Markup {
    html! {
        table #attempts {
            thead { tr { th { "Started" } th { "Outcome" } th { "HTTP" } th { "Error" } th { "Message" } th { "ms" } } }
            tbody {
                @for a in attempts {
                    tr {
                        td { (timestamp(a.started_at)) }
                        td { (format!("{:?}", a.outcome).to_lowercase()) }
                        td { (a.http_status.map(|s| s.to_string()).unwrap_or_default()) }
                        td { (a.error_code.as_deref().unwrap_or_default()) }
                        td { (a.message.as_deref().unwrap_or_default()) }
                        td { (a.latency_ms) }
                    }
                }
            }
        }
    }
}

pub fn dead_letters(session: &Session, messages: &[(Message, String)]) -> Markup {
    let body = html! {
        p { "Messages that will not be sent again without an operator: retry queues one again now, discard gives up on it (kept for audit)." }
        table #dead-letters {
            thead { tr { th { "Updated" } th { "Bank" } th { "Destination" } th { "State" } th { "Attempts" } th { "Last error" } th { "" } } }
            tbody {
                @for (m, bank) in messages {
                    tr data-id=(m.id.to_string()) {
                        td { (timestamp(m.updated_at)) }
                        td { (bank) }
                        td { (destination(m)) }
                        td { (format!("{:?}", m.state).to_lowercase()) }
                        td { (m.attempts) }
                        td { (m.last_error.as_ref().and_then(|e| e.message.as_deref()).unwrap_or_default()) }
                        td.actions {
                            @for action in ["retry", "discard"] {
                                form method="post" action={ "/ui/admin/messages/" (m.id.to_string()) "/" (action) } {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    button type="submit" class=(action) { (action) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Dead letters", Some(session), body)
}

fn destination(m: &Message) -> String {
    match &m.destination {
        crate::outbox::Destination::Salesforce { object, .. } => format!("Salesforce {object}"),
        crate::outbox::Destination::Bank { event, .. } => format!("bank webhook {event}"),
        crate::outbox::Destination::Email { template, .. } => format!("e-mail {template}"),
    }
}

pub fn endpoints(session: &Session, banks: &[(String, String, EndpointState)]) -> Markup {
    let body = html! {
        table #endpoints {
            thead { tr { th { "Bank" } th { "Code" } th { "State" } th { "Last success" } th { "Failing since" } th { "" } } }
            tbody {
                @for (name, code, state) in banks {
                    tr {
                        td { (name) }
                        td { (code) }
                        td { @match &state.disabled {
                            Some(d) => { "disabled since " (timestamp(d.at)) ": " (d.reason) }
                            None => { "enabled" }
                        } }
                        td { (state.health.last_success_at.map(timestamp).unwrap_or_default()) }
                        td { (state.health.first_failure_at.map(timestamp).unwrap_or_default()) }
                        td { @if state.disabled.is_some() {
                            form method="post" action={ "/ui/admin/endpoints/" (code) "/enable" } {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" { "Enable" }
                            }
                        } }
                    }
                }
            }
        }
    };
    layout("Bank endpoints", Some(session), body)
}
