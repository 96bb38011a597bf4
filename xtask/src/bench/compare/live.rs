//! `cargo xtask bench compare --live`: the capture path under load. The mix is sent by K
//! parallel tcpreplay streams over a veth pair in a namespace made for the bench
//! (`tlsmon-cmp`, tlsm-cmp0 → tlsm-cmp1, 10.216.0.0/30) into `tlsmon live` (TC, XDP or both)
//! at a stepped rate: doubled from --start-mbps until a step loses, then bisected, at most
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

use super::tcpreplay::{self, Sent};
use super::tlsmon_count;
use crate::bench::floods::parse_stats;
use crate::bench::netlab::{check_stop, cpu_ticks, host_share, host_ticks, ticks_per_second};
use crate::bench::netlab::{wait_attached, wait_idle, Netns, Reaped};

const NS: &str = "tlsmon-cmp";
const TX_IF: &str = "tlsm-cmp0";
const RX_IF: &str = "tlsm-cmp1";
const NET: &str = "10.216.0";
const ATTACH_LIMIT: Duration = Duration::from_secs(60);
const EXIT_LIMIT: Duration = Duration::from_secs(120);
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// A step whose streams sent less than this share of the asked rate is sender-limited.
const SENDER_SHORT: f64 = 0.9;
/// Agent CPU (% of one core) counted as saturated.
const AGENT_SATURATED: f64 = 95.0;
/// Machine busy (% of all cores) counted as saturated.
const HOST_SATURATED: f64 = 90.0;
/// The first step is sized to take about this long, unless --start-mbps says otherwise.
const FIRST_STEP_SECS: f64 = 15.0;
/// Bisection stops once the lowest losing rate is within this factor of the highest clean one.
const BISECT_DONE: f64 = 1.15;

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
    /// Where tlsmon attaches: tc, xdp (generic, ingress) or both (one search each).
    #[arg(long, value_enum, default_value_t = Hook::Tc, requires = "live")]
    pub hook: Hook,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Hook {
    Tc,
    Xdp,
    Both,
}

/// What a losing step is put down to (a step that only fell short of its rate is the sender's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    /// Ring-buffer loss, flow-map full, veth or tcpreplay send drops.
    Kernel,
    /// Handshakes missing with nothing lost below the agent, or the agent's CPU saturated.
    Agent,
}

struct Step {
    /// Aggregate Mbit/s asked; `None`: --topspeed.
    asked: Option<f64>,
    sent: Sent,
    ring_lost: u64,
    map_full: u64,
    veth_drops: u64,
    handshakes: u64,
    expected: u64,
    agent_cpu: f64,
    sender_cpu: f64,
    /// The machine while sending, % of all cores: busy, and of that softirq (the veth's
    /// receive path, where the TC/XDP program runs, mostly lands there).
    host_busy: f64,
    softirq: f64,
}

impl Step {
    fn kernel_loss(&self) -> bool {
        self.ring_lost > 0 || self.map_full > 0 || self.veth_drops > 0 || self.sent.failed > 0
    }

    fn clean(&self) -> bool {
        !self.kernel_loss() && self.handshakes == self.expected
    }

    fn sender_short(&self) -> bool {
        self.asked.is_none_or(|a| self.sent.mbps() < SENDER_SHORT * a)
    }

    /// Why this step lost, if it did.
    fn loss(&self) -> Option<Limit> {
        if self.kernel_loss() {
            Some(Limit::Kernel)
        } else if self.handshakes != self.expected {
            Some(Limit::Agent)
        } else {
            None
        }
    }

    fn verdict(&self) -> String {
        let mut v = match self.loss() {
            None => "ok".to_string(),
            Some(l) => format!("LOSS ({})", describe(l, self)),
        };
        if self.sender_short() && self.asked.is_some() {
            v.push_str(", sender short");
        }
        if self.agent_cpu >= AGENT_SATURATED {
            v.push_str(", agent CPU saturated");
        }
        v
    }
}

fn describe(l: Limit, s: &Step) -> String {
    match l {
        Limit::Kernel => {
            let mut w = Vec::new();
            for (n, what) in [
                (s.ring_lost, "ring buffer full"),
                (s.map_full, "flow map full"),
                (s.veth_drops, "veth drops"),
                (s.sent.failed, "send failures"),
            ] {
                if n > 0 {
                    w.push(format!("{what} {n}"));
                }
            }
            format!("kernel: {}", w.join(", "))
        }
        Limit::Agent => format!("agent: {} handshakes missing", s.expected as i64 - s.handshakes as i64),
    }
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
fn step(
    ns: &Netns,
    tlsmon: &Path,
    hook: &[&str],
    files: &[PathBuf],
    expected: u64,
    asked: Option<f64>,
    dir: &Path,
) -> Result<Step> {
    let err_path = dir.join("tlsmon.stderr");
    let err = fs::File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    let child = ns
        .exec(tlsmon)
        .args(["live", "--iface", RX_IF, "--format", "none", "--stats"])
        .args(hook)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .context("starting tlsmon live")?;
    let mut mon = Reaped::new(child);
    wait_attached(&mut mon, &err_path, ATTACH_LIMIT)?;
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

/// Doubling from `start` until a step loses, then bisecting; at most `steps` steps, and a
/// --topspeed step last.
fn search(mut run: impl FnMut(Option<f64>) -> Result<Step>, start: f64, steps: u64) -> Result<Vec<Step>> {
    let mut rows: Vec<Step> = Vec::new();
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut asked = start;
    for _ in 0..steps {
        let s = run(Some(asked))?;
        eprintln!("{}", line(&s));
        let (clean, short) = (s.clean(), s.sender_short());
        rows.push(s);
        if clean {
            good = Some(good.map_or(asked, |g: f64| g.max(asked)));
            if short {
                break; // the sender is at its top: the --topspeed step says the rest
            }
        } else {
            bad = Some(bad.map_or(asked, |b: f64| b.min(asked)));
        }
        asked = match (good, bad) {
            (Some(g), None) => g * 2.0,
            (None, Some(b)) => b / 2.0,
            (Some(g), Some(b)) if b / g > BISECT_DONE => (g + b) / 2.0,
            _ => break,
        };
    }
    let s = run(None)?;
    eprintln!("{}", line(&s));
    rows.push(s);
    Ok(rows)
}

/// The highest loss-free step, and what stopped a faster one.
fn outcome(rows: &[Step]) -> String {
    let best = rows.iter().filter(|s| s.clean()).max_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps()));
    let Some(best) = best else {
        let first = rows.iter().min_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps()));
        let why = first.and_then(|s| Some(describe(s.loss()?, s))).unwrap_or_default();
        return format!("no loss-free step: even the slowest lost ({why})");
    };
    let mut rate = format!("{:.0} Mbit/s, {:.0} kpps", best.sent.mbps(), best.sent.kpps());
    if let Some(s) = rows.iter().find(|s| !s.clean() && s.sent.mbps() <= best.sent.mbps()) {
        // Loss is not monotonic in the rate here: say so rather than hide the slower step.
        let why = s.loss().map_or_else(String::new, |l| describe(l, s));
        rate.push_str(&format!(" (but a slower step, {:.0} Mbit/s, lost: {why}; a noisy machine?)", s.sent.mbps()));
    }
    let faster_loss = rows
        .iter()
        .filter(|s| !s.clean() && s.sent.mbps() > best.sent.mbps())
        .min_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps()));
    match faster_loss {
        Some(s) => {
            let why = s.loss().map_or_else(String::new, |l| describe(l, s));
            let cpu = if s.agent_cpu >= AGENT_SATURATED { "; agent CPU saturated" } else { "" };
            format!(
                "highest loss-free rate {rate}; limited by the {why} at {:.0} Mbit/s (agent CPU {:.0}%{cpu})",
                s.sent.mbps(),
                s.agent_cpu
            )
        }
        None => {
            let top = rows.iter().max_by(|a, b| a.sent.mbps().total_cmp(&b.sent.mbps())).unwrap_or(best);
            let cores = if top.host_busy >= HOST_SATURATED {
                " — the cores were saturated: senders and the kernel's veth receive path share them, so this is \
                 a floor for the capture path, not its ceiling"
            } else {
                ""
            };
            format!(
                "highest loss-free rate {rate}; limited by the sender: tcpreplay sent no faster than {:.0} Mbit/s \
                 (senders {:.0}% of a core, machine busy {:.0}% of all cores, softirq {:.0}%) and nothing was lost{cores}",
                top.sent.mbps(),
                top.sender_cpu,
                top.host_busy,
                top.softirq
            )
        }
    }
}

const HEADER: &str = "  asked Mbit/s  sent Mbit/s     kpps      s  ring lost  veth drops  handshakes seen/expected  \
                      tlsmon CPU%  sender CPU%  host busy%  softirq%  verdict";

fn line(s: &Step) -> String {
    format!(
        "{:>14} {:>12.0} {:>8.1} {:>6.1} {:>10} {:>11} {:>15}/{:<10} {:>11.0} {:>12.0} {:>11.0} {:>9.0}  {}",
        s.asked.map_or("topspeed".into(), |a| format!("{a:.0}")),
        s.sent.mbps(),
        s.sent.kpps(),
        s.sent.secs,
        s.ring_lost,
        s.veth_drops,
        s.handshakes,
        s.expected,
        s.agent_cpu,
        s.sender_cpu,
        s.host_busy,
        s.softirq,
        s.verdict()
    )
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
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut results = Vec::new();
    for (name, args) in hooks {
        eprintln!(
            "bench compare --live, {name}: {} stream(s) of {} ({reference} handshakes each, {:.1} MB in all) \
             from {TX_IF} to tlsmon live on {RX_IF} in netns {NS}; first step {start:.0} Mbit/s",
            a.streams,
            mix.display(),
            bytes as f64 / 1e6
        );
        eprintln!("{HEADER}");
        let rows = search(|asked| step(&ns, tlsmon, args, &files, expected, asked, &dir), start, a.steps)?;
        results.push((name, rows));
    }
    drop(ns);
    for (name, rows) in &results {
        println!(
            "bench compare --live, {name}: {} × {} ({reference} handshakes each), {cores} cores; while sending: tlsmon \
             and sender CPU in % of one core, host busy and softirq in % of all cores (other users' load included)",
            a.streams,
            mix.display()
        );
        println!("{HEADER}");
        for s in rows {
            println!("{}", line(s));
        }
        println!("Live ({name}): {}", outcome(rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step that sent `mbps` for one second (top speed: 5000), losing `ring` records and
    /// `missing` handshakes of 100.
    fn fake(asked: Option<f64>, mbps: f64, ring: u64, missing: u64) -> Step {
        let sent = Sent { packets: 1000, bytes: (mbps * 1e6 / 8.0) as u64, secs: 1.0, failed: 0 };
        Step {
            asked,
            sent,
            ring_lost: ring,
            map_full: 0,
            veth_drops: 0,
            handshakes: 100 - missing,
            expected: 100,
            agent_cpu: 50.0,
            sender_cpu: 80.0,
            host_busy: 95.0,
            softirq: 30.0,
        }
    }

    /// The kernel loses records above 3000 Mbit/s; the sender reaches 5000.
    fn lossy_above_3000(asked: Option<f64>) -> Result<Step> {
        let mbps = asked.unwrap_or(5000.0);
        Ok(fake(asked, mbps, if mbps > 3000.0 { 7 } else { 0 }, 0))
    }

    #[test]
    fn search_doubles_then_bisects_then_tops() {
        let rows = search(lossy_above_3000, 1000.0, 5).expect("search");
        let asked: Vec<Option<f64>> = rows.iter().map(|s| s.asked).collect();
        assert_eq!(asked, [Some(1000.0), Some(2000.0), Some(4000.0), Some(3000.0), Some(3500.0), None]);
        let out = outcome(&rows);
        assert!(out.starts_with("highest loss-free rate 3000 Mbit/s"), "{out}");
        assert!(out.contains("kernel: ring buffer full 7 at 3500 Mbit/s"), "{out}");
    }

    #[test]
    fn search_stops_doubling_when_the_sender_falls_short() {
        let capped = |asked: Option<f64>| Ok(fake(asked, asked.unwrap_or(2500.0).min(2500.0), 0, 0));
        let rows = search(capped, 1000.0, 5).expect("search");
        let asked: Vec<Option<f64>> = rows.iter().map(|s| s.asked).collect();
        assert_eq!(asked, [Some(1000.0), Some(2000.0), Some(4000.0), None]);
        assert_eq!(rows[2].verdict(), "ok, sender short");
        let out = outcome(&rows);
        assert!(out.contains("limited by the sender: tcpreplay sent no faster than 2500 Mbit/s"), "{out}");
        assert!(out.contains("cores were saturated"), "{out}");
    }

    #[test]
    fn missing_handshakes_are_the_agents_and_no_clean_step_is_said() {
        let agent = |asked: Option<f64>| Ok(fake(asked, asked.unwrap_or(5000.0), 0, 3));
        let rows = search(agent, 1000.0, 2).expect("search");
        let asked: Vec<Option<f64>> = rows.iter().map(|s| s.asked).collect();
        assert_eq!(asked, [Some(1000.0), Some(500.0), None]);
        assert_eq!(rows[0].verdict(), "LOSS (agent: 3 handshakes missing)");
        assert_eq!(outcome(&rows), "no loss-free step: even the slowest lost (agent: 3 handshakes missing)");
    }
}
