//! Privileged end-to-end test: `tlsmon live` (TC on mon's server-side veth, and XDP in generic
//! mode on both of mon's veths) watching real OpenSSL DTLS 1.2 peers through the
//! network-namespace lab (tests/lab): `openssl s_server -dtls1_2` (which always asks for a
//! cookie: HelloVerifyRequest) and `openssl s_client -dtls1_2 -servername dtls.lab.test`, over
//! IPv4 and IPv6, on UDP port 4433 (no port list names it). Each handshake must give exactly
//! one `tls` event with `network: {transport: udp, protocol: dtls}`, DTLS 1.2, the suite, the
//! group, the SNI, JA4 with the `d` prefix, the self-signed certificate and exactly its one
//! finding, and nothing lost on the way.
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
mod lab;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lab::{Family, Lab, Mode};
use serde_json::Value;

const PORT: u16 = 4433;
const SNI: &str = "dtls.lab.test";
/// Most time to wait for a handshake's event (judged once both sides went encrypted).
const EVENT_WAIT: Duration = Duration::from_secs(5);

#[test]
fn live_dtls_tc() -> Result<()> {
    run_mode(Mode::Tc)
}

#[test]
fn live_dtls_xdp_skb() -> Result<()> {
    run_mode(Mode::XdpSkb)
}

fn run_mode(mode: Mode) -> Result<()> {
    lab::ensure_root()?;
    let start = Instant::now();
    let mut lab = Lab::create()?;
    let dir = lab.dir.clone();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "365"])
        .args(["-subj", &format!("/CN={SNI}"), "-keyout", "dtls.key", "-out", "dtls.pem"])
        .current_dir(&dir)
        .output()
        .context("openssl req")?;
    if !status.status.success() {
        bail!("openssl req failed: {}", String::from_utf8_lossy(&status.stderr));
    }
    let server_ns = lab.server_ns.clone();
    for family in Family::BOTH {
        let accept = SocketAddr::new(lab.server_addr(family), PORT).to_string();
        let (cert, key) = (dir.join("dtls.pem").display().to_string(), dir.join("dtls.key").display().to_string());
        let args = ["s_server", "-dtls1_2", "-accept", &accept, "-cert", &cert, "-key", &key, "-quiet"];
        lab.spawn(&format!("dtls-server-{}", family.label()), &server_ns, "openssl", &args)?;
    }
    // UDP: nothing to connect to; the servers bind at once.
    thread::sleep(Duration::from_millis(500));
    lab.check_children()?;
    let mut live = lab.start_live(Path::new(env!("CARGO_BIN_EXE_tlsmon")), mode, &["--stats"])?;
    let mut problems = Vec::new();
    for family in Family::BOTH {
        let server = SocketAddr::new(lab.server_addr(family), PORT);
        let connect = server.to_string();
        let name = format!("dtls-client-{}", family.label());
        let args = ["s_client", "-dtls1_2", "-connect", &connect, "-servername", SNI];
        let status = lab.run(&name, &lab.client_ns, "openssl", &args, Duration::from_secs(10))?;
        if !status.success() {
            bail!("openssl s_client -dtls1_2 → {server} failed ({status}); its log:\n{}", lab.log(&name));
        }
        match live.next_event(EVENT_WAIT)? {
            Some(ev) => problems.extend(check(&ev, &lab, family, server)),
            None => problems.push(format!("{}: no event for {server}", family.label())),
        }
    }
    let stopped = live.stop()?;
    for ev in &stopped.events {
        problems.push(format!("unexpected extra event: {ev}"));
    }
    problems.extend(stopped.loss_problems());
    if stopped.counter("dtls_records").unwrap_or(0) == 0 {
        problems.push("kernel counter dtls_records is 0".into());
    }
    eprintln!("{mode:?}: {:.1} s", start.elapsed().as_secs_f64());
    if !problems.is_empty() {
        bail!(
            "{}: {} problem(s):\n  {}\nstderr:\n{}",
            mode.label(),
            problems.len(),
            problems.join("\n  "),
            stopped.stderr.join("\n")
        );
    }
    Ok(())
}

/// What is wrong with the event of one handshake (nothing when it is exactly as expected).
fn check(ev: &Value, lab: &Lab, family: Family, server: SocketAddr) -> Vec<String> {
    let mut p = Vec::new();
    let mut want = |path: &str, v: Value| {
        let got = path.split('.').try_fold(ev, |e, k| e.get(k));
        if got != Some(&v) {
            p.push(format!("{}: {path} is {got:?}, want {v}", family.label()));
        }
    };
    want("type", "tls".into());
    want("network.transport", "udp".into());
    want("network.protocol", "dtls".into());
    want("source.ip", lab.client_addr(family).to_string().into());
    want("destination.ip", server.ip().to_string().into());
    want("destination.port", PORT.into());
    want("tls.version_protocol", "dtls".into());
    want("tls.version", "1.2".into());
    want("tls.cipher", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into());
    want("tls.curve", "x25519".into());
    want("tls.established", true.into());
    want("tls.client.server_name", SNI.into());
    want("tls.server.x509.subject.common_name", SNI.into());
    want("tls.server.x509.self_signed", true.into());
    // s_server always asks for a cookie; OpenSSL's first hello travels in a DTLS 1.0 record.
    want("dtls.hello_verify", true.into());
    want("dtls.record_version", "dtls1.0".into());
    let ja4 = ev.pointer("/tls/client/ja4").and_then(Value::as_str).unwrap_or("");
    if !ja4.starts_with("dd2d") {
        p.push(format!("{}: JA4 {ja4:?} does not start with dd2d (DTLS 1.2, SNI)", family.label()));
    }
    let ids: Vec<&str> = ev["findings"].as_array().into_iter().flatten().filter_map(|f| f["id"].as_str()).collect();
    if ids != ["tls.cert.self-signed"] {
        p.push(format!("{}: findings {ids:?}, want exactly tls.cert.self-signed", family.label()));
    }
    p
}
