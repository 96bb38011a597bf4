//! Sink, audit log, the verifier (`tlsmon audit verify`): reads a log, or a series of rolled
//! files, from the start and names the first file and line that is cut, edited, deleted,
//! inserted or out of order. Read-only; must never hold more than one line in memory.
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

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

/// Where the chain stands after the lines checked so far.
#[derive(Debug, Clone, Copy)]
struct Chain {
    prev: [u8; 32],
    last_seq: u64,
    lines: u64,
}

impl Chain {
    const START: Chain = Chain { prev: GENESIS, last_seq: 0, lines: 0 };
}

/// Read the log at `path` from the start and check every line: complete, valid, its hash over
/// its own bytes, `seq` one more than the line before (1 on line 1), `prev` the hash of the line
/// before (zeros on line 1). Stops at the first bad line. Only I/O failures are errors.
pub fn verify(path: &Path) -> Result<Verdict, AuditError> {
    let mut chain = Chain::START;
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
    let mut keyed = Vec::with_capacity(paths.len());
    for p in paths {
        match first_line_seq(p)? {
            Ok(seq) => keyed.push((seq.unwrap_or(u64::MAX), p.clone())),
            Err(problem) => return Ok(SeriesVerdict::Broken { file: p.clone(), line: 1, problem }),
        }
    }
    keyed.sort_by_key(|(seq, _)| *seq);
    let mut chain = Chain::START;
    let mut before: Option<&Path> = None;
    for (_, p) in &keyed {
        if let Some((line, problem)) = check_file(p, &mut chain, before)? {
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
        chain.prev = c.hash;
        chain.last_seq = c.seq;
        chain.lines += 1;
    }
}
