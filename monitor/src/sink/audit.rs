//! Sink, audit log: the emitted events as an append-only, hash-chained JSON-lines file, and its
//! verifier. Never rewrites or truncates a line already written, never appends after a tail it
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
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

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
}

/// When buffered lines are flushed and fsynced: at least every `every`, after at most
/// `max_lines` lines, and at `close`.
#[derive(Debug, Clone, Copy)]
pub struct SyncPolicy {
    pub every: Duration,
    pub max_lines: u64,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy { every: Duration::from_secs(1), max_lines: 1000 }
    }
}

/// A line checked on its own: its seq, prev and hash (raw bytes), the hash verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked {
    seq: u64,
    prev: [u8; 32],
    hash: [u8; 32],
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
    Ok(Checked { seq, prev, hash })
}

/// One line: the chain fields first, the event's fields after them (flattened).
#[derive(Serialize)]
struct Line<'a, E: Serialize> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    event: &'a E,
}

/// The writer. Open with [`AuditLog::open`], [`append`](AuditLog::append) each event, call
/// [`sync_if_due`](AuditLog::sync_if_due) now and then (e.g. once a second) and
/// [`close`](AuditLog::close) at the end.
pub struct AuditLog {
    path: PathBuf,
    out: BufWriter<File>,
    seq: u64,
    prev: [u8; 32],
    policy: SyncPolicy,
    unsynced: u64,
    last_sync: Instant,
}

/// How often, and how long apart, opening retries a locked log before giving up (0.5 s).
const LOCK_TRIES: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(25);

impl AuditLog {
    /// Open `path` for appending, creating it if needed. An existing log continues: its last
    /// line must be complete and carry a valid hash, whose `seq` and `hash` the next line
    /// follows. The file is locked against a second writer for as long as this lives.
    pub fn open(path: &Path, policy: SyncPolicy) -> Result<Self, AuditError> {
        let io = |op| move |source| AuditError::Io { path: path.to_owned(), op, source };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io("cannot open"))?;
        // A lock held for a moment is waited out: a child process forked (between fork and
        // exec) while the previous writer had the file open holds its lock briefly.
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                    tries += 1;
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(AuditError::Locked { path: path.to_owned() }),
                Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock")(e)),
            }
        }
        let (seq, prev) = match read_tail(&mut file).map_err(io("cannot read the last line"))? {
            None => (0, GENESIS),
            Some(tail) => {
                let checked = match tail.line.strip_suffix(b"\n") {
                    None => Err(Problem::NoNewline),
                    Some(l) if l.len() > MAX_LINE => Err(Problem::TooLong),
                    Some(l) => check_line(l),
                };
                match checked {
                    Ok(c) => (c.seq, c.hash),
                    Err(problem) => {
                        let line = count_lines_before(&mut file, tail.offset).map_err(io("cannot read"))? + 1;
                        return Err(AuditError::CorruptTail { path: path.to_owned(), line, problem });
                    }
                }
            }
        };
        Ok(AuditLog {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 16, file),
            seq,
            prev,
            policy,
            unsynced: 0,
            last_sync: Instant::now(),
        })
    }

    /// `seq` of the last line written (0 for an empty log).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Append one event (any object; tlsmon passes `sink::json::event(..)`) as the next line.
    pub fn append<E: Serialize>(&mut self, event: &E) -> Result<(), AuditError> {
        let seq = self.seq + 1;
        let prev = hex::encode(self.prev);
        let body = serde_json::to_string(&Line { seq, prev: &prev, event })
            .map_err(|source| AuditError::Encode { path: self.path.clone(), source })?;
        let Some(open) = body.strip_suffix('}') else {
            // Not an object: flatten refuses those, but never write a line verify would reject.
            return Err(AuditError::Encode {
                path: self.path.clone(),
                source: serde::ser::Error::custom("event is not an object"),
            });
        };
        let hash = digest(&self.prev, body.as_bytes());
        let hash_hex = hex::encode(hash);
        let w = &mut self.out;
        w.write_all(open.as_bytes())
            .and_then(|_| w.write_all(HASH_KEY))
            .and_then(|_| w.write_all(hash_hex.as_bytes()))
            .and_then(|_| w.write_all(b"\"}\n"))
            .map_err(|source| AuditError::Io { path: self.path.clone(), op: "cannot write", source })?;
        self.seq = seq;
        self.prev = hash;
        self.unsynced += 1;
        if self.unsynced >= self.policy.max_lines {
            self.sync()?;
        } else {
            self.sync_if_due()?;
        }
        Ok(())
    }

    /// Flush and fsync if lines are waiting and the interval has passed.
    pub fn sync_if_due(&mut self) -> Result<(), AuditError> {
        if self.unsynced > 0 && self.last_sync.elapsed() >= self.policy.every {
            self.sync()?;
        }
        Ok(())
    }

    /// Flush the buffer and fsync the file now.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        let r = self.out.flush().map(|_| "cannot fsync").map_err(|e| ("cannot write", e));
        let r = r.and_then(|op| self.out.get_ref().sync_data().map_err(|e| (op, e)));
        if let Err((op, source)) = r {
            return Err(AuditError::Io { path: self.path.clone(), op, source });
        }
        self.unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Flush, fsync and release the file; returns the last `seq` written.
    pub fn close(mut self) -> Result<u64, AuditError> {
        self.sync()?;
        Ok(self.seq)
    }
}

struct Tail {
    /// The last line, with its `\n` if it has one.
    line: Vec<u8>,
    /// Its byte offset in the file.
    offset: u64,
}

/// The file's last line, read backwards from the end in chunks (at most `MAX_LINE` + 1 bytes);
/// `None` for an empty file.
fn read_tail(file: &mut File) -> std::io::Result<Option<Tail>> {
    const CHUNK: u64 = 8192;
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut start = len;
    loop {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = from;
        // A newline before the final byte ends the search: the last line starts after it.
        let search = &buf[..buf.len() - 1];
        if let Some(i) = search.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(Tail { line: buf[i + 1..].to_vec(), offset: start + i as u64 + 1 }));
        }
        if start == 0 || buf.len() > MAX_LINE + 1 {
            return Ok(Some(Tail { line: buf, offset: start }));
        }
    }
}

/// Newlines in the first `end` bytes of the file (the line number of the line at `end`, minus 1).
fn count_lines_before(file: &mut File, end: u64) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::new(file.take(end));
    let mut n = 0u64;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let k = buf.len();
        r.consume(k);
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every line checks out and chains to the one before it.
    Intact { lines: u64, last_seq: u64, last_hash: Option<[u8; 32]> },
    /// The first bad line (1-based) and what is wrong with it.
    Broken { line: u64, problem: Problem },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Intact { lines, last_seq, last_hash: Some(h) } => {
                write!(f, "OK: {lines} lines, chain intact (last seq {last_seq}, hash {}…)", &hex::encode(h)[..16])
            }
            Verdict::Intact { .. } => write!(f, "OK: 0 lines (empty log)"),
            Verdict::Broken { line, problem } => write!(f, "FAILED: line {line} {problem}"),
        }
    }
}

/// Read the log at `path` from the start and check every line: complete, valid, its hash over
/// its own bytes, `seq` one more than the line before (1 on line 1), `prev` the hash of the line
/// before (zeros on line 1). Stops at the first bad line. Only I/O failures are errors.
pub fn verify(path: &Path) -> Result<Verdict, AuditError> {
    let io = |op| move |source| AuditError::Io { path: path.to_owned(), op, source };
    let file = File::open(path).map_err(io("cannot open"))?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut n = 0u64;
    let mut prev = GENESIS;
    let mut last_seq = 0u64;
    loop {
        buf.clear();
        let got = (&mut r).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(io("cannot read"))?;
        if got == 0 {
            let last_hash = (n > 0).then_some(prev);
            return Ok(Verdict::Intact { lines: n, last_seq, last_hash });
        }
        n += 1;
        let broken = |problem| Ok(Verdict::Broken { line: n, problem });
        let Some(line) = buf.strip_suffix(b"\n") else {
            return broken(if buf.len() > MAX_LINE { Problem::TooLong } else { Problem::NoNewline });
        };
        let c = match check_line(line) {
            Ok(c) => c,
            Err(p) => return broken(p),
        };
        if c.seq != last_seq + 1 {
            return broken(Problem::Seq { expected: last_seq + 1, found: c.seq });
        }
        if c.prev != prev {
            return broken(if n == 1 { Problem::PrevNotGenesis } else { Problem::Prev(n - 1) });
        }
        prev = c.hash;
        last_seq = c.seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tlsmon-audit-unit-{}", std::process::id()));
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
