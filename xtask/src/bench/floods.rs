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
    /// buffer, runtime threads (an idle `tlsmon live` is about 20 MiB).
    #[arg(long, default_value_t = 64)]
    pub overhead_mb: u64,
    /// Only `tlsmon replay`.
    #[arg(long, conflicts_with = "live_only")]
    pub replay_only: bool,
    /// Only `tlsmon live` (root: namespace, veth pair, eBPF).
    #[arg(long)]
    pub live_only: bool,
    /// tcpreplay rate in Mbit/s (default: top speed).
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
}

/// Counters shown for every run (`--stats` names; the kernel's only in live), in this order.
const SHOWN: &[&str] = &[
    "kernel.packets",
    "kernel.records",
    "kernel.ringbuf_full",
    "kernel.flow_map_full",
    "kernel.budget_exhausted",
    "reader.bad_records",
    "flows.created",
    "flows.expired",
    "flows.evicted",
    "head.out_of_order",
    "head.pending_dropped",
    "head.beyond_budget",
    "head.retransmitted",
    "head.overlaps",
    "plain_bytes_dropped",
    "handshakes",
];

/// Shown counters that count work done, not refused.
const NOT_REFUSALS: &[&str] = &["kernel.packets", "kernel.records", "flows.created", "head.out_of_order", "handshakes"];

/// Words that mark a counter of refused or lost work: counters added later (the memory budget)
/// show up without a change here.
const LOSS_WORDS: &[&str] = &["drop", "evict", "refus", "reject", "shed", "full", "budget", "lost", "over", "limit"];

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
    live::stop_on_signals();
    let mut rows = Vec::new();
    for flood in a.which.floods() {
        let input = ensure_flood(&target.join("floods"), flood, a.flows.unwrap_or(flood.default_flows()))?;
        let replay = if a.live_only { None } else { Some(replay(&bin, &input, &budget, a.cpu.or_else(default_cpu))?) };
        live::check_stop()?;
        let live = if a.replay_only { None } else { Some(live::run(&bin, &input.path, &budget.args(), a.mbps)?) };
        print_flood(&input, replay.as_ref(), live.as_ref(), &budget, a.overhead_mb);
        rows.push((input, replay, live));
    }
    print_table(&rows, &budget, a.overhead_mb);
    Ok(())
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
        let help = String::from_utf8_lossy(&out.stdout);
        let opt = help.find("--max-memory-mb").map(|i| &help[i..]);
        let enforced = opt.is_some();
        let default = opt.and_then(|o| {
            let o = &o[..o[2..].find("\n  -").map_or(o.len(), |e| e + 2)];
            let d = &o[o.find("[default: ")? + 10..];
            d[..d.find(']')?].trim().parse::<u64>().ok()
        });
        Ok(Budget { mb: wanted.or(default), enforced, pass: enforced && wanted.is_some() })
    }

    fn args(&self) -> Vec<String> {
        match (self.pass, self.mb) {
            (true, Some(mb)) => vec!["--max-memory-mb".into(), mb.to_string()],
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

/// The counters `tlsmon --stats` prints on stderr: the Debug-printed stats structs (keys are
/// field paths below the top struct, e.g. `head.pending_dropped`), live's kernel counters
/// (`kernel.NAME`) and reader line (`reader.NAME`). Lines it does not know are skipped.
pub(super) fn parse_stats(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut path: Vec<String> = Vec::new();
    let mut kernel = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("tlsmon: live: kernel counters") {
            kernel = true;
            continue;
        }
        if let Some(rest) = t.strip_prefix("tlsmon: live: reader:") {
            kernel = false;
            for part in rest.split(',') {
                let words: Vec<&str> = part.split_whitespace().take_while(|w| !w.starts_with('(')).collect();
                if let Some((n, name)) = words.split_last().and_then(|(n, name)| Some((n.parse::<u64>().ok()?, name))) {
                    out.insert(format!("reader.{}", name.join("_")), n);
                }
            }
            continue;
        }
        if let Some(head) = t.strip_suffix('{') {
            kernel = false;
            // `DecodeStats {` opens a top struct (no key part); `head: HeadStats {` a field.
            path.push(head.split_once(':').map_or(String::new(), |(f, _)| f.trim().to_string()));
            continue;
        }
        if t.starts_with('}') {
            path.pop();
            continue;
        }
        if kernel {
            if let [name, v] = t.split_whitespace().collect::<Vec<_>>()[..] {
                if let Ok(n) = v.parse() {
                    out.insert(format!("kernel.{name}"), n);
                    continue;
                }
            }
            kernel = false;
        }
        if let Some((k, v)) = t.split_once(':') {
            if let (false, Ok(n)) = (path.is_empty(), v.trim().trim_end_matches(',').parse::<u64>()) {
                let mut key: Vec<&str> = path.iter().skip(1).map(String::as_str).collect();
                key.push(k.trim());
                out.entry(key.join(".")).or_insert(n);
            }
        }
    }
    out
}

/// `name value` pairs worth showing: [`SHOWN`], then other non-zero loss counters.
fn shown(c: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = SHOWN.iter().filter_map(|k| c.get(*k).map(|n| (k.to_string(), *n))).collect();
    for (k, n) in c {
        let loss = LOSS_WORDS.iter().any(|w| k.contains(w));
        if loss && *n > 0 && !SHOWN.contains(&k.as_str()) && !k.ends_with("bytes") {
            v.push((k.clone(), *n));
        }
    }
    v
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_flood(input: &Input, replay: Option<&Outcome>, live: Option<&Outcome>, budget: &Budget, overhead: u64) {
    println!(
        "\nflood {}: {} flows, {} packets, {:.1} MB ({})",
        input.flood.name(),
        input.flows,
        input.packets,
        input.bytes as f64 / 1e6,
        input.path.display()
    );
    if let Some(r) = replay {
        println!(
            "  replay: {:.2} s, exit {}, peak RSS {:.1} MiB ({})",
            r.secs,
            r.code,
            mib(r.max_rss_kib),
            budget.verdict(overhead, r.max_rss_kib)
        );
        print_counters(&r.counters);
    }
    if let Some(l) = live {
        let hwm = l.hwm_kib.unwrap_or(0);
        println!(
            "  live:   {}; VmHWM {:.1} MiB before SIGTERM ({}), peak RSS {:.1} MiB at exit (code {})",
            l.sent,
            mib(hwm),
            budget.verdict(overhead, hwm),
            mib(l.max_rss_kib),
            l.code
        );
        print_counters(&l.counters);
    }
}

fn print_counters(c: &BTreeMap<String, u64>) {
    let items: Vec<String> = shown(c).into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    for chunk in items.chunks(6) {
        println!("          {}", chunk.join(", "));
    }
}

/// Non-zero refusals of a run, compact: what the closing note quotes.
fn refusals(c: &BTreeMap<String, u64>) -> String {
    let v: Vec<String> = shown(c)
        .into_iter()
        .filter(|(k, n)| *n > 0 && !NOT_REFUSALS.contains(&k.as_str()))
        .map(|(k, n)| format!("{} {n}", k.rsplit('.').next().unwrap_or(&k)))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn print_table(rows: &[(Input, Option<Outcome>, Option<Outcome>)], budget: &Budget, overhead: u64) {
    println!("\n{}", budget.describe(overhead));
    println!("| flood | flows | packets | MB | replay s | replay peak RSS MiB | replay refusals | live VmHWM MiB | live refusals |");
    println!("|---|---:|---:|---:|---:|---:|---|---:|---|");
    for (i, r, l) in rows {
        let (rs, rrss, rref) = match r {
            Some(r) => (format!("{:.2}", r.secs), format!("{:.0}", mib(r.max_rss_kib)), refusals(&r.counters)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let (lhwm, lref) = match l {
            Some(l) => (format!("{:.0}", mib(l.hwm_kib.unwrap_or(0))), refusals(&l.counters)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {:.0} | {rs} | {rrss} | {rref} | {lhwm} | {lref} |",
            i.flood.name(),
            i.flows,
            i.packets,
            i.bytes as f64 / 1e6
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replay_and_live_stats() {
        let text = "tlsmon: live: kernel counters (all CPUs):\n  packets              12\n  ringbuf_full         3\n\
                    tlsmon: live: reader: records 9 (900 bytes), bad records 1, capped batches 0\n\
                    DecodeStats {\n    packets: 12,\n    bytes: 900,\n}\nPipelineStats {\n    udp_packets: 0,\n    \
                    plain_bytes_dropped: 5,\n    head: HeadStats {\n        pending_dropped: 7,\n    },\n    \
                    flows: TableStats {\n        created: 4,\n        evicted: 2,\n    },\n    memory: MemStats {\n        \
                    flows_shed: 6,\n        note: Some(3),\n    },\n}\n";
        let c = parse_stats(text);
        let get = |k: &str| c.get(k).copied();
        assert_eq!(get("kernel.packets"), Some(12));
        assert_eq!(get("kernel.ringbuf_full"), Some(3));
        assert_eq!(get("reader.records"), Some(9));
        assert_eq!(get("reader.bad_records"), Some(1));
        assert_eq!(get("packets"), Some(12));
        assert_eq!(get("plain_bytes_dropped"), Some(5));
        assert_eq!(get("head.pending_dropped"), Some(7));
        assert_eq!(get("flows.evicted"), Some(2));
        assert_eq!(get("memory.flows_shed"), Some(6));
        assert_eq!(get("memory.note"), None);
        assert_eq!(
            refusals(&c),
            "ringbuf_full 3, bad_records 1, evicted 2, pending_dropped 7, plain_bytes_dropped 5, flows_shed 6"
        );
    }
}
