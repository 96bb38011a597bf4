//! Unit tests of signed checkpoints: the writer's checkpoints (interval, rotation, exit) and
//! what the keyed verifier says about intact, rewritten, cut and foreign-signed logs.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmon-audit-signed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn signer(p: &Path) -> Signer {
    Signer::load_or_create(&p.with_extension("key")).expect("key").0
}

fn ev(i: u32) -> serde_json::Value {
    serde_json::json!({"type": "tls", "n": i, "tls": {"version": "1.2"}, "findings": []})
}

/// Write events `from..to` with signing (`every`: the checkpoint interval).
fn write_signed(p: &Path, from: u32, to: u32, every: Option<Duration>) -> PublicKey {
    let s = signer(p);
    let key = s.public_key().clone();
    let mut log = AuditLog::open(p, SyncPolicy::default()).expect("open").sign(s, every);
    for i in from..to {
        log.append(&ev(i)).expect("append");
    }
    log.close().expect("close");
    key
}

fn values(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p).expect("read").lines().map(|l| serde_json::from_str(l).expect("json")).collect()
}

fn keyed(p: &Path, keys: &[PublicKey]) -> SignedVerdict {
    verify_series_keyed(&[p.to_owned()], keys).expect("verify")
}

/// Rebuild a valid chain from line `from` (0-based) on, with `lines[from..]` re-serialized
/// (what an attacker with the file but not the key can do); earlier lines kept byte for byte.
fn rechain(p: &Path, lines: &[serde_json::Value], from: usize) {
    let text = std::fs::read_to_string(p).expect("read");
    let mut out: String = text.lines().take(from).map(|l| format!("{l}\n")).collect();
    let mut prev = if from == 0 { GENESIS } else { hex32(&lines[from - 1], "hash").expect("hash") };
    for l in &lines[from..] {
        let mut v = l.clone();
        let obj = v.as_object_mut().expect("object");
        obj.remove("hash");
        obj.insert("prev".into(), hex::encode(prev).into());
        let body = serde_json::to_string(&v).expect("json");
        prev = digest(&prev, body.as_bytes());
        out.push_str(&format!("{},\"hash\":\"{}\"}}\n", body.strip_suffix('}').expect("object"), hex::encode(prev)));
    }
    std::fs::write(p, out).expect("write");
}

#[test]
fn signed_log_ends_with_the_exit_checkpoint_and_is_sealed() {
    let p = tmp("sealed.jsonl");
    let key = write_signed(&p, 0, 3, None);
    let lines = values(&p);
    assert_eq!(lines.len(), 4, "three events and the exit checkpoint");
    let cp = &lines[3]["checkpoint"];
    assert_eq!(lines[3]["type"], "checkpoint");
    assert_eq!((cp["seq"].as_u64(), &cp["hash"], cp["reason"].as_str()), (Some(3), &lines[2]["hash"], Some("exit")));
    assert_eq!(cp["key_id"], key.key_id());
    assert!(cp["time"].as_str().expect("time").ends_with('Z'));
    let v = keyed(&p, std::slice::from_ref(&key));
    assert!(v.sealed() && v.signatures_valid(), "{v}");
    assert_eq!((v.checkpoints, v.exit_code()), (1, 0));
    assert_eq!(v.last_checkpoint.as_ref().map(|c| (c.line, c.checkpoint.seq)), Some((4, 3)));
    let text = v.to_string();
    assert!(text.starts_with("OK: 4 lines, chain intact (last seq 4"), "{text}");
    assert!(text.contains("signatures: OK: 1 checkpoints valid") && text.contains("sealed"), "{text}");
    // The unkeyed verdicts are unchanged.
    assert!(matches!(verify(&p).expect("verify"), Verdict::Intact { lines: 4, .. }));
    let v = keyed(&p, &[]);
    assert_eq!((v.signatures.clone(), v.exit_code()), (Signatures::NotChecked, 0));
    assert!(v.to_string().contains("signatures: NOT checked"), "{v}");
}

#[test]
fn restart_without_events_adds_nothing_and_a_later_run_ends_sealed() {
    let p = tmp("restart.jsonl");
    let key = write_signed(&p, 0, 2, None);
    write_signed(&p, 2, 2, None);
    assert_eq!(values(&p).len(), 3, "a clean log is not signed twice");
    write_signed(&p, 2, 4, None);
    let lines = values(&p);
    assert_eq!(lines.iter().filter(|l| l["type"] == "checkpoint").count(), 2);
    assert_eq!(lines[3]["prev"], lines[2]["hash"], "the chain goes on through the checkpoint");
    assert!(keyed(&p, &[key]).sealed());
}

#[test]
fn interval_checkpoints_follow_the_lines_they_sign() {
    let p = tmp("interval.jsonl");
    let key = write_signed(&p, 0, 3, Some(Duration::ZERO));
    let kinds: Vec<String> = values(&p).iter().map(|l| l["type"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(kinds, ["tls", "checkpoint", "tls", "checkpoint", "tls", "checkpoint", "checkpoint"]);
    let reasons: Vec<_> =
        values(&p).iter().filter_map(|l| l["checkpoint"]["reason"].as_str().map(str::to_owned)).collect();
    assert_eq!(reasons, ["interval", "interval", "interval", "exit"], "close marks the clean shutdown");
    let v = keyed(&p, std::slice::from_ref(&key));
    assert_eq!((v.checkpoints, v.exit_code()), (4, 0), "{v}");
    // Without the exit checkpoint, the log ends signed but not closed.
    let text = std::fs::read_to_string(&p).expect("read");
    let cut = text.trim_end().rfind('\n').expect("lines") + 1;
    std::fs::write(&p, &text[..cut]).expect("write");
    let v = keyed(&p, &[key]);
    assert_eq!((v.checkpoints, v.exit_code()), (3, 3), "{v}");
    assert!(v.uncovered.is_none() && v.to_string().contains("not \"exit\""), "{v}");
}

#[test]
fn rolled_files_each_end_with_a_checkpoint() {
    let p = tmp("roll.jsonl");
    let s = signer(&p);
    let key = s.public_key().clone();
    let rotate = RotatePolicy { max_bytes: Some(1500), daily: false };
    let mut log = AuditLog::open_rotating(&p, SyncPolicy::default(), rotate).expect("open").sign(s, None);
    for i in 0..12 {
        log.append(&ev(i)).expect("append");
    }
    log.close().expect("close");
    let dir = p.parent().expect("dir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("roll.jsonl")))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).expect("meta").len() <= 1500, "{f:?} over the limit with its checkpoint");
        let last = values(f).pop().expect("a line");
        let want = if f == &p { "exit" } else { "rotate" };
        assert_eq!(last["checkpoint"]["reason"], want, "{f:?}");
    }
    let v = verify_series_keyed(&files, &[key]).expect("verify");
    assert!(v.sealed(), "{v}");
    assert_eq!(v.checkpoints as usize, files.len());
}

#[test]
fn rewritten_log_with_a_recomputed_chain_fails_at_its_checkpoint() {
    let p = tmp("rewritten.jsonl");
    let key = write_signed(&p, 0, 2, None);
    write_signed(&p, 2, 4, None);
    let good = values(&p);
    // Line 4 (an event after the first checkpoint at line 3) edited, every hash recomputed.
    let mut lines = good.clone();
    lines[3]["n"] = 99.into();
    rechain(&p, &lines, 3);
    let v = verify(&p).expect("verify");
    assert!(matches!(v, Verdict::Broken { line: 6, problem: Problem::CheckpointHash }), "{v}");
    let v = keyed(&p, std::slice::from_ref(&key));
    assert_eq!(v.exit_code(), 1);
    assert!(matches!(&v.chain, SeriesVerdict::Broken { line: 6, problem: Problem::CheckpointHash, .. }), "{v}");
    assert_eq!(v.last_checkpoint.as_ref().map(|c| c.line), Some(3));
    let text = v.to_string();
    assert!(text.contains("last verified checkpoint: line 3") && text.contains("lines 4 to 6"), "{text}");
    // The checkpoint's hash fixed up too: only the signature tells.
    let mut lines = values(&p);
    lines[5]["checkpoint"]["hash"] = lines[4]["hash"].clone();
    rechain(&p, &lines, 5);
    assert!(matches!(verify(&p).expect("verify"), Verdict::Intact { lines: 6, .. }), "the chain alone cannot tell");
    let v = keyed(&p, std::slice::from_ref(&key));
    match &v.chain {
        SeriesVerdict::Broken { line: 6, problem: Problem::CheckpointSig(id), .. } => assert_eq!(id, key.key_id()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cut_tail_is_not_covered() {
    let p = tmp("cut.jsonl");
    let key = write_signed(&p, 0, 2, None);
    write_signed(&p, 2, 5, None);
    let text = std::fs::read_to_string(&p).expect("read");
    let keep: Vec<&str> = text.lines().collect();
    assert_eq!(keep.len(), 7);
    // The exit checkpoint (line 7) and one event cut off.
    std::fs::write(&p, keep[..5].iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
    let v = keyed(&p, std::slice::from_ref(&key));
    assert_eq!(v.exit_code(), 3, "{v}");
    assert!(v.signatures_valid() && !v.sealed());
    assert_eq!(v.uncovered, Some(Uncovered { file: p.clone(), first_line: 4, first_seq: 4, last_seq: 5 }));
    assert!(v.to_string().contains("WARNING: lines 4 onwards (seq 4 to 5) are not covered by a signature"), "{v}");
    // No checkpoint at all: nothing is covered.
    std::fs::write(&p, keep[..2].iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
    let v = keyed(&p, std::slice::from_ref(&key));
    assert_eq!((v.exit_code(), v.checkpoints), (3, 0));
    assert!(v.to_string().contains("WARNING: no checkpoint"), "{v}");
    // Cut to nothing.
    std::fs::write(&p, "").expect("write");
    let v = keyed(&p, &[key]);
    assert_eq!(v.exit_code(), 3);
    assert!(v.to_string().starts_with("OK: 0 lines (empty log)\nWARNING: empty log"), "{v}");
}

#[test]
fn unsigned_log_without_a_key_prints_the_chain_verdict_alone() {
    let p = tmp("unsigned.jsonl");
    let mut log = AuditLog::open(&p, SyncPolicy::default()).expect("open");
    log.append(&ev(0)).expect("append");
    log.append(&ev(1)).expect("append");
    log.close().expect("close");
    let v = keyed(&p, &[]);
    assert_eq!((v.to_string(), v.exit_code()), (verify(&p).expect("verify").to_string(), 0));
    let text = std::fs::read_to_string(&p).expect("read").replacen("\"n\":1", "\"n\":2", 1);
    std::fs::write(&p, text).expect("write");
    let v = keyed(&p, &[]);
    assert_eq!(
        (v.to_string(), v.exit_code()),
        ("FAILED: line 2 was edited: its hash does not match its content".into(), 1)
    );
}

#[test]
fn checkpoint_of_another_key_is_named() {
    let p = tmp("wrongkey.jsonl");
    write_signed(&p, 0, 2, None);
    let other = Signer::load_or_create(&tmp("other.key")).expect("key").0.public_key().clone();
    let v = keyed(&p, std::slice::from_ref(&other));
    assert_eq!(v.exit_code(), 1);
    assert!(matches!(&v.chain, SeriesVerdict::Broken { line: 3, problem: Problem::CheckpointKey(_), .. }), "{v}");
    // Either of two keys (a key change) is accepted.
    let mine = PublicKey::from_file(&pub_path(&p.with_extension("key"))).expect("pub");
    assert!(keyed(&p, &[other, mine]).sealed());
}
