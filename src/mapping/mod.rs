//! Field mappings: the one place that knows how bank fields become Salesforce fields and back.
//!
//! Admins describe each object and direction in a commented TOML file under `mappings/` (see the
//! shipped files: they double as the format's documentation). [`MappingSet::load_dir`] reads every
//! file once, compiles regexes and formats, and reports *every* problem with file and line, so
//! `creditlink check-config` and a SIGHUP reload can refuse a bad set as a whole.
//!
//! **Architecture Invariant:** after loading, this module does no I/O. [`MappingSet::map_inbound`]
//! and [`MappingSet::map_outbound`] are pure functions of the compiled set, the input and the
//! [`MapContext`], so the same body always maps the same way under the same
//! [`MappingSet::version`], which is recorded on every outbox message.
//!
//! Layout: `spec` is the raw file format (serde + unknown-key walk), `compile` turns it into
//! checked rules, `convert` holds types and transforms, `apply` runs a compiled mapping.
//!
//! Directory layout the loader expects:
//! - `mappings/<kind>.<variant>.toml`: the default mappings; `<kind>` is the part of the file name
//!   before the first dot (`report_request`, `credit_record`), the rest only names the variant.
//! - `mappings/banks/<BANK_CODE>/<same file name>`: replaces the default file of that name for that
//!   bank; a new file name there adds a mapping for that bank only.

mod apply;
mod compile;
mod convert;
mod field;
mod spec;

pub(crate) use convert::parse_date;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use compile::{Direction, Mapping};

/// A checked, ready-to-apply set of mappings (the defaults plus every bank's variants).
///
/// Cheap to share: hold it in an `ArcSwap` and swap a whole new set on reload.
#[derive(Clone)]
pub struct MappingSet {
    /// Default mappings keyed by file name (`report_request.person.toml`).
    defaults: BTreeMap<String, Arc<Mapping>>,
    /// Per-bank files keyed by bank code, then file name; they shadow defaults of the same name.
    banks: BTreeMap<String, BTreeMap<String, Arc<Mapping>>>,
    /// What each bank sees (its files shadowing defaults, [`compile::effective`]) and, under `None`, what a
    /// bank without files sees: merged once at load instead of on every request.
    views: BTreeMap<Option<String>, Vec<Arc<Mapping>>>,
    version: String,
}

/// One problem found while loading a mapping directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when it is known.
    pub line: Option<usize>,
    pub message: String,
}

/// Per-request facts that mappings may read through `$request_key`, `$bank_account_id`,
/// `$bank_code` and `$received_at`, plus how the body was parsed.
#[derive(Debug, Clone)]
pub struct MapContext<'a> {
    pub request_key: &'a str,
    pub bank_account_id: &'a str,
    /// Selects the bank's variant mappings (`mappings/banks/<code>/`), when it has any.
    pub bank_code: Option<&'a str>,
    pub received_at: DateTime<Utc>,
    /// True when the body came from XML: every scalar arrives as a string, so integers, decimals
    /// and booleans are parsed from text instead of being rejected as the wrong JSON type.
    pub lenient_scalars: bool,
}

/// The Salesforce record an inbound body maps to.
#[derive(Clone, PartialEq)]
pub struct MappedRecord {
    pub object: String,
    /// Name of the External ID field used to upsert.
    pub upsert_key: String,
    pub upsert_value: String,
    /// Every mapped field, the upsert key included: an sObject Collections upsert sends the key
    /// inside each record.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// `name` of the mapping that produced this record.
    pub mapping: String,
    pub mapping_version: String,
}

/// Field values hold personal data (national ids), so `Debug` lists field names only.
impl fmt::Debug for MappedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedRecord")
            .field("object", &self.object)
            .field("upsert_key", &self.upsert_key)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .field("mapping", &self.mapping)
            .field("mapping_version", &self.mapping_version)
            .finish_non_exhaustive()
    }
}

/// A body field an inbound mapping reads; see [`MappingSet::inbound_fields`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundField {
    /// The bank's name (dotted path) of the field.
    pub from: String,
    /// The Salesforce field it fills.
    pub to: String,
    pub required: bool,
}

/// One problem with one field of an input body. Details never carry a sensitive value in full.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldProblem {
    /// Source-side path: the bank's dotted path inbound, the Salesforce field name outbound;
    /// empty for the body as a whole.
    pub field: String,
    /// One of `required`, `invalid_type`, `invalid_format`, `unknown_value`, `pattern_mismatch`,
    /// `too_short`, `too_long`, `out_of_range`, `not_allowed`, `unknown_field`.
    pub code: &'static str,
    pub detail: String,
}

/// Why a mapping directory could not be loaded; wraps every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in mappings; first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
pub struct MappingError(pub Vec<MappingProblem>);

impl MappingError {
    /// A broken mapping set never heals by retrying: an admin has to fix the files.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl From<Vec<MappingProblem>> for MappingError {
    fn from(problems: Vec<MappingProblem>) -> Self {
        Self(problems)
    }
}

impl fmt::Display for MappingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.field, self.code, self.detail)
    }
}

impl MappingSet {
    /// Reads and checks every `*.toml` under `dir` (and `dir/banks/<CODE>/`). Returns every problem
    /// found, each with its file and line, or a set that is ready to apply.
    pub fn load_dir(dir: &Path) -> Result<MappingSet, Vec<MappingProblem>> {
        compile::load_dir(dir)
    }

    /// Stable hash of all mapping files (sha256, first 16 hex chars); equal contents, equal version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Maps a bank body of `kind` (`report_request`, `credit_record`) to a Salesforce record,
    /// listing every problem at once when it cannot.
    pub fn map_inbound(
        &self,
        kind: &str,
        input: &serde_json::Value,
        ctx: &MapContext,
    ) -> Result<MappedRecord, Vec<FieldProblem>> {
        let candidates = self.effective(kind, Direction::Inbound, ctx.bank_code);
        let mapping = apply::select(&candidates, input, kind)?;
        apply::map_inbound(mapping, input, ctx, &self.version)
    }

    /// The XML root element when `kind` accepts XML bodies from this bank, `None` when it does not.
    pub fn accepts_xml(&self, kind: &str, bank_code: Option<&str>) -> Option<&str> {
        self.effective(kind, Direction::Inbound, bank_code)
            .into_iter()
            .find_map(|m| m.xml_root.as_deref())
    }

    /// Whether `kind` accepts JSON bodies from this bank (true for every shipped mapping).
    pub fn accepts_json(&self, kind: &str, bank_code: Option<&str>) -> bool {
        self.effective(kind, Direction::Inbound, bank_code)
            .iter()
            .any(|m| m.accepts_json)
    }

    /// Maps a Salesforce record of `kind` to the body sent to the bank (e.g. a status event).
    pub fn map_outbound(
        &self,
        kind: &str,
        record: &serde_json::Map<String, serde_json::Value>,
        bank_code: Option<&str>,
    ) -> Result<serde_json::Value, Vec<FieldProblem>> {
        self.map_outbound_value(kind, &serde_json::Value::Object(record.clone()), bank_code)
    }

    /// [`MappingSet::map_outbound`] of a record already held as a JSON value (not copied; anything but an
    /// object is refused as the body's type).
    pub fn map_outbound_value(
        &self,
        kind: &str,
        record: &serde_json::Value,
        bank_code: Option<&str>,
    ) -> Result<serde_json::Value, Vec<FieldProblem>> {
        let candidates = self.effective(kind, Direction::Outbound, bank_code);
        let mapping = apply::select(&candidates, record, kind)?;
        apply::map_outbound(mapping, record)
    }

    /// What the outbound mappings of `kind` read from Salesforce, across the defaults and every bank's variants:
    /// each mapping's object with its `(Salesforce field, bank path)` pairs. A reader selects these fields so
    /// that [`MappingSet::map_outbound`] sees everything it maps, and finds a role's field by its bank path.
    pub fn outbound_reads(&self, kind: &str) -> Vec<(String, Vec<(String, String)>)> {
        self.defaults
            .values()
            .chain(self.banks.values().flat_map(BTreeMap::values))
            .filter(|m| m.kind == kind && m.direction == Direction::Outbound)
            .map(|m| {
                let fields = m.fields.iter().map(|f| (f.from.clone(), f.to.clone()));
                (m.object.clone(), fields.collect())
            })
            .collect()
    }

    /// The Salesforce object and field the default inbound mappings of `kind` fill from the context variable
    /// `var` (`$request_key`, `$bank_account_id`, ...), e.g. the field that names a request's bank.
    pub fn inbound_context_target(&self, kind: &str, var: &str) -> Option<(String, String)> {
        self.effective(kind, Direction::Inbound, None)
            .into_iter()
            .find_map(|m| {
                m.fields
                    .iter()
                    .find(|f| f.from == var)
                    .map(|f| (m.object.clone(), f.to.clone()))
            })
    }

    /// The Salesforce object the inbound mappings of `kind` write for this bank (the first, when several
    /// variants exist; report-request variants all write one object).
    pub fn object(&self, kind: &str, bank_code: Option<&str>) -> Option<&str> {
        self.effective(kind, Direction::Inbound, bank_code)
            .first()
            .map(|m| m.object.as_str())
    }

    /// The body fields (not context variables) the inbound mappings of `kind` read for this bank, each with
    /// the Salesforce field it fills and whether it is required, in file order and without repeats: what a
    /// data feed's header may name (the feeds module checks a CSV header against it).
    pub fn inbound_fields(&self, kind: &str, bank_code: Option<&str>) -> Vec<InboundField> {
        let mut out: Vec<InboundField> = Vec::new();
        for m in self.effective(kind, Direction::Inbound, bank_code) {
            for f in &m.fields {
                if matches!(f.source, field::Source::Path(_))
                    && !out.iter().any(|o| o.from == f.from)
                {
                    out.push(InboundField {
                        from: f.from.clone(),
                        to: f.to.clone(),
                        required: f.required && f.default.is_none(),
                    });
                }
            }
        }
        out
    }

    /// Names of every mapping in the set with its source file, for `check-config` listings.
    pub fn describe(&self) -> Vec<(String, PathBuf)> {
        self.defaults
            .values()
            .chain(self.banks.values().flat_map(BTreeMap::values))
            .map(|m| (m.name.clone(), m.file.clone()))
            .collect()
    }

    /// The mappings of one kind and direction as a bank sees them, in file-name order.
    fn effective(&self, kind: &str, direction: Direction, bank: Option<&str>) -> Vec<&Mapping> {
        let view = bank
            .and_then(|b| self.views.get(&Some(b.to_owned())))
            .or_else(|| self.views.get(&None));
        view.into_iter()
            .flatten()
            .map(|m| &**m)
            .filter(|m| m.kind == kind && m.direction == direction)
            .collect()
    }
}
