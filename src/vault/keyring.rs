//! Vault keys: 32-byte XChaCha20-Poly1305 keys, each named by a key id, loaded from secret files.
//!
//! A key file holds the 32 key bytes raw or base64-encoded (standard alphabet, surrounding whitespace ignored);
//! its file stem is the key id (`/etc/creditlink/vault-keys/k2026-11.key` → `k2026-11`). Key ids sort by
//! name, so dated ids (`kYYYY-MM`) make "the newest key" the greatest one, which is the default active key.
//! New writes use the active key; every key in the ring still decrypts, which is what makes rotation gradual.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretSlice};

use super::VaultError;

/// Length of a vault key in bytes.
pub const KEY_LEN: usize = 32;

/// A key id: 1-64 characters of `[A-Za-z0-9_.-]`. It is written (in clear) into every vault file header,
/// so it must never be derived from key material.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// Validate a key id.
    pub fn new(id: impl Into<String>) -> Result<Self, VaultError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(KeyId(id))
        } else {
            Err(VaultError::Keyring(format!(
                "invalid key id {id:?} (expected 1-64 characters of [A-Za-z0-9_.-])"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The set of vault keys plus which one encrypts new writes. Cloning is cheap enough (a few keys).
///
/// `Debug` lists key ids only; key bytes live in [`SecretSlice`]s, zeroized on drop.
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<KeyId, SecretSlice<u8>>,
    active: Option<KeyId>,
}

impl Keyring {
    /// An empty keyring (add keys with [`Keyring::insert`]).
    pub fn new() -> Self {
        Keyring {
            keys: BTreeMap::new(),
            active: None,
        }
    }

    /// Load every `*.key` file in `dir`. The greatest key id becomes active.
    pub fn from_dir(dir: &Path) -> Result<Self, VaultError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| VaultError::io(format!("reading key dir {}", dir.display()), e))?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| VaultError::io(format!("reading key dir {}", dir.display()), e))?
                .path();
            if path.extension().is_some_and(|ext| ext == "key") {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(VaultError::Keyring(format!(
                "no *.key files in {}",
                dir.display()
            )));
        }
        Self::from_files(paths)
    }

    /// Load the given key files (the file stem is the key id). The greatest key id becomes active.
    pub fn from_files<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Self, VaultError> {
        let mut ring = Keyring::new();
        for path in paths {
            let path = path.as_ref();
            let bad = |reason: &str| VaultError::BadKey {
                path: path.to_path_buf(),
                reason: reason.to_owned(),
            };
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| bad("file name is not a key id"))?;
            let id = KeyId::new(stem).map_err(|_| bad("file stem is not a valid key id"))?;
            let raw = std::fs::read(path)
                .map_err(|e| VaultError::io(format!("reading key {}", path.display()), e))?;
            let key = decode_key(raw)
                .ok_or_else(|| bad("expected 32 raw bytes or their base64 encoding"))?;
            if ring.keys.contains_key(&id) {
                return Err(bad("duplicate key id"));
            }
            ring.insert(id, key);
        }
        if ring.keys.is_empty() {
            return Err(VaultError::Keyring("no key files given".into()));
        }
        Ok(ring)
    }

    /// Add (or replace) a key. The greatest key id present becomes active unless one was chosen explicitly
    /// with [`Keyring::set_active`].
    pub fn insert(&mut self, id: KeyId, key: SecretSlice<u8>) {
        debug_assert_eq!(key.expose_secret().len(), KEY_LEN);
        self.keys.insert(id, key);
    }

    /// Remove a key (after a rotation has moved every file off it).
    pub fn remove(&mut self, id: &KeyId) {
        self.keys.remove(id);
        if self.active.as_ref() == Some(id) {
            self.active = None;
        }
    }

    /// Choose the key that encrypts new writes; it must be in the ring.
    pub fn set_active(&mut self, id: &KeyId) -> Result<(), VaultError> {
        if !self.keys.contains_key(id) {
            return Err(VaultError::Keyring(format!(
                "active key {id} is not in the keyring"
            )));
        }
        self.active = Some(id.clone());
        Ok(())
    }

    /// The key id new writes use: the one set explicitly, else the greatest.
    pub fn active(&self) -> Result<&KeyId, VaultError> {
        match &self.active {
            Some(id) => Ok(id),
            None => self
                .keys
                .keys()
                .next_back()
                .ok_or_else(|| VaultError::Keyring("the keyring is empty".into())),
        }
    }

    /// Every key id in the ring, in order.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    pub(crate) fn key(&self, id: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, v)| v.expose_secret())
    }
}

impl Default for Keyring {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "key_ids",
                &self.keys.keys().map(KeyId::as_str).collect::<Vec<_>>(),
            )
            .field("active", &self.active().ok().map(KeyId::as_str))
            .finish()
    }
}

/// Raw 32 bytes, or base64 of them. Raw wins when the file is exactly 32 bytes, which base64 of 32 bytes
/// (44 characters) can never be.
fn decode_key(raw: Vec<u8>) -> Option<SecretSlice<u8>> {
    if raw.len() == KEY_LEN {
        return Some(SecretSlice::from(raw));
    }
    let raw = SecretSlice::from(raw);
    let text = std::str::from_utf8(raw.expose_secret()).ok()?.trim();
    let bytes = STANDARD.decode(text).ok()?;
    (bytes.len() == KEY_LEN).then(|| SecretSlice::from(bytes))
}

/// Write a fresh random key file `<dir>/<id>.key` (base64, mode 0600). For `creditlink vault new-key` and tests.
pub fn generate_key_file(dir: &Path, id: &KeyId) -> Result<PathBuf, VaultError> {
    use std::io::Write as _;
    let mut bytes = [0u8; KEY_LEN];
    rand::fill(&mut bytes[..]);
    let encoded = SecretSlice::from(STANDARD.encode(bytes).into_bytes());
    bytes.fill(0);
    let path = dir.join(format!("{id}.key"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| VaultError::io(format!("creating {}", path.display()), e))?;
    file.write_all(encoded.expose_secret())
        .and_then(|()| file.sync_all())
        .map_err(|e| VaultError::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}
