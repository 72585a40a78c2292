//! The daily successes/failures chart: server-rendered SVG (no script, no chart library), one pair of bars
//! per day. A success is a completed request; a failure is a rejected or failed one; requests still open are
//! not counted. Colours come from the stylesheet's classes (no inline style under the CSP).

use chrono::{Duration, NaiveDate};
use maud::{Markup, html};

use super::history::Row;
use crate::lifecycle::Lifecycle;

/// Days shown.
pub const DAYS: i64 = 14;
const WIDTH: i64 = 560;
const HEIGHT: i64 = 160;
const BASE: i64 = 130;

/// Per-day `(day, successes, failures)` for the [`DAYS`] days ending at `last`.
pub fn daily(rows: &[Row], last: NaiveDate) -> Vec<(NaiveDate, u32, u32)> {
    let first = last - Duration::days(DAYS - 1);
    let mut days: Vec<(NaiveDate, u32, u32)> = (0..DAYS)
        .map(|i| (first + Duration::days(i), 0, 0))
        .collect();
    for r in rows {
        let day = r.created_at.date_naive();
        if day < first || day > last {
            continue;
        }
        let slot = &mut days[(day - first).num_days() as usize];
        if r.status == Lifecycle::Completed.as_str() {
            slot.1 += 1;
        } else if r.status == Lifecycle::Failed.as_str() || r.status == Lifecycle::Rejected.as_str()
        {
            slot.2 += 1;
        }
    }
    days
}

/// The SVG of [`daily`]'s counts.
pub fn svg(days: &[(NaiveDate, u32, u32)]) -> Markup {
    let max = days
        .iter()
        .map(|(_, s, f)| (*s).max(*f))
        .max()
        .unwrap_or(0)
        .max(1) as i64;
    let slot = WIDTH / days.len().max(1) as i64;
    let bar = (slot - 6) / 2;
    let height = |n: u32| (i64::from(n) * (BASE - 10)) / max;
    let total_ok: u32 = days.iter().map(|d| d.1).sum();
    let total_failed: u32 = days.iter().map(|d| d.2).sum();
    html! {
        svg #chart xmlns="http://www.w3.org/2000/svg" role="img" width=(WIDTH) height=(HEIGHT)
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) {
            title { "Completed and failed requests per day: " (total_ok) " completed, " (total_failed) " failed or rejected" }
            line class="axis" x1="0" y1=(BASE) x2=(WIDTH) y2=(BASE) {}
            @for (i, (day, ok, failed)) in days.iter().enumerate() {
                @let x = i as i64 * slot + 3;
                rect class="ok" x=(x) y=(BASE - height(*ok)) width=(bar) height=(height(*ok)) {
                    title { (day.to_string()) ": " (ok) " completed" }
                }
                rect class="failed" x=(x + bar) y=(BASE - height(*failed)) width=(bar) height=(height(*failed)) {
                    title { (day.to_string()) ": " (failed) " failed or rejected" }
                }
                @if i % 2 == 0 {
                    text class="day" x=(x) y=(BASE + 16) { (day.format("%m-%d").to_string()) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::MessageId;

    fn row(day: &str, status: &str) -> Row {
        Row {
            id: MessageId::new(),
            bank_code: "DBA".into(),
            created_at: format!("{day}T10:00:00Z").parse().unwrap(),
            reference: String::new(),
            status: status.into(),
            reason: None,
            salesforce_id: None,
            attempts: 1,
        }
    }

    #[test]
    fn days_count_completed_as_success_and_failed_or_rejected_as_failure() {
        let last = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let rows = [
            row("2026-12-01", "completed"),
            row("2026-12-01", "failed"),
            row("2026-12-01", "rejected"),
            row("2026-11-30", "in_progress"),
            row("2026-10-01", "completed"),
        ];
        let days = daily(&rows, last);
        assert_eq!(days.len(), DAYS as usize);
        assert_eq!(days.last(), Some(&(last, 1, 2)));
        assert_eq!(days[DAYS as usize - 2].1 + days[DAYS as usize - 2].2, 0);
        let svg = svg(&days).into_string();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("1 completed, 2 failed or rejected"));
    }
}
