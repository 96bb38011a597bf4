//! The `--listen` HTTP endpoint against real clients (curl, openssl s_client, raw TCP) on
//! loopback: routes, HEAD, 404/405, TLS 1.2/1.3 only, basic auth, setup errors, the connection cap.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor::cli::ListenArgs;
use monitor::serve::{self, Provider, ServeError, Server};

const METRICS: &str = "# HELP tlsmon_up Whether the agent runs.\n# TYPE tlsmon_up gauge\ntlsmon_up 1\n";
const INVENTORY: &str = "{\"servers\":[]}";

struct Dummy {
    healthy: AtomicBool,
}

impl Provider for Dummy {
    fn metrics(&self) -> String {
        METRICS.into()
    }
    fn inventory(&self) -> String {
        INVENTORY.into()
    }
    fn health(&self) -> Result<String, String> {
        if self.healthy.load(Ordering::Relaxed) {
            Ok("ok\n".into())
        } else {
            Err("capture stalled\n".into())
        }
    }
}

fn dummy() -> Arc<Dummy> {
    Arc::new(Dummy { healthy: AtomicBool::new(true) })
}

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tlsmon-serve-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn loopback_args() -> ListenArgs {
    ListenArgs { listen: Some("127.0.0.1:0".parse().unwrap()), ..Default::default() }
}

fn start(args: &ListenArgs, provider: Arc<dyn Provider>) -> Server {
    serve::spawn(args, provider).expect("spawn").expect("--listen given")
}

fn spawn_err(args: &ListenArgs) -> String {
    match serve::spawn(args, dummy()) {
        Ok(_) => panic!("spawn should have failed"),
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            msg
        }
    }
}

/// One curl run: status (0 when no HTTP answer), response headers (lower-cased), body, stderr.
struct Curl {
    ok: bool,
    status: u16,
    headers: String,
    body: String,
    stderr: String,
}

fn curl(args: &[&str]) -> Curl {
    let out = Command::new("timeout")
        .args(["15", "curl", "-sS", "-i", "--noproxy", "*", "--max-time", "5"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = stdout.split_once("\r\n\r\n").unwrap_or((&stdout, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Curl {
        ok: out.status.success(),
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn url(server: &Server, scheme: &str, path: &str) -> String {
    format!("{scheme}://127.0.0.1:{}{path}", server.addr.port())
}

fn count(server: &Server, route: &str, code: u16) -> u64 {
    server.stats.requests().iter().find(|(r, c, _)| *r == route && *c == code).map(|x| x.2).expect("label pair")
}

/// Sends raw bytes and reads until the server closes (or 5 s pass).
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A self-signed P-256 certificate for 127.0.0.1/localhost: (cert.pem, key.pem).
fn make_cert(dir: &TempDir, stem: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.0.join(format!("{stem}-cert.pem")), dir.0.join(format!("{stem}-key.pem")));
    let out = Command::new("timeout")
        .args(["30", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

fn tls_args(cert: &Path, key: &Path) -> ListenArgs {
    ListenArgs { listen_tls_cert: Some(cert.into()), listen_tls_key: Some(key.into()), ..loopback_args() }
}

#[test]
fn absent_flag_serves_nothing() {
    assert!(serve::spawn(&ListenArgs::default(), dummy()).expect("no error").is_none());
}

#[test]
fn routes_with_curl() {
    let provider = dummy();
    let server = start(&loopback_args(), provider.clone());
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(server.addr.port(), 0);

    let r = curl(&[&url(&server, "http", "/metrics")]);
    assert_eq!(r.status, 200, "{}", r.stderr);
    assert!(r.headers.contains("content-type: text/plain; version=0.0.4; charset=utf-8"), "{}", r.headers);
    assert_eq!(r.body, METRICS);

    let r = curl(&[&url(&server, "http", "/inventory")]);
    assert_eq!((r.status, r.body.as_str()), (200, INVENTORY));
    assert!(r.headers.contains("content-type: application/json"), "{}", r.headers);

    let r = curl(&[&url(&server, "http", "/healthz")]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert!(r.headers.contains("content-type: text/plain"));
    provider.healthy.store(false, Ordering::Relaxed);
    let r = curl(&[&url(&server, "http", "/healthz")]);
    assert_eq!((r.status, r.body.as_str()), (503, "capture stalled\n"));

    let r = curl(&[&url(&server, "http", "/")]);
    assert_eq!(r.status, 200);
    for endpoint in ["/metrics", "/inventory", "/healthz"] {
        assert!(r.body.contains(endpoint), "index lacks {endpoint}: {}", r.body);
    }

    // HEAD: same status and type, no body.
    let r = curl(&["-I", &url(&server, "http", "/metrics")]);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(r.headers.contains("content-type: text/plain; version=0.0.4"), "{}", r.headers);

    let r = curl(&[&url(&server, "http", "/nope")]);
    assert_eq!(r.status, 404);
    let r = curl(&["-X", "POST", "-d", "x=1", &url(&server, "http", "/metrics")]);
    assert_eq!(r.status, 405);
    assert!(r.headers.contains("allow: get, head"), "{}", r.headers);
    let r = curl(&["-X", "DELETE", &url(&server, "http", "/inventory")]);
    assert_eq!(r.status, 405);

    assert_eq!(count(&server, "metrics", 200), 2);
    assert_eq!(count(&server, "metrics", 405), 1);
    assert_eq!(count(&server, "inventory", 200), 1);
    assert_eq!(count(&server, "inventory", 405), 1);
    assert_eq!((count(&server, "healthz", 200), count(&server, "healthz", 503)), (1, 1));
    assert_eq!((count(&server, "index", 200), count(&server, "other", 404)), (1, 1));
    assert_eq!(server.stats.requests().iter().map(|x| x.2).sum::<u64>(), 9);
    assert_eq!(serve::ROUTES.len() * serve::CODES.len(), server.stats.requests().len());
}

#[test]
fn raw_tcp_requests() {
    let server = start(&loopback_args(), dummy());
    let r = raw(server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.ends_with(METRICS), "{r}");

    // Keep-alive: two requests on one connection, both answered.
    let r = raw(
        server.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /inventory HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 2, "{r}");
    assert!(r.ends_with(INVENTORY), "{r}");

    // HTTP/1.0 and a query string still route by path.
    let r = raw(server.addr, b"GET /inventory?x=1 HTTP/1.0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.0 200 OK\r\n") && r.ends_with(INVENTORY), "{r}");

    // A body is never read: 405 and the connection closes instead of draining it.
    let r = raw(server.addr, b"PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial");
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    assert!(r.to_ascii_lowercase().contains("connection: close"), "{r}");

    // Oversized request head: refused by hyper, the server goes on.
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(64 * 1024));
    let r = raw(server.addr, big.as_bytes());
    assert!(!r.contains("200 OK"), "{r}");
    let r = raw(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
    assert_eq!(count(&server, "healthz", 200), 2);
}

#[test]
fn tls_12_and_13_only() {
    let dir = TempDir::new("tls");
    let (cert, key) = make_cert(&dir, "a");
    let server = start(&tls_args(&cert, &key), dummy());
    let cacert = cert.to_str().unwrap();

    let r = curl(&["-v", "--cacert", cacert, &url(&server, "https", "/metrics")]);
    assert_eq!((r.status, r.body.as_str()), (200, METRICS), "{}", r.stderr);
    assert!(r.stderr.contains("TLSv1.3"), "{}", r.stderr);
    assert!(r.stderr.contains("ALPN") && r.stderr.contains("accepted http/1.1"), "{}", r.stderr);

    let r = curl(&["-v", "--tlsv1.2", "--tls-max", "1.2", "--cacert", cacert, &url(&server, "https", "/inventory")]);
    assert_eq!(r.status, 200, "{}", r.stderr);
    assert!(r.stderr.contains("TLSv1.2"), "{}", r.stderr);
    assert_eq!(server.stats.tls_failures(), 0);

    // TLS 1.1 offered by a client that would accept it (SECLEVEL=0): the server refuses.
    let out = Command::new("timeout")
        .args(["15", "openssl", "s_client", "-connect", &server.addr.to_string(), "-tls1_1"])
        .args(["-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    assert!(!out.status.success(), "TLS 1.1 accepted: {}", String::from_utf8_lossy(&out.stdout));
    wait_until("TLS 1.1 counted", || server.stats.tls_failures() == 1);

    // Plain HTTP to the TLS port fails, is counted, and the server keeps serving.
    let r = curl(&[&url(&server, "http", "/metrics")]);
    assert!(!r.ok && r.status != 200, "plain HTTP answered on the TLS port");
    wait_until("plain HTTP counted", || server.stats.tls_failures() == 2);
    let r = curl(&["--cacert", cacert, &url(&server, "https", "/healthz")]);
    assert_eq!(r.status, 200, "{}", r.stderr);
    // A client that connects and sends garbage.
    let _ = raw(server.addr, b"\x16\x03\x01\x00\x05hello");
    wait_until("garbage counted", || server.stats.tls_failures() == 3);
    let r = curl(&["--cacert", cacert, &url(&server, "https", "/")]);
    assert_eq!(r.status, 200, "{}", r.stderr);
}

#[test]
fn tls_setup_errors() {
    let dir = TempDir::new("tlserr");
    let (cert_a, key_a) = make_cert(&dir, "a");
    let (_, key_b) = make_cert(&dir, "b");
    let msg = spawn_err(&tls_args(&cert_a, &key_b));
    assert!(msg.contains("--listen-tls-key") && msg.contains("does not fit") && msg.contains("b-key.pem"), "{msg}");

    let junk = dir.file("junk.pem", "not a certificate\n", 0o644);
    let msg = spawn_err(&tls_args(&junk, &key_a));
    assert!(msg.contains("--listen-tls-cert") && msg.contains("junk.pem") && msg.contains("no CERTIFICATE"), "{msg}");
    let msg = spawn_err(&tls_args(&cert_a, &cert_a));
    assert!(msg.contains("--listen-tls-key") && msg.contains("no PRIVATE KEY"), "{msg}");
    let msg = spawn_err(&tls_args(&cert_a, &dir.0.join("missing.pem")));
    assert!(msg.contains("--listen-tls-key") && msg.contains("missing.pem") && msg.contains("cannot read"), "{msg}");

    let msg = spawn_err(&ListenArgs { listen_tls_cert: Some(cert_a.clone()), ..loopback_args() });
    assert!(msg.contains("--listen-tls-key is missing"), "{msg}");
}

#[test]
fn basic_auth() {
    let dir = TempDir::new("auth");
    let file = dir.file("users", "# scrapers\n\nprom:correct horse\nops:other:pw\n", 0o600);
    let args = ListenArgs { listen_auth_file: Some(file), ..loopback_args() };
    let server = start(&args, dummy());

    let r = curl(&[&url(&server, "http", "/metrics")]);
    assert_eq!(r.status, 401);
    assert!(r.headers.contains("www-authenticate: basic realm=\"tlsmon\""), "{}", r.headers);
    assert!(!r.body.contains("tlsmon_up"));
    assert_eq!(server.stats.auth_failures(), 0, "no credentials is not a failed attempt");

    let r = curl(&["-u", "prom:wrong", &url(&server, "http", "/metrics")]);
    assert_eq!(r.status, 401);
    let r = curl(&["-u", "nobody:correct horse", &url(&server, "http", "/inventory")]);
    assert_eq!(r.status, 401);
    assert_eq!(server.stats.auth_failures(), 2);

    let r = curl(&["-u", "prom:correct horse", &url(&server, "http", "/metrics")]);
    assert_eq!((r.status, r.body.as_str()), (200, METRICS));
    let r = curl(&["-u", "ops:other:pw", &url(&server, "http", "/inventory")]);
    assert_eq!(r.status, 200);
    assert_eq!(curl(&[&url(&server, "http", "/")]).status, 401);
    assert_eq!(curl(&[&url(&server, "http", "/elsewhere")]).status, 401, "no path probing without auth");

    let r = curl(&[&url(&server, "http", "/healthz")]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(count(&server, "metrics", 401), 2);
    assert_eq!(count(&server, "metrics", 200), 1);
}

#[test]
fn auth_with_tls() {
    let dir = TempDir::new("authtls");
    let (cert, key) = make_cert(&dir, "a");
    let file = dir.file("users", "prom:pw\n", 0o600);
    // Non-loopback is fine with TLS: bind every interface on port 0, talk over loopback.
    let args = ListenArgs {
        listen: Some("0.0.0.0:0".parse().unwrap()),
        listen_auth_file: Some(file),
        ..tls_args(&cert, &key)
    };
    let server = start(&args, dummy());
    let cacert = cert.to_str().unwrap();
    assert_eq!(curl(&["--cacert", cacert, &url(&server, "https", "/metrics")]).status, 401);
    assert_eq!(curl(&["--cacert", cacert, "-u", "prom:pw", &url(&server, "https", "/metrics")]).status, 200);
}

#[test]
fn auth_file_refusals() {
    let dir = TempDir::new("authfile");
    let with = |path: PathBuf| ListenArgs { listen_auth_file: Some(path), ..loopback_args() };

    let readable = dir.file("group", "prom:pw\n", 0o640);
    let msg = spawn_err(&with(readable));
    assert!(msg.contains("--listen-auth-file") && msg.contains("chmod 600") && msg.contains("0640"), "{msg}");

    let bad = dir.file("bad", "prom:fine\nhunter2-no-colon\n", 0o600);
    let msg = spawn_err(&with(bad));
    assert!(msg.contains("line 2") && !msg.contains("hunter2") && !msg.contains("fine"), "{msg}");

    let empty = dir.file("empty", "# nobody yet\n\n", 0o600);
    assert!(spawn_err(&with(empty)).contains("no `user:password` line"));

    let msg = spawn_err(&with(dir.0.join("absent")));
    assert!(msg.contains("--listen-auth-file") && msg.contains("cannot read"), "{msg}");

    let good = dir.file("good", "prom:pw\n", 0o600);
    let args = ListenArgs { listen: Some("0.0.0.0:0".parse().unwrap()), ..with(good) };
    let msg = spawn_err(&args);
    assert!(msg.contains("in clear") && msg.contains("--listen-tls-cert"), "{msg}");
}

#[test]
fn port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let args = ListenArgs { listen: Some(addr), ..Default::default() };
    let err = serve::spawn(&args, dummy()).err().expect("bind must fail");
    assert!(matches!(err, ServeError::Bind { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("--listen {addr}")) && msg.contains("already in use"), "{msg}");
}

#[test]
fn connection_cap() {
    let server = start(&loopback_args(), dummy());
    let idle: Vec<TcpStream> = (0..serve::MAX_CONNECTIONS)
        .map(|_| TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).expect("connect"))
        .collect();
    // Accepted in order, so the next connection finds every slot taken.
    let r = raw(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r, "", "served beyond the cap");
    wait_until("refusal counted", || server.stats.refused() == 1);
    assert_eq!(count(&server, "healthz", 200), 0);

    drop(idle);
    // Until the server sees the closes, a retry is refused too, and counted.
    let mut retries_refused = 0;
    wait_until("slots freed", || {
        let r = raw(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        retries_refused += u64::from(r.is_empty());
        r.starts_with("HTTP/1.1 200")
    });
    assert_eq!(server.stats.refused(), 1 + retries_refused);
    assert_eq!(count(&server, "healthz", 200), 1);
}

#[test]
fn stop_is_bounded_and_frees_the_port() {
    let server = start(&loopback_args(), dummy());
    let addr = server.addr;
    // An idle connection and one with half a request do not hold the stop up.
    let _idle = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let t = Instant::now();
    server.stop();
    assert!(t.elapsed() < Duration::from_secs(4), "stop took {:?}", t.elapsed());
    let again = ListenArgs { listen: Some(addr), ..Default::default() };
    let server = start(&again, dummy());
    assert_eq!(server.addr, addr);
    drop(server);
}
