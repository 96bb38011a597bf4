//! ECS conformance of the JSON events: every field of every event that `tlsmon replay` writes
//! for the shared corpus, the repository's captures (SSH, mutual TLS, DTLS, SQL Server) and
//! the PHI captures either exists in the ECS field reference (Elastic's `@elastic/ecs`
//! package, installed by `cargo xtask setup`) with a JSON value its ECS type takes, with only
//! the allowed values where ECS lists them, or sits under the custom namespace `tlsmon.*`.
//! With legacy fields on (this release's default) the only other names are the pre-ECS ones
//! README "Event schema" lists. And the README's jq examples run and print something.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod ecs_check;
use ecs_check::{documented_legacy, leaves, nonconforming, reference};

fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps");
    assert!(p.is_dir(), "the shared corpus must sit beside the checkout: {}", p.display());
    p
}

/// Every capture the events are checked on.
fn captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures");
    for dir in [corpus(), repo] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    if let Some(data) = std::env::var_os("TLSMON_TEST_DATA") {
        for e in std::fs::read_dir(Path::new(&data).join("phi")).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "pcap") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
}

fn replay(files: &[PathBuf], extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .args(["replay", "--format", "json", "--threads", "1"])
        // With a CA bundle, events also say whether the chain is trusted.
        .args(["--ca-bundle", "/etc/ssl/certs/ca-certificates.crt"])
        .args(extra)
        .args(files)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn every_event_field_is_ecs_or_tlsmon() {
    let r = reference();
    assert_eq!(r.version, "9.4.0", "the reference is the ECS release the events name");
    let files = captures();
    assert!(files.len() > 50, "captures found: {}", files.len());
    let events = replay(&files, &["--no-legacy-fields"]);
    let mut kinds = BTreeMap::<String, usize>::new();
    let mut paths = BTreeSet::new();
    let mut bad = BTreeMap::<(String, String), usize>::new();
    for ev in &events {
        assert!(ev.get("@timestamp").is_some(), "no @timestamp: {ev}");
        assert_eq!(ev["ecs"]["version"], "9.4.0");
        assert_eq!(ev["event"]["module"], "tlsmon");
        assert!(ev["network"]["transport"].is_string(), "{ev}");
        assert!(ev["tlsmon"]["findings"].is_array(), "{ev}");
        *kinds.entry(ev["event"]["dataset"].as_str().unwrap_or("?").to_string()).or_default() += 1;
        let mut all = Vec::new();
        leaves("", ev, &mut all);
        paths.extend(all.into_iter().map(|(p, _)| p).filter(|p| !p.starts_with("tlsmon.")));
        for b in nonconforming(&r, ev) {
            *bad.entry(b).or_default() += 1;
        }
    }
    assert!(bad.is_empty(), "fields outside ECS and tlsmon.*: {bad:#?}");
    // The check saw every kind of event and the ECS fields that matter.
    for kind in ["tlsmon.tls", "tlsmon.plaintext", "tlsmon.ssh"] {
        assert!(kinds.get(kind).is_some_and(|n| *n > 0), "no {kind} event among {kinds:?}");
    }
    for p in [
        "@timestamp",
        "event.kind",
        "event.category",
        "event.type",
        "event.severity",
        "observer.product",
        "network.protocol",
        "network.type",
        "source.ip",
        "destination.port",
        "tls.version",
        "tls.cipher",
        "tls.client.ja3",
        "tls.server.x509.not_after",
        "tls.server.x509.subject.common_name",
        "tls.server.hash.sha256",
        "tls.client.x509.subject.distinguished_name",
    ] {
        assert!(paths.contains(p), "no event carried {p}");
    }
    println!("{} events ({kinds:?}), {} ECS fields used, all conform to ECS {}", events.len(), paths.len(), r.version);
}

#[test]
fn legacy_fields_are_exactly_the_documented_ones() {
    let r = reference();
    let documented = documented_legacy();
    let files = captures();
    let with = replay(&files, &[]);
    let without = replay(&files, &["--no-legacy-fields"]);
    assert_eq!(with.len(), without.len());
    let mut used = BTreeSet::new();
    for (a, b) in with.iter().zip(&without) {
        // The ECS and tlsmon.* fields are all there with legacy fields on too.
        let (mut on, mut off) = (Vec::new(), Vec::new());
        leaves("", a, &mut on);
        leaves("", b, &mut off);
        let on: BTreeSet<&str> = on.iter().map(|(p, _)| p.as_str()).collect();
        for (p, _) in &off {
            assert!(on.contains(p.as_str()), "{p} is missing when legacy fields are on");
        }
        for (path, why) in nonconforming(&r, a) {
            let name = documented
                .iter()
                .find(|d| path == **d || path.starts_with(&format!("{d}.")))
                .unwrap_or_else(|| panic!("{path} ({why}) is neither ECS, tlsmon.* nor a documented pre-ECS name"));
            used.insert(name.clone());
        }
    }
    // Every documented name still appears somewhere (the table lists nothing that is gone);
    // `probe` only on the prober's events, which tests/probe_lab.rs checks the same way.
    used.insert("probe".to_string());
    let missing: Vec<_> = documented.difference(&used).collect();
    assert!(missing.is_empty(), "README lists pre-ECS names no event carries: {missing:?}");
}

/// `| jq '…'` examples of README: each runs on the events of a corpus capture and prints.
#[test]
fn readme_jq_examples_run() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let filters: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("tlsmon replay --format json") && l.contains("| jq "))
        .filter_map(|l| l.split("| jq ").nth(1))
        .collect();
    assert!(filters.len() >= 3, "README's jq examples: {filters:?}");
    let input = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .args(["replay", "--format", "json", "--threads", "1"])
        .args(captures())
        .output()
        .unwrap()
        .stdout;
    for f in filters {
        // The shell's quoting of the example: -c and one single-quoted program.
        let (flags, prog) = match f.split_once('\'') {
            Some((flags, rest)) => {
                (flags.split_whitespace().collect::<Vec<_>>(), rest.trim_end().trim_end_matches('\''))
            }
            None => panic!("README jq example without a quoted filter: {f}"),
        };
        let mut jq =
            Command::new("jq").args(&flags).arg(prog).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        jq.stdin.take().unwrap().write_all(&input).unwrap();
        let out = jq.wait_with_output().unwrap();
        assert!(out.status.success(), "jq {f} failed");
        assert!(!out.stdout.is_empty(), "jq {f} printed nothing");
    }
}
