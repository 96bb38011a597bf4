//! Sink, audit log, the verifier (`tlsmon audit verify`): reads a log, or a series of rolled
//! files, from the start and names the first file and line that is cut, edited, deleted,
//! inserted or out of order; with public keys, checks every checkpoint's signature and says
//! which lines no signature covers. Read-only; must never hold more than one line in memory.
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::sign::{Checkpoint, PublicKey, Reason};
use super::{check_line, AuditError, Problem, GENESIS, MAX_LINE};

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

/// What `verify_series` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesVerdict {
    /// Every file checks out and each one's first line chains to the last line of the one before.
    Intact { files: Vec<PathBuf>, lines: u64, last_seq: u64, last_hash: Option<[u8; 32]> },
    /// The first bad line: the file, its line number in that file (1-based), what is wrong.
    Broken { file: PathBuf, line: u64, problem: Problem },
}

impl std::fmt::Display for SeriesVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeriesVerdict::Intact { files, lines, last_seq, last_hash } => {
                let hash = last_hash.map_or_else(|| "none".to_string(), |h| format!("{}…", &hex::encode(h)[..16]));
                write!(
                    f,
                    "OK: {} files, {lines} lines, chain intact (last seq {last_seq}, hash {hash}); in order:",
                    files.len()
                )?;
                for p in files {
                    write!(f, " {}", p.display())?;
                }
                Ok(())
            }
            SeriesVerdict::Broken { file, line, problem } => {
                write!(f, "FAILED: {} line {line} {problem}", file.display())
            }
        }
    }
}

/// A checkpoint line that checked out: where it is and what it signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointAt {
    pub file: PathBuf,
    /// Its line number in `file` (1-based).
    pub line: u64,
    /// The checkpoint as written (`seq` is the line it signs, the one before it).
    pub checkpoint: Checkpoint,
}

/// Lines at the end of a log that no checkpoint covers: from `first_line` of `file` (seq
/// `first_seq`) to the last line (seq `last_seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    pub file: PathBuf,
    pub first_line: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Whether checkpoint signatures were checked, and with which keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signatures {
    /// No public key given: checkpoints were checked against the chain only.
    NotChecked,
    /// Every checkpoint up to the verdict's end verified with one of these keys (by key id).
    Checked { key_ids: Vec<String> },
}

/// What [`verify_series_keyed`] found: the chain verdict (a bad checkpoint is a
/// [`SeriesVerdict::Broken`] line like any other) and what the checkpoints say.
///
/// For a report: [`signatures_valid`](SignedVerdict::signatures_valid) is "signatures valid",
/// [`sealed`](SignedVerdict::sealed) "every line covered and closed at a clean shutdown".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVerdict {
    pub chain: SeriesVerdict,
    pub signatures: Signatures,
    /// Checkpoints that checked out (before the broken line, if any).
    pub checkpoints: u64,
    /// The last of them.
    pub last_checkpoint: Option<CheckpointAt>,
    /// Lines after the last checkpoint (all lines when there is none); `None` when the log
    /// ends with a checkpoint or is empty. Meaningless when the chain is broken.
    pub uncovered: Option<Uncovered>,
    /// One file was given: the first line of the display is [`Verdict`]'s.
    pub one_file: bool,
}

impl SignedVerdict {
    /// The chain is intact, keys were given and every checkpoint verified with one of them,
    /// and there is at least one.
    pub fn signatures_valid(&self) -> bool {
        matches!(self.chain, SeriesVerdict::Intact { .. })
            && matches!(self.signatures, Signatures::Checked { .. })
            && self.checkpoints > 0
    }

    /// [`signatures_valid`](SignedVerdict::signatures_valid), every line is covered by a
    /// signature, and the last line is the exit checkpoint of a clean shutdown.
    pub fn sealed(&self) -> bool {
        self.signatures_valid()
            && self.uncovered.is_none()
            && self.last_checkpoint.as_ref().is_some_and(|c| c.checkpoint.reason == Reason::Exit)
    }

    /// `tlsmon audit verify`'s exit code: 1 broken (chain, or a checkpoint that does not match
    /// the chain or whose signature fails); with keys, 3 when intact and validly signed but not
    /// sealed (a tail no signature covers, or no exit checkpoint at the end); else 0.
    pub fn exit_code(&self) -> i32 {
        match (&self.chain, &self.signatures) {
            (SeriesVerdict::Broken { .. }, _) => 1,
            (_, Signatures::NotChecked) => 0,
            _ if self.sealed() => 0,
            _ => 3,
        }
    }

    fn chain_line(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.chain, self.one_file) {
            (SeriesVerdict::Intact { lines, last_seq, last_hash, .. }, true) => std::fmt::Display::fmt(
                &Verdict::Intact { lines: *lines, last_seq: *last_seq, last_hash: *last_hash },
                f,
            ),
            (SeriesVerdict::Broken { line, problem, .. }, true) => {
                std::fmt::Display::fmt(&Verdict::Broken { line: *line, problem: problem.clone() }, f)
            }
            (chain, false) => std::fmt::Display::fmt(chain, f),
        }
    }
}

impl std::fmt::Display for SignedVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chain_line(f)?;
        let at = |c: &CheckpointAt| {
            let file = if self.one_file { String::new() } else { format!("{} ", c.file.display()) };
            let cp = &c.checkpoint;
            format!("{file}line {} (signs seq {}, {} at {} on {})", c.line, cp.seq, cp.reason, cp.time, cp.host)
        };
        let last = self.last_checkpoint.as_ref().map(at);
        let lines = match &self.chain {
            SeriesVerdict::Intact { lines, .. } => *lines,
            // An unsigned log checked without a key: the chain verdict alone, as ever.
            SeriesVerdict::Broken { .. } if self.signatures == Signatures::NotChecked && self.checkpoints == 0 => {
                return Ok(());
            }
            SeriesVerdict::Broken { file, line, problem } => {
                let since = last.map_or_else(|| "none".to_owned(), |l| l.to_string());
                write!(f, "\nlast verified checkpoint: {since}")?;
                if matches!(problem, Problem::CheckpointHash | Problem::CheckpointSig(_)) {
                    let from = self.last_checkpoint.as_ref().filter(|c| &c.file == file).map_or(1, |c| c.line + 1);
                    write!(f, "; the rewritten lines are among lines {from} to {line} of this file (or in the files before it)")?;
                }
                return Ok(());
            }
        };
        match &self.signatures {
            // An unsigned log checked without a key: the chain verdict alone, as ever.
            Signatures::NotChecked => match &last {
                None => Ok(()),
                Some(l) => write!(
                    f,
                    "\nsignatures: NOT checked (no --key given); {} checkpoints, the last at {l}",
                    self.checkpoints
                ),
            },
            Signatures::Checked { key_ids } => {
                let keys = key_ids.join(", ");
                match &last {
                    None if lines == 0 => write!(f, "\nWARNING: empty log: nothing is signed (a log cut to nothing looks the same)"),
                    None => write!(
                        f,
                        "\nWARNING: no checkpoint: none of the {lines} lines is covered by a signature (written without --audit-sign-key, or rewritten without its checkpoints)"
                    ),
                    Some(l) => {
                        write!(f, "\nsignatures: OK: {} checkpoints valid (key {keys}); last verified checkpoint: {l}", self.checkpoints)?;
                        let in_file = |u: &Uncovered| if self.one_file { String::new() } else { format!(" of {}", u.file.display()) };
                        match (&self.uncovered, self.sealed()) {
                            (_, true) => write!(f, "\nsealed: every line is covered by a signature and the log ends with the exit checkpoint of a clean shutdown"),
                            (Some(u), _) => write!(
                                f,
                                "\nWARNING: lines {}{} onwards (seq {} to {}) are not covered by a signature: the log does not end with an exit checkpoint. The agent is still running (the next checkpoint will cover them), or it crashed or was killed, or lines were cut off or appended after the last checkpoint",
                                u.first_line, in_file(u), u.first_seq, u.last_seq
                            ),
                            (None, false) => write!(
                                f,
                                "\nWARNING: the log ends with a checkpoint of reason \"{}\", not \"exit\": the agent is still running, or did not shut down cleanly, or the lines after it were cut off",
                                self.last_checkpoint.as_ref().map_or(Reason::Interval, |c| c.checkpoint.reason)
                            ),
                        }
                    }
                }
            }
        }
    }
}

/// Where the chain stands after the lines checked so far, and what its checkpoints said.
#[derive(Debug, Clone)]
struct Chain<'k> {
    prev: [u8; 32],
    last_seq: u64,
    lines: u64,
    /// Keys to check signatures with (none: not checked).
    keys: &'k [PublicKey],
    checkpoints: u64,
    last_checkpoint: Option<CheckpointAt>,
    uncovered: Option<Uncovered>,
}

impl<'k> Chain<'k> {
    fn start(keys: &'k [PublicKey]) -> Self {
        Chain { prev: GENESIS, last_seq: 0, lines: 0, keys, checkpoints: 0, last_checkpoint: None, uncovered: None }
    }

    /// Check checkpoint `cp` at `line` of `path` against the chain so far (and its signature).
    fn checkpoint(&mut self, cp: Checkpoint, path: &Path, line: u64) -> Result<(), Problem> {
        if cp.seq != self.last_seq {
            return Err(Problem::CheckpointSeq { signed: cp.seq, chain: self.last_seq });
        }
        if cp.hash != hex::encode(self.prev) {
            return Err(Problem::CheckpointHash);
        }
        if !self.keys.is_empty() {
            let key = self.keys.iter().find(|k| k.key_id() == cp.key_id);
            match key {
                None => return Err(Problem::CheckpointKey(cp.key_id)),
                Some(k) if !k.verifies(&cp) => return Err(Problem::CheckpointSig(cp.key_id)),
                Some(_) => {}
            }
        }
        self.checkpoints += 1;
        self.uncovered = None;
        self.last_checkpoint = Some(CheckpointAt { file: path.to_owned(), line, checkpoint: cp });
        Ok(())
    }
}

/// Read the log at `path` from the start and check every line: complete, valid, its hash over
/// its own bytes, `seq` one more than the line before (1 on line 1), `prev` the hash of the line
/// before (zeros on line 1). Stops at the first bad line. Only I/O failures are errors.
pub fn verify(path: &Path) -> Result<Verdict, AuditError> {
    let mut chain = Chain::start(&[]);
    Ok(match check_file(path, &mut chain, None)? {
        Some((line, problem)) => Verdict::Broken { line, problem },
        None => Verdict::Intact {
            lines: chain.lines,
            last_seq: chain.last_seq,
            last_hash: (chain.lines > 0).then_some(chain.prev),
        },
    })
}

/// Check a series of files written by one rolling log (`audit.jsonl.0000000001`, …,
/// `audit.jsonl`) as one chain. The files are put in chain order by the `seq` of their first
/// line, whatever order they were given in (a shell glob puts the live file first); empty
/// files go last. The first file must start the chain (seq 1, prev zeros); each next file's
/// first line must carry the next seq and, as `prev`, the last hash of the file before it, so
/// a removed, truncated or edited file is named. Only I/O failures are errors.
pub fn verify_series(paths: &[PathBuf]) -> Result<SeriesVerdict, AuditError> {
    Ok(verify_series_keyed(paths, &[])?.chain)
}

/// [`verify_series`] (one file or several), and every checkpoint line: it must sign the `seq`
/// and `hash` of the line before it and, when `keys` is not empty, carry a valid signature by
/// one of them (several keys: a log signed before and after a key change). With no keys the
/// signatures are not checked ([`Signatures::NotChecked`]). Says which checkpoint verified
/// last and which lines at the end no checkpoint covers. Only I/O failures are errors.
pub fn verify_series_keyed(paths: &[PathBuf], keys: &[PublicKey]) -> Result<SignedVerdict, AuditError> {
    let mut chain = Chain::start(keys);
    let chain_verdict = series(paths, &mut chain)?;
    let signatures = if keys.is_empty() {
        Signatures::NotChecked
    } else {
        Signatures::Checked { key_ids: keys.iter().map(|k| k.key_id().to_owned()).collect() }
    };
    Ok(SignedVerdict {
        chain: chain_verdict,
        signatures,
        checkpoints: chain.checkpoints,
        last_checkpoint: chain.last_checkpoint,
        uncovered: chain.uncovered,
        one_file: paths.len() == 1,
    })
}

fn series(paths: &[PathBuf], chain: &mut Chain) -> Result<SeriesVerdict, AuditError> {
    let mut keyed = Vec::with_capacity(paths.len());
    for p in paths {
        match first_line_seq(p)? {
            Ok(seq) => keyed.push((seq.unwrap_or(u64::MAX), p.clone())),
            Err(problem) => return Ok(SeriesVerdict::Broken { file: p.clone(), line: 1, problem }),
        }
    }
    keyed.sort_by_key(|(seq, _)| *seq);
    let mut before: Option<&Path> = None;
    for (_, p) in &keyed {
        if let Some((line, problem)) = check_file(p, chain, before)? {
            return Ok(SeriesVerdict::Broken { file: p.clone(), line, problem });
        }
        before = Some(p);
    }
    Ok(SeriesVerdict::Intact {
        files: keyed.into_iter().map(|(_, p)| p).collect(),
        lines: chain.lines,
        last_seq: chain.last_seq,
        last_hash: (chain.lines > 0).then_some(chain.prev),
    })
}

/// The `seq` of a file's first line (`None` for an empty file), or what is wrong with that line.
fn first_line_seq(path: &Path) -> Result<Result<Option<u64>, Problem>, AuditError> {
    let io = |op| move |source| AuditError::Io { path: path.to_owned(), op, source };
    let file = File::open(path).map_err(io("cannot open"))?;
    let mut buf = Vec::new();
    BufReader::new(file.take(MAX_LINE as u64 + 1)).read_until(b'\n', &mut buf).map_err(io("cannot read"))?;
    if buf.is_empty() {
        return Ok(Ok(None));
    }
    let Some(line) = buf.strip_suffix(b"\n") else {
        return Ok(Err(if buf.len() > MAX_LINE { Problem::TooLong } else { Problem::NoNewline }));
    };
    Ok(check_line(line).map(|c| Some(c.seq)))
}

/// Check every line of `path`, continuing `chain`; `before` is the file the chain came from
/// (for the message when this file does not follow it). The first bad line and its problem.
fn check_file(path: &Path, chain: &mut Chain, before: Option<&Path>) -> Result<Option<(u64, Problem)>, AuditError> {
    let io = |op| move |source| AuditError::Io { path: path.to_owned(), op, source };
    let file = File::open(path).map_err(io("cannot open"))?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let got = (&mut r).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(io("cannot read"))?;
        if got == 0 {
            return Ok(None);
        }
        n += 1;
        let Some(line) = buf.strip_suffix(b"\n") else {
            return Ok(Some((n, if buf.len() > MAX_LINE { Problem::TooLong } else { Problem::NoNewline })));
        };
        let c = match check_line(line) {
            Ok(c) => c,
            Err(p) => return Ok(Some((n, p))),
        };
        let expected = chain.last_seq + 1;
        if c.seq != expected {
            let problem = match before {
                Some(_) if n == 1 && c.seq > expected => Problem::FileGap { expected, found: c.seq },
                _ => Problem::Seq { expected, found: c.seq },
            };
            return Ok(Some((n, problem)));
        }
        if c.prev != chain.prev {
            let problem = match before {
                _ if chain.last_seq == 0 => Problem::PrevNotGenesis,
                Some(b) if n == 1 => Problem::PrevFile(b.display().to_string()),
                _ => Problem::Prev(n - 1),
            };
            return Ok(Some((n, problem)));
        }
        match c.checkpoint {
            Some(cp) => {
                if let Err(p) = chain.checkpoint(cp, path, n) {
                    return Ok(Some((n, p)));
                }
            }
            None => {
                if let Some(u) = &mut chain.uncovered {
                    u.last_seq = c.seq;
                } else {
                    let file = path.to_owned();
                    chain.uncovered = Some(Uncovered { file, first_line: n, first_seq: c.seq, last_seq: c.seq });
                }
            }
        }
        chain.prev = c.hash;
        chain.last_seq = c.seq;
        chain.lines += 1;
    }
}
