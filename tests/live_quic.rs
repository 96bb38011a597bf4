//! Privileged end-to-end test: `tlsmon live` (TC, and XDP in generic mode) watching real QUIC
//! peers (aioquic from PyPI, in the virtual environment `cargo xtask setup` makes) through the
//! network-namespace lab, over IPv4 and IPv6 on UDP/443: one ordinary handshake and one whose
//! ClientHello is padded (40 extra ALPN names) so it spans two Initial packets. Each must give
//! exactly one `tls` event with `network: {transport: udp, protocol: quic}`, TLS 1.3, the SNI,
//! the whole ALPN list (the padded hello read whole across its Initials) and JA4 `q13…`, and
//! nothing lost on the way. Must never be skipped: it needs root and aioquic, and fails loudly
//! without either.
mod lab;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lab::{Family, Lab, Mode};
use serde_json::Value;

const PORT: u16 = 443;
const SNI: &str = "quic.lab.test";
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// The venv's python (TLSMON_PYTHON from `cargo xtask test`, else setup's default place).
fn python() -> Result<PathBuf> {
    let p = match std::env::var_os("TLSMON_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .context("no HOME")?;
            cache.join("tlsmon-venv/bin/python")
        }
    };
    let ok = Command::new(&p).args(["-c", "import aioquic"]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        bail!("{} cannot import aioquic: run `cargo xtask setup`", p.display());
    }
    Ok(p)
}

#[test]
fn live_quic_tc() -> Result<()> {
    run_mode(Mode::Tc)
}

#[test]
fn live_quic_xdp_skb() -> Result<()> {
    run_mode(Mode::XdpSkb)
}

fn run_mode(mode: Mode) -> Result<()> {
    lab::ensure_root()?;
    let py = python()?.display().to_string();
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/lab/quic_peer.py").display().to_string();
    let start = Instant::now();
    let mut lab = Lab::create()?;
    let dir = lab.dir.clone();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "365"])
        .args(["-subj", &format!("/CN={SNI}"), "-keyout", "quic.key", "-out", "quic.pem"])
        .current_dir(&dir)
        .output()
        .context("openssl req")?;
    if !out.status.success() {
        bail!("openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (cert, key) = (dir.join("quic.pem").display().to_string(), dir.join("quic.key").display().to_string());
    let server_ns = lab.server_ns.clone();
    for family in Family::BOTH {
        let host = lab.server_addr(family).to_string();
        let port = PORT.to_string();
        let args = [peer.as_str(), "server", &host, &port, &cert, &key];
        lab.spawn(&format!("quic-server-{}", family.label()), &server_ns, &py, &args)?;
    }
    thread::sleep(Duration::from_millis(1500));
    lab.check_children()?;
    let mut live = lab.start_live(Path::new(env!("CARGO_BIN_EXE_tlsmon")), mode, &["--stats"])?;
    let mut problems = Vec::new();
    for family in Family::BOTH {
        for big in [false, true] {
            let server = SocketAddr::new(lab.server_addr(family), PORT);
            let (host, port) = (server.ip().to_string(), PORT.to_string());
            let name = format!("quic-client-{}-{}", family.label(), if big { "big" } else { "small" });
            let mut args = vec![peer.as_str(), "client", &host, &port, SNI];
            if big {
                args.push("big");
            }
            let status = lab.run(&name, &lab.client_ns, &py, &args, Duration::from_secs(15))?;
            if !status.success() {
                bail!("aioquic client → {server} failed ({status}); its log:\n{}", lab.log(&name));
            }
            match live.next_event(EVENT_WAIT)? {
                Some(ev) => problems.extend(check(&ev, family, server, big)),
                None => problems.push(format!("{name}: no event for {server}")),
            }
        }
    }
    let stopped = live.stop()?;
    for ev in &stopped.events {
        problems.push(format!("unexpected extra event: {ev}"));
    }
    problems.extend(stopped.loss_problems());
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
fn check(ev: &Value, family: Family, server: SocketAddr, big: bool) -> Vec<String> {
    let mut p = Vec::new();
    let tag = format!("{}{}", family.label(), if big { " (padded hello)" } else { "" });
    let mut want = |path: &str, v: Value| {
        let got = path.split('.').try_fold(ev, |e, k| e.get(k));
        if got != Some(&v) {
            p.push(format!("{tag}: {path} is {got:?}, want {v}"));
        }
    };
    want("type", "tls".into());
    want("network.transport", "udp".into());
    want("network.protocol", "quic".into());
    want("destination.ip", server.ip().to_string().into());
    want("destination.port", PORT.into());
    want("tls.version", "1.3".into());
    want("tls.client.server_name", SNI.into());
    let alpn = ev["tls"]["client"]["alpn"].as_array().map_or(0, Vec::len);
    if alpn != if big { 41 } else { 1 } {
        p.push(format!("{tag}: the ClientHello's ALPN list has {alpn} names (read whole?)"));
    }
    let ja4 = ev["tls"]["client"]["ja4"].as_str().unwrap_or("");
    if !ja4.starts_with("q13") {
        p.push(format!("{tag}: JA4 {ja4:?} does not start with q13"));
    }
    p
}
