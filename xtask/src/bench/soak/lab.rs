//! `cargo xtask bench soak`, the lab: `tlsmon live` and tcpreplay in a bench namespace
//! (bench/netlab.rs), and the probes (/proc status and fds, /metrics, /inventory).
//! Must never touch the host's interfaces or leave a namespace or a process behind: the
//! namespace and every child are netlab guards, dropped on errors and on Ctrl-C.
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::EXIT_LIMIT;
use crate::bench::netlab::{check_stop, status_kib, wait_attached, Ended, Netns, Reaped, ATTACH_LIMIT};

/// The namespace, and the veth pair inside it (tlsmon on the first, tcpreplay on the second).
pub(super) const NS: &str = "tlsmon-soak";
pub(super) const MON_IF: &str = "tlsm-soak0";
pub(super) const LOAD_IF: &str = "tlsm-soak1";
/// The pair's /30 (netlab addresses it), beside floods' 10.215.0 and compare's 10.216.0 and
/// outside the mix's ranges; the replayed frames carry the capture's MACs, not the pair's, so
/// the stack drops them before any address matters: tlsmon sees the same packets.
pub(super) const NET: &str = "10.217.0";
/// /metrics inside the namespace (its own loopback, so no clash with the host).
pub(super) const LISTEN: &str = "127.0.0.1:9863";

/// Sleep `d`, in short steps, failing once a signal arrived.
pub(super) fn nap(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        check_stop()?;
        sleep(left.min(Duration::from_millis(100)));
    }
    Ok(())
}

/// `tlsmon live` in the namespace: stdout (JSON events) counted line by line on a thread,
/// stderr to `log`.
pub(super) struct Tlsmon {
    pub(super) process: Reaped,
    events: Arc<AtomicU64>,
    counter: Option<std::thread::JoinHandle<()>>,
    pub(super) log: PathBuf,
}

impl Tlsmon {
    pub(super) fn start(ns: &Netns, bin: &Path, audit: &Path, log: &Path) -> Result<Tlsmon> {
        let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = ns
            .exec(bin)
            .args(["live", "--iface", ns.rx, "--listen", LISTEN, "--format", "json", "--audit-log"])
            .arg(audit)
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .context("starting tlsmon live")?;
        let out = child.stdout.take().context("tlsmon stdout")?;
        let mut process = Reaped::new(child);
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
        wait_attached(&mut process, log, ATTACH_LIMIT)?;
        Ok(Tlsmon { process, events, counter: Some(counter), log: log.to_owned() })
    }

    /// SIGTERM; how it ended and how long that took, and the events it wrote to stdout.
    pub(super) fn sigterm(mut self) -> Result<(Ended, Duration, u64)> {
        self.process.terminate();
        let t0 = Instant::now();
        // Looked at every 2 ms rather than Reaped::wait's 20: the time to exit is a result.
        let Some(ended) = self.process.wait_every(EXIT_LIMIT, Duration::from_millis(2))? else {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            bail!("tlsmon did not exit within {EXIT_LIMIT:?} of SIGTERM (killed):\n{log}");
        };
        let took = t0.elapsed();
        if let Some(h) = self.counter.take() {
            let _ = h.join();
        }
        Ok((ended, took, self.events.load(Ordering::Relaxed)))
    }
}

/// tcpreplay looping `pcap` onto the load interface at `mbps`, at most `loops` times and
/// `secs` seconds.
pub(super) fn start_load(
    ns: &Netns,
    pcap: &Path,
    mbps: f64,
    loops: u64,
    secs: u64,
    unique_ip: bool,
    log: &Path,
) -> Result<Reaped> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = ns
        .exec(Path::new("tcpreplay"))
        .args(["--intf1", ns.tx, "--no-flow-stats"])
        .arg(format!("--mbps={mbps}"))
        .arg(format!("--loop={loops}"))
        .arg(format!("--duration={secs}"))
        .args(unique_ip.then_some("--unique-ip"))
        .arg(pcap)
        .stdout(out.try_clone().context("log file")?)
        .stderr(out)
        .spawn()
        .context("starting tcpreplay (apt package tcpreplay; `cargo xtask setup` installs it)")?;
    Ok(Reaped::new(child))
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

pub(super) fn sample(ns: &Netns, pid: i32, t0: Instant) -> Result<Sample> {
    let rss_kib = status_kib(pid, "VmRSS").context("no VmRSS in tlsmon's /proc status")?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).context("listing tlsmon's fds")?.count() as u64;
    let metrics = scrape(ns)?;
    let sum = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(['{', ' '])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(Sample {
        secs: t0.elapsed().as_secs_f64(),
        rss_kib,
        hwm_kib: status_kib(pid, "VmHWM").unwrap_or(0),
        // A count, not KiB, but the same `name: N` line.
        threads: status_kib(pid, "Threads").unwrap_or(0),
        fds,
        events: sum("tlsmon_events_total"),
        packets: sum("tlsmon_packets_total"),
        dropped: sum("tlsmon_dropped_total"),
        servers: sum("tlsmon_servers"),
    })
}

fn scrape(ns: &Netns) -> Result<String> {
    let url = format!("http://{LISTEN}/metrics");
    let out =
        ns.exec(Path::new("curl")).args(["-sS", "-m", "5", &url]).output().context("running curl for /metrics")?;
    if !out.status.success() {
        bail!("scraping {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One GET /inventory after the sampled run (not part of the verdict: a one-off cost): its
/// size and time, and tlsmon's RSS and HWM (KiB) before and after.
pub(super) fn inventory_cost(ns: &Netns, pid: i32) -> Result<String> {
    let mem = || -> Result<(u64, u64)> {
        let rss = status_kib(pid, "VmRSS").context("no VmRSS in tlsmon's /proc status")?;
        Ok((rss, status_kib(pid, "VmHWM").unwrap_or(0)))
    };
    let before = mem()?;
    let url = format!("http://{LISTEN}/inventory");
    let out = ns
        .exec(Path::new("curl"))
        .args(["-sS", "-m", "60", "-o", "/dev/null", "-w", "%{size_download} %{time_total}"])
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
