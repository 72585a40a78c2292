//! `[inbound]`: the Salesforce → creditlink direction (Outbound Messaging listener, reconciliation poll,
//! report vault).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::reader::{self, MS, Section};

/// `[inbound]` settings.
///
/// Salesforce does not sign Outbound Messages, so the listener must be protected some other way: by a random
/// path segment (`listener_secret`), by source addresses (`allowed_sources`), or both. A config with neither is
/// refused.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// Random path segment: the listener is `POST /salesforce/outbound-messages/<secret>`.
    pub listener_secret: Option<SecretString>,
    /// Source networks allowed to post to `POST /salesforce/outbound-messages`; empty = that route is off.
    pub allowed_sources: Vec<Cidr>,
    /// How often the reconciliation poll runs.
    pub poll_interval: Duration,
    /// How far back each poll looks before the watermark (clock skew, commits landing out of order).
    pub poll_overlap: Duration,
    /// Largest SOAP body accepted; Salesforce sends at most 100 notifications per message.
    pub max_soap_bytes: usize,
    /// Where encrypted reports live; `None` = `<data_dir>/vault` (see [`InboundConfig::vault_dir`]).
    pub vault_dir: Option<PathBuf>,
    /// Directory of `*.key` files (`vault::Keyring::from_dir`); read when the vault opens.
    pub vault_keys: PathBuf,
    /// Largest report PDF accepted into the vault.
    pub report_max_bytes: u64,
    /// Base of report links sent to banks; `None` = the server's public URL.
    pub public_url: Option<url::Url>,
}

impl InboundConfig {
    /// The vault directory: the configured one, else `<data_dir>/vault` (resolved late because
    /// `run --data-dir` may change the data directory after loading).
    pub fn vault_dir(&self, data_dir: &Path) -> PathBuf {
        self.vault_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("vault"))
    }
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `addr` is inside this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(&net.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(a)) => prefix_eq(&net.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{s}\": prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

pub(crate) fn read_inbound(s: &mut Section<'_>) -> InboundConfig {
    let ctx = s.ctx();
    let listener_secret = s.optional("listener_secret", reader::secret(ctx));
    let allowed_sources = s.or(
        "allowed_sources",
        Vec::new(),
        reader::list(false, |node| reader::string(node)?.parse::<Cidr>()),
    );
    if listener_secret.is_none() && allowed_sources.is_empty() {
        s.invalid(
            "listener_secret",
            "Salesforce does not sign Outbound Messages: set 'listener_secret' (a random path segment), \
             'allowed_sources' (Salesforce's IP ranges), or both",
        );
    }
    let poll_interval = s.or(
        "poll_interval_ms",
        Duration::from_secs(30),
        reader::duration(MS, 100, 3_600_000),
    );
    let poll_overlap = s.or(
        "poll_overlap_ms",
        Duration::from_secs(120),
        reader::duration(MS, 0, 86_400_000),
    );
    InboundConfig {
        listener_secret,
        allowed_sources,
        poll_interval,
        poll_overlap,
        max_soap_bytes: s.or(
            "max_soap_bytes",
            1024 * 1024,
            reader::integer(1024, 64 * 1024 * 1024),
        ) as usize,
        vault_dir: s.optional("vault_dir", reader::path(ctx)),
        vault_keys: s
            .required("vault_keys", reader::path(ctx))
            .unwrap_or_default(),
        report_max_bytes: s.or(
            "report_max_bytes",
            25 * 1024 * 1024,
            reader::integer(1024, 1024 * 1024 * 1024),
        ),
        public_url: s.optional("public_url", reader::http_url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let odd: Cidr = "192.168.1.128/25".parse().unwrap();
        assert!(odd.contains("192.168.1.200".parse().unwrap()));
        assert!(!odd.contains("192.168.1.100".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
    }
}
