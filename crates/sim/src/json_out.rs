//! JSON answers written straight into one output buffer.
//!
//! The hot answers (a query page of 2,000 rows, the results of a 200-record collections call) used to be
//! built as `serde_json::Value` trees, one map per row with its own key strings, then serialised and dropped:
//! a dozen allocations per row, most of the simulator's CPU under glibc's malloc. Here they are written as
//! text, in the byte-for-byte form the trees produced: object keys in sorted order (`serde_json::Map` without
//! `preserve_order` is a `BTreeMap`), compact, with serde_json's own string escaping.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// A JSON answer already serialised; sent as `application/json` like `axum::Json`.
pub struct JsonText(pub Vec<u8>);

impl IntoResponse for JsonText {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// Append a stored value as compact JSON.
pub fn push_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => push_str_parts(out, &[s]),
        other => push(out, other),
    }
}

/// Append `value` as compact JSON (a string is quoted and escaped).
pub fn push<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, and every value written here (strings, `serde_json::Value`) serialises.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Append one JSON string made of `parts` (each escaped as serde_json escapes), without building it first.
pub fn push_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        escape_into(out, part);
    }
    out.push(b'"');
}

/// serde_json's escaping: `"` and `\\`, the short forms `\b \f \n \r \t`, `\u00XX` for other control
/// characters; everything else as is.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Append `"key":` (after a comma unless `first`).
pub fn key(out: &mut Vec<u8>, key: &str, first: bool) {
    if !first {
        out.push(b',');
    }
    push_str_parts(out, &[key]);
    out.push(b':');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_what_serde_json_writes() {
        let mut out = Vec::new();
        out.push(b'{');
        key(&mut out, "a\"b", true);
        push(&mut out, "x\ny");
        key(&mut out, "n", false);
        push(&mut out, &json!({"z": 1, "a": [true, null]}));
        out.push(b'}');
        let expected = json!({"a\"b": "x\ny", "n": {"z": 1, "a": [true, null]}}).to_string();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn escapes_every_character_as_serde_json_does() {
        let all: String = (0u32..0x80)
            .chain([0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
            .collect();
        let mut out = Vec::new();
        push_str_parts(&mut out, &[&all[..40], &all[40..]]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
    }
}
