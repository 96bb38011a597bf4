//! Fuzzing: seed corpora from the real captures, cargo-fuzz builds, libFuzzer runs with their
//! figures (executions, coverage, crashes) — `cargo xtask fuzz` and the smoke run of the tests.
//! Must never hide a crash: any artifact a run leaves makes the command fail and is named.
use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

use crate::{setup, test};

/// The fuzz targets (fuzz/Cargo.toml `[[bin]]`s), one per parser of untrusted bytes.
pub const TARGETS: &[&str] = &[
    "capture_file",
    "frame_decode",
    "ring_record",
    "tls_stream",
    "certificate",
    "plaintext",
    "pipeline_packets",
    "probe_result",
    "ssh_stream",
    "tds_stream",
    "quic_initial",
    "dtls_stream",
];

/// Largest input libFuzzer makes, and the size seeds are cut to: big enough for a whole flow
/// head (16 KiB per direction) or a small capture, small enough to keep executions fast.
const MAX_LEN: usize = 64 << 10;
/// Seconds one input may take before libFuzzer reports it as a timeout (a parser that crawls).
const INPUT_TIMEOUT_S: u32 = 10;
/// Seconds per target in the smoke run of `cargo xtask test`.
pub const SMOKE_SECONDS: u64 = 5;

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Minutes of fuzzing in all, split evenly across the targets run.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Run only this target (repeatable); default: all of them.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    target: Vec<String>,
    /// Write the seed corpora (fuzz/corpus/<target>/seed-*) and stop.
    #[arg(long)]
    seed_only: bool,
    /// Run the smoke of `cargo xtask test` instead: a debug build without a sanitizer, 5 s per
    /// target from the seeds.
    #[arg(long)]
    smoke: bool,
}

/// How the targets are built.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Release with AddressSanitizer: `cargo xtask fuzz`, and the smoke run of `--fuzz-asan`.
    Asan,
    /// Debug (overflow checks and debug assertions on) without a sanitizer: the smoke run of
    /// `cargo xtask test`. It builds in a fraction of the sanitizer build's time and still
    /// finds panics, overflows and hangs; memory errors in unsafe code need `Asan`.
    Quick,
}

impl Build {
    fn cargo_fuzz_args(self) -> &'static [&'static str] {
        match self {
            Build::Asan => &["fuzz", "build"],
            Build::Quick => &["fuzz", "build", "--dev", "--sanitizer", "none"],
        }
    }

    /// Where cargo-fuzz puts the targets.
    fn bin_dir(self) -> PathBuf {
        let profile = if self == Build::Asan { "release" } else { "debug" };
        fuzz_dir().join("target/x86_64-unknown-linux-gnu").join(profile)
    }
}

pub fn run(args: FuzzArgs) -> Result<()> {
    if args.smoke {
        return smoke(Build::Quick);
    }
    setup::cargo_fuzz()?;
    seeds()?;
    if args.seed_only {
        return Ok(());
    }
    build(Build::Asan)?;
    let targets: Vec<&str> =
        if args.target.is_empty() { TARGETS.to_vec() } else { args.target.iter().map(String::as_str).collect() };
    let secs = (args.minutes * 60 / targets.len() as u64).max(1);
    let corpus = fuzz_dir().join("corpus");
    let mut total = Stats::default();
    let mut crashed = Vec::new();
    for t in &targets {
        // The target's corpus dir takes what libFuzzer finds: the next run starts from there.
        let s = fuzz_target(Build::Asan, t, &[corpus.join(t)], &[format!("-max_total_time={secs}")])?;
        println!("{}", s.line(t));
        total.execs += s.execs;
        crashed.extend(s.artifacts.iter().cloned());
    }
    println!("fuzz: {} targets, {} s each, {} executions in all", targets.len(), secs, total.execs);
    crash_report(&crashed)
}

/// The smoke run of the tests: seeds, a build of every target, and [`SMOKE_SECONDS`] of
/// fuzzing each from the seeds (findings go to a scratch corpus, the mutator seed is fixed).
/// Fails on a crash. (The unit tests of the input formats run with `cargo test`.)
pub fn smoke(kind: Build) -> Result<()> {
    let start = Instant::now();
    setup::cargo_fuzz()?;
    seeds()?;
    build(kind)?;
    let built = start.elapsed().as_secs_f64();
    let scratch = fuzz_dir().join("target/smoke-corpus");
    let mut crashed = Vec::new();
    for t in TARGETS {
        let out = scratch.join(t);
        if out.exists() {
            fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
        }
        fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let dirs = [out, fuzz_dir().join("corpus").join(t)];
        let s = fuzz_target(kind, t, &dirs, &[format!("-max_total_time={SMOKE_SECONDS}"), "-seed=1".into()])?;
        println!("{}", s.line(t));
        crashed.extend(s.artifacts.iter().cloned());
    }
    println!(
        "fuzz smoke: {} targets in {:.0} s ({built:.0} s of it seeds and build)",
        TARGETS.len(),
        start.elapsed().as_secs_f64()
    );
    crash_report(&crashed)
}

fn crash_report(crashed: &[PathBuf]) -> Result<()> {
    if crashed.is_empty() {
        return Ok(());
    }
    for a in crashed {
        println!("fuzz: crash: {}", a.display());
    }
    bail!(
        "{} fuzz crash(es); reproduce with `fuzz/target/x86_64-unknown-linux-gnu/release/TARGET ARTIFACT`, \
         minimise with `cargo +nightly fuzz tmin TARGET ARTIFACT`, then fix it and keep the bytes as a unit test",
        crashed.len()
    )
}

fn fuzz_dir() -> PathBuf {
    test::workspace_root().join("fuzz")
}

/// Seed corpora from the shared captures and the generated PHI captures (plaintext protocols),
/// written in the targets' own input formats by monitor's `fuzz_seeds` example (release, stable:
/// what `cargo test --release` already built).
fn seeds() -> Result<()> {
    let root = test::workspace_root();
    let phi = test::target_dir(&root).join("test-data/phi");
    crate::gen_phi::run(crate::gen_phi::GenPhiArgs { out_dir: phi.clone() })?;
    let corpus = root.join("../shared/corpus/pcaps");
    if !corpus.is_dir() {
        bail!("{} is missing: the seeds come from the shared corpus", corpus.display());
    }
    let (out, max_len) = (fuzz_dir().join("corpus"), MAX_LEN.to_string());
    let mut cmd = test::cargo(&["run", "--release", "-q", "-p", "monitor", "--example", "fuzz_seeds", "--"]);
    // The repository's own captures (OpenSSH sessions) seed the SSH target.
    cmd.arg(&out).arg(&max_len).arg(&corpus).arg(&phi).arg(root.join("tests/captures"));
    setup::run_cmd(&mut cmd, "writing the fuzz seeds")
}

/// `cargo fuzz build`: every target, as `kind` says.
fn build(kind: Build) -> Result<()> {
    let start = Instant::now();
    setup::run_cmd(&mut test::nightly_cargo(kind.cargo_fuzz_args()), "cargo +nightly fuzz build")?;
    println!("fuzz: targets built in {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// What one libFuzzer run reported.
#[derive(Default)]
struct Stats {
    execs: u64,
    execs_per_s: u64,
    cov: u64,
    ft: u64,
    corpus: u64,
    artifacts: Vec<PathBuf>,
}

impl Stats {
    fn line(&self, target: &str) -> String {
        format!(
            "fuzz: {target:<17} {:>10} execs ({:>6}/s)  cov {:>5}  ft {:>6}  corpus {:>5}  crashes {}",
            self.execs,
            self.execs_per_s,
            self.cov,
            self.ft,
            self.corpus,
            self.artifacts.len()
        )
    }

    /// Takes in one line of libFuzzer's output.
    fn read(&mut self, line: &str) {
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            self.execs = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            self.execs_per_s = v.trim().parse().unwrap_or(0);
        } else if let Some(path) = line.split("Test unit written to ").nth(1) {
            self.artifacts.push(PathBuf::from(path.trim()));
        } else if line.starts_with('#') {
            // `#4096	pulse  cov: 1203 ft: 3301 corp: 151/24Kb …`: the latest figures win.
            let field = |name: &str| {
                let mut words = line.split_whitespace();
                words.find(|w| *w == name).and_then(|_| words.next()).and_then(|v| v.split('/').next()?.parse().ok())
            };
            self.cov = field("cov:").unwrap_or(self.cov);
            self.ft = field("ft:").unwrap_or(self.ft);
            self.corpus = field("corp:").unwrap_or(self.corpus);
        }
    }
}

/// Runs a built target over `corpora` (the first takes new inputs) with `extra` libFuzzer
/// flags; its output goes to `fuzz/target/fuzz-logs/<target>.log`.
fn fuzz_target(kind: Build, target: &str, corpora: &[PathBuf], extra: &[String]) -> Result<Stats> {
    let fuzz = fuzz_dir();
    let bin = kind.bin_dir().join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    let logs = fuzz.join("target/fuzz-logs");
    for d in corpora.iter().chain([&artifacts, &logs]) {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let mut log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut child = Command::new(&bin)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(format!("-max_len={MAX_LEN}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
        .arg("-print_final_stats=1")
        .args(extra)
        .args(corpora)
        .current_dir(&fuzz)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} (built?)", bin.display()))?;
    let stderr = child.stderr.take().context("libFuzzer stderr")?;
    let mut stats = Stats::default();
    for line in BufReader::new(stderr).lines() {
        let line = line.context("reading libFuzzer output")?;
        std::io::Write::write_all(&mut log, format!("{line}\n").as_bytes())?;
        stats.read(&line);
    }
    let status = child.wait().context("waiting for libFuzzer")?;
    if !status.success() && stats.artifacts.is_empty() {
        bail!("{target}: libFuzzer failed ({status}) without an artifact; see {}", log_path.display());
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn reads_libfuzzer_figures() {
        let mut s = Stats::default();
        for line in [
            "#2\tINITED cov: 100 ft: 120 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#65536\tpulse  cov: 1203 ft: 3301 corp: 151/24Kb lim: 652 exec/s: 21845 rss: 61Mb",
            "==1== ERROR: libFuzzer: deadly signal",
            "artifact_prefix='/f/artifacts/x/'; Test unit written to /f/artifacts/x/crash-0a1b",
            "stat::number_of_executed_units: 70001",
            "stat::average_exec_per_sec:     23333",
        ] {
            s.read(line);
        }
        assert_eq!((s.execs, s.execs_per_s, s.cov, s.ft, s.corpus), (70001, 23333, 1203, 3301, 151));
        assert_eq!(s.artifacts, [std::path::PathBuf::from("/f/artifacts/x/crash-0a1b")]);
    }
}
