//! Sink, audit log: the emitted events as an append-only, hash-chained JSON-lines file, and its
//! verifier (one file or a rolled series); this module holds the line format and the check of one line they share. Never rewrites or truncates a line already written, never appends after a tail it
//! cannot verify, and never holds more than one line plus a `BufWriter` in memory.
//!
//! # Line format
//!
//! Each line is one JSON object followed by `\n`:
//!
//! ```text
//! {"seq":1,"prev":"000…000","type":"tls","timestamp":…,…,"findings":[…],"hash":"9f2c…"}
//! ```
//!
//! - `seq`: 1 for the first line of a log, +1 per line, continuing across restarts.
//! - `prev`: the previous line's `hash` (64 lowercase hex digits); 64 zeros on line 1.
//! - then the event's fields, exactly as the JSON sink writes them (`sink::json::event`);
//! - `hash`: always the last field.
//!
//! # Hash
//!
//! The *body* of a line is the line with its final `,"hash":"<64 hex>"` member removed, i.e.
//! the exact bytes `serde_json::to_string` wrote for the object `{seq, prev, event fields…}`
//! (keys in the order written, no whitespace). Then
//!
//! ```text
//! hash = hex(SHA-256(prev_raw || body))
//! ```
//!
//! where `prev_raw` is `prev` hex-decoded (32 bytes). The verifier does not re-serialize: it cuts
//! the suffix `,"hash":"<hash>"}` off the bytes on disk, appends `}`, and hashes that, so any
//! changed byte, anywhere in a line, changes the hash.
//!
//! # Rotation
//!
//! A log rolled over (by size or UTC day, [`RotatePolicy`]) is renamed `<log>.<first seq, 10
//! digits>` and the chain goes on in a new `<log>`: its first line has the next `seq` and the
//! rolled file's last hash as `prev`. [`verify_series`] checks such files as one chain.
//!
//! # Checkpoints
//!
//! With a signing key ([`AuditLog::sign`], `--audit-sign-key`), the writer appends checkpoint
//! lines: ordinary lines of the chain whose event is
//!
//! ```text
//! {"seq":9,"prev":"<hash of line 8>","type":"checkpoint","checkpoint":{"seq":8,"hash":"<hash of line 8>",
//!  "time":"2026-12-03T07:50:00Z","host":"db1","reason":"interval","key_id":"<16 hex>","sig":"<128 hex>"},"hash":"…"}
//! ```
//!
//! `sig` is Ed25519 over [`Checkpoint::message`] (every field of the checkpoint but `sig`),
//! so it vouches for the head of the chain (and, through the chain, every line before it).
//! They are written every `--audit-checkpoint-mins` while lines come in (`reason` "interval"),
//! as the last line of a file about to roll over ("rotate") and as the last line at a clean
//! shutdown ("exit"). [`verify_series_keyed`] checks them with the public key.
mod sign;
#[cfg(test)]
mod signed_tests;
mod verify;
mod writer;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use sign::{pub_path, Checkpoint, KeyError, PublicKey, Reason, Signer, CHECKPOINT_TYPE};
pub use verify::{
    verify, verify_series, verify_series_keyed, CheckpointAt, SeriesVerdict, Signatures, SignedVerdict, Uncovered,
    Verdict,
};
pub use writer::{rolled_name, AuditLog, RotatePolicy, SyncPolicy};

/// Longest line the writer's tail check and the verifier will read (events are a few KiB).
pub const MAX_LINE: usize = 16 << 20;
/// `prev` of the first line of a log.
pub const GENESIS: [u8; 32] = [0; 32];
const HASH_KEY: &[u8] = b",\"hash\":\"";
/// `,"hash":"` + 64 hex + `"}`.
const SUFFIX_LEN: usize = HASH_KEY.len() + 64 + 2;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {op}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "audit log {}: line {line} {problem}; refusing to append after it (run `tlsmon audit verify {}`)",
        path.display(),
        path.display()
    )]
    CorruptTail { path: PathBuf, line: u64, problem: Problem },
    #[error("audit log {}: in use by another process (file locked)", path.display())]
    Locked { path: PathBuf },
    #[error("audit log {}: cannot encode the event", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What is wrong with one line of an audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("is truncated: no newline at its end (last line cut short)")]
    NoNewline,
    #[error("is longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("is not valid JSON (column {0})")]
    NotJson(usize),
    #[error("has no valid `{0}` field")]
    BadField(&'static str),
    #[error("does not end with its `hash` field")]
    HashNotLast,
    #[error("was edited: its hash does not match its content")]
    HashMismatch,
    #[error("has seq {found} where {expected} was expected: lines deleted or reordered")]
    Seq { expected: u64, found: u64 },
    #[error("has a prev that is not the hash of line {0}: a line was inserted, deleted or reordered")]
    Prev(u64),
    #[error("has a prev that is not 64 zeros although it is the first line: the head of the log is missing")]
    PrevNotGenesis,
    #[error(
        "has seq {found} where {expected} was expected: lines {expected} to {} are missing (a file of the series removed?)",
        found - 1
    )]
    FileGap { expected: u64, found: u64 },
    #[error(
        "has a prev that is not the last hash of the file before it ({0}): one of the two was edited, cut or replaced"
    )]
    PrevFile(String),
    #[error("is a checkpoint for seq {signed} but follows seq {chain}: it was moved or copied from elsewhere")]
    CheckpointSeq { signed: u64, chain: u64 },
    #[error(
        "is a checkpoint whose signed hash is not the hash of the line before it: the lines before it were rewritten (hashes recomputed) after it was signed"
    )]
    CheckpointHash,
    #[error(
        "is a checkpoint signed with key {0}, which is not a key given with --key: signed by another key, or forged"
    )]
    CheckpointKey(String),
    #[error(
        "is a checkpoint whose signature does not verify with key {0}: the checkpoint was forged or altered, i.e. the file was rewritten"
    )]
    CheckpointSig(String),
}

/// A line checked on its own: its seq, prev and hash (raw bytes), the hash verified; its
/// checkpoint when it is one (its signature not checked).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checked {
    seq: u64,
    prev: [u8; 32],
    hash: [u8; 32],
    checkpoint: Option<Checkpoint>,
}

fn digest(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

fn hex32(v: &serde_json::Value, field: &'static str) -> Result<[u8; 32], Problem> {
    let s = v.get(field).and_then(|x| x.as_str()).ok_or(Problem::BadField(field))?;
    let mut out = [0u8; 32];
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Problem::BadField(field));
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| Problem::BadField(field))?;
    Ok(out)
}

/// Check one line (without its `\n`) on its own: valid JSON, fields present, hash last and
/// matching the content.
fn check_line(line: &[u8]) -> Result<Checked, Problem> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| Problem::NotJson(e.column()))?;
    if !v.is_object() {
        return Err(Problem::NotJson(1));
    }
    let seq = v.get("seq").and_then(|x| x.as_u64()).filter(|&s| s > 0).ok_or(Problem::BadField("seq"))?;
    let prev = hex32(&v, "prev")?;
    let hash = hex32(&v, "hash")?;
    // The bytes must end with exactly `,"hash":"<that hash>"}`.
    let cut = line.len().checked_sub(SUFFIX_LEN).ok_or(Problem::HashNotLast)?;
    let tail = &line[cut..];
    if !tail.starts_with(HASH_KEY)
        || !tail.ends_with(b"\"}")
        || tail[HASH_KEY.len()..HASH_KEY.len() + 64] != *hex::encode(hash).as_bytes()
    {
        return Err(Problem::HashNotLast);
    }
    let mut body = Vec::with_capacity(cut + 1);
    body.extend_from_slice(&line[..cut]);
    body.push(b'}');
    if digest(&prev, &body) != hash {
        return Err(Problem::HashMismatch);
    }
    let checkpoint = match v.get("type").and_then(|t| t.as_str()) {
        Some(CHECKPOINT_TYPE) => Some(checkpoint_of(&v)?),
        _ => None,
    };
    Ok(Checked { seq, prev, hash, checkpoint })
}

/// The `checkpoint` member of a checkpoint line, its hash and signature well formed.
fn checkpoint_of(v: &serde_json::Value) -> Result<Checkpoint, Problem> {
    let raw = v.get("checkpoint").ok_or(Problem::BadField("checkpoint"))?;
    let cp: Checkpoint = serde_json::from_value(raw.clone()).map_err(|_| Problem::BadField("checkpoint"))?;
    hex32(raw, "hash").map_err(|_| Problem::BadField("checkpoint.hash"))?;
    if cp.sig.len() != 128 || !cp.sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Problem::BadField("checkpoint.sig"));
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tlsmon-audit-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        p
    }

    fn ev(i: u32) -> serde_json::Value {
        serde_json::json!({"type": "tls", "n": i, "tls": {"version": "1.2", "cipher": "x"}, "findings": []})
    }

    fn write(p: &Path, from: u32, to: u32) -> u64 {
        let mut log = AuditLog::open(p, SyncPolicy::default()).expect("open");
        for i in from..to {
            log.append(&ev(i)).expect("append");
        }
        log.close().expect("close")
    }

    #[test]
    fn round_trip_lines_carry_event_and_chain() {
        let p = tmp("round.jsonl");
        assert_eq!(write(&p, 0, 3), 3);
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["seq"], 1);
        assert_eq!(lines[0]["prev"], "0".repeat(64));
        assert_eq!(lines[1]["prev"], lines[0]["hash"]);
        assert_eq!(lines[2]["n"], 2);
        assert_eq!(lines[2]["tls"]["version"], "1.2");
        // seq and prev first, hash last; the hash is over prev || the line without it.
        let first = text.lines().next().expect("line");
        assert!(first.starts_with("{\"seq\":1,\"prev\":\""));
        let cut = first.len() - SUFFIX_LEN;
        let body = format!("{}}}", &first[..cut]);
        assert_eq!(lines[0]["hash"], hex::encode(Sha256::digest([&GENESIS[..], body.as_bytes()].concat())));
        let last = hex32(&lines[2], "hash").expect("hash");
        assert_eq!(verify(&p).expect("verify"), Verdict::Intact { lines: 3, last_seq: 3, last_hash: Some(last) });
    }

    #[test]
    fn restart_continues_seq_and_chain() {
        let p = tmp("restart.jsonl");
        assert_eq!(write(&p, 0, 2), 2);
        assert_eq!(write(&p, 2, 5), 5);
        assert_eq!(write(&p, 5, 5), 5, "opening and closing without events adds nothing");
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(lines.iter().map(|l| l["seq"].as_u64()).collect::<Vec<_>>(), (1..=5).map(Some).collect::<Vec<_>>());
        assert_eq!(lines[2]["prev"], lines[1]["hash"]);
        assert!(matches!(verify(&p).expect("verify"), Verdict::Intact { lines: 5, last_seq: 5, .. }));
    }

    #[test]
    fn corrupt_tail_refused_with_line_number() {
        let p = tmp("tail.jsonl");
        write(&p, 0, 3);
        let good = std::fs::read(&p).expect("read");
        // Cut inside line 3.
        std::fs::write(&p, &good[..good.len() - 10]).expect("write");
        match AuditLog::open(&p, SyncPolicy::default()) {
            Err(AuditError::CorruptTail { line: 3, problem: Problem::NoNewline, .. }) => {}
            other => panic!("expected a truncated line 3, got {:?}", other.err()),
        }
        // An edited last line (same length, newline intact).
        let mut edited = good.clone();
        let at = good.len() - 100;
        edited[at] = if edited[at] == b'0' { b'1' } else { b'0' };
        std::fs::write(&p, &edited).expect("write");
        let err = AuditLog::open(&p, SyncPolicy::default()).err().expect("refused");
        assert!(matches!(err, AuditError::CorruptTail { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("tlsmon audit verify"), "{err}");
        // Nothing was appended to the refused file.
        assert_eq!(std::fs::read(&p).expect("read"), edited);
    }

    #[test]
    fn second_writer_is_refused() {
        let p = tmp("lock.jsonl");
        let first = AuditLog::open(&p, SyncPolicy::default()).expect("open");
        assert!(matches!(AuditLog::open(&p, SyncPolicy::default()), Err(AuditError::Locked { .. })));
        first.close().expect("close");
    }

    /// A log rolled over by size into `n` files or more: the rolled ones and the live one.
    fn rolled_series(name: &str, lines: u32) -> Vec<PathBuf> {
        let p = tmp(name);
        let rotate = RotatePolicy { max_bytes: Some(500), daily: false };
        let mut log = AuditLog::open_rotating(&p, SyncPolicy::default(), rotate).expect("open");
        for i in 0..lines {
            log.append(&ev(i)).expect("append");
        }
        log.close().expect("close");
        let dir = p.parent().expect("dir");
        let base = p.file_name().expect("name").to_str().expect("utf-8").to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&base)))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn rolled_files_chain_as_one_series() {
        let files = rolled_series("roll.jsonl", 9);
        // Each line is ~230 bytes, so a 500-byte file holds two: four rolled files and the live one.
        assert_eq!(files.len(), 5, "{files:?}");
        assert!(files.iter().all(|f| std::fs::metadata(f).expect("meta").len() <= 500));
        let first = |f: &Path| -> serde_json::Value {
            serde_json::from_str(std::fs::read_to_string(f).expect("read").lines().next().expect("a line"))
                .expect("json")
        };
        let last = |f: &Path| -> serde_json::Value {
            serde_json::from_str(std::fs::read_to_string(f).expect("read").lines().last().expect("a line"))
                .expect("json")
        };
        // Sorted by name the live file comes first; the rolled names carry their first seq.
        let (live, rolled) = files.split_first().expect("files");
        assert_eq!(rolled[0], rolled_name(live, 1));
        assert_eq!(rolled[1], rolled_name(live, 3));
        assert_eq!(first(&rolled[1])["prev"], last(&rolled[0])["hash"], "a new file chains to the last hash");
        assert_eq!(first(live)["seq"], 9);
        assert_eq!(first(live)["prev"], last(&rolled[3])["hash"]);
        // In any order given, the series verifies as one chain.
        match verify_series(&files).expect("verify") {
            SeriesVerdict::Intact { files: ordered, lines: 9, last_seq: 9, last_hash: Some(h) } => {
                assert_eq!(ordered.last(), Some(live));
                assert_eq!(hex::encode(h), last(live)["hash"].as_str().expect("hash"));
            }
            other => panic!("{other:?}"),
        }
        // The live file alone lacks its head.
        assert!(matches!(
            verify(live).expect("verify"),
            Verdict::Broken { line: 1, problem: Problem::Seq { expected: 1, found: 9 } }
        ));
    }

    #[test]
    fn missing_or_edited_middle_file_is_named() {
        let files = rolled_series("gap.jsonl", 6);
        let (live, rolled) = files.split_first().expect("files");
        assert_eq!(rolled.len(), 2);
        let without: Vec<PathBuf> = vec![live.clone(), rolled[0].clone()];
        match verify_series(&without).expect("verify") {
            SeriesVerdict::Broken { file, line: 1, problem: Problem::FileGap { expected: 3, found: 5 } } => {
                assert_eq!(&file, live)
            }
            other => panic!("a removed middle file must be found: {other:?}"),
        }
        // One changed byte in the middle file names it and its line.
        let good = std::fs::read(&rolled[1]).expect("read");
        let mut bytes = good.clone();
        let at = good.windows(5).rposition(|w| w == b"\"n\":3").expect("event 3 (seq 4, line 2)") + 4;
        bytes[at] = b'7';
        std::fs::write(&rolled[1], &bytes).expect("write");
        match verify_series(&files).expect("verify") {
            SeriesVerdict::Broken { file, line: 2, problem: Problem::HashMismatch } => assert_eq!(file, rolled[1]),
            other => panic!("an edited middle file must be found: {other:?}"),
        }
        std::fs::write(&rolled[1], &good).expect("restore");
        // A middle file cut by its last line: the next file no longer follows it.
        let text = std::fs::read_to_string(&rolled[0]).expect("read");
        let keep: String = text.lines().take(1).map(|l| format!("{l}\n")).collect();
        std::fs::write(&rolled[0], keep).expect("write");
        let report = verify_series(&files).expect("verify").to_string();
        assert!(report.starts_with("FAILED: ") && report.contains("line 1 has seq 3 where 2 was expected"), "{report}");
    }

    #[test]
    fn reopening_after_a_roll_continues_the_chain() {
        let p = tmp("reopen.jsonl");
        let mut log = AuditLog::open(&p, SyncPolicy::default()).expect("open");
        log.append(&ev(0)).expect("append");
        log.roll_over().expect("roll over");
        log.close().expect("close");
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 0, "the new file is empty");
        // A restart on the empty live file continues the rolled file's chain.
        assert_eq!(write(&p, 1, 2), 2);
        let rolled = rolled_name(&p, 1);
        match verify_series(&[p.clone(), rolled]).expect("verify") {
            SeriesVerdict::Intact { lines: 2, last_seq: 2, .. } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sync_after_max_lines() {
        let p = tmp("sync.jsonl");
        let policy = SyncPolicy { every: Duration::from_secs(3600), max_lines: 2 };
        let mut log = AuditLog::open(&p, policy).expect("open");
        log.append(&ev(0)).expect("append");
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 0, "one line stays buffered");
        log.append(&ev(1)).expect("append");
        assert_eq!(std::fs::read_to_string(&p).expect("read").lines().count(), 2, "the second line flushes both");
        log.close().expect("close");
    }
}
