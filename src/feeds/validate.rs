//! One row's validation: the bank's `credit_record` mapping (types, formats, required columns, picklists,
//! ranges), then the feed's cross-column rules, then the record key. Pure: the same row, mapping set and
//! receipt time always give the same verdict, which is what lets a restarted upload re-validate its spool.
//!
//! Problems are translated to the reason-code registry here; mapping details are not passed on (they may
//! quote values, and values are personal data).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::reasons::{self as r, RowProblem};
use crate::mapping::{FieldProblem, InboundField, MapContext, MappingSet};
use crate::records::{record_key, rekey};

/// The mapping kind of a feed row.
pub const KIND: &str = "credit_record";

/// Largest plausible balance of one tradeline.
const MAX_BALANCE: i64 = 10_000_000_000;

/// A row that passed validation.
#[derive(Debug, Clone)]
pub struct ValidRow {
    pub record: Map<String, Value>,
    pub record_key: String,
    pub as_of: NaiveDate,
    pub warnings: Vec<RowProblem>,
    /// The record key of the tradeline under its `previous_account_number`, when the row says the account
    /// number changed (the existing record is re-keyed, not duplicated).
    pub previous_key: Option<String>,
}

/// Validates rows of one upload.
pub struct Validator<'a> {
    mappings: &'a MappingSet,
    account_id: &'a str,
    bank_code: &'a str,
    received_at: DateTime<Utc>,
    columns: &'a [String],
    fields: Vec<InboundField>,
}

impl<'a> Validator<'a> {
    pub fn new(
        mappings: &'a MappingSet,
        account_id: &'a str,
        bank_code: &'a str,
        received_at: DateTime<Utc>,
        columns: &'a [String],
    ) -> Validator<'a> {
        Validator {
            mappings,
            account_id,
            bank_code,
            received_at,
            columns,
            fields: mappings.inbound_fields(KIND, Some(bank_code)),
        }
    }

    /// The Salesforce field a feed column fills.
    pub fn target(&self, column: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.from == column)
            .map(|f| f.to.as_str())
    }

    /// The trimmed cell of column `name` ("" when the upload has no such column).
    fn cell<'c>(&self, cells: &'c [String], name: &str) -> &'c str {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| cells.get(i))
            .map_or("", |s| s.trim())
    }

    pub fn check(&self, cells: &[String]) -> Result<ValidRow, Vec<RowProblem>> {
        let cell = |name: &str| self.cell(cells, name);
        let mut body = Map::new();
        for (column, value) in self.columns.iter().zip(cells) {
            if !value.trim().is_empty() {
                body.insert(column.clone(), Value::String(value.clone()));
            }
        }
        let ctx = MapContext {
            request_key: "rk_pending",
            bank_account_id: self.account_id,
            bank_code: Some(self.bank_code),
            received_at: self.received_at,
            lenient_scalars: true,
        };
        let mapped = self.mappings.map_inbound(KIND, &Value::Object(body), &ctx);
        let mut problems: Vec<RowProblem> = match &mapped {
            Ok(_) => Vec::new(),
            Err(found) => found.iter().map(translate).collect(),
        };
        problems.extend(self.cross_field(cells));
        // One problem per (code, field) is enough for a clerk.
        problems.dedup_by(|a, b| a.code == b.code && a.field == b.field);
        let record = match mapped {
            Ok(record) if problems.is_empty() => record,
            _ => return Err(problems),
        };
        let mut fields = record.fields;
        let product = self
            .target("product_type")
            .and_then(|t| fields.get(t))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let key = record_key(self.account_id, &product, cell("account_number"));
        fields.insert(record.upsert_key.clone(), Value::String(key.clone()));
        let mut warnings = Vec::new();
        if product == "Other" && !cell("product_type").eq_ignore_ascii_case("other") {
            warnings.push(RowProblem::new(r::PRODUCT_TYPE_OTHER, "product_type"));
        }
        if let (Some(balance), Some(limit)) =
            (decimal(cell("balance")), decimal(cell("credit_limit")))
            && balance > limit
        {
            warnings.push(RowProblem::new(r::BALANCE_OVER_LIMIT, "balance"));
        }
        let as_of = date(cell("as_of_date")).unwrap_or_default();
        let previous_key = rekey(
            self.account_id,
            &product,
            cell("previous_account_number"),
            cell("account_number"),
        )
        .map(|r| r.old_key);
        Ok(ValidRow {
            record: fields,
            record_key: key,
            as_of,
            warnings,
            previous_key,
        })
    }

    /// The feed's rules across columns (each only when the columns involved are readable: unreadable values
    /// already have their own problem).
    fn cross_field(&self, cells: &[String]) -> Vec<RowProblem> {
        let cell = |name: &str| self.cell(cells, name);
        let mut out = Vec::new();
        if let (Some(opened), Some(as_of)) = (date(cell("date_opened")), date(cell("as_of_date")))
            && opened > as_of
        {
            out.push(RowProblem::new(r::OPENED_AFTER_AS_OF, "date_opened"));
        }
        if decimal(cell("balance")).is_some_and(|b| b > Decimal::from(MAX_BALANCE)) {
            out.push(RowProblem::new(r::BALANCE_TOO_LARGE, "balance"));
        }
        match cell("subject_type").to_ascii_lowercase().as_str() {
            "person" if cell("national_id").is_empty() => {
                out.push(RowProblem::new(r::NATIONAL_ID_MISSING, "national_id"));
            }
            "company" => {
                if cell("registry_number").is_empty() {
                    out.push(RowProblem::new(
                        r::REGISTRY_NUMBER_MISSING,
                        "registry_number",
                    ));
                }
                if cell("company_name").is_empty() {
                    out.push(RowProblem::new(r::COMPANY_NAME_MISSING, "company_name"));
                }
            }
            _ => {}
        }
        out
    }
}

fn date(text: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%d-%m-%Y"]
        .iter()
        .find_map(|f| crate::mapping::parse_date(text, f))
}

fn decimal(text: &str) -> Option<Decimal> {
    text.parse().ok()
}

/// A mapping problem in the registry's words. The column's kind is read from its name for the default feed
/// (`*date*`, amounts); anything else gets the generic code.
fn translate(p: &FieldProblem) -> RowProblem {
    let field = p.field.as_str();
    let is_date = field.contains("date");
    let is_amount = matches!(field, "balance" | "credit_limit");
    let code = match p.code {
        "required" => r::MISSING_VALUE,
        "invalid_type" | "invalid_format" if is_date => r::INVALID_DATE,
        "invalid_type" | "invalid_format" if is_amount => r::INVALID_NUMBER,
        "invalid_type" if field == "in_dispute" => r::INVALID_CHOICE,
        "unknown_value" => r::INVALID_CHOICE,
        "too_long" => r::TOO_LONG,
        "out_of_range" if is_amount => r::NEGATIVE_AMOUNT,
        "in_future" => r::DATE_IN_FUTURE,
        "implausible_age" | "too_old" => r::INVALID_DATE,
        "invalid_characters" | "not_allowed" => r::FORBIDDEN_CHARACTERS,
        "unknown_field" => r::MALFORMED_ROW,
        _ => r::INVALID_FORMAT,
    };
    RowProblem::new(code, field)
}
