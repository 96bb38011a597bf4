//! `cargo xtask bench kernel`: the kernel programs' cost per packet (BPF_PROG_TEST_RUN, ours
//! against a no-op program) and the share of wire bytes that reaches userspace through the
//! ring buffer on a generated mix, and the cost of process attribution's socket hooks (per run,
//! and on a loopback connect/accept and a UDP send). Runs monitor's `kernel_bench` example as
//! root.
//! Must never report a figure it did not measure: the example prints what the kernel returned.
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::measure::{default_cpu, run_pinned};
use super::replay::MixArgs;
use super::{target_dir, workspace_root};

#[derive(Args)]
pub struct KernelArgs {
    /// Trials per figure (the median is printed).
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// The capture for the ring-buffer share (as for `bench replay`).
    #[command(flatten)]
    pub capture: MixArgs,
    /// Only the per-packet figures, not the ring-buffer share.
    #[arg(long)]
    pub no_mix: bool,
    /// CPU to pin the bench to (default: the highest CPU this process may use).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Only the packet kinds whose name contains this text (e.g. "TCP data", "ClientHello").
    #[arg(long)]
    pub only: Option<String>,
    /// Time this kernel object instead of the one built into tlsmon; give it twice (before,
    /// then after) to compare two builds in one run (the ring-buffer share is measured with
    /// the last one), e.g. a copy of
    /// target/release/build/monitor-*/out/aya-build/target/monitor-ebpf/bpfel-unknown-none/release/monitor-ebpf
    /// saved before a change.
    #[arg(long, value_name = "PATH")]
    pub object: Vec<std::path::PathBuf>,
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
    if let Some(only) = &a.only {
        cmd.args(["--only", only]);
    }
    for o in &a.object {
        cmd.arg("--object").arg(o);
    }
    check(run_pinned(&mut cmd, cpu)?.code, "kernel_bench packets")?;
    if a.only.is_some() {
        // A focused run: the hooks and the ring-buffer share belong to full runs.
        return Ok(());
    }
    let mut cmd = Command::new(&bin);
    cmd.arg("hooks");
    check(run_pinned(&mut cmd, cpu)?.code, "kernel_bench hooks")?;
    if a.no_mix {
        return Ok(());
    }
    let file = a.capture.path(&target_dir(&root))?;
    let mut cmd = Command::new(&bin);
    cmd.arg("mix").arg(&file);
    if let Some(o) = a.object.last() {
        cmd.arg("--object").arg(o);
    }
    check(run_pinned(&mut cmd, cpu)?.code, "kernel_bench mix")
}

fn check(code: i32, what: &str) -> Result<()> {
    if code != 0 {
        bail!("{what} failed (exit status {code})");
    }
    Ok(())
}
