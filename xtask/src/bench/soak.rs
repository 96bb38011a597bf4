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
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use super::replay::ensure_capture;
use super::{build_release, target_dir, workspace_root};

/// The namespace, and the veth pair inside it (tlsmon on the first, tcpreplay on the second).
const NS: &str = "tlsmon-soak";
const MON_IF: &str = "tlsm-soak0";
const LOAD_IF: &str = "tlsm-soak1";
/// /metrics inside the namespace (its own loopback, so no clash with the host).
const LISTEN: &str = "127.0.0.1:9863";
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
const EXIT_LIMIT: Duration = Duration::from_secs(30);

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

static STOP: AtomicBool = AtomicBool::new(false);

/// From here on SIGINT/SIGTERM only set a flag; the waits below see it and unwind, and the
/// guards stop the children and delete the namespace.
fn stop_on_signals() {
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// Sleep `d`, in short steps, failing once a signal arrived.
fn nap(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if STOP.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    Ok(())
}

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output().with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The namespace with its veth pair; deleted on drop (after the children, declared later).
struct Netns;

impl Netns {
    fn create() -> Result<Netns> {
        remove_stale();
        sh(&["ip", "netns", "add", NS])?;
        let ns = Netns;
        sh(&["ip", "-n", NS, "link", "add", MON_IF, "type", "veth", "peer", "name", LOAD_IF])?;
        for dev in ["lo", MON_IF, LOAD_IF] {
            sh(&["ip", "-n", NS, "link", "set", dev, "up"])?;
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", NS]).status();
    }
}

/// A namespace left by a run that was killed outright: stop what still runs in it, delete it.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "pids", NS]).output() else { return };
    if !out.status.success() {
        return; // no such namespace
    }
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        eprintln!("soak: stopping pid {pid} left in netns {NS} by an earlier run");
        // SAFETY: kill(2) on a pid that `ip netns pids` listed in our own namespace.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = Command::new("ip").args(["netns", "del", NS]).status();
}

/// A child stopped on drop: SIGTERM, then SIGKILL after 5 s.
struct Guard {
    child: Child,
    what: &'static str,
}

impl Guard {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        if unsafe { libc::kill(self.pid(), sig) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("signalling {}", self.what));
        }
        Ok(())
    }

    fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait().with_context(|| format!("waiting for {}", self.what))
    }

    /// Wait up to `limit` for the exit; `None` if it still runs.
    fn wait_for(&mut self, limit: Duration) -> Result<Option<(ExitStatus, Duration)>> {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.exited()? {
                return Ok(Some((s, t0.elapsed())));
            }
            if t0.elapsed() >= limit {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.signal(libc::SIGTERM);
            if !matches!(self.wait_for(Duration::from_secs(5)), Ok(Some(_))) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// `tlsmon live` in the namespace: stdout (JSON events) counted line by line on a thread,
/// stderr to `log`.
struct Tlsmon {
    guard: Guard,
    events: Arc<AtomicU64>,
    counter: Option<std::thread::JoinHandle<()>>,
    log: PathBuf,
}

impl Tlsmon {
    fn start(bin: &Path, audit: &Path, log: &Path) -> Result<Tlsmon> {
        let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", NS]).arg(bin);
        cmd.args(["live", "--iface", MON_IF, "--listen", LISTEN, "--format", "json", "--audit-log"]).arg(audit);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err);
        // `ip netns exec` execs the program: the pid is tlsmon's own.
        let mut child = cmd.spawn().context("starting tlsmon live")?;
        let out = child.stdout.take().context("tlsmon stdout")?;
        let guard = Guard { child, what: "tlsmon" };
        let events = Arc::new(AtomicU64::new(0));
        let n = events.clone();
        let counter = std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 16, out);
            let mut line = Vec::new();
            while let Ok(k) = r.read_until(b'\n', &mut line) {
                if k == 0 {
                    break;
                }
                n.fetch_add(1, Ordering::Relaxed);
                line.clear();
            }
        });
        let mut t = Tlsmon { guard, events, counter: Some(counter), log: log.to_owned() };
        let t0 = Instant::now();
        loop {
            let text = fs::read_to_string(log).unwrap_or_default();
            if text.contains("tlsmon: live: attached") {
                break;
            }
            if let Some(s) = t.guard.exited()? {
                bail!("tlsmon live exited ({s}) before attaching:\n{text}");
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("tlsmon live did not attach within 60 s:\n{text}");
            }
            nap(Duration::from_millis(50))?;
        }
        Ok(t)
    }

    /// SIGTERM; the exit status and how long it took, and the events it wrote to stdout.
    fn sigterm(mut self) -> Result<(ExitStatus, Duration, u64)> {
        self.guard.signal(libc::SIGTERM)?;
        let Some((status, took)) = self.guard.wait_for(EXIT_LIMIT)? else {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            bail!("tlsmon did not exit within {EXIT_LIMIT:?} of SIGTERM (killed):\n{log}");
        };
        if let Some(h) = self.counter.take() {
            let _ = h.join();
        }
        Ok((status, took, self.events.load(Ordering::Relaxed)))
    }
}

/// tcpreplay looping `pcap` onto the load interface at `mbps`, at most `loops` times and
/// `secs` seconds.
fn start_load(pcap: &Path, mbps: f64, loops: u64, secs: u64, unique_ip: bool, log: &Path) -> Result<Guard> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", NS, "tcpreplay", "--intf1", LOAD_IF, "--no-flow-stats"])
        .arg(format!("--mbps={mbps}"))
        .arg(format!("--loop={loops}"))
        .arg(format!("--duration={secs}"))
        .args(unique_ip.then_some("--unique-ip"))
        .arg(pcap);
    cmd.stdin(Stdio::null()).stdout(out.try_clone().context("log file")?).stderr(out);
    let child = cmd.spawn().context("starting tcpreplay (apt package tcpreplay; `cargo xtask setup` installs it)")?;
    Ok(Guard { child, what: "tcpreplay" })
}

#[derive(Clone, Copy, Default)]
struct Sample {
    secs: f64,
    rss_kib: u64,
    hwm_kib: u64,
    fds: u64,
    threads: u64,
    events: f64,
    packets: f64,
    dropped: f64,
    /// Servers in the posture inventory (bounded: `MAX_SERVERS`, 10 000).
    servers: f64,
}

fn status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

fn sample(pid: i32, t0: Instant) -> Result<Sample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).context("reading tlsmon's /proc status")?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).context("listing tlsmon's fds")?.count() as u64;
    let metrics = scrape()?;
    let sum = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(['{', ' '])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(Sample {
        secs: t0.elapsed().as_secs_f64(),
        rss_kib: status_field(&status, "VmRSS:").unwrap_or(0),
        hwm_kib: status_field(&status, "VmHWM:").unwrap_or(0),
        threads: status_field(&status, "Threads:").unwrap_or(0),
        fds,
        events: sum("tlsmon_events_total"),
        packets: sum("tlsmon_packets_total"),
        dropped: sum("tlsmon_dropped_total"),
        servers: sum("tlsmon_servers"),
    })
}

fn scrape() -> Result<String> {
    let url = format!("http://{LISTEN}/metrics");
    let out = Command::new("ip")
        .args(["netns", "exec", NS, "curl", "-sS", "-m", "5", &url])
        .output()
        .context("running curl for /metrics")?;
    if !out.status.success() {
        bail!("scraping {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One GET /inventory after the sampled run (not part of the verdict: a one-off cost): its
/// size and time, and tlsmon's RSS and HWM (KiB) before and after.
fn inventory_cost(pid: i32) -> Result<String> {
    let mem = || -> Result<(u64, u64)> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).context("reading tlsmon's /proc status")?;
        Ok((status_field(&status, "VmRSS:").unwrap_or(0), status_field(&status, "VmHWM:").unwrap_or(0)))
    };
    let before = mem()?;
    let url = format!("http://{LISTEN}/inventory");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS,
            "curl",
            "-sS",
            "-m",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
        ])
        .arg(&url)
        .output()
        .context("running curl for /inventory")?;
    if !out.status.success() {
        bail!("GET {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let after = mem()?;
    let w = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut f = w.split_whitespace();
    let (size, secs) = (f.next().unwrap_or("?"), f.next().unwrap_or("?"));
    Ok(format!("{size} bytes in {secs} s; RSS {} → {} KiB, HWM {} → {} KiB", before.0, after.0, before.1, after.1))
}

const HEADER: &str = "    t/s   RSS/KiB   HWM/KiB  fds thr     events/s   packets/s    events  servers   dropped";

fn row(s: &Sample, prev: Option<&Sample>) -> String {
    let rate = |f: fn(&Sample) -> f64| prev.map_or(0.0, |p| (f(s) - f(p)) / (s.secs - p.secs).max(1e-9));
    format!(
        "{:>7.0} {:>9} {:>9} {:>4} {:>3} {:>12.0} {:>11.0} {:>9.0} {:>8.0} {:>9.0}",
        s.secs,
        s.rss_kib,
        s.hwm_kib,
        s.fds,
        s.threads,
        rate(|s| s.events),
        rate(|s| s.packets),
        s.events,
        s.servers,
        s.dropped
    )
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
    let _ns = Netns::create()?;
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
    let mut mon = Tlsmon::start(&bin, &audit, &dir.join("tlsmon-1.log"))?;
    let mut load = start_load(&pcap, a.mbps, loops, load_secs, a.unique_ip, &dir.join("tcpreplay.log"))?;

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
        if let Some(s) = mon.guard.exited()? {
            bail!("tlsmon exited during the soak ({s}):\n{}", fs::read_to_string(&mon.log).unwrap_or_default());
        }
        if let Some(s) = load.exited()? {
            bail!(
                "tcpreplay ended early ({s}):\n{}",
                fs::read_to_string(dir.join("tcpreplay.log")).unwrap_or_default()
            );
        }
        let s = sample(mon.guard.pid(), t0)?;
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

    let inventory = inventory_cost(mon.guard.pid())?;

    // SIGTERM under load.
    if load.exited()?.is_some() {
        bail!("tcpreplay ended before the SIGTERM: no load to stop under");
    }
    let (status1, took1, events1) = mon.sigterm()?;
    let (lines1, seq1, vtook1) = verify(&bin, &audit)?;

    // Restart on the same audit log, under load, then SIGTERM again.
    let mon = Tlsmon::start(&bin, &audit, &dir.join("tlsmon-2.log"))?;
    nap(Duration::from_secs(a.restart_secs))?;
    let s2 = sample(mon.guard.pid(), t0)?;
    if load.exited()?.is_some() {
        bail!("tcpreplay ended before the second SIGTERM: no load to stop under");
    }
    let (status2, took2, events2) = mon.sigterm()?;
    let (lines2, seq2, vtook2) = verify(&bin, &audit)?;
    let (before, after) = boundary(&audit, lines1)?;
    let chained = after["seq"].as_u64() == Some(seq1 + 1) && after["prev"] == before["hash"];

    load.signal(libc::SIGINT)?;
    let _ = load.wait_for(Duration::from_secs(10))?;
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
    let exit_ok = |s: ExitStatus, t: Duration| s.code() == Some(0) && t <= EXIT_GOAL;
    let code = |s: ExitStatus| s.code().map_or_else(|| format!("{s}"), |c| c.to_string());
    println!(
        "  SIGTERM under load: exit code {} in {:.3} s (goal ≤ {} s); audit verify: {lines1} lines, last seq {seq1} ({:.1} s); \
         events on stdout {events1} = audit lines {}",
        code(status1),
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
        code(status2),
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
    if !exit_ok(status1, took1) || !exit_ok(status2, took2) {
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

    #[test]
    fn status_fields() {
        let s = "Name:\ttlsmon\nVmHWM:\t   20480 kB\nVmRSS:\t   18000 kB\nThreads:\t4\n";
        assert_eq!(status_field(s, "VmRSS:"), Some(18000));
        assert_eq!(status_field(s, "VmHWM:"), Some(20480));
        assert_eq!(status_field(s, "Threads:"), Some(4));
        assert_eq!(status_field(s, "VmSwap:"), None);
    }
}
