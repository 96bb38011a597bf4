//! `cargo xtask gen-phi`: writes small deterministic pcaps of health data (DICOM, FHIR,
//! DICOMweb, CDA, X12, HL7), clear credentials and STARTTLS (un)used, with OBVIOUSLY FAKE
//! patients, plus `manifest.json` (what tlsmon must report, and what it must never echo).
//! Must never read the clock or OS randomness, or write a real person's data.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};

mod codec;
mod db;
mod dicom;
mod edi;
mod flow;
mod ldap;
mod mail;
pub mod tds;
mod web;

/// The fake account used by every credential capture.
pub const USER: &str = "zztest.user";
pub const PASSWORD: &str = "FakePassw0rd!";

#[derive(Args)]
pub struct GenPhiArgs {
    /// Directory for the pcaps and manifest.json (created if missing; files are overwritten).
    #[arg(long)]
    pub out_dir: PathBuf,
}

/// One generated capture and what tlsmon should emit for it (one object per noteworthy
/// connection, dotted paths into the JSON event).
pub struct Capture {
    pub file: &'static str,
    pub description: &'static str,
    pub expect: Vec<Value>,
    pub bytes: Vec<u8>,
}

/// Every capture, in manifest order.
pub fn captures() -> io::Result<Vec<Capture>> {
    let mut v = dicom::captures()?;
    v.extend(web::captures()?);
    v.extend(edi::captures()?);
    v.extend(mail::captures()?);
    v.extend(ldap::captures()?);
    v.extend(db::captures()?);
    v.extend(tds::captures()?);
    Ok(v)
}

/// Every fake PHI or secret string written into some capture, in every spelling used; none may
/// ever appear in tlsmon's output.
pub fn sensitive() -> Vec<String> {
    let fixed = [
        // Patient names.
        "ZZTEST^ALPHA",
        "ZZTEST^BRAVO",
        "ZZTEST^ECHO",
        "ZZTEST^KILO",
        "ZZTEST^LIMA",
        "Zztestson",
        "ZZTESTSON",
        "Charlie",
        "Delta",
        "Zztestson, Delta",
        "Foxtrot",
        "ZZTESTSON*GOLF",
        "ZZTESTSON*HOTEL",
        "ZZTESTSON^INDIA",
        "ZZTESTSON$JULIET",
        // Record numbers and patient resource ids.
        "FAKE-MRN-0001",
        "FAKE-MRN-0002",
        "FAKE-MRN-0003",
        "FAKE-MRN-0004",
        "FAKE-MRN-0005",
        "FAKE-MRN-0006",
        "FAKE-MEM-0007",
        "FAKE-MRN-0008",
        "FAKE-MRN-0009",
        "fake-0003",
        "fake-0004",
        // Dates of birth.
        "19010101",
        "19020202",
        "1903-03-03",
        "19040404",
        "19050505",
        "19060606",
        "19070707",
        "19080808",
        "19090909",
        // Contact details and account.
        "555-0100",
        USER,
        db::DB_USER,
        PASSWORD,
        mail::EMAIL,
        ldap::BIND_DN,
        db::SQL,
        edi::HL7_PID,
        edi::HL7_MLLP_PID,
        // Study, series and instance UIDs.
        dicom::STORE_STUDY,
        dicom::STORE_SERIES,
        dicom::STORE_INSTANCE,
        dicom::FIND_STUDY,
        web::WADO_STUDY,
        web::WADO_SERIES,
        web::WADO_INSTANCE,
        web::QIDO_QUERY,
    ];
    let mut v: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
    v.extend([
        web::basic_token(),
        web::digest_response(),
        mail::plain_token(),
        mail::apop_digest(),
        codec::base64(USER.as_bytes()),
        codec::base64(PASSWORD.as_bytes()),
    ]);
    v
}

pub fn manifest(caps: &[Capture]) -> Value {
    let captures: Vec<Value> =
        caps.iter().map(|c| json!({"file": c.file, "description": c.description, "expect": c.expect})).collect();
    json!({"sensitive": sensitive(), "sensitive_utf16": tds::sensitive_utf16(), "captures": captures})
}

pub fn run(a: GenPhiArgs) -> Result<()> {
    let caps = captures().context("building the captures")?;
    write_all(&a.out_dir, &caps)?;
    eprintln!("gen-phi: wrote {} captures and manifest.json to {}", caps.len(), a.out_dir.display());
    Ok(())
}

fn write_all(dir: &Path, caps: &[Capture]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for c in caps {
        let path = dir.join(c.file);
        fs::write(&path, &c.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(&manifest(caps)).context("serialising the manifest")? + "\n";
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::flow::parse::packets;
    use super::*;
    use crate::gen::pcap::{ACK, FIN, SYN};

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (captures().unwrap(), captures().unwrap());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.file, y.file);
            assert!(x.bytes == y.bytes, "{} differs between runs", x.file);
        }
        assert_eq!(manifest(&a), manifest(&b));
    }

    #[test]
    fn every_capture_has_handshake_consecutive_seq_and_teardown() {
        for c in captures().unwrap() {
            let pk = packets(&c.bytes);
            assert!(pk.windows(2).all(|w| w[1].ts_us > w[0].ts_us), "{}: timestamps", c.file);
            // Per connection and direction: the next expected sequence number.
            let mut conns: Vec<([u16; 2], [u32; 2], bool)> = Vec::new();
            for p in &pk {
                if p.flags == SYN {
                    conns.push((p.ports, [p.seq.wrapping_add(1), 0], false));
                    continue;
                }
                let c_ = conns.iter_mut().rev().find(|k| k.0 == p.ports || k.0 == [p.ports[1], p.ports[0]]);
                let k = c_.unwrap_or_else(|| panic!("{}: packet outside a connection", c.file));
                let side = usize::from(k.0 != p.ports);
                if p.flags == SYN | ACK {
                    assert_eq!(p.ack, k.1[0], "{}: SYN-ACK acks the SYN", c.file);
                    k.1[1] = p.seq.wrapping_add(1);
                    continue;
                }
                assert_eq!(p.seq, k.1[side], "{}: seq gap", c.file);
                assert_eq!(p.ack, k.1[1 - side], "{}: ack", c.file);
                assert!(p.payload.len() <= flow::MSS);
                k.1[side] = p.seq.wrapping_add(p.payload.len() as u32 + u32::from(p.flags & FIN != 0));
                k.2 |= p.flags & FIN != 0;
            }
            assert!(!conns.is_empty() && conns.iter().all(|k| k.2), "{}: every connection ends with FIN", c.file);
        }
    }

    #[test]
    fn every_sensitive_string_occurs_in_some_capture() {
        let caps = captures().unwrap();
        for s in sensitive() {
            let needle = s.as_bytes();
            let found = caps.iter().any(|c| c.bytes.windows(needle.len()).any(|w| w == needle));
            assert!(found, "sensitive {s:?} occurs in no capture");
        }
        for s in tds::sensitive_utf16() {
            let utf16: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let found = [utf16, tds::obfuscate(s)]
                .iter()
                .any(|needle| caps.iter().any(|c| c.bytes.windows(needle.len()).any(|w| w == needle.as_slice())));
            assert!(found, "sensitive {s:?} occurs in no capture as UTF-16LE (or obfuscated)");
        }
    }

    /// The TDS captures committed under tests/captures are the generator's (regenerate them
    /// with `cargo xtask gen-phi --out-dir DIR` and copy `DIR/tds-*.pcap`).
    #[test]
    fn committed_tds_captures_are_generated_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures");
        for c in captures().unwrap().iter().filter(|c| c.file.starts_with("tds-")) {
            let committed = fs::read(dir.join(c.file)).unwrap_or_else(|e| panic!("{}: {e}", c.file));
            assert!(committed == c.bytes, "tests/captures/{} differs from the generator's", c.file);
        }
    }

    #[test]
    fn manifest_schema() {
        let caps = captures().unwrap();
        let m = manifest(&caps);
        let files: Vec<&str> = caps.iter().map(|c| c.file).collect();
        for f in ["dicom-store.pcap", "x12-837.pcap", "postgres-ssl.pcap", "http-plain.pcap", "smtp-plain.pcap"] {
            assert!(files.contains(&f), "{f}");
        }
        let mut sorted = files.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), files.len(), "file names unique");
        for c in m["captures"].as_array().unwrap() {
            for e in c["expect"].as_array().unwrap() {
                let typ = e["type"].as_str().unwrap();
                assert!(typ == "plaintext" || typ == "tls");
                if let Some(f) = e.get("findings") {
                    let ids: Vec<&str> = f.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                    let mut s = ids.clone();
                    s.sort_unstable();
                    assert_eq!(ids, s, "{}: findings sorted", c["file"]);
                    let tds = c["file"].as_str().unwrap().starts_with("tds-");
                    assert!(ids.iter().all(|i| i.starts_with("plaintext.") || (tds && i.starts_with("t"))));
                } else {
                    assert!(typ == "tls" || e["plaintext.protocol"] == "dicom", "{}: findings", c["file"]);
                }
            }
        }
        for c in &caps {
            assert!(!sensitive().iter().any(|s| c.description.contains(s.as_str())), "{}: description", c.file);
        }
        let neg: Vec<&Value> = m["captures"].as_array().unwrap().iter().filter(|c| c["expect"] == json!([])).collect();
        // http-plain: no event at all (bare HTTP); smtp-plain gives an event without findings.
        assert_eq!(neg.len(), 1);
    }
}
