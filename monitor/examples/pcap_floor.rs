//! The pcap record-loop floor, run by `cargo xtask bench compare`: walk a capture the way
//! `tlsmon replay` does (mapped and walked in place, or with `--read` through the 1 MiB read
//! window of `--no-mmap`) and sum the captured lengths, nothing else — what no replay of that
//! file can beat. Only the record headers are touched, not the bytes of each frame.
//!
//!   pcap_floor [--read] FILE
use std::fs::File;

use anyhow::{bail, Context, Result};
use monitor::capture::mapped;
use monitor::capture::pcap::PcapReader;

fn main() -> Result<()> {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let read = args.first().is_some_and(|a| a == "--read");
    if read {
        args.remove(0);
    }
    let [path] = &args[..] else { bail!("usage: pcap_floor [--read] FILE") };
    let f = File::open(path).with_context(|| format!("opening {}", path.to_string_lossy()))?;
    let reader = match (read, mapped::map(&f)) {
        (false, Some(map)) => PcapReader::mapped(map),
        _ => PcapReader::new(f),
    };
    let mut reader = reader.map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut frames, mut bytes) = (0u64, 0u64);
    while reader
        .next_frames(usize::MAX, |fr| {
            frames += 1;
            bytes += fr.data.len() as u64;
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {}
    println!("{frames} frames, {bytes} bytes");
    Ok(())
}
