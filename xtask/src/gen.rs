//! `cargo xtask gen`: writes a large, realistic, deterministic pcap (thousands of interleaved
//! TLS connections SSLv3…TLS 1.3 plus non-TLS noise) for replay benchmarks.
//! Must never depend on the clock or OS randomness for content: same seed + size = same bytes.
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

mod certs;
mod conn;
pub(crate) mod floods;
pub(crate) mod hello;
mod negotiate;
mod noise;
pub(crate) mod pcap;
mod profiles;
mod rng;
mod session;
mod sink;
#[cfg(test)]
mod tests;
pub(crate) mod tls;
mod world;

use conn::{Clock, Conn};
use pcap::PcapWriter;
use rng::{Pool, Rng};
use world::World;

#[derive(Args)]
pub struct GenArgs {
    /// Output pcap file (written as FILE.tmp, then renamed).
    #[arg(long)]
    pub out: PathBuf,
    /// Target size in MB (10^6 bytes); new connections stop there and open ones wind down.
    #[arg(long, default_value_t = 1100)]
    pub size_mb: u64,
    /// Seed: the same seed and size give a byte-identical file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// 2025-06-02 08:00:00 UTC, the capture's first packet; certificate validity is set against it.
pub const START_US: u64 = 1_748_851_200 * 1_000_000;
/// Open connections at any time (their packets interleave).
const CONCURRENCY: usize = 256;
/// Bump when the output for a given seed/size changes (bench reuses files by this).
pub const GEN_VERSION: u32 = 1;

pub const KIND_NAMES: [&str; 7] = ["SSLv3", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "failed", "HTTP"];

#[derive(Default, Debug)]
pub struct Summary {
    pub bytes: u64,
    pub packets: u64,
    pub conns: [u64; 7],
    pub pq: u64,
    pub resumed: u64,
    pub split_hello: u64,
    pub disordered: u64,
    pub udp_packets: u64,
    pub secs: f64,
}

impl Summary {
    pub fn line(&self) -> String {
        let kinds: Vec<String> = KIND_NAMES.iter().zip(self.conns).map(|(n, c)| format!("{n} {c}")).collect();
        format!(
            "{:.1} MB, {} packets, {} TCP connections [{}; X25519MLKEM768 {}, resumed {}, multi-segment hello {}, \
             reordered/retransmitted {}], {} UDP packets; {:.1} s, {:.0} MB/s",
            self.bytes as f64 / 1e6,
            self.packets,
            self.conns.iter().sum::<u64>(),
            kinds.join(", "),
            self.pq,
            self.resumed,
            self.split_hello,
            self.disordered,
            self.udp_packets,
            self.secs,
            self.bytes as f64 / 1e6 / self.secs.max(1e-9),
        )
    }
}

pub fn run(a: GenArgs) -> Result<()> {
    let s = generate(&a.out, a.size_mb, a.seed, true)?;
    eprintln!("gen: wrote {}: {}", a.out.display(), s.line());
    Ok(())
}

fn tmp_path(out: &Path) -> PathBuf {
    let mut s = OsString::from(out.as_os_str());
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes the capture to `out` (via `out.tmp`); prints progress to stderr if `progress`.
pub fn generate(out: &Path, size_mb: u64, seed: u64, progress: bool) -> Result<Summary> {
    let started = Instant::now();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = tmp_path(out);
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let sink = sink::ThreadedFile::new(file).context("starting the writer thread")?;
    let w = PcapWriter::new(sink).with_context(|| format!("writing {}", tmp.display()))?;
    let (w, mut sum) = fill(w, size_mb.saturating_mul(1_000_000), seed, progress)
        .with_context(|| format!("writing {}", tmp.display()))?;
    let sink = w.finish().with_context(|| format!("writing {}", tmp.display()))?;
    sink.finish().with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    sum.secs = started.elapsed().as_secs_f64();
    Ok(sum)
}

/// The scheduler: keeps CONCURRENCY connections open, plays a few steps of a random one at a
/// time, sprinkles UDP noise, and once `target` bytes are written lets every connection finish.
fn fill<W: std::io::Write>(
    mut w: PcapWriter<W>,
    target: u64,
    seed: u64,
    progress: bool,
) -> std::io::Result<(PcapWriter<W>, Summary)> {
    let mut rng = Rng::new(seed);
    let pool = Pool::new(&mut rng);
    let world = World::new(&mut rng);
    let mut sum = Summary::default();
    let mut clock = Clock(START_US);
    let mut active: Vec<Conn> = Vec::with_capacity(CONCURRENCY);
    let mut spare: Vec<Conn> = Vec::new();
    let mut scratch = Vec::with_capacity(4096);
    let mut cport: u16 = 49_152;
    let mut filling = true;
    let step = (target / 10).max(1);
    let mut next_report = step;
    let t0 = Instant::now();
    loop {
        if filling && w.bytes >= target {
            filling = false;
            active.iter_mut().for_each(Conn::wrap_up);
        }
        while filling && active.len() < CONCURRENCY {
            let mut c = spare.pop().unwrap_or_default();
            cport = if cport >= 65_000 { 49_152 } else { cport + 1 };
            let (client, server) = world.pick(&mut rng);
            if rng.chance(30) {
                let (ep, mss) = world::endpoints(client, noise::HTTP_SERVER, None, 80, cport, &mut rng);
                c.reset(ep, mss, &mut rng);
                noise::http(&mut c, &mut rng)?;
                c.kind = session::K_HTTP;
            } else {
                let (ep, mss) = world::endpoints(client, server.v4, server.v6, server.port, cport, &mut rng);
                c.reset(ep, mss, &mut rng);
                let b = session::tls(&mut c, client, server, &mut rng, &pool, &mut scratch);
                sum.pq += u64::from(b.pq);
                sum.resumed += u64::from(b.resumed);
                sum.split_hello += u64::from(b.split);
                sum.disordered += u64::from(b.disordered);
            }
            sum.conns[c.kind] += 1;
            active.push(c);
        }
        if active.is_empty() {
            break;
        }
        let i = rng.usize(active.len());
        for _ in 0..1 + rng.below(4) {
            if active[i].step(&mut w, &mut clock, &mut rng, &pool)? {
                spare.push(active.swap_remove(i));
                break;
            }
        }
        if rng.chance(4) {
            let (client, server) = world.pick(&mut rng);
            sum.udp_packets += noise::udp(&mut w, &mut clock.0, &mut rng, &pool, client, server, &mut scratch)?;
        }
        if progress && w.bytes >= next_report {
            let secs = t0.elapsed().as_secs_f64();
            eprintln!(
                "gen: {:>5} / {} MB ({:>3}%), {:.1} s, {:.0} MB/s",
                w.bytes / 1_000_000,
                target / 1_000_000,
                w.bytes * 100 / target.max(1),
                secs,
                w.bytes as f64 / 1e6 / secs.max(1e-9)
            );
            next_report += step;
        }
    }
    sum.bytes = w.bytes;
    sum.packets = w.packets;
    Ok((w, sum))
}
