//! Tests of the posture inventory: aggregation per server and SNI, bounds, ordering, JSON.
use super::*;
use crate::decode::Addr;
use crate::inspect::tls::hello::{ClientHello, ServerHello};
use crate::observation::{Endpoint, Handshake};
use crate::policy::Finding;

fn finding(id: &'static str, severity: Severity) -> Finding {
    Finding {
        id,
        severity,
        hipaa_ref: "164.312(e)(1)",
        rule: "hipaa/test",
        evidence: format!("{id} evidence"),
        acceptance: None,
    }
}

/// A handshake to `ip:port` asking for `sni`, negotiating `version` and `cipher`.
fn out(ip: [u8; 4], port: u16, sni: Option<&str>, version: u16, cipher: u16, ts_s: u64, f: Vec<Finding>) -> Output {
    let hs = Handshake {
        ts_ns: ts_s * 1_000_000_000,
        server: Endpoint { addr: Addr::v4(ip), port },
        client: Endpoint { addr: Addr::v4([192, 168, 1, 9]), port: 50_000 },
        client_hello: Some(ClientHello {
            version: 0x0303,
            supported_versions: vec![0x0304, 0x0303],
            sni: sni.map(str::to_string),
            ..Default::default()
        }),
        server_hello: Some(ServerHello { version, cipher, ..Default::default() }),
        ..Default::default()
    };
    Output {
        observed: crate::observation::Observed::Tls { handshake: hs, upgrade: None },
        findings: f,
        local: Default::default(),
    }
}

#[test]
fn aggregates_per_server_and_sni() {
    let mut inv = Inventory::default();
    let dep = || vec![finding("tls.version.deprecated", Severity::High)];
    inv.add(&out([10, 0, 0, 5], 443, Some("a.example"), 0x0301, 0x000a, 20, dep()));
    inv.add(&out([10, 0, 0, 5], 443, Some("a.example"), 0x0301, 0x000a, 10, dep()));
    inv.add(&out([10, 0, 0, 5], 443, Some("a.example"), 0x0303, 0xc02f, 30, vec![]));
    inv.add(&out([10, 0, 0, 5], 443, None, 0x0304, 0x1301, 40, vec![]));
    assert_eq!(inv.servers.len(), 2, "same address, another SNI (or none) is another server");
    assert_eq!(inv.handshakes, 4);
    let key = ServerKey { ip: "10.0.0.5".parse().unwrap(), port: 443, sni: "a.example".into() };
    let p = &inv.servers[&key];
    assert_eq!(p.handshakes, 3);
    assert_eq!(p.versions.get("TLS 1.0"), Some(&2));
    assert_eq!(p.versions.get("TLS 1.2"), Some(&1));
    assert_eq!(p.ciphers.get("TLS_RSA_WITH_3DES_EDE_CBC_SHA"), Some(&2));
    assert_eq!(p.client_max_versions.get("TLS 1.3"), Some(&3));
    assert_eq!((p.first_ns, p.last_ns), (10_000_000_000, 30_000_000_000));
    let row = &p.findings["tls.version.deprecated"];
    assert_eq!((row.count, row.severity), (2, Severity::High));
    assert_eq!(row.subjects, vec!["TLS 1.0".to_string()]);
    assert_eq!(p.verdict(), Verdict::NonCompliant);
    let bare = ServerKey { sni: "-".into(), ..key };
    assert_eq!(inv.servers[&bare].verdict(), Verdict::Compliant);
    assert_eq!(inv.non_compliant(), 1);
    assert_eq!(inv.verdict(), Verdict::NonCompliant);
}

#[test]
fn verdict_threshold_is_medium() {
    assert_eq!(Verdict::of(None), Verdict::Compliant);
    assert_eq!(Verdict::of(Some(Severity::Info)), Verdict::Compliant);
    assert_eq!(Verdict::of(Some(Severity::Low)), Verdict::Compliant);
    assert_eq!(Verdict::of(Some(Severity::Medium)), Verdict::NonCompliant);
    assert_eq!(Verdict::of(Some(Severity::Critical)), Verdict::NonCompliant);
}

#[test]
fn bounded_servers_are_counted_when_dropped() {
    let mut inv = Inventory::new(PROFILE_HIPAA, 2);
    for i in 0..5u8 {
        inv.add(&out([10, 0, 0, i], 443, None, 0x0303, 0xc02f, 1, vec![]));
    }
    // A server already known still counts after the table is full.
    inv.add(&out([10, 0, 0, 0], 443, None, 0x0303, 0xc02f, 2, vec![]));
    assert_eq!(inv.servers.len(), 2);
    assert_eq!(inv.servers_dropped, 3);
    assert_eq!(inv.handshakes, 6);
    let j = inv.to_json(&[]);
    assert_eq!(j["totals"]["servers_dropped"], 3);
    assert_eq!(j["totals"]["servers"], 2);
}

#[test]
fn per_server_tables_are_bounded() {
    let mut inv = Inventory::default();
    for c in 0..100u16 {
        inv.add(&out([10, 0, 0, 1], 443, None, 0x0303, 0xc000 + c, 1, vec![]));
    }
    let p = inv.servers.values().next().unwrap();
    assert_eq!(p.ciphers.len(), MAX_KEYS_PER_SERVER);
    assert_eq!(p.keys_dropped, 100 - MAX_KEYS_PER_SERVER as u64);
    assert_eq!(p.handshakes, 100);
}

#[test]
fn sorted_by_worst_finding_then_address() {
    let mut inv = Inventory::default();
    inv.add(&out([10, 0, 0, 9], 443, None, 0x0303, 0xc02f, 1, vec![]));
    inv.add(&out([10, 0, 0, 8], 443, None, 0x0301, 0xc013, 1, vec![finding("tls.version.deprecated", Severity::High)]));
    inv.add(&out([10, 0, 0, 7], 443, None, 0x0303, 0xc02f, 1, vec![finding("tls.version.no-tls13", Severity::Low)]));
    inv.add(&out(
        [10, 0, 0, 20],
        443,
        None,
        0x0303,
        0x0005,
        1,
        vec![finding("tls.cipher.insecure", Severity::Critical)],
    ));
    inv.add(&out([10, 0, 0, 3], 443, None, 0x0302, 0xc013, 1, vec![finding("tls.version.deprecated", Severity::High)]));
    let order: Vec<String> = inv.sorted().iter().map(|(k, _)| k.addr()).collect();
    assert_eq!(order, ["10.0.0.20:443", "10.0.0.3:443", "10.0.0.8:443", "10.0.0.7:443", "10.0.0.9:443"]);
    let j = inv.to_json(&["a.pcap".into()]);
    let ips: Vec<&str> = j["servers"].as_array().unwrap().iter().map(|s| s["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.0.0.20", "10.0.0.3", "10.0.0.8", "10.0.0.7", "10.0.0.9"]);
    assert_eq!(j["servers"][0]["verdict"], "non-compliant");
    assert_eq!(j["servers"][3]["verdict"], "compliant");
    assert_eq!(
        j["servers"][0]["findings"][0]["fix"],
        "remove RC4 suites (TLS_RSA_WITH_RC4_128_SHA) from 10.0.0.20:443"
    );
    assert_eq!(j["profile"], "hipaa");
    assert_eq!(j["totals"]["non_compliant"], 3);
    // The streamed document is byte for byte the value's pretty print (keys in sorted order).
    inv.losses = crate::observation::losses(&Default::default(), &Default::default(), [("ringbuf_full", 2)], 1);
    let captures = ["a.pcap".to_string()];
    let streamed = serde_json::to_string_pretty(&inv.json_document(&captures)).unwrap();
    let value: serde_json::Value = serde_json::from_str(&streamed).unwrap();
    assert_eq!(streamed, serde_json::to_string_pretty(&value).unwrap());
}

/// An SSH session (real OpenSSH 9.2p1 legacy KEXINITs): the server's posture lists what was
/// negotiated and the worst finding; the JSON carries `ssh_sessions`/`ssh` for it only.
#[test]
fn ssh_sessions_per_server() {
    let facts = crate::inspect::ssh::inspect(
        include_bytes!("../../inspect/ssh/testdata/legacy-client.bin"),
        include_bytes!("../../inspect/ssh/testdata/legacy-server.bin"),
    );
    let flow = crate::observation::SshFlow {
        ts_ns: 5_000_000_000,
        client: Endpoint { addr: Addr::v4([192, 168, 1, 9]), port: 50_000 },
        server: Endpoint { addr: Addr::v4([10, 0, 0, 22]), port: 22 },
        facts,
    };
    let findings = crate::policy::Policy::default().evaluate_ssh(&flow);
    let mut inv = Inventory::default();
    inv.add(&Output { observed: crate::observation::Observed::Ssh(flow), findings, local: Default::default() });
    inv.add(&out([10, 0, 0, 5], 443, None, 0x0304, 0x1301, 40, vec![]));
    let key = ServerKey { ip: "10.0.0.22".parse().unwrap(), port: 22, sni: "-".into() };
    let p = &inv.servers[&key];
    assert_eq!((p.ssh_sessions, p.handshakes, p.worst), (1, 0, Some(Severity::High)));
    let keys: Vec<&str> = p.ssh.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "cipher 3des-cbc",
            "compression none",
            "host_key ssh-rsa",
            "kex diffie-hellman-group1-sha1",
            "mac hmac-sha1",
            "software OpenSSH_9.2p1"
        ]
    );
    assert_eq!(p.findings["ssh.kex.weak"].subjects, ["negotiated diffie-hellman-group1-sha1 (RFC 9142)"]);
    let json = inv.to_json(&[]);
    let servers = json["servers"].as_array().unwrap();
    let ssh = servers.iter().find(|s| s["port"] == 22).unwrap();
    assert_eq!(ssh["ssh_sessions"], 1);
    assert_eq!(ssh["ssh"]["kex diffie-hellman-group1-sha1"], 1);
    let tls = servers.iter().find(|s| s["port"] == 443).unwrap();
    assert!(tls.get("ssh").is_none() && tls.get("ssh_sessions").is_none());
}

/// Live process attribution reaches the inventory and the Markdown report: the server's entry
/// lists the local processes that spoke to it, and every fix line names them; the JSON events
/// of the same flows (the audit log's) give the same entry.
#[test]
fn local_processes_are_named_on_fix_lines() {
    use crate::observation::Process;
    use std::sync::Arc;
    let client = Arc::new(Process {
        pid: 4242,
        name: "legacy-`client".into(),
        service: Some("hl7-bridge.service".into()),
        ..Process::default()
    });
    let tls10 = || {
        let f = vec![finding("tls.version.deprecated", Severity::High)];
        out([10, 0, 0, 5], 443, Some("ehr.example"), 0x0301, 0xc013, 1, f)
    };
    let mut inv = Inventory::new("hipaa", 10);
    for _ in 0..2 {
        let mut o = tls10();
        o.local.processes[0] = Some(client.clone());
        inv.add(&o);
    }
    let (_, p) = inv.sorted()[0];
    let label = "client `legacy-client` (systemd unit hl7-bridge.service)";
    assert_eq!(p.local.get(label), Some(&2), "{:?}", p.local);
    let md = crate::sink::report::markdown(&inv, &["live".into()]);
    let line = md.lines().find(|l| l.contains("tls.version.deprecated")).expect("a fix line");
    assert!(line.contains(&format!("— on this host: in {label}")), "{line}");
    let json = inv.to_json(&[]);
    assert_eq!(json["servers"][0]["local_processes"][label], 2, "{json}");
    // Replay knows no process: no such line, no such field.
    let mut replayed = Inventory::new("hipaa", 10);
    replayed.add(&tls10());
    assert!(!crate::sink::report::markdown(&replayed, &[]).contains("on this host"));
}
