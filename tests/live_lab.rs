//! Privileged end-to-end tests: `tlsmon live` in a network-namespace lab (tests/lab), attached
//! with TC (on mon's server-side veth, and on both veths to show duplicates are harmless), XDP
//! in skb mode and XDP in native mode (both veths), judging real handshakes between stock TLS
//! servers and clients over IPv4 and IPv6, plus a hand-built ClientHello larger than the MTU.
//! Each mode runs one tlsmon for all cases; every event is checked against values measured
//! with the same servers and clients (see the lab's server table).
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
mod lab;

use std::{
    fs,
    net::IpAddr,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lab::{
    big_flight, huge_hello, large_hello, summary, BigFlight, ClientRun, Family, Lab, LargeHello, Mode, Posture,
    ServerSpec, BIG_FLIGHT_PORT, BIG_FLIGHT_SNI, SERVERS,
};
use serde_json::Value;

/// Most time to wait for the expected events before stopping tlsmon (which then judges any
/// flow still open, so a slower event still counts).
const EVENT_WAIT: Duration = Duration::from_secs(10);

#[test]
fn live_tc_ingress_egress() -> Result<()> {
    run_mode(Mode::Tc)
}

/// TC on both of mon's veths: every packet is seen twice, the events must not change.
#[test]
fn live_tc_both_interfaces_no_duplicates() -> Result<()> {
    run_mode(Mode::TcBoth)
}

#[test]
fn live_xdp_skb() -> Result<()> {
    run_mode(Mode::XdpSkb)
}

#[test]
fn live_xdp_native() -> Result<()> {
    run_mode(Mode::XdpNative)
}

/// The lab's own teardown: dropping a lab leaves none of its namespaces or files, and a lab
/// left behind by a dead process is removed by the next one.
#[test]
fn lab_teardown_and_stale_cleanup() -> Result<()> {
    let lab = Lab::create()?;
    let names = [lab.client_ns.clone(), lab.mon_ns.clone(), lab.server_ns.clone()];
    let dir = lab.dir.clone();
    for n in &names {
        assert!(Path::new("/run/netns").join(n).exists(), "{n} exists while the lab lives");
    }
    drop(lab);
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} deleted with the lab");
    }
    assert!(!dir.exists(), "{} removed with the lab", dir.display());

    // A pid that has certainly exited: a finished child's.
    let mut child = Command::new("true").spawn()?;
    let dead = child.id();
    child.wait()?;
    let stale = format!("{}{dead}-0-mon", lab::PREFIX);
    let status = Command::new("ip").args(["netns", "add", &stale]).status()?;
    assert!(status.success(), "ip netns add {stale}");
    lab::cleanup_stale();
    let left = Path::new("/run/netns").join(&stale).exists();
    if left {
        let _ = Command::new("ip").args(["netns", "del", &stale]).status();
    }
    assert!(!left, "stale namespace {stale} of dead pid {dead} removed");
    Ok(())
}

fn run_mode(mode: Mode) -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create()?;
    lab.start_servers()?;
    lab.start_big_flight_server()?;
    let setup = start.elapsed();
    let mut live = lab.start_live(Path::new(env!("CARGO_BIN_EXE_tlsmon")), mode, &["--stats"])?;
    let attached = start.elapsed();
    let line = live.attached.clone();
    assert!(line.contains(&format!("attached {} to", mode.label())), "attached line names the mode: {line}");
    assert!(line.contains(lab::MON_SERVER_IF), "attached line names {}: {line}", lab::MON_SERVER_IF);

    let mut runs = Vec::new();
    let mut large = Vec::new();
    let mut big = Vec::new();
    for family in Family::BOTH {
        runs.extend(lab.run_clients(family)?);
        large.push(large_hello(&lab, family, false)?);
        large.push(large_hello(&lab, family, true)?);
        large.push(huge_hello(&lab, family)?);
        big.push(big_flight(&lab, family)?);
    }
    lab.check_children()?;
    let clients_done = start.elapsed();

    let expected = runs.len() + large.len() + big.len();
    let mut events = Vec::new();
    let deadline = Instant::now() + EVENT_WAIT;
    while events.len() < expected && Instant::now() < deadline {
        if let Some(ev) = live.next_event(Duration::from_millis(100))? {
            events.push(ev);
        }
    }
    let before_stop = events.len();
    let mut stopped = live.stop()?;
    events.append(&mut stopped.events);
    let c = |name| stopped.counter(name).map_or("?".to_string(), |v| v.to_string());
    eprintln!(
        "{mode:?}: lab+servers {:.1} s, attached {:.1} s, {} clients + {} large hellos done {:.1} s, \
         {before_stop} events before SIGINT, {} after; total {:.1} s; kernel: {} packets, {} records, \
         {} payload_truncated",
        setup.as_secs_f64(),
        attached.as_secs_f64(),
        runs.len(),
        large.len(),
        clients_done.as_secs_f64(),
        events.len() - before_stop,
        start.elapsed().as_secs_f64(),
        c("packets"),
        c("records"),
        c("payload_truncated"),
    );
    if !stopped.status.success() {
        bail!("tlsmon live exited with {} after SIGINT; stderr:\n{}", stopped.status, stopped.stderr.join("\n"));
    }
    let mut problems = check_events(&lab, &runs, &large, &big, &events);
    // Nothing lost on the way: no ring-buffer overflow, failed copy or full flow map, and every
    // record decoded.
    problems.extend(stopped.loss_problems());
    if !problems.is_empty() {
        let shown: Vec<String> = events.iter().map(summary).collect();
        let dump = lab.dir.with_extension("events.jsonl");
        let _ = fs::write(&dump, events.iter().map(|e| format!("{e}\n")).collect::<String>());
        bail!(
            "{} ({}): {} problem(s):\n  {}\nevents ({}; full JSON in {}):\n  {}\ntlsmon stderr:\n{}",
            mode.label(),
            line,
            problems.len(),
            problems.join("\n  "),
            events.len(),
            dump.display(),
            shown.join("\n  "),
            stopped.stderr.join("\n")
        );
    }
    Ok(())
}

/// Every expected handshake has exactly its events, with the measured values; no other events.
fn check_events(
    lab: &Lab,
    runs: &[ClientRun],
    large: &[LargeHello],
    big: &[BigFlight],
    events: &[Value],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = vec![false; events.len()];
    let mut take = |family: Family, port: u16, sni: &str| -> Vec<&Value> {
        let mut got = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            if !used[i]
                && event_family(ev) == Some(family)
                && u64_at(ev, "/destination/port") == Some(port as u64)
                && str_at(ev, "/tls/client/server_name") == Some(sni)
            {
                used[i] = true;
                got.push(ev);
            }
        }
        got
    };
    for family in Family::BOTH {
        for server in &SERVERS {
            let n = runs.iter().filter(|r| r.family == family && r.server.posture == server.posture).count();
            let got = take(family, server.port, server.sni);
            if got.len() != n {
                problems.push(format!("{} {}: {} event(s), expected {n}", server.name, family.label(), got.len()));
            }
            for ev in got {
                let mut p = check_addrs(lab, family, ev);
                p.extend(check_server(server, ev));
                problems.extend(p.into_iter().map(|m| format!("{} {}: {m}", server.name, family.label())));
            }
        }
        for hello in large.iter().filter(|h| h.family == family) {
            let got = take(family, SERVERS[0].port, &hello.sni);
            if got.len() != 1 {
                problems.push(format!("{}: {} event(s), expected 1", hello.sni, got.len()));
            }
            for ev in got {
                let mut p = check_addrs(lab, family, ev);
                p.extend(check_large(hello, ev));
                problems.extend(p.into_iter().map(|m| format!("{} ({} bytes): {m}", hello.sni, hello.len)));
            }
        }
        for flight in big.iter().filter(|b| b.family == family) {
            let got = take(family, BIG_FLIGHT_PORT, BIG_FLIGHT_SNI);
            if got.len() != 1 {
                problems.push(format!("big flight {}: {} event(s), expected 1", family.label(), got.len()));
            }
            for ev in got {
                let mut p = check_addrs(lab, family, ev);
                p.extend(check_big_flight(ev));
                let label = format!("big flight {} ({} bytes)", family.label(), flight.flight_len);
                problems.extend(p.into_iter().map(|m| format!("{label}: {m}")));
            }
        }
    }
    for (i, ev) in events.iter().enumerate() {
        if !used[i] {
            problems.push(format!("unexpected event: {}", summary(ev)));
        }
    }
    problems
}

fn check_addrs(lab: &Lab, family: Family, ev: &Value) -> Vec<String> {
    let mut p = Vec::new();
    for (field, want) in [("/source/ip", lab.client_addr(family)), ("/destination/ip", lab.server_addr(family))] {
        if ip_at(ev, field) != Some(want) {
            p.push(format!("{field} = {:?}, expected {want}", str_at(ev, field)));
        }
    }
    p
}

/// Values measured with `openssl s_client -brief` / `gnutls-cli` against each lab server, and
/// the complete set of findings (id, severity) the hipaa profile gives them.
fn check_server(server: &ServerSpec, ev: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let (version, cipher, want): (&str, &str, &[(&str, &str)]) = match server.posture {
        Posture::Modern => ("1.3", "TLS_AES_256_GCM_SHA384", &[]),
        // Both clients offer TLS 1.0 only.
        Posture::Legacy => (
            "1.0",
            "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
            &[
                ("tls.cipher.weak", "medium"),
                ("tls.version.client-legacy-only", "high"),
                ("tls.version.deprecated", "high"),
            ],
        ),
        // The clients offer TLS 1.3 too: the TLS 1.2 servers also get the low no-tls13.
        Posture::Weak => (
            "1.2",
            "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
            &[("tls.cipher.weak", "high"), ("tls.version.no-tls13", "low")],
        ),
        Posture::Rsa => {
            ("1.2", "TLS_RSA_WITH_AES_128_GCM_SHA256", &[("tls.kx.no-pfs", "high"), ("tls.version.no-tls13", "low")])
        }
        Posture::Expired => (
            "1.2",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            &[("tls.cert.expired", "high"), ("tls.cert.self-signed", "high"), ("tls.version.no-tls13", "low")],
        ),
    };
    expect_str(&mut p, ev, "/tls/version", version);
    expect_str(&mut p, ev, "/tls/cipher", cipher);
    expect_findings(&mut p, ev, want);
    // Every stock client finishes its handshake.
    expect_established(&mut p, ev, true);
    // Key exchange group: OpenSSL's first choice x25519, GnuTLS's secp256r1, none for static RSA.
    let curve = ev.pointer("/tls/curve").and_then(Value::as_str);
    let want_curve = match server.posture {
        Posture::Weak => Some("secp256r1"),
        Posture::Rsa => None,
        _ => Some("x25519"),
    };
    if curve != want_curve {
        p.push(format!("/tls/curve = {curve:?}, expected {want_curve:?}"));
    }
    match server.posture {
        Posture::Modern => {}
        Posture::Weak | Posture::Rsa | Posture::Legacy => {
            // The leaf issued by the lab CA, parsed from the wire.
            expect_str(&mut p, ev, "/tls/server/x509/issuer/common_name", lab::CA_CN);
            expect_str(&mut p, ev, "/tls/server/x509/subject/common_name", SERVERS[0].sni);
        }
        Posture::Expired => {
            expect_str(&mut p, ev, "/tls/server/x509/not_after", lab::EXPIRED_NOT_AFTER);
            expect_str(&mut p, ev, "/tls/server/x509/subject/common_name", server.sni);
        }
    }
    p
}

/// The whole large hello was captured: both key shares (before the padding) and the SNI
/// (the last extension) are in the event, and nothing was flagged as malformed or truncated.
fn check_large(hello: &LargeHello, ev: &Value) -> Vec<String> {
    let mut p = Vec::new();
    expect_str(&mut p, ev, "/tls/version", "1.3");
    expect_str(&mut p, ev, "/tls/curve", "x25519");
    let shares: Vec<&str> = ev
        .pointer("/tls/client/key_share_groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if shares != ["X25519MLKEM768", "x25519"] {
        p.push(format!("key_share_groups {shares:?}, expected [X25519MLKEM768, x25519]"));
    }
    // The client's first suite; TLS 1.3 with x25519: nothing to flag, and no anomaly (a
    // truncated or malformed hello would give one).
    expect_str(&mut p, ev, "/tls/cipher", "TLS_AES_128_GCM_SHA256");
    expect_str(&mut p, ev, "/tls/client/server_name", &hello.sni);
    expect_findings(&mut p, ev, &[]);
    // The client hangs up after the ServerHello: never established.
    expect_established(&mut p, ev, false);
    p
}

/// The whole server flight was followed past the budget: the certificate (some 160 KB, in
/// ten records) and the ServerKeyExchange after it.
fn check_big_flight(ev: &Value) -> Vec<String> {
    let mut p = Vec::new();
    expect_str(&mut p, ev, "/tls/version", "1.2");
    expect_str(&mut p, ev, "/tls/cipher", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
    expect_str(&mut p, ev, "/tls/curve", "x25519");
    expect_str(&mut p, ev, "/tls/server/x509/subject/common_name", BIG_FLIGHT_SNI);
    // The client hangs up after the ServerHelloDone; OpenSSL's server answers with a fatal
    // alert, in clear.
    expect_findings(&mut p, ev, &[("tls.alert.fatal", "info"), ("tls.cert.self-signed", "high")]);
    expect_established(&mut p, ev, false);
    p
}

fn expect_established(p: &mut Vec<String>, ev: &Value, want: bool) {
    let got = ev.pointer("/tls/established").and_then(Value::as_bool);
    if got != Some(want) {
        p.push(format!("/tls/established = {got:?}, expected {want}"));
    }
}

fn expect_findings(p: &mut Vec<String>, ev: &Value, want: &[(&str, &str)]) {
    let mut got: Vec<(&str, &str)> =
        findings(ev).map(|f| (str_at(f, "/id").unwrap_or("?"), str_at(f, "/severity").unwrap_or("?"))).collect();
    got.sort_unstable();
    if got != want {
        p.push(format!("findings {got:?}, expected {want:?}"));
    }
}

fn expect_str(p: &mut Vec<String>, ev: &Value, ptr: &str, want: &str) {
    if str_at(ev, ptr) != Some(want) {
        p.push(format!("{ptr} = {:?}, expected {want:?}", str_at(ev, ptr)));
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn u64_at(v: &Value, ptr: &str) -> Option<u64> {
    v.pointer(ptr).and_then(Value::as_u64)
}

fn ip_at(v: &Value, ptr: &str) -> Option<IpAddr> {
    str_at(v, ptr)?.parse().ok()
}

fn event_family(ev: &Value) -> Option<Family> {
    Some(match ip_at(ev, "/destination/ip")? {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    })
}

fn findings(ev: &Value) -> impl Iterator<Item = &Value> {
    ev.get("findings").and_then(Value::as_array).into_iter().flatten()
}
