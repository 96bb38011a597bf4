//! PHI never leaves tlsmon: every output of a replay (JSON events, the text summary, the
//! per-server report in text, JSON, Markdown and HTML, the period report `tlsmon report` writes
//! from the audit log in HTML, Markdown and JSON, the hash-chained audit log and what `audit
//! verify` prints, the Prometheus metrics, the logs at trace level) over the PHI-bearing captures (the synthetic ones
//! from `cargo xtask gen-phi`, nDPI's HL7 and IMAP captures) is searched for every patient
//! name, identifier, date of birth, secret and message-body fragment those captures carry —
//! among them the SQL Server LOGIN7 values (user, password, host, application, database) and
//! query the TDS captures carry in UTF-16LE.
//! The live path is covered the same way in live_plaintext.rs.
mod testdata;

use std::path::PathBuf;
use std::process::Command;

use testdata::{corpus, phi_manifest};

/// PHI in nDPI's hl7.pcap (a public test capture with fictitious patient data) and the user
/// name and password in its imap.pcap.
const CORPUS_SENSITIVE: &[&str] = &[
    "MOUSE^MICKEY",
    "MICKEY",
    "MOUSE^MINNIE",
    "MINNIE",
    "MOUSETOWN",
    "135769",
    "19281118",
    "123 Main St",
    "Lake Buena Vista",
    "939-5555",
    "notdisney.com",
    "Penicillin",
    "Anaphylactic",
    "Cat dander",
    "999999999",
    "934576120110613083617",
    "samir",
    "pfres",
];

fn tlsmon(args: &[&str], files: &[PathBuf]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .args(["--log", "trace"])
        .args(args)
        .args(files)
        .output()
        .expect("running tlsmon");
    assert!(out.status.code().is_some_and(|c| c <= 1), "tlsmon {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn no_output_carries_phi() {
    let (dir, manifest) = phi_manifest();
    let mut files: Vec<PathBuf> =
        manifest["captures"].as_array().unwrap().iter().map(|c| dir.join(c["file"].as_str().unwrap())).collect();
    files.push(corpus().join("pcaps/ndpi__hl7.pcap"));
    files.push(corpus().join("pcaps/ndpi__imap-plaintext.pcap"));
    let mut sensitive: Vec<String> =
        manifest["sensitive"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    assert!(sensitive.len() >= 20, "the generator lists its fake PHI: {}", sensitive.len());
    sensitive.extend(CORPUS_SENSITIVE.iter().map(|s| s.to_string()));

    // The PHI really is in the captures (so this test can fail).
    let all_bytes: Vec<u8> = files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
    for s in &sensitive {
        assert!(
            all_bytes.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s:?} is listed as sensitive but is in no capture"
        );
    }

    // SQL Server captures write their fake login values and query in UTF-16LE (the password
    // obfuscated, MS-TDS 2.2.6.4): they are there in that spelling, and no output may carry
    // them in any.
    let utf16: Vec<String> =
        manifest["sensitive_utf16"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    assert!(utf16.len() >= 5, "the TDS captures list their fake values: {utf16:?}");
    for s in &utf16 {
        let wide: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let obfuscated: Vec<u8> = wide.iter().map(|b| b.rotate_left(4) ^ 0xa5).collect();
        assert!(
            [wide, obfuscated].iter().any(|n| all_bytes.windows(n.len()).any(|w| w == n.as_slice())),
            "{s:?} is listed as sensitive but is in no capture (UTF-16LE or obfuscated)"
        );
    }
    sensitive.extend(utf16);

    let tmp = std::env::temp_dir().join(format!("tlsmon-phi-leak-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let audit = tmp.join("audit.jsonl");
    let _ = std::fs::remove_file(&audit);
    let audit_s = audit.to_string_lossy().into_owned();
    let metrics = tmp.join("metrics.prom");
    let metrics_s = metrics.to_string_lossy().into_owned();
    // Signed (checkpoints at exit only, the replay being short): the checkpoint lines (host,
    // time, hashes, key id, signature), the public key and verify's report of them are checked
    // like every other output.
    let key = tmp.join("audit.key");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(tmp.join("audit.key.pub"));
    let key_s = key.to_string_lossy().into_owned();
    let pub_s = format!("{key_s}.pub");
    let signed = ["--audit-log", &audit_s, "--audit-sign-key", &key_s, "--audit-checkpoint-mins", "0"];
    let mut outputs = vec![
        ("json events + audit log", tlsmon(&[&["replay", "--format", "json"][..], &signed[..]].concat(), &files)),
        ("text summary", tlsmon(&["replay", "--format", "text"], &files)),
        ("report text", tlsmon(&["replay", "--report", "text"], &files)),
        ("report json", tlsmon(&["replay", "--report", "json"], &files)),
        ("report markdown", tlsmon(&["replay", "--report", "markdown"], &files)),
        ("audit verify", tlsmon(&["audit", "verify", "--key", &pub_s, &audit_s], &[])),
    ];
    outputs.push(("audit log", std::fs::read_to_string(&audit).unwrap()));
    outputs.push(("audit public key", std::fs::read_to_string(&pub_s).unwrap()));
    outputs.push(("report html", tlsmon(&["replay", "--report", "html"], &files)));
    outputs.push(("period report html", tlsmon(&["report", "--format", "html", &audit_s], &[])));
    outputs.push(("period report markdown", tlsmon(&["report", "--format", "markdown", &audit_s], &[])));
    outputs.push(("period report json", tlsmon(&["report", "--format", "json", &audit_s], &[])));
    tlsmon(&["replay", "--format", "none", "--metrics-out", &metrics_s], &files);
    outputs.push(("metrics", std::fs::read_to_string(&metrics).unwrap()));
    let _ = std::fs::remove_dir_all(&tmp);

    // The outputs are real: the plaintext events and findings are in them.
    let events = &outputs[0].1;
    for want in [
        "\"type\":\"plaintext\"",
        "plaintext.phi",
        "plaintext.credentials",
        "\"protocol\":\"dicom\"",
        "\"protocol\":\"tds\"",
        "tds-login7",
        "tds.cleartext",
        "\"starttls\":\"tds\"",
    ] {
        assert!(events.contains(want), "the JSON events carry {want}");
    }
    assert!(outputs[2].1.contains("carry the health data on"), "the text report has the plaintext.phi fix");
    assert!(outputs[6].1.lines().count() > 20, "the audit log has the events");
    let checkpoints: Vec<&str> = outputs[6].1.lines().filter(|l| l.contains(r#""type":"checkpoint""#)).collect();
    assert!(
        checkpoints.last().is_some_and(|l| l.contains(r#""reason":"exit""#))
            && outputs[6].1.lines().last() == checkpoints.last().copied(),
        "the audit log is signed and ends with its exit checkpoint"
    );
    assert!(outputs[5].1.contains("sealed: every line is covered"), "verify checked it: {}", outputs[5].1);
    // The HTML and Markdown reports are real: they count the HL7 flows carrying PHI.
    for i in [8, 9] {
        assert!(outputs[i].1.contains(r#"data-k="plaintext.hl7.phi_flows">"#), "{} counts HL7 PHI flows", outputs[i].0);
        assert!(!outputs[i].1.contains(r#"data-k="plaintext.hl7.phi_flows">0<"#), "{}", outputs[i].0);
    }
    assert!(outputs[10].1.contains("| hl7 | "), "the Markdown period report counts HL7 flows");
    assert!(outputs[9].1.contains(r#"data-k="agent.0.chain">intact<"#), "the period report verified the log");
    let metrics = outputs.iter().position(|(w, _)| *w == "metrics").unwrap();
    assert!(
        outputs[metrics].1.contains(r#"tlsmon_plaintext_phi_flows_total{protocol="hl7"} "#),
        "the metrics are there"
    );
    assert!(
        !outputs[metrics].1.contains(r#"tlsmon_plaintext_phi_flows_total{protocol="hl7"} 0"#),
        "and count the HL7 flows"
    );

    let mut leaks = Vec::new();
    for (what, text) in &outputs {
        let lower = text.to_lowercase();
        for s in &sensitive {
            if lower.contains(&s.to_lowercase()) {
                let at = lower.find(&s.to_lowercase()).unwrap();
                let ctx: String = text.chars().skip(at.saturating_sub(80)).take(200).collect();
                leaks.push(format!("{what}: {s:?} near …{ctx}…"));
            }
        }
    }
    assert!(leaks.is_empty(), "PHI in tlsmon's outputs:\n{}", leaks.join("\n"));
}
