//! Test data shared by the replay tests: the public corpus beside the checkout, and the
//! synthetic captures `cargo xtask test` generates before it runs the tests (`cargo xtask
//! gen-phi`, a small `cargo xtask gen` mix) into `target/test-data` (or $TLSMON_TEST_DATA).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    assert!(p.join("manifest.json").exists(), "the shared corpus must sit beside the checkout: {}", p.display());
    p
}

/// The generated test data (fails, naming the command, when it is missing).
pub fn generated() -> PathBuf {
    let dir = match std::env::var_os("TLSMON_TEST_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-data"),
    };
    assert!(
        dir.join("phi/manifest.json").exists() && dir.join("mix.pcap").exists(),
        "generated test data missing in {}: `cargo xtask test` makes it (or run `cargo xtask gen-phi --out-dir {0}/phi` \
         and `cargo xtask gen --size-mb 30 --out {0}/mix.pcap`)",
        dir.display()
    );
    dir
}

/// The synthetic PHI captures' manifest (xtask/src/gen_phi.rs).
pub fn phi_manifest() -> (PathBuf, Value) {
    let dir = generated().join("phi");
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("reading the PHI manifest");
    (dir, serde_json::from_str(&text).expect("the PHI manifest is JSON"))
}

/// Every corpus capture's path.
pub fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus();
    let m: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    m.as_array().unwrap().iter().map(|e| dir.join(e["file"].as_str().unwrap())).collect()
}

/// `tlsmon replay --format json FILE… ARGS…`: the events (the exit code is not judged here).
pub fn replay_json(files: &[PathBuf], args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .arg("replay")
        .args(files)
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("running tlsmon");
    assert!(out.status.code().is_some_and(|c| c <= 1), "tlsmon failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The value at a dotted path (`plaintext.hl7.version`).
pub fn at<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

/// The sorted finding ids of an event.
pub fn finding_ids(ev: &Value) -> Vec<String> {
    let mut ids: Vec<String> = ev["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["id"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}
