//! `cargo xtask bench compare --live`: the capture path under load (judged in verdict.rs).
//! The mix is sent by K parallel tcpreplay streams over a veth pair in a namespace made for
//! the bench (`tlsmon-cmp`, tlsm-cmp0 → tlsm-cmp1, 10.216.0.0/30) into `tlsmon live` (TC, XDP
//! or both) at a stepped rate: doubled from --start-mbps until a step loses, then bisected, at most
//! --steps steps, and last a `--topspeed` step. Each step reports the rate tcpreplay reached,
//! ring-buffer loss, veth drops, handshakes seen against expected and the CPU of tlsmon and the
//! senders; the table ends with the highest loss-free rate and what limited it.
//!
//! Parallel streams: K copies of the same capture would replay the same 4-tuples at about the
//! same time, and the agent would merge them into the same flows (a second ClientHello on a
//! flow it is already judging, retransmission-looking segments), so "K × reference" would not
//! be what a correct agent reports (measured: two streams of the same 300 MB mix at 500 Mbit/s
//! each gave 3494 handshakes, not 2 × 3059, and 4727 "retransmitted" segments). Stream 0 sends the mix itself; stream k > 0 sends a copy
//! rewritten with `tcprewrite --seed=k` (every IPv4/IPv6 address mapped through a seeded
//! permutation, checksums fixed): the same handshakes on other addresses. Each copy is replayed
//! once with `tlsmon replay` and must show the reference count; expected = their sum.
//!
//! Each step runs its own `tlsmon live --stats` (started, attached, fed, drained until its CPU
//! goes idle, SIGTERMed): its counters at exit are the ones /metrics exports
//! (`tlsmon_kernel_counter_total{counter="ringbuf_full"}`, `tlsmon_handshakes_total`), read
//! once every open flow was judged, so a step's figures are complete and its own.
//! Must never touch the host's interfaces or leave the namespace or a process behind (guards,
//! Ctrl-C included), nor wait unboundedly.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::tcpreplay;
use super::tlsmon_count;
use super::verdict::{line, outcome, search, Step, HEADER};
use crate::bench::floods::parse_stats;
use crate::bench::netlab::{check_stop, cpu_ticks, host_share, host_ticks, ticks_per_second};
use crate::bench::netlab::{wait_idle, Netns, Reaped};

const NS: &str = "tlsmon-cmp";
const TX_IF: &str = "tlsm-cmp0";
const RX_IF: &str = "tlsm-cmp1";
const NET: &str = "10.216.0";
const EXIT_LIMIT: Duration = Duration::from_secs(120);
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// The first step is sized to take about this long, unless --start-mbps says otherwise.
const FIRST_STEP_SECS: f64 = 15.0;

#[derive(Args)]
#[command(next_help_heading = "Live mode (--live, root)")]
pub struct LiveArgs {
    /// Parallel tcpreplay streams, each its own rewritten copy of the capture.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=16), requires = "live")]
    pub streams: u64,
    /// Rate steps (doubling, then bisecting) before the closing --topspeed step.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=12), requires = "live")]
    pub steps: u64,
    /// Aggregate rate of the first step, Mbit/s (default: what sends all streams in ~15 s).
    #[arg(long, requires = "live")]
    pub start_mbps: Option<f64>,
    /// Let tcpreplay read from the page cache instead of loading each copy into memory first
    /// (--preload-pcap, the default when streams × capture size fits in half the free memory).
    #[arg(long, requires = "live")]
    pub no_preload: bool,
    /// Where tlsmon attaches: tc, xdp (generic, ingress) or both (one search each).
    #[arg(long, value_enum, default_value_t = Hook::Tc, requires = "live")]
    pub hook: Hook,
}

/// What every step of a run shares.
struct Rig<'a> {
    ns: Netns,
    tlsmon: &'a Path,
    files: Vec<PathBuf>,
    expected: u64,
    dir: PathBuf,
    /// tcpreplay --preload-pcap: the streams send from memory, not from the page cache.
    preload: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Hook {
    Tc,
    Xdp,
    Both,
}

/// MemAvailable from /proc/meminfo, bytes.
fn mem_available() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The streams' captures: the mix, then `tcprewrite --seed=k` copies; each replayed once,
/// they must all show `reference` handshakes.
fn stream_files(tlsmon: &Path, mix: &Path, dir: &Path, k: u64, reference: u64) -> Result<Vec<PathBuf>> {
    let mut files = vec![mix.to_path_buf()];
    let mix_time =
        fs::metadata(mix).and_then(|m| m.modified()).with_context(|| format!("reading {}", mix.display()))?;
    for seed in 1..k {
        let copy = dir.join(format!("stream-{seed}.pcap"));
        let fresh = fs::metadata(&copy).and_then(|m| m.modified()).is_ok_and(|t| t > mix_time);
        if !fresh {
            eprintln!("bench: tcprewrite --seed={seed} {} → {}", mix.display(), copy.display());
            // Written aside and renamed: an interrupted rewrite never looks fresh.
            let part = copy.with_extension("pcap.part");
            let out = Command::new("tcprewrite")
                .arg(format!("--seed={seed}"))
                .arg("-i")
                .arg(mix)
                .arg("-o")
                .arg(&part)
                .output()
                .context("running tcprewrite (apt package tcpreplay; `cargo xtask setup` installs it)")?;
            if !out.status.success() {
                let _ = fs::remove_file(&part);
                bail!("tcprewrite failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            fs::rename(&part, &copy).with_context(|| format!("renaming {} to {}", part.display(), copy.display()))?;
        }
        let n = replay_count(tlsmon, &copy)?;
        if n != reference {
            bail!("{} shows {n} handshakes in replay, the mix {reference}: the rewrite changed them", copy.display());
        }
        files.push(copy);
    }
    Ok(files)
}

/// `tlsmon replay --stats`: the handshakes it found.
pub(super) fn replay_count(tlsmon: &Path, file: &Path) -> Result<u64> {
    let out = Command::new(tlsmon)
        .args(["replay", "--stats", "--no-progress", "--format", "none"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .context("running tlsmon replay")?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!("tlsmon replay {} failed ({}): {}", file.display(), out.status, err.trim());
    }
    tlsmon_count("", &err).with_context(|| format!("no handshake count in tlsmon replay's stderr:\n{err}"))
}

/// One step: a fresh `tlsmon live`, the streams at `asked` Mbit/s in all (or top speed), drain,
/// SIGTERM, counters.
fn step(rig: &Rig, hook: &[&str], asked: Option<f64>) -> Result<Step> {
    let Rig { ns, tlsmon, files, expected, dir, preload } = rig;
    let expected = *expected;
    let err_path = dir.join("tlsmon.stderr");
    let mut mon = ns.start_live(tlsmon, hook, &err_path)?;
    let drops0 = ns.drops()?;

    let bytes: u64 = files.iter().map(|f| fs::metadata(f).map_or(0, |m| m.len())).sum();
    let rate = match asked {
        Some(a) => format!("--mbps={:.3}", a / files.len() as f64),
        None => "--topspeed".to_string(),
    };
    // Bounded: twice the time the asked rate needs (100 Mbit/s assumed at top speed) + 60 s.
    let limit = Duration::from_secs_f64(bytes as f64 * 8.0 / 1e6 / asked.unwrap_or(100.0) * 2.0 + 60.0);
    let (t0, ticks0, host0) = (Instant::now(), cpu_ticks(mon.pid()).unwrap_or(0), host_ticks());
    let mut senders = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let out_path = dir.join(format!("tcpreplay-{i}.out"));
        let out = fs::File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
        let child = ns
            .exec(Path::new("tcpreplay"))
            .args(["-i", TX_IF, "--no-flow-stats", &rate])
            .args(preload.then_some("--preload-pcap"))
            .arg(f)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting tcpreplay (apt package tcpreplay; `cargo xtask setup` installs it)")?;
        senders.push((Reaped::new(child), out_path));
    }
    let mut sent = Vec::new();
    let mut sender_cpu = Duration::ZERO;
    for (s, out_path) in &mut senders {
        let ended = loop {
            check_stop()?;
            if let Some(e) = s.wait(Duration::from_millis(100))? {
                break e;
            }
            if t0.elapsed() > limit {
                bail!("tcpreplay still running after {limit:?}: stopped");
            }
        };
        let said = fs::read_to_string(&*out_path).unwrap_or_default();
        if ended.code != 0 {
            bail!("tcpreplay failed ({}):\n{said}", ended.code);
        }
        sent.push(tcpreplay::parse(&said).with_context(|| format!("no summary in tcpreplay's output:\n{said}"))?);
        sender_cpu += ended.cpu;
    }
    let wall = t0.elapsed().as_secs_f64();
    let agent_ticks = cpu_ticks(mon.pid()).unwrap_or(ticks0).saturating_sub(ticks0);
    let (host_busy, softirq) = match (host0, host_ticks()) {
        (Some(a), Some(b)) => host_share(a, b),
        _ => (f64::NAN, f64::NAN),
    };
    let veth_drops = ns.drops()?.saturating_sub(drops0);

    wait_idle(mon.pid(), Duration::from_millis(500), 3, DRAIN_LIMIT)?;
    mon.terminate();
    let Some(end) = mon.wait(EXIT_LIMIT)? else {
        bail!("tlsmon live did not exit within {EXIT_LIMIT:?} of SIGTERM");
    };
    let text = fs::read_to_string(&err_path).unwrap_or_default();
    if end.code != 0 {
        bail!("tlsmon live exited with {}; its stderr:\n{text}", end.code);
    }
    let c = parse_stats(&text);
    let get = |k: &str| c.get(k).copied();
    Ok(Step {
        asked,
        sent: tcpreplay::total(&sent),
        ring_lost: get("kernel.ringbuf_full").context("no kernel.ringbuf_full in tlsmon's --stats")?,
        map_full: get("kernel.flow_map_full").unwrap_or(0),
        veth_drops,
        handshakes: get("handshakes").context("no handshakes in tlsmon's --stats")?,
        expected,
        agent_cpu: agent_ticks as f64 / ticks_per_second() / wall.max(1e-9) * 100.0,
        sender_cpu: sender_cpu.as_secs_f64() / wall.max(1e-9) * 100.0,
        host_busy,
        softirq,
    })
}

pub fn run(tlsmon: &Path, mix: &Path, target: &Path, a: &LiveArgs) -> Result<()> {
    if !crate::setup::is_root() {
        bail!("`bench compare --live` makes a namespace and attaches eBPF programs: run it as root");
    }
    let dir = target.join("bench/compare-live");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let reference = replay_count(tlsmon, mix)?;
    if reference == 0 {
        bail!("tlsmon replay finds no handshakes in {}: nothing to count live", mix.display());
    }
    let files = stream_files(tlsmon, mix, &dir, a.streams, reference)?;
    let expected = reference * a.streams;
    let bytes: u64 = files.iter().map(|f| fs::metadata(f).map_or(0, |m| m.len())).sum();
    let start = a.start_mbps.unwrap_or(bytes as f64 * 8.0 / 1e6 / FIRST_STEP_SECS).max(1.0);
    let hooks: &[(&str, &[&str])] = match a.hook {
        Hook::Tc => &[("TC", &[])],
        Hook::Xdp => &[("XDP (skb)", &["--xdp"])],
        Hook::Both => &[("TC", &[]), ("XDP (skb)", &["--xdp"])],
    };
    crate::bench::netlab::stop_on_signals();
    let ns = Netns::create(NS, TX_IF, RX_IF, NET).context("creating the bench namespace")?;
    let preload = !a.no_preload && mem_available().is_some_and(|m| bytes < m / 2);
    let rig = Rig { ns, tlsmon, files, expected, dir, preload };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut results = Vec::new();
    for (name, args) in hooks {
        eprintln!(
            "bench compare --live, {name}: {} stream(s) of {} ({reference} handshakes each, {:.1} MB in all) \
             from {TX_IF} to tlsmon live on {RX_IF} in netns {NS}; first step {start:.0} Mbit/s; {}",
            a.streams,
            mix.display(),
            bytes as f64 / 1e6,
            if rig.preload { "tcpreplay --preload-pcap" } else { "tcpreplay from the page cache" }
        );
        eprintln!("{HEADER}");
        let rows = search(|asked| step(&rig, args, asked), start, a.steps)?;
        results.push((name, rows));
    }
    let rig_preload = rig.preload;
    drop(rig);
    for (name, rows) in &results {
        println!(
            "bench compare --live, {name}: {} × {} ({reference} handshakes each){}, {cores} cores; while sending: \
             tlsmon and sender CPU in % of one core, host busy and softirq in % of all cores (other users' load included)",
            a.streams,
            mix.display(),
            if rig_preload { ", preloaded" } else { "" }
        );
        println!("{HEADER}");
        for s in rows {
            println!("{}", line(s));
        }
        println!("Live ({name}): {}", outcome(rows));
    }
    Ok(())
}
