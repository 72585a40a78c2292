//! The building blocks of the project's compact stored records (the outbox's message header, the feeds'
//! verdict batches and held rows): a writer and a bounds-checked reader over bytes. Fixed-width integers are
//! little-endian; a varint is LEB128 (seven bits a byte, lowest first, at most ten bytes). A reader answers
//! `None` for anything truncated or malformed, never panics.

use chrono::{DateTime, TimeZone, Utc};

/// Appends `v` as a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `bytes` after their length as a varint.
pub(crate) fn put_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Builds a record with fixed-width fields.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// `seconds i64 | nanoseconds u32`: reads back exactly as written.
    pub(crate) fn time(&mut self, t: DateTime<Utc>) {
        self.bytes(&t.timestamp().to_le_bytes());
        self.u32(t.timestamp_subsec_nanos());
    }

    /// `len u32 | UTF-8`.
    pub(crate) fn str(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.bytes(s.as_bytes());
    }

    /// `0`, or `1` and the value.
    pub(crate) fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Writer, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                f(self, v);
            }
        }
    }
}

/// Reads a record field by field from the front of its bytes.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// What [`Writer::time`] wrote.
    pub(crate) fn time(&mut self) -> Option<DateTime<Utc>> {
        let secs = i64::from_le_bytes(self.array()?);
        let nanos = self.u32()?;
        Utc.timestamp_opt(secs, nanos).single()
    }

    /// What [`Writer::str`] wrote.
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u32()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    /// What [`Writer::opt`] wrote.
    pub(crate) fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => f(self).map(Some),
            _ => None,
        }
    }

    /// What [`put_varint`] wrote.
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// What [`put_var_bytes`] wrote.
    pub(crate) fn var_bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        self.take(len)
    }

    /// What [`put_var_bytes`] wrote, as UTF-8.
    pub(crate) fn var_str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.var_bytes()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_truncation_is_none() {
        let values = [0, 1, 0x7f, 0x80, 300, u64::from(u32::MAX), u64::MAX];
        let mut out = Vec::new();
        for v in values {
            put_varint(&mut out, v);
        }
        put_var_bytes(&mut out, "naïve".as_bytes());
        let mut r = Reader(&out);
        for v in values {
            assert_eq!(r.varint(), Some(v));
        }
        assert_eq!(r.var_str(), Some("naïve"));
        assert!(r.0.is_empty());
        for cut in 0..out.len() {
            let mut r = Reader(&out[..cut]);
            let all = values.iter().all(|_| r.varint().is_some()) && r.var_str().is_some();
            assert!(!all, "cut at {cut}");
        }
        assert_eq!(Reader(&[0xff; 11]).varint(), None, "more than ten bytes");
    }
}
