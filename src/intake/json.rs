//! Strict JSON for request bodies: a depth limit and no duplicate member names.
//!
//! `serde_json::from_slice::<Value>` keeps the *last* of duplicate names, so `{"purpose": "dispute",
//! "purpose": "other"}` would silently become one request; different parsers pick different duplicates, a
//! classic smuggling vector. RFC 8259 only says names SHOULD be unique, I-JSON (RFC 7493) says MUST: we
//! refuse them. Depth is bounded below serde_json's own recursion limit (128) so our error, with its
//! clearer message, is the one the client sees.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::intake::problem::SourcePosition;

/// Default maximum nesting of arrays and objects (the top-level value is depth 1).
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// serde_json refuses nesting beyond 128 on its own; stay under it so our limit is the one that fires.
const SERDE_JSON_RECURSION_LIMIT: usize = 127;

/// Why a JSON body was refused. All variants mean "malformed" (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON: {message}")]
    Syntax {
        message: String,
        position: Option<SourcePosition>,
    },
    #[error("duplicate member name {name:?}")]
    DuplicateKey {
        name: String,
        position: Option<SourcePosition>,
    },
    #[error("arrays and objects are nested deeper than {limit} levels")]
    TooDeep {
        limit: usize,
        position: Option<SourcePosition>,
    },
}

impl JsonError {
    /// Where the parser stopped, when known.
    pub fn position(&self) -> Option<SourcePosition> {
        match self {
            Self::Syntax { position, .. }
            | Self::DuplicateKey { position, .. }
            | Self::TooDeep { position, .. } => *position,
        }
    }

    /// A stable machine-readable code for problem documents and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "json_syntax",
            Self::DuplicateKey { .. } => "json_duplicate_key",
            Self::TooDeep { .. } => "json_too_deep",
        }
    }
}

/// Parses one JSON value (surrounding whitespace allowed, nothing else), refusing duplicate member names
/// and nesting deeper than `max_depth` (clamped to 127).
pub fn parse_json(bytes: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    let guard = Guard {
        max_depth: max_depth.min(SERDE_JSON_RECURSION_LIMIT),
        failure: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed {
        depth: 0,
        guard: &guard,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    parsed.map_err(|err| {
        let position = (err.line() > 0).then(|| SourcePosition {
            line: err.line(),
            column: err.column().max(1),
        });
        match guard.failure.take() {
            Some(Failure::Duplicate(name)) => JsonError::DuplicateKey { name, position },
            Some(Failure::TooDeep) => JsonError::TooDeep {
                limit: guard.max_depth,
                position,
            },
            None => JsonError::Syntax {
                message: without_position(&err.to_string()),
                position,
            },
        }
    })
}

/// serde_json appends " at line L column C" to its messages; the position is reported separately.
fn without_position(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head)
        .to_owned()
}

/// What the visitor refused; serde_json only carries a string, this keeps the kind.
enum Failure {
    Duplicate(String),
    TooDeep,
}

struct Guard {
    max_depth: usize,
    failure: Cell<Option<Failure>>,
}

impl Guard {
    fn fail<E: de::Error>(&self, failure: Failure) -> E {
        self.failure.set(Some(failure));
        E::custom("refused")
    }
}

#[derive(Clone, Copy)]
struct ValueSeed<'g> {
    /// Nesting of the container this value is in (0 for the top-level value).
    depth: usize,
    guard: &'g Guard,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested::<A::Error>()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested::<A::Error>()?;
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if object.contains_key(&name) {
                let shown: String = name.chars().take(64).collect();
                return Err(self.guard.fail(Failure::Duplicate(shown)));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

impl<'g> ValueSeed<'g> {
    /// The seed for the members of a container opened here, or the depth refusal.
    fn nested<E: de::Error>(self) -> Result<ValueSeed<'g>, E> {
        let depth = self.depth + 1;
        if depth > self.guard.max_depth {
            return Err(self.guard.fail(Failure::TooDeep));
        }
        Ok(ValueSeed {
            depth,
            guard: self.guard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_documents() {
        let value = parse_json(br#" {"a": [1, -2, 3.5, true, null, {"b": "c"}]} "#, 8).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": [1, -2, 3.5, true, null, {"b": "c"}]})
        );
    }

    #[test]
    fn depth_counts_containers_from_one() {
        assert!(parse_json(b"[[1]]", 2).is_ok());
        assert!(matches!(
            parse_json(b"[[[1]]]", 2),
            Err(JsonError::TooDeep { limit: 2, .. })
        ));
        assert!(parse_json(b"1", 0).is_ok());
    }

    #[test]
    fn trailing_content_is_a_syntax_error() {
        let err = parse_json(b"{} {}", 8).unwrap_err();
        assert_eq!(err.code(), "json_syntax");
        assert_eq!(err.position().map(|p| p.column), Some(4));
    }
}
