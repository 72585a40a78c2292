//! The sandbox's demo bank intranet page: what a member bank's own web app looks like with the widget in it.
//! The sandbox serves it from the demo bank receivers, i.e. from another origin than the daemon's, which is
//! the case the widget exists for. The request body is in the bank's own mapping's shape (Demo Bank B posts
//! its variant), prefilled the way a bank's loan application screen would.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, html};
use serde_json::{Value, json};

/// The page of demo bank `code` (`DBA` or `DBB`), loading the widget from `daemon_url`; consent is dated
/// `now` minus a minute (the mappings refuse future consents).
pub fn demo_page(daemon_url: &str, code: &str, name: &str, now: DateTime<Utc>) -> String {
    let reference = format!("LN-WIDGET-{code}");
    let request = demo_request(code, &reference, now - chrono::Duration::minutes(1));
    let daemon = daemon_url.trim_end_matches('/');
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (name) " · loan desk (demo intranet)" }
            }
            body {
                h1 { (name) " · loan desk" }
                p { "A demo of a bank's own intranet page, served from another origin than creditlink. "
                    "The button below is creditlink's widget: it logs you in at the bureau's Salesforce in a popup "
                    "and requests the report for this application." }
                p { "Application " strong #reference { (reference) } }
                creditlink-report-request #widget request=(request.to_string()) {}
                script src={ (daemon) "/ui/widget.js" } {}
            }
        }
    }
    .into_string()
}

/// A request body the bank's mapping accepts.
fn demo_request(code: &str, reference: &str, consent: DateTime<Utc>) -> Value {
    if code == "DBB" {
        json!({
            "loanReference": reference,
            "applicantKind": "P",
            "applicant": { "idNumber": "CW-1975061502", "givenName": "Jan", "familyName": "Janssen",
                           "birthDate": "15-06-1975" },
            "reason": "LOAN",
            "consentAt": consent.format("%d-%m-%Y %H:%M").to_string(),
        })
    } else {
        json!({
            "reference": reference,
            "subject": { "type": "person", "national_id": "CW-1980013101", "first_name": "Maria",
                         "last_name": "Martina", "date_of_birth": "1980-01-31" },
            "purpose": "loan_application",
            "consent": { "given_at": consent.format("%Y-%m-%dT%H:%M:%SZ").to_string() },
        })
    }
}
