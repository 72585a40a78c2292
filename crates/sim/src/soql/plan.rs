//! Which records a query must read: the access path the org's indexes can serve.
//!
//! Only the top-level `AND` terms of `WHERE` narrow the read (an `OR` or `NOT` could let any record through):
//! an `=` or positive `IN` of text literals on one field, or range comparisons of datetime literals on one
//! field. The org decides whether it has an index for that field; either way the full filter is still
//! evaluated on every record read, unless the plan says it is [`Access::Range::covered`] (the range is the
//! whole filter), so an index can only make a query faster, never change its answer.

use std::ops::Bound;

use chrono::{DateTime, Timelike, Utc};

use super::lexer::CmpOp;
use super::resolve::{Filter, Operand, Predicate, Test};
use super::{Query, ValueKind};

/// How to find the candidate records of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Access<'q> {
    /// Read every record of the object.
    Scan,
    /// `field = 'v'` or `field IN ('v', …)`: only records whose `field` equals one of `values` (as the org
    /// compares them: case-insensitively) can match.
    Equals {
        field: &'q str,
        values: Vec<&'q str>,
    },
    /// Comparisons of `field` with datetime literals: only records whose value lies within the bounds match.
    Range {
        field: &'q str,
        lower: Bound<DateTime<Utc>>,
        upper: Bound<DateTime<Utc>>,
        /// The range is the entire filter, so a record within the bounds matches without evaluating it. Bounds
        /// are always whole milliseconds (the stored precision; finer literals scan).
        covered: bool,
    },
}

impl Query {
    /// The access path of this query's `WHERE` clause.
    pub fn access(&self) -> Access<'_> {
        let terms: Vec<&Predicate> = match &self.filter {
            None => return Access::Scan,
            Some(Filter::Pred(p)) => vec![p],
            Some(Filter::And(terms)) => terms
                .iter()
                .filter_map(|t| match t {
                    Filter::Pred(p) => Some(p),
                    _ => None,
                })
                .collect(),
            Some(_) => return Access::Scan,
        };
        if let Some(access) = terms.iter().find_map(|p| equals(p)) {
            return access;
        }
        let Some(field) = terms
            .iter()
            .find(|p| range_bound(p).is_some())
            .map(|p| p.field.as_str())
        else {
            return Access::Scan;
        };
        let mut lower = Bound::Unbounded;
        let mut upper = Bound::Unbounded;
        let mut used = 0;
        let mut whole_millis = true;
        for p in terms.iter().filter(|p| p.field == field) {
            let Some((op, t)) = range_bound(p) else {
                continue;
            };
            used += 1;
            whole_millis &= t.nanosecond() % 1_000_000 == 0;
            match op {
                CmpOp::Gt => lower = tighter_lower(lower, Bound::Excluded(t)),
                CmpOp::Ge => lower = tighter_lower(lower, Bound::Included(t)),
                CmpOp::Lt => upper = tighter_upper(upper, Bound::Excluded(t)),
                CmpOp::Le => upper = tighter_upper(upper, Bound::Included(t)),
                CmpOp::Eq => {
                    lower = tighter_lower(lower, Bound::Included(t));
                    upper = tighter_upper(upper, Bound::Included(t));
                }
                CmpOp::Ne => unreachable!("range_bound refuses !="),
            }
        }
        if !whole_millis {
            // Stored datetimes have milliseconds; a finer literal cannot be turned into an exact bound.
            return Access::Scan;
        }
        let covered = match &self.filter {
            Some(Filter::Pred(_)) => true,
            Some(Filter::And(all)) => all.len() == used,
            _ => false,
        };
        Access::Range {
            field,
            lower,
            upper,
            covered,
        }
    }
}

fn equals(p: &Predicate) -> Option<Access<'_>> {
    if p.kind != ValueKind::Text {
        return None;
    }
    let values = match &p.test {
        Test::Cmp(CmpOp::Eq, Operand::Text(v)) => vec![v.as_str()],
        Test::In {
            negated: false,
            values,
        } => values
            .iter()
            .map(|v| match v {
                Operand::Text(v) => Some(v.as_str()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some(Access::Equals {
        field: &p.field,
        values,
    })
}

fn range_bound(p: &Predicate) -> Option<(CmpOp, DateTime<Utc>)> {
    match (&p.kind, &p.test) {
        (ValueKind::DateTime, Test::Cmp(op, Operand::Instant(t))) if *op != CmpOp::Ne => {
            Some((*op, *t))
        }
        _ => None,
    }
}

fn tighter_lower(a: Bound<DateTime<Utc>>, b: Bound<DateTime<Utc>>) -> Bound<DateTime<Utc>> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y))
            if x != y =>
        {
            if x > y {
                a
            } else {
                b
            }
        }
        (Bound::Excluded(x), _) | (_, Bound::Excluded(x)) => Bound::Excluded(x),
        (x, _) => x,
    }
}

fn tighter_upper(a: Bound<DateTime<Utc>>, b: Bound<DateTime<Utc>>) -> Bound<DateTime<Utc>> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y))
            if x != y =>
        {
            if x < y {
                a
            } else {
                b
            }
        }
        (Bound::Excluded(x), _) | (_, Bound::Excluded(x)) => Bound::Excluded(x),
        (x, _) => x,
    }
}
