//! The HTTP accept loop: what `axum::serve` does, plus the limits an internet-facing listener needs.
//!
//! - **Header-read timeout** (hyper's HTTP/1 `header_read_timeout`): a client has this long to send a request's
//!   headers, on a new connection and again for each request of a kept-alive one, so it is also the idle
//!   timeout of keep-alive connections. Bodies are bounded by the request timeout of the handlers that read them.
//! - **Connection cap**: at most `max_connections` connections are served normally. Past it, a few more are
//!   accepted as *overflow* connections that answer `/livez` (so a supervisor can tell "busy" from "dead") and
//!   `503` with `Retry-After` for everything else, then close; past those, new connections are closed at once
//!   rather than left to pile up in the kernel's backlog. The cap is kept below the process's file-descriptor
//!   limit ([`fd_budget`]), so the store and outbound clients always have descriptors left.
//! - **Accept errors** (`EMFILE` and friends) are counted, logged at most once per [`ACCEPT_ERROR_LOG_EVERY`],
//!   and backed off exponentially (10 ms … 1 s) instead of spinning or logging every second.
//!
//! HTTP/1.1 only: banks and Salesforce speak HTTP/1.1, and the limits above are HTTP/1 settings (an HTTP/2
//! connection could hold idle streams past them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::intake::Problem;

/// Overflow connections accepted past the cap (each answers one request and closes).
pub const OVERFLOW_CONNECTIONS: usize = 32;
/// Descriptors kept free for everything that is not an HTTP connection (store files, outbound HTTP, SMTP).
pub const RESERVED_FDS: u64 = 256;
/// At most one accept-error line per this interval (the metric counts them all).
pub const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long an overflow connection may take to send its one request.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` fires, then lets open connections finish their request
/// (graceful shutdown) and returns once they are closed; the caller bounds the wait.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let normal = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let overflow_app = app.clone().layer(axum::middleware::from_fn(only_livez));
    let connections = TaskTracker::new();
    let mut backoff = Backoff::default();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.reset();
                    accepted
                }
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    metrics::counter!(crate::ops::metrics::HTTP_ACCEPT_ERRORS_TOTAL).increment(1);
                    let pause = backoff.next(&e);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        if let Ok(permit) = normal.clone().try_acquire_owned() {
            let conn = Connection {
                stream,
                peer,
                permit,
            };
            let settings = (limits.header_read_timeout, true);
            connections.spawn(conn.serve(app.clone(), settings, shutdown.clone()));
        } else if let Ok(permit) = overflow.clone().try_acquire_owned() {
            metrics::counter!(crate::ops::metrics::HTTP_CONNECTIONS_REFUSED_TOTAL, "how" => "overflow")
                .increment(1);
            let conn = Connection {
                stream,
                peer,
                permit,
            };
            let settings = (OVERFLOW_HEADER_TIMEOUT, false);
            connections.spawn(conn.serve(overflow_app.clone(), settings, shutdown.clone()));
        } else {
            metrics::counter!(crate::ops::metrics::HTTP_CONNECTIONS_REFUSED_TOTAL, "how" => "closed")
                .increment(1);
            drop(stream);
        }
    }
    connections.close();
    connections.wait().await;
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Held for the connection's lifetime: its slot under the cap.
    permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(
        self,
        app: Router,
        (header_timeout, keep_alive): (Duration, bool),
        shutdown: CancellationToken,
    ) {
        let Connection {
            stream,
            peer,
            permit,
        } = self;
        let _ = stream.set_nodelay(true);
        let service = app.map_request(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.map(Body::new)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(keep_alive);
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => log_connection_end(result),
            () = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                log_connection_end(conn.await);
            }
        }
        drop(permit);
    }
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Timeouts and resets are the client's business; nothing an operator can act on.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The service of overflow connections: `/livez` as usual, `503` for everything else.
async fn only_livez(request: Request, next: Next) -> Response {
    if request.uri().path() == "/livez" {
        return next.run(request).await;
    }
    Problem::service_unavailable(Some(Duration::from_secs(1)))
        .with_extra("reason", "connection limit reached")
        .into_response()
}

/// Accept errors that concern only the connection being accepted (it was reset before we took it).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// Exponential back-off for resource errors on accept, logging at most once per [`ACCEPT_ERROR_LOG_EVERY`].
#[derive(Default)]
struct Backoff {
    pause: Option<Duration>,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl Backoff {
    fn reset(&mut self) {
        self.pause = None;
    }

    fn next(&mut self, error: &std::io::Error) -> Duration {
        let pause = self.pause.map_or(Duration::from_millis(10), |p| {
            (p * 2).min(Duration::from_secs(1))
        });
        self.pause = Some(pause);
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= ACCEPT_ERROR_LOG_EVERY)
        {
            tracing::warn!(%error, suppressed = self.suppressed, pause_ms = pause.as_millis() as u64,
                "cannot accept connections (file descriptors or memory exhausted); backing off");
            self.last_log = Some(Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        pause
    }
}

/// Raises the soft file-descriptor limit to the hard one and returns how many connections fit under it with
/// [`RESERVED_FDS`] and the overflow connections kept free: `configured` or less.
pub fn fd_budget(configured: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let soft = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(_) => limit.current,
    };
    connections_under(soft.unwrap_or(u64::MAX), configured)
}

fn connections_under(fd_limit: u64, configured: usize) -> usize {
    let room = fd_limit
        .saturating_sub(RESERVED_FDS)
        .saturating_sub(OVERFLOW_CONNECTIONS as u64);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .clamp(1, configured.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(connections_under(1024, 10_000), 1024 - 256 - 32);
        assert_eq!(connections_under(1_048_576, 10_000), 10_000);
        assert_eq!(connections_under(100, 10_000), 1);
    }

    #[test]
    fn accept_errors_back_off_exponentially_up_to_a_second() {
        let mut backoff = Backoff::default();
        let e = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<u128> = (0..10).map(|_| backoff.next(&e).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(backoff.suppressed, 9, "one line logged, the rest counted");
        backoff.reset();
        assert_eq!(backoff.next(&e), Duration::from_millis(10));
    }
}
