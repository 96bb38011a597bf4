//! Sink, audit log, the writer: appends each event as the next hash-chained line, continuing
//! an existing log after checking its last line, syncs on a schedule, and rolls the file over
//! (by size or UTC day) without breaking the chain; with a signing key, appends signed
//! checkpoints (on a schedule, before a roll-over, at close). Must never rewrite or truncate a
//! line already written, append after a tail it cannot verify, overwrite a rolled file, or
//! share the file with a second writer.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::sign::{now_rfc3339, Checkpoint, CheckpointEvent, Reason, Signer, CHECKPOINT_TYPE};
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

/// When the log rolls over to a new file: before a line that would take the file past
/// `max_bytes`, and before the first line of a new UTC day when `daily`. The rolled file is
/// renamed `<log>.<seq of its first line, 10 digits>` (e.g. `audit.jsonl.0000000001`); the new
/// file's first line continues the chain (`seq` + 1, `prev` = the rolled file's last hash).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotatePolicy {
    pub max_bytes: Option<u64>,
    pub daily: bool,
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
    rotate: RotatePolicy,
    /// Bytes in the current file (written or buffered).
    size: u64,
    /// `seq` of the current file's first line (names it when it rolls over).
    first_seq: u64,
    /// UTC day (days since the epoch) the current file belongs to.
    day: u64,
    /// The last line's checkpoint reason, when the last line is a checkpoint.
    head_checkpoint: Option<Reason>,
    signing: Option<Signing>,
}

/// The signer of an [`AuditLog`] and when it last signed.
struct Signing {
    signer: Signer,
    /// Checkpoint this often while lines come in (`None`: only before a roll-over and at close).
    every: Option<Duration>,
    last: Instant,
    /// Bytes a checkpoint line can take at most (kept free under `max_bytes`).
    line_max: u64,
    /// `seq` signed by the last checkpoint written or found at open, and when it was written
    /// by this process (Unix seconds; `None` for one found at open).
    signed: Option<(u64, Option<i64>)>,
}

/// How often, and how long apart, opening retries a locked log before giving up (0.5 s).
const LOCK_TRIES: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(25);

impl AuditLog {
    /// Open `path` for appending, creating it if needed. An existing log continues: its last
    /// line must be complete and carry a valid hash, whose `seq` and `hash` the next line
    /// follows. The file is locked against a second writer for as long as this lives.
    pub fn open(path: &Path, policy: SyncPolicy) -> Result<Self, AuditError> {
        Self::open_rotating(path, policy, RotatePolicy::default())
    }

    /// [`open`](AuditLog::open), rolling the file over as `rotate` says. An empty (or new) log
    /// whose directory holds rolled files of it continues the chain of the latest one.
    pub fn open_rotating(path: &Path, policy: SyncPolicy, rotate: RotatePolicy) -> Result<Self, AuditError> {
        let io = |op| move |source| AuditError::Io { path: path.to_owned(), op, source };
        let mut file = open_locked(path)?;
        let size = file.metadata().map_err(io("cannot read the size of"))?.len();
        let last = match last_line(&mut file, path)? {
            Some(c) => Some(c),
            None => match latest_rolled(path).map_err(io("cannot list the rolled files of"))? {
                // Rolled over, then stopped before the next line: continue the rolled chain.
                Some(rolled) => {
                    let mut f = File::open(&rolled).map_err(|source| AuditError::Io {
                        path: rolled.clone(),
                        op: "cannot open",
                        source,
                    })?;
                    last_line(&mut f, &rolled)?
                }
                None => None,
            },
        };
        let (seq, prev) = last.as_ref().map_or((0, GENESIS), |c| (c.seq, c.hash));
        let head_checkpoint = last.and_then(|c| c.checkpoint).map(|cp| cp.reason);
        let first_seq = if size == 0 { seq + 1 } else { first_seq(&mut file).map_err(io("cannot read"))?.unwrap_or(0) };
        let day = if size == 0 {
            utc_day(std::time::SystemTime::now())
        } else {
            file.metadata().and_then(|m| m.modified()).map(utc_day).map_err(io("cannot read the time of"))?
        };
        Ok(AuditLog {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 16, file),
            seq,
            prev,
            policy,
            unsynced: 0,
            last_sync: Instant::now(),
            rotate,
            size,
            first_seq,
            day,
            head_checkpoint,
            signing: None,
        })
    }

    /// Sign checkpoints of the chain head with `signer`: every `every` while lines come in
    /// (`None`: never on a schedule), as the last line of a file about to roll over, and as
    /// the last line at [`close`](AuditLog::close) — unless the log already ends with one.
    pub fn sign(mut self, signer: Signer, every: Option<Duration>) -> Self {
        let probe = signer.checkpoint(u64::MAX, &[0; 32], Reason::Interval, now_rfc3339());
        let line = serde_json::to_string(&Line {
            seq: u64::MAX,
            prev: &hex::encode([0u8; 32]),
            event: &CheckpointEvent { kind: CHECKPOINT_TYPE, checkpoint: &probe },
        })
        .map_or(1024, |l| l.len());
        // The line as written (`,"hash":"<64>"}\n`), with room for a longer time or reason.
        let line_max = (line + HASH_KEY.len() + 64 + 3 + 16) as u64;
        let signed = self.head_checkpoint.map(|_| (self.seq.saturating_sub(1), None));
        self.signing = Some(Signing { signer, every, last: Instant::now(), line_max, signed });
        self
    }

    /// `seq` of the line signed by the latest checkpoint, and when this process signed it
    /// (Unix seconds; `None` for a checkpoint found at the end of the log at open); `None`
    /// when not signing or nothing was signed yet.
    pub fn signed(&self) -> Option<(u64, Option<i64>)> {
        self.signing.as_ref().and_then(|s| s.signed)
    }

    /// Sign the exit checkpoint unless the log already ends with one (done by
    /// [`close`](AuditLog::close); call it first to learn what was signed).
    pub fn seal(&mut self) -> Result<(), AuditError> {
        if self.head_checkpoint != Some(Reason::Exit) {
            self.checkpoint(Reason::Exit)?;
        }
        Ok(())
    }

    /// Append a signed checkpoint of the head now (nothing on an empty log or without a key).
    pub fn checkpoint(&mut self, reason: Reason) -> Result<(), AuditError> {
        let Some(s) = &self.signing else { return Ok(()) };
        if self.seq == 0 {
            return Ok(());
        }
        let cp: Checkpoint = s.signer.checkpoint(self.seq, &self.prev, reason, now_rfc3339());
        self.write_line(&CheckpointEvent { kind: CHECKPOINT_TYPE, checkpoint: &cp }, false)?;
        self.head_checkpoint = Some(reason);
        if let Some(s) = &mut self.signing {
            s.last = Instant::now();
            s.signed = Some((cp.seq, Some(time::OffsetDateTime::now_utc().unix_timestamp())));
        }
        self.sync()
    }

    /// Roll over before a line of `len` bytes if the policy says so.
    fn rotate_if_due(&mut self, len: u64) -> Result<(), AuditError> {
        if self.size == 0 {
            return Ok(());
        }
        let reserve = self.signing.as_ref().map_or(0, |s| s.line_max);
        let full = self.rotate.max_bytes.is_some_and(|max| self.size + len + reserve > max);
        let new_day = self.rotate.daily && utc_day(std::time::SystemTime::now()) != self.day;
        if full || new_day {
            self.roll_over()?;
        }
        Ok(())
    }

    /// Sync, rename the current file to its rolled name, and go on in a new file at `path`.
    /// The chain state (`seq`, `prev`) carries over, so the new first line chains to the
    /// rolled file's last one. When signing, the rolled file ends with a checkpoint.
    pub fn roll_over(&mut self) -> Result<(), AuditError> {
        if self.head_checkpoint.is_none() {
            self.checkpoint(Reason::Rotate)?;
        }
        self.sync()?;
        let rolled = rolled_name(&self.path, self.first_seq);
        let io = |op| {
            let path = rolled.clone();
            move |source| AuditError::Io { path, op, source }
        };
        if rolled.exists() {
            return Err(io("cannot roll over: a file of that name exists")(std::io::ErrorKind::AlreadyExists.into()));
        }
        std::fs::rename(&self.path, &rolled).map_err(io("cannot roll over to"))?;
        let file = open_locked(&self.path)?;
        // The rename and the new file must survive a crash like the lines do.
        if let Some(dir) = self.path.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io("cannot fsync the directory of"))?;
        }
        self.out = BufWriter::with_capacity(1 << 16, file);
        self.size = 0;
        self.first_seq = self.seq + 1;
        self.day = utc_day(std::time::SystemTime::now());
        Ok(())
    }

    /// `seq` of the last line written (0 for an empty log).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Append one event (any object; tlsmon passes `sink::json::event(..)`) as the next line.
    pub fn append<E: Serialize>(&mut self, event: &E) -> Result<(), AuditError> {
        self.write_line(event, true)?;
        self.head_checkpoint = None;
        if self.unsynced >= self.policy.max_lines {
            self.sync()
        } else {
            self.sync_if_due()
        }
    }

    /// Write `event` as the next line (rolling over first if due and `may_roll`).
    fn write_line<E: Serialize>(&mut self, event: &E, may_roll: bool) -> Result<(), AuditError> {
        let (mut line, mut hash) = self.encode(event)?;
        if may_roll {
            let before = self.seq;
            self.rotate_if_due(line.len() as u64)?;
            // A checkpoint closed the rolled file: the line follows it.
            if self.seq != before {
                (line, hash) = self.encode(event)?;
            }
        }
        self.out.write_all(line.as_bytes()).map_err(|source| AuditError::Io {
            path: self.path.clone(),
            op: "cannot write",
            source,
        })?;
        self.seq += 1;
        self.prev = hash;
        self.size += line.len() as u64;
        self.unsynced += 1;
        Ok(())
    }

    /// `event` as the next line of the chain (`\n` included), and its hash.
    fn encode<E: Serialize>(&self, event: &E) -> Result<(String, [u8; 32]), AuditError> {
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
        let mut line = String::with_capacity(body.len() + HASH_KEY.len() + 67);
        line.push_str(open);
        line.push_str(",\"hash\":\"");
        line.push_str(&hex::encode(hash));
        line.push_str("\"}\n");
        Ok((line, hash))
    }

    /// Sign a checkpoint if one is due; flush and fsync if lines are waiting and the interval
    /// has passed.
    pub fn sync_if_due(&mut self) -> Result<(), AuditError> {
        let due = self.head_checkpoint.is_none()
            && self.signing.as_ref().is_some_and(|s| s.every.is_some_and(|every| s.last.elapsed() >= every));
        if due {
            self.checkpoint(Reason::Interval)?;
        }
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

    /// Sign the exit checkpoint (when signing, unless the log already ends with one), flush,
    /// fsync and release the file; returns the last `seq` written.
    pub fn close(mut self) -> Result<u64, AuditError> {
        self.seal()?;
        self.sync()?;
        Ok(self.seq)
    }
}

/// Open (creating) `path` for appending and take its lock. A lock held for a moment is waited
/// out: a child process forked (between fork and exec) while the previous writer had the file
/// open holds its lock briefly.
fn open_locked(path: &Path) -> Result<File, AuditError> {
    let io = |op| move |source| AuditError::Io { path: path.to_owned(), op, source };
    let file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io("cannot open"))?;
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(LOCK_RETRY);
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(AuditError::Locked { path: path.to_owned() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock")(e)),
        }
    }
}

/// The file's last line, checked (`None` when empty); a bad one is refused, naming its line.
fn last_line(file: &mut File, path: &Path) -> Result<Option<super::Checked>, AuditError> {
    let io = |op| move |source| AuditError::Io { path: path.to_owned(), op, source };
    let Some(tail) = read_tail(file).map_err(io("cannot read the last line"))? else { return Ok(None) };
    let checked = match tail.line.strip_suffix(b"\n") {
        None => Err(Problem::NoNewline),
        Some(l) if l.len() > MAX_LINE => Err(Problem::TooLong),
        Some(l) => check_line(l),
    };
    match checked {
        Ok(c) => Ok(Some(c)),
        Err(problem) => {
            let line = count_lines_before(file, tail.offset).map_err(io("cannot read"))? + 1;
            Err(AuditError::CorruptTail { path: path.to_owned(), line, problem })
        }
    }
}

/// `seq` of the file's first line, if it has one that parses.
fn first_seq(file: &mut File) -> std::io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::new();
    BufReader::new(file.take(MAX_LINE as u64)).read_until(b'\n', &mut buf)?;
    let v: Option<serde_json::Value> = serde_json::from_slice(buf.trim_ascii_end()).ok();
    Ok(v.and_then(|v| v.get("seq")?.as_u64()))
}

/// Days since the epoch, UTC.
fn utc_day(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400)
}

/// `<log>.<first seq, 10 digits>`: the rolled files of a log sort in chain order by name.
pub fn rolled_name(path: &Path, first_seq: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{first_seq:010}"));
    PathBuf::from(name)
}

/// The rolled file of `path` whose suffix (first seq) is highest, if any.
fn latest_rolled(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else { return Ok(None) };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name.to_str().and_then(|n| n.strip_prefix(base)?.strip_prefix('.')) else { continue };
        if n.len() < 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(seq) = n.parse::<u64>() else { continue };
        if best.as_ref().is_none_or(|(b, _)| seq > *b) {
            best = Some((seq, entry.path()));
        }
    }
    Ok(best.map(|(_, p)| p))
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
