//! The prober against real peers on loopback: `openssl s_server` (installed by setup), a
//! listener that answers garbage, one that never answers, and a port nobody listens on.
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};

use super::*;
use crate::inspect::tls::hello::{ClientHello, ServerHello};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A child process killed on every exit path.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tlsmon-probe-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `openssl s_server -tls1_3` with a fresh self-signed P-256 certificate for `cn`.
fn s_server(port: u16, cn: &str) -> (Kill, std::path::PathBuf) {
    let dir = tmpdir(&format!("srv{port}"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", "k.pem", "-out", "c.pem", "-days", "30", "-subj", &format!("/CN={cn}")])
        .current_dir(&dir)
        .output()
        .expect("openssl runs");
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let child = Command::new("openssl")
        .args(["s_server", "-tls1_3", "-accept", &format!("127.0.0.1:{port}"), "-cert", "c.pem", "-key", "k.pem"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_server starts");
    let k = Kill(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect((LO, port)).is_ok() {
            return (k, dir);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("s_server on port {port} did not listen");
}

fn cfg(allow: &str) -> ProbeConfig {
    ProbeConfig {
        allow: vec![Rule::parse(allow).unwrap()],
        deny: Vec::new(),
        queue: QueueConfig { rate_per_s: 20, ..Default::default() },
        timeout: Duration::from_secs(1),
        all: false,
        versions: false,
        policy: Policy::default(),
        trust: None,
    }
}

fn target(port: u16, sni: &str) -> Target {
    Target { ip: LO, port, sni: Some(sni.into()), why: "test" }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn ids(o: &Output) -> Vec<&'static str> {
    o.findings.iter().map(|f| f.id).collect()
}

fn probe_facts(o: &Output) -> &ProbeFacts {
    o.handshake().and_then(|h| h.probe.as_deref()).expect("probe facts")
}

/// A passive TLS 1.3 handshake to `port` (no certificate seen), as the pipeline judges it.
fn passive_tls13(ip: IpAddr, port: u16) -> Output {
    let hs = Handshake {
        server: Endpoint { addr: Addr::from_ip(ip), port },
        client_hello: Some(ClientHello { sni: Some("ehr.lab".into()), ..Default::default() }),
        server_hello: Some(ServerHello { version: 0x0303, selected_version: Some(0x0304), ..Default::default() }),
        ..Default::default()
    };
    Output { observed: Observed::Tls { handshake: hs, upgrade: None }, findings: Vec::new(), local: Default::default() }
}

#[test]
fn wanted_servers_showed_no_certificate() {
    let o = passive_tls13(LO, 443);
    let (t, why) = wanted(&o, false).expect("TLS 1.3 hides the certificate");
    assert_eq!((t.port, t.sni.as_deref(), why), (443, Some("ehr.lab"), "tls13-certificate-encrypted"));
    let mut seen = o.clone();
    if let Observed::Tls { handshake, .. } = &mut seen.observed {
        handshake.certs.push(Default::default());
    }
    assert!(wanted(&seen, false).is_none(), "certificate seen: nothing to probe");
    assert_eq!(wanted(&seen, true).map(|(_, w)| w), Some("probe-all"));
    let mut own = o.clone();
    if let Observed::Tls { handshake, .. } = &mut own.observed {
        handshake.probe = Some(Box::default());
    }
    assert!(wanted(&own, true).is_none(), "the prober's own results are never probed");
    let mut quic = o.clone();
    if let Observed::Tls { handshake, .. } = &mut quic.observed {
        handshake.quic = Some(Default::default());
    }
    assert!(wanted(&quic, true).is_none(), "QUIC: the prober speaks TLS over TCP only");
    let none = Output {
        observed: Observed::Tls { handshake: Handshake::default(), upgrade: None },
        findings: vec![],
        local: Default::default(),
    };
    assert!(wanted(&none, true).is_none(), "no ServerHello: no TLS server answered");
}

#[test]
fn a_tls13_server_gives_its_chain_and_the_policy_judges_it() {
    let (_srv, dir) = s_server(47_401, "selfsigned.lab");
    let c = cfg("127.0.0.1/32:47401");
    let t = target(47_401, "ehr.lab");
    let rec = rt().block_on(conn::handshake(SocketAddr::new(LO, 47_401), Some("ehr.lab"), c.timeout, &Own::default()));
    assert_eq!(rec.outcome, Some(Outcome::Ok), "{:?}", rec.error);
    assert_eq!(rec.chain.len(), 1);
    let o = judge(&t, &rec, Vec::new(), wall_ns(), &c);
    let hs = o.handshake().unwrap();
    assert_eq!(hs.version(), Some(0x0304), "TLS 1.3 negotiated");
    assert!(hs.established);
    assert_eq!(hs.certs[0].subject_cn.as_deref(), Some("selfsigned.lab"));
    assert_eq!(hs.client_hello.as_ref().and_then(|c| c.sni.as_deref()), Some("ehr.lab"), "the SNI sent");
    let found = ids(&o);
    assert!(found.contains(&"tls.cert.self-signed"), "{found:?}");
    assert!(found.contains(&"tls.cert.name-mismatch"), "the certificate does not cover ehr.lab: {found:?}");
    assert!(o.findings.iter().all(|f| f.evidence.contains("(probe at ")), "{:?}", o.findings);
    assert_eq!(probe_facts(&o).result, "ok");
    // Trusted with the server's own certificate as the bundle: no untrusted finding.
    let store = TrustStore::from_pem_file(&dir.join("c.pem")).unwrap();
    let trusted = ProbeConfig { trust: Some(Arc::new(store)), ..c };
    let o = judge(&t, &rec, Vec::new(), wall_ns(), &trusted);
    assert_eq!(o.handshake().unwrap().chain_trust, Some(crate::inspect::tls::trust::Trust::Trusted));
    std::fs::remove_dir_all(dir).ok();
}

/// A listener on a free loopback port that does `serve` with each connection.
fn listener(serve: fn(std::net::TcpStream)) -> u16 {
    let l = TcpListener::bind((LO, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    port
}

#[test]
fn unreachable_hanging_and_garbage_servers_end_in_clear_findings() {
    let c = cfg("127.0.0.0/8");
    let rt = rt();
    // Nobody listens: a port bound then closed.
    let closed = TcpListener::bind((LO, 0)).unwrap().local_addr().unwrap().port();
    let garbage = listener(|mut s| {
        let _ = s.write_all(&[0x47; 4096]);
    });
    let hanging = listener(|s| {
        std::thread::sleep(Duration::from_secs(5));
        drop(s);
    });
    // A record header announcing far more than any handshake may hold, then bytes.
    let huge = listener(|mut s| {
        let mut rec = vec![22, 3, 3, 0xff, 0xff, 2, 0xff, 0xff, 0xff];
        rec.resize(5 + 0xffff, 0x30);
        let _ = s.write_all(&rec);
    });
    let cases = [
        (closed, "unreachable", "probe.unreachable"),
        (garbage, "failed", "probe.failed"),
        (hanging, "timeout", "probe.unreachable"),
        (huge, "failed", "probe.failed"),
    ];
    for (port, result, id) in cases {
        let t = target(port, "x.lab");
        let started = Instant::now();
        let rec = rt.block_on(conn::handshake(SocketAddr::new(LO, port), t.sni.as_deref(), c.timeout, &Own::default()));
        assert!(started.elapsed() < Duration::from_secs(3), "port {port}: took {:?}", started.elapsed());
        let o = judge(&t, &rec, Vec::new(), wall_ns(), &c);
        assert_eq!(probe_facts(&o).result, result, "port {port}: {:?}", rec.error);
        let f = o.findings.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("{id} for {result}: {:?}", o.findings));
        assert!(f.evidence.len() > 20 && f.evidence.contains("probe at"), "{}", f.evidence);
    }
}

#[test]
fn the_prober_contacts_only_its_scope_and_counts() {
    let (_srv, dir) = s_server(47_402, "scope.lab");
    let p = Prober::start(cfg("127.0.0.1/32:47402")).unwrap();
    p.consider(&passive_tls13(LO, 47_402));
    p.consider(&passive_tls13(LO, 47_402));
    p.consider(&passive_tls13(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 47_402));
    p.consider(&passive_tls13(LO, 47_403));
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while got.is_empty() && Instant::now() < until {
        got.extend(p.results());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    got.extend(p.results());
    assert_eq!(got.len(), 1, "one probe: the second offer is within the interval, two are out of scope");
    assert_eq!(probe_facts(&got[0]).result, "ok");
    let s = p.stop();
    assert_eq!((s.queue.queued, s.queue.recent, s.queue.out_of_scope, s.ended[0]), (1, 1, 2, 1));
    assert!(losses(&s).is_empty(), "{:?}", losses(&s));
    assert!(Prober::start(ProbeConfig { allow: Vec::new(), ..cfg("127.0.0.1/32") }).is_err(), "no allowlist");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_sweep_flags_a_server_that_still_accepts_tls10() {
    // TLS 1.3 and TLS 1.0, nothing between (OpenSSL 3 needs SECLEVEL 0 for TLS 1.0).
    let dir = tmpdir("mixed");
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", "k.pem", "-out", "c.pem", "-days", "30", "-subj", "/CN=mixed.lab"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(st.status.success());
    let port = 47_403;
    let child = Command::new("openssl")
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-cert", "c.pem", "-key", "k.pem"])
        .args(["-min_protocol", "TLSv1", "-no_tls1_1", "-no_tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _k = Kill(child);
    while std::net::TcpStream::connect((LO, port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = ProbeConfig { versions: true, ..cfg("127.0.0.1/32") };
    let pacer = Pacer { gap: Duration::from_millis(10), next: Mutex::new(None) };
    let own = Own::default();
    let o = rt().block_on(probe(&target(port, "mixed.lab"), &c, &pacer, &own));
    assert!(
        own.recent.lock().unwrap().len() == 1 + sweep::SWEEP.len(),
        "every connection is remembered as the prober's own"
    );
    let p = probe_facts(&o);
    assert_eq!(p.result, "ok", "TLS 1.3 still works: {:?}", p.error);
    let tls10 = p.versions.iter().find(|v| v.offered == "TLS 1.0").expect("TLS 1.0 offered");
    assert_eq!(tls10.accepted.map(|(v, _)| v), Some(0x0301), "{:?}", p.versions);
    let f = o.findings.iter().find(|f| f.id == "tls.version.deprecated").expect("TLS 1.0 accepted is a finding");
    assert!(f.evidence.starts_with("TLS 1.0 negotiated"), "{}", f.evidence);
    assert!(f.evidence.contains("when the probe offered only TLS 1.0 (probe at "), "{}", f.evidence);
    assert!(p.versions.iter().filter(|v| v.offered == "SSLv3").all(|v| v.accepted.is_none()), "{:?}", p.versions);
    std::fs::remove_dir_all(dir).ok();
}
