//! Metric labels stay inside their closed sets: after replaying the whole shared corpus, the
//! synthetic PHI captures and the 30 MB mix, every sample of `--metrics-out` is a `tlsmon_`
//! metric whose labels are exactly the ones it has at start (`metrics::label_sets`: every
//! combination of the closed sets is created at 0), each with a value from that set — never an
//! address, port, SNI or certificate name. The counts are checked
//! against the JSON events of the same run, so the metrics are real and not just zeros.
mod testdata;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use monitor::sink::metrics::label_sets;
use serde_json::Value;
use testdata::{corpus_files, generated, phi_manifest};

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parse the text exposition format (comments skipped; label values unescaped).
fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| format!("no value: {line}"))?;
        let value: f64 = value.parse().map_err(|_| format!("bad value: {line}"))?;
        let (name, mut rest) = match series.split_once('{') {
            Some((n, r)) => (n, r.strip_suffix('}').ok_or_else(|| format!("unclosed labels: {line}"))?),
            None => (series, ""),
        };
        let mut labels = BTreeMap::new();
        while !rest.is_empty() {
            let (k, r) = rest.split_once("=\"").ok_or_else(|| format!("bad label: {line}"))?;
            let mut v = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => v.push('\n'),
                        Some((_, c)) => v.push(c),
                        None => return Err(format!("bad escape: {line}")),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => v.push(c),
                    None => return Err(format!("unterminated label value: {line}")),
                }
            };
            labels.insert(k.to_string(), v);
            rest = r[end + 1..].trim_start_matches(',');
        }
        out.push((name.to_string(), labels, value));
    }
    Ok(out)
}

/// Every way a sample breaks the declared label sets.
fn violations(samples: &[Sample]) -> Vec<String> {
    let declared = label_sets();
    let mut bad = Vec::new();
    for (name, labels, _) in samples {
        if !name.starts_with("tlsmon_") {
            bad.push(format!("{name}: not a tlsmon_ metric"));
        }
        let want = declared.get(name.as_str());
        let have: BTreeSet<&str> = labels.keys().map(String::as_str).collect();
        let want_keys: BTreeSet<&str> = want.map(|w| w.keys().map(String::as_str).collect()).unwrap_or_default();
        if have != want_keys {
            bad.push(format!("{name}: labels {have:?}, declared {want_keys:?}"));
            continue;
        }
        for (k, v) in labels {
            if !want.is_some_and(|w| w[k].contains(v)) {
                bad.push(format!("{name}: {k}={v:?} is outside its closed set"));
            }
        }
    }
    bad
}

#[test]
fn the_checker_catches_what_it_must() {
    let text = "# HELP x y\n\
tlsmon_handshakes_total{version=\"tls1.2\"} 3\n\
tlsmon_handshakes_total{version=\"10.0.0.5\"} 1\n\
tlsmon_findings_total{id=\"tls.compression\"} 1\n\
tlsmon_events_total{type=\"tls\",server=\"ehr.example\"} 1\n\
tlsmon_certificates_expired{cn=\"a\\\"b\"} 1\n\
process_cpu_seconds_total 2\n";
    let s = parse(text).unwrap();
    assert_eq!(s.len(), 6);
    assert_eq!(s[4].1["cn"], "a\"b");
    let v = violations(&s);
    assert_eq!(v.len(), 5, "{v:#?}");
    assert!(v[0].contains("10.0.0.5"));
    assert!(parse("tlsmon_x{a=\"b} 1\n").is_err());
}

#[test]
fn every_label_stays_in_its_closed_set_after_the_whole_corpus() {
    let (phi_dir, manifest) = phi_manifest();
    let mut files: Vec<PathBuf> = corpus_files();
    assert!(files.len() >= 50, "the whole corpus: {}", files.len());
    files.extend(manifest["captures"].as_array().unwrap().iter().map(|c| phi_dir.join(c["file"].as_str().unwrap())));
    files.push(generated().join("mix.pcap"));
    let out_file = std::env::temp_dir().join(format!("tlsmon-metrics-labels-{}.prom", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .args(["replay", "--format", "json", "--metrics-out"])
        .arg(&out_file)
        .args(&files)
        .output()
        .expect("running tlsmon");
    assert!(out.status.code().is_some_and(|c| c <= 1), "tlsmon: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&out_file).expect("--metrics-out wrote the file");
    let _ = std::fs::remove_file(&out_file);
    let samples = parse(&text).expect("the metrics parse");
    let bad = violations(&samples);
    assert!(bad.is_empty(), "labels outside their closed sets:\n{}", bad.join("\n"));

    // The figures are the events': every TLS event is one handshake in each breakdown, every
    // plaintext event one flow, every finding one count (accepted ones apart).
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON event")).collect();
    let tls = events.iter().filter(|e| e["type"] == "tls").count() as f64;
    let plain = events.iter().filter(|e| e["type"] == "plaintext").count() as f64;
    let findings = events.iter().flat_map(|e| e["findings"].as_array().into_iter().flatten()).count() as f64;
    assert!(tls > 500.0 && plain >= 30.0, "the replay judged the captures: {tls} tls, {plain} plaintext");
    let sum = |name: &str| samples.iter().filter(|s| s.0 == name).map(|s| s.2).sum::<f64>();
    for name in [
        "tlsmon_handshakes_total",
        "tlsmon_handshakes_cipher_class_total",
        "tlsmon_handshakes_forward_secrecy_total",
        "tlsmon_handshakes_pq_total",
    ] {
        assert_eq!(sum(name), tls, "{name} adds up to the TLS events");
    }
    assert_eq!(sum("tlsmon_plaintext_flows_total"), plain);
    assert_eq!(sum("tlsmon_findings_total") + sum("tlsmon_findings_accepted_total"), findings);
    let value = |name: &str, k: &str, v: &str| {
        samples.iter().find(|s| s.0 == name && s.1.get(k).map(String::as_str) == Some(v)).map(|s| s.2)
    };
    for version in ["ssl3", "tls1.0", "tls1.2", "tls1.3"] {
        assert!(value("tlsmon_handshakes_total", "version", version) > Some(0.0), "{version} seen in the corpus");
    }
    assert!(value("tlsmon_handshakes_pq_total", "pq", "hybrid") > Some(0.0), "PQ hybrid seen in the corpus");
    assert!(value("tlsmon_plaintext_phi_flows_total", "protocol", "dicom") > Some(0.0));
    assert_eq!(sum("tlsmon_replay_finished"), 1.0);
    assert_eq!(sum("tlsmon_events_total"), tls + plain);
    // Every metric carries help text.
    for (name, _, _) in &samples {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP");
    }
}
