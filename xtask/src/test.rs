//! Test, demo and lint entry points: set up, then drive cargo and the release `tlsmon` binary.
//! Must never skip the privileged eBPF tests quietly: `test` refuses to run without root.
use std::{
    env,
    ffi::OsString,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

use crate::setup;

#[derive(clap::Args)]
pub struct TestArgs {
    /// Skip the setup step (apt packages, rust-src, bpf-linker).
    #[arg(long)]
    no_setup: bool,
    /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Skip the setup step (apt packages, rust-src, bpf-linker).
    #[arg(long)]
    no_setup: bool,
    /// Directory holding the corpus captures (default: ../shared/corpus/pcaps next to the
    /// workspace).
    #[arg(long)]
    corpus: Option<PathBuf>,
}

/// Captures the demo replays: a modern handshake, legacy and broken ones, PHI in clear.
const DEMO_PCAPS: &[&str] = &[
    "zeek__tls1.2.pcap",
    "suricata__tls13-x25519mlkem768.pcap",
    "zeek__tls1_1.pcap",
    "zeek__ssl-v2.pcap",
    "ndpi__selfsigned.pcap",
    "ndpi__hl7.pcap",
];
/// The capture shown as JSON lines.
const DEMO_JSON_PCAP: &str = "zeek__tls1.2.pcap";
const DEMO_JSON_LINES: usize = 12;
/// Characters shown of each JSON line (events carry long cipher lists).
const DEMO_JSON_WIDTH: usize = 400;

pub fn run(args: TestArgs) -> Result<()> {
    let start = Instant::now();
    if !args.no_setup {
        setup::run()?;
    }
    if !setup::is_root() {
        bail!(
            "`cargo xtask test` runs privileged eBPF tests (program load, BPF_PROG_TEST_RUN, \
             network namespaces) and must run as root, as CI does"
        );
    }
    // The default members (monitor, monitor-common, xtask) include monitor/tests/ebpf_load.rs,
    // which loads the kernel object that monitor/build.rs builds with bpf-linker.
    let mut cmd = cargo(&["test", "--release"]);
    cmd.args(&args.cargo_args);
    let totals = run_tests(&mut cmd)?;
    let secs = start.elapsed().as_secs_f64();
    println!("xtask test: {} test binaries in {secs:.0} s (cargo test --release)", totals.binaries);
    // Last line in the plain `N passed, N failed, N skipped` form (ignored tests count as
    // skipped).
    println!("tests: {} passed, {} failed, {} skipped", totals.passed, totals.failed, totals.ignored);
    if !totals.ok {
        bail!("tests failed");
    }
    if totals.binaries == 0 {
        bail!("cargo test ran no test binary");
    }
    Ok(())
}

/// Sums of the harness' `test result:` lines.
#[derive(Default)]
struct Totals {
    binaries: u64,
    passed: u64,
    failed: u64,
    ignored: u64,
    ok: bool,
}

/// Runs cargo test, echoing its stdout while adding up the `test result:` lines.
fn run_tests(cmd: &mut Command) -> Result<Totals> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let mut totals = Totals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            totals.binaries += 1;
            totals.passed += count_before(rest, " passed");
            totals.failed += count_before(rest, " failed");
            totals.ignored += count_before(rest, " ignored");
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    totals.ok = status.success() && totals.failed == 0;
    Ok(totals)
}

/// In `ok. 3 passed; 0 failed; …`, the number right before `word`.
fn count_before(s: &str, word: &str) -> u64 {
    s.find(word).and_then(|i| s[..i].rsplit([' ', '.', ';']).next()?.parse().ok()).unwrap_or(0)
}

pub fn demo(args: DemoArgs) -> Result<()> {
    let root = workspace_root();
    let corpus = args.corpus.unwrap_or_else(|| root.join("../shared/corpus/pcaps"));
    if !corpus.is_dir() {
        bail!(
            "corpus not found at {}: the demo replays the shared capture corpus \
             (../shared/corpus next to the workspace); pass --corpus DIR",
            corpus.display()
        );
    }
    if !args.no_setup {
        setup::run()?;
    }
    setup::run_cmd(&mut cargo(&["build", "--release", "--package", "monitor"]), "cargo build --release -p monitor")?;
    let tlsmon = target_dir(&root).join("release/tlsmon");

    for name in DEMO_PCAPS {
        let pcap = corpus.join(name);
        if !pcap.is_file() {
            bail!("corpus capture {} is missing", pcap.display());
        }
        println!("\n=== tlsmon replay {name}");
        let status = Command::new(&tlsmon)
            .args(["replay", "--format", "text"])
            .arg(&pcap)
            .status()
            .with_context(|| format!("starting {}", tlsmon.display()))?;
        report_exit(name, status)?;
    }

    let pcap = corpus.join(DEMO_JSON_PCAP);
    println!("\n=== tlsmon replay --format json {DEMO_JSON_PCAP} (first {DEMO_JSON_LINES} lines, cut at {DEMO_JSON_WIDTH} chars)");
    let out = Command::new(&tlsmon)
        .args(["replay", "--format", "json"])
        .arg(&pcap)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", tlsmon.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().take(DEMO_JSON_LINES) {
        match line.char_indices().nth(DEMO_JSON_WIDTH) {
            Some((cut, _)) => println!("{} …", &line[..cut]),
            None => println!("{line}"),
        }
    }
    let total = text.lines().count();
    if total > DEMO_JSON_LINES {
        println!("… ({} more lines)", total - DEMO_JSON_LINES);
    }
    report_exit(DEMO_JSON_PCAP, out.status)
}

/// A replay's exit code is its verdict (`--fail-on`); only a crash fails the demo.
fn report_exit(name: &str, status: std::process::ExitStatus) -> Result<()> {
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => {
            println!("(exit status {code}: verdict for {name})");
            Ok(())
        }
        None => bail!("tlsmon replay {name} was killed ({status})"),
    }
}

pub fn lint() -> Result<()> {
    setup::run_cmd(&mut cargo(&["fmt", "--all", "--check"]), "cargo fmt --check")?;
    setup::run_cmd(&mut cargo(&["clippy", "--all-targets", "--", "-D", "warnings"]), "cargo clippy")?;
    println!("lint: ok");
    Ok(())
}

/// The workspace root (this crate's parent directory).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

/// `cargo ARGS` run from the workspace root (so default-members apply).
fn cargo(args: &[&str]) -> Command {
    let cargo: OsString = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(workspace_root());
    cmd
}

#[cfg(test)]
mod tests {
    use super::count_before;

    #[test]
    fn parses_harness_result_line() {
        let rest = "ok. 12 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.10s";
        assert_eq!(count_before(rest, " passed"), 12);
        assert_eq!(count_before(rest, " failed"), 1);
        assert_eq!(count_before(rest, " ignored"), 3);
        assert_eq!(count_before("FAILED. 0 passed; 2 failed;", " failed"), 2);
    }
}
