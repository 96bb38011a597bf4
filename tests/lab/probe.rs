//! Lab servers for the prober's tests (issue 14) and the demo: TLS 1.3 servers whose certificate
//! a passive monitor cannot see (expired self-signed, valid from the lab CA, 80 KB, a server
//! that still accepts TLS 1.0 too), and "two-faced" servers that serve the lab's clients through
//! a real TLS 1.3 server but treat every other peer (the prober, from mon) badly: never answer,
//! or answer garbage. Certificates are made at run time in the lab dir.
//! Must never listen or connect outside the lab's server namespace, nor write outside the lab
//! dir; every thread and process it starts ends with the server handle or the lab.
use std::{
    fs::{self, File},
    io::{self, Read as _, Write as _},
    net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream},
    os::unix::io::AsRawFd as _,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::{Family, Lab};

/// What a probe-lab TLS server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `openssl s_server -tls1_3` with the expired self-signed certificate of the lab.
    Expired,
    /// `openssl s_server -tls1_3` with a leaf from the lab CA naming every probe-lab SNI.
    Valid,
    /// `openssl s_server -tls1_3` with a leaf of about 80 KB (thousands of SANs): over the
    /// 64 KiB a TLS handshake message of rustls may hold, under OpenSSL's 100 KiB.
    Huge,
    /// `openssl s_server` accepting TLS 1.0 to 1.3 (`-min_protocol TLSv1`, security level 0).
    Mixed,
}

/// One probe-lab TLS server.
#[derive(Clone, Copy, Debug)]
pub struct ProbeServer {
    pub name: &'static str,
    pub kind: Kind,
    pub port: u16,
    /// The SNI the clients send.
    pub sni: &'static str,
}

/// SNI of the expired self-signed certificate (its CN and only SAN, made by the lab).
pub const EXPIRED_SNI: &str = "expired.lab.test";
/// Names the valid leaf covers.
pub const VALID_NAMES: &[&str] =
    &["valid.lab.test", "mixed.lab.test", "hang.lab.test", "garbage.lab.test", "unreach.lab.test", "other.lab.test"];
/// The demo's TLS 1.3 server with the expired certificate (next to the lab's five).
pub const DEMO_EXPIRED13: ProbeServer =
    ProbeServer { name: "exp-1.3", kind: Kind::Expired, port: 4436, sni: EXPIRED_SNI };

/// The demo's probe server on `port`, if any (for [`super::summary`]).
pub fn probe_server_on(port: u16) -> Option<&'static ProbeServer> {
    [&DEMO_EXPIRED13].into_iter().find(|s| s.port == port)
}

/// Most time one stock client may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(15);

impl Lab {
    /// The lab certificates (CA, leaf, expired self-signed; see servers.rs) plus `valid.pem`
    /// (lab CA → leaf for [`VALID_NAMES`]) and `huge.pem` (lab CA → leaf of about 80 KB).
    pub fn make_probe_certs(&self) -> Result<()> {
        self.make_certs()?;
        let dir = &self.dir;
        let san = VALID_NAMES.iter().map(|n| format!("DNS:{n}")).collect::<Vec<_>>().join(",");
        let ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                   extendedKeyUsage=serverAuth\n";
        fs::write(dir.join("valid.ext"), format!("{ext}subjectAltName={san}\n"))?;
        let many: Vec<String> = (0..3600).map(|i| format!("DNS:n{i:05}.huge.lab.test")).collect();
        fs::write(dir.join("huge.ext"), format!("{ext}subjectAltName=DNS:huge.lab.test,{}\n", many.join(",")))?;
        for (name, cn, serial) in [("valid", "valid.lab.test", "0x2001"), ("huge", "huge.lab.test", "0x2002")] {
            let subj = format!("/O=tlsmon lab/CN={cn}");
            let (key, csr, pem, extf) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
            openssl(
                dir,
                &["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj],
            )?;
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "365",
                    "-sha256",
                    "-extfile",
                    &extf,
                    "-out",
                    &pem,
                ],
            )?;
        }
        Ok(())
    }

    /// Starts `server` in the server namespace, listening on every address on its port (or on
    /// `127.0.0.1:PORT` only with `loopback`: the upstream of a two-faced server). Call
    /// [`Lab::make_probe_certs`] first.
    pub fn start_probe_server(&mut self, server: &ProbeServer, loopback: bool) -> Result<()> {
        let d = |f: &str| self.dir.join(f).to_string_lossy().into_owned();
        let (cert, key) = match server.kind {
            Kind::Expired => (d("expired.pem"), d("expired.key")),
            Kind::Valid | Kind::Mixed => (d("valid.pem"), d("valid.key")),
            Kind::Huge => (d("huge.pem"), d("huge.key")),
        };
        let accept = if loopback { format!("127.0.0.1:{}", server.port) } else { server.port.to_string() };
        let mut args = vec!["s_server", "-accept", &accept, "-www", "-quiet", "-cert", &cert, "-key", &key];
        match server.kind {
            Kind::Mixed => args.extend(["-min_protocol", "TLSv1", "-cipher", "DEFAULT@SECLEVEL=0"]),
            _ => args.push("-tls1_3"),
        }
        let ns = self.server_ns.clone();
        self.spawn(&format!("server-{}", server.name), &ns, "openssl", &args)
    }

    /// Adds `host` of the server-side subnet as a second address of the server (both
    /// families); servers listening on every address answer there too.
    pub fn add_server_addr(&self, host: u8) -> Result<()> {
        for f in Family::BOTH {
            let a = format!("{}/{}", self.server_subnet_addr(f, host), self.server_prefix_len(f));
            let mut args = vec!["-n", &self.server_ns, "addr", "add", &a, "dev", super::SERVER_IF];
            if f == Family::V6 {
                args.extend(["nodad"]);
            }
            run_ip(&args)?;
        }
        Ok(())
    }

    /// Blackholes `addr` for connections mon opens itself (the prober's): a policy rule for
    /// locally generated packets (`iif lo`) sends them to a table whose only route is a
    /// blackhole, while forwarded client traffic to the same address is untouched.
    pub fn blackhole_from_mon(&self, addr: IpAddr) -> Result<()> {
        let fam = if addr.is_ipv4() { "-4" } else { "-6" };
        let a = addr.to_string();
        let m = &self.mon_ns;
        run_ip(&["-n", m, fam, "rule", "add", "iif", "lo", "to", &a, "lookup", "214", "priority", "100"])?;
        run_ip(&["-n", m, fam, "route", "add", "blackhole", &a, "table", "214"])
    }

    /// `openssl s_client -tls1_3` (with `extra`) from the client namespace to `addr` with `sni`,
    /// to completion; `name` labels its log. Fails with the log unless the handshake completed
    /// (certificate verification is not asked for).
    pub fn s_client13(&self, name: &str, addr: SocketAddr, sni: &str, extra: &[&str]) -> Result<()> {
        let connect = addr.to_string();
        let mut args = vec!["s_client", "-connect", &connect, "-servername", sni, "-tls1_3"];
        args.extend(extra);
        let status = self.run(name, &self.client_ns, "openssl", &args, CLIENT_LIMIT)?;
        if !status.success() {
            bail!("openssl s_client → {addr} ({sni}) failed ({status}); its log:\n{}", self.log(name));
        }
        Ok(())
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().context("running openssl")?;
    if !out.status.success() {
        bail!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn run_ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// How a two-faced server treats a peer that is not a lab client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// Accepts and never sends a byte (holds the connection until the peer or the test ends it).
    Hang,
    /// Answers with 4 KiB that are not TLS — an HTTP error line, an HL7 message carrying the
    /// lab's fake patient (whatever reports on this answer must not repeat it), then filler —
    /// and closes.
    Garbage,
}

/// One connection a two-faced server accepted.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub peer: IpAddr,
    pub at: Instant,
    /// Relayed to the real server (a lab client) or given the bad face.
    pub relayed: bool,
}

/// A server in the server namespace that relays the lab clients' connections to a real TLS
/// server on loopback and shows every other peer its [`Face`].
pub struct TwoFaced {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    thread: Option<JoinHandle<()>>,
}

impl TwoFaced {
    /// Listens on `[::]:port` (both families) in the lab's server namespace; relays the lab
    /// client's connections to `127.0.0.1:upstream` there.
    pub fn start(lab: &Lab, port: u16, upstream: u16, face: Face) -> Result<TwoFaced> {
        let clients = [lab.client_addr(Family::V4), lab.client_addr(Family::V6)];
        let path = format!("/run/netns/{}", lab.server_ns);
        let ns = File::open(&path).with_context(|| format!("opening {path}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<io::Result<()>>();
        let (stop2, accepted2) = (stop.clone(), accepted.clone());
        let thread = thread::spawn(move || {
            // SAFETY: plain syscall on a valid fd; it only changes this thread (and the threads
            // it starts, which inherit its namespace).
            let listener = if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                Err(io::Error::last_os_error())
            } else {
                TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).and_then(|l| l.set_nonblocking(true).map(|_| l))
            };
            let listener = match listener {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            serve(listener, &clients, upstream, face, &stop2, &accepted2);
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("two-faced server on port {port}: {e}"),
            Err(_) => bail!("two-faced server on port {port} did not start"),
        }
        Ok(TwoFaced { port, stop, accepted, thread: Some(thread) })
    }

    /// Every connection accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Drop for TwoFaced {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    clients: &[IpAddr],
    upstream: u16,
    face: Face,
    stop: &AtomicBool,
    accepted: &Mutex<Vec<Accepted>>,
) {
    // Held (hanging) connections, kept open until the test ends.
    let mut held = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let (conn, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => continue,
        };
        let at = Instant::now();
        let _ = conn.set_nonblocking(false);
        let peer = peer.ip().to_canonical();
        let relayed = clients.contains(&peer);
        if let Ok(mut a) = accepted.lock() {
            a.push(Accepted { peer, at, relayed });
        }
        if relayed {
            relay(conn, upstream);
            continue;
        }
        match face {
            Face::Hang => held.push(conn),
            Face::Garbage => {
                let mut junk = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 4000\r\n\r\n".to_vec();
                junk.extend(super::plain::SENT[0].as_bytes());
                junk.extend((0..4096 - junk.len()).map(|i| (i * 7 + 1) as u8));
                let mut conn = conn;
                let _ = conn.write_all(&junk);
                let _ = conn.shutdown(Shutdown::Write);
                // Let the peer read it before the socket goes (unread input would reset it).
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut sink = [0u8; 4096];
                while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
            }
        }
    }
    drop(held);
}

/// Copies both ways between a lab client and the real server on `127.0.0.1:upstream`, on two
/// threads that end with the connection.
fn relay(client: TcpStream, upstream: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
    let pairs = [(client.try_clone(), server.try_clone()), (server.try_clone(), client.try_clone())];
    for (from, to) in pairs {
        if let (Ok(mut from), Ok(mut to)) = (from, to) {
            thread::spawn(move || {
                let _ = io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            });
        }
    }
}
