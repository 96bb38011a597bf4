//! Sink, audit log, the writer: appends each event as the next hash-chained line, continuing
//! an existing log after checking its last line, and syncs on a schedule. Must never rewrite or
//! truncate a line already written, append after a tail it cannot verify, or share the file
//! with a second writer.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{check_line, digest, AuditError, Problem, GENESIS, HASH_KEY, MAX_LINE};

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
