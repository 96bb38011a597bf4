//! Sink, audit log, the verifier (`tlsmon audit verify`): reads a log from the start and
//! names the first line that is cut, edited, deleted, inserted or out of order. Read-only;
//! must never hold more than one line in memory.
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

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
