//! Test and lint entry points: set up, then drive cargo and the release `tlsmon` binary.
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

use crate::{fuzz, setup};

#[path = "gen/expiring_soon.rs"]
mod expiring_soon;

#[derive(clap::Args)]
pub struct TestArgs {
    /// Skip the setup step (apt packages, rust-src, bpf-linker).
    #[arg(long)]
    no_setup: bool,
    /// Build the fuzz targets for the smoke run with AddressSanitizer (release) instead of the
    /// quick debug build without a sanitizer (a cold sanitizer build took 8-14 minutes here).
    /// Either way every target is built and run from its seeds for a few seconds.
    #[arg(long)]
    fuzz_asan: bool,
    /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

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
    let data = test_data(&target_dir(&workspace_root()))?;
    // The default members (monitor, monitor-common, xtask) include monitor/tests/ebpf_load.rs,
    // which loads the kernel object that monitor/build.rs builds with bpf-linker.
    // Every test binary runs even after one fails, so one run names every failure.
    let mut cmd = cargo(&["test", "--release", "--no-fail-fast"]);
    cmd.env("TLSMON_TEST_DATA", &data);
    // Installed by setup: tests/kubernetes.rs fails without it when run from here.
    cmd.env("TLSMON_KUBERNETES_VALIDATE", setup::kubernetes_validate_venv()?.join("bin/kubernetes-validate"));
    cmd.env("TLSMON_PYTHON", setup::kubernetes_validate_venv()?.join("bin/python"));
    // Installed by setup: tests/ecs_events.rs checks the events against it.
    cmd.env("TLSMON_ECS_REFERENCE", setup::ecs_reference_file()?);
    cmd.args(&args.cargo_args);
    let totals = run_tests(&mut cmd)?;
    // Every fuzz target built and run briefly from its seeds, so none can rot; a filtered run
    // leaves it out.
    let smoke = if args.cargo_args.is_empty() {
        let t = Instant::now();
        let r = fuzz::smoke(if args.fuzz_asan { fuzz::Build::Asan } else { fuzz::Build::Quick });
        if let Err(e) = &r {
            println!("fuzz smoke: FAILED: {e:#}");
        }
        Some((r.is_ok(), t.elapsed().as_secs_f64()))
    } else {
        println!("fuzz smoke: skipped (a cargo test filter was given)");
        None
    };
    let secs = start.elapsed().as_secs_f64();
    println!("xtask test: {} test binaries in {secs:.0} s (cargo test --release)", totals.binaries);
    if let Some((ok, s)) = smoke {
        let what = if args.fuzz_asan { "smoke (AddressSanitizer)" } else { "smoke (debug, no sanitizer)" };
        println!("xtask test: fuzz {what} {} in {s:.0} s", if ok { "ok" } else { "FAILED" });
    }
    // Last line in the plain `N passed, N failed, N skipped` form (ignored tests count as
    // skipped).
    println!("tests: {} passed, {} failed, {} skipped", totals.passed, totals.failed, totals.ignored);
    if !totals.ok {
        bail!("tests failed");
    }
    if smoke.is_some_and(|(ok, _)| !ok) {
        bail!("fuzz smoke failed");
    }
    if totals.binaries == 0 {
        bail!("cargo test ran no test binary");
    }
    Ok(())
}

/// Size of the benchmark-style mix the no-false-positive test replays.
const TEST_MIX_MB: u64 = 30;

/// Writes the generated test data into `target/test-data`: the synthetic PHI captures with
/// their manifest (`gen-phi`), `tls/cert-expiring-7d.pcap` and a small benchmark mix (`gen`).
/// Deterministic, so a rerun writes the same bytes; the mix is kept when its size and generator
/// version match.
fn test_data(target: &Path) -> Result<PathBuf> {
    let dir = target.join("test-data");
    crate::gen_phi::run(crate::gen_phi::GenPhiArgs { out_dir: dir.join("phi") })?;
    // A certificate under 7 days from expiry (the 7-day alert's end-to-end test).
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).with_context(|| format!("creating {}", tls.display()))?;
    let path = tls.join(expiring_soon::FILE);
    std::fs::write(&path, expiring_soon::capture().context("building the 7-day certificate capture")?)
        .with_context(|| format!("writing {}", path.display()))?;
    let mix = dir.join("mix.pcap");
    let stamp = dir.join("mix.version");
    let want = format!("gen {} size {TEST_MIX_MB} seed 1\n", crate::gen::GEN_VERSION);
    if !mix.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let s = crate::gen::generate(&mix, TEST_MIX_MB, 1, false)?;
        std::fs::write(&stamp, want).with_context(|| format!("writing {}", stamp.display()))?;
        println!("test data: {}: {}", mix.display(), s.line());
    }
    Ok(dir)
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

pub fn lint() -> Result<()> {
    setup::run_cmd(&mut cargo(&["fmt", "--all", "--check"]), "cargo fmt --check")?;
    setup::run_cmd(&mut cargo(&["clippy", "--all-targets", "--", "-D", "warnings"]), "cargo clippy")?;
    // The fuzz crate is a workspace of its own, built with nightly: check its targets, input
    // formats and seed generator here, without the sanitizer or cargo-fuzz.
    // `--locked`: fuzz/Cargo.lock must already match its manifests.
    check_fuzz_targets()?;
    println!("lint: ok");
    Ok(())
}

/// The workspace root (this crate's parent directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf()
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

/// Compile every fuzz target, its input formats and tests (nightly, no sanitizer, no
/// cargo-fuzz). `--locked`: fuzz/Cargo.lock must already match its manifests.
fn check_fuzz_targets() -> Result<()> {
    setup::run_cmd(
        &mut nightly_cargo(&["check", "--locked", "--manifest-path", "fuzz/Cargo.toml", "--all-targets"]),
        "cargo +nightly check (fuzz targets)",
    )
}

/// `cargo +nightly ARGS` run from the workspace root. Through `rustup run`: the `cargo` this
/// process was started by (`$CARGO`) is a toolchain's own binary, which ignores `+nightly`.
pub(crate) fn nightly_cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo"]).args(args).current_dir(workspace_root());
    cmd
}

/// `cargo ARGS` run from the workspace root (so default-members apply).
pub(crate) fn cargo(args: &[&str]) -> Command {
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
