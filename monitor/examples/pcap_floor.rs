//! The pcap record-loop floor, run by `cargo xtask bench compare`: read a classic pcap with
//! pcap-parser through the same 1 MiB window tlsmon replay uses and sum the captured lengths,
//! nothing else — what no replay of that file can beat.
//!
//!   pcap_floor FILE
use std::fs::File;

use anyhow::{bail, Context, Result};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError};

fn main() -> Result<()> {
    let Some(path) = std::env::args_os().nth(1) else { bail!("usage: pcap_floor FILE") };
    let f = File::open(&path).with_context(|| format!("opening {}", path.to_string_lossy()))?;
    let mut r = LegacyPcapReader::new(1 << 20, f).map_err(|e| anyhow::anyhow!("not a classic pcap: {e:?}"))?;
    let (mut frames, mut bytes) = (0u64, 0u64);
    loop {
        match r.next() {
            Ok((len, block)) => {
                if let PcapBlockOwned::Legacy(b) = block {
                    frames += 1;
                    bytes += u64::from(b.caplen);
                }
                r.consume(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => r.refill().map_err(|e| anyhow::anyhow!("read error: {e:?}"))?,
            Err(e) => bail!("corrupt capture: {e:?}"),
        }
    }
    println!("{frames} frames, {bytes} bytes");
    Ok(())
}
