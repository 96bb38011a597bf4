//! HTTP endpoint stage (`--listen`): serves /metrics, /inventory and /healthz from a [`Provider`]
//! on its own thread and runtime. It must never block the pipeline, hold more than
//! [`MAX_CONNECTIONS`] connections, log anything from a request above `debug`, or log a password.
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

/// What the endpoint serves; implemented by the agent.
pub trait Provider: Send + Sync + 'static {
    /// Prometheus text exposition format 0.0.4.
    fn metrics(&self) -> String;
    /// The posture inventory as one JSON document.
    fn inventory(&self) -> String;
    /// `Ok(body)` → 200, `Err(body)` → 503.
    fn health(&self) -> Result<String, String>;
}

/// Documented default port (`--listen` alone means 127.0.0.1:9863).
pub const DEFAULT_PORT: u16 = 9863;
const DEFAULT_LISTEN: &str = "127.0.0.1:9863";
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
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// `--listen` and its companions.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListenArgs {
    /// Serve Prometheus metrics (/metrics), the posture inventory (/inventory) and a health check
    /// (/healthz) over HTTP; the flag alone listens on 127.0.0.1:9863.
    ///
    /// ADDR is IP:PORT (`0.0.0.0:9863` for every IPv4 interface), [IPv6]:PORT (`[::1]:9863`),
    /// or :PORT / PORT for 127.0.0.1:PORT. Write `--listen=ADDR` when a capture file follows,
    /// otherwise `--listen a.pcap` reads the file name as the address. Beyond loopback, add
    /// --listen-tls-cert/--listen-tls-key and --listen-auth-file; /healthz never asks for a
    /// password, so load balancers and Kubernetes probes work.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_LISTEN,
          value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS (TLS 1.2/1.3 only) with this PEM certificate chain, server certificate first;
    /// goes with --listen-tls-key.
    #[arg(long, value_name = "PEM", requires = "listen", requires = "listen_tls_key")]
    pub listen_tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) matching --listen-tls-cert.
    #[arg(long, value_name = "PEM", requires = "listen", requires = "listen_tls_cert")]
    pub listen_tls_key: Option<PathBuf>,
    /// Require HTTP basic auth on /metrics, /inventory and every path but /healthz. FILE holds
    /// lines `user:password` (`#` comments and blank lines allowed) and must be `chmod 600`.
    /// Refused without TLS unless ADDR is loopback, since the password would travel in clear.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub listen_auth_file: Option<PathBuf>,
}

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

/// `--listen` values: IP:PORT, [v6]:PORT, :PORT or PORT (the last two on 127.0.0.1).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let port = s.strip_prefix(':').unwrap_or(s);
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("`{s}`: port must be 0 to 65535"));
    }
    s.parse().map_err(|_| {
        format!(
            "`{s}` is not a listen address: use IP:PORT, [IPv6]:PORT, :PORT or PORT (no host names); \
             if it is a capture file, write --listen=ADDR or put --listen after it"
        )
    })
}

fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServeError> {
    let read =
        |flag, path: &Path| std::fs::read(path).map_err(|source| ServeError::Read { flag, path: path.into(), source });
    let pem_err = |flag, path: &Path, what| ServeError::Pem { flag, path: path.into(), what };
    let cert_pem = read("--listen-tls-cert", cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| pem_err("--listen-tls-cert", cert, "CERTIFICATE"))?;
    if chain.is_empty() {
        return Err(pem_err("--listen-tls-cert", cert, "CERTIFICATE"));
    }
    let key_pem = read("--listen-tls-key", key)?;
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| pem_err("--listen-tls-key", key, "PRIVATE KEY"))?;
    let tls_err = |source| ServeError::Tls { cert: cert.into(), key: key.into(), source };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Basic-auth credentials, kept as SHA-256 of `user:password` so every comparison is 32 bytes.
struct Auth {
    digests: Vec<[u8; 32]>,
}

fn load_auth(path: &Path) -> Result<Auth, ServeError> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let read_err = |source| ServeError::Read { flag: "--listen-auth-file", path: path.into(), source };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mode = file.metadata().map_err(read_err)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(ServeError::AuthMode { path: path.into(), mode: mode & 0o7777 });
    }
    let mut text = String::new();
    file.by_ref().take(1 << 20).read_to_string(&mut text).map_err(read_err)?;
    let entries =
        parse_auth(&text).map_err(|(line, reason)| ServeError::AuthLine { path: path.into(), line, reason })?;
    if entries.is_empty() {
        return Err(ServeError::AuthEmpty { path: path.into() });
    }
    Ok(Auth { digests: entries.iter().map(|(u, p)| Sha256::digest(format!("{u}:{p}")).into()).collect() })
}

/// Lines `user:password`; `#` comments and blank lines skipped. Errors name the line (1-based) and
/// never contain the password.
fn parse_auth(text: &str) -> Result<Vec<(&str, &str)>, (usize, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            return Err((i + 1, "expected `user:password`"));
        };
        if user.is_empty() || user.trim() != user {
            return Err((i + 1, "user name empty or with surrounding spaces"));
        }
        if password.is_empty() {
            return Err((i + 1, "empty password"));
        }
        if out.iter().any(|(u, _)| *u == user) {
            return Err((i + 1, "user listed twice"));
        }
        out.push((user, password));
    }
    Ok(out)
}

impl Auth {
    /// Checks an `Authorization` header against every entry without stopping early.
    fn check(&self, value: &[u8]) -> bool {
        let Some(encoded) = value.get(..6).filter(|s| s.eq_ignore_ascii_case(b"basic ")).and(value.get(6..)) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(&decoded).into();
        self.digests.iter().fold(false, |ok, d| ct_eq(&presented, d) | ok)
    }
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

struct Shared {
    provider: Arc<dyn Provider>,
    stats: Arc<ServeStats>,
    auth: Option<Auth>,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                debug!(error = %e, "HTTP endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.stats.refused.fetch_add(1, Relaxed);
            debug!("HTTP endpoint: connection refused, {MAX_CONNECTIONS} open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (tls, shared, stop) = (tls.clone(), shared.clone(), stop.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(TokioIo::new(stream), shared, stop).await,
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_connection(TokioIo::new(tls_stream), shared, stop).await,
                    Ok(Err(e)) => {
                        shared.stats.tls_failures.fetch_add(1, Relaxed);
                        debug!(error = %e, "HTTP endpoint: TLS handshake failed");
                    }
                    Err(_) => {
                        shared.stats.tls_failures.fetch_add(1, Relaxed);
                        debug!("HTTP endpoint: TLS handshake timed out");
                    }
                },
            }
        });
    }
    drop(listener);
    // Connections saw the stop too and drain; wait for their slots, bounded.
    let _ = tokio::time::timeout(DRAIN_LIMIT, slots.acquire_many(MAX_CONNECTIONS as u32)).await;
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let response = respond(&shared, &req);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_REQUEST_HEAD).max_headers(64);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { tokio::select! {
            _ = stop.wait_for(|s| *s) => {},
            _ = tokio::time::sleep(CONNECTION_LIMIT) => {},
        } } => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(DRAIN_LIMIT, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => return debug!("HTTP endpoint: connection closed after the drain limit"),
            }
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "HTTP endpoint: connection ended with an error");
    }
}

fn route_of(path: &str) -> usize {
    match path {
        "/metrics" => 0,
        "/inventory" => 1,
        "/healthz" => 2,
        "/" => 3,
        _ => 4,
    }
}

fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let route = route_of(req.uri().path());
    let (code, content_type, body) = answer(shared, req, route);
    shared.stats.count(route, code);
    debug!(route = ROUTES[route], code, "HTTP endpoint: request");
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match code {
        401 => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tlsmon\""));
        }
        405 => {
            h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        _ => {}
    }
    // Bodies are never read: close rather than drain one of unknown size.
    if !req.body().is_end_stream() {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

const TEXT: &str = "text/plain; charset=utf-8";

fn answer(shared: &Shared, req: &Request<Incoming>, route: usize) -> (u16, &'static str, String) {
    if route != 2 {
        if let Some(auth) = &shared.auth {
            let ok = match req.headers().get(header::AUTHORIZATION) {
                None => false,
                Some(v) => {
                    let ok = auth.check(v.as_bytes());
                    if !ok {
                        shared.stats.auth_failures.fetch_add(1, Relaxed);
                    }
                    ok
                }
            };
            if !ok {
                return (401, TEXT, "authentication required\n".into());
            }
        }
    }
    if route != 4 && req.method() != Method::GET && req.method() != Method::HEAD {
        return (405, TEXT, "only GET and HEAD\n".into());
    }
    let p = &shared.provider;
    match route {
        0 => (200, "text/plain; version=0.0.4; charset=utf-8", p.metrics()),
        1 => (200, "application/json", p.inventory()),
        2 => match p.health() {
            Ok(body) => (200, TEXT, body),
            Err(body) => (503, TEXT, body),
        },
        3 => (
            200,
            TEXT,
            "tlsmon\n/metrics    Prometheus metrics\n/inventory  posture inventory (JSON)\n/healthz    health check\n"
                .into(),
        ),
        _ => (404, TEXT, "not found; try /metrics, /inventory or /healthz\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        listen: ListenArgs,
        files: Vec<String>,
    }

    fn lo(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("9100"), Ok(lo(9100)));
        assert_eq!(parse_listen(":9100"), Ok(lo(9100)));
        assert_eq!(parse_listen("0.0.0.0:9863"), Ok("0.0.0.0:9863".parse().unwrap()));
        assert_eq!(parse_listen("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        assert_eq!(parse_listen(DEFAULT_LISTEN), Ok(lo(DEFAULT_PORT)));
        for bad in ["", ":", "70000", ":70000", "localhost:9100", "a.pcap", "::1:80", "1.2.3.4"] {
            assert!(parse_listen(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_listen("a.pcap").unwrap_err().contains("--listen=ADDR"));
    }

    #[test]
    fn listen_flag_forms() {
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()));
        assert_eq!(parse(&[]).unwrap().listen.listen, None);
        assert_eq!(parse(&["--listen"]).unwrap().listen.listen, Some(lo(DEFAULT_PORT)));
        let c = parse(&["--listen=:9100", "a.pcap"]).unwrap();
        assert_eq!((c.listen.listen, c.files), (Some(lo(9100)), vec!["a.pcap".to_string()]));
        let c = parse(&["a.pcap", "--listen"]).unwrap();
        assert_eq!((c.listen.listen, c.files.len()), (Some(lo(DEFAULT_PORT)), 1));
        assert!(parse(&["--listen", "a.pcap"]).is_err());
        assert!(parse(&["--listen", "--listen-tls-cert", "c.pem"]).is_err(), "cert without key");
        assert!(parse(&["--listen-auth-file", "f"]).is_err(), "auth without --listen");
    }

    #[test]
    fn auth_file_lines() {
        let ok = parse_auth("# scrapers\n\nprom:s3cret:with:colons\r\n  # indented comment\nops:x\n").unwrap();
        assert_eq!(ok, vec![("prom", "s3cret:with:colons"), ("ops", "x")]);
        assert_eq!(parse_auth("# only\n\n").unwrap(), vec![]);
        assert_eq!(parse_auth("a:b\nnocolon-s3cret\n"), Err((2, "expected `user:password`")));
        assert_eq!(parse_auth(":pw\n").unwrap_err().0, 1);
        assert_eq!(parse_auth("a:b\n\nu:\n").unwrap_err(), (3, "empty password"));
        assert_eq!(parse_auth("a:b\na:c\n").unwrap_err(), (2, "user listed twice"));
        // The reason never carries the password.
        let (_, reason) = parse_auth("hunter2-without-colon\n").unwrap_err();
        assert!(!reason.contains("hunter2"));
    }

    #[test]
    fn auth_header_check() {
        let auth = Auth { digests: vec![Sha256::digest("a:b").into(), Sha256::digest("prom:pw:x").into()] };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(auth.check(format!("Basic {}", b64("prom:pw:x")).as_bytes()));
        assert!(auth.check(format!("basic {}", b64("a:b")).as_bytes()));
        assert!(!auth.check(format!("Basic {}", b64("prom:pw")).as_bytes()));
        assert!(!auth.check(format!("Bearer {}", b64("a:b")).as_bytes()));
        assert!(!auth.check(b"Basic !!!"));
        assert!(!auth.check(b"Basic"));
    }

    #[test]
    fn stats_cover_closed_sets() {
        let s = ServeStats::default();
        s.count(route_of("/metrics"), 200);
        s.count(route_of("/x?y"), 404);
        s.count(0, 500); // not in CODES: ignored rather than a new label
        let all = s.requests();
        assert_eq!(all.len(), ROUTES.len() * CODES.len());
        assert_eq!(all.iter().map(|r| r.2).sum::<u64>(), 2);
        assert!(all.contains(&("metrics", 200, 1)) && all.contains(&("other", 404, 1)));
    }
}
