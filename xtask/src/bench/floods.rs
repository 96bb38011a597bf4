//! `cargo xtask bench floods`: peak memory and loss counters of tlsmon under hostile floods
//! (issue 13): each flood is generated into target/floods/ (reused while its generator version
//! and flow count match), replayed with `tlsmon replay --stats`, and sent with tcpreplay over a
//! veth pair in a network namespace to `tlsmon live --stats`.
//! Must never report a figure it did not measure, nor leave the namespace or a tlsmon behind:
//! guards tear both down on every exit path, Ctrl-C included.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::measure::{default_cpu, run_pinned, warm_and_count};
use super::{build_release, target_dir, workspace_root};
use crate::gen::floods::{self, Flood, FLOODS_VERSION};

mod live;
mod report;

pub(super) use report::parse_stats;
use report::{print_flood, print_table};

#[derive(Args)]
pub struct FloodsArgs {
    /// Which flood: ooo (out-of-order data), syn (SYN-only flows), half (half TLS records),
    /// overlap (overlapping segments) or all.
    #[arg(long, value_enum, default_value_t = Which::All)]
    pub which: Which,
    /// Flows per flood instead of issue 13's (ooo 65 536, syn 2 000 000, half 200 000,
    /// overlap 50 000), e.g. for a quick look.
    #[arg(long)]
    pub flows: Option<u32>,
    /// Memory budget in MiB that peak RSS is held to. When tlsmon has `--max-memory-mb` it is
    /// passed on; without this flag the default from tlsmon's --help is used, and without
    /// either only RSS is reported.
    #[arg(long)]
    pub budget_mb: Option<u64>,
    /// Fixed overhead allowed above the budget, MiB: binary, allocator slack, the 4 MiB ring
    /// buffer, runtime threads. The bench measures it first over 16 SYNs (about 6 MiB for
    /// replay, 24 MiB for live here) and prints it.
    #[arg(long, default_value_t = 64)]
    pub overhead_mb: u64,
    /// Only `tlsmon replay`.
    #[arg(long, conflicts_with = "live_only")]
    pub replay_only: bool,
    /// Only `tlsmon live` (root: namespace, veth pair, eBPF).
    #[arg(long)]
    pub live_only: bool,
    /// tcpreplay rate in Mbit/s (default: top speed). Live time is wall time: a rate that
    /// stretches a flood past the 120 s idle timeout lets flows expire and lowers the peak.
    #[arg(long)]
    pub mbps: Option<f64>,
    /// CPU to pin `tlsmon replay` to (default: the highest CPU this process may use).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Do not run `cargo build --release -p monitor` first.
    #[arg(long)]
    pub no_build: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    All,
    Ooo,
    Syn,
    Half,
    Overlap,
}

impl Which {
    fn floods(self) -> Vec<Flood> {
        match self {
            Which::All => Flood::ALL.to_vec(),
            Which::Ooo => vec![Flood::Ooo],
            Which::Syn => vec![Flood::Syn],
            Which::Half => vec![Flood::Half],
            Which::Overlap => vec![Flood::Overlap],
        }
    }
}

/// One flood file.
struct Input {
    flood: Flood,
    path: PathBuf,
    flows: u32,
    bytes: u64,
    packets: u64,
}

/// What one run of tlsmon cost and counted.
#[derive(Default)]
pub(super) struct Outcome {
    pub secs: f64,
    /// Peak RSS (wait4) at exit, KiB.
    pub max_rss_kib: u64,
    /// Live: VmHWM just before SIGTERM, KiB.
    pub hwm_kib: Option<u64>,
    pub code: i32,
    pub counters: BTreeMap<String, u64>,
    /// Live: what tcpreplay said it sent.
    pub sent: String,
    /// Live: packets tcpreplay sent.
    pub sent_packets: Option<u64>,
}

pub fn run(a: FloodsArgs) -> Result<()> {
    let root = workspace_root();
    let target = target_dir(&root);
    if !a.replay_only && !crate::setup::is_root() {
        bail!("the live half needs root (namespace, veth pair, eBPF); run as root or pass --replay-only");
    }
    if !a.no_build {
        build_release(&root, "monitor")?;
    }
    let bin = target.join("release/tlsmon");
    if !bin.is_file() {
        bail!("{} not found (build it with cargo build --release -p monitor)", bin.display());
    }
    let budget = Budget::find(&bin, a.budget_mb)?;
    eprintln!("bench: {}", budget.describe(a.overhead_mb));
    super::netlab::stop_on_signals();
    let dir = target.join("floods");
    let cpu = a.cpu.or_else(default_cpu);
    let run_both = |input: &Input| -> Result<(Option<Outcome>, Option<Outcome>)> {
        let replay = if a.live_only { None } else { Some(replay(&bin, input, &budget, cpu)?) };
        super::netlab::check_stop()?;
        let live = if a.replay_only { None } else { Some(live::run(&bin, &input.path, &budget.args(), a.mbps)?) };
        Ok((replay, live))
    };
    // The fixed overhead, measured: the same commands over a flood of 16 SYNs.
    let idle = run_both(&ensure_flood(&dir, Flood::Syn, IDLE_FLOWS)?)?;
    let idle = Idle { replay_kib: idle.0.map(|o| o.max_rss_kib), live_kib: idle.1.and_then(|o| o.hwm_kib) };
    println!("{}", idle.describe());
    let mut rows = Vec::new();
    for flood in a.which.floods() {
        let input = ensure_flood(&dir, flood, a.flows.unwrap_or(flood.default_flows()))?;
        let (replay, live) = run_both(&input)?;
        print_flood(&input, replay.as_ref(), live.as_ref(), &budget, a.overhead_mb);
        rows.push((input, replay, live));
    }
    print_table(&rows, &budget, a.overhead_mb, &idle);
    Ok(())
}

/// Flows of the idle run that measures the fixed overhead.
const IDLE_FLOWS: u32 = 16;

/// Peak RSS of tlsmon with (next to) nothing to hold: the fixed overhead, KiB.
struct Idle {
    replay_kib: Option<u64>,
    live_kib: Option<u64>,
}

impl Idle {
    fn describe(&self) -> String {
        let f = |k: Option<u64>| k.map_or("-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        format!(
            "fixed overhead, measured over {IDLE_FLOWS} SYNs: replay peak RSS {}, live VmHWM {}",
            f(self.replay_kib),
            f(self.live_kib)
        )
    }
}

/// tlsmon's memory budget option, if it has one.
const BUDGET_OPT: &str = "--max-memory-mb";

/// In clap `--help` output: `None` if there is no option `opt`, else its numeric
/// `[default: N]` if it shows one (the text up to the next option line).
fn option_default(help: &str, opt: &str) -> Option<Option<u64>> {
    let start = help.lines().position(|l| l.trim_start().starts_with(opt) || l.contains(&format!(" {opt}")))?;
    let mut text = String::new();
    for (n, line) in help.lines().skip(start).enumerate() {
        if n > 0 && line.trim_start().starts_with('-') {
            break;
        }
        text.push_str(line);
        text.push('\n');
    }
    let d = text.find("[default: ").map(|i| &text[i + 10..]);
    Some(d.and_then(|d| d[..d.find(']')?].trim().parse().ok()))
}

/// The budget runs are held to, and whether tlsmon enforces it.
struct Budget {
    mb: Option<u64>,
    /// tlsmon has `--max-memory-mb`.
    enforced: bool,
    /// Pass `--max-memory-mb` (the user chose a value).
    pass: bool,
}

impl Budget {
    fn find(bin: &Path, wanted: Option<u64>) -> Result<Budget> {
        let out = Command::new(bin).args(["replay", "--help"]).output().context("running tlsmon replay --help")?;
        let (enforced, default) = match option_default(&String::from_utf8_lossy(&out.stdout), BUDGET_OPT) {
            Some(d) => (true, d),
            None => (false, None),
        };
        Ok(Budget { mb: wanted.or(default), enforced, pass: enforced && wanted.is_some() })
    }

    fn args(&self) -> Vec<String> {
        match (self.pass, self.mb) {
            (true, Some(mb)) => vec![BUDGET_OPT.into(), mb.to_string()],
            _ => Vec::new(),
        }
    }

    fn describe(&self, overhead: u64) -> String {
        match (self.mb, self.enforced) {
            (Some(mb), true) => format!("budget {mb} MiB (tlsmon --max-memory-mb) + {overhead} MiB fixed overhead"),
            (Some(mb), false) => {
                format!("budget {mb} MiB + {overhead} MiB overhead (not enforced: tlsmon has no --max-memory-mb)")
            }
            (None, _) => "no budget (tlsmon has no --max-memory-mb): peak RSS only".into(),
        }
    }

    /// "within" / "OVER" for a peak RSS in KiB, if there is a budget.
    fn verdict(&self, overhead: u64, kib: u64) -> String {
        match self.mb {
            Some(mb) if kib <= (mb + overhead) * 1024 => "within".into(),
            Some(mb) => format!("OVER by {:.0} MiB", kib as f64 / 1024.0 - (mb + overhead) as f64),
            None => "-".into(),
        }
    }
}

fn meta_path(pcap: &Path) -> PathBuf {
    let mut s = pcap.as_os_str().to_os_string();
    s.push(".meta.json");
    PathBuf::from(s)
}

/// The flood's file under `dir`, generated unless an identical one (per .meta.json) is there.
fn ensure_flood(dir: &Path, flood: Flood, flows: u32) -> Result<Input> {
    let path = dir.join(format!("{}-{flows}.pcap", flood.name()));
    let want = json!({ "generator": FLOODS_VERSION, "flood": flood.name(), "flows": flows });
    let meta = meta_path(&path);
    if let (Ok(text), Ok(md)) = (fs::read_to_string(&meta), fs::metadata(&path)) {
        let have: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let same = ["generator", "flood", "flows"].iter().all(|k| have.get(k) == want.get(k));
        let packets = have.get("packets").and_then(Value::as_u64);
        if let (true, Some(packets)) = (same && have.get("bytes").and_then(Value::as_u64) == Some(md.len()), packets) {
            eprintln!("bench: reusing {} ({:.0} MB)", path.display(), md.len() as f64 / 1e6);
            return Ok(Input { flood, path, flows, bytes: md.len(), packets });
        }
    }
    eprintln!("bench: generating {} ({flows} flows)", path.display());
    let _ = fs::remove_file(&meta);
    let started = Instant::now();
    let s = floods::generate(&path, flood, flows)?;
    if s.packets != u64::from(flows) * flood.packets_per_flow() {
        bail!("{}: {} packets, planned {} per flow", path.display(), s.packets, flood.packets_per_flow());
    }
    eprintln!(
        "bench: {} packets, {:.1} MB in {:.1} s",
        s.packets,
        s.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let mut m = want;
    m["bytes"] = json!(s.bytes);
    m["packets"] = json!(s.packets);
    fs::write(&meta, format!("{m:#}\n")).with_context(|| format!("writing {}", meta.display()))?;
    Ok(Input { flood, path, flows, bytes: s.bytes, packets: s.packets })
}

/// `tlsmon replay --format none --stats` over the flood, pinned to `cpu`.
fn replay(bin: &Path, input: &Input, budget: &Budget, cpu: Option<usize>) -> Result<Outcome> {
    warm_and_count(&input.path)?;
    let err_path = input.path.with_extension("replay.stderr");
    let err = fs::File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(["replay", "--format", "none", "--stats", "--no-progress"])
        .args(budget.args())
        .arg(&input.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    eprintln!("bench: {} replay {} (stderr: {})", bin.display(), input.path.display(), err_path.display());
    let r = run_pinned(&mut cmd, cpu)?;
    let text = fs::read_to_string(&err_path).unwrap_or_default();
    if !(0..=1).contains(&r.code) {
        bail!("tlsmon replay exited with {}; its stderr:\n{text}", r.code);
    }
    Ok(Outcome {
        secs: r.wall.as_secs_f64(),
        max_rss_kib: r.max_rss_kib,
        code: r.code,
        counters: parse_stats(&text),
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_option_default_in_clap_help() {
        let long =
            "Options:\n      --max-flows <MAX_FLOWS>\n          Most flows\n\n          [default: 65536]\n\n      \
                    --max-memory-mb <MB>\n          Memory budget\n\n          [default: 512]\n\n      --stats\n";
        assert_eq!(option_default(long, "--max-memory-mb"), Some(Some(512)));
        let short = "  -x, --max-memory-mb <MB>  Memory budget\n      --idle <S>  [default: 120]\n";
        assert_eq!(option_default(short, "--max-memory-mb"), Some(None));
        assert_eq!(option_default(long, "--budget"), None);
    }
}
