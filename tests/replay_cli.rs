//! The `tlsmon replay` binary on bad input: corrupt and truncated captures end with one clear
//! line naming the file and the byte offset, after the events gathered so far were written;
//! garbage payloads on port 443 never panic. Also the JSON contract and `--fail-on`.
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmon-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn tlsmon(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines().map(|l| serde_json::from_str(l).expect("every stdout line is JSON")).collect()
}

#[test]
fn truncated_capture_keeps_events_and_names_offset() {
    // JA4's browser capture holds several handshakes; cut it in the last third.
    let src = std::fs::read(corpus("ja4__browsers-x509.pcapng")).unwrap();
    let (_, full, _) = tlsmon(&["replay", "--format", "json", corpus("ja4__browsers-x509.pcapng").to_str().unwrap()]);
    let full = json_lines(&full);
    let cut = tmp("cut.pcapng");
    std::fs::write(&cut, &src[..src.len() * 2 / 3 + 7]).unwrap();
    let (code, out, err) = tlsmon(&["replay", "--format", "json", cut.to_str().unwrap()]);
    let got = json_lines(&out);
    assert_eq!(code, 2, "stderr: {err}");
    assert!(!got.is_empty() && got.len() < full.len(), "partial results written: {} of {}", got.len(), full.len());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].contains(cut.to_str().unwrap()) && lines[0].contains("byte offset"), "{err}");
}

#[test]
fn corrupt_capture_is_one_clear_line() {
    let mut src = std::fs::read(corpus("zeek__tls1.2.pcap")).unwrap();
    // Smash the record header of a packet in the middle: an absurd captured length.
    let mut off = 24usize;
    for _ in 0..10 {
        let caplen = u32::from_le_bytes(src[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
    }
    src[off + 8..off + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let bad = tmp("corrupt.pcap");
    std::fs::write(&bad, &src).unwrap();
    let (code, _out, err) = tlsmon(&["replay", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("byte offset {off}")), "{err}");

    let (code, _, err) = tlsmon(&["replay", "--format", "json", "/nonexistent/x.pcap"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open /nonexistent/x.pcap"), "{err}");
    std::fs::write(tmp("text.pcap"), b"this is not a capture at all, just text\n").unwrap();
    let (code, _, err) = tlsmon(&["replay", tmp("text.pcap").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
}

/// A classic pcap of Ethernet/IPv4/TCP frames to port 443 with the given payloads.
fn pcap_443(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut hdr = 0xa1b2c3d4u32.to_le_bytes().to_vec();
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&[0u8; 8]);
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    let mut seq = 1u32;
    for (i, p) in payloads.iter().enumerate() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 20 + p.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, (i % 7) as u8 + 2]);
        f.extend_from_slice(&(40000 + (i % 5) as u16).to_be_bytes());
        f.extend_from_slice(&443u16.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(p);
        seq = seq.wrapping_add(p.len() as u32);
        hdr.extend_from_slice(&(i as u32).to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes());
        hdr.extend_from_slice(&(f.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&(f.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&f);
    }
    hdr
}

#[test]
fn garbage_on_443_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut payloads = Vec::new();
    for i in 0..3000 {
        let len = (next() % 1400) as usize + 1;
        let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Make most of them look like TLS so the deep parsers get exercised.
        match i % 4 {
            0 => p.splice(0..0, [0x16, 3, 1, (len >> 8) as u8, len as u8, 1]).for_each(drop),
            1 => p.splice(0..0, [0x16, 3, 3, 0x40, 0, 2, 0, 0x3f, 0xf0]).for_each(drop),
            2 => p.splice(0..0, [0x80, 0x40, 1, 3, 1]).for_each(drop),
            _ => {}
        }
        payloads.push(p);
    }
    let f = tmp("garbage.pcap");
    std::fs::write(&f, pcap_443(&payloads)).unwrap();
    let (code, out, err) = tlsmon(&["replay", "--format", "json", f.to_str().unwrap()]);
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    json_lines(&out);
}

#[test]
fn json_contract_and_fail_on() {
    let f = corpus("zeek__tls1.2.pcap");
    let (code, out, _) = tlsmon(&["replay", "--format", "json", "--fail-on", "critical", f.to_str().unwrap()]);
    assert_eq!(code, 1, "RC4 is critical");
    let evs = json_lines(&out);
    assert!(!evs.is_empty());
    for e in &evs {
        assert_eq!(e["type"], "tls");
        assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
        for k in ["source", "destination"] {
            assert!(e[k]["ip"].is_string() && e[k]["port"].is_u64());
        }
        assert_eq!(e["tls"]["version_protocol"], "tls");
        assert_eq!(e["tls"]["version"], "1.2");
        assert_eq!(e["tls"]["cipher"], "TLS_RSA_WITH_RC4_128_MD5");
        assert_eq!(e["tls"]["cipher_id"], 4);
        assert!(e["tls"]["client"]["ja3"].as_str().unwrap().len() == 32);
        assert!(e["tls"]["client"]["supported_ciphers"].is_array());
        for f in e["findings"].as_array().unwrap() {
            for k in ["id", "severity", "hipaa_ref", "evidence"] {
                assert!(f[k].is_string(), "{f}");
            }
        }
        // Not seen in this capture, so absent rather than invented.
        assert!(e["tls"].get("curve").is_none());
    }
    let (code, _, _) = tlsmon(&[
        "replay",
        "--format",
        "none",
        "--fail-on",
        "critical",
        corpus("suricata__community-id-ipv6.pcap").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, text, _) = tlsmon(&["replay", "--format", "text", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(text.contains("Handshakes:") && text.contains("Verdict: NON-COMPLIANT"), "{text}");
}

#[test]
fn ca_bundle_judges_real_chains() {
    // Debian's Mozilla bundle (package ca-certificates, installed by `cargo xtask setup`).
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    let run = |name: &str| {
        let (code, out, err) =
            tlsmon(&["replay", "--format", "json", "--ca-bundle", bundle, corpus(name).to_str().unwrap()]);
        assert!(code == 0 || code == 1, "{err}");
        json_lines(&out)
    };
    // 2023 chains to DigiCert and Microsoft roots: trusted, no finding.
    let evs = run("ja4__latest.pcapng");
    let judged: Vec<_> = evs.iter().filter(|e| e["tls"]["server"].get("chain_trusted").is_some()).collect();
    assert!(judged.len() >= 3);
    for e in &judged {
        assert_eq!(e["tls"]["server"]["chain_trusted"], true, "{e}");
        assert!(!e["findings"].as_array().unwrap().iter().any(|f| f["id"] == "tls.cert.untrusted"));
    }
    // Tor's made-up self-issued certificates: untrusted, with the issuer named.
    for e in run("ndpi__tor.pcap").iter().filter(|e| e["tls"]["server"].get("chain_trusted").is_some()) {
        assert_eq!(e["tls"]["server"]["chain_trusted"], false);
        let f = e["findings"].as_array().unwrap().iter().find(|f| f["id"] == "tls.cert.untrusted").expect("finding");
        assert!(f["evidence"].as_str().unwrap().contains("is not in the CA bundle"), "{f}");
    }
    // Without a bundle there is no trust verdict at all.
    let (_, out, _) = tlsmon(&["replay", "--format", "json", corpus("ndpi__tor.pcap").to_str().unwrap()]);
    assert!(json_lines(&out).iter().all(|e| e["tls"]["server"].get("chain_trusted").is_none()));
    let (code, _, err) =
        tlsmon(&["replay", "--ca-bundle", "/nonexistent.pem", corpus("ndpi__tor.pcap").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read CA bundle /nonexistent.pem"), "{err}");
}

/// SSH: the OpenSSH capture in the repository (tcpdump on loopback, OpenSSH 9.2p1 both ends:
/// stock on 2222, legacy on 2223) gives two `ssh` events whose HASSH values are tshark's
/// (`-d tcp.port==2222,ssh -d tcp.port==2223,ssh -T fields -e ssh.kex.hassh -e
/// ssh.kex.hasshserver`), fails `--fail-on high` for the legacy session, and keeps every
/// finding in the audit-ready JSON shape.
#[test]
fn ssh_capture_events_and_fail_on() {
    let cap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures/openssh-9.2p1-stock-and-legacy.pcap");
    let (code, out, err) = tlsmon(&["replay", "--format", "json", "--fail-on", "high", cap.to_str().unwrap()]);
    assert_eq!(code, 1, "a high finding fails the run; stderr: {err}");
    let evs = json_lines(&out);
    let got: Vec<(u64, &str, &str, &str)> = evs
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "ssh");
            let s = &e["ssh"];
            (
                e["destination"]["port"].as_u64().unwrap(),
                s["hassh"].as_str().unwrap(),
                s["hassh_server"].as_str().unwrap(),
                s["negotiated"]["kex"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (2222, "472b5de333ad665af5cbf10ff892c4df", "425d29fe50d8e4f5e37efb6e24bcf660", "sntrup761x25519-sha512"),
            (
                2223,
                "60be353391f41a6e1c9b5a424b21fb90",
                "d125690d9f70f500a38541d4a88a70e6",
                "diffie-hellman-group1-sha1"
            ),
        ]
    );
    let ids: Vec<&str> = evs[1]["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ssh.cipher.weak", "ssh.kex.weak", "ssh.hostkey.weak"]);
    // Under mozilla-modern hmac-sha1 is a finding too.
    let (_, out, _) = tlsmon(&["replay", "--format", "json", "--profile", "mozilla-modern", cap.to_str().unwrap()]);
    assert!(json_lines(&out)[1]["findings"].as_array().unwrap().iter().any(|f| f["id"] == "ssh.mac.weak"));
}

/// tests/captures/openssl-3.0-mtls-tls12-tls13.pcap: OpenSSL 3.0.19 `s_server` and `s_client`
/// on loopback, captured with tcpdump, one flow per port: 44301 `-tls1_2 -Verify 1` with a
/// client certificate (CN=device-0042, EC P-256, issued by "tlsmon lab client CA"); 44302
/// `-verify 1`, the client declines (empty Certificate); 44303 no CertificateRequest; 44304
/// `-verify 1` with an expired RSA-1024 certificate signed ecdsa-with-SHA1 (CN=device-0007);
/// 44305 `-tls1_3 -Verify 1` with a client certificate. Expected values from
/// `openssl x509 -fingerprint -sha256` on the certificates used.
fn mtls_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures/openssl-3.0-mtls-tls12-tls13.pcap")
}

fn by_port(evs: &[serde_json::Value], port: u64) -> &serde_json::Value {
    evs.iter().find(|e| e["destination"]["port"] == port).unwrap_or_else(|| panic!("no event for port {port}"))
}

fn ids(e: &serde_json::Value) -> Vec<&str> {
    e["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect()
}

#[test]
fn mtls_capture_client_certificates_and_requests() {
    let (code, out, err) = tlsmon(&["replay", "--format", "json", mtls_capture().to_str().unwrap()]);
    assert_eq!(code, 0, "stderr: {err}");
    let evs = json_lines(&out);
    assert_eq!(evs.len(), 5);

    // The CertificateRequest: OpenSSL lists the -CAfile's subject and its signature algorithms.
    let e = by_port(&evs, 44301);
    let cr = &e["tls"]["server"]["certificate_request"];
    assert_eq!(cr["ca_names"], serde_json::json!(["O=tlsmon lab, CN=tlsmon lab client CA"]));
    assert_eq!(cr["ca_names_count"], 1);
    assert_eq!(cr["certificate_types"], serde_json::json!(["rsa_sign", "dss_sign", "ecdsa_sign"]));
    assert_eq!(cr["signature_algorithms"].as_array().unwrap().len(), 23);
    assert_eq!(cr["signature_algorithms"][0], "0x0403");
    // The client's leaf.
    let c = &e["tls"]["client"];
    assert_eq!(c["certificate_presented"], true);
    assert_eq!(c["chain_length"], 1);
    assert_eq!(c["hash"]["sha256"], "E6F2CEDC14F8EF9644EAB776E6C343C3E11B815492917088620A5514A4F63B5E");
    assert_eq!(c["x509"]["subject"]["common_name"], "device-0042");
    assert_eq!(c["x509"]["issuer"]["common_name"], "tlsmon lab client CA");
    assert_eq!(c["x509"]["serial_number"], "6b:b4:f6:74:fb:32:85:72:fb:5c:67:12:01:de:6d:5e:a3:61:78:c3");
    assert_eq!(
        (c["x509"]["public_key_algorithm"].as_str(), c["x509"]["public_key_size"].as_u64()),
        (Some("ec"), Some(256))
    );
    assert_eq!(c["x509"]["not_after"], "2036-11-29T12:29:11Z");
    // The server's own certificate is untouched by the client's.
    assert_eq!(e["tls"]["server"]["x509"]["subject"]["common_name"], "mtls.lab.test");
    assert!(!ids(e).iter().any(|i| i.starts_with("tls.client-cert.") || i.starts_with("tls.mtls.")), "{:?}", ids(e));

    // A client that declines: an empty Certificate, no leaf facts.
    let c = &by_port(&evs, 44302)["tls"]["client"];
    assert_eq!(c["certificate_presented"], false);
    assert!(c.get("x509").is_none() && c.get("chain_length").is_none());
    assert!(by_port(&evs, 44302)["tls"]["server"]["certificate_request"].is_object());

    // No CertificateRequest: neither field, nothing invented.
    let e = by_port(&evs, 44303);
    assert!(e["tls"]["server"].get("certificate_request").is_none());
    assert!(e["tls"]["client"].get("certificate_presented").is_none());

    // The expired, weak client certificate: the server checks, as client-side findings.
    let e = by_port(&evs, 44304);
    assert_eq!(
        e["tls"]["client"]["hash"]["sha256"],
        "BB926F1FE7FA23E709ABF6942D910D82AB98A1251386DA52A2E8F1170781FEBC"
    );
    let f: Vec<(&str, &str, &str)> = e["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"].as_str().unwrap().starts_with("tls.client-cert."))
        .map(|f| (f["id"].as_str().unwrap(), f["severity"].as_str().unwrap(), f["evidence"].as_str().unwrap()))
        .collect();
    assert_eq!(
        f,
        [
            ("tls.client-cert.expired", "high", "client certificate CN=device-0007 expired on 2021-01-01"),
            ("tls.client-cert.weak-key", "high", "client certificate CN=device-0007: RSA key of 1024 bits"),
            (
                "tls.client-cert.weak-signature",
                "high",
                "client certificate CN=device-0007: signed with ecdsa-with-SHA1"
            ),
        ]
    );
    assert!(e["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["hipaa_ref"] == "164.312(d)" || !f["id"].as_str().unwrap().starts_with("tls.client")));

    // TLS 1.3: the client's certificate is encrypted; nothing about it is reported.
    let e = by_port(&evs, 44305);
    assert_eq!(e["tls"]["version"], "1.3");
    assert!(e["tls"]["client"].get("certificate_presented").is_none() && e["tls"]["client"].get("x509").is_none());
    assert!(e["tls"]["server"].get("certificate_request").is_none());
}

#[test]
fn mtls_required_servers() {
    let cfg = tmp("mtls.toml");
    // 44301 presents a certificate (no finding); 44302 declines; 44303 is never asked (the SNI
    // pattern matches mtls.lab.test); 44305 is TLS 1.3; 44304 is named by nothing.
    std::fs::write(
        &cfg,
        "[[mtls-required]]\nserver = \"127.0.0.0/8\"\nport = 44301\n\n\
         [[mtls-required]]\nserver = \"127.0.0.1\"\nport = 44302\n\n\
         [[mtls-required]]\nserver = \"127.0.0.1\"\nport = 44303\nsni = \"*.lab.test\"\n\n\
         [[mtls-required]]\nserver = \"::/0\"\n\n\
         [[mtls-required]]\nserver = \"127.0.0.1/32\"\nport = 44305\n",
    )
    .unwrap();
    let (code, out, err) =
        tlsmon(&["replay", "--format", "json", "--config", cfg.to_str().unwrap(), mtls_capture().to_str().unwrap()]);
    assert_eq!(code, 0, "stderr: {err}");
    let evs = json_lines(&out);
    let mtls = |port: u64| -> Vec<(String, String, String)> {
        by_port(&evs, port)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"].as_str().unwrap().starts_with("tls.mtls."))
            .map(|f| {
                let s = |k: &str| f[k].as_str().unwrap().to_string();
                (s("id"), s("severity"), s("evidence"))
            })
            .collect()
    };
    let one = |id: &str, sev: &str, ev: &str| vec![(id.to_string(), sev.to_string(), ev.to_string())];
    assert_eq!(mtls(44301), vec![]);
    assert_eq!(
        mtls(44302),
        one("tls.mtls.missing", "high", "client declined the CertificateRequest (empty Certificate)")
    );
    assert_eq!(mtls(44303), one("tls.mtls.missing", "high", "server sent no CertificateRequest"));
    assert_eq!(mtls(44304), vec![]);
    assert_eq!(
        mtls(44305),
        one(
            "tls.mtls.unverifiable",
            "info",
            "TLS 1.3: the CertificateRequest and the client's Certificate are encrypted"
        )
    );
    // --fail-on high trips on tls.mtls.missing; an SNI the pattern does not cover names nothing.
    let (code, _, _) = tlsmon(&[
        "replay",
        "--format",
        "none",
        "--fail-on",
        "high",
        "--config",
        cfg.to_str().unwrap(),
        mtls_capture().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    std::fs::write(&cfg, "[[mtls-required]]\nserver = \"127.0.0.1\"\nport = 44303\nsni = \"other.lab.test\"\n")
        .unwrap();
    let (_, out, _) =
        tlsmon(&["replay", "--format", "json", "--config", cfg.to_str().unwrap(), mtls_capture().to_str().unwrap()]);
    assert!(json_lines(&out).iter().all(|e| !ids(e).iter().any(|i| i.starts_with("tls.mtls."))));
}
