//! `cargo xtask bench`: benchmarks that print figures and their ratio to the project's goals.
//! Must never report a figure it did not measure; each bench is one subcommand (add yours to `Bench`).
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

mod compare;
mod floods;
mod kernel;
mod measure;
mod netlab;
mod replay;
mod soak;

#[derive(Args)]
pub struct BenchArgs {
    /// Which bench to run; without one, list them.
    #[command(subcommand)]
    pub which: Option<Bench>,
}

#[derive(Subcommand)]
pub enum Bench {
    /// Replay throughput (MB/s) and peak RSS of `tlsmon replay --format none` on one core.
    ///
    /// Over a generated 1.1 GB hospital-mix capture; compared with nDPI (210 MB/s per core)
    /// and the project goal (1000 MB/s per core).
    Replay(replay::ReplayArgs),
    /// Kernel programs: ns per packet against a no-op program, and ring-buffer bytes / wire bytes.
    ///
    /// Per packet via BPF_PROG_TEST_RUN (goals: non-matching ≤ no-op + 40 ns, captured
    /// ClientHello ≤ 350 ns); the ring-buffer share over the generated mix (goal < 2%). Root.
    Kernel(kernel::KernelArgs),
    /// Peak RSS and loss counters of tlsmon replay and live under hostile floods (issue 13).
    ///
    /// 65 536 flows of maximal out-of-order data, 2 M SYN-only flows, 200 k half TLS records,
    /// 50 k flows of overlapping segments: generated into target/floods/, replayed with
    /// `tlsmon replay --stats`, and sent with tcpreplay over a veth pair in the namespace
    /// tlsmon-flood to `tlsmon live --stats` (root). Compared with --budget-mb + --overhead-mb.
    Floods(floods::FloodsArgs),
    /// Live endurance: the mix looped through a veth into `tlsmon live` (metrics, audit log).
    ///
    /// RSS and open fds sampled over --minutes with their slope over the second half, then
    /// SIGTERM under load (time to exit, audit verify) and a restart that must continue the
    /// audit chain. Root; tcpreplay.
    Soak(soak::SoakArgs),
    /// Side by side on one capture: pcap record-loop floor, tlsmon replay (1 and N threads,
    /// JSON and none), ndpiReader and tshark — MB/s, peak RSS, handshakes, ratios (issue 20).
    ///
    /// Medians of --runs, page cache warm; one-thread rows pinned to one CPU. ndpiReader
    /// (apt: libndpi-bin) and tshark are installed when missing. With --live (root): the
    /// capture sent by parallel tcpreplay streams over a veth into `tlsmon live` at stepped
    /// rates; the highest rate with no ring-buffer loss and every handshake, and what limited it.
    Compare(compare::CompareArgs),
}

pub fn run(a: BenchArgs) -> Result<()> {
    match a.which {
        None => {
            list();
            Ok(())
        }
        Some(Bench::Replay(r)) => replay::run(r),
        Some(Bench::Kernel(k)) => kernel::run(k),
        Some(Bench::Floods(f)) => floods::run(f),
        Some(Bench::Soak(s)) => soak::run(s),
        Some(Bench::Compare(c)) => compare::run(c),
    }
}

fn list() {
    let cmd = Bench::augment_subcommands(clap::Command::new("bench"));
    println!("available benches (run `cargo xtask bench NAME --help` for options):");
    for sc in cmd.get_subcommands().filter(|sc| !sc.is_hide_set()) {
        let about = sc.get_about().map(|s| s.to_string()).unwrap_or_default();
        println!("  {:<8} {}", sc.get_name(), about.lines().next().unwrap_or(""));
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

/// `cargo build --release -p PKG` in the workspace.
pub(crate) fn build_release(root: &Path, pkg: &str) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p {pkg}");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", pkg])
        .current_dir(root)
        .status()
        .with_context(|| format!("running cargo build --release -p {pkg}"))?;
    if !status.success() {
        bail!("cargo build --release -p {pkg} failed: {status}");
    }
    Ok(())
}
