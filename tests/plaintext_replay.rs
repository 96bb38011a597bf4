//! Plaintext inspection through `tlsmon replay`: health protocols, clear credentials and
//! STARTTLS on the synthetic captures (`cargo xtask gen-phi`, each with the events its manifest
//! expects) and on the public corpus (nDPI's HL7 and IMAP captures; the STARTTLS captures give
//! the upgraded session's TLS facts); and no plaintext finding where there is no plaintext
//! problem: every TLS-only corpus capture and a generated benchmark mix.
mod testdata;

use std::path::PathBuf;

use serde_json::{json, Value};
use testdata::{at, corpus, corpus_files, finding_ids, generated, phi_manifest, replay_json};

/// Does `ev` carry every `path: value` of `want` (and, when `want` has `findings`, exactly
/// those finding ids)?
fn matches(ev: &Value, want: &Value) -> Result<(), String> {
    for (path, value) in want.as_object().expect("an expectation is an object") {
        if path == "findings" {
            let mut w: Vec<String> =
                value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            w.sort();
            if finding_ids(ev) != w {
                return Err(format!("findings {:?}, expected {w:?}", finding_ids(ev)));
            }
        } else if at(ev, path) != Some(value) {
            return Err(format!("{path} = {:?}, expected {value}", at(ev, path)));
        }
    }
    Ok(())
}

/// Each expectation is met by its own event, and there is no other event.
fn check(file: &str, events: &[Value], expect: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = vec![false; events.len()];
    for want in expect {
        let hit = (0..events.len()).find(|&i| !used[i] && matches(&events[i], want).is_ok());
        match hit {
            Some(i) => used[i] = true,
            None => {
                let why: Vec<String> = events.iter().map(|e| matches(e, want).unwrap_err()).collect();
                problems.push(format!("{file}: no event for {want} (per event: {why:?})"));
            }
        }
    }
    for (i, ev) in events.iter().enumerate() {
        if !used[i] {
            problems.push(format!("{file}: unexpected event {ev}"));
        }
    }
    problems
}

#[test]
fn generated_captures_give_the_expected_events() {
    let (dir, manifest) = phi_manifest();
    let captures = manifest["captures"].as_array().expect("captures");
    assert!(captures.len() >= 20, "the generator writes every protocol: {} captures", captures.len());
    let mut problems = Vec::new();
    let mut protocols = std::collections::BTreeSet::new();
    for c in captures {
        let file = c["file"].as_str().unwrap();
        let events = replay_json(&[dir.join(file)], &[]);
        let expect = c["expect"].as_array().unwrap();
        for e in expect {
            if let Some(p) = e.get("plaintext.protocol").and_then(Value::as_str) {
                protocols.insert(p.to_string());
            }
        }
        problems.extend(check(file, &events, expect));
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    // Every protocol of the issue is covered by a capture.
    for p in [
        "hl7",
        "dicom",
        "fhir",
        "dicomweb",
        "cda",
        "x12",
        "http",
        "smtp",
        "imap",
        "pop3",
        "ftp",
        "ldap",
        "postgresql",
        "mysql",
        "tds",
    ] {
        assert!(protocols.contains(p), "no generated capture expects {p}: {protocols:?}");
    }
}

/// nDPI's HL7 capture: ADT^A01 over MLLP on port 6661 (not HL7's 2575) and the receiver's ACK.
#[test]
fn corpus_hl7_over_mllp() {
    let events = replay_json(&[corpus().join("pcaps/ndpi__hl7.pcap")], &[]);
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    let want = json!({
        "type": "plaintext",
        "destination.port": 6661,
        "plaintext.protocol": "hl7",
        "plaintext.confidence": "high",
        "plaintext.hl7.version": "2.3",
        "plaintext.hl7.mllp": true,
        "plaintext.hl7.messages": 2,
        "findings": ["plaintext.phi"],
    });
    assert_eq!(matches(ev, &want), Ok(()), "{ev}");
    let types = at(ev, "plaintext.hl7.message_types").and_then(Value::as_array).expect("message types");
    assert_eq!(types.first(), Some(&json!("ADT^A01")), "{ev}");
    assert_eq!(ev["findings"][0]["severity"], "critical");
}

/// nDPI's IMAP capture: LOGIN in clear to a server that offers no STARTTLS.
#[test]
fn corpus_imap_login_in_clear() {
    let events = replay_json(&[corpus().join("pcaps/ndpi__imap-plaintext.pcap")], &[]);
    assert_eq!(events.len(), 1, "{events:?}");
    let want = json!({
        "type": "plaintext",
        "destination.port": 143,
        "plaintext.protocol": "imap",
        "plaintext.credentials": ["imap-login"],
        "plaintext.starttls.offered": false,
        "findings": ["plaintext.credentials"],
    });
    assert_eq!(matches(&events[0], &want), Ok(()), "{}", events[0]);
}

/// The STARTTLS captures: one TLS event per upgraded session, with the TLS facts of the
/// upgraded session and the protocol it upgraded from; no plaintext event.
#[test]
fn corpus_starttls_sessions_give_their_tls_facts() {
    // (capture, protocol upgraded from, its sessions' (version, cipher or "" when unchecked)).
    type Case = (&'static str, &'static str, &'static [(&'static str, &'static str)]);
    let cases: [Case; 7] = [
        ("zeek__smtp-starttls.pcap", "smtp", &[("1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")]),
        ("zeek__pop3-starttls.pcap", "pop3", &[("1.2", "")]),
        ("zeek__imap-starttls.pcap", "imap", &[("1.2", "")]),
        ("zeek__ftp-auth-tls.pcap", "ftp", &[("1.3", "")]),
        ("suricata__ldap-starttls.pcap", "ldap", &[("1.2", "")]),
        ("ndpi__pop3_stls.pcap", "pop3", &[("1.0", "TLS_RSA_WITH_RC4_128_SHA")]),
        ("ndpi__smtp-starttls-vlan-ipv6.pcap", "smtp", &[("1.0", "TLS_RSA_WITH_RC4_128_SHA"), ("1.2", "")]),
    ];
    let mut problems = Vec::new();
    for (file, proto, sessions) in cases {
        let events = replay_json(&[corpus().join("pcaps").join(file)], &[]);
        let tls: Vec<&Value> = events.iter().filter(|e| e["type"] == "tls").collect();
        if tls.len() != sessions.len() || tls.len() != events.len() {
            problems.push(format!(
                "{file}: {} events ({} tls), expected {} tls",
                events.len(),
                tls.len(),
                sessions.len()
            ));
            continue;
        }
        for (version, cipher) in sessions.iter() {
            let hit = tls.iter().any(|e| {
                at(e, "tls.version") == Some(&json!(version))
                    && (cipher.is_empty() || at(e, "tls.cipher") == Some(&json!(cipher)))
                    && at(e, "tls.starttls") == Some(&json!(proto))
                    && at(e, "tls.cipher").is_some()
            });
            if !hit {
                problems.push(format!("{file}: no TLS {version} {cipher} session upgraded from {proto}: {tls:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The plaintext captures of the corpus (nDPI's HL7, IMAP, HTTP) aside, no corpus capture
/// gives a plaintext event or finding; nDPI's plain HTTP GET gives none either.
#[test]
fn no_plaintext_findings_on_tls_corpus() {
    let plain = ["ndpi__hl7.pcap", "ndpi__imap-plaintext.pcap"];
    let files: Vec<PathBuf> =
        corpus_files().into_iter().filter(|f| !plain.iter().any(|p| f.file_name().is_some_and(|n| n == *p))).collect();
    assert!(files.len() >= 50, "{} files", files.len());
    let mut problems = Vec::new();
    for f in &files {
        for ev in replay_json(std::slice::from_ref(f), &[]) {
            let plain_finding = finding_ids(&ev).iter().any(|id| id.starts_with("plaintext."));
            if ev["type"] != "tls" || plain_finding {
                problems.push(format!("{}: {ev}", f.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The generated benchmark mix (TLS SSLv3…1.3, failed handshakes, plain HTTP and UDP noise):
/// thousands of flows, not one plaintext event.
#[test]
fn no_plaintext_findings_on_the_mix() {
    let mix = generated().join("mix.pcap");
    let events = replay_json(&[mix], &[]);
    assert!(events.len() > 100, "the mix has TLS handshakes: {}", events.len());
    let plain: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] != "tls" || finding_ids(e).iter().any(|id| id.starts_with("plaintext.")))
        .collect();
    assert!(plain.is_empty(), "{} plaintext events on the mix, e.g. {:?}", plain.len(), plain.first());
}
