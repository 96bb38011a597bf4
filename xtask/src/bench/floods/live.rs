//! `bench floods`, live half: a namespace `tlsmon-flood` holding one veth pair (tlsm-fl0 ↔
//! tlsm-fl1, 10.215.0.0/30), `tlsmon live --stats` on tlsm-fl1, tcpreplay of the flood onto
//! tlsm-fl0; VmHWM read just before SIGTERM, the counters from `--stats`.
//! Must never touch anything outside its namespace nor leave it, or its tlsmon, behind: both
//! are guards dropped on every exit path, and Ctrl-C only sets a flag the waits check.
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{parse_stats, Outcome};
use crate::bench::netlab::{check_stop, status_kib, wait_idle, Netns, Reaped};

const NS: &str = "tlsmon-flood";
const TX_IF: &str = "tlsm-fl0";
const RX_IF: &str = "tlsm-fl1";
/// Most time for tlsmon to exit after SIGTERM (it judges every open flow).
const EXIT_LIMIT: Duration = Duration::from_secs(300);
/// After tcpreplay, tlsmon has drained the ring buffer once it used under this much CPU in
/// [`SETTLE_STEP`] (the 1 s tick's idle sweep is well below), or [`SETTLE_LIMIT`] passed.
const SETTLE_STEP: Duration = Duration::from_millis(500);
const SETTLE_IDLE_TICKS: u64 = 3;
const SETTLE_LIMIT: Duration = Duration::from_secs(300);

/// Runs the live half for one flood file.
pub fn run(bin: &Path, pcap: &Path, extra: &[String], mbps: Option<f64>) -> Result<Outcome> {
    let ns = Netns::create(NS, TX_IF, RX_IF, "10.215.0").context("creating the flood namespace")?;
    let err_path = pcap.with_extension("live.stderr");
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    eprintln!("bench: tlsmon live --iface {RX_IF} in {NS} (stderr: {})", err_path.display());
    let mut mon = ns.start_live(bin, &extra, &err_path)?;
    let exe = fs::read_link(format!("/proc/{}/exe", mon.pid())).unwrap_or_default();
    if exe.file_name() != bin.file_name() {
        bail!("pid {} runs {}, not tlsmon: cannot read its memory", mon.pid(), exe.display());
    }

    let rate = mbps.map_or("--topspeed".to_string(), |m| format!("--mbps={m}"));
    let mut tr = ns.exec(Path::new("tcpreplay"));
    tr.args(["-i", TX_IF, &rate]).arg(pcap);
    eprintln!("bench: tcpreplay -i {TX_IF} {rate} {}", pcap.display());
    let tr_path = pcap.with_extension("tcpreplay.out");
    let tr_out = fs::File::create(&tr_path).with_context(|| format!("creating {}", tr_path.display()))?;
    let started = Instant::now();
    let child = tr
        .stdout(tr_out.try_clone()?)
        .stderr(tr_out)
        .spawn()
        .context("running tcpreplay (apt package tcpreplay; cargo xtask setup installs it)")?;
    let mut sender = Reaped::new(child);
    let ended = loop {
        if let Some(e) = sender.wait(Duration::from_millis(50))? {
            break e;
        }
        check_stop()?;
    };
    let secs = started.elapsed().as_secs_f64();
    let said = fs::read_to_string(&tr_path).unwrap_or_default();
    if ended.code != 0 {
        bail!("tcpreplay failed ({}):\n{said}", ended.code);
    }
    let pick = |prefix: &str| {
        let line = said.lines().map(str::trim).find(|l| l.starts_with(prefix)).unwrap_or("");
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let actual = pick("Actual:");
    let sent_packets = actual.split_whitespace().nth(1).and_then(|n| n.parse().ok());
    let sent = format!("tcpreplay {:.1} s: {}; {}", secs, actual, pick("Failed packets:"));

    // Wait until tlsmon has drained the ring buffer (its CPU time stops growing).
    wait_idle(mon.pid(), SETTLE_STEP, SETTLE_IDLE_TICKS, SETTLE_LIMIT)?;
    let hwm = status_kib(mon.pid(), "VmHWM");
    mon.terminate();
    let Some(end) = mon.wait(EXIT_LIMIT)? else {
        bail!("tlsmon live did not exit within {EXIT_LIMIT:?} of SIGTERM");
    };
    let text = fs::read_to_string(&err_path).unwrap_or_default();
    if end.code != 0 {
        bail!("tlsmon live exited with {}; its stderr:\n{text}", end.code);
    }
    Ok(Outcome {
        secs,
        max_rss_kib: end.max_rss_kib,
        hwm_kib: hwm,
        code: end.code,
        counters: parse_stats(&text),
        sent,
        sent_packets,
    })
}
