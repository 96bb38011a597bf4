//! Snapshot: the JSON events (and the JSON report) of `tlsmon replay` over every capture of the
//! shared corpus and the generated PHI captures, one file each, so two builds can be compared
//! byte for byte with `diff -r` (refactors must not change a byte of output).
//! Must never write outside the output folder it is given, nor copy a capture.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

#[derive(clap::Args)]
pub struct SnapshotArgs {
    /// Folder for the outputs (created; existing files are overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The tlsmon binary to snapshot (default: this checkout's release build, built first).
    #[arg(long, value_name = "FILE")]
    bin: Option<PathBuf>,
}

/// Writes `<out>/<capture>.events.json` (stdout of `--format json`), `<capture>.report.json`
/// (`--report json`) and `<capture>.status` (exit code and stderr) for each capture, and the same
/// three for all corpus captures in one run (`all-corpus.*`: flows go on across files).
pub fn run(a: SnapshotArgs) -> Result<()> {
    let root = crate::test::workspace_root();
    let bin = match a.bin {
        Some(b) => b,
        None => {
            let st = Command::new("cargo").args(["build", "--release", "-p", "monitor"]).current_dir(&root).status()?;
            if !st.success() {
                bail!("cargo build --release failed");
            }
            root.join("target/release/tlsmon")
        }
    };
    let phi = root.join("target/test-data/phi");
    crate::gen_phi::run(crate::gen_phi::GenPhiArgs { out_dir: phi.clone() })?;
    let corpus = root.join("../shared/corpus/pcaps");
    let mut corpus_files = captures(&corpus)?;
    corpus_files.sort();
    let mut phi_files = captures(&phi)?;
    phi_files.sort();
    fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for f in corpus_files.iter().chain(&phi_files) {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        replay(&bin, std::slice::from_ref(f), &a.out, &name)?;
    }
    replay(&bin, &corpus_files, &a.out, "all-corpus")?;
    println!(
        "snapshot: {} captures ({} corpus, {} PHI) and one all-corpus run into {}",
        corpus_files.len() + phi_files.len(),
        corpus_files.len(),
        phi_files.len(),
        a.out.display()
    );
    Ok(())
}

fn captures(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if matches!(ext, "pcap" | "pcapng" | "cap") {
            out.push(p);
        }
    }
    Ok(out)
}

fn replay(bin: &Path, files: &[PathBuf], out: &Path, name: &str) -> Result<()> {
    for (what, args) in
        [("events", &["--format", "json"][..]), ("report", &["--format", "none", "--report", "json"][..])]
    {
        let o = Command::new(bin)
            .arg("replay")
            .args(args)
            .args(files)
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        fs::write(out.join(format!("{name}.{what}.json")), &o.stdout)?;
        let status = format!("exit {:?}\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr));
        fs::write(out.join(format!("{name}.{what}.status")), status)?;
    }
    Ok(())
}
