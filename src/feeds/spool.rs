//! The encrypted spool: an upload's body on disk, sealed chunk by chunk, so a 200 MB feed full of national ids
//! is never in clear on disk and never whole in memory.
//!
//! # Format (version 1)
//! ```text
//! magic "CLSPOOL1" (8) | key id length n (1) | key id (n) | nonce prefix (16)
//! then chunks: ciphertext length (4, big-endian) | ciphertext (plaintext ≤ 64 KiB + 16-byte tag)
//! ```
//! XChaCha20-Poly1305 under a key derived from the vault's active key (HMAC-SHA256 of the vault key over a
//! fixed label, so spool ciphertext can never be confused with a report file). Each chunk's nonce is the
//! file's random prefix followed by the chunk counter; its associated data is the upload id, the counter and
//! a final-chunk flag. That is the STREAM construction: chunks cannot be reordered, moved to another upload,
//! dropped or truncated (the last chunk is the only one flagged final, and a reader that reaches the end of
//! the file without it fails).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use super::error::FeedError;

const MAGIC: &[u8; 8] = b"CLSPOOL1";
/// Plaintext bytes per chunk.
const CHUNK: usize = 64 * 1024;
const TAG_LEN: usize = 16;
const PREFIX_LEN: usize = 16;
/// Label of the derived spool key.
const LABEL: &[u8] = b"creditlink/feeds/spool/v1";

/// The spool key: derived from a vault key, named by that key's id (rotation keeps old ids readable).
#[derive(Clone)]
pub struct SpoolKey {
    id: String,
    key: SecretSlice<u8>,
}

impl std::fmt::Debug for SpoolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SpoolKey {
    /// Derives the spool key from the vault key `vault_key` named `id`.
    pub fn derive(id: &str, vault_key: &[u8]) -> SpoolKey {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(vault_key)
            .expect("HMAC takes keys of any length");
        mac.update(LABEL);
        let key: Vec<u8> = mac.finalize().into_bytes().to_vec();
        SpoolKey {
            id: id.to_owned(),
            key: SecretSlice::from(key),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(self.key.expose_secret()).expect("32-byte key")
    }

    /// Seals a small blob (an upload's rejected rows) for `context` with a random nonce:
    /// `nonce (24) | ciphertext`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, FeedError> {
        let mut nonce = [0u8; 24];
        rand::fill(&mut nonce[..]);
        let mut out = nonce.to_vec();
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| FeedError::Crypto("sealing failed"))?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a blob made by [`SpoolKey::seal`] for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, FeedError> {
        if sealed.len() < 24 + TAG_LEN {
            return Err(FeedError::Crypto("sealed blob truncated"));
        }
        let (nonce, body) = sealed.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().expect("24 bytes");
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| FeedError::Crypto("sealed blob failed authentication"))
    }
}

/// The spool keys a daemon can read, and the one it writes with.
#[derive(Clone, Debug)]
pub struct SpoolKeys {
    active: SpoolKey,
    all: Vec<SpoolKey>,
}

impl SpoolKeys {
    /// From the vault's keyring: writes with its active key, reads with any of its keys.
    pub fn from_keyring(keyring: &crate::vault::Keyring) -> Result<SpoolKeys, FeedError> {
        let active_id = keyring
            .active()
            .map_err(|_| FeedError::Crypto("the vault keyring has no active key"))?
            .as_str()
            .to_owned();
        let all: Vec<SpoolKey> = keyring
            .ids()
            .filter_map(|id| {
                keyring
                    .key(id.as_str())
                    .map(|k| SpoolKey::derive(id.as_str(), k))
            })
            .collect();
        let active = all
            .iter()
            .find(|k| k.id == active_id)
            .cloned()
            .ok_or(FeedError::Crypto("the vault's active key is missing"))?;
        Ok(SpoolKeys { active, all })
    }

    /// One key, for tests.
    pub fn single(key: SpoolKey) -> SpoolKeys {
        SpoolKeys {
            active: key.clone(),
            all: vec![key],
        }
    }

    pub fn active(&self) -> &SpoolKey {
        &self.active
    }

    pub fn by_id(&self, id: &str) -> Option<&SpoolKey> {
        self.all.iter().find(|k| k.id == id)
    }

    /// Seals `plain` with the active key: `key id length (1) | key id | sealed blob`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, FeedError> {
        let id = self.active.id.as_bytes();
        let mut out =
            vec![u8::try_from(id.len()).map_err(|_| FeedError::Crypto("key id too long"))?];
        out.extend_from_slice(id);
        out.extend(self.active.seal(context, plain)?);
        Ok(out)
    }

    /// Opens what [`SpoolKeys::seal`] made, with whichever key sealed it.
    pub fn open(&self, context: &str, blob: &[u8]) -> Result<Vec<u8>, FeedError> {
        let (&len, rest) = blob
            .split_first()
            .ok_or(FeedError::Crypto("sealed blob empty"))?;
        let len = usize::from(len);
        if rest.len() < len {
            return Err(FeedError::Crypto("sealed blob truncated"));
        }
        let id = std::str::from_utf8(&rest[..len]).map_err(|_| FeedError::Crypto("bad key id"))?;
        self.by_id(id)
            .ok_or(FeedError::Crypto("the sealing key is not in the keyring"))?
            .open(context, &rest[len..])
    }
}

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..].copy_from_slice(&counter.to_be_bytes());
    XNonce::from(n)
}

fn chunk_aad(upload_id: &str, counter: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(upload_id.len() + 9);
    aad.extend_from_slice(upload_id.as_bytes());
    aad.extend_from_slice(&counter.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

/// Writes an upload's body to its spool file, encrypting as it goes. Blocking I/O.
pub struct SpoolWriter {
    file: BufWriter<File>,
    cipher: XChaCha20Poly1305,
    prefix: [u8; PREFIX_LEN],
    counter: u64,
    pending: Vec<u8>,
    upload_id: String,
}

impl SpoolWriter {
    /// Creates `path` (which must not exist, mode 0600) for `upload_id`.
    pub fn create(path: &Path, key: &SpoolKey, upload_id: &str) -> io::Result<SpoolWriter> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = BufWriter::new(options.open(path)?);
        let mut prefix = [0u8; PREFIX_LEN];
        rand::fill(&mut prefix[..]);
        file.write_all(MAGIC)?;
        let id = key.id.as_bytes();
        let id_len = u8::try_from(id.len()).map_err(|_| io::Error::other("key id too long"))?;
        file.write_all(&[id_len])?;
        file.write_all(id)?;
        file.write_all(&prefix)?;
        Ok(SpoolWriter {
            file,
            cipher: key.cipher(),
            prefix,
            counter: 0,
            pending: Vec::with_capacity(CHUNK),
            upload_id: upload_id.to_owned(),
        })
    }

    /// Appends plaintext bytes.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = CHUNK - self.pending.len();
            let take = room.min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                self.seal_chunk(false)?;
            }
        }
        Ok(())
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let aad = chunk_aad(&self.upload_id, self.counter, last);
        let sealed = self
            .cipher
            .encrypt(
                &nonce(&self.prefix, self.counter),
                Payload {
                    msg: &self.pending,
                    aad: &aad,
                },
            )
            .map_err(|_| io::Error::other("spool encryption failed"))?;
        let len = u32::try_from(sealed.len()).map_err(|_| io::Error::other("chunk too large"))?;
        self.file.write_all(&len.to_be_bytes())?;
        self.file.write_all(&sealed)?;
        self.pending.clear();
        self.counter += 1;
        Ok(())
    }

    /// Seals the final chunk and fsyncs the file and its directory: durable when this returns.
    pub fn finish(mut self, path: &Path) -> io::Result<()> {
        self.seal_chunk(true)?;
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Reads a spool file back as plaintext ([`Read`]), authenticating every chunk. Blocking I/O.
pub struct SpoolReader {
    file: BufReader<File>,
    cipher: XChaCha20Poly1305,
    prefix: [u8; PREFIX_LEN],
    counter: u64,
    upload_id: String,
    plain: Vec<u8>,
    pos: usize,
    done: bool,
}

impl SpoolReader {
    pub fn open(path: &Path, keys: &SpoolKeys, upload_id: &str) -> Result<SpoolReader, FeedError> {
        let mut file = BufReader::with_capacity(CHUNK + 64, File::open(path)?);
        let mut magic = [0u8; 8];
        file.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(FeedError::Crypto("not a spool file"));
        }
        let mut len = [0u8; 1];
        file.read_exact(&mut len)?;
        let mut id = vec![0u8; usize::from(len[0])];
        file.read_exact(&mut id)?;
        let id = String::from_utf8(id).map_err(|_| FeedError::Crypto("bad key id"))?;
        let key = keys
            .by_id(&id)
            .ok_or(FeedError::Crypto("the spool's key is not in the keyring"))?;
        let mut prefix = [0u8; PREFIX_LEN];
        file.read_exact(&mut prefix)?;
        Ok(SpoolReader {
            file,
            cipher: key.cipher(),
            prefix,
            counter: 0,
            upload_id: upload_id.to_owned(),
            plain: Vec::new(),
            pos: 0,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut len = [0u8; 4];
        if let Err(e) = self.file.read_exact(&mut len) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::other("spool truncated: no final chunk")
            } else {
                e
            });
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > CHUNK + TAG_LEN {
            return Err(io::Error::other("spool chunk too large"));
        }
        let mut sealed = vec![0u8; len];
        self.file.read_exact(&mut sealed)?;
        // A chunk authenticates as final or as not final, never both: try the common case first.
        for last in [false, true] {
            let aad = chunk_aad(&self.upload_id, self.counter, last);
            if let Ok(plain) = self.cipher.decrypt(
                &nonce(&self.prefix, self.counter),
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            ) {
                self.plain = plain;
                self.pos = 0;
                self.counter += 1;
                self.done = last;
                return Ok(());
            }
        }
        Err(io::Error::other("spool chunk failed authentication"))
    }
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.plain.len() - self.pos);
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SpoolKeys {
        SpoolKeys::single(SpoolKey::derive("k1", &[7u8; 32]))
    }

    fn roundtrip(len: usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("u.spool");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut w = SpoolWriter::create(&path, keys().active(), "u1").expect("create");
        for part in data.chunks(10_000) {
            w.write(part).expect("write");
        }
        w.finish(&path).expect("finish");
        let on_disk = std::fs::read(&path).expect("read");
        assert!(len < 64 || on_disk.windows(64).all(|w| w != &data[..64]));
        let mut back = Vec::new();
        SpoolReader::open(&path, &keys(), "u1")
            .expect("open")
            .read_to_end(&mut back)
            .expect("read back");
        assert_eq!(back, data);
        // Another upload id does not authenticate.
        let mut other = Vec::new();
        assert!(
            SpoolReader::open(&path, &keys(), "u2")
                .expect("open")
                .read_to_end(&mut other)
                .is_err()
        );
    }

    #[test]
    fn spool_roundtrips_and_binds_the_upload_id() {
        roundtrip(0);
        roundtrip(5);
        roundtrip(CHUNK);
        roundtrip(3 * CHUNK + 17);
    }

    #[test]
    fn truncation_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("u.spool");
        let mut w = SpoolWriter::create(&path, keys().active(), "u1").expect("create");
        w.write(&vec![1u8; 2 * CHUNK + 5]).expect("write");
        w.finish(&path).expect("finish");
        let bytes = std::fs::read(&path).expect("read");
        // Drop the final chunk (5 bytes + tag + length prefix).
        std::fs::write(&path, &bytes[..bytes.len() - (5 + TAG_LEN + 4)]).expect("write");
        let mut back = Vec::new();
        assert!(
            SpoolReader::open(&path, &keys(), "u1")
                .expect("open")
                .read_to_end(&mut back)
                .is_err()
        );
    }

    #[test]
    fn sealed_blobs_bind_their_context() {
        let k = keys();
        let sealed = k.seal("a", b"secret").expect("seal");
        assert_eq!(k.open("a", &sealed).expect("open"), b"secret");
        assert!(k.open("b", &sealed).is_err());
    }
}
