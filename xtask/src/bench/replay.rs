//! `cargo xtask bench replay`: per-core offline throughput of `tlsmon replay --format none`
//! over a generated capture. Must never time a cold page cache or the generator itself.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::measure::{default_cpu, run_pinned, warm_and_count, Run};
use super::{build_release, target_dir, workspace_root};
use crate::gen;

const NDPI_MBPS: f64 = 210.0;
const GOAL_MBPS: f64 = 1000.0;

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub capture: MixArgs,
    /// Timed runs (best and median are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Stand-in command instead of tlsmon, run with `sh -c`; `{}` is replaced by the capture
    /// path, e.g. --cmd 'cat {} > /dev/null'. Exit codes 0 and 1 count as success.
    #[arg(long)]
    pub cmd: Option<String>,
    /// CPU to pin the child to (default: the highest CPU this process may use).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Do not run `cargo build --release -p monitor` first.
    #[arg(long)]
    pub no_build: bool,
}

/// Which capture a bench reads: a given file, or the generated mix.
#[derive(Args)]
pub struct MixArgs {
    /// Capture to read. Default: target/bench/mix.pcap, generated (or reused if it was made
    /// with the same --size-mb, --seed and generator version).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Size of the generated capture in MB (10^6 bytes); ignored with --file.
    #[arg(long, default_value_t = 1100)]
    pub size_mb: u64,
    /// Generator seed; ignored with --file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl MixArgs {
    /// The capture's path, generating the mix first when no --file was given.
    pub fn path(&self, target: &Path) -> Result<PathBuf> {
        match &self.file {
            Some(f) => Ok(f.clone()),
            None => {
                let f = target.join("bench/mix.pcap");
                ensure_capture(&f, self.size_mb, self.seed)?;
                Ok(f)
            }
        }
    }
}

fn meta_path(pcap: &Path) -> PathBuf {
    let mut s = pcap.as_os_str().to_os_string();
    s.push(".meta.json");
    PathBuf::from(s)
}

/// The default capture, generated unless an identical one (per its .meta.json) is present.
pub(super) fn ensure_capture(path: &Path, size_mb: u64, seed: u64) -> Result<()> {
    let want = json!({ "generator": gen::GEN_VERSION, "size_mb": size_mb, "seed": seed });
    let meta = meta_path(path);
    if let (Ok(text), Ok(md)) = (fs::read_to_string(&meta), fs::metadata(path)) {
        let have: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let same = ["generator", "size_mb", "seed"].iter().all(|k| have.get(k) == want.get(k));
        if same && have.get("bytes").and_then(Value::as_u64) == Some(md.len()) {
            eprintln!("bench: reusing {} ({} MB, seed {seed})", path.display(), md.len() / 1_000_000);
            return Ok(());
        }
    }
    eprintln!("bench: generating {} ({size_mb} MB, seed {seed})", path.display());
    let _ = fs::remove_file(&meta);
    let s = gen::generate(path, size_mb, seed, true)?;
    eprintln!("gen: {}", s.line());
    let mut m = want;
    m["bytes"] = json!(s.bytes);
    m["packets"] = json!(s.packets);
    fs::write(&meta, format!("{m:#}\n")).with_context(|| format!("writing {}", meta.display()))?;
    Ok(())
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

pub fn run(a: ReplayArgs) -> Result<()> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let root = workspace_root();
    let target = target_dir(&root);
    let file = a.capture.path(&target)?;
    let (label, mut make): (String, Box<dyn FnMut() -> Command>) = match &a.cmd {
        Some(c) => {
            let line = c.replace("{}", &shell_quote(&file));
            let l = line.clone();
            (
                format!("sh -c {line:?}"),
                Box::new(move || {
                    let mut cmd = Command::new("sh");
                    cmd.args(["-c", &l]);
                    cmd
                }),
            )
        }
        None => {
            if !a.no_build {
                build_release(&root, "monitor")?;
            }
            let bin = target.join("release/tlsmon");
            if !bin.is_file() {
                bail!("{} not found (build it, or pass --cmd to time a stand-in)", bin.display());
            }
            let f = file.clone();
            (
                format!("{} replay --format none {}", bin.display(), file.display()),
                Box::new(move || {
                    let mut cmd = Command::new(&bin);
                    cmd.arg("replay").args(["--format", "none"]).arg(&f);
                    cmd
                }),
            )
        }
    };
    let (bytes, packets) = warm_and_count(&file)?;
    if bytes == 0 {
        bail!("{} is empty", file.display());
    }
    let cpu = a.cpu.or_else(default_cpu);
    eprintln!("bench: {label} × {} on CPU {}", a.runs, cpu.map_or("any".into(), |c| c.to_string()));
    let mut runs: Vec<Run> = Vec::with_capacity(a.runs);
    for i in 1..=a.runs {
        let mut cmd = make();
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let r = run_pinned(&mut cmd, cpu)?;
        let mbps = bytes as f64 / 1e6 / r.wall.as_secs_f64();
        eprintln!(
            "  run {i}: {:.3} s, {mbps:.1} MB/s, peak RSS {:.1} MiB, exit {}",
            r.wall.as_secs_f64(),
            r.max_rss_kib as f64 / 1024.0,
            r.code
        );
        if !(0..=1).contains(&r.code) {
            bail!("{label} failed with exit status {} on run {i}", r.code);
        }
        runs.push(r);
    }
    report(&file, bytes, packets, cpu, &runs);
    Ok(())
}

fn report(file: &Path, bytes: u64, packets: Option<u64>, cpu: Option<usize>, runs: &[Run]) {
    let mut secs: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
    secs.sort_by(f64::total_cmp);
    let best = secs[0];
    let median = if secs.len() % 2 == 1 {
        secs[secs.len() / 2]
    } else {
        (secs[secs.len() / 2 - 1] + secs[secs.len() / 2]) / 2.0
    };
    let mb = bytes as f64 / 1e6;
    let (best_mbps, median_mbps) = (mb / best, mb / median);
    let rss = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    let pps = packets.map_or(String::new(), |p| format!(", {:.2} Mpps median", p as f64 / 1e6 / median));
    println!(
        "replay bench: {} ({mb:.1} MB{}), {} run(s), 1 core (CPU {})",
        file.display(),
        packets.map_or(String::new(), |p| format!(", {p} packets")),
        runs.len(),
        cpu.map_or("unpinned".into(), |c| c.to_string())
    );
    println!("  throughput: best {best_mbps:.1} MB/s ({best:.3} s), median {median_mbps:.1} MB/s ({median:.3} s){pps}");
    println!("  peak RSS:   {rss:.1} MiB");
    println!(
        "  vs nDPI {NDPI_MBPS:.0} MB/s: {:.1}× (best {:.1}×)   vs goal {GOAL_MBPS:.0} MB/s: {:.1}× (best {:.1}×)",
        median_mbps / NDPI_MBPS,
        best_mbps / NDPI_MBPS,
        median_mbps / GOAL_MBPS,
        best_mbps / GOAL_MBPS
    );
}
