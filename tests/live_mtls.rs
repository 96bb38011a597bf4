//! Privileged end-to-end test: `tlsmon live` (TC on mon's server-side veth) watching real
//! OpenSSL peers do mutual TLS through the network-namespace lab (tests/lab): `s_server
//! -tls1_2 -Verify 1` with `s_client -cert` (port 8441), a server in `[[mtls-required]]` that
//! asks for nothing (8442) and one speaking TLS 1.3 (8443, `-Verify 1`). Each run must give
//! one `tls` event with the client's certificate facts and the mTLS findings; never a guess
//! under TLS 1.3.
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
mod lab;

use std::{
    net::SocketAddr,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use lab::{Family, Lab, Mode};
use serde_json::{json, Value};

const RUN_EVENT_WAIT: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_millis(300);
const CLIENT_LIMIT: Duration = Duration::from_secs(10);

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().context("running openssl")?;
    if !out.status.success() {
        bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A client CA, a server certificate and a client certificate (CN=device-0042) made for the run.
fn make_certs(dir: &Path) -> Result<()> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "mca.key", "-out", "mca.pem", "-days", "30", "-subj", "/O=tlsmon lab/CN=tlsmon lab client CA"],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "msrv.key", "-out", "msrv.pem", "-days", "30", "-subj", "/CN=mtls.lab.test"],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            &["req", "-new"][..],
            &ec,
            &["-keyout", "mcli.key", "-out", "mcli.csr", "-subj", "/O=tlsmon lab/CN=device-0042"],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "mcli.csr",
            "-CA",
            "mca.pem",
            "-CAkey",
            "mca.key",
            "-CAcreateserial",
            "-out",
            "mcli.pem",
            "-days",
            "30",
        ],
    )
}

#[test]
fn live_mutual_tls_peers() -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create()?;
    let dir = lab.dir.clone();
    make_certs(&dir)?;
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (cert, key, ca) = (p("msrv.pem"), p("msrv.key"), p("mca.pem"));
    let server_ns = lab.server_ns.clone();
    for (port, extra) in [
        ("8441", &["-tls1_2", "-Verify", "1", "-CAfile", ca.as_str()][..]),
        ("8442", &["-tls1_2"][..]),
        ("8443", &["-tls1_3", "-Verify", "1", "-CAfile", ca.as_str()][..]),
    ] {
        let mut args =
            vec!["s_server", "-accept", port, "-www", "-quiet", "-cert", cert.as_str(), "-key", key.as_str()];
        args.extend(extra);
        lab.spawn(&format!("mtls-server-{port}"), &server_ns, "openssl", &args)?;
    }
    let server = lab.server_addr(Family::V4);
    let targets: Vec<SocketAddr> = [8441, 8442, 8443].map(|port| SocketAddr::new(server, port)).into();
    lab.wait_accepting(&targets)?;
    let cfg = dir.join("mtls.toml");
    std::fs::write(&cfg, format!("[[mtls-required]]\nserver = \"{server}\"\n"))?;
    let mut live = lab.start_live(
        Path::new(env!("CARGO_BIN_EXE_tlsmon")),
        Mode::Tc,
        &["--stats", "--config", cfg.to_str().context("utf-8")?],
    )?;
    let (ccert, ckey) = (p("mcli.pem"), p("mcli.key"));
    let mut got = Vec::new();
    for (port, extra) in [
        (8441u16, vec!["-tls1_2", "-cert", ccert.as_str(), "-key", ckey.as_str()]),
        (8442, vec!["-tls1_2"]),
        (8443, vec!["-tls1_3", "-cert", ccert.as_str(), "-key", ckey.as_str()]),
    ] {
        let connect = SocketAddr::new(server, port).to_string();
        let mut args = vec!["s_client", "-connect", connect.as_str(), "-servername", "mtls.lab.test"];
        args.extend(extra);
        let client_ns = lab.client_ns.clone();
        let st = lab.run(&format!("mtls-client-{port}"), &client_ns, "openssl", &args, CLIENT_LIMIT)?;
        if !st.success() {
            bail!("s_client to {port} failed: {}", lab.log(&format!("mtls-client-{port}")));
        }
        got.push((port, live.next_event(RUN_EVENT_WAIT)?));
    }
    lab.check_children()?;
    let mut extra = Vec::new();
    while let Some(ev) = live.next_event(SETTLE)? {
        extra.push(ev);
    }
    let stopped = live.stop()?;
    extra.extend(stopped.events.iter().cloned());
    eprintln!("live mtls: {} runs in {:.1} s", got.len(), start.elapsed().as_secs_f64());
    let mut problems = Vec::new();
    for (port, ev) in &got {
        let Some(ev) = ev else {
            problems.push(format!("{port}: no event"));
            continue;
        };
        eprintln!("{port}: {ev}");
        problems.extend(check(*port, ev).into_iter().map(|m| format!("{port}: {m}")));
    }
    for ev in &extra {
        problems.push(format!("unexpected event: {ev}"));
    }
    problems.extend(stopped.loss_problems());
    if !problems.is_empty() {
        bail!("{} problem(s):\n  {}\nstderr:\n{}", problems.len(), problems.join("\n  "), stopped.stderr.join("\n"));
    }
    Ok(())
}

fn check(port: u16, ev: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut eq = |what: &str, got: &Value, want: Value| {
        if *got != want {
            bad.push(format!("{what}: got {got}, want {want}"));
        }
    };
    let t = &ev["tls"];
    let mtls: Vec<Value> = ev["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| {
                    f["id"].as_str().is_some_and(|i| i.starts_with("tls.mtls.") || i.starts_with("tls.client-cert."))
                })
                .map(|f| json!([f["id"], f["severity"], f["evidence"]]))
                .collect()
        })
        .unwrap_or_default();
    match port {
        8441 => {
            eq("version", &t["version"], json!("1.2"));
            eq(
                "ca_names",
                &t["server"]["certificate_request"]["ca_names"],
                json!(["O=tlsmon lab, CN=tlsmon lab client CA"]),
            );
            eq("presented", &t["client"]["certificate_presented"], json!(true));
            eq("client cn", &t["client"]["x509"]["subject"]["common_name"], json!("device-0042"));
            eq("client issuer", &t["client"]["x509"]["issuer"]["common_name"], json!("tlsmon lab client CA"));
            eq("chain_length", &t["client"]["chain_length"], json!(1));
            eq("established", &t["established"], json!(true));
            eq("mtls findings", &json!(mtls), json!([]));
        }
        8442 => {
            eq("certificate_request", &t["server"]["certificate_request"], Value::Null);
            eq("presented", &t["client"]["certificate_presented"], Value::Null);
            eq(
                "mtls findings",
                &json!(mtls),
                json!([["tls.mtls.missing", "high", "server sent no CertificateRequest"]]),
            );
        }
        _ => {
            eq("version", &t["version"], json!("1.3"));
            eq("presented", &t["client"]["certificate_presented"], Value::Null);
            eq("client x509", &t["client"]["x509"], Value::Null);
            let ev = "TLS 1.3: the CertificateRequest and the client's Certificate are encrypted";
            eq("mtls findings", &json!(mtls), json!([["tls.mtls.unverifiable", "info", ev]]));
        }
    }
    bad
}
