//! `[server]`, `[store]`, `[telemetry]`, `[mappings]` and `[admin]`: the daemon's own plumbing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

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
    /// In-flight request cap of the bank API, shared by all its routes: beyond it requests wait (bounded by
    /// the request timeout; load shedding happens upstream of the store).
    pub max_concurrency: usize,
    /// Bytes of request bodies held in memory at once, all requests together; a request waits for room
    /// before its body is read. At least `max_body_bytes`.
    pub max_body_memory_bytes: u64,
    /// How long a client has to send a request's headers; also how long an idle keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// Connections served at once (kept below the file-descriptor limit); past it, a few overflow connections
    /// answer `/livez` and 503, and the rest are closed.
    pub max_connections: usize,
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
    /// Local state (the embedded store with `backend = "sled"`, the report vault).
    pub data_dir: PathBuf,
    /// sled only: PostgreSQL commits every transaction durably by itself.
    pub durability: Durability,
    pub backend: StoreBackend,
    /// `payload_retention_days`: how long a delivered, failed, dead or discarded message keeps its
    /// payload (the personal data) after it completed. Default 7 days.
    pub payload_retention: Duration,
    /// `history_retention_days`: how long the rest of such a message (states, attempts, errors,
    /// Salesforce id) is kept after it completed; `None` (the default) keeps it forever.
    pub history_retention: Option<Duration>,
}

/// `[store] backend`: where the outbox and the other durable state live.
#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// The embedded sled database under `data_dir` (one daemon per data directory).
    Sled,
    /// A PostgreSQL database that several daemons share; `[store.postgres] url` (a secret: it may
    /// hold a password), by default `{ env = "DATABASE_URL" }`.
    Postgres { url: SecretString },
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
    /// Bearer token the admin endpoints require (at least [`MIN_ADMIN_TOKEN_BYTES`]).
    pub token: SecretString,
    /// The admin API's own listener, loopback by default: the admin API is never on the bank listener.
    pub listen: SocketAddr,
    /// Admin requests allowed per second (with a burst of twice as many), failed ones included.
    pub rate_per_second: u32,
}

/// Shortest admin token accepted: 32 bytes, e.g. `openssl rand -hex 32` (64 characters).
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

pub(crate) fn read_server(s: &mut Section<'_>) -> ServerConfig {
    let listen = s.or(
        "listen",
        SocketAddr::from(([127, 0, 0, 1], 8080)),
        reader::socket_addr,
    );
    let server = ServerConfig {
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
        max_body_memory_bytes: s.or(
            "max_body_memory_bytes",
            64 * 1024 * 1024,
            reader::integer(1024, 64 * 1024 * 1024 * 1024),
        ),
        header_read_timeout: s.or(
            "header_read_timeout_ms",
            Duration::from_secs(10),
            reader::duration(MS, 100, 600_000),
        ),
        max_connections: s.or("max_connections", 4096, reader::integer(1, 1_000_000)) as usize,
        shutdown_grace: s.or(
            "shutdown_grace_ms",
            Duration::from_secs(20),
            reader::duration(MS, 0, 3_600_000),
        ),
        bank_quota_per_hour: s
            .optional("bank_quota_per_hour", reader::integer(1, 100_000_000))
            .map(|n| n as u32),
    };
    if server.max_body_memory_bytes < server.max_body_bytes {
        s.invalid(
            "max_body_memory_bytes",
            format!(
                "must be at least max_body_bytes ({}), or no body could ever be read",
                server.max_body_bytes
            ),
        );
    }
    server
}

pub(crate) fn read_store(s: &mut Section<'_>) -> StoreConfig {
    let path = reader::path(s.ctx());
    let postgres = s.or(
        "backend",
        false,
        reader::one_of(&[("sled", false), ("postgres", true)]),
    );
    let mut pg = Section::table(s, "postgres", "[store.postgres]");
    let url = if postgres {
        read_postgres_url(&mut pg)
    } else {
        pg.allow(&["url"]);
        None
    };
    pg.finish();
    let backend = match url {
        Some(url) => StoreBackend::Postgres { url },
        None => StoreBackend::Sled,
    };
    StoreConfig {
        backend,
        payload_retention: s.or(
            "payload_retention_days",
            7 * DAY,
            reader::duration(DAY, 1, 3650),
        ),
        history_retention: s.optional("history_retention_days", reader::duration(DAY, 1, 36500)),
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

const DAY: Duration = Duration::from_secs(24 * 3600);

/// History must outlive the payload (retention erases before it deletes) and every idempotency key (a
/// replay must find the message its key names).
pub(crate) fn check_retention(s: &mut Section<'_>, store: &StoreConfig, idempotency_ttl: Duration) {
    let Some(history) = store.history_retention else {
        return;
    };
    if history < store.payload_retention {
        s.invalid(
            "history_retention_days",
            "must be at least payload_retention_days (history outlives the payload)",
        );
    } else if history < idempotency_ttl {
        s.invalid(
            "history_retention_days",
            format!(
                "must cover [intake] idempotency_ttl_hours ({} h): a replayed key must still find its message",
                idempotency_ttl.as_secs() / 3600
            ),
        );
    }
}

/// `[store.postgres] url`, defaulting to the `DATABASE_URL` environment variable.
fn read_postgres_url(pg: &mut Section<'_>) -> Option<SecretString> {
    if pg.has("url") {
        return pg.required("url", reader::secret(pg.ctx()));
    }
    match pg.ctx().env.get("DATABASE_URL") {
        Some(url) if !url.trim().is_empty() => Some(SecretString::from(url.to_string())),
        _ => {
            pg.missing(
                "url",
                " (backend = \"postgres\" needs it, or the DATABASE_URL environment variable)",
            );
            None
        }
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
    let listen = s.or(
        "listen",
        SocketAddr::from(([127, 0, 0, 1], 8081)),
        reader::socket_addr,
    );
    let rate_per_second = s.or("rate_per_second", 20, reader::integer(1, 100_000)) as u32;
    let token = s.required("token", secret)?;
    if token.expose_secret().len() < MIN_ADMIN_TOKEN_BYTES {
        s.invalid(
            "token",
            format!(
                "the admin token is shorter than {MIN_ADMIN_TOKEN_BYTES} bytes; generate one with `openssl rand -hex 32`"
            ),
        );
        return None;
    }
    Some(AdminConfig {
        token,
        listen,
        rate_per_second,
    })
}
