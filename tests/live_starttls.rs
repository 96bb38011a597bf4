//! Privileged end-to-end test: `tlsmon live` (TC on mon's server-side veth) watching real
//! STARTTLS servers through the network-namespace lab. XMPP: Debian's Prosody 0.12
//! (tests/lab/xmpp.rs):
//! `openssl s_client -starttls xmpp` (c2s, 5222) and `-starttls xmpp-server` (s2s, 5269) must
//! each give exactly one `tls` event upgraded from `xmpp` with the negotiated version; a
//! scripted c2s client that ignores the STARTTLS offer and sends SASL PLAIN in clear must give
//! one `plaintext` event (xmpp, `plaintext.starttls-missing`, `plaintext.credentials` naming the
//! mechanism only). IRC: Debian's InspIRCd 3.15 (tests/lab/irc.rs): `openssl s_client
//! -starttls irc` gives one `tls` event upgraded from `irc`; a scripted client that sees the
//! `tls` capability and registers in clear with `PASS` gives `plaintext.starttls-missing` and
//! `irc-pass`. Over IPv4 and IPv6; no lost record; the fake credentials (user, passwords,
//! base64) nowhere in what tlsmon prints, events or debug logs.
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
mod lab;

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use base64::Engine as _;
use lab::{
    irc::{IrcRun, FAKE_IRC_PASS},
    xmpp::{XmppRun, FAKE_PASS, FAKE_USER},
    Family, Lab, Mode,
};
use serde_json::{json, Value};

/// Most time to wait for a run's event (judged when both sides closed: milliseconds).
const RUN_EVENT_WAIT: Duration = Duration::from_secs(3);
/// Quiet time after the last run in which no further event may arrive.
const SETTLE: Duration = Duration::from_millis(300);

/// One client run of either protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Xmpp(XmppRun),
    Irc(IrcRun),
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::Xmpp(r) => r.name(),
            Run::Irc(r) => r.name(),
        }
    }

    fn port(self) -> u16 {
        match self {
            Run::Xmpp(r) => r.port(),
            Run::Irc(_) => lab::irc::IRC_PORT,
        }
    }
}

#[test]
fn live_xmpp_and_irc_starttls_and_clear_sessions() -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create()?;
    lab.start_xmpp_server()?;
    lab.start_irc_server()?;
    let mut live = lab.start_live(Path::new(env!("CARGO_BIN_EXE_tlsmon")), Mode::Tc, &["--stats", "--log", "debug"])?;
    let mut runs: Vec<(Run, Family, Vec<Value>)> = Vec::new();
    let all = XmppRun::ALL.map(Run::Xmpp).into_iter().chain(IrcRun::ALL.map(Run::Irc));
    for family in Family::BOTH {
        for run in all.clone() {
            match run {
                Run::Xmpp(r) => lab.run_xmpp_client(r, family)?,
                Run::Irc(r) => lab.run_irc_client(r, family)?,
            }
            let mut got = Vec::new();
            if let Some(ev) = live.next_event(RUN_EVENT_WAIT)? {
                got.push(ev);
            }
            runs.push((run, family, got));
        }
    }
    lab.check_children()?;
    let mut extra = Vec::new();
    while let Some(ev) = live.next_event(SETTLE)? {
        extra.push(ev);
    }
    let stopped = live.stop()?;
    extra.extend(stopped.events.iter().cloned());
    eprintln!("live starttls: {} runs in {:.1} s", runs.len(), start.elapsed().as_secs_f64());
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
    let stdout: String = runs.iter().flat_map(|(_, _, g)| g).chain(&extra).map(|e| format!("{e}\n")).collect();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{FAKE_USER}\0{FAKE_PASS}"));
    for (stream, text) in [("stdout", &stdout), ("stderr", &stopped.stderr.join("\n"))] {
        for secret in [FAKE_USER, FAKE_PASS, token.as_str(), "fake-user01", FAKE_IRC_PASS, "labnick", "labuser"] {
            if text.contains(secret) {
                problems.push(format!("tlsmon's {stream} contains {secret:?}"));
            }
        }
    }
    if !problems.is_empty() {
        let dump = lab.dir.with_extension("starttls-events.jsonl");
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
fn check_event(lab: &Lab, run: Run, family: Family, ev: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut eq = |what: &str, got: &Value, want: Value| {
        if *got != want {
            bad.push(format!("{what}: got {got}, want {want}"));
        }
    };
    eq("destination", &ev["destination"], json!({"ip": lab.server_addr(family).to_string(), "port": run.port()}));
    eq("source.ip", &ev["source"]["ip"], json!(lab.client_addr(family).to_string()));
    let ids: Vec<Value> =
        ev["findings"].as_array().map(|a| a.iter().map(|f| f["id"].clone()).collect()).unwrap_or_default();
    let upgraded_from = match run {
        Run::Xmpp(_) => "xmpp",
        Run::Irc(_) => "irc",
    };
    match run {
        Run::Xmpp(XmppRun::C2sStartTls | XmppRun::S2sStartTls) | Run::Irc(IrcRun::StartTls) => {
            eq("type", &ev["type"], json!("tls"));
            eq("tls.starttls", &ev["tls"]["starttls"], json!(upgraded_from));
            eq("tls.version", &ev["tls"]["version"], json!("1.3"));
            if let Run::Xmpp(_) = run {
                // OpenSSL 3.0 on both ends (prosody's LuaSec): its first TLS 1.3 suite.
                eq("tls.cipher", &ev["tls"]["cipher"], json!("TLS_AES_256_GCM_SHA384"));
            } else {
                // GnuTLS on the server side: a TLS 1.3 AES-GCM suite of its choosing.
                let aes_gcm = ev["tls"]["cipher"].as_str().is_some_and(|c| c.starts_with("TLS_AES_"));
                eq("tls.cipher is TLS_AES_*", &json!(aes_gcm), json!(true));
            }
            eq("tls.client.server_name", &ev["tls"]["client"]["server_name"], Value::Null);
            if ids.iter().any(|id| id.as_str().is_some_and(|i| i.starts_with("plaintext."))) {
                bad.push(format!("plaintext finding on an upgraded session: {ids:?}"));
            }
        }
        Run::Irc(IrcRun::Clear) => {
            eq("type", &ev["type"], json!("plaintext"));
            let p = &ev["plaintext"];
            eq("protocol", &p["protocol"], json!("irc"));
            eq("credentials", &p["credentials"], json!(["irc-pass"]));
            eq("starttls", &p["starttls"], json!({"offered": true, "requested": false, "cleartext_after_offer": true}));
            let mut ids: Vec<String> = ids.iter().filter_map(|i| i.as_str().map(str::to_string)).collect();
            ids.sort();
            eq("findings", &json!(ids), json!(["plaintext.credentials", "plaintext.starttls-missing"]));
        }
        Run::Xmpp(XmppRun::C2sClear) => {
            eq("type", &ev["type"], json!("plaintext"));
            let p = &ev["plaintext"];
            eq("protocol", &p["protocol"], json!("xmpp"));
            eq("credentials", &p["credentials"], json!(["xmpp-sasl-plain"]));
            eq("starttls", &p["starttls"], json!({"offered": true, "requested": false, "cleartext_after_offer": true}));
            eq("xmpp", &p["xmpp"], json!({"stream": "client", "tls_required": false}));
            let mut ids: Vec<String> = ids.iter().filter_map(|i| i.as_str().map(str::to_string)).collect();
            ids.sort();
            eq("findings", &json!(ids), json!(["plaintext.credentials", "plaintext.starttls-missing"]));
            let evidence: Vec<&str> =
                ev["findings"].as_array().into_iter().flatten().filter_map(|f| f["evidence"].as_str()).collect();
            for want in [
                "credentials sent in clear: xmpp-sasl-plain",
                "the xmpp server offers STARTTLS; the session went on in clear",
            ] {
                if !evidence.contains(&want) {
                    bad.push(format!("no finding with evidence {want:?}: {evidence:?}"));
                }
            }
        }
    }
    bad
}
