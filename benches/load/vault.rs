//! Scenario 5: the vault's cost over the bare cipher. `Vault::put`/`get` on a 5 MiB PDF-like buffer (which
//! includes SHA-256, the file write, fsyncs and the audit line) against raw XChaCha20-Poly1305 on the same
//! bytes, and raw AEAD plus SHA-256 (the vault's CPU work without its I/O), all in one run.

use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use creditlink::vault::{Actor, KeyId, Keyring, Vault, VaultLimits};
use secrecy::SecretSlice;
use sha2::{Digest, Sha256};

const SIZE: usize = 5 * 1024 * 1024;
const ROUNDS: usize = 15;

/// Throughputs in MB/s (10^6 bytes per second), the median of `ROUNDS` rounds each.
#[derive(Debug)]
pub struct VaultFigures {
    pub vault_put: f64,
    pub vault_get: f64,
    pub raw_encrypt: f64,
    pub raw_decrypt: f64,
    pub raw_encrypt_sha: f64,
    pub raw_decrypt_sha: f64,
}

pub fn run() -> anyhow::Result<VaultFigures> {
    let pdf = pdf_like(SIZE);
    let key = [7u8; 32];
    let dir = tempfile::tempdir()?;
    let mut ring = Keyring::new();
    ring.insert(KeyId::new("bench-key")?, SecretSlice::from(key.to_vec()));
    let vault = Vault::open(dir.path(), ring, VaultLimits::default())?;

    let vault_put = median_rate(|i| {
        vault
            .put(&format!("report-{i}"), &pdf)
            .map(|_| ())
            .map_err(anyhow::Error::from)
    })?;
    let actor = Actor::Bank("0015Y00000BANKAQA5".into());
    let vault_get = median_rate(|i| {
        let (bytes, _) = vault.get(&actor, &format!("report-{i}"))?;
        anyhow::ensure!(bytes.len() == SIZE, "wrong size back");
        Ok(())
    })?;

    let cipher =
        XChaCha20Poly1305::new_from_slice(&key).map_err(|_| anyhow::anyhow!("key length"))?;
    let nonce = XNonce::from([9u8; 24]);
    let aad = b"bench-aad";
    let encrypt = |hash: bool| -> anyhow::Result<Vec<u8>> {
        if hash {
            std::hint::black_box(Sha256::digest(&pdf));
        }
        cipher
            .encrypt(&nonce, Payload { msg: &pdf, aad })
            .map_err(|_| anyhow::anyhow!("encrypt"))
    };
    let sealed = encrypt(false)?;
    let decrypt = |hash: bool| -> anyhow::Result<()> {
        let plain = cipher
            .decrypt(&nonce, Payload { msg: &sealed, aad })
            .map_err(|_| anyhow::anyhow!("decrypt"))?;
        if hash {
            std::hint::black_box(Sha256::digest(&plain));
        }
        Ok(())
    };
    let raw_encrypt = median_rate(|_| encrypt(false).map(|c| drop(std::hint::black_box(c))))?;
    let raw_decrypt = median_rate(|_| decrypt(false))?;
    let raw_encrypt_sha = median_rate(|_| encrypt(true).map(|c| drop(std::hint::black_box(c))))?;
    let raw_decrypt_sha = median_rate(|_| decrypt(true))?;
    Ok(VaultFigures {
        vault_put,
        vault_get,
        raw_encrypt,
        raw_decrypt,
        raw_encrypt_sha,
        raw_decrypt_sha,
    })
}

/// `%PDF-` ... pseudo-random body ... `%%EOF`, so the vault's PDF check passes and nothing compresses.
fn pdf_like(size: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(size);
    buf.extend_from_slice(b"%PDF-1.7\n");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while buf.len() < size - 6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.push((x >> 24) as u8);
    }
    buf.extend_from_slice(b"%%EOF\n");
    buf
}

fn median_rate(mut f: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let start = Instant::now();
        f(i)?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(SIZE as f64 / times[ROUNDS / 2].as_secs_f64() / 1e6)
}
