//! Salesforce record ids: 15 case-sensitive characters plus a 3-character case-safe suffix.

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The case-safe suffix of a 15-character id: one character per 5-character chunk, bit i set when char i is
/// an upper-case letter.
#[cfg(test)]
pub fn suffix(id15: &str) -> String {
    id15.as_bytes().chunks(5).map(suffix_char).collect()
}

/// The suffix character of one 5-character chunk.
fn suffix_char(chunk: &[u8]) -> char {
    let bits = chunk
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_ascii_uppercase())
        .fold(0usize, |acc, (i, _)| acc | (1 << i));
    SUFFIX_ALPHABET[bits] as char
}

/// The 18-character id for a 15- or 18-character one; `None` when malformed (wrong length, characters or suffix).
pub fn normalize(id: &str) -> Option<String> {
    if !id.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let id15 = match id.len() {
        15 => id,
        // Salesforce accepts a suffix in any case; the 15-char part is what identifies the record.
        18 if id.as_bytes()[..15]
            .chunks(5)
            .map(suffix_char)
            .zip(id[15..].chars())
            .all(|(want, got)| want.eq_ignore_ascii_case(&got)) =>
        {
            &id[..15]
        }
        _ => return None,
    };
    // Built in place: every reference written and every id looked up passes through here.
    let mut out = String::with_capacity(18);
    out.push_str(id15);
    out.extend(id15.as_bytes().chunks(5).map(suffix_char));
    Some(out)
}

/// A fresh 18-character id: key prefix, the sim's pod `5Y`, a 10-character base-62 sequence, the suffix.
pub fn generate(key_prefix: &str, seq: u64) -> String {
    let mut digits = [b'0'; 10];
    let mut n = seq;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    // One string, built in place (every created record gets an id).
    let mut id = String::with_capacity(key_prefix.len() + 15);
    id.push_str(key_prefix);
    id.push_str("5Y");
    id.extend(digits.iter().map(|&d| char::from(d)));
    let id15 = id.len();
    for start in (0..id15).step_by(5) {
        let c = suffix_char(&id.as_bytes()[start..(start + 5).min(id15)]);
        id.push(c);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        assert_eq!(suffix("a0BA0000000L2ZC"), "MA0");
        assert_eq!(suffix("00558000001N0Ke"), "AAK");
        assert_eq!(suffix("70130000001tcyI"), "AAQ");
    }

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(
            normalize("00558000001N0Ke").as_deref(),
            Some("00558000001N0KeAAK")
        );
        assert_eq!(
            normalize("00558000001N0KeAAK").as_deref(),
            Some("00558000001N0KeAAK")
        );
        assert_eq!(normalize("00558000001N0KeZZZ"), None);
        assert_eq!(normalize("not-an-id"), None);
        let id = generate("a01", 12345);
        assert_eq!(normalize(&id).as_deref(), Some(id.as_str()));
    }
}
