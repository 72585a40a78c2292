//! The on-disk format of one encrypted report (see the module doc of `vault` for the layout and why).

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use super::VaultError;

/// First bytes of every vault file.
pub const MAGIC: &[u8; 8] = b"CLVAULT\0";
/// The only format version written so far.
pub const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const SHA_LEN: usize = 32;

/// The parsed clear-text header of a vault file. Everything in it is authenticated (it is part of the AEAD
/// associated data), so a reader can trust it once decryption has succeeded, and only then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key_id: String,
    pub nonce: [u8; NONCE_LEN],
    pub plaintext_len: u64,
    pub sha256: [u8; SHA_LEN],
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(MAGIC.len() + 2 + self.key_id.len() + NONCE_LEN + 8 + SHA_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        // Key ids are at most 64 bytes (validated by `KeyId`), so one length byte is enough.
        out.push(self.key_id.len() as u8);
        out.extend_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.plaintext_len.to_be_bytes());
        out.extend_from_slice(&self.sha256);
        out
    }

    /// Split a file into its header, the exact header bytes, and the ciphertext (tag included).
    pub fn parse<'a>(
        file: &'a [u8],
        report_id: &str,
    ) -> Result<(Header, &'a [u8], &'a [u8]), VaultError> {
        let tampered = |reason| VaultError::Tampered {
            report_id: report_id.to_owned(),
            reason,
        };
        let rest = file
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| tampered("bad magic"))?;
        let (&version, rest) = rest
            .split_first()
            .ok_or_else(|| tampered("truncated header"))?;
        if version != VERSION {
            return Err(tampered("unknown format version"));
        }
        let (&id_len, rest) = rest
            .split_first()
            .ok_or_else(|| tampered("truncated header"))?;
        let fixed = id_len as usize + NONCE_LEN + 8 + SHA_LEN;
        if rest.len() < fixed + TAG_LEN {
            return Err(tampered("truncated header"));
        }
        let (id, rest) = rest.split_at(id_len as usize);
        let key_id = std::str::from_utf8(id)
            .map_err(|_| tampered("key id is not UTF-8"))?
            .to_owned();
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (len, rest) = rest.split_at(8);
        let (sha, ciphertext) = rest.split_at(SHA_LEN);
        let header = Header {
            key_id,
            nonce: nonce.try_into().map_err(|_| tampered("truncated header"))?,
            plaintext_len: u64::from_be_bytes(
                len.try_into().map_err(|_| tampered("truncated header"))?,
            ),
            sha256: sha.try_into().map_err(|_| tampered("truncated header"))?,
        };
        let header_len = file.len() - ciphertext.len();
        Ok((header, &file[..header_len], ciphertext))
    }
}

/// Encrypt `pdf` for `report_id` under `key`; returns the whole file and its header.
pub fn seal(
    key_id: &str,
    key: &[u8],
    report_id: &str,
    pdf: &[u8],
) -> Result<(Vec<u8>, Header), VaultError> {
    let header = Header {
        key_id: key_id.to_owned(),
        // 192-bit random nonces: collisions are negligible even for billions of files under one key, which
        // is the reason for XChaCha rather than ChaCha (96-bit) here.
        nonce: XNonce::generate().into(),
        plaintext_len: pdf.len() as u64,
        sha256: Sha256::digest(pdf).into(),
    };
    let header_bytes = header.encode();
    let cipher = cipher(key)?;
    let aad = associated_data(&header_bytes, report_id);
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(header.nonce),
            Payload {
                msg: pdf,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Keyring("encryption failed".into()))?;
    let mut file = header_bytes;
    file.extend_from_slice(&ciphertext);
    Ok((file, header))
}

/// Decrypt and verify a file read for `report_id` (the caller has looked up `key` by `header.key_id`).
pub fn open(
    header: &Header,
    header_bytes: &[u8],
    ciphertext: &[u8],
    key: &[u8],
    report_id: &str,
) -> Result<Vec<u8>, VaultError> {
    let tampered = |reason| VaultError::Tampered {
        report_id: report_id.to_owned(),
        reason,
    };
    let aad = associated_data(header_bytes, report_id);
    let pdf = cipher(key)?
        .decrypt(
            &XNonce::from(header.nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| {
            tampered(
                "authentication failed (modified, truncated, or stored under another report id)",
            )
        })?;
    // The tag already covers the header; checking length and hash again guards against a bug in this module
    // (e.g. a header written with the wrong hash) ever serving a PDF that is not the one that was put.
    if pdf.len() as u64 != header.plaintext_len {
        return Err(tampered("length differs from the recorded length"));
    }
    let digest: [u8; SHA_LEN] = Sha256::digest(&pdf).into();
    if digest != header.sha256 {
        return Err(tampered("SHA-256 differs from the recorded hash"));
    }
    Ok(pdf)
}

/// Size of the encrypted file for a plaintext of `len` bytes under a key id of `key_id_len` bytes.
pub fn file_len(key_id_len: usize, len: u64) -> u64 {
    (MAGIC.len() + 2 + key_id_len + NONCE_LEN + 8 + SHA_LEN + TAG_LEN) as u64 + len
}

fn cipher(key: &[u8]) -> Result<XChaCha20Poly1305, VaultError> {
    XChaCha20Poly1305::new_from_slice(key)
        .map_err(|_| VaultError::Keyring("key is not 32 bytes".into()))
}

/// AAD = header bytes ‖ len(report id) ‖ report id. The length prefix keeps the concatenation unambiguous.
fn associated_data(header_bytes: &[u8], report_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header_bytes.len() + 4 + report_id.len());
    aad.extend_from_slice(header_bytes);
    aad.extend_from_slice(&(report_id.len() as u32).to_be_bytes());
    aad.extend_from_slice(report_id.as_bytes());
    aad
}
