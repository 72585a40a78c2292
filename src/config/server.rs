//! `[server]`, `[store]`, `[telemetry]`, `[mappings]` and `[admin]`: the daemon's own plumbing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::reader::{self, MS, Section};
use crate::telemetry::LogFormat;

/// `[server]`: the HTTP listener and the limits that keep one client from starving the rest.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Explicit base URL for status links; `None` means derived from `listen`: read it through
    /// [`ServerConfig::public_url`]. Set it when creditlink sits behind a proxy or TLS terminator.
    pub public_url: Option<url::Url>,
    /// Bodies above this are refused with 413 before any parsing.
    pub max_body_bytes: u64,
    pub request_timeout: Duration,
    /// In-flight request cap: beyond it requests wait (load shedding happens upstream of the store).
    pub max_concurrency: usize,
    /// How long shutdown waits for in-flight requests and workers before giving up.
    pub shutdown_grace: Duration,
    /// Report requests each bank may send per hour (a token bucket of that size); `None` = no quota.
    pub bank_quota_per_hour: Option<u32>,
}

impl ServerConfig {
    /// Base URL put in status links handed to banks: the configured `public_url`, else `http://<listen>`
    /// (with loopback in place of `0.0.0.0`/`::`, which no client can connect to).
    pub fn public_url(&self) -> url::Url {
        match &self.public_url {
            Some(url) => url.clone(),
            None => derived_public_url(self.listen),
        }
    }
}

fn derived_public_url(listen: SocketAddr) -> url::Url {
    let addr = match listen.ip() {
        ip if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    };
    let mut url = url::Url::parse("http://127.0.0.1/").expect("a literal URL parses");
    // Neither call can fail on an http URL with a host.
    let _ = url.set_ip_host(addr.ip());
    let _ = url.set_port(Some(addr.port()));
    url
}

/// `[store]`: where the durable state lives and how hard it tries to keep it.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub durability: Durability,
}

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Concurrent writers share one fsync; nothing is acknowledged before its flush completes. Production.
    GroupCommit,
    /// One fsync per request: same guarantee, lower throughput. For benchmarks comparing the two.
    PerRequest,
    /// No fsync before acknowledging: loses acknowledged work on a crash. Benchmarks only.
    None,
}

/// `[telemetry]`: log format and filter.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it at startup.
    pub level: String,
}

/// `[mappings]`: where the admin-edited field mapping files live.
#[derive(Debug, Clone)]
pub struct MappingsConfig {
    pub dir: PathBuf,
}

/// `[admin]`: access to the admin endpoints (dead-letter queue, replays).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Bearer token the admin endpoints require.
    pub token: SecretString,
}

pub(crate) fn read_server(s: &mut Section<'_>) -> ServerConfig {
    let listen = s.or(
        "listen",
        SocketAddr::from(([127, 0, 0, 1], 8080)),
        reader::socket_addr,
    );
    ServerConfig {
        listen,
        public_url: s.optional("public_url", reader::http_url),
        max_body_bytes: s.or(
            "max_body_bytes",
            1024 * 1024,
            reader::integer(1024, 1024 * 1024 * 1024),
        ),
        request_timeout: s.or(
            "request_timeout_ms",
            Duration::from_secs(10),
            reader::duration(MS, 100, 600_000),
        ),
        max_concurrency: s.or("max_concurrency", 1024, reader::integer(1, 1_000_000)) as usize,
        shutdown_grace: s.or(
            "shutdown_grace_ms",
            Duration::from_secs(20),
            reader::duration(MS, 0, 3_600_000),
        ),
        bank_quota_per_hour: s
            .optional("bank_quota_per_hour", reader::integer(1, 100_000_000))
            .map(|n| n as u32),
    }
}

pub(crate) fn read_store(s: &mut Section<'_>) -> StoreConfig {
    let path = reader::path(s.ctx());
    StoreConfig {
        data_dir: s.or("data_dir", s.ctx().resolve("/var/lib/creditlink"), path),
        durability: s.or(
            "durability",
            Durability::GroupCommit,
            reader::one_of(&[
                ("group_commit", Durability::GroupCommit),
                ("per_request", Durability::PerRequest),
                ("none", Durability::None),
            ]),
        ),
    }
}

pub(crate) fn read_telemetry(s: &mut Section<'_>) -> TelemetryConfig {
    TelemetryConfig {
        format: s.or(
            "format",
            LogFormat::Pretty,
            reader::one_of(&[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)]),
        ),
        level: s.or("level", "info".to_string(), |node| {
            let level = reader::non_empty(node)?;
            tracing_subscriber::EnvFilter::try_new(&level)
                .map(|_| level.clone())
                .map_err(|e| format!("\"{level}\" is not a valid log filter: {e}"))
        }),
    }
}

pub(crate) fn read_mappings(s: &mut Section<'_>) -> MappingsConfig {
    let path = reader::path(s.ctx());
    MappingsConfig {
        dir: s.or("dir", s.ctx().resolve("mappings"), path),
    }
}

pub(crate) fn read_admin(s: &mut Section<'_>) -> Option<AdminConfig> {
    let secret = reader::secret(s.ctx());
    Some(AdminConfig {
        token: s.required("token", secret)?,
    })
}
