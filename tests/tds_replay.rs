//! SQL Server (TDS) through `tlsmon replay` and the pipeline, over the committed captures
//! built from MS-TDS with real TLS 1.2 sessions (tests/captures/README.md): the PRELOGIN
//! ENCRYPTION facts, the TLS handshake unwrapped from PRELOGIN packets and judged like any
//! other (`tls.starttls: "tds"`), `tds.cleartext` and `plaintext.credentials` where the session
//! leaves data or a password in clear; tshark's TDS dissector reads the same options; the
//! PRELOGIN and the wrapped handshake cut at every offset give the same event.
mod testdata;

use std::path::{Path, PathBuf};
use std::process::Command;

use monitor::decode::{self, Addr, Packet, Transport};
use monitor::pipeline::{Pipeline, PipelineConfig};
use serde_json::Value;
use testdata::{at, finding_ids, replay_json};

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures").join(name)
}

const SELF_SIGNED_TLS12: [&str; 3] = ["tls.cert.name-mismatch", "tls.cert.self-signed", "tls.version.no-tls13"];

#[test]
fn tls_sessions_are_unwrapped_from_prelogin_and_judged() {
    for (file, client, server, negotiated, cleartext) in [
        ("tds-encrypt-off.pcap", "off", "off", "login-only", true),
        ("tds-encrypt-on.pcap", "on", "on", "full", false),
        ("tds-encrypt-required.pcap", "off", "required", "full", false),
    ] {
        let evs = replay_json(&[capture(file)], &[]);
        assert_eq!(evs.len(), 1, "{file}: {evs:?}");
        let e = &evs[0];
        let s = |p: &str| at(e, p).and_then(Value::as_str).unwrap_or_else(|| panic!("{file}: no {p} in {e}"));
        assert_eq!(s("type"), "tls");
        assert_eq!(s("tls.starttls"), "tds", "{file}");
        assert_eq!((s("tls.version"), s("tls.cipher")), ("1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"), "{file}");
        assert_eq!(s("tls.curve"), "x25519");
        assert_eq!(s("tls.client.server_name"), "ehr-sql.hospital.example");
        assert_eq!(s("tls.server.x509.subject.common_name"), "SSL_Self_Signed_Fallback");
        assert_eq!(at(e, "tls.established"), Some(&Value::Bool(true)), "{file}: both Finished seen in PRELOGIN");
        assert_eq!(e["destination"]["port"], 1433);
        assert_eq!((s("tds.client_encryption"), s("tds.server_encryption")), (client, server), "{file}");
        assert_eq!(s("tds.negotiated"), negotiated, "{file}");
        assert_eq!(s("tds.server_version"), "16.0.1000");
        assert_eq!(at(e, "tds.tls_in_prelogin"), Some(&Value::Bool(true)));
        let mut want: Vec<String> = SELF_SIGNED_TLS12.iter().map(|s| s.to_string()).collect();
        if cleartext {
            want.push("tds.cleartext".into());
            want.sort();
        }
        assert_eq!(finding_ids(e), want, "{file}");
        if cleartext {
            let f = e["findings"].as_array().unwrap().iter().find(|f| f["id"] == "tds.cleartext").unwrap();
            assert_eq!(f["hipaa_ref"], "164.312(e)(1)");
            assert_eq!(f["severity"], "high");
            assert_eq!(
                f["evidence"],
                "SQL Server (TDS) session in clear: client ENCRYPTION off, server off, negotiated login-only \
                 (queries and results travel in clear)"
            );
        }
    }
}

#[test]
fn clear_sessions_give_plaintext_events() {
    let evs = replay_json(&[capture("tds-encrypt-not-supported.pcap")], &[]);
    assert_eq!(evs.len(), 1, "{evs:?}");
    let e = &evs[0];
    assert_eq!(e["type"], "plaintext");
    assert_eq!(e["plaintext"]["protocol"], "tds");
    assert_eq!(e["plaintext"]["credentials"], serde_json::json!(["tds-login7"]));
    let t = &e["plaintext"]["tds"];
    assert_eq!(
        (t["client_encryption"].as_str(), t["server_encryption"].as_str()),
        (Some("not-supported"), Some("not-supported"))
    );
    assert_eq!(t["negotiated"], "none");
    assert_eq!((t["login7_in_clear"].as_bool(), t["sql_in_clear"].as_bool()), (Some(true), Some(true)));
    assert_eq!(finding_ids(e), ["plaintext.credentials", "tds.cleartext"]);
    let creds = e["findings"].as_array().unwrap().iter().find(|f| f["id"] == "plaintext.credentials").unwrap();
    assert_eq!(creds["evidence"], "credentials sent in clear: tds-login7");
    assert_eq!(creds["hipaa_ref"], "164.312(d)");

    let evs = replay_json(&[capture("tds-encrypt-terminated.pcap")], &[]);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["plaintext"]["tds"]["negotiated"], "terminated");
    assert!(finding_ids(&evs[0]).is_empty(), "nothing went in clear: {}", evs[0]);
}

/// tshark's TDS dissector (port 1433) on the same captures: each PRELOGIN option table decodes,
/// with the ENCRYPTION values the captures are meant to carry (client request type 0x12,
/// server response type 0x04).
#[test]
fn tshark_reads_the_prelogin_options() {
    let tshark = Command::new("tshark").arg("--version").output();
    assert!(
        tshark.is_ok_and(|o| o.status.success()),
        "tshark is needed (cargo xtask setup installs it): it is the independent check of these captures"
    );
    for (file, want) in [
        ("tds-encrypt-off.pcap", [("18", 0), ("4", 0)]),
        ("tds-encrypt-on.pcap", [("18", 1), ("4", 1)]),
        ("tds-encrypt-required.pcap", [("18", 0), ("4", 3)]),
        ("tds-encrypt-not-supported.pcap", [("18", 2), ("4", 2)]),
        ("tds-encrypt-terminated.pcap", [("18", 1), ("4", 2)]),
    ] {
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(capture(file))
            .args(["-Y", "tds.prelogin.option.encryption", "-T", "fields", "-e", "tds.type", "-e"])
            .arg("tds.prelogin.option.encryption")
            .output()
            .expect("running tshark");
        assert!(out.status.success(), "tshark on {file}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        // Numbers as tshark prints them, decimal or 0x-hexadecimal.
        let num = |v: &str| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u8::from_str_radix(h, 16),
                None => v.parse(),
            }
            .unwrap_or_else(|_| panic!("{file}: not a number: {v:?}"))
        };
        let got: Vec<(u8, u8)> = text
            .lines()
            .map(|l| {
                let (t, e) = l.split_once('\t').unwrap_or_else(|| panic!("{file}: {l:?}"));
                (num(t), num(e))
            })
            .collect();
        let want: Vec<(u8, u8)> = want.iter().map(|(t, e)| (t.parse().unwrap(), *e)).collect();
        assert_eq!(got, want, "{file}: tshark's PRELOGIN options (type, encryption)");
        // And the full dissection names the PRELOGIN packets.
        let v = Command::new("tshark").args(["-n", "-r"]).arg(capture(file)).args(["-V", "-Y", "tds"]).output();
        let v = String::from_utf8_lossy(&v.expect("tshark -V").stdout).into_owned();
        let lower = v.to_lowercase();
        assert!(
            v.contains("Tabular Data Stream") && lower.contains("encryption"),
            "{file}: {}",
            &v[..v.len().min(2000)]
        );
    }
}

/// One TCP packet of a capture, owned.
struct Seg {
    from_client: bool,
    seq: u32,
    syn: bool,
    ack: bool,
    fin: bool,
    payload: Vec<u8>,
}

fn segments(file: &str) -> Vec<Seg> {
    let bytes = std::fs::read(capture(file)).unwrap();
    let mut out = Vec::new();
    monitor::capture::pcap::for_each_frame(bytes.as_slice(), |f| {
        let p = decode::decode(f.linktype, f.data).expect("generated frames decode");
        out.push(Seg {
            from_client: p.dst_port == 1433,
            seq: p.seq,
            syn: p.syn,
            ack: p.ack,
            fin: p.fin,
            payload: p.payload.to_vec(),
        });
    })
    .expect("capture reads");
    out
}

/// The capture through a pipeline, with the first two payload segments of one side merged and
/// cut again at `cut` (PRELOGIN options + the PRELOGIN packet with the first TLS flight); every
/// packet at the same time. The event, as JSON.
fn run_cut(segs: &[Seg], client_side: bool, cut: usize) -> String {
    let mut list: Vec<(bool, u32, bool, bool, bool, Vec<u8>)> = Vec::new();
    let mut merged = false;
    let mut skip = None;
    for (i, s) in segs.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if !merged && s.from_client == client_side && !s.payload.is_empty() {
            merged = true;
            let j = (i + 1..segs.len()).find(|&j| segs[j].from_client == client_side && !segs[j].payload.is_empty());
            let j = j.expect("a second payload segment");
            skip = Some(j);
            let whole = [s.payload.as_slice(), segs[j].payload.as_slice()].concat();
            let cut = cut.min(whole.len());
            list.push((s.from_client, s.seq, false, true, false, whole[..cut].to_vec()));
            list.push((s.from_client, s.seq.wrapping_add(cut as u32), false, true, false, whole[cut..].to_vec()));
            continue;
        }
        list.push((s.from_client, s.seq, s.syn, s.ack, s.fin, s.payload.clone()));
    }
    let (c, sv) = (Addr::v4([10, 77, 0, 10]), Addr::v4([10, 77, 1, 4]));
    let mut p = Pipeline::new(PipelineConfig::default());
    for (from_client, seq, syn, ack, fin, payload) in &list {
        if payload.is_empty() && !syn && !fin && !ack {
            continue;
        }
        let (src, dst, src_port, dst_port) = if *from_client { (c, sv, 49_200, 1433) } else { (sv, c, 1433, 49_200) };
        let pkt = Packet {
            src,
            dst,
            src_port,
            dst_port,
            transport: Transport::Tcp,
            syn: *syn,
            ack: *ack,
            fin: *fin,
            rst: false,
            seq: *seq,
            payload,
            truncated: false,
            local: None,
        };
        p.packet(1_000_000_000, &pkt);
    }
    p.finish();
    let outs: Vec<_> = p.drain_outputs().collect();
    assert_eq!(outs.len(), 1, "cut at {cut}");
    serde_json::to_string(&monitor::sink::json::any_event(&outs[0], &Default::default())).unwrap()
}

#[test]
fn prelogin_and_wrapped_hello_cut_anywhere() {
    for file in ["tds-encrypt-off.pcap", "tds-encrypt-not-supported.pcap"] {
        let segs = segments(file);
        for client_side in [true, false] {
            let want = run_cut(&segs, client_side, usize::MAX);
            assert!(want.contains(r#""tds""#), "{file}: {want}");
            let first: usize = segs
                .iter()
                .filter(|s| s.from_client == client_side && !s.payload.is_empty())
                .take(2)
                .map(|s| s.payload.len())
                .sum();
            for cut in 0..=first {
                assert_eq!(run_cut(&segs, client_side, cut), want, "{file}: client {client_side}, cut at {cut}");
            }
        }
    }
}

/// TDS 8.0 (strict) opens with a raw ClientHello, no PRELOGIN: on port 1433 it is plain TLS —
/// a `tls` event without `tls.starttls` or `tds`. The recorded TLS 1.2 session of the
/// captures (xtask/src/gen_phi/tds/tls12-on.bin), sent raw.
#[test]
fn strict_tds8_on_1433_is_plain_tls() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/src/gen_phi/tds/tls12-on.bin");
    let t = std::fs::read(path).unwrap();
    let mut flights: Vec<(u8, &[u8])> = Vec::new();
    let mut rest = t.as_slice();
    while let [kind, a, b, c, d, tail @ ..] = rest {
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        flights.push((*kind, &tail[..len]));
        rest = &tail[len..];
    }
    let (c, s) = (Addr::v4([10, 77, 0, 10]), Addr::v4([10, 77, 1, 4]));
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut seq = [1000u32, 5000u32];
    for (i, (kind, bytes)) in flights.iter().take(4).enumerate() {
        let side = usize::from(kind & 1);
        let (src, dst, src_port, dst_port) = if side == 0 { (c, s, 49_200, 1433) } else { (s, c, 1433, 49_200) };
        let pkt = Packet {
            src,
            dst,
            src_port,
            dst_port,
            transport: Transport::Tcp,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
            seq: seq[side],
            payload: bytes,
            truncated: false,
            local: None,
        };
        seq[side] = seq[side].wrapping_add(bytes.len() as u32);
        p.packet(1_000_000_000 + i as u64, &pkt);
    }
    p.finish();
    let outs: Vec<_> = p.drain_outputs().collect();
    assert_eq!(outs.len(), 1);
    let ev = serde_json::to_value(monitor::sink::json::any_event(&outs[0], &Default::default())).unwrap();
    assert_eq!(ev["type"], "tls");
    assert_eq!(ev["tls"]["version"], "1.2");
    assert_eq!(ev["tls"]["established"], true);
    assert!(ev["tls"].get("starttls").is_none() && ev.get("tds").is_none(), "{ev}");
    assert!(!finding_ids(&ev).contains(&"tds.cleartext".to_string()));
}
