//! The config as a tree of values that remember where they came from.
//!
//! `toml` gives us spans (byte ranges) for every key and value; we convert them to line and column once, so
//! later validation can point at `file:line:column`. Environment overrides are grafted onto the same tree with an
//! `Env` origin, which is why validation never needs to know which layer a value came from.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::problem::{Location, Problem};

/// Where one key or value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    File {
        line: usize,
        column: usize,
    },
    /// Set by an override variable; `raw` is the variable's text, used when a string is expected but the text
    /// also happened to parse as another TOML scalar (`api_version = 62.0`).
    Env {
        var: String,
        raw: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    String(String),
    /// `None` when the literal does not fit an `i64` (TOML's own limit).
    Integer(Option<i64>),
    Float(f64),
    /// No setting is a datetime yet: only the type is kept, for "expected X, found Y" messages.
    Boolean(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Table),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: Value,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_origin: Origin,
    pub node: Node,
}

/// A TOML table in source order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub entries: Vec<Entry>,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }
}

impl Value {
    /// The TOML type name used in "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// Turns origins into problem locations: knows the file and its line starts.
pub(crate) struct Source {
    path: PathBuf,
    line_starts: Vec<usize>,
    text: String,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path: path.to_path_buf(),
            line_starts,
            text,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |prefix| prefix.chars().count() + 1);
        (line, column)
    }

    pub fn origin(&self, span: std::ops::Range<usize>) -> Origin {
        let (line, column) = self.position(span.start);
        Origin::File { line, column }
    }

    pub fn location(&self, origin: &Origin) -> Location {
        match origin {
            Origin::File { line, column } => Location::File {
                path: self.path.clone(),
                line: Some(*line),
                column: Some(*column),
            },
            Origin::Env { var, .. } => Location::Env { var: var.clone() },
        }
    }

    pub fn problem(&self, origin: &Origin, message: impl Into<String>) -> Problem {
        Problem {
            location: self.location(origin),
            message: message.into(),
        }
    }
}

/// Converts a parsed document into our tree, computing positions through `source`.
pub(crate) fn from_document(doc: &DeTable<'_>, source: &Source) -> Table {
    convert_table(doc, &|span| source.origin(span))
}

fn convert_table(table: &DeTable<'_>, origin: &dyn Fn(std::ops::Range<usize>) -> Origin) -> Table {
    let mut entries: Vec<Entry> = table
        .iter()
        .map(|(key, value)| Entry {
            key: key.get_ref().to_string(),
            key_origin: origin(key.span()),
            node: convert_value(value.get_ref(), origin(value.span()), origin),
        })
        .collect();
    // `toml` keeps keys sorted; source order reads better in reports and keeps problems stable.
    entries.sort_by_key(|e| match e.key_origin {
        Origin::File { line, column } => (line, column),
        Origin::Env { .. } => (usize::MAX, 0),
    });
    Table { entries }
}

fn convert_value(
    value: &DeValue<'_>,
    at: Origin,
    origin: &dyn Fn(std::ops::Range<usize>) -> Origin,
) -> Node {
    let value = match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => Value::Integer(i64::from_str_radix(i.as_str(), i.radix()).ok()),
        DeValue::Float(f) => Value::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Boolean(*b),
        DeValue::Datetime(_) => Value::Datetime,
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| convert_value(item.get_ref(), origin(item.span()), origin))
                .collect(),
        ),
        DeValue::Table(t) => Value::Table(convert_table(t, origin)),
    };
    Node { value, origin: at }
}

/// Applies one `CREDITLINK__A__B__C=value` override to the tree.
///
/// Segments are lower-cased keys; a numeric segment indexes an array (`CREDITLINK__BANKS__0__CODE`). Missing
/// tables on the way are created, so `CREDITLINK__ADMIN__TOKEN__ENV=ADMIN_TOKEN` can supply a secret by reference.
/// The value is read as a TOML value where it parses as one (`8080`, `true`, `[0, 1000]`, `{ file = "x" }`),
/// else as a plain string (`127.0.0.1:8080`).
pub(crate) fn apply_override(
    root: &mut Table,
    var: &str,
    path: &str,
    raw: &str,
) -> Result<(), String> {
    let segments: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err("malformed override name: empty segment between '__'".into());
    }
    let origin = Origin::Env {
        var: var.to_string(),
        raw: raw.to_string(),
    };
    let value = match DeValue::parse(raw) {
        Ok(parsed) => convert_value(parsed.get_ref(), origin.clone(), &|_| origin.clone()),
        Err(_) => Node {
            value: Value::String(raw.to_string()),
            origin: origin.clone(),
        },
    };
    let Some((last, parents)) = segments.split_last() else {
        return Err("malformed override name".into());
    };
    let mut table = root;
    let mut walked = String::new();
    for segment in parents {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        if table.get(segment).is_none() {
            table.entries.push(Entry {
                key: segment.clone(),
                key_origin: origin.clone(),
                node: Node {
                    value: Value::Table(Table::default()),
                    origin: origin.clone(),
                },
            });
        }
        let Some(entry) = table.get_mut(segment) else {
            return Err(format!("cannot reach '{walked}'"));
        };
        table = descend(&mut entry.node, &walked)?;
    }
    match table.get_mut(last) {
        Some(entry) => entry.node = value,
        None => table.entries.push(Entry {
            key: last.clone(),
            key_origin: origin,
            node: value,
        }),
    }
    Ok(())
}

fn descend<'t>(node: &'t mut Node, walked: &str) -> Result<&'t mut Table, String> {
    match &mut node.value {
        Value::Table(t) => Ok(t),
        other => Err(format!(
            "'{walked}' is {} in the config, not a table this override can reach into",
            other.type_name()
        )),
    }
}

/// Like [`descend`] but also walks into arrays of tables by index; used for the `[[banks]]` overrides.
pub(crate) fn apply_override_indexed(
    root: &mut Table,
    var: &str,
    path: &str,
    raw: &str,
) -> Result<(), String> {
    let mut parts = path.splitn(3, "__");
    let (Some(first), Some(second)) = (parts.next(), parts.next()) else {
        return apply_override(root, var, path, raw);
    };
    let Ok(index) = second.parse::<usize>() else {
        return apply_override(root, var, path, raw);
    };
    let rest = parts
        .next()
        .ok_or("override names an array element, not one of its keys")?;
    let key = first.to_ascii_lowercase();
    let entry = root
        .get_mut(&key)
        .ok_or_else(|| format!("no [[{key}]] in the config to override"))?;
    let Value::Array(items) = &mut entry.node.value else {
        return Err(format!("'{key}' is not an array of tables"));
    };
    let item = items
        .get_mut(index)
        .ok_or_else(|| format!("[[{key}]] has no element {index} (elements count from 0)"))?;
    let table = descend(item, &format!("{key}[{index}]"))?;
    apply_override(table, var, rest, raw)
}
