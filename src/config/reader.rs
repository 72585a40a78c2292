//! Reading typed settings out of the value tree while collecting every problem.
//!
//! A [`Section`] hands out one key at a time through a converter (`fn(&Node) -> Result<T, String>`); a bad value
//! is recorded as a located problem and the caller gets `None` or its default, so validation carries on and the
//! operator sees every problem at once. [`Section::finish`] reports the keys nobody asked for: a misspelt key is
//! an error, never silently ignored.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use super::Env;
use super::problem::Problem;
use super::tree::{Node, Origin, Source, Table, Value};

/// Shared state of one load: the file, its directory, the environment and the problems found so far.
pub(crate) struct Ctx<'a> {
    pub source: &'a Source,
    pub base_dir: &'a Path,
    pub env: &'a Env,
    problems: RefCell<Vec<Problem>>,
}

impl<'a> Ctx<'a> {
    pub fn new(source: &'a Source, base_dir: &'a Path, env: &'a Env) -> Self {
        Self {
            source,
            base_dir,
            env,
            problems: RefCell::new(Vec::new()),
        }
    }

    pub fn report(&self, problem: Problem) {
        self.problems.borrow_mut().push(problem);
    }

    pub fn report_at(&self, origin: &Origin, message: impl Into<String>) {
        self.report(self.source.problem(origin, message));
    }

    pub fn has_problems(&self) -> bool {
        !self.problems.borrow().is_empty()
    }

    pub fn into_problems(self) -> Vec<Problem> {
        self.problems.into_inner()
    }

    /// Resolves a configured path against the config file's directory, so a config works from any cwd.
    pub fn resolve(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }
}

/// One TOML table being read: `[server]`, `[salesforce.auth]`, one `[[banks]]` element.
pub(crate) struct Section<'a> {
    ctx: &'a Ctx<'a>,
    name: String,
    table: Option<&'a Table>,
    origin: Option<&'a Origin>,
    known: Vec<&'static str>,
}

impl<'a> Section<'a> {
    /// The document root; its keys are the section names.
    pub fn root(ctx: &'a Ctx<'a>, table: &'a Table) -> Self {
        Self {
            ctx,
            name: "the top level".into(),
            table: Some(table),
            origin: None,
            known: Vec::new(),
        }
    }

    /// A table in `parent` (absent is fine: every key then takes its default or is reported missing).
    pub fn table(parent: &mut Section<'a>, key: &'static str, display: &str) -> Self {
        let node = parent.node(key);
        Self::from_node(parent.ctx, node, display.to_string())
    }

    /// A table that is an element of an array of tables.
    pub fn from_node(ctx: &'a Ctx<'a>, node: Option<&'a Node>, name: String) -> Self {
        let table = match node.map(|n| (&n.value, &n.origin)) {
            Some((Value::Table(t), _)) => Some(t),
            Some((other, origin)) => {
                ctx.report_at(
                    origin,
                    format!("{name} must be a table, found {}", other.type_name()),
                );
                None
            }
            None => None,
        };
        Self {
            ctx,
            name,
            table,
            origin: node.map(|n| &n.origin),
            known: Vec::new(),
        }
    }

    pub fn ctx(&self) -> &'a Ctx<'a> {
        self.ctx
    }

    /// The raw node of a key, marking the key as known.
    pub fn node(&mut self, key: &'static str) -> Option<&'a Node> {
        self.known.push(key);
        self.table.and_then(|t| t.get(key)).map(|e| &e.node)
    }

    /// Marks keys as known without reading them (settings that only matter in another mode).
    pub fn allow(&mut self, keys: &[&'static str]) {
        self.known.extend_from_slice(keys);
    }

    /// Whether the key is present (and marks it known).
    pub fn has(&mut self, key: &'static str) -> bool {
        self.node(key).is_some()
    }

    /// An optional setting; `None` when absent or invalid (invalid is reported).
    pub fn optional<T>(
        &mut self,
        key: &'static str,
        convert: impl FnOnce(&Node) -> Result<T, String>,
    ) -> Option<T> {
        let node = self.node(key)?;
        match convert(node) {
            Ok(value) => Some(value),
            Err(message) => {
                self.ctx
                    .report_at(&node.origin, format!("'{key}' in {}: {message}", self.name));
                None
            }
        }
    }

    /// A setting with a default; an invalid value is reported and the default stands in so checking goes on.
    pub fn or<T>(
        &mut self,
        key: &'static str,
        default: T,
        convert: impl FnOnce(&Node) -> Result<T, String>,
    ) -> T {
        self.optional(key, convert).unwrap_or(default)
    }

    /// A setting without a default; absence is reported at the table's header (or the file).
    pub fn required<T>(
        &mut self,
        key: &'static str,
        convert: impl FnOnce(&Node) -> Result<T, String>,
    ) -> Option<T> {
        if !self.has(key) {
            self.missing(key, "");
            return None;
        }
        self.optional(key, convert)
    }

    /// Reports a missing key, with an optional reason (`" (needed by flow jwt_bearer)"`).
    pub fn missing(&self, key: &str, why: &str) {
        let message = format!("missing required key '{key}' in {}{why}", self.name);
        match self.origin {
            Some(origin) => self.ctx.report_at(origin, message),
            None => self
                .ctx
                .report(Problem::in_file(self.ctx.source.path(), message)),
        }
    }

    /// Reports a problem that concerns a whole key's value, after conversion (cross-field checks).
    pub fn invalid(&mut self, key: &'static str, message: impl std::fmt::Display) {
        let at = self
            .node(key)
            .map(|n| n.origin.clone())
            .or_else(|| self.origin.cloned());
        let message = format!("'{key}' in {}: {message}", self.name);
        match at {
            Some(origin) => self.ctx.report_at(&origin, message),
            None => self
                .ctx
                .report(Problem::in_file(self.ctx.source.path(), message)),
        }
    }

    /// Reports every key present that was never asked for.
    pub fn finish(self) {
        let Some(table) = self.table else { return };
        for entry in &table.entries {
            if !self.known.contains(&entry.key.as_str()) {
                let mut expected = self.known.clone();
                expected.dedup();
                self.ctx.report_at(
                    &entry.key_origin,
                    format!(
                        "unknown key '{}' in {} (expected one of: {})",
                        entry.key,
                        self.name,
                        expected.join(", ")
                    ),
                );
            }
        }
    }
}

// ---- converters: each turns one node into a typed value or says what is wrong with it ----

/// Any string. An override variable's raw text counts as a string even if it also parses as a number.
pub(crate) fn string(node: &Node) -> Result<String, String> {
    match (&node.value, &node.origin) {
        (Value::String(s), _) => Ok(s.clone()),
        (_, Origin::Env { raw, .. }) => Ok(raw.clone()),
        (other, _) => Err(format!("expected a string, found {}", other.type_name())),
    }
}

pub(crate) fn non_empty(node: &Node) -> Result<String, String> {
    let s = string(node)?;
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s)
    }
}

/// An integer within `min..=max`.
pub(crate) fn integer(min: u64, max: u64) -> impl Fn(&Node) -> Result<u64, String> {
    move |node| match &node.value {
        Value::Integer(Some(i)) => match u64::try_from(*i) {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(format!("must be between {min} and {max}, found {i}")),
        },
        Value::Integer(None) => Err("integer does not fit in 64 bits".into()),
        other => Err(format!("expected an integer, found {}", other.type_name())),
    }
}

/// A float within `min..max` (integers are accepted too: `jitter = 0` is fine).
pub(crate) fn fraction(min: f64, max_exclusive: f64) -> impl Fn(&Node) -> Result<f64, String> {
    move |node| {
        let value = match &node.value {
            Value::Float(f) => *f,
            Value::Integer(Some(i)) => *i as f64,
            other => return Err(format!("expected a number, found {}", other.type_name())),
        };
        if value >= min && value < max_exclusive {
            Ok(value)
        } else {
            Err(format!(
                "must be at least {min} and below {max_exclusive}, found {value}"
            ))
        }
    }
}

/// A duration given as an integer count of `unit`, within `min..=max` of that unit.
pub(crate) fn duration(
    unit: Duration,
    min: u64,
    max: u64,
) -> impl Fn(&Node) -> Result<Duration, String> {
    move |node| {
        integer(min, max)(node).map(|n| unit.saturating_mul(n.min(u64::from(u32::MAX)) as u32))
    }
}

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const SECOND: Duration = Duration::from_secs(1);
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// A list whose every element passes `element`; an empty list is refused when `non_empty`.
pub(crate) fn list<T>(
    non_empty: bool,
    element: impl Fn(&Node) -> Result<T, String>,
) -> impl Fn(&Node) -> Result<Vec<T>, String> {
    move |node| {
        let Value::Array(items) = &node.value else {
            return Err(format!(
                "expected an array, found {}",
                node.value.type_name()
            ));
        };
        if non_empty && items.is_empty() {
            return Err("must not be empty".into());
        }
        let mut out = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match element(item) {
                Ok(v) => out.push(v),
                Err(e) => errors.push(format!("element {i}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors.join("; "))
        }
    }
}

/// One of a fixed set of names.
pub(crate) fn one_of<T: Copy>(
    choices: &'static [(&'static str, T)],
) -> impl Fn(&Node) -> Result<T, String> {
    move |node| {
        let s = string(node)?;
        choices
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                format!("must be one of {}, found \"{s}\"", names.join(", "))
            })
    }
}

pub(crate) fn socket_addr(node: &Node) -> Result<std::net::SocketAddr, String> {
    let s = string(node)?;
    s.parse().map_err(|_| {
        format!("\"{s}\" is not a socket address (expected ip:port, e.g. \"127.0.0.1:8080\")")
    })
}

/// An absolute `http` or `https` URL.
pub(crate) fn http_url(node: &Node) -> Result<url::Url, String> {
    let s = string(node)?;
    let url = url::Url::parse(&s).map_err(|e| format!("\"{s}\" is not a valid URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(format!(
            "\"{s}\" must be an http:// or https:// URL with a host"
        )),
    }
}

/// A path; relative paths are resolved against the config file's directory.
pub(crate) fn path(ctx: &Ctx<'_>) -> impl Fn(&Node) -> Result<PathBuf, String> {
    move |node| non_empty(node).map(|p| ctx.resolve(&p))
}

/// A secret given by reference: `{ file = "path" }` or `{ env = "VAR" }`, read now so a missing secret is a
/// config problem at startup and not a failure at 3 a.m. Trailing newlines of files are dropped (editors add them).
pub(crate) fn secret(ctx: &Ctx<'_>) -> impl Fn(&Node) -> Result<SecretString, String> {
    move |node| {
        let table = match &node.value {
            Value::Table(t) => t,
            Value::String(_) => {
                return Err(
                    "a secret is never written inline (config files get committed and copied): \
                            use { file = \"path\" } or { env = \"VAR\" }"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "expected {{ file = \"path\" }} or {{ env = \"VAR\" }}, found {}",
                    other.type_name()
                ));
            }
        };
        let keys: Vec<&str> = table.entries.iter().map(|e| e.key.as_str()).collect();
        let value = match keys.as_slice() {
            ["file"] => {
                let file = table.get("file").map(|e| &e.node).ok_or("missing 'file'")?;
                let path = ctx.resolve(&non_empty(file).map_err(|e| format!("'file': {e}"))?);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read secret file '{}': {e}", path.display()))?;
                text.trim_end_matches(['\n', '\r']).to_string()
            }
            ["env"] => {
                let var = table.get("env").map(|e| &e.node).ok_or("missing 'env'")?;
                let var = non_empty(var).map_err(|e| format!("'env': {e}"))?;
                ctx.env
                    .get(&var)
                    .ok_or_else(|| {
                        format!("environment variable '{var}' named by this secret is not set")
                    })?
                    .to_string()
            }
            _ => {
                return Err(format!(
                    "a secret table has exactly one key, 'file' or 'env'; found: {}",
                    if keys.is_empty() {
                        "none".to_string()
                    } else {
                        keys.join(", ")
                    }
                ));
            }
        };
        if value.trim().is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(SecretString::from(value))
    }
}
