//! `tlsmon replay --audit-log` and `tlsmon audit verify` end to end: two replays append one
//! chain (seq continues), every line is the JSON sink's event plus `seq`/`prev`/`hash`, and each
//! kind of tampering (changed byte, deleted line, swapped lines, truncated last line, inserted
//! line with a recomputed hash but a wrong prev) gives exit 1 naming the first bad line.
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmon-audit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn tlsmon(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn verify(p: &Path) -> (i32, String) {
    let (code, out, err) = tlsmon(&["audit", "verify", p.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

const CAPTURES: [&str; 2] = ["zeek__tls1.2.pcap", "ja4__browsers-x509.pcapng"];

/// A log written by two replays, and the JSON sink's events for the same captures.
fn build_log(name: &str) -> (PathBuf, Vec<serde_json::Value>) {
    let log = tmp(name);
    let mut events = Vec::new();
    for c in CAPTURES {
        let pcap = corpus(c);
        let (code, out, err) =
            tlsmon(&["replay", "--format", "none", "--audit-log", log.to_str().unwrap(), pcap.to_str().unwrap()]);
        assert_eq!((code, out.as_str()), (0, ""), "stderr: {err}");
        let (_, json, _) = tlsmon(&["replay", "--format", "json", pcap.to_str().unwrap()]);
        events.extend(json.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
    }
    (log, events)
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(p, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

#[test]
fn two_replays_append_one_chain_of_the_json_events() {
    let (log, events) = build_log("append.jsonl");
    assert!(events.len() >= 3, "the captures hold several handshakes, got {}", events.len());
    let got = lines(&log);
    assert_eq!(got.len(), events.len());
    for (i, (line, ev)) in got.iter().zip(&events).enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object_mut().unwrap();
        assert_eq!(obj.remove("seq").and_then(|s| s.as_u64()), Some(i as u64 + 1), "line {}", i + 1);
        assert!(obj.remove("prev").is_some() && obj.remove("hash").is_some());
        assert_eq!(&v, ev, "line {} is the JSON sink's event", i + 1);
    }
    // The first line of the second run chains to the last line of the first.
    let first_run = 1; // zeek__tls1.2.pcap holds one handshake
    let a: serde_json::Value = serde_json::from_str(&got[first_run - 1]).unwrap();
    let b: serde_json::Value = serde_json::from_str(&got[first_run]).unwrap();
    assert_eq!(b["prev"], a["hash"]);
    assert_eq!(b["seq"], 2);

    let (code, out) = verify(&log);
    let last: serde_json::Value = serde_json::from_str(got.last().unwrap()).unwrap();
    let h = last["hash"].as_str().unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("OK: {n} lines, chain intact (last seq {n}, hash {}", &h[..16], n = events.len())),
        "{out}"
    );
}

/// Exit code and the line number verify names ("FAILED: line N …").
fn verdict(p: &Path) -> (i32, u64, String) {
    let (code, out) = verify(p);
    let line =
        out.strip_prefix("FAILED: line ").and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    (code, line, out)
}

#[test]
fn verify_names_the_first_tampered_line() {
    let (log, _) = build_log("tamper.jsonl");
    let good = lines(&log);
    assert_eq!(good.len(), 4, "one + three handshakes");

    // A changed byte inside line 2 (a digit of the timestamp).
    let mut t = good.clone();
    let at = t[1].find("\"timestamp\":\"").unwrap() + 14;
    let mut bytes = t[1].clone().into_bytes();
    bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
    t[1] = String::from_utf8(bytes).unwrap();
    let p = tmp("edited.jsonl");
    write_lines(&p, &t);
    let (code, line, out) = verdict(&p);
    assert_eq!((code, line), (1, 2), "{out}");
    assert!(out.contains("edited"), "{out}");

    // Line 3 deleted: line 3 now holds seq 4.
    let mut t = good.clone();
    t.remove(2);
    let p = tmp("deleted.jsonl");
    write_lines(&p, &t);
    let (code, line, out) = verdict(&p);
    assert_eq!((code, line), (1, 3), "{out}");
    assert!(out.contains("seq 4 where 3 was expected"), "{out}");

    // Lines 2 and 3 swapped.
    let mut t = good.clone();
    t.swap(1, 2);
    let p = tmp("swapped.jsonl");
    write_lines(&p, &t);
    let (code, line, out) = verdict(&p);
    assert_eq!((code, line), (1, 2), "{out}");
    assert!(out.contains("seq 3 where 2 was expected"), "{out}");

    // The last line cut short (no newline, not JSON).
    let all = std::fs::read(&log).unwrap();
    let p = tmp("truncated.jsonl");
    std::fs::write(&p, &all[..all.len() - 30]).unwrap();
    let (code, line, out) = verdict(&p);
    assert_eq!((code, line), (1, 4), "{out}");
    assert!(out.contains("truncated"), "{out}");
    // … and a writer refuses to append after it, naming the line and the verifier.
    let pcap = corpus(CAPTURES[0]);
    let (code, _, err) =
        tlsmon(&["replay", "--format", "none", "--audit-log", p.to_str().unwrap(), pcap.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 4") && err.contains("tlsmon audit verify"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), &all[..all.len() - 30], "nothing appended");

    // A copy of line 2 inserted after it as seq 3, its hash recomputed correctly over a prev
    // that is line 1's hash (not line 2's): its own hash checks out, the chain does not.
    let line2 = &good[1];
    let body = format!("{}}}", &line2[..line2.len() - 75]).replacen("{\"seq\":2,", "{\"seq\":3,", 1);
    let v2: serde_json::Value = serde_json::from_str(line2).unwrap();
    let prev = hex::decode(v2["prev"].as_str().unwrap()).unwrap();
    let hash = hex::encode(Sha256::new().chain_update(&prev).chain_update(body.as_bytes()).finalize());
    let forged = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
    let mut t = good.clone();
    t.insert(2, forged);
    let p = tmp("inserted.jsonl");
    write_lines(&p, &t);
    let (code, line, out) = verdict(&p);
    assert_eq!((code, line), (1, 3), "{out}");
    assert!(out.contains("prev that is not the hash of line 2"), "{out}");

    // The untouched log still verifies, and an unreadable path is exit 2.
    assert_eq!(verify(&log).0, 0);
    assert_eq!(verify(&tmp("missing.jsonl")).0, 2);
}

/// A log rolled over by size into three files (two rolled, the live one), as a shell glob
/// `audit.jsonl*` lists them: the live file first.
fn rolled_series(name: &str, host: &str) -> Vec<PathBuf> {
    use monitor::sink::audit::{rolled_name, AuditLog, RotatePolicy, SyncPolicy};
    let log = tmp(name);
    for seq in [1, 4] {
        let _ = std::fs::remove_file(rolled_name(&log, seq));
    }
    let rotate = RotatePolicy { max_bytes: Some(660), daily: false };
    let mut w = AuditLog::open_rotating(&log, SyncPolicy::default(), rotate).unwrap();
    for i in 0..9 {
        w.append(&serde_json::json!({"type": "tls", "n": i, "host": host, "findings": []})).unwrap();
    }
    assert_eq!(w.close().unwrap(), 9);
    let files = vec![log.clone(), rolled_name(&log, 1), rolled_name(&log, 4)];
    for f in &files {
        assert_eq!(lines(f).len(), 3, "{} holds three lines", f.display());
    }
    files
}

fn verify_all(files: &[PathBuf]) -> (i32, String) {
    let mut args = vec!["audit", "verify"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let (code, out, err) = tlsmon(&args);
    (code, format!("{out}{err}"))
}

#[test]
fn rolled_files_verify_as_one_chain() {
    let files = rolled_series("rolled.jsonl", "a");
    let (code, out) = verify_all(&files);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 3 files, 9 lines, chain intact (last seq 9"), "{out}");
    // Put in chain order whatever the order given: the live file last.
    assert!(out.trim_end().ends_with(files[0].to_str().unwrap()), "{out}");
    // The live file's first line chains to the last line of the rolled file before it.
    let head: serde_json::Value = serde_json::from_str(&lines(&files[0])[0]).unwrap();
    let tail: serde_json::Value = serde_json::from_str(lines(&files[2]).last().unwrap()).unwrap();
    assert_eq!((head["seq"].as_u64(), &head["prev"]), (Some(7), &tail["hash"]));
}

#[test]
fn removed_or_edited_middle_file_is_named() {
    let files = rolled_series("middle.jsonl", "a");
    let middle = files[2].to_str().unwrap();
    // Removed: the file after it no longer follows.
    let (code, out) = verify_all(&[files[0].clone(), files[1].clone()]);
    assert_eq!(code, 1, "{out}");
    let expect =
        format!("FAILED: {} line 1 has seq 7 where 4 was expected: lines 4 to 6 are missing", files[0].display());
    assert!(out.starts_with(&expect), "{out}");
    // Edited: one byte of its second line.
    let mut text = lines(&files[2]);
    text[1] = text[1].replacen("\"n\":4", "\"n\":5", 1);
    write_lines(&files[2], &text);
    let (code, out) = verify_all(&files);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with(&format!("FAILED: {middle} line 2 was edited")), "{out}");
    // Replaced by a file with a valid chain of its own (another log's): it does not follow
    // the file before it.
    let other = rolled_series("other.jsonl", "b");
    std::fs::copy(&other[2], &files[2]).unwrap();
    let (code, out) = verify_all(&files);
    assert_eq!(code, 1, "{out}");
    let expect = format!(
        "FAILED: {middle} line 1 has a prev that is not the last hash of the file before it ({})",
        files[1].display()
    );
    assert!(out.starts_with(&expect), "{out}");
}

/// A log written by two replays with `--audit-sign-key` (the key created by the first), and
/// the key file.
fn build_signed_log(name: &str) -> (PathBuf, PathBuf) {
    let log = tmp(name);
    let key = tmp(&format!("{name}.key"));
    let _ = std::fs::remove_file(format!("{}.pub", key.display()));
    for c in CAPTURES {
        let pcap = corpus(c);
        let args = ["replay", "--format", "none", "--audit-log", log.to_str().unwrap(), "--audit-sign-key"];
        let (code, out, err) = tlsmon(&[&args[..], &[key.to_str().unwrap(), pcap.to_str().unwrap()]].concat());
        assert_eq!((code, out.as_str()), (0, ""), "stderr: {err}");
    }
    (log, key)
}

fn pub_of(key: &Path) -> String {
    format!("{}.pub", key.display())
}

fn verify_keyed(p: &Path, key: &str) -> (i32, String) {
    let (code, out, err) = tlsmon(&["audit", "verify", "--key", key, p.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

/// Re-serialize lines `from..` (0-based) with every hash recomputed: what someone with the
/// file but not the key can do. `edit` changes the parsed lines first.
fn rechain(lines: &[String], from: usize, edit: impl Fn(&mut [serde_json::Value])) -> Vec<String> {
    let mut values: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    edit(&mut values);
    let mut out = lines[..from].to_vec();
    let mut prev =
        if from == 0 { vec![0u8; 32] } else { hex::decode(values[from - 1]["hash"].as_str().unwrap()).unwrap() };
    for v in &mut values[from..] {
        let obj = v.as_object_mut().unwrap();
        obj.remove("hash");
        obj.insert("prev".into(), hex::encode(&prev).into());
        let body = serde_json::to_string(v).unwrap();
        prev = Sha256::new().chain_update(&prev).chain_update(body.as_bytes()).finalize().to_vec();
        out.push(format!("{},\"hash\":\"{}\"}}", &body[..body.len() - 1], hex::encode(&prev)));
    }
    out
}

#[test]
fn signed_log_verifies_with_its_key_and_is_sealed() {
    use std::os::unix::fs::PermissionsExt;
    let (log, key) = build_signed_log("signed.jsonl");
    // The key was created on first use, 0600, with its public key next to it.
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(pub_of(&key)).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    // Each run ends with its exit checkpoint, which signs the line before it.
    let got = lines(&log);
    let v: Vec<serde_json::Value> = got.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), 6, "1 + 3 handshakes and two exit checkpoints");
    for i in [1, 5] {
        assert_eq!(v[i]["type"], "checkpoint");
        assert_eq!(v[i]["checkpoint"]["reason"], "exit");
        assert_eq!(v[i]["checkpoint"]["hash"], v[i - 1]["hash"]);
        assert_eq!(v[i]["checkpoint"]["seq"], v[i - 1]["seq"]);
    }
    let (code, out) = verify_keyed(&log, &pub_of(&key));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 6 lines, chain intact (last seq 6"), "{out}");
    assert!(out.contains("signatures: OK: 2 checkpoints valid"), "{out}");
    assert!(out.contains("last verified checkpoint: line 6 (signs seq 5, exit at "), "{out}");
    assert!(out.contains("\nsealed: "), "{out}");
    // Without a key: the chain only, and said so.
    let (code, out) = verify(&log);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signatures: NOT checked (no --key given); 2 checkpoints"), "{out}");
    // `tlsmon audit key` on the existing key names the same key id and keeps the key.
    let before = std::fs::read(&key).unwrap();
    let (code, out, _) = tlsmon(&["audit", "key", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.starts_with("exists: ") && out.contains(v[5]["checkpoint"]["key_id"].as_str().unwrap()), "{out}");
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn rewritten_signed_log_fails_at_the_checkpoint_after_the_change() {
    let (log, key) = build_signed_log("rewritten.jsonl");
    let good = lines(&log);
    // Line 4 (the second event of the second run) edited, every hash from it on recomputed:
    // the chain checks out, the exit checkpoint at line 6 no longer signs its line 5.
    let t = rechain(&good, 3, |v| v[3]["timestamp"] = "2023-08-09T01:51:52.000000Z".into());
    let p = tmp("rewritten-1.jsonl");
    write_lines(&p, &t);
    let (code, out) = verify_keyed(&p, &pub_of(&key));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("FAILED: line 6 is a checkpoint whose signed hash is not the hash of the line before it"),
        "{out}"
    );
    assert!(out.contains("last verified checkpoint: line 2 (signs seq 1"), "{out}");
    assert!(out.contains("among lines 3 to 6"), "{out}");
    // The checkpoint's seq/hash forged too: only the signature tells, and it does.
    let t = rechain(&good, 3, |v| {
        v[3]["timestamp"] = "2023-08-09T01:51:52.000000Z".into();
    });
    let t5: serde_json::Value = serde_json::from_str(&t[4]).unwrap();
    let t = rechain(&t, 5, |v| v[5]["checkpoint"]["hash"] = t5["hash"].clone());
    write_lines(&p, &t);
    assert_eq!(verify(&p).0, 0, "the chain alone cannot tell");
    let (code, out) = verify_keyed(&p, &pub_of(&key));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED: line 6 is a checkpoint whose signature does not verify with key "), "{out}");
}

#[test]
fn cut_tail_is_reported_as_not_covered() {
    let (log, key) = build_signed_log("cut.jsonl");
    let good = lines(&log);
    // The exit checkpoint and the last event cut off (whole lines: the chain is intact).
    let p = tmp("cut-1.jsonl");
    write_lines(&p, &good[..4]);
    assert_eq!(verify(&p).0, 0, "the chain alone cannot tell");
    let (code, out) = verify_keyed(&p, &pub_of(&key));
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("OK: 4 lines, chain intact"), "{out}");
    assert!(out.contains("last verified checkpoint: line 2 (signs seq 1, exit"), "{out}");
    assert!(out.contains("WARNING: lines 3 onwards (seq 3 to 4) are not covered by a signature"), "{out}");
    // A log without any checkpoint given to verify --key: nothing is covered.
    let (plain, _) = build_log("unsigned.jsonl");
    let (code, out) = verify_keyed(&plain, &pub_of(&key));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("WARNING: no checkpoint: none of the 4 lines is covered by a signature"), "{out}");
}

#[test]
fn checkpoint_signed_with_another_key_is_named() {
    let (log, key) = build_signed_log("wrongkey.jsonl");
    let other = tmp("other.key");
    let _ = std::fs::remove_file(pub_of(&other));
    let (code, out, err) = tlsmon(&["audit", "key", "--out", other.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("created: "), "{out}");
    let (code, out) = verify_keyed(&log, &pub_of(&other));
    let id = serde_json::from_str::<serde_json::Value>(&lines(&log)[1]).unwrap()["checkpoint"]["key_id"].clone();
    assert_eq!(code, 1, "{out}");
    let expect = format!(
        "FAILED: line 2 is a checkpoint signed with key {}, which is not a key given with --key",
        id.as_str().unwrap()
    );
    assert!(out.starts_with(&expect), "{out}");
    // Both keys (a key change): fine.
    let (code, out, _) =
        tlsmon(&["audit", "verify", "--key", &pub_of(&other), "--key", &pub_of(&key), log.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // A key file that is not a key: exit 2, naming it.
    let (code, _, err) = tlsmon(&["audit", "verify", "--key", log.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not an Ed25519 public key"), "{err}");
}

#[test]
fn group_readable_signing_key_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (log, key) = build_signed_log("perm.jsonl");
    let before = std::fs::read(&log).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let pcap = corpus(CAPTURES[0]);
    let (code, _, err) = tlsmon(&[
        "replay",
        "--format",
        "none",
        "--audit-log",
        log.to_str().unwrap(),
        "--audit-sign-key",
        key.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("readable or writable by group or others (mode 0640)") && err.contains("chmod 600"), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), before, "the log is not touched");
}
