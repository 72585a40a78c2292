//! Loading: reads a mapping directory, checks every file and compiles it into [`Mapping`]s.
//!
//! The loader keeps going after a problem so one `check-config` run lists all of them. Checks per
//! file: TOML syntax, unknown keys, key types, field types vs. their options and defaults,
//! transforms and regexes, date formats, duplicate targets, the upsert key. Checks per group (the
//! mappings of one kind and direction as one bank sees them): at most one mapping without `when`,
//! no two with the same `when`, one XML root.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::DeTable;

use super::convert::Target;
use super::field::{FieldRule, Source, compile_field, parse_path, toml_to_json};
use super::spec::{RawMapping, line_of, unknown_keys};
use super::{MappingProblem, MappingSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Bank → Salesforce.
    Inbound,
    /// Salesforce → bank.
    Outbound,
}

#[derive(Debug, Clone)]
pub(crate) struct When {
    pub field: String,
    pub path: Vec<String>,
    pub equals: String,
}

/// One compiled mapping file.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub name: String,
    pub file: PathBuf,
    pub kind: String,
    pub direction: Direction,
    pub object: String,
    pub upsert_key: Option<String>,
    pub accepts_json: bool,
    pub xml_root: Option<String>,
    pub reject_unknown: bool,
    pub when: Option<When>,
    when_line: Option<usize>,
    pub constants: Vec<(String, Value)>,
    pub fields: Vec<FieldRule>,
}

pub(crate) fn load_dir(dir: &Path) -> Result<MappingSet, Vec<MappingProblem>> {
    let mut problems = Vec::new();
    let mut hasher = Sha256::new();
    let mut defaults = BTreeMap::new();
    let mut banks: BTreeMap<String, BTreeMap<String, Arc<Mapping>>> = BTreeMap::new();

    for path in toml_files(dir, &mut problems) {
        hasher.update(
            path.strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update([0]);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                problems.push(problem(&path, None, format!("cannot read file: {e}")));
                continue;
            }
        };
        hasher.update(text.as_bytes());
        hasher.update([0]);
        let Some(mapping) = compile_file(&path, &text, &mut problems) else {
            continue;
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match bank_code(dir, &path) {
            Some(code) => banks
                .entry(code)
                .or_default()
                .insert(file_name, Arc::new(mapping)),
            None => defaults.insert(file_name, Arc::new(mapping)),
        };
    }
    if defaults.is_empty() && banks.is_empty() && problems.is_empty() {
        problems.push(problem(dir, None, "no mapping files (*.toml) found".into()));
    }

    check_groups(&effective(&defaults, None), &mut problems);
    for files in banks.values() {
        let before = problems.len();
        check_groups(&effective(&defaults, Some(files)), &mut problems);
        // A default-only conflict was already reported once; keep those involving bank files.
        let bank_files: Vec<&PathBuf> = files.values().map(|m| &m.file).collect();
        let mut i = before;
        while i < problems.len() {
            if bank_files.contains(&&problems[i].file) {
                i += 1
            } else {
                problems.remove(i);
            }
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    let version = hex::encode(hasher.finalize())[..16].to_string();
    let mut views = BTreeMap::new();
    views.insert(None, effective_arcs(&defaults, None));
    for (code, files) in &banks {
        views.insert(Some(code.clone()), effective_arcs(&defaults, Some(files)));
    }
    Ok(MappingSet {
        defaults,
        banks,
        views,
        version,
    })
}

/// The mappings a bank sees, in file-name order: its own files shadow defaults of the same name.
pub(crate) fn effective<'a>(
    defaults: &'a BTreeMap<String, Arc<Mapping>>,
    bank: Option<&'a BTreeMap<String, Arc<Mapping>>>,
) -> Vec<&'a Mapping> {
    merged(defaults, bank).into_iter().map(|m| &**m).collect()
}

/// [`effective`], as shared handles.
fn effective_arcs(
    defaults: &BTreeMap<String, Arc<Mapping>>,
    bank: Option<&BTreeMap<String, Arc<Mapping>>>,
) -> Vec<Arc<Mapping>> {
    merged(defaults, bank).into_iter().cloned().collect()
}

fn merged<'a>(
    defaults: &'a BTreeMap<String, Arc<Mapping>>,
    bank: Option<&'a BTreeMap<String, Arc<Mapping>>>,
) -> Vec<&'a Arc<Mapping>> {
    let mut merged: BTreeMap<&str, &Arc<Mapping>> =
        defaults.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for (name, mapping) in bank.into_iter().flatten() {
        merged.insert(name, mapping);
    }
    merged.into_values().collect()
}

/// `dir/*.toml` and `dir/banks/<CODE>/*.toml`, sorted so the version hash is stable.
fn toml_files(dir: &Path, problems: &mut Vec<MappingProblem>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in list_dir(dir, &mut out, problems) {
        if sub.file_name().is_some_and(|n| n == "banks") {
            for bank in list_dir(&sub, &mut Vec::new(), problems) {
                for extra in list_dir(&bank, &mut out, problems) {
                    problems.push(problem(
                        &extra,
                        None,
                        "unexpected directory inside a bank's mappings".into(),
                    ));
                }
            }
        } else {
            let message = "unexpected directory (per-bank files go under banks/<BANK_CODE>/)";
            problems.push(problem(&sub, None, message.into()));
        }
    }
    out.sort();
    out
}

/// Appends the `*.toml` files of `dir` to `files` (other files, like a README, are skipped) and
/// returns its subdirectories.
fn list_dir(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<MappingProblem>,
) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(problem(
                dir,
                None,
                format!("cannot read mapping directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut subdirs = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            subdirs.push(path);
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    subdirs.sort();
    subdirs
}

fn bank_code(dir: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir).ok()?;
    let mut parts = rel.components();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(first), Some(code), Some(_)) if first.as_os_str() == "banks" => {
            Some(code.as_os_str().to_string_lossy().into_owned())
        }
        _ => None,
    }
}

fn problem(file: &Path, line: Option<usize>, message: String) -> MappingProblem {
    MappingProblem {
        file: file.to_path_buf(),
        line,
        message,
    }
}

/// Collects problems for one file with line numbers resolved from byte spans.
pub(crate) struct FileProblems<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub found: &'a mut Vec<MappingProblem>,
}

impl FileProblems<'_> {
    pub(crate) fn at(&mut self, offset: usize, message: impl Into<String>) {
        let line = Some(line_of(self.text, offset));
        self.found.push(problem(self.path, line, message.into()));
    }
}

fn compile_file(path: &Path, text: &str, found: &mut Vec<MappingProblem>) -> Option<Mapping> {
    let mut p = FileProblems { path, text, found };
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            p.at(
                e.span().map_or(0, |s| s.start),
                format!("invalid TOML: {}", e.message()),
            );
            return None;
        }
    };
    for (offset, message) in unknown_keys(doc.get_ref()) {
        p.at(offset, message);
    }
    let raw: RawMapping = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            p.at(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            );
            return None;
        }
    };
    let before = p.found.len();
    let mapping = compile_mapping(raw, &mut p);
    (p.found.len() == before).then_some(mapping).flatten()
}

fn required_key(
    p: &mut FileProblems<'_>,
    value: Option<Spanned<String>>,
    key: &str,
) -> (String, usize) {
    match value {
        Some(v) => (v.get_ref().clone(), v.span().start),
        None => {
            p.at(0, format!("missing required key `{key}`"));
            (String::new(), 0)
        }
    }
}

fn compile_mapping(raw: RawMapping, p: &mut FileProblems<'_>) -> Option<Mapping> {
    let file_name = p
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = file_name.split('.').next().unwrap_or_default().to_string();
    let (name, _) = required_key(p, raw.name, "name");
    let (object, object_at) = required_key(p, raw.object, "object");
    let (direction_text, direction_at) = required_key(p, raw.direction, "direction");
    let direction = match direction_text.as_str() {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        "" => return None,
        other => {
            p.at(
                direction_at,
                format!("direction must be \"inbound\" or \"outbound\", not {other:?}"),
            );
            return None;
        }
    };

    let (accepts_json, accepts_xml) = match &raw.accepts {
        None => (true, false),
        Some(list) => {
            for format in list.get_ref() {
                if format != "json" && format != "xml" {
                    p.at(
                        list.span().start,
                        format!("accepts: unknown body format {format:?} (json, xml)"),
                    );
                }
            }
            let has = |f: &str| list.get_ref().iter().any(|x| x == f);
            (has("json"), has("xml"))
        }
    };
    let xml_root = raw.xml_root.map(|r| (r.span().start, r.into_inner()));
    match (&xml_root, accepts_xml) {
        (None, true) => p.at(
            raw.accepts.as_ref().map_or(0, |a| a.span().start),
            "accepts xml but `xml_root` is missing",
        ),
        (Some((at, _)), false) => p.at(*at, "`xml_root` is set but accepts does not list \"xml\""),
        _ => {}
    }

    let reject_unknown = match raw
        .unknown_fields
        .as_ref()
        .map(|u| (u.get_ref().as_str(), u.span().start))
    {
        None => direction == Direction::Inbound,
        Some(("reject", _)) => true,
        Some(("ignore", _)) => false,
        Some((other, at)) => {
            p.at(
                at,
                format!("unknown_fields must be \"reject\" or \"ignore\", not {other:?}"),
            );
            true
        }
    };

    let when_line = raw.when.as_ref().map(|w| line_of(p.text, w.span().start));
    let when = raw.when.and_then(|w| {
        let at = w.span().start;
        let w = w.into_inner();
        match parse_path(&w.field) {
            Some(path) => Some(When {
                field: w.field,
                path,
                equals: w.equals,
            }),
            None => {
                p.at(at, format!("when.field {:?} is not a dotted path", w.field));
                None
            }
        }
    });

    let mut targets: HashMap<String, usize> = HashMap::new();
    let mut claim = |p: &mut FileProblems<'_>, to: &str, at: usize| {
        let line = line_of(p.text, at);
        if let Some(first) = targets.insert(to.to_string(), line) {
            p.at(
                at,
                format!("duplicate target `{to}` (first mapped at line {first})"),
            );
        }
    };

    let mut constants = Vec::new();
    for (key, value) in raw.constants {
        claim(p, key.get_ref(), key.span().start);
        match toml_to_json(&value) {
            Some(v) => constants.push((key.into_inner(), v)),
            None => p.at(
                key.span().start,
                "constants must be strings, numbers or booleans",
            ),
        }
    }

    let target = if direction == Direction::Inbound {
        Target::Salesforce
    } else {
        Target::Bank
    };
    let mut fields = Vec::new();
    for raw_field in raw.field {
        let at = raw_field.span().start;
        if let Some(to) = &raw_field.get_ref().to {
            claim(p, to.get_ref(), to.span().start);
        }
        if let Some(rule) = compile_field(raw_field.into_inner(), at, direction, target, p) {
            fields.push(rule);
        }
    }

    let upsert_key = raw.upsert_key.map(Spanned::into_inner);
    if direction == Direction::Inbound {
        check_upsert_key(upsert_key.as_deref(), &fields, &constants, object_at, p);
    }

    Some(Mapping {
        name,
        file: p.path.to_path_buf(),
        kind,
        direction,
        object,
        upsert_key,
        accepts_json,
        xml_root: xml_root.map(|(_, root)| root),
        reject_unknown,
        when,
        when_line,
        constants,
        fields,
    })
}

fn check_upsert_key(
    key: Option<&str>,
    fields: &[FieldRule],
    constants: &[(String, Value)],
    at: usize,
    p: &mut FileProblems<'_>,
) {
    let Some(key) = key else {
        p.at(
            at,
            "inbound mappings need `upsert_key` (the External ID field to upsert on)",
        );
        return;
    };
    if constants.iter().any(|(to, _)| to == key) {
        return;
    }
    match fields.iter().find(|f| f.to == key) {
        None => p.at(at, format!("upsert_key `{key}` is not the target of any field")),
        Some(f) if !f.required && f.default.is_none() && !matches!(f.source, Source::Context(_)) => p.at(
            at,
            format!("the field mapped to upsert_key `{key}` must be required, have a default or come from the context"),
        ),
        Some(_) => {}
    }
}

/// Conflicts among the mappings of one kind and direction that one bank would see.
fn check_groups(mappings: &[&Mapping], problems: &mut Vec<MappingProblem>) {
    let mut groups: BTreeMap<(&str, bool), Vec<&Mapping>> = BTreeMap::new();
    for m in mappings {
        groups
            .entry((m.kind.as_str(), m.direction == Direction::Inbound))
            .or_default()
            .push(m);
    }
    for group in groups.values() {
        for (i, later) in group.iter().enumerate() {
            for earlier in &group[..i] {
                let clash = match (&earlier.when, &later.when) {
                    (None, None) => {
                        Some("both have no `when`, so neither can be selected".to_string())
                    }
                    (Some(a), Some(b)) if a.field == b.field && a.equals == b.equals => {
                        Some(format!("both select {} = {:?}", a.field, a.equals))
                    }
                    _ => None,
                };
                if let Some(why) = clash {
                    problems.push(problem(
                        &later.file,
                        later.when_line,
                        format!("conflicting `when` with {}: {why}", earlier.file.display()),
                    ));
                }
                if let (Some(a), Some(b)) = (&earlier.xml_root, &later.xml_root)
                    && a != b
                {
                    problems.push(problem(
                        &later.file,
                        None,
                        format!(
                            "xml_root {b:?} differs from {a:?} in {} (one kind, one XML root)",
                            earlier.file.display()
                        ),
                    ));
                }
            }
        }
    }
}
