//! Evaluation over stored records: filter, order, page, project.
//!
//! Stored values are read leniently (a number stored as a string in a number field still
//! compares as a number); a value that cannot be read as its field's kind behaves as null.

use std::cmp::Ordering;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::lexer::{CmpOp, parse_datetime};
use super::parser::RelativeDate;
use super::resolve::{Filter, Operand, OrderKey, Predicate, Test};
use super::{Query, Selection, SoqlError, ValueKind};

type Record = Map<String, Value>;

/// Filter, order, then apply `OFFSET` and `LIMIT` to `records` (each with a key the caller knows it by),
/// returning the keys of the page's rows in order, or their count for `COUNT()`. Records are read by
/// reference; nothing is cloned. `presorted` says `records` already come in the query's order (an ordered
/// index), so no sort is needed and reading stops once the page is full.
pub(super) fn select<'r, K>(
    query: &Query,
    records: impl Iterator<Item = (K, &'r Record)>,
    now: DateTime<Utc>,
    presorted: bool,
) -> Result<Selected<K>, SoqlError> {
    let today = now.date_naive();
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(usize::MAX);
    let unsorted = query.order.is_empty() || presorted;
    let enough = if unsorted {
        offset.saturating_add(limit)
    } else {
        usize::MAX
    };
    let mut matching = Vec::new();
    for (key, record) in records {
        if matching.len() >= enough {
            break;
        }
        let keep = match &query.filter {
            Some(filter) => matches(filter, record, today)?,
            None => true,
        };
        if keep {
            matching.push((key, record));
        }
    }
    if !unsorted {
        // Stable sort: records equal on every key keep their stored order.
        matching.sort_by(|(_, a), (_, b)| compare_records(&query.order, a, b));
    }
    let page = matching.into_iter().skip(offset).take(limit);
    Ok(match &query.selection {
        Selection::Count => Selected::Count(page.count()),
        Selection::Fields(_) => Selected::Keys(page.map(|(key, _)| key).collect()),
    })
}

/// What [`select`] found.
#[derive(Debug, PartialEq)]
pub enum Selected<K> {
    Count(usize),
    Keys(Vec<K>),
}

/// A row of the result: the selected fields of `record` under their canonical names (null where absent).
pub(super) fn project(query: &Query, record: &Record) -> Record {
    query
        .selected_fields()
        .iter()
        .map(|f| (f.clone(), lookup(record, f).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// A stored value read as its field's kind.
#[derive(Debug, PartialEq)]
enum Typed {
    Text(String),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

fn matches(filter: &Filter, record: &Record, today: NaiveDate) -> Result<bool, SoqlError> {
    Ok(match filter {
        Filter::And(terms) => {
            for term in terms {
                if !matches(term, record, today)? {
                    return Ok(false);
                }
            }
            true
        }
        Filter::Or(terms) => {
            for term in terms {
                if matches(term, record, today)? {
                    return Ok(true);
                }
            }
            false
        }
        Filter::Not(inner) => !matches(inner, record, today)?,
        Filter::Pred(predicate) => test(predicate, record, today)?,
    })
}

fn test(predicate: &Predicate, record: &Record, today: NaiveDate) -> Result<bool, SoqlError> {
    let value = lookup(record, &predicate.field).and_then(|v| typed(v, predicate.kind));
    Ok(match &predicate.test {
        Test::Cmp(op, operand) => compare(value.as_ref(), *op, operand, today)?,
        Test::In { negated, values } => {
            let mut found = false;
            for operand in values {
                if compare(value.as_ref(), CmpOp::Eq, operand, today)? {
                    found = true;
                    break;
                }
            }
            found != *negated
        }
        Test::Like(pattern) => matches!(&value, Some(Typed::Text(s)) if pattern.is_match(s)),
    })
}

/// `value op operand`. Null equals only null; `!=` holds between null and any non-null.
fn compare(
    value: Option<&Typed>,
    op: CmpOp,
    operand: &Operand,
    today: NaiveDate,
) -> Result<bool, SoqlError> {
    let (value, operand) = match (value, operand) {
        (None, Operand::Null) => return Ok(op == CmpOp::Eq),
        (Some(_), Operand::Null) | (None, _) => return Ok(op == CmpOp::Ne),
        (Some(value), operand) => (value, operand),
    };
    if let Operand::Relative(relative) = operand {
        return in_relative_range(value, op, *relative, today);
    }
    let ordering = match (value, operand) {
        (Typed::Text(a), Operand::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Typed::Number(a), Operand::Number(b)) => a.partial_cmp(b),
        (Typed::Bool(a), Operand::Bool(b)) => Some(a.cmp(b)),
        (Typed::Date(a), Operand::Date(b)) => Some(a.cmp(b)),
        (Typed::Instant(a), Operand::Instant(b)) => Some(a.cmp(b)),
        _ => None,
    };
    Ok(ordering.is_some_and(|ordering| holds(op, ordering)))
}

fn holds(op: CmpOp, ordering: Ordering) -> bool {
    match op {
        CmpOp::Eq => ordering.is_eq(),
        CmpOp::Ne => ordering.is_ne(),
        CmpOp::Lt => ordering.is_lt(),
        CmpOp::Le => ordering.is_le(),
        CmpOp::Gt => ordering.is_gt(),
        CmpOp::Ge => ordering.is_ge(),
    }
}

/// A relative literal is a range of whole UTC days `[start, end)`: `=` means inside it, `<`
/// before its start, `>` after its end, `<=`/`>=` include the range.
fn in_relative_range(
    value: &Typed,
    op: CmpOp,
    relative: RelativeDate,
    today: NaiveDate,
) -> Result<bool, SoqlError> {
    let (start, end) = day_range(relative, today).ok_or_else(|| {
        SoqlError::Malformed(format!("date literal {relative:?} is out of range"))
    })?;
    let (before_start, before_end) = match value {
        Typed::Date(d) => (*d < start, *d < end),
        Typed::Instant(t) => {
            let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
            (*t < midnight(start), *t < midnight(end))
        }
        _ => return Ok(false),
    };
    let inside = !before_start && before_end;
    Ok(match op {
        CmpOp::Eq => inside,
        CmpOp::Ne => !inside,
        CmpOp::Lt => before_start,
        CmpOp::Le => before_end,
        CmpOp::Gt => !before_end,
        CmpOp::Ge => !before_start,
    })
}

fn day_range(relative: RelativeDate, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let tomorrow = today.checked_add_days(Days::new(1))?;
    Some(match relative {
        RelativeDate::Today => (today, tomorrow),
        RelativeDate::Yesterday => (today.checked_sub_days(Days::new(1))?, today),
        RelativeDate::Tomorrow => (tomorrow, tomorrow.checked_add_days(Days::new(1))?),
        RelativeDate::LastNDays(n) => (today.checked_sub_days(Days::new(n.into()))?, tomorrow),
        RelativeDate::NextNDays(n) => (tomorrow, tomorrow.checked_add_days(Days::new(n.into()))?),
    })
}

fn compare_records(keys: &[OrderKey], a: &Record, b: &Record) -> Ordering {
    for key in keys {
        let a = lookup(a, &key.field).and_then(|v| typed(v, key.kind));
        let b = lookup(b, &key.field).and_then(|v| typed(v, key.kind));
        let ordering = match (&a, &b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) if key.nulls_first => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) if key.nulls_first => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => {
                let ordering = compare_typed(a, b);
                if key.descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            }
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
    Ordering::Equal
}

fn compare_typed(a: &Typed, b: &Typed) -> Ordering {
    match (a, b) {
        (Typed::Text(a), Typed::Text(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
        (Typed::Number(a), Typed::Number(b)) => a.total_cmp(b),
        (Typed::Bool(a), Typed::Bool(b)) => a.cmp(b),
        (Typed::Date(a), Typed::Date(b)) => a.cmp(b),
        (Typed::Instant(a), Typed::Instant(b)) => a.cmp(b),
        _ => Ordering::Equal,
    }
}

/// The stored value of a field: under its canonical name, or failing that under any casing.
pub(super) fn lookup<'r>(record: &'r Record, field: &str) -> Option<&'r Value> {
    record
        .get(field)
        .or_else(|| {
            record
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(field))
                .map(|(_, value)| value)
        })
        .filter(|value| !value.is_null())
}

fn typed(value: &Value, kind: ValueKind) -> Option<Typed> {
    match (kind, value) {
        (ValueKind::Text, Value::String(s)) => Some(Typed::Text(s.clone())),
        (ValueKind::Text, Value::Number(n)) => Some(Typed::Text(n.to_string())),
        (ValueKind::Text, Value::Bool(b)) => Some(Typed::Text(b.to_string())),
        (ValueKind::Number, Value::Number(n)) => n.as_f64().map(Typed::Number),
        (ValueKind::Number, Value::String(s)) => s.trim().parse().ok().map(Typed::Number),
        (ValueKind::Boolean, Value::Bool(b)) => Some(Typed::Bool(*b)),
        (ValueKind::Boolean, Value::String(s)) => s.parse().ok().map(Typed::Bool),
        (ValueKind::Date, Value::String(s)) => {
            // Tolerate a datetime stored in a date field: its date part is the date.
            let date = s.get(..10).unwrap_or(s);
            NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .ok()
                .map(Typed::Date)
        }
        (ValueKind::DateTime, Value::String(s)) => parse_datetime(s).map(Typed::Instant),
        _ => None,
    }
}
