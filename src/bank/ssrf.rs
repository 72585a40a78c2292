//! Where webhooks may be sent: the SSRF policy for bank-configured URLs.
//!
//! A webhook URL is chosen by a bank (or an admin typing what a bank asked for), and the daemon POSTs to it
//! from inside the bureau's network, so without a policy a URL could reach the cloud metadata service, the
//! daemon's own admin endpoints, or any internal host. The policy:
//! - `https` only, unless `allow_http` (the sandbox's local receivers);
//! - no credentials in the URL (`https://user:pass@host` leaks them into logs and proxies);
//! - every address the host resolves to must be public: loopback, RFC 1918 private, link-local, unique-local,
//!   CGNAT, multicast, broadcast, unspecified, documentation and reserved ranges are refused unless
//!   `allow_private`. Cloud metadata addresses are refused even then: nothing legitimate lives there.
//!
//! The check runs at config load ([`UrlPolicy::check_url`], plus [`UrlPolicy::resolve`] if the caller wants
//! DNS checked early) and again at send time. To defeat DNS rebinding (a name that resolves to a public
//! address at check time and to 127.0.0.1 a second later) the sender's HTTP client resolves names only
//! through [`PolicyResolver`], which applies the same policy to the very addresses the connection will use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::Url;

/// The URL policy, from config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Accept `http://` URLs (sandbox and tests only).
    pub allow_http: bool,
    /// Accept non-public addresses (sandbox and tests only). Metadata addresses stay refused.
    pub allow_private: bool,
}

/// Why a webhook URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlPolicyError {
    #[error("scheme {0} is not allowed (https only)")]
    Scheme(String),
    #[error("URL must not contain credentials")]
    Credentials,
    #[error("URL has no host")]
    NoHost,
    #[error("{addr} is a {class} address")]
    Forbidden { addr: IpAddr, class: &'static str },
    #[error("could not resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddresses(String),
}

impl UrlPolicyError {
    /// A failed DNS lookup may succeed later; every other refusal is about the URL itself.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            UrlPolicyError::Resolve { .. } | UrlPolicyError::NoAddresses(_)
        )
    }
}

impl UrlPolicy {
    /// The checks that need no DNS: scheme, credentials, host present, and the address if the host is an IP
    /// literal. Run at config load.
    pub fn check_url(&self, url: &Url) -> Result<(), UrlPolicyError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(UrlPolicyError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlPolicyError::Credentials);
        }
        match url.host() {
            None => Err(UrlPolicyError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
        }
    }

    /// Whether one address may be connected to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), UrlPolicyError> {
        if is_metadata(ip) {
            return Err(UrlPolicyError::Forbidden {
                addr: ip,
                class: "cloud metadata",
            });
        }
        match non_public_class(ip) {
            Some(class) if !self.allow_private => {
                Err(UrlPolicyError::Forbidden { addr: ip, class })
            }
            _ => Ok(()),
        }
    }

    /// Full check including DNS: every resolved address must pass (a name with one private answer among
    /// public ones is refused rather than filtered, since it is either a mistake or an attack).
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, UrlPolicyError> {
        self.check_url(url)?;
        let host = url.host_str().ok_or(UrlPolicyError::NoHost)?;
        let port = url.port_or_known_default().unwrap_or(443);
        self.resolve_host(host.trim_start_matches('[').trim_end_matches(']'), port)
            .await
    }

    async fn resolve_host(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, UrlPolicyError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| UrlPolicyError::Resolve {
                host: host.to_owned(),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(UrlPolicyError::NoAddresses(host.to_owned()));
        }
        for addr in &addrs {
            self.check_ip(addr.ip())?;
        }
        Ok(addrs)
    }
}

/// A reqwest DNS resolver that refuses names resolving to addresses the policy forbids, so the addresses a
/// connection uses are exactly the ones that were checked.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: UrlPolicy,
}

impl PolicyResolver {
    pub fn new(policy: UrlPolicy) -> Arc<Self> {
        Arc::new(PolicyResolver { policy })
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest replaces it with the URL's port.
            let addrs = policy.resolve_host(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The class of a non-public address, or `None` for a public one. An IPv6 address that carries an IPv4
/// address (see [`embedded_v4`]) is non-public when any IPv4 address it carries is.
pub fn non_public_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => embedded_v4(v6)
            .into_iter()
            .find_map(v4_class)
            .or_else(|| v6_class(v6)),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "carrier-grade NAT",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (198, 18..=19, _) => "benchmarking",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    Some(match seg[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        s if s & 0xfe00 == 0xfc00 => "unique-local",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local",
        s if s & 0xff00 == 0xff00 => "multicast",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only",
        // The rest of the deprecated IPv4-compatible block (`::/96`) and NAT64 local-use: never public.
        0 if seg[1..6] == [0, 0, 0, 0, 0] => "IPv4-compatible",
        0x64 if seg[1..3] == [0xff9b, 1] => "NAT64 local-use",
        _ => return None,
    })
}

/// Every IPv4 address an IPv6 address may deliver packets to, by the transition mechanisms a router on the
/// path might implement:
/// - IPv4-mapped `::ffff:a.b.c.d` and the deprecated IPv4-compatible `::a.b.c.d`;
/// - NAT64: the well-known `64:ff9b::/96` and the local-use `64:ff9b:1::/48` (RFC 8215; the IPv4 address
///   at the RFC 6052 position for a /48 and, as many deployments use a /96 inside it, in the last 32 bits);
/// - 6to4 `2002:AABB:CCDD::/48` (RFC 3056);
/// - Teredo `2001:0::/32` (RFC 4380): the server address, and the client's, stored inverted in the last 32 bits;
/// - ISATAP interface ids `…:0:5efe:a.b.c.d` / `…:200:5efe:a.b.c.d` (RFC 5214).
pub fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let seg = ip.segments();
    let o = ip.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let mut found = Vec::new();
    if let Some(v4) = ip.to_ipv4_mapped() {
        found.push(v4);
    }
    if seg[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        found.push(last);
    }
    match (seg[0], seg[1], seg[2]) {
        (0x64, 0xff9b, _) if seg[2..6] == [0; 4] => found.push(last),
        (0x64, 0xff9b, 1) => {
            found.push(Ipv4Addr::new(o[6], o[7], o[9], o[10]));
            found.push(last);
        }
        (0x2002, _, _) => found.push(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        (0x2001, 0, _) => {
            found.push(Ipv4Addr::new(o[4], o[5], o[6], o[7]));
            found.push(Ipv4Addr::from(u32::from(last) ^ u32::MAX));
        }
        _ => {}
    }
    if seg[5] == 0x5efe && (seg[4] == 0 || seg[4] == 0x0200) {
        found.push(last);
    }
    found
}

/// Instance-metadata endpoints of the big clouds (AWS/GCP/Azure/OpenStack, Alibaba, AWS IPv6).
fn is_metadata(ip: IpAddr) -> bool {
    let metadata_v4 = |v4: Ipv4Addr| {
        v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200)
    };
    match ip {
        IpAddr::V4(v4) => metadata_v4(v4),
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || embedded_v4(v6).into_iter().any(metadata_v4)
        }
    }
}
