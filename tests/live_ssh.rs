//! Privileged end-to-end test: `tlsmon live` (TC on mon's server-side veth) watching real
//! OpenSSH 9.2p1 peers through the network-namespace lab (tests/lab): `ssh` to a stock sshd
//! (port 22, IPv4 and IPv6), `ssh` to a legacy sshd (port 2222: diffie-hellman-group1-sha1,
//! 3des-cbc, hmac-md5, ssh-rsa), `sftp` uploads (batch mode, key made for the run), and `ssh`
//! to a scripted SSH-1.5 server (port 2223; no SSH-1 server is packaged any more). Each
//! run must give exactly one `ssh` event with exactly the negotiated algorithms and findings,
//! HASSH values, no field beyond the documented ones, no lost record, and nothing of the
//! session (user name, key, uploaded file) in what tlsmon prints.
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
mod lab;

use std::{
    collections::BTreeSet,
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lab::{
    ssh::{SshRun, SFTP_PAYLOAD},
    Family, Lab, Mode,
};
use md5::{Digest as _, Md5};
use serde_json::{json, Value};

/// Most time to wait for a run's event (judged when both sides closed: milliseconds).
const RUN_EVENT_WAIT: Duration = Duration::from_secs(3);
/// Quiet time after the last run in which no further event may arrive.
const SETTLE: Duration = Duration::from_millis(300);

/// HASSH of OpenSSH 9.2p1's client with its stock algorithms, HASSHServer of its stock sshd
/// (tshark 4.0 `ssh.kex.hassh` / `ssh.kex.hasshserver` over a capture of the same programs).
const HASSH_OPENSSH_92: &str = "472b5de333ad665af5cbf10ff892c4df";
const HASSH_SERVER_OPENSSH_92: &str = "425d29fe50d8e4f5e37efb6e24bcf660";

#[test]
fn live_ssh_and_sftp_peers() -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create()?;
    lab.start_ssh_servers()?;
    let mut live = lab.start_live(Path::new(env!("CARGO_BIN_EXE_tlsmon")), Mode::Tc, &["--stats", "--log", "debug"])?;
    let mut runs: Vec<(SshRun, Family, Vec<Value>)> = Vec::new();
    for (run, family) in [
        (SshRun::Modern, Family::V4),
        (SshRun::Modern, Family::V6),
        (SshRun::Legacy, Family::V4),
        (SshRun::Legacy, Family::V6),
        (SshRun::Sftp, Family::V4),
        (SshRun::Sftp, Family::V6),
        (SshRun::V1, Family::V4),
        (SshRun::V1, Family::V6),
    ] {
        lab.run_ssh_client(run, family)?;
        let mut got = Vec::new();
        if let Some(ev) = live.next_event(RUN_EVENT_WAIT)? {
            got.push(ev);
        }
        runs.push((run, family, got));
    }
    lab.check_children()?;
    let mut extra = Vec::new();
    while let Some(ev) = live.next_event(SETTLE)? {
        extra.push(ev);
    }
    let stopped = live.stop()?;
    extra.extend(stopped.events.iter().cloned());
    eprintln!("live ssh: {} runs in {:.1} s", runs.len(), start.elapsed().as_secs_f64());
    for (run, family, got) in &runs {
        for ev in got {
            eprintln!("{} {}: {ev}", run.name(), family.label());
        }
    }
    if !stopped.status.success() {
        bail!("tlsmon live exited with {} after SIGINT; stderr:\n{}", stopped.status, stopped.stderr.join("\n"));
    }
    let mut problems = Vec::new();
    for (run, family, got) in &runs {
        let what = format!("{} {}", run.name(), family.label());
        if got.len() != 1 {
            problems.push(format!("{what}: {} event(s), expected 1", got.len()));
        }
        for ev in got {
            problems.extend(check_event(&lab, *run, *family, ev).into_iter().map(|m| format!("{what}: {m}")));
        }
    }
    for ev in &extra {
        problems.push(format!("unexpected event: {ev}"));
    }
    problems.extend(stopped.loss_problems());
    // Nothing of the session in what tlsmon printed: not the user, the client's public key, the
    // lab's key comment, nor the uploaded file.
    let stdout: String = runs.iter().flat_map(|(_, _, g)| g).chain(&extra).map(|e| format!("{e}\n")).collect();
    let key = fs::read_to_string(lab.dir.join("client_key.pub")).unwrap_or_default();
    let key_b64 = key.split_whitespace().nth(1).unwrap_or("missing key").to_string();
    for (stream, text) in [("stdout", &stdout), ("stderr", &stopped.stderr.join("\n"))] {
        for secret in ["root", key_b64.as_str(), "tlsmon-lab", SFTP_PAYLOAD.trim(), "uploaded-"] {
            if text.contains(secret) {
                problems.push(format!("tlsmon's {stream} contains {secret:?}"));
            }
        }
    }
    if !problems.is_empty() {
        let dump = lab.dir.with_extension("ssh-events.jsonl");
        let _ = fs::write(&dump, &stdout);
        bail!(
            "{} problem(s):\n  {}\nevents (also in {}):\n{stdout}tlsmon stderr (last 40 lines):\n{}",
            problems.len(),
            problems.join("\n  "),
            dump.display(),
            stopped.stderr[stopped.stderr.len().saturating_sub(40)..].join("\n")
        );
    }
    Ok(())
}

/// Everything one run's event must say.
fn check_event(lab: &Lab, run: SshRun, family: Family, ev: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut eq = |what: &str, got: &Value, want: Value| {
        if *got != want {
            bad.push(format!("{what}: got {got}, want {want}"));
        }
    };
    eq("type", &ev["type"], json!("ssh"));
    eq("destination", &ev["destination"], json!({"ip": lab.server_addr(family).to_string(), "port": run.port()}));
    eq("source.ip", &ev["source"]["ip"], json!(lab.client_addr(family).to_string()));
    let s = &ev["ssh"];
    eq("client.proto", &s["client"]["proto"], json!("2.0"));
    eq("client.software", &s["client"]["software"], json!("OpenSSH_9.2p1"));
    if run == SshRun::V1 {
        // Banners only: the client quits before any KEXINIT; nothing negotiated, no anomaly.
        eq("server.proto", &s["server"]["proto"], json!("1.5"));
        eq("server.software", &s["server"]["software"], json!("FakeSSH1_lab"));
        for absent in ["negotiated", "hassh", "hassh_server", "anomalies"] {
            eq(absent, &s[absent], Value::Null);
        }
        eq("client.kex", &s["client"]["kex"], Value::Null);
        eq("kex_class", &s["kex_class"], json!("none"));
        let got: Vec<Value> = ev["findings"]
            .as_array()
            .map(|a| a.iter().map(|f| json!([f["id"], f["severity"], f["hipaa_ref"], f["evidence"]])).collect())
            .unwrap_or_default();
        let want =
            json!([["ssh.version.v1", "critical", "164.312(e)(1)", "server identifies as SSH-1.5 (FakeSSH1_lab)"]]);
        eq("findings", &json!(got), want);
        bad.extend(undocumented(ev));
        return bad;
    }
    eq("server.proto", &s["server"]["proto"], json!("2.0"));
    eq("server.software", &s["server"]["software"], json!("OpenSSH_9.2p1"));
    let (negotiated, findings, hassh_server) = match run {
        SshRun::Modern | SshRun::Sftp => (
            json!({
                "kex": "sntrup761x25519-sha512",
                "host_key": "ssh-ed25519",
                "cipher_c2s": "chacha20-poly1305@openssh.com",
                "cipher_s2c": "chacha20-poly1305@openssh.com",
                "compression_c2s": "none",
                "compression_s2c": "none",
                "strict_kex": true,
            }),
            json!([["ssh.pq-hybrid", "info", "negotiated sntrup761x25519-sha512"]]),
            HASSH_SERVER_OPENSSH_92.to_string(),
        ),
        SshRun::V1 => unreachable!("returned above"),
        SshRun::Legacy => (
            json!({
                "kex": "diffie-hellman-group1-sha1",
                "host_key": "ssh-rsa",
                "cipher_c2s": "3des-cbc",
                "cipher_s2c": "3des-cbc",
                "mac_c2s": "hmac-md5",
                "mac_s2c": "hmac-md5",
                "compression_c2s": "none",
                "compression_s2c": "none",
                "strict_kex": true,
            }),
            json!([
                ["ssh.cipher.weak", "high", "negotiated 3des-cbc"],
                ["ssh.kex.weak", "high", "negotiated diffie-hellman-group1-sha1 (RFC 9142)"],
                ["ssh.mac.weak", "high", "negotiated hmac-md5"],
                ["ssh.hostkey.weak", "medium", "negotiated ssh-rsa"],
            ]),
            // The legacy server's lists as configured (HASSHServer: kex;enc;mac;cmp, s2c).
            hex::encode(Md5::digest(
                "diffie-hellman-group1-sha1,kex-strict-s-v00@openssh.com;3des-cbc;hmac-md5;none,zlib@openssh.com",
            )),
        ),
    };
    eq("negotiated", &s["negotiated"], negotiated);
    let got: Vec<Value> = ev["findings"]
        .as_array()
        .map(|a| a.iter().map(|f| json!([f["id"], f["severity"], f["evidence"]])).collect())
        .unwrap_or_default();
    eq("findings", &json!(got), findings);
    eq("pq", &s["pq"], json!(run != SshRun::Legacy));
    eq("hassh_server", &s["hassh_server"], json!(hassh_server));
    if run != SshRun::Legacy {
        eq("hassh", &s["hassh"], json!(HASSH_OPENSSH_92));
    } else if s["hassh"].as_str().is_none_or(|h| h.len() != 32 || h == HASSH_OPENSSH_92) {
        bad.push(format!("legacy hassh {}: not a distinct MD5", s["hassh"]));
    }
    bad.extend(undocumented(ev));
    bad
}

/// Fields beyond the documented ones (README "SSH"): none may appear.
fn undocumented(ev: &Value) -> Vec<String> {
    let allowed = |v: &Value, keys: &[&str], at: &str| -> Vec<String> {
        let have: BTreeSet<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        have.iter().filter(|k| !keys.contains(k)).map(|k| format!("undocumented field {at}{k}")).collect()
    };
    // The ECS envelope (README "Event schema (ECS)"), the pre-ECS names of this release, and
    // tlsmon.ssh, which is the legacy `ssh` object under its ECS custom-namespace name.
    let top = ["@timestamp", "ecs", "event", "observer", "network", "source", "destination", "tlsmon"];
    let legacy = ["type", "timestamp", "ssh", "findings"];
    let mut bad = allowed(ev, &[&top[..], &legacy[..]].concat(), "");
    bad.extend(allowed(&ev["tlsmon"], &["ssh", "findings", "local"], "tlsmon."));
    if ev["tlsmon"]["ssh"] != ev["ssh"] || ev["tlsmon"]["findings"] != ev["findings"] {
        bad.push("tlsmon.ssh / tlsmon.findings differ from their pre-ECS copies".into());
    }
    let s = &ev["ssh"];
    bad.extend(allowed(
        s,
        &["client", "server", "negotiated", "hassh", "hassh_server", "pq", "kex_class", "anomalies"],
        "ssh.",
    ));
    let side = [
        "proto",
        "software",
        "comments",
        "lines_before_banner",
        "kex",
        "host_key",
        "cipher_c2s",
        "cipher_s2c",
        "mac_c2s",
        "mac_s2c",
        "compression_c2s",
        "compression_s2c",
        "first_kex_follows",
    ];
    bad.extend(allowed(&s["client"], &side, "ssh.client."));
    bad.extend(allowed(&s["server"], &side, "ssh.server."));
    let negotiated = [
        "kex",
        "host_key",
        "cipher_c2s",
        "cipher_s2c",
        "mac_c2s",
        "mac_s2c",
        "compression_c2s",
        "compression_s2c",
        "strict_kex",
        "failed",
    ];
    bad.extend(allowed(&s["negotiated"], &negotiated, "ssh.negotiated."));
    for f in ev["findings"].as_array().into_iter().flatten() {
        bad.extend(allowed(f, &["id", "severity", "hipaa_ref", "rule", "evidence"], "findings[]."));
    }
    bad
}
