//! `tlsmon replay --profile X` over corpus captures: each profile's verdict names the rule and
//! the suite, group or version that decided (issue 4, "must show" 1).
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps").join(name)
}

/// (version, cipher, group, [(id, severity, rule, evidence)]) per handshake, sorted.
type Row = (String, String, String, Vec<(String, String, String, String)>);

fn replay(profile: &str, capture: &str, extra: &[&str]) -> Vec<Row> {
    let path = corpus(capture);
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["replay", "--profile", profile, "--format", "json"]);
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(&args).arg(&path).output().expect("runs");
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 1), "{}", String::from_utf8_lossy(&out.stderr));
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let mut rows: Vec<Row> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .filter(|e| e["type"] == "tls")
        .map(|e| {
            let t = &e["tls"];
            let findings = e["findings"].as_array().cloned().unwrap_or_default();
            let f = findings.iter().map(|f| (s(&f["id"]), s(&f["severity"]), s(&f["rule"]), s(&f["evidence"])));
            (s(&t["version"]), s(&t["cipher"]), s(&t["curve"]), f.collect())
        })
        .collect();
    rows.sort();
    rows
}

fn finding(id: &str, sev: &str, rule: &str, evidence: &str) -> (String, String, String, String) {
    (id.into(), sev.into(), rule.into(), evidence.into())
}

fn row(v: &str, c: &str, g: &str, f: Vec<(String, String, String, String)>) -> Row {
    (v.into(), c.into(), g.into(), f)
}

/// TLS 1.2 ECDHE-ECDSA AES-128-GCM on secp384r1: clean in every profile but mozilla-modern,
/// which requires TLS 1.3 and only its three TLS 1.3 suites.
#[test]
fn ecdsa_gcm_tls12_passes_all_but_modern() {
    const SUITE: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    for p in ["hipaa", "nist-800-52r2", "mozilla-intermediate", "fips"] {
        assert_eq!(replay(p, "zeek__ecdsa-cert.pcap", &[]), vec![row("1.2", SUITE, "secp384r1", vec![])], "{p}");
    }
    let modern = replay("mozilla-modern", "zeek__ecdsa-cert.pcap", &[]);
    let want = vec![
        finding(
            "tls.version.deprecated",
            "medium",
            "mozilla-modern/min-version",
            "TLS 1.2 negotiated (mozilla-modern requires TLS 1.3)",
        ),
        finding(
            "tls.cipher.weak",
            "medium",
            "mozilla-modern/allowed-suites",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 negotiated (not in the mozilla-modern suite list)",
        ),
    ];
    assert_eq!(modern.len(), 1);
    for f in &want {
        assert!(modern[0].3.contains(f), "{f:?} in {modern:?}");
    }
}

/// ECDHE-RSA CHACHA20-POLY1305 with x25519: allowed by mozilla-intermediate, outside the NIST
/// and FIPS suite lists, and x25519 is not a FIPS group.
#[test]
fn chacha20_and_x25519_under_nist_fips_and_mozilla() {
    const CAP: &str = "ndpi__tls_malicious_sha1.pcapng";
    const SUITE: &str = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
    let unlisted = |p: &str| {
        finding(
            "tls.cipher.weak",
            "medium",
            &format!("{p}/allowed-suites"),
            &format!("{SUITE} negotiated (not in the {p} suite list)"),
        )
    };
    let inter = replay("mozilla-intermediate", CAP, &[]);
    assert_eq!(inter, vec![row("1.2", SUITE, "x25519", vec![])]);
    assert_eq!(replay("nist-800-52r2", CAP, &[]), vec![row("1.2", SUITE, "x25519", vec![unlisted("nist-800-52r2")])]);
    let group =
        finding("tls.kx.weak-group", "medium", "fips/allowed-groups", "x25519 negotiated (not in the fips group list)");
    assert_eq!(replay("fips", CAP, &[]), vec![row("1.2", SUITE, "x25519", vec![unlisted("fips"), group])]);
}

/// TLS 1.0 with DHE-RSA AES-128-CBC-SHA: the version rule decides everywhere (RFC 8996), and
/// each list profile names the suite it does not allow.
#[test]
fn tls10_cbc_sha1_is_judged_by_every_profile() {
    const SUITE: &str = "TLS_DHE_RSA_WITH_AES_128_CBC_SHA";
    for p in ["hipaa", "nist-800-52r2", "mozilla-modern", "mozilla-intermediate", "fips"] {
        let rows = replay(p, "arkime__tls-client-sessionid.pcap", &[]);
        assert_eq!(rows.len(), 1, "{p}");
        let (v, c, _, f) = &rows[0];
        assert_eq!((v.as_str(), c.as_str()), ("1.0", SUITE), "{p}");
        let version =
            finding("tls.version.deprecated", "high", &format!("{p}/min-version"), "TLS 1.0 negotiated (RFC 8996)");
        assert!(f.contains(&version), "{p}: {f:?}");
        let suite_rule = if p == "hipaa" { "hipaa/aead-suites" } else { &format!("{p}/allowed-suites") };
        assert!(
            f.iter().any(|(id, _, rule, ev)| id == "tls.cipher.weak" && rule == suite_rule && ev.starts_with(SUITE)),
            "{p}: {f:?}"
        );
    }
}

/// NIST expects TLS 1.3: TLS 1.2 negotiated with a client offering 1.3 is medium there, low in
/// hipaa; a `[severity]` override in the config file changes it.
#[test]
fn nist_raises_no_tls13_and_overrides_apply() {
    const CAP: &str = "ja4__latest.pcapng";
    let sev = |rows: &[Row], rule: &str| -> Vec<String> {
        rows.iter()
            .flat_map(|r| &r.3)
            .filter(|f| f.0 == "tls.version.no-tls13" && f.2 == rule)
            .map(|f| f.1.clone())
            .collect()
    };
    assert_eq!(sev(&replay("nist-800-52r2", CAP, &[]), "nist-800-52r2/prefer-tls13"), vec!["medium"; 3]);
    assert_eq!(sev(&replay("hipaa", CAP, &[]), "hipaa/prefer-tls13"), vec!["low"; 3]);
    let cfg = std::env::temp_dir().join(format!("tlsmon-profiles-{}.toml", std::process::id()));
    std::fs::write(&cfg, "profile = \"fips\"\n[severity]\n\"tls.version.no-tls13\" = \"high\"\n").expect("write");
    let cfg_arg = cfg.to_string_lossy().to_string();
    // The flag beats the file's profile; the file's override applies.
    let rows = replay("hipaa", CAP, &["--config", &cfg_arg]);
    std::fs::remove_file(&cfg).ok();
    assert_eq!(sev(&rows, "hipaa/prefer-tls13"), vec!["high"; 3]);
}
