//! Golden tests over the shared corpus (../shared/corpus): for every handshake a peer tool
//! (Zeek, Suricata, nDPI, JA4, Arkime) reports, tlsmon's JSON event must agree on version,
//! cipher, SNI, group, JA3, JA3S, JA4 and (Zeek) whether the handshake was established. Where
//! the peer is wrong (checked against tshark, whose observations the manifest carries) or the
//! difference is a known limit, the table below records tlsmon's own value and why; such a
//! check must then give exactly that value.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use monitor::sink::json;
use serde_json::Value;

/// The events as replay writes them by default (ECS, `tlsmon.*`, and the pre-ECS names of
/// this release, which some checks below still read).
fn ecs_only() -> json::Style {
    json::Style::default()
}

fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    assert!(p.join("manifest.json").exists(), "the shared corpus must sit beside the checkout: {}", p.display());
    p
}

/// nDPI (2024-10) writes 'd' in JA4 for ClientHellos without a server_name extension.
const NDPI_SNI: &str = "the ClientHello has no SNI extension (tshark: no server_name on this flow), so JA4's \
                        second field is 'i' per the JA4 spec; nDPI prints 'd'";

type Known = BTreeMap<(&'static str, &'static str, &'static str, &'static str), (Option<&'static str>, &'static str)>;

/// (file, peer prefix, field, peer's value) → (tlsmon's value, why it differs from the peer).
fn known() -> Known {
    BTreeMap::from([
        (
            ("ndpi__tls_alert.pcapng", "ndpi", "tls_version", "tls1.0"),
            (None, "no ServerHello (tshark: serverhellos []), the server sent a fatal protocol_version alert; nDPI prints the ClientHello's version"),
        ),
        (
            ("ndpi__tls_invalid_reads.pcapng", "ndpi", "tls_version", "tls1.2"),
            (None, "the crashlytics flow has no ServerHello (tshark: one ServerHello in the file, on the other flow); nDPI prints the ClientHello's version"),
        ),
        (
            ("ndpi__tls_port_80.pcapng", "ndpi", "ja4", "t12d550500_168bb377f8c8_a1e935682795"),
            (Some("t12i550500_168bb377f8c8_a1e935682795"), NDPI_SNI),
        ),
        (
            ("zeek__imap-starttls.pcap", "ndpi", "ja4", "t12d910500_383454ac02f4_a1e935682795"),
            (Some("t12i910500_383454ac02f4_a1e935682795"), NDPI_SNI),
        ),
        (
            ("ndpi__smtp-starttls-vlan-ipv6.pcap", "ndpi", "ja4", "t10d290100_cdba58456bdf_e78b541c01a9"),
            (Some("t10i290100_cdba58456bdf_e78b541c01a9"), NDPI_SNI),
        ),
        (
            ("ndpi__rdp_over_tls.pcap", "ndpi", "ja4", "t12d280600_bbd4f008d9b2_f28add8e7af0"),
            (Some("t12i280600_bbd4f008d9b2_f28add8e7af0"), NDPI_SNI),
        ),
    ])
}

fn first(v: &Value) -> Option<String> {
    match v {
        Value::Array(a) => a.first().and_then(first),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strip_note(s: &str) -> String {
    match s.find(" (") {
        Some(i) if s.ends_with(')') => s[..i].trim().to_string(),
        _ => s.trim().to_string(),
    }
}

/// Peers spell versions "TLSv12", "TLS 1.2", "TLSv1.2", "TLSv1", "TLS 1.3 draft-19": → "tls1.2".
fn norm_version(s: &str) -> String {
    let mut s = s.to_ascii_lowercase().replace(' ', "");
    if let Some(i) = s.find("draft") {
        s.truncate(i);
    }
    let (proto, rest) = if let Some(r) = s.strip_prefix("ssl") {
        ("ssl", r)
    } else if let Some(r) = s.strip_prefix("tls") {
        ("tls", r)
    } else if let Some(r) = s.strip_prefix("dtls") {
        ("dtls", r)
    } else {
        return s;
    };
    let digits: String = rest.trim_start_matches('v').chars().filter(|c| c.is_ascii_digit()).collect();
    match (proto, digits.as_str()) {
        ("ssl", d) => format!("ssl{}.0", &d[..1.min(d.len())]),
        (p, d) if d.len() == 1 => format!("{p}{d}.0"),
        (p, d) if d.len() >= 2 => format!("{p}{}.{}", &d[..1], &d[1..2]),
        _ => s,
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// Our value for a peer field, normalised like the peer's.
fn ours(ev: &Value, field: &str) -> Option<String> {
    let s = |p: &str| get(ev, p).and_then(Value::as_str).map(str::to_string);
    match field {
        "tls_version" => Some(format!("{}{}", s("tls.version_protocol")?, s("tls.version")?)),
        "cipher" => s("tls.cipher").map(|c| c.to_uppercase()),
        "sni" | "hostname_sni" => s("tls.client.server_name"),
        "ja3" => s("tls.client.ja3"),
        "ja3s" => s("tls.server.ja3s"),
        "ja4" | "JA4.1" => s("tlsmon.tls.client.ja4"),
        "curve" => s("tls.curve").map(|c| c.to_lowercase()),
        "established" => {
            get(ev, "tls.established").and_then(Value::as_bool).map(|b| if b { "T" } else { "F" }.to_string())
        }
        _ => None,
    }
}

fn peer_norm(field: &str, v: &str) -> String {
    let v = strip_note(v);
    match field {
        "tls_version" => norm_version(&v),
        "cipher" => v.to_uppercase(),
        "curve" => v.to_lowercase(),
        _ => v,
    }
}

fn endpoint_key(v: &Value) -> Option<(String, u64)> {
    let ip: std::net::IpAddr = v.get("ip")?.as_str()?.parse().ok()?;
    let port = v.get("port")?.as_u64().or_else(|| v.get("port")?.as_str()?.parse().ok())?;
    Some((ip.to_string(), port))
}

fn block_endpoints(b: &Value) -> Vec<(String, u64)> {
    let pairs = [("client", "server"), ("endpoint_a", "endpoint_b")];
    for (a, z) in pairs {
        if let (Some(a), Some(z)) = (b.get(a), b.get(z)) {
            return [a, z].into_iter().filter_map(endpoint_key).collect();
        }
    }
    Vec::new()
}

#[test]
fn corpus_agrees_with_peer_tools() {
    let dir = corpus();
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let known = known();
    let mut used_known = Vec::new();
    let (mut agreed, mut checked, mut failures) = (0, 0, Vec::new());
    for entry in manifest.as_array().unwrap() {
        let path = dir.join(entry["file"].as_str().unwrap());
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let outputs = match monitor::run::replay_path(&path) {
            Ok((o, _)) => o,
            Err((o, _)) => o,
        };
        let events: Vec<Value> =
            outputs.iter().map(|o| serde_json::to_value(json::any_event(o, &ecs_only())).unwrap()).collect();
        for b in entry["expected"].as_array().unwrap() {
            let peer = b["peer"].as_str().unwrap();
            let Some(fields) = b.get("fields").and_then(Value::as_object) else { continue };
            let mut todo: Vec<(&str, String)> = fields
                .iter()
                .filter(|(k, _)| {
                    [
                        "tls_version",
                        "cipher",
                        "sni",
                        "hostname_sni",
                        "ja3",
                        "ja3s",
                        "ja4",
                        "JA4.1",
                        "curve",
                        "established",
                    ]
                    .contains(&k.as_str())
                })
                .filter_map(|(k, v)| first(v).filter(|s| !s.is_empty() && s != "-").map(|s| (k.as_str(), s)))
                .collect();
            if peer == "ndpi" && !fields.get("ndpi_proto").and_then(Value::as_str).unwrap_or("").contains("/TLS") {
                todo.retain(|(k, _)| *k != "hostname_sni");
            }
            if todo.iter().all(|(k, _)| *k == "sni" || *k == "hostname_sni") {
                continue;
            }
            let eps = block_endpoints(b);
            let cand: Vec<&Value> = events
                .iter()
                .filter(|e| {
                    let mine = [get(e, "source"), get(e, "destination")].map(|v| v.and_then(endpoint_key));
                    eps.iter().all(|ep| mine.iter().any(|m| m.as_ref() == Some(ep)))
                })
                .collect();
            if cand.is_empty() {
                failures.push(format!("{file} [{peer}]: no event for {eps:?}"));
                continue;
            }
            for (field, want) in todo {
                checked += 1;
                let want = peer_norm(field, &want);
                let got: Vec<Option<String>> = cand.iter().map(|e| ours(e, field)).collect();
                let peer_key = peer.split_whitespace().next().unwrap();
                if let Some((ours_known, why)) = known
                    .iter()
                    .find(|((f, p, k, v), _)| *f == file && *p == peer_key && *k == field && *v == want)
                    .map(|(_, v)| v)
                {
                    used_known.push((file.clone(), field));
                    let ours_known = ours_known.map(str::to_string);
                    if !got.contains(&ours_known) {
                        failures.push(format!("{file} [{peer}] {field}: recorded {ours_known:?} ({why}), got {got:?}"));
                    }
                    continue;
                }
                if got.contains(&Some(want.clone())) {
                    agreed += 1;
                } else {
                    failures.push(format!("{file} [{peer}] {field}: peer {want:?}, tlsmon {got:?}"));
                }
            }
        }
    }
    println!("corpus: {agreed}/{checked} peer checks agree; {} recorded differences", used_known.len());
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(used_known.len(), known.len(), "every recorded difference must still be exercised: {used_known:?}");
    assert!(agreed >= 280, "too few checks ran: {agreed}");
}

/// Replay one capture and return its JSON events.
fn events_of(name: &str) -> Vec<Value> {
    let (outputs, _) = monitor::run::replay_path(&corpus().join("pcaps").join(name)).expect("replays cleanly");
    outputs.iter().map(|o| serde_json::to_value(json::any_event(o, &ecs_only())).unwrap()).collect()
}

fn finding_ids(ev: &Value) -> Vec<String> {
    ev["tlsmon"]["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn split_and_oversized_handshakes_parse_completely() {
    // ClientHello split over TCP segments, post-quantum key share and ECH (Arkime).
    let ev = events_of("arkime__tls-split-client-hello.pcap");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["tlsmon"]["tls"]["client"]["key_share_groups"][0], "X25519MLKEM768");
    assert_eq!(ev[0]["tlsmon"]["tls"]["client"]["ech"], true);
    // 300-byte MTU: the ClientHello spans many segments (Suricata).
    let ev = events_of("suricata__tls-client-hello-frag-mtu300.pcap");
    assert!(ev.iter().any(|e| e["tls"]["client"]["server_name"].is_string() && e["tls"]["client"]["ja3"].is_string()));
    // A single 340 KB certificate in 21 full-size records: the record walk follows the flight
    // past the 16 KiB budget, so the certificate and the ServerKeyExchange's curve after it are
    // read whole.
    let ev = events_of("zeek__tls-fragmented-handshake.pcap");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["tls"]["cipher"], "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384");
    assert_eq!(ev[0]["tls"]["client"]["server_name"], "104.236.167.107");
    assert_eq!(ev[0]["tls"]["server"]["x509"]["subject"]["common_name"], "Bro");
    assert_eq!(ev[0]["tls"]["curve"], "secp256r1");
    // Post-quantum hybrids negotiated.
    // Post-quantum key shares (1.2 KB each) offered; the server picks x25519 here...
    let ev = events_of("suricata__tls13-x25519mlkem768.pcap");
    assert!(ev
        .iter()
        .any(|e| e["tls"]["client"]["key_share_groups"][0] == "X25519MLKEM768" && e["tls"]["curve"] == "x25519"));
    // ...and the Kyber draft hybrid there.
    let ev = events_of("zeek__chrome-1250-tls-x25519-kyber.pcap");
    assert!(
        ev.iter()
            .any(|e| e["tls"]["curve"] == "X25519Kyber768Draft00"
                && finding_ids(e).contains(&"tls.pq-hybrid".to_string()))
    );
}

#[test]
fn quic_captures_give_quic_events() {
    let dir = corpus();
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut files = 0;
    for entry in manifest.as_array().unwrap() {
        if !entry["cases"].as_array().unwrap().iter().any(|c| c == "quic") {
            continue;
        }
        files += 1;
        let name = entry["file"].as_str().unwrap().trim_start_matches("pcaps/");
        let quic: Vec<Value> = events_of(name).into_iter().filter(|e| e["network"]["protocol"] == "quic").collect();
        assert!(!quic.is_empty(), "{name}: no QUIC event");
        for e in &quic {
            assert_eq!(e["network"]["transport"], "udp", "{name}");
            assert_eq!(e["tlsmon"]["quic"]["version"], "1", "{name}");
            assert!(e["tlsmon"]["tls"]["client"]["ja4"].as_str().unwrap().starts_with("q13"), "{name}: {e}");
        }
    }
    assert_eq!(files, 4, "QUIC captures in the corpus");
    // Raw PPP link type (9): both connections, the resumed one included, ServerHello read.
    let ev = events_of("zeek__quic-go-zerortt.pcap");
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e["tls"]["curve"] == "x25519" && e["tls"]["client"]["server_name"] == "server4:443"));
    // TCP events say so in network.* and carry no quic object.
    let tcp = events_of("suricata__ja4-tls-quic.pcap");
    assert!(tcp
        .iter()
        .any(|e| e["network"]["transport"] == "tcp" && e["tlsmon"].get("quic").is_none() && e.get("quic").is_none()));
}

/// Every DTLS capture of the corpus gives DTLS events (zeek's dtls1_2.pcap: a
/// HelloVerifyRequest exchange on UDP 4400, the certificate in five fragments).
#[test]
fn dtls_captures_give_dtls_events() {
    let dir = corpus();
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut files = 0;
    for entry in manifest.as_array().unwrap() {
        if !entry["cases"].as_array().unwrap().iter().any(|c| c == "dtls") {
            continue;
        }
        files += 1;
        let name = entry["file"].as_str().unwrap().trim_start_matches("pcaps/");
        let dtls: Vec<Value> = events_of(name).into_iter().filter(|e| e["network"]["protocol"] == "dtls").collect();
        assert!(!dtls.is_empty(), "{name}: no DTLS event");
        for e in &dtls {
            assert_eq!(e["network"]["transport"], "udp", "{name}");
            assert_eq!(e["tls"]["version_protocol"], "dtls", "{name}");
            assert!(e["tls"]["client"]["ja4"].as_str().unwrap().starts_with('d'), "{name}: {e}");
        }
    }
    assert_eq!(files, 1, "DTLS captures in the corpus");
    let ev = events_of("zeek__dtls1_2.pcap");
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["tls"]["established"], true);
    assert_eq!(
        e["tls"]["server"]["hash"]["sha256"],
        "6F5446A5B23F4E73925DE5E6629C09B1C61ED66537D6D8A7818750C9CD0A67D7"
    );
    assert_eq!(e["tls"]["client"]["ja4"], "dd2i800500_9cedc1f1428b_a1e935682795");
    assert_eq!(finding_ids(e), ["tls.cert.self-signed"]);
}

#[test]
fn findings_on_corpus_captures() {
    let has = |name: &str, id: &str| events_of(name).iter().any(|e| finding_ids(e).iter().any(|f| f == id));
    assert!(has("zeek__ssl-v2.pcap", "tls.version.insecure"), "SSLv2");
    assert!(has("arkime__openssl-ssl3.pcap", "tls.version.insecure"), "SSLv3");
    assert!(has("zeek__tls1_1.pcap", "tls.version.deprecated"), "TLS 1.1");
    assert!(has("zeek__tls1.2.pcap", "tls.cipher.insecure"), "RC4");
    assert!(has("zeek__tls1.2.pcap", "tls.kx.no-pfs"), "static RSA");
    assert!(has("ndpi__selfsigned.pcap", "tls.cert.self-signed"), "self-signed");
    assert!(has("ndpi__selfsigned.pcap", "tls.cert.expired"), "expired");
    assert!(has("ndpi__tls_alert.pcapng", "tls.alert.fatal"), "fatal alert");
    // Upgraded sessions (STARTTLS, AUTH TLS, SSLRequest-like) are judged like any TLS flow.
    assert!(has("zeek__pop3-starttls.pcap", "tls.compression"), "DEFLATE negotiated after STLS");
    assert!(has("ndpi__pop3_stls.pcap", "tls.cipher.insecure"), "RC4 after STLS");
    // Modern TLS 1.3 with AEAD and (EC)DHE: no finding above low.
    for e in events_of("suricata__community-id-ipv6.pcap") {
        assert!(
            e["findings"].as_array().unwrap().iter().all(|f| f["severity"] == "info" || f["severity"] == "low"),
            "{e}"
        );
    }
}

/// Mutual TLS in the corpus, against tshark 4.0 over the same captures: suricata's
/// tls-client-auth (CertificateRequest naming SampleRoot; the client's Certificate holds one
/// certificate, SHA-256 of its DER a25ade46…, subject CN=SampleClientJane — the keys suricata's
/// eve expects under tls.client) and zeek's pop3-starttls (CertificateRequest with no CA names,
/// `dnames_len` 0, and a client Certificate of `certificates_length` 0: it declined).
#[test]
fn mutual_tls_on_corpus_captures() {
    let ev = events_of("suricata__tls-client-auth.pcap");
    assert_eq!(ev.len(), 1);
    let t = &ev[0]["tls"];
    assert_eq!(t["client"]["certificate_presented"], true);
    assert_eq!(t["client"]["chain_length"], 1);
    assert_eq!(t["client"]["hash"]["sha256"], "A25ADE469B6A611BA6668F46210B3B3F001B51B1D2BC9F0C152812B32C0C4B42");
    assert_eq!(
        t["client"]["x509"]["subject"]["distinguished_name"],
        "C=HU, ST=Budapest, L=Budapest, O=TLSClientAuthSampleClient, CN=SampleClientJane"
    );
    assert_eq!(t["client"]["x509"]["issuer"]["common_name"], "SampleRoot");
    let cr = &t["server"]["certificate_request"];
    assert_eq!(
        cr["ca_names"],
        serde_json::json!(["C=HU, ST=Budapest, L=Budapest, O=TLSClientAuthSampleCA, CN=SampleRoot"])
    );
    assert_eq!(cr["ca_names_count"], 1);
    // The server's leaf is still the server's (suricata's cert_serial).
    assert_eq!(t["server"]["x509"]["serial_number"], "00:c7:d4:28:8b:80:e0:1e:25");

    let ev = events_of("zeek__pop3-starttls.pcap");
    let t = &ev.iter().find(|e| e["tls"]["starttls"] == "pop3").expect("the upgraded session")["tls"];
    assert_eq!(t["client"]["certificate_presented"], false);
    assert!(t["client"].get("x509").is_none());
    assert_eq!(t["server"]["certificate_request"]["ca_names_count"], 0);
}
