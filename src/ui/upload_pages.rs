//! The uploads views' HTML (maud: every interpolation escaped, so file names and problem texts from banks
//! never become markup).

use maud::{Markup, html};

use super::pages::{filter_form, layout, pager};
use super::session::Session;
use super::uploads::UploadFilter;
use crate::feeds::{Outcome, RowResult, Upload};
use crate::lifecycle::timestamp;

/// What the uploads list shows.
pub struct UploadsView<'a> {
    pub filter: &'a UploadFilter,
    pub rows: &'a [Upload],
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub truncated: bool,
    /// Bank codes for the admin's bank filter (empty for a bank rep).
    pub banks: Vec<String>,
}

pub fn uploads(session: &Session, v: &UploadsView<'_>) -> Markup {
    let body = html! {
        (filter_form("/ui/uploads", v.filter, "File name", &v.banks))
        p #count { (v.total) " uploads" @if v.truncated { " (only the newest are searched)" } }
        table #uploads {
            thead { tr {
                th { "Received" } th { "Bank" } th { "File" } th { "Status" } th { "Rows" } th { "Accepted" }
                th { "Updated" } th { "Unchanged" } th { "Duplicate" } th { "Rejected" } th { "Warnings" }
            } }
            tbody {
                @for u in v.rows {
                    tr data-id=(u.id) {
                        td { a href={ "/ui/uploads/" (u.id) } { (timestamp(u.received_at)) } }
                        td { (u.bank_code) }
                        td.name { (u.name) }
                        td { span class={ "status " (u.status.as_str()) } { (u.status.as_str()) } }
                        td { (u.counts.rows) } td { (u.counts.accepted) } td { (u.counts.updated) }
                        td { (u.counts.unchanged) } td { (u.counts.duplicate) } td.rejected { (u.counts.rejected) }
                        td { (u.counts.warnings) }
                    }
                }
            }
        }
        (pager("/ui/uploads", v.filter, v.page, v.pages))
    };
    layout("Uploads", Some(session), body)
}

/// What an upload's page shows: the upload, a page of row verdicts and where the next page starts.
pub struct UploadDetail<'a> {
    pub upload: &'a Upload,
    pub outcome: Option<Outcome>,
    pub rows: &'a [RowResult],
    /// `after=` of the next page, when there is one.
    pub next_after: Option<u64>,
}

pub fn upload(session: &Session, v: &UploadDetail<'_>) -> Markup {
    let u = v.upload;
    let base = format!("/ui/uploads/{}", u.id);
    let next = v.next_after.map(|after| {
        let mut pairs = vec![("after", after.to_string())];
        if let Some(o) = v.outcome {
            pairs.push(("outcome", o.as_str().to_owned()));
        }
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    });
    let body = html! {
        dl #detail {
            dt { "Id" } dd { (u.id) }
            dt { "Bank" } dd { (u.bank_code) }
            dt { "File" } dd #name { (u.name) }
            dt { "Status" } dd #status { (u.status.as_str()) }
            dt { "Received" } dd { (timestamp(u.received_at)) }
            dt { "Completed" } dd { (u.completed_at.map(timestamp).unwrap_or_else(|| "—".into())) }
            @if let Some(f) = &u.failure { dt { "Failure" } dd #failure { (f) } }
            dt { "Rows" } dd #counts {
                (u.counts.rows) " rows: " (u.counts.accepted) " accepted, " (u.counts.updated) " updated, "
                (u.counts.unchanged) " unchanged, " (u.counts.duplicate) " duplicate, " (u.counts.rejected)
                " rejected, " (u.counts.reinstated) " reinstated; " (u.counts.warnings) " warnings"
            }
        }
        @if u.counts.rejected > 0 {
            p { a #errors-csv.button href={ (base) "/errors.csv" } download {
                "Download errors.csv (the rejected rows as uploaded, with the reasons: fix and upload again)"
            } }
        }
        h2 { "Row verdicts" }
        form #filters method="get" action=(base) {
            label { "Outcome "
                select name="outcome" {
                    option value="" { "any" }
                    @for o in Outcome::ALL {
                        option value=(o.as_str()) selected[v.outcome == Some(o)] { (o.as_str()) }
                    }
                }
            }
            button #apply type="submit" { "Filter" }
        }
        table #verdicts {
            thead { tr {
                th { "Row" } th { "Outcome" } th { "Record key" } th { "Salesforce id" } th { "Code" }
                th { "Field" } th { "Severity" } th { "Message" } th { "Remedy" }
            } }
            tbody {
                @for r in v.rows {
                    @let span = r.problems.len().max(1);
                    tr data-row=(r.row) {
                        td rowspan=(span) { (r.row) }
                        td rowspan=(span) { span class={ "outcome " (r.outcome.as_str()) } { (r.outcome.as_str()) }
                            @if let Some(d) = r.duplicate_of { " (of row " (d) ")" } }
                        td rowspan=(span) { (r.record_key.as_deref().unwrap_or_default()) }
                        td rowspan=(span) { (r.salesforce_id.as_deref().unwrap_or_default()) }
                        @match r.problems.first() {
                            Some(p) => { td.code { (p.code) } td.field { (p.field) } td.severity { (p.severity) }
                                         td.message { (p.message) } td.remedy { (p.remedy) } }
                            None => { td {} td {} td {} td {} td {} }
                        }
                    }
                    @for p in r.problems.iter().skip(1) {
                        tr { td.code { (p.code) } td.field { (p.field) } td.severity { (p.severity) }
                             td.message { (p.message) } td.remedy { (p.remedy) } }
                    }
                }
            }
        }
        @if let Some(next) = next { nav.pager { a #next href=(next) { "More rows →" } } }
    };
    layout("Upload", Some(session), body)
}
