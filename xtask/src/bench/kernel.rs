//! `cargo xtask bench kernel`: the kernel programs' cost per packet (BPF_PROG_TEST_RUN, ours
//! against a no-op program) and the share of wire bytes that reaches userspace through the
//! ring buffer on a generated mix. Runs monitor's `kernel_bench` example as root.
//! Must never report a figure it did not measure: the example prints what the kernel returned.
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::measure::{default_cpu, run_pinned};
use super::replay::ensure_capture;
use super::{target_dir, workspace_root};

#[derive(Args)]
pub struct KernelArgs {
    /// Trials per figure (the median is printed).
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Capture for the ring-buffer share. Default: target/bench/mix.pcap, generated (or reused)
    /// as for `bench replay`.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Size of the generated capture in MB; ignored with --file.
    #[arg(long, default_value_t = 1100)]
    pub size_mb: u64,
    /// Generator seed; ignored with --file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only the per-packet figures, not the ring-buffer share.
    #[arg(long)]
    pub no_mix: bool,
    /// CPU to pin the bench to (default: the highest CPU this process may use).
    #[arg(long)]
    pub cpu: Option<usize>,
}

pub fn run(a: KernelArgs) -> Result<()> {
    if !crate::setup::is_root() {
        bail!("`bench kernel` loads eBPF programs (BPF_PROG_TEST_RUN) and must run as root");
    }
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p monitor --example kernel_bench");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "monitor", "--example", "kernel_bench"])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the kernel_bench example failed: {status}");
    }
    let bin = target_dir(&root).join("release/examples/kernel_bench");
    let cpu = a.cpu.or_else(default_cpu);
    let mut cmd = Command::new(&bin);
    cmd.args(["packets", "--trials", &a.trials.to_string()]);
    check(run_pinned(&mut cmd, cpu)?.code, "kernel_bench packets")?;
    if a.no_mix {
        return Ok(());
    }
    let file = match a.file {
        Some(f) => f,
        None => {
            let f = target_dir(&root).join("bench/mix.pcap");
            ensure_capture(&f, a.size_mb, a.seed)?;
            f
        }
    };
    let mut cmd = Command::new(&bin);
    cmd.arg("mix").arg(&file);
    check(run_pinned(&mut cmd, cpu)?.code, "kernel_bench mix")
}

fn check(code: i32, what: &str) -> Result<()> {
    if code != 0 {
        bail!("{what} failed (exit status {code})");
    }
    Ok(())
}
