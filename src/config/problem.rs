//! Config problems: one precise, located complaint per invalid value.
//!
//! Loading never stops at the first problem (linkerd's habit): an operator fixing a config wants the whole list
//! in one run, each line pointing at the file, line and column, or at the environment variable that set the value.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a configured value came from, so a problem can point the operator at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A config (or mapping) file; `line` and `column` are 1-based and absent when the problem concerns the
    /// file as a whole (unreadable file, a required section missing altogether).
    File {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
    },
    /// An environment variable (`CREDITLINK__SECTION__KEY` override, or a secret's `{ env = "VAR" }`).
    Env { var: String },
    /// A command-line flag (`--listen`, `--data-dir`).
    Flag { name: String },
}

/// One invalid, missing or unknown setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    pub message: String,
}

impl Problem {
    /// A problem at a line and column of a file (mapping validation uses this too).
    pub fn at(path: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            location: Location::File {
                path: path.to_path_buf(),
                line: Some(line),
                column: Some(column),
            },
            message: message.into(),
        }
    }

    /// A problem with a file as a whole.
    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            location: Location::File {
                path: path.to_path_buf(),
                line: None,
                column: None,
            },
            message: message.into(),
        }
    }

    /// The 1-based line of the problem, when it has one (tests and sorting use it).
    pub fn line(&self) -> Option<usize> {
        match &self.location {
            Location::File { line, .. } => *line,
            Location::Env { .. } | Location::Flag { .. } => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line, column } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                    if let Some(column) = column {
                        write!(f, ":{column}")?;
                    }
                }
                Ok(())
            }
            Location::Env { var } => write!(f, "env {var}"),
            Location::Flag { name } => write!(f, "flag --{name}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found while loading a config, in file order. Displays one line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.problems))]
pub struct ConfigErrors {
    problems: Vec<Problem>,
}

impl ConfigErrors {
    /// Wraps a non-empty list; problems in files come first, ordered by line, then env and flag problems.
    pub fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| match &p.location {
            Location::File { path, line, column } => {
                (0, path.display().to_string(), *line, *column)
            }
            Location::Env { var } => (1, var.clone(), None, None),
            Location::Flag { name } => (2, name.clone(), None, None),
        });
        Self { problems }
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

fn lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
