//! Sink, period report, the audit-log reader: groups the files given into one series per
//! agent, verifies each series' hash chain (`audit::verify_series`), and streams its lines
//! into the model. Lines that are no event (signed checkpoints, future types) are counted and
//! skipped. Read-only; must never hold more than one line of a log in memory.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fields::{audit_hash, audit_seq};
use super::Period;
use crate::sink::audit::{self, AuditError, SeriesVerdict, MAX_LINE};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("audit log {}: {op}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The verification stamp of one agent's audit log (a series of rolled files).
#[derive(Clone, Debug, Serialize)]
pub struct Stamp {
    /// The reporting agent: the name of the directory its log was collected in (with the
    /// log's file name when one directory holds several logs). The audit lines carry no host.
    pub agent: String,
    /// The files, in chain order.
    pub files: Vec<String>,
    /// `intact` or `broken`.
    pub chain: &'static str,
    /// The first bad line, when broken: file, line number in it, what is wrong.
    pub first_bad: Option<BadLine>,
    pub lines: u64,
    pub first_seq: Option<u64>,
    pub first_hash: Option<String>,
    pub last_seq: Option<u64>,
    pub last_hash: Option<String>,
    /// Lines of type `checkpoint` (signed checkpoints) seen.
    pub checkpoint_lines: u64,
    /// The keyed verification of the signed checkpoints (`tlsmon report --key PUB`): "valid …",
    /// "INVALID …" (the chain stamp names the line) or "not checked" without a key.
    pub signatures: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub problem: String,
}

/// What `signatures` says without a public key.
pub const SIGNATURES_NOT_CHECKED: &str = "not checked";

/// The stamp's words for a keyed verification.
fn signatures_word(v: &audit::SignedVerdict) -> String {
    use audit::Signatures;
    let keys = match &v.signatures {
        Signatures::NotChecked => return SIGNATURES_NOT_CHECKED.to_string(),
        Signatures::Checked { key_ids } => key_ids.join(", "),
    };
    if matches!(v.chain, SeriesVerdict::Broken { .. }) {
        return format!("INVALID after {} good checkpoints (key {keys}): see the chain", v.checkpoints);
    }
    let Some(last) = &v.last_checkpoint else {
        return "no checkpoint: nothing is signed".to_string();
    };
    let c = &last.checkpoint;
    let head = format!("valid (key {keys}): {} checkpoints, the last signs seq {} at {}", v.checkpoints, c.seq, c.time);
    match &v.uncovered {
        _ if v.sealed() => format!("{head}; sealed at a clean exit, every line covered"),
        Some(u) => format!("{head}; lines from seq {} to {} are not covered by a signature", u.first_seq, u.last_seq),
        None => {
            format!("{head}; the log does not end with an exit checkpoint (still open, or the agent stopped uncleanly)")
        }
    }
}

/// `audit.jsonl.0000000001` → `audit.jsonl` (a rolled file's log name).
fn log_name(p: &Path) -> String {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match name.rsplit_once('.') {
        Some((base, seq)) if seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit()) => base.to_string(),
        _ => name,
    }
}

/// The files grouped into one series per (directory, log name), with the agent's name.
pub fn group(paths: &[PathBuf]) -> Vec<(String, Vec<PathBuf>)> {
    let mut by: BTreeMap<(PathBuf, String), Vec<PathBuf>> = BTreeMap::new();
    for p in paths {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        by.entry((dir, log_name(p))).or_default().push(p.clone());
    }
    let mut per_dir: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (dir, _) in by.keys() {
        *per_dir.entry(dir.clone()).or_default() += 1;
    }
    by.into_iter()
        .map(|((dir, log), files)| {
            let d = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
            let agent = if per_dir.get(&dir).copied().unwrap_or(0) > 1 { format!("{d}/{log}") } else { d };
            (agent, files)
        })
        .collect()
}

/// Read one line (at most `MAX_LINE` bytes) into `buf`; false at the end of the file.
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>, path: &Path) -> Result<bool, ReportError> {
    buf.clear();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', buf).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        op: "cannot read",
        source,
    })?;
    Ok(n > 0)
}

fn open(path: &Path) -> Result<BufReader<File>, ReportError> {
    let f = File::open(path).map_err(|source| ReportError::Io { path: path.to_owned(), op: "cannot open", source })?;
    Ok(BufReader::with_capacity(1 << 16, f))
}

/// The files of one series in chain order: by their first line's `seq` (unreadable or empty
/// files last, by name).
fn chain_order(files: &[PathBuf]) -> Result<Vec<PathBuf>, ReportError> {
    let mut keyed = Vec::with_capacity(files.len());
    let mut buf = Vec::new();
    for p in files {
        let mut r = open(p)?;
        let seq = if next_line(&mut r, &mut buf, p)? {
            serde_json::from_slice::<serde_json::Value>(&buf).ok().as_ref().and_then(audit_seq)
        } else {
            None
        };
        keyed.push((seq.unwrap_or(u64::MAX), p.clone()));
    }
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, p)| p).collect())
}

/// Verify and read one agent's series into `period`; its stamp.
fn read_series(
    agent: String,
    files: &[PathBuf],
    keys: &[audit::PublicKey],
    idx: usize,
    period: &mut Period,
) -> Result<Stamp, ReportError> {
    let files = chain_order(files)?;
    let verdict = audit::verify_series_keyed(&files, keys)?;
    let signatures = signatures_word(&verdict);
    let (chain, first_bad) = match verdict.chain {
        SeriesVerdict::Intact { .. } => ("intact", None),
        SeriesVerdict::Broken { file, line, problem } => {
            ("broken", Some(BadLine { file: file.display().to_string(), line, problem: problem.to_string() }))
        }
    };
    let mut stamp = Stamp {
        agent,
        files: files.iter().map(|f| f.display().to_string()).collect(),
        chain,
        first_bad,
        lines: 0,
        first_seq: None,
        first_hash: None,
        last_seq: None,
        last_hash: None,
        checkpoint_lines: 0,
        signatures,
    };
    let mut buf = Vec::new();
    for p in &files {
        let mut r = open(p)?;
        while next_line(&mut r, &mut buf, p)? {
            stamp.lines += 1;
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf) else {
                period.unreadable += 1;
                continue;
            };
            if let (Some(seq), Some(hash)) = (audit_seq(&v), audit_hash(&v)) {
                if stamp.first_seq.is_none() {
                    stamp.first_seq = Some(seq);
                    stamp.first_hash = Some(hash.to_string());
                }
                stamp.last_seq = Some(seq);
                stamp.last_hash = Some(hash.to_string());
            }
            if super::fields::Ev(&v).kind() == Some("checkpoint") {
                stamp.checkpoint_lines += 1;
            }
            period.add(&v, Some(idx));
        }
    }
    Ok(stamp)
}

/// Read the audit logs (one file, a rolled series, or the series of many agents, grouped by
/// directory) into `period`, with one verification stamp per agent.
pub fn read_logs(paths: &[PathBuf], keys: &[audit::PublicKey], period: &mut Period) -> Result<(), ReportError> {
    for (idx, (agent, files)) in group(paths).into_iter().enumerate() {
        let stamp = read_series(agent, &files, keys, idx, period)?;
        period.stamps.push(stamp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_grouped_by_directory_and_log() {
        let p = |s: &str| PathBuf::from(s);
        let files = [
            p("/nonexistent/ward-a/audit.jsonl"),
            p("/nonexistent/ward-a/audit.jsonl.0000000001"),
            p("/nonexistent/ward-b/audit.jsonl"),
            p("/nonexistent/ward-b/other.jsonl"),
        ];
        let g = group(&files);
        let names: Vec<(&str, usize)> = g.iter().map(|(a, f)| (a.as_str(), f.len())).collect();
        assert_eq!(names, [("ward-a", 2), ("ward-b/audit.jsonl", 1), ("ward-b/other.jsonl", 1)]);
        assert_eq!(log_name(&p("x/audit.jsonl.0000000042")), "audit.jsonl");
        assert_eq!(log_name(&p("x/audit.jsonl.old")), "audit.jsonl.old");
    }
}
