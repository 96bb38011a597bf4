//! HTTP endpoint stage (`--listen`): serves /metrics, /inventory and /healthz from a [`Provider`]
//! on its own thread and runtime. It must never block the pipeline, hold more than
//! [`MAX_CONNECTIONS`] connections, log anything from a request above `debug`, or log a password.
mod auth;
mod routes;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::ListenArgs;
use auth::load_auth;
use routes::{accept_loop, Shared};
use tls::tls_config;

/// What the endpoint serves; implemented by the agent.
pub trait Provider: Send + Sync + 'static {
    /// Prometheus text exposition format 0.0.4.
    fn metrics(&self) -> String;
    /// The posture inventory as one JSON document.
    fn inventory(&self) -> String;
    /// `Ok(body)` → 200, `Err(body)` → 503.
    fn health(&self) -> Result<String, String>;
}

/// Route labels, a closed set: `/metrics`, `/inventory`, `/healthz`, `/`, anything else.
pub const ROUTES: &[&str] = &["metrics", "inventory", "healthz", "index", "other"];
/// Status codes the endpoint answers with, a closed set.
pub const CODES: &[u16] = &[200, 401, 404, 405, 503];
/// Connections served at once; one more is closed at accept and counted as refused.
pub const MAX_CONNECTIONS: usize = 64;
/// Time for a TLS handshake and for each request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection's whole life; then it is closed gracefully (clients reconnect).
pub const CONNECTION_LIMIT: Duration = Duration::from_secs(30);
/// Time granted to in-flight responses at stop or at the connection limit.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Setup errors; each names the flag or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--listen {addr}: cannot listen: {hint}")]
    Bind {
        addr: SocketAddr,
        hint: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("--listen-tls-cert and --listen-tls-key go together: {missing} is missing")]
    TlsPair { missing: &'static str },
    #[error("{flag} {}: cannot read", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{flag} {}: not PEM, or no {what} in it", path.display())]
    Pem { flag: &'static str, path: PathBuf, what: &'static str },
    #[error("--listen-tls-key {} does not fit --listen-tls-cert {}", key.display(), cert.display())]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "--listen-auth-file {}: readable or writable by group or others (mode {mode:04o}); run `chmod 600 {}`",
        path.display(), path.display()
    )]
    AuthMode { path: PathBuf, mode: u32 },
    #[error("--listen-auth-file {}: no `user:password` line", path.display())]
    AuthEmpty { path: PathBuf },
    #[error("--listen-auth-file {} line {line}: {reason}", path.display())]
    AuthLine { path: PathBuf, line: usize, reason: &'static str },
    #[error(
        "--listen-auth-file without TLS on {addr}, which is not loopback: passwords would cross the \
         network in clear; add --listen-tls-cert/--listen-tls-key or listen on 127.0.0.1"
    )]
    AuthInClear { addr: SocketAddr },
    #[error("HTTP endpoint: cannot start its thread or runtime")]
    Start {
        #[source]
        source: io::Error,
    },
}

/// What the endpoint did, for the agent's own metrics. All counters only grow.
#[derive(Debug, Default)]
pub struct ServeStats {
    requests: [[AtomicU64; 5]; 5],
    refused: AtomicU64,
    tls_failures: AtomicU64,
    auth_failures: AtomicU64,
}

impl ServeStats {
    /// Requests answered by the endpoint per (route, code): every pair of [`ROUTES`] × [`CODES`],
    /// zeros included, so the series exist from the start. Errors hyper answers itself (malformed
    /// request, 431 headers too large) are not requests here.
    pub fn requests(&self) -> Vec<(&'static str, u16, u64)> {
        let mut out = Vec::with_capacity(ROUTES.len() * CODES.len());
        for (r, route) in ROUTES.iter().enumerate() {
            for (c, code) in CODES.iter().enumerate() {
                out.push((*route, *code, self.requests[r][c].load(Relaxed)));
            }
        }
        out
    }
    /// Connections closed at accept because [`MAX_CONNECTIONS`] were open.
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }
    /// TLS handshakes that failed or timed out (including plain HTTP sent to the TLS port).
    pub fn tls_failures(&self) -> u64 {
        self.tls_failures.load(Relaxed)
    }
    /// Requests that presented credentials which did not match (a missing header is only a 401).
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Relaxed)
    }
    fn count(&self, route: usize, code: u16) {
        if let Some(c) = CODES.iter().position(|k| *k == code) {
            self.requests[route][c].fetch_add(1, Relaxed);
        }
    }
}

/// A running endpoint. [`Server::stop`] or dropping it stops it, waiting a bounded time.
pub struct Server {
    /// The bound address (the real port when `--listen` asked for port 0).
    pub addr: SocketAddr,
    pub stats: Arc<ServeStats>,
    stop: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Stop accepting, give in-flight responses [`DRAIN_LIMIT`], then end the thread.
    pub fn stop(self) {}

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        let _ = self.stop.send(true);
        match self.done.recv_timeout(DRAIN_LIMIT + Duration::from_secs(1)) {
            Err(mpsc::RecvTimeoutError::Timeout) => warn!("HTTP endpoint did not stop in time; leaving its thread"),
            _ => {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Bind and start serving when `--listen` was given; every setup error surfaces here.
pub fn spawn(args: &ListenArgs, provider: Arc<dyn Provider>) -> Result<Option<Server>, ServeError> {
    let Some(addr) = args.listen else { return Ok(None) };
    let tls = match (&args.listen_tls_cert, &args.listen_tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        (Some(_), None) => return Err(ServeError::TlsPair { missing: "--listen-tls-key" }),
        (None, Some(_)) => return Err(ServeError::TlsPair { missing: "--listen-tls-cert" }),
        (None, None) => None,
    };
    let auth = match &args.listen_auth_file {
        Some(path) => Some(load_auth(path)?),
        None => None,
    };
    if auth.is_some() && tls.is_none() {
        if !addr.ip().is_loopback() {
            return Err(ServeError::AuthInClear { addr });
        }
        warn!(%addr, "--listen-auth-file without TLS: allowed on loopback only; passwords travel in clear");
    }
    let std_listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind {
        addr,
        hint: match source.kind() {
            io::ErrorKind::AddrInUse => "address already in use (another tlsmon or exporter on this port?)",
            io::ErrorKind::PermissionDenied => "not permitted (ports below 1024 need CAP_NET_BIND_SERVICE)",
            io::ErrorKind::AddrNotAvailable => "no local interface has this address",
            _ => "bind failed",
        },
        source,
    })?;
    let bound = std_listener.local_addr().map_err(|source| ServeError::Start { source })?;
    let start = |source| ServeError::Start { source };
    std_listener.set_nonblocking(true).map_err(start)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(start)?;
    let listener = {
        let _guard = rt.enter();
        tokio::net::TcpListener::from_std(std_listener).map_err(start)?
    };
    let stats = Arc::new(ServeStats::default());
    let shared = Arc::new(Shared { provider, stats: stats.clone(), auth });
    let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = mpsc::channel();
    info!(addr = %bound, tls = acceptor.is_some(), auth = shared.auth.is_some(),
          "HTTP endpoint serving /metrics, /inventory, /healthz");
    let thread = std::thread::Builder::new()
        .name("tlsmon-http".into())
        .spawn(move || {
            rt.block_on(accept_loop(listener, acceptor, shared, stop_rx));
            drop(rt);
            let _ = done_tx.send(());
        })
        .map_err(start)?;
    Ok(Some(Server { addr: bound, stats, stop: stop_tx, done: done_rx, thread: Some(thread) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_cover_closed_sets() {
        let s = ServeStats::default();
        s.count(routes::route_of("/metrics"), 200);
        s.count(routes::route_of("/x?y"), 404);
        s.count(0, 500); // not in CODES: ignored rather than a new label
        let all = s.requests();
        assert_eq!(all.len(), ROUTES.len() * CODES.len());
        assert_eq!(all.iter().map(|r| r.2).sum::<u64>(), 2);
        assert!(all.contains(&("metrics", 200, 1)) && all.contains(&("other", 404, 1)));
    }
}
