//! Shared by the period-report tests: real events (replays of tests/captures and corpus
//! captures) spread over three UTC days and written by the library's audit writer as two
//! agents' logs, one of them rolled into a series and signed (checkpoint lines).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

use monitor::sink::audit::{AuditLog, RotatePolicy, Signer, SyncPolicy};
use serde_json::Value;

pub const DAYS: [&str; 3] = ["2026-11-02", "2026-11-03", "2026-11-05"];
/// The SNI a hostile client sent on one handshake (servers' names are attacker-controlled).
pub const HOSTILE_SNI: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>.evil";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn corpus(name: &str) -> PathBuf {
    root().join("../shared/corpus/pcaps").join(name)
}

/// The captures the events come from: every capture of tests/captures and a few corpus ones
/// (TLS 1.0/1.1, SSLv3, a post-quantum group, HL7 in clear).
pub fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/captures"))
        .expect("tests/captures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    for c in [
        "zeek__tls1_1.pcap",
        "zeek__ssl.v3.pcap",
        "zeek__chrome-1250-tls-x25519-kyber.pcap",
        "ndpi__hl7.pcap",
        "zeek__tls1.2.pcap",
    ] {
        v.push(corpus(c));
    }
    v
}

/// The JSON events of a replay of `files`.
pub fn events(files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .args(["replay", "--format", "json"])
        .args(files)
        .output()
        .expect("runs tlsmon");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let evs: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert!(evs.len() >= 20, "enough events to spread: {}", evs.len());
    evs
}

/// The events with their times moved onto `DAYS` (event i on day i % 3, hour i % 24), one
/// handshake's SNI made hostile.
pub fn spread(mut evs: Vec<Value>) -> Vec<Value> {
    for (i, ev) in evs.iter_mut().enumerate() {
        let at = Value::from(format!("{}T{:02}:{:02}:00.000000Z", DAYS[i % 3], i % 24, i % 60));
        // Both names: the report reads `@timestamp` (ECS) first, `timestamp` in older logs.
        ev["@timestamp"] = at.clone();
        ev["timestamp"] = at;
    }
    let tls = evs.iter_mut().find(|e| e["type"] == "tls" && e["tls"]["client"]["server_name"].is_string());
    tls.expect("a handshake with SNI")["tls"]["client"]["server_name"] = Value::from(HOSTILE_SNI);
    evs
}

/// The logs: `dir/ward-a/audit.jsonl*` (every event, rolled by size, signed: checkpoint lines)
/// and `dir/ward-b/audit.jsonl` (every other event). The files, and the events per agent.
pub fn write_logs(dir: &Path, evs: &[Value]) -> (Vec<PathBuf>, Vec<Vec<Value>>) {
    let _ = std::fs::remove_dir_all(dir);
    let (a, b) = (dir.join("ward-a"), dir.join("ward-b"));
    std::fs::create_dir_all(&a).expect("dir");
    std::fs::create_dir_all(&b).expect("dir");
    let rotate = RotatePolicy { max_bytes: Some(64 << 10), daily: false };
    // ward-a signs its chain (a checkpoint line ends every rolled file and the log).
    let (signer, _) = Signer::load_or_create(&dir.join("ward-a.key")).expect("signing key");
    let mut log = AuditLog::open_rotating(&a.join("audit.jsonl"), SyncPolicy::default(), rotate)
        .expect("open")
        .sign(signer, None);
    for ev in evs {
        log.append(ev).expect("append");
    }
    log.close().expect("close");
    let mut log = AuditLog::open(&b.join("audit.jsonl"), SyncPolicy::default()).expect("open");
    let b_evs: Vec<Value> = evs.iter().step_by(2).cloned().collect();
    for ev in &b_evs {
        log.append(ev).expect("append");
    }
    log.close().expect("close");
    let mut files = Vec::new();
    for d in [&b, &a] {
        let mut f: Vec<PathBuf> = std::fs::read_dir(d).expect("dir").map(|e| e.expect("entry").path()).collect();
        f.sort();
        files.extend(f);
    }
    assert!(files.len() >= 3, "ward-a rolled over: {files:?}");
    (files, vec![evs.to_vec(), b_evs])
}

/// `tlsmon ARGS`: exit code and stdout.
pub fn tlsmon(args: &[&str], files: &[PathBuf]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(args).args(files).output().expect("runs tlsmon");
    assert!(out.status.code().is_some_and(|c| c <= 1), "tlsmon {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of the HTML element carrying `data-k="key"` (its text up to the next tag).
pub fn html_key(html: &str, key: &str) -> Option<String> {
    let at = html.find(&format!("data-k=\"{key}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].to_string())
}

/// Checkpoint lines in `files`.
pub fn checkpoint_lines(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f).expect("log").lines().filter(|l| l.contains(r#""type":"checkpoint""#)).count()
                as u64
        })
        .sum()
}
