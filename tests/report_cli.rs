//! `tlsmon replay --report text|json|markdown` over corpus captures: the per-server posture
//! report agrees with the JSON events of the same capture (servers, findings, worst severity,
//! verdict), sorts servers by worst finding, gives one fix line per problem, and goes to stdout
//! or to --report-out.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus(name: &str) -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps").join(name);
    p.to_str().expect("utf-8 path").to_string()
}

fn tlsmon(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(args).output().expect("runs");
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rank(sev: &str) -> u8 {
    ["info", "low", "medium", "high", "critical"].iter().position(|s| *s == sev).expect("known severity") as u8
}

/// What the events say per server (ip, port, sni or "-"): handshakes, finding id → worst severity.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    handshakes: u64,
    findings: BTreeMap<String, u8>,
}

fn expected(files: &[&str]) -> BTreeMap<(String, u64, String), Expected> {
    let mut args = vec!["replay", "--format", "json"];
    args.extend(files);
    let (code, out) = tlsmon(&args);
    assert_eq!(code, 0);
    let mut m: BTreeMap<(String, u64, String), Expected> = BTreeMap::new();
    for line in out.lines() {
        let ev: Value = serde_json::from_str(line).expect("event is JSON");
        let key = (
            ev["destination"]["ip"].as_str().unwrap().to_string(),
            ev["destination"]["port"].as_u64().unwrap(),
            ev["tls"]["client"]["server_name"].as_str().unwrap_or("-").to_string(),
        );
        let e = m.entry(key).or_default();
        e.handshakes += 1;
        for f in ev["findings"].as_array().unwrap() {
            let r = rank(f["severity"].as_str().unwrap());
            let slot = e.findings.entry(f["id"].as_str().unwrap().to_string()).or_insert(r);
            *slot = (*slot).max(r);
        }
    }
    m
}

fn worst(e: &Expected) -> Option<u8> {
    e.findings.values().copied().max()
}

fn label((ip, port, sni): &(String, u64, String)) -> String {
    if sni == "-" {
        format!("{ip}:{port}")
    } else {
        format!("{ip}:{port} ({sni})")
    }
}

const MULTI: [&str; 5] = [
    "zeek__tls1_1.pcap",
    "zeek__tls1.2.pcap",
    "ndpi__selfsigned.pcap",
    "zeek__ssl-v2.pcap",
    "ja4__browsers-x509.pcapng",
];

#[test]
fn tls11_capture_says_disable_tls11_on_the_server() {
    let f = corpus("zeek__tls1_1.pcap");
    let exp = expected(&[&f]);
    assert_eq!(exp.len(), 1);
    let (key, e) = exp.iter().next().unwrap();
    assert!(e.findings.contains_key("tls.version.deprecated"), "{e:?}");
    let (code, md) = tlsmon(&["replay", "--report", "markdown", &f]);
    assert_eq!(code, 0);
    let addr = format!("{}:{}", key.0, key.1);
    assert!(md.starts_with("# TLS posture report: zeek__tls1_1.pcap\n"), "{md}");
    assert!(md.contains(&format!("\n### {} — NON-COMPLIANT\n", label(key))), "{md}");
    assert!(md.contains(&format!("\n- disable TLS 1.1 on {addr} — high (`tls.version.deprecated`)\n")), "{md}");
    assert!(
        md.contains(&format!(
            "\n- remove CBC suites (TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA) from {addr}; offer AEAD suites (AES-GCM, ChaCha20-Poly1305) — medium (`tls.cipher.weak`)\n"
        )),
        "{md}"
    );
    // With --report on stdout and no --format, the report is the whole output: no JSON lines.
    assert!(!md.lines().any(|l| l.starts_with('{')), "{md}");
}

#[test]
fn selfsigned_and_sslv2_fixes() {
    let (_, md) = tlsmon(&["replay", "--report", "markdown", &corpus("ndpi__selfsigned.pcap")]);
    assert!(md.contains("### 127.0.0.1:3001 (localhost) — NON-COMPLIANT"), "{md}");
    assert!(md.contains("- replace the self-signed certificate on 127.0.0.1:3001 ("), "{md}");
    assert!(md.contains("- install a certificate that covers localhost on 127.0.0.1:3001 — high"), "{md}");
    let (_, text) = tlsmon(&["replay", "--report", "text", &corpus("zeek__ssl-v2.pcap")]);
    assert!(text.contains("NON-COMPLIANT 91.227.4.92:443  worst critical"), "{text}");
    assert!(text.contains("  critical disable SSL 2.0 on 91.227.4.92:443\n"), "{text}");
    assert!(text.contains("renew the certificate for CN=plesk (expired 2012-11-05) on 91.227.4.92:443"), "{text}");
}

#[test]
fn multi_capture_markdown_sorted_worst_first_one_bullet_per_problem() {
    let files: Vec<String> = MULTI.iter().map(|n| corpus(n)).collect();
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let exp = expected(&refs);
    let mut args = vec!["replay", "--report", "markdown"];
    args.extend(&refs);
    let (code, md) = tlsmon(&args);
    assert_eq!(code, 0);
    assert!(md.starts_with(&format!("# TLS posture report: {}\n", MULTI.join(", "))), "{md}");
    assert!(md.contains("- Profile: `hipaa`\n- Verdict: **NON-COMPLIANT**\n"), "{md}");
    let bad: Vec<_> = exp.iter().filter(|(_, e)| worst(e).is_some_and(|w| w >= rank("medium"))).collect();
    let good: Vec<_> = exp.iter().filter(|(_, e)| worst(e).is_none_or(|w| w < rank("medium"))).collect();
    assert!(bad.len() >= 4 && !good.is_empty(), "corpus changed? {exp:?}");
    assert!(md.contains(&format!(
        "- Totals: {} servers, {} non-compliant, {} compliant,",
        exp.len(),
        bad.len(),
        good.len()
    )));
    // Headings in order of worst finding (critical first); a critical one before any high one.
    let mut pos_critical = Vec::new();
    let mut pos_high = Vec::new();
    for (key, e) in &bad {
        let heading = format!("\n### {} — NON-COMPLIANT\n", label(key));
        let at = md.find(&heading).unwrap_or_else(|| panic!("no heading {heading:?} in {md}"));
        let w = worst(e).unwrap();
        match w {
            4 => pos_critical.push(at),
            3 => pos_high.push(at),
            _ => {}
        }
        // One bullet per problem (severity above info) under this heading.
        let body = &md[at + heading.len()..];
        let body = &body[..body.find("\n### ").or_else(|| body.find("\n## ")).unwrap_or(body.len())];
        let bullets: Vec<&str> = body.lines().filter(|l| l.starts_with("- ")).collect();
        let problems: Vec<&String> = e.findings.iter().filter(|(_, r)| **r > 0).map(|(id, _)| id).collect();
        assert_eq!(bullets.len(), problems.len(), "{heading}: {bullets:?} vs {problems:?}");
        for id in problems {
            assert!(bullets.iter().any(|b| b.ends_with(&format!("(`{id}`)"))), "{heading}: no bullet for {id}");
        }
    }
    assert!(!pos_critical.is_empty() && !pos_high.is_empty());
    assert!(pos_critical.iter().max() < pos_high.iter().min(), "critical servers come first");
    let mut order: Vec<(usize, u8)> =
        bad.iter().map(|(k, e)| (md.find(&format!("\n### {} —", label(k))).unwrap(), worst(e).unwrap())).collect();
    order.sort();
    assert!(order.windows(2).all(|w| w[0].1 >= w[1].1), "sorted by worst finding: {order:?}");
    let compliant = &md[md.find("\n## Compliant servers\n").expect("compliant section")..];
    for (key, _) in &good {
        assert!(compliant.contains(&format!("\n- {} — compliant", label(key))), "{key:?} in {compliant}");
    }
    assert!(md.contains(
        "- remove RC4 suites (TLS_RSA_WITH_RC4_128_MD5) from 68.233.76.12:443 — critical (`tls.cipher.insecure`)"
    ));
}

#[test]
fn json_report_matches_the_events() {
    let files: Vec<String> = MULTI.iter().map(|n| corpus(n)).collect();
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let exp = expected(&refs);
    let out_file = std::env::temp_dir().join(format!("tlsmon-report-{}.json", std::process::id()));
    let mut args = vec!["replay", "--format", "json", "--report", "json", "--report-out", out_file.to_str().unwrap()];
    args.extend(&refs);
    let (code, stdout) = tlsmon(&args);
    assert_eq!(code, 0);
    // Events still on stdout, the report in the file.
    let events: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("event")).collect();
    let events = events.len();
    assert_eq!(events as u64, exp.values().map(|e| e.handshakes).sum::<u64>());
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).expect("report written")).expect("JSON");
    std::fs::remove_file(&out_file).ok();
    assert_eq!(doc["profile"], "hipaa");
    assert_eq!(doc["verdict"], "non-compliant");
    assert_eq!(doc["captures"].as_array().unwrap().len(), MULTI.len());
    assert_eq!(doc["totals"]["servers"].as_u64(), Some(exp.len() as u64));
    assert_eq!(doc["totals"]["servers_dropped"], 0);
    assert_eq!(doc["totals"]["handshakes"].as_u64(), Some(events as u64));
    let servers = doc["servers"].as_array().unwrap();
    let mut got = BTreeMap::new();
    let mut prev: Option<u8> = Some(u8::MAX);
    for s in servers {
        let key = (
            s["ip"].as_str().unwrap().to_string(),
            s["port"].as_u64().unwrap(),
            s["sni"].as_str().unwrap().to_string(),
        );
        let w = s["worst_severity"].as_str().map(rank);
        assert!(w <= prev, "servers sorted by worst finding");
        prev = w;
        let verdict = if w.is_some_and(|w| w >= rank("medium")) { "non-compliant" } else { "compliant" };
        assert_eq!(s["verdict"], verdict, "{key:?}");
        let mut e = Expected { handshakes: s["handshakes"].as_u64().unwrap(), ..Default::default() };
        for f in s["findings"].as_array().unwrap() {
            e.findings.insert(f["id"].as_str().unwrap().to_string(), rank(f["severity"].as_str().unwrap()));
            assert!(f["fix"].as_str().unwrap().contains(&format!("{}:{}", key.0, key.1)), "{f}");
        }
        for field in ["versions", "ciphers", "groups", "client_max_versions", "first_seen", "last_seen", "certificate"]
        {
            assert!(s.get(field).is_some(), "{field} missing in {s}");
        }
        got.insert(key, e);
    }
    assert_eq!(got, exp);
    let tls11 = servers.iter().find(|s| s["ip"] == "216.58.192.14").expect("tls1_1 server");
    assert_eq!(tls11["versions"]["TLS 1.1"], 1);
    assert_eq!(tls11["ciphers"]["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], 1);
    let sslv2 = servers.iter().find(|s| s["ip"] == "91.227.4.92").expect("sslv2 server");
    assert_eq!(sslv2["certificate"]["subject_cn"], "plesk");
    assert_eq!(sslv2["certificate"]["self_signed"], true);
    assert_eq!(sslv2["worst_severity"], "critical");
}
