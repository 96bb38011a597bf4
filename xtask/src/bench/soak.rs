//! `cargo xtask bench soak`: live endurance. Loops the benchmark mix (tcpreplay, bounded rate
//! and loop count) through a veth into `tlsmon live` with /metrics and an audit log, samples RSS
//! and open fds, fits their slope over the second half; then SIGTERM under load (time to exit,
//! audit verify), a restart on the same audit log under load, SIGTERM again, and a check that
//! the chain continues across the restart. Root.
//! Must never touch the host's interfaces or leave anything behind: the veth pair, tlsmon and
//! tcpreplay live in a namespace it creates and deletes on every exit path.
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

mod lab;

use super::netlab::{stop_on_signals, Ended, Netns};
use super::replay::ensure_capture;
use super::{build_release, target_dir, workspace_root};
use lab::{inventory_cost, nap, row, sample, start_load, Sample, Tlsmon, HEADER};
use lab::{LISTEN, LOAD_IF, MON_IF, NET, NS};

/// Flatness thresholds over the second half of the run. RSS: 64 KiB/min is 3.75 MiB/h or
/// 90 MiB/day, a growth an agent restarted at each upgrade would not notice for days, while one
/// leaked 16-byte heap block per event at this bench's event rate (hundreds a second) would
/// show as a multiple of it; allocator and page noise (±a few hundred KiB) over ≥ 5 minutes
/// stays well below it. fds: fewer than one fd per 10 minutes.
const RSS_FLAT_KIB_PER_MIN: f64 = 64.0;
const FDS_FLAT_PER_MIN: f64 = 0.1;
/// SIGTERM under load must end the process within this (goal: "a few seconds").
const EXIT_GOAL: Duration = Duration::from_secs(5);
/// After this the process is killed and the bench fails.
pub(super) const EXIT_LIMIT: Duration = Duration::from_secs(30);

#[derive(Args)]
pub struct SoakArgs {
    /// Minutes of sampled load (the SIGTERM and restart checks follow).
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    /// Size of the generated mix in MB (target/bench/soak-mix.pcap, reused when it matches).
    #[arg(long = "mb", default_value_t = 200)]
    pub size_mb: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Capture to loop instead of the generated mix (Ethernet link type).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// tcpreplay rate in Mbit/s.
    #[arg(long, default_value_t = 100.0)]
    pub mbps: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub every: u64,
    /// Seconds the restarted tlsmon runs under load before its SIGTERM.
    #[arg(long, default_value_t = 30)]
    pub restart_secs: u64,
    /// tcpreplay --unique-ip: new IP addresses on every loop, so every loop brings flows and
    /// servers tlsmon has not seen (its bounded tables fill up to their caps) instead of the
    /// same ones again.
    #[arg(long)]
    pub unique_ip: bool,
    /// Do not run `cargo build --release -p monitor` first.
    #[arg(long)]
    pub no_build: bool,
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// `tlsmon audit verify`: (lines, last seq), or an error with its output.
fn verify(bin: &Path, audit: &Path) -> Result<(u64, u64, Duration)> {
    let t0 = Instant::now();
    let out = Command::new(bin).args(["audit", "verify"]).arg(audit).output().context("running tlsmon audit verify")?;
    let took = t0.elapsed();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("tlsmon audit verify {}: {}", audit.display(), text.trim());
    }
    // "OK: N lines, chain intact (last seq S, hash …)"
    let num = |after: &str| -> Option<u64> { text.split(after).nth(1)?.split([' ', ',']).next()?.parse().ok() };
    match (num("OK: "), num("last seq ")) {
        (Some(lines), Some(seq)) => Ok((lines, seq, took)),
        _ => bail!("unexpected verify output: {}", text.trim()),
    }
}

/// Lines `a` and `a + 1` (1-based) of the audit log, parsed.
fn boundary(audit: &Path, a: u64) -> Result<(Value, Value)> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(audit).context("opening the audit log")?);
    let (mut n, mut buf, mut first) = (0u64, Vec::new(), None);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf).context("reading the audit log")? == 0 {
            bail!("the audit log has only {n} lines, wanted line {}", a + 1);
        }
        n += 1;
        if n == a {
            first = Some(serde_json::from_slice::<Value>(&buf).context("line is JSON")?);
        } else if n == a + 1 {
            let second = serde_json::from_slice::<Value>(&buf).context("line is JSON")?;
            return Ok((first.context("line before")?, second));
        }
    }
}

pub fn run(a: SoakArgs) -> Result<()> {
    if !crate::setup::is_root() {
        bail!("`bench soak` attaches eBPF programs in a network namespace and must run as root");
    }
    if a.minutes == 0 || a.every == 0 || a.mbps <= 0.0 {
        bail!("--minutes, --every and --mbps must be positive");
    }
    for (tool, arg) in [("tcpreplay", "--version"), ("curl", "--version")] {
        let ok = Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !ok.is_ok_and(|s| s.success()) {
            bail!("`{tool}` is missing: run `cargo xtask setup` (apt package {tool})");
        }
    }
    let root = workspace_root();
    let target = target_dir(&root);
    if !a.no_build {
        build_release(&root, "monitor")?;
    }
    let built = target.join("release/tlsmon");
    if !built.is_file() {
        bail!("{} not found", built.display());
    }
    let pcap = match &a.file {
        Some(f) => f.clone(),
        None => {
            let f = target.join("bench/soak-mix.pcap");
            ensure_capture(&f, a.size_mb, a.seed)?;
            f
        }
    };
    let bytes = fs::metadata(&pcap).with_context(|| format!("reading {}", pcap.display()))?.len();
    let dir = target.join("bench/soak");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let audit = dir.join("audit.jsonl");
    let _ = fs::remove_file(&audit);
    // Both runs use this copy: a build during the soak cannot swap the binary between them.
    let bin = dir.join("tlsmon");
    fs::copy(&built, &bin).with_context(|| format!("copying {} to {}", built.display(), bin.display()))?;

    stop_on_signals();
    let ns = Netns::create(NS, LOAD_IF, MON_IF, NET).context("creating the soak namespace")?;
    let soak_secs = a.minutes * 60;
    // Load for the sampled run, the SIGTERM, the verify, the restart, and slack.
    let load_secs = soak_secs + a.restart_secs + 180;
    let loop_secs = bytes as f64 * 8.0 / (a.mbps * 1e6);
    let loops = (load_secs as f64 / loop_secs).ceil() as u64 + 1;
    println!(
        "soak: {} ({:.1} MB) looped by tcpreplay{} at {} Mbit/s (~{loop_secs:.0} s a loop, ≤ {loops} loops, ≤ {load_secs} s) \
         into tlsmon live on {MON_IF} in netns {NS}, --listen {LISTEN}, --audit-log {}",
        pcap.display(),
        bytes as f64 / 1e6,
        if a.unique_ip { " --unique-ip" } else { "" },
        a.mbps,
        audit.display()
    );
    let mut mon = Tlsmon::start(&ns, &bin, &audit, &dir.join("tlsmon-1.log"))?;
    let mut load = start_load(&ns, &pcap, a.mbps, loops, load_secs, a.unique_ip, &dir.join("tcpreplay.log"))?;

    // The sampled run.
    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut csv = File::create(dir.join("samples.csv")).context("creating samples.csv")?;
    writeln!(csv, "secs,rss_kib,hwm_kib,fds,threads,events,packets,servers,dropped")?;
    println!("{HEADER}");
    let mut next = Duration::ZERO;
    while next <= Duration::from_secs(soak_secs) {
        if let Some(left) = next.checked_sub(t0.elapsed()) {
            nap(left)?;
        }
        if let Some(e) = mon.process.wait(Duration::ZERO)? {
            bail!("tlsmon exited during the soak ({}):\n{}", e.code, fs::read_to_string(&mon.log).unwrap_or_default());
        }
        if let Some(e) = load.wait(Duration::ZERO)? {
            bail!(
                "tcpreplay ended early ({}):\n{}",
                e.code,
                fs::read_to_string(dir.join("tcpreplay.log")).unwrap_or_default()
            );
        }
        let s = sample(&ns, mon.process.pid(), t0)?;
        println!("{}", row(&s, samples.last()));
        writeln!(
            csv,
            "{:.1},{},{},{},{},{},{},{},{}",
            s.secs, s.rss_kib, s.hwm_kib, s.fds, s.threads, s.events, s.packets, s.servers, s.dropped
        )?;
        samples.push(s);
        next += Duration::from_secs(a.every);
    }
    let half = soak_secs as f64 / 2.0;
    let late: Vec<&Sample> = samples.iter().filter(|s| s.secs >= half).collect();
    let pts = |f: fn(&Sample) -> f64| late.iter().map(|s| (s.secs / 60.0, f(s))).collect::<Vec<_>>();
    let rss_slope = slope(&pts(|s| s.rss_kib as f64));
    let fd_slope = slope(&pts(|s| s.fds as f64));
    let hwm_growth = late.last().map_or(0, |l| l.hwm_kib) as i64 - late.first().map_or(0, |f| f.hwm_kib) as i64;
    let (fd_min, fd_max) =
        (late.iter().map(|s| s.fds).min().unwrap_or(0), late.iter().map(|s| s.fds).max().unwrap_or(0));
    let (first, last) = (samples.first().copied().unwrap_or_default(), samples.last().copied().unwrap_or_default());
    let ev_rate = (last.events - first.events) / (last.secs - first.secs).max(1e-9);
    let pkt_rate = (last.packets - first.packets) / (last.secs - first.secs).max(1e-9);
    let rss_ok = rss_slope.abs() <= RSS_FLAT_KIB_PER_MIN;
    let fds_ok = fd_slope.abs() <= FDS_FLAT_PER_MIN;

    let inventory = inventory_cost(&ns, mon.process.pid())?;

    // SIGTERM under load.
    if load.wait(Duration::ZERO)?.is_some() {
        bail!("tcpreplay ended before the SIGTERM: no load to stop under");
    }
    let (status1, took1, events1) = mon.sigterm()?;
    let (lines1, seq1, vtook1) = verify(&bin, &audit)?;

    // Restart on the same audit log, under load, then SIGTERM again.
    let mon = Tlsmon::start(&ns, &bin, &audit, &dir.join("tlsmon-2.log"))?;
    nap(Duration::from_secs(a.restart_secs))?;
    let s2 = sample(&ns, mon.process.pid(), t0)?;
    if load.wait(Duration::ZERO)?.is_some() {
        bail!("tcpreplay ended before the second SIGTERM: no load to stop under");
    }
    let (status2, took2, events2) = mon.sigterm()?;
    let (lines2, seq2, vtook2) = verify(&bin, &audit)?;
    let (before, after) = boundary(&audit, lines1)?;
    let chained = after["seq"].as_u64() == Some(seq1 + 1) && after["prev"] == before["hash"];

    load.signal(libc::SIGINT);
    let _ = load.wait(Duration::from_secs(10))?;
    let replay_log = fs::read_to_string(dir.join("tcpreplay.log")).unwrap_or_default();

    println!();
    println!(
        "soak: {} samples over {:.1} min; {:.0} events/s, {:.0} packets/s seen by tlsmon; dropped (all reasons) {:.0}",
        samples.len(),
        last.secs / 60.0,
        ev_rate,
        pkt_rate,
        last.dropped
    );
    println!(
        "  RSS  {} → {} KiB (HWM {} KiB); slope over the second half ({} samples): {rss_slope:+.1} KiB/min \
         (flat if |slope| ≤ {RSS_FLAT_KIB_PER_MIN} KiB/min; one leaked 16-byte block per event would be {:.0} KiB/min): {}",
        first.rss_kib,
        last.rss_kib,
        last.hwm_kib,
        late.len(),
        16.0 * ev_rate * 60.0 / 1024.0,
        if rss_ok { "FLAT" } else { "GROWING" }
    );
    println!("  HWM growth over the second half: {hwm_growth:+} KiB");
    println!("  then one GET /inventory (not judged): {inventory}");
    println!(
        "  fds  {fd_min}..{fd_max} over the second half; slope {fd_slope:+.3} /min (flat if |slope| ≤ {FDS_FLAT_PER_MIN}): {}",
        if fds_ok { "FLAT" } else { "GROWING" }
    );
    let exit_ok = |e: &Ended, t: Duration| e.code == 0 && t <= EXIT_GOAL;
    let code = |e: &Ended| if e.code < 0 { format!("signal {}", -e.code) } else { e.code.to_string() };
    println!(
        "  SIGTERM under load: exit code {} in {:.3} s (goal ≤ {} s); audit verify: {lines1} lines, last seq {seq1} ({:.1} s); \
         events on stdout {events1} = audit lines {}",
        code(&status1),
        took1.as_secs_f64(),
        EXIT_GOAL.as_secs(),
        vtook1.as_secs_f64(),
        if events1 == lines1 { "yes" } else { "NO" }
    );
    println!(
        "  restart on the same log, {} s under load (RSS {} KiB, fds {}), SIGTERM: exit code {} in {:.3} s; audit verify over \
         the whole file: {lines2} lines, last seq {seq2} ({:.1} s); +{} lines = events on stdout {events2}: {}; \
         line {} seq {} prev = hash of line {lines1}: {}",
        a.restart_secs,
        s2.rss_kib,
        s2.fds,
        code(&status2),
        took2.as_secs_f64(),
        vtook2.as_secs_f64(),
        lines2 - lines1,
        if lines2 - lines1 == events2 { "yes" } else { "NO" },
        lines1 + 1,
        after["seq"],
        if chained { "yes" } else { "NO" }
    );
    for l in replay_log.lines().filter(|l| ["Actual:", "Rated:", "Failed packets:"].iter().any(|k| l.contains(k))) {
        println!("  tcpreplay: {}", l.trim());
    }
    println!("  samples: {}", dir.join("samples.csv").display());
    let mut failed = Vec::new();
    if !rss_ok {
        failed.push("RSS grows");
    }
    if !fds_ok {
        failed.push("fd count grows");
    }
    if !exit_ok(&status1, took1) || !exit_ok(&status2, took2) {
        failed.push("SIGTERM exit");
    }
    if events1 != lines1 || lines2 - lines1 != events2 || seq2 != lines2 || !chained || events2 == 0 {
        failed.push("audit chain across the restart");
    }
    if !failed.is_empty() {
        bail!("soak: FAILED: {}", failed.join(", "));
    }
    println!("soak: OK");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&line) - 3.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, if i % 2 == 0 { 5.0 } else { 6.0 })).collect();
        assert!(slope(&flat).abs() < 0.1);
        assert_eq!(slope(&[(1.0, 1.0)]), 0.0);
    }
}
