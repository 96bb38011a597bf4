//! `cargo xtask bench compare`: on one generated capture, in one run, the pcap record-loop
//! floor, `tlsmon replay` (1 and N threads, JSON and none), ndpiReader and tshark — MB/s
//! (median of --runs, page cache warm), peak RSS, handshakes found and the ratios to the
//! peer tools, as one table. `--live` runs the live mode instead (compare/live.rs).
//! Must never print a figure it did not measure: a tool that is missing or fails shows why.
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::measure::{default_cpu, run_pinned, warm_and_count, Run};

mod live;
mod tcpreplay;
mod verdict;
use super::replay::MixArgs;
use super::{build_release, target_dir, workspace_root};

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub capture: MixArgs,
    /// Timed runs of each command (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Workers of the parallel replay rows (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Leave out ndpiReader and tshark (they are installed with apt when missing otherwise).
    #[arg(long)]
    pub no_peers: bool,
    /// Do not run `cargo build --release -p monitor` first.
    #[arg(long)]
    pub no_build: bool,
    /// Live mode instead of the offline table (root): the capture sent by --streams parallel
    /// tcpreplay streams over a veth pair into `tlsmon live` at stepped rates; reports the
    /// highest rate with no ring-buffer loss and every handshake, and what limited it.
    /// `--size-mb 300` keeps it to about a minute and a half per hook; the rewritten copies
    /// (target/bench/compare-live/) take streams − 1 times the capture's size on disk.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub live_opts: live::LiveArgs,
}

/// One row of the table.
struct Row {
    name: String,
    runs: Vec<Run>,
    handshakes: Option<u64>,
    note: String,
}

impl Row {
    fn median_s(&self) -> Option<f64> {
        let mut s: Vec<f64> = self.runs.iter().map(|r| r.wall.as_secs_f64()).collect();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied()
    }
}

/// How a command's handshakes are counted from what it wrote (stdout file, stderr file).
type Count = fn(&str, &str) -> Option<u64>;

pub(super) fn tlsmon_count(_out: &str, err: &str) -> Option<u64> {
    err.lines().find_map(|l| l.trim().strip_prefix("handshakes:")?.trim().trim_end_matches(',').parse().ok())
}

/// ndpiReader's protocol table: the flows of TLS (and QUIC) it detected.
fn ndpi_count(out: &str, _err: &str) -> Option<u64> {
    let mut n = None;
    for l in out.lines() {
        let mut w = l.split_whitespace();
        if !matches!(w.next(), Some("TLS" | "QUIC")) {
            continue;
        }
        let flows = l.split("flows:").nth(1).and_then(|f| f.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(f) = flows {
            *n.get_or_insert(0) += f;
        }
    }
    n
}

/// tshark prints one line per ServerHello.
fn line_count(out: &str, _err: &str) -> Option<u64> {
    Some(out.lines().filter(|l| !l.trim().is_empty()).count() as u64)
}

/// monitor's `pcap_floor` example: the record loop alone, walking the file as replay does
/// (mapped).
fn build_floor(root: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p monitor --example pcap_floor");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "monitor", "--example", "pcap_floor"])
        .current_dir(root)
        .status()
        .context("building the pcap_floor example")?;
    if !status.success() {
        bail!("building the pcap_floor example failed: {status}");
    }
    Ok(())
}

fn ensure_tool(bin: &str, package: &str) -> Result<bool> {
    let present = |b: &str| {
        Command::new("sh").args(["-c", &format!("command -v {b}")]).output().is_ok_and(|o| o.status.success())
    };
    if present(bin) {
        return Ok(true);
    }
    eprintln!("bench: {bin} missing, installing the apt package {package}");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("bench: could not install {package} (run `cargo xtask setup` as root); its row is left out");
    }
    Ok(present(bin))
}

fn measure(
    name: &str,
    dir: &Path,
    runs: usize,
    cpu: Option<usize>,
    make: &dyn Fn() -> Command,
    count: Count,
) -> Result<Row> {
    let slug: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let (out_path, err_path) = (dir.join(format!("{slug}.out")), dir.join(format!("{slug}.err")));
    let mut row = Row { name: name.to_string(), runs: Vec::new(), handshakes: None, note: String::new() };
    for i in 1..=runs {
        let mut cmd = make();
        cmd.stdin(Stdio::null())
            .stdout(File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?)
            .stderr(File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?);
        let r = run_pinned(&mut cmd, cpu)?;
        eprintln!(
            "  {name} run {i}: {:.3} s, peak RSS {:.1} MiB, exit {}",
            r.wall.as_secs_f64(),
            r.max_rss_kib as f64 / 1024.0,
            r.code
        );
        if !(0..=1).contains(&r.code) {
            let err = fs::read_to_string(&err_path).unwrap_or_default();
            row.note = format!("failed (exit {}): {}", r.code, err.lines().last().unwrap_or(""));
            row.runs.clear();
            return Ok(row);
        }
        row.runs.push(r);
    }
    let read = |p: &Path| {
        let mut s = String::new();
        File::open(p).and_then(|mut f| f.read_to_string(&mut s)).map(|_| s).unwrap_or_default()
    };
    row.handshakes = count(&read(&out_path), &read(&err_path));
    Ok(row)
}

pub fn run(a: CompareArgs) -> Result<()> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let root = workspace_root();
    let target = target_dir(&root);
    let file = a.capture.path(&target)?;
    if !a.no_build {
        build_release(&root, "monitor")?;
        if !a.live {
            build_floor(&root)?;
        }
    }
    let tlsmon = target.join("release/tlsmon");
    if !tlsmon.is_file() {
        bail!("{} not found", tlsmon.display());
    }
    if a.live {
        return live::run(&tlsmon, &file, &target, &a.live_opts);
    }
    let floor = target.join("release/examples/pcap_floor");
    if !floor.is_file() {
        bail!("{} not found", floor.display());
    }
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let dir = target.join("bench/compare");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (bytes, packets) = warm_and_count(&file)?;
    if bytes == 0 {
        bail!("{} is empty", file.display());
    }
    let cpu = default_cpu();
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "bench compare: {} ({:.1} MB), {} run(s) each; load average {}",
        file.display(),
        bytes as f64 / 1e6,
        a.runs,
        load.trim()
    );
    let mut rows = Vec::new();
    let f = file.clone();
    rows.push(measure(
        "pcap record loop (floor)",
        &dir,
        a.runs,
        cpu,
        &|| {
            let mut c = Command::new(&floor);
            c.arg(&f);
            c
        },
        |_, _| None,
    )?);
    let mut replays = vec![(1, "json"), (1, "none")];
    if threads > 1 {
        replays.extend([(threads, "json"), (threads, "none")]);
    }
    for (t, format) in replays {
        let name = format!("tlsmon replay --threads {t} --format {format}");
        let (bin, f) = (tlsmon.clone(), file.clone());
        let make = move || {
            let mut c = Command::new(&bin);
            c.args(["replay", "--stats", "--no-progress", "--format", format, "--threads", &t.to_string()]).arg(&f);
            c
        };
        // One thread pinned to one core; N threads get every core.
        let pin = if t == 1 { cpu } else { None };
        rows.push(measure(&name, &dir, a.runs, pin, &make, tlsmon_count)?);
    }
    if !a.no_peers {
        if ensure_tool("ndpiReader", "libndpi-bin")? {
            let f = file.clone();
            rows.push(measure(
                "ndpiReader",
                &dir,
                a.runs,
                cpu,
                &|| {
                    let mut c = Command::new("ndpiReader");
                    c.arg("-i").arg(&f);
                    c
                },
                ndpi_count,
            )?);
        }
        if ensure_tool("tshark", "tshark")? {
            let f = file.clone();
            rows.push(measure(
                "tshark (ServerHellos)",
                &dir,
                a.runs,
                cpu,
                &|| {
                    let mut c = Command::new("tshark");
                    c.args(["-n", "-r"]).arg(&f).args([
                        "-Y",
                        "tls.handshake.type == 2",
                        "-T",
                        "fields",
                        "-e",
                        "tcp.stream",
                    ]);
                    c
                },
                line_count,
            )?);
        }
    }
    print_table(&file, bytes, packets, &rows);
    Ok(())
}

fn print_table(file: &Path, bytes: u64, packets: Option<u64>, rows: &[Row]) {
    let mb = bytes as f64 / 1e6;
    let rate = |name: &str| rows.iter().find(|r| r.name.starts_with(name)).and_then(Row::median_s).map(|s| mb / s);
    let (ndpi, tshark) = (rate("ndpiReader"), rate("tshark"));
    println!(
        "bench compare: {} ({mb:.1} MB{}), medians of {} run(s), page cache warm",
        file.display(),
        packets.map_or(String::new(), |p| format!(", {p} packets")),
        rows.iter().map(|r| r.runs.len()).max().unwrap_or(0)
    );
    println!(
        "{:<40} {:>10} {:>8} {:>10} {:>11} {:>10} {:>10}",
        "command", "MB/s", "s", "RSS MiB", "handshakes", "×ndpi", "×tshark"
    );
    for r in rows {
        let Some(s) = r.median_s() else {
            println!("{:<40} {}", r.name, if r.note.is_empty() { "not run" } else { &r.note });
            continue;
        };
        let mbps = mb / s;
        let rss = r.runs.iter().map(|x| x.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        let ratio = |peer: Option<f64>| peer.map_or("-".to_string(), |p| format!("{:.1}", mbps / p));
        let hs = r.handshakes.map_or("-".to_string(), |h| h.to_string());
        println!("{:<40} {mbps:>10.1} {s:>8.3} {rss:>10.1} {hs:>11} {:>10} {:>10}", r.name, ratio(ndpi), ratio(tshark));
    }
}
