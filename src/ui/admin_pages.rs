//! The admin views' HTML (maud, escaped by construction).

use maud::{Markup, html};

use super::pages::layout;
use super::session::Session;
use crate::lifecycle::timestamp;
use crate::records::{AuditEntry, LastRun};
use crate::vault::AuditEntry as VaultEntry;

/// What one bank's mappings are.
pub struct BankMapping {
    pub code: String,
    pub name: String,
    pub variant: Option<String>,
    pub request_object: Option<String>,
    pub request_fields: Vec<String>,
    pub record_object: Option<String>,
    pub record_columns: Vec<String>,
}

pub struct Mappings {
    pub version: String,
    pub banks: Vec<BankMapping>,
}

pub fn mappings(session: &Session, v: &Mappings) -> Markup {
    let body = html! {
        p { "The mapping set in use is version " code #mapping-version { (v.version) }
            " (a hash of every mapping file; each message records the version it was mapped with). A SIGHUP "
            "reloads the files; a set with problems is refused and this one stays." }
        table #mappings {
            thead { tr { th { "Bank" } th { "Variant" } th { "Report requests" } th { "Request fields" }
                         th { "Credit records" } th { "Feed columns" } } }
            tbody {
                @for b in &v.banks {
                    tr {
                        td { (b.name) " (" (b.code) ")" }
                        td { (b.variant.as_deref().unwrap_or("default")) }
                        td { (b.request_object.as_deref().unwrap_or("—")) }
                        td.fields { (b.request_fields.join(", ")) }
                        td { (b.record_object.as_deref().unwrap_or("—")) }
                        td.fields { (b.record_columns.join(", ")) }
                    }
                }
            }
        }
    };
    layout("Mappings", Some(session), body)
}

pub fn gatekeeper(session: &Session, last: Option<&LastRun>, audit: &[AuditEntry]) -> Markup {
    let body = html! {
        h2 { "Last run" }
        @match last {
            None => p #last-run { "No run since the daemon started (runs are on the schedule of "
                code { "[records] gatekeeper_interval_hours" } " and on demand: "
                code { "creditlink records gatekeeper" } "). The audit trail below is kept across restarts." }
            Some(run) => {
                dl #last-run {
                    dt { "Finished" } dd { (timestamp(run.finished_at)) }
                    dt { "As of" } dd { (run.report.as_of.to_string()) }
                    dt { "Kind" } dd { @if run.dry_run { "dry run (nothing changed)" } @else { "enforcing" } }
                    dt { "Asked by" } dd { (run.actor) }
                    dt { "Counts" } dd #gatekeeper-counts {
                        (run.report.counts.terminated) " terminated, " (run.report.counts.warned) " warned, "
                        (run.report.counts.skipped_dispute) " skipped (in dispute), "
                        (run.report.counts.skipped_closed) " skipped (closed)"
                    }
                }
                table #gatekeeper-records {
                    thead { tr { th { "Record key" } th { "Furnisher" } th { "Last reported" } th { "Action" } th { "Reason" } } }
                    tbody {
                        @for r in &run.report.records {
                            tr {
                                td { (r.record_key.as_deref().unwrap_or_default()) }
                                td { (r.furnisher.as_deref().unwrap_or_default()) }
                                td { (r.last_reported.map(|d| d.to_string()).unwrap_or_default()) }
                                td { (r.action) }
                                td { (r.reason) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Audit trail (newest first)" }
        table #records-audit {
            thead { tr { th { "At" } th { "Action" } th { "Record" } th { "Record key" } th { "Furnisher" }
                         th { "Last reported" } th { "Actor" } th { "Reason" } } }
            tbody {
                @for e in audit {
                    tr {
                        td { (timestamp(e.at)) } td { (e.action) } td { (e.record_id) }
                        td { (e.record_key.as_deref().unwrap_or_default()) }
                        td { (e.furnisher.as_deref().unwrap_or_default()) }
                        td { (e.last_reported.map(|d| d.to_string()).unwrap_or_default()) }
                        td { (e.actor) } td { (e.reason) }
                    }
                }
            }
        }
    };
    layout("Stale-record gatekeeper", Some(session), body)
}

pub fn vault_audit(session: &Session, enabled: bool, entries: &[(VaultEntry, String)]) -> Markup {
    let body = html! {
        @if !enabled {
            p { "This daemon has no report vault (no " code { "[inbound] vault_keys" } ")." }
        }
        p { "Every access to a stored report — stored, read (granted or refused), re-encrypted — newest first; "
            "the log itself is append-only on disk." }
        table #vault-audit {
            thead { tr { th { "At" } th { "Actor" } th { "Report" } th { "Action" } th { "Outcome" } th { "SHA-256" } } }
            tbody {
                @for (e, who) in entries {
                    tr {
                        td { (timestamp(e.ts)) } td { (who) } td { (e.report_id) }
                        td { (format!("{:?}", e.action).to_lowercase()) } td { (e.outcome) }
                        td.hash { (e.sha256.as_deref().unwrap_or_default()) }
                    }
                }
            }
        }
    };
    layout("Vault audit log", Some(session), body)
}
