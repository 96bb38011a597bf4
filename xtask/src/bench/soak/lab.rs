//! `cargo xtask bench soak`, the lab: a network namespace with a veth pair, `tlsmon live` and
//! tcpreplay in it, and the probes (/proc status and fds, /metrics, /inventory).
//! Must never touch the host's interfaces or leave a namespace or a process behind: every
//! child and the namespace are guards that stop and delete on drop, on errors and on Ctrl-C.
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::EXIT_LIMIT;

/// The namespace, and the veth pair inside it (tlsmon on the first, tcpreplay on the second).
pub(super) const NS: &str = "tlsmon-soak";
pub(super) const MON_IF: &str = "tlsm-soak0";
pub(super) const LOAD_IF: &str = "tlsm-soak1";
/// /metrics inside the namespace (its own loopback, so no clash with the host).
pub(super) const LISTEN: &str = "127.0.0.1:9863";

static STOP: AtomicBool = AtomicBool::new(false);

/// From here on SIGINT/SIGTERM only set a flag; the waits below see it and unwind, and the
/// guards stop the children and delete the namespace.
pub(super) fn stop_on_signals() {
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
pub(super) fn nap(d: Duration) -> Result<()> {
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
pub(super) struct Netns;

impl Netns {
    pub(super) fn create() -> Result<Netns> {
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
pub(super) struct Guard {
    child: Child,
    what: &'static str,
}

impl Guard {
    pub(super) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(super) fn signal(&self, sig: libc::c_int) -> Result<()> {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        if unsafe { libc::kill(self.pid(), sig) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("signalling {}", self.what));
        }
        Ok(())
    }

    pub(super) fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait().with_context(|| format!("waiting for {}", self.what))
    }

    /// Wait up to `limit` for the exit; `None` if it still runs.
    pub(super) fn wait_for(&mut self, limit: Duration) -> Result<Option<(ExitStatus, Duration)>> {
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
pub(super) struct Tlsmon {
    pub(super) guard: Guard,
    events: Arc<AtomicU64>,
    counter: Option<std::thread::JoinHandle<()>>,
    pub(super) log: PathBuf,
}

impl Tlsmon {
    pub(super) fn start(bin: &Path, audit: &Path, log: &Path) -> Result<Tlsmon> {
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
    pub(super) fn sigterm(mut self) -> Result<(ExitStatus, Duration, u64)> {
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
pub(super) fn start_load(pcap: &Path, mbps: f64, loops: u64, secs: u64, unique_ip: bool, log: &Path) -> Result<Guard> {
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
pub(super) struct Sample {
    pub(super) secs: f64,
    pub(super) rss_kib: u64,
    pub(super) hwm_kib: u64,
    pub(super) fds: u64,
    pub(super) threads: u64,
    pub(super) events: f64,
    pub(super) packets: f64,
    pub(super) dropped: f64,
    /// Servers in the posture inventory (bounded: `MAX_SERVERS`, 10 000).
    pub(super) servers: f64,
}

pub(super) fn status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

pub(super) fn sample(pid: i32, t0: Instant) -> Result<Sample> {
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
pub(super) fn inventory_cost(pid: i32) -> Result<String> {
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

pub(super) const HEADER: &str =
    "    t/s   RSS/KiB   HWM/KiB  fds thr     events/s   packets/s    events  servers   dropped";

pub(super) fn row(s: &Sample, prev: Option<&Sample>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = "Name:\ttlsmon\nVmHWM:\t   20480 kB\nVmRSS:\t   18000 kB\nThreads:\t4\n";
        assert_eq!(status_field(s, "VmRSS:"), Some(18000));
        assert_eq!(status_field(s, "VmHWM:"), Some(20480));
        assert_eq!(status_field(s, "Threads:"), Some(4));
        assert_eq!(status_field(s, "VmSwap:"), None);
    }
}
