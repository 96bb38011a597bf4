//! `cargo xtask bench floods` inputs: deterministic hostile captures that push the agent's
//! bounds (out-of-order data, SYN-only flows, half TLS records, overlapping segments), written
//! with the generator's pcap writer. Must never depend on the clock or OS randomness: the same
//! flood and flow count give byte-identical files, and every flow has its own 4-tuple.
//!
//! Packet time advances 1 µs per packet from [`START_US`], so even the largest flood (4.6 M
//! packets) spans under 5 s of packet time: far inside the 120 s idle timeout, so idle expiry
//! never frees memory for free and every flow is still open at the end of input.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use monitor_common::{HEAD_BUDGET_CLIENT, HEAD_BUDGET_SERVER};

use super::pcap::{Endpoints, Ips, PcapWriter, Seg, ACK, PSH, SYN};
use super::{sink, tmp_path, START_US};

/// Out-of-order segments the agent's head reassembly holds per direction
/// (monitor/src/flow/reassembly.rs `MAX_PENDING`; xtask does not link the agent).
pub const MAX_PENDING: u32 = 32;
/// Bump when the bytes of any flood change (the bench reuses files by this).
pub const FLOODS_VERSION: u32 = 1;

/// Payload bytes per segment, as with MSS 1460 and the timestamp option.
const MSS: usize = 1448;
/// `ooo` overlap: each out-of-order segment's length and the step between their offsets.
const OV_LEN: u32 = 256;
const OV_STEP: u32 = 64;
/// TLS handshake record header claiming a 16 KiB record (TLS 1.0 record version).
const REC_16K: [u8; 5] = [22, 3, 1, 0x40, 0x00];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flood {
    /// Out-of-order data: SYN, SYN-ACK, then per direction 32 segments past a missing first
    /// byte that together fill the head budget (8 KiB client, 16 KiB server), in descending
    /// order; plus one more out-of-order byte (refused: pending full) and one byte at the
    /// budget (refused: beyond budget).
    Ooo,
    /// SYN-only flows: one SYN each, nothing else.
    Syn,
    /// Half records: SYN, SYN-ACK, then the client sends a handshake record header claiming
    /// 16 384 bytes and only 8 186 of them (head budget - 1), so the TLS parser must buffer.
    Half,
    /// Overlaps: SYN, SYN-ACK, a 16 KiB record header missing, 32 out-of-order segments of
    /// 256 bytes 64 apart (each overlapping the next three, different bytes), 4 retransmissions
    /// of held offsets with other bytes, one segment refused (pending full), the header (which
    /// drains them), 4 retransmissions of delivered bytes and one straddling the delivered end.
    Overlap,
}

impl Flood {
    pub const ALL: [Flood; 4] = [Flood::Ooo, Flood::Syn, Flood::Half, Flood::Overlap];

    pub fn name(self) -> &'static str {
        match self {
            Flood::Ooo => "ooo",
            Flood::Syn => "syn",
            Flood::Half => "half",
            Flood::Overlap => "overlap",
        }
    }

    /// The flow count issue 13 asks for.
    pub fn default_flows(self) -> u32 {
        match self {
            Flood::Ooo => 65_536,
            Flood::Syn => 2_000_000,
            Flood::Half => 200_000,
            Flood::Overlap => 50_000,
        }
    }

    /// Packets each flow contributes.
    pub fn packets_per_flow(self) -> u64 {
        match self {
            Flood::Ooo => 2 + 2 * (u64::from(MAX_PENDING) + 2),
            Flood::Syn => 1,
            Flood::Half => 2 + half_client_bytes().div_ceil(MSS) as u64,
            Flood::Overlap => 2 + u64::from(MAX_PENDING) + 4 + 1 + 1 + 4 + 1,
        }
    }

    /// Second octet of the clients' 10.x addresses (one range per flood).
    fn net(self) -> u8 {
        match self {
            Flood::Ooo => 64,
            Flood::Syn => 80,
            Flood::Half => 96,
            Flood::Overlap => 112,
        }
    }
}

/// Bytes the `half` client sends: the record header, and the body up to one byte short of the
/// client head budget (the head is not used up, so nothing makes the parser give up).
fn half_client_bytes() -> usize {
    HEAD_BUDGET_CLIENT as usize - 1
}

/// What a flood file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodSummary {
    pub flows: u32,
    pub packets: u64,
    pub bytes: u64,
}

/// Writes `flows` flows of `flood` to `out` (via `out.tmp`).
pub fn generate(out: &Path, flood: Flood, flows: u32) -> Result<FloodSummary> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = tmp_path(out);
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let w = sink::ThreadedFile::new(file).context("starting the writer thread")?;
    let w = PcapWriter::new(w).with_context(|| format!("writing {}", tmp.display()))?;
    let (w, sum) = write(w, flood, flows).with_context(|| format!("writing {}", tmp.display()))?;
    let w = w.finish().with_context(|| format!("writing {}", tmp.display()))?;
    w.finish().with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    Ok(sum)
}

/// Writes the flood's packets, one flow after the other.
pub fn write<W: Write>(mut w: PcapWriter<W>, flood: Flood, flows: u32) -> io::Result<(PcapWriter<W>, FloodSummary)> {
    let mut f = Flow { clock: START_US, ep: endpoints(flood, 0), isn: [0; 2], ip_id: 0, fill: vec![0; 16 << 10] };
    for i in 0..flows {
        f.ep = endpoints(flood, i);
        f.isn = [mix(u64::from(i) << 1) as u32, mix(u64::from(i) << 1 | 1) as u32];
        f.ip_id = i as u16;
        match flood {
            Flood::Ooo => ooo(&mut w, &mut f, i)?,
            Flood::Syn => f.syn(&mut w, 0)?,
            Flood::Half => half(&mut w, &mut f, i)?,
            Flood::Overlap => overlap(&mut w, &mut f, i)?,
        }
    }
    let sum = FloodSummary { flows, packets: w.packets, bytes: w.bytes };
    Ok((w, sum))
}

/// Flow `i`'s ends: client 10.{net}.x.y (16 source ports per address), one of 16 servers
/// 10.200.{net}.1..16 on port 443. Distinct `i` give distinct 4-tuples up to 2^20 * 16 flows.
fn endpoints(flood: Flood, i: u32) -> Endpoints {
    let host = (u32::from(flood.net()) << 16) + (i >> 4);
    let c = (10u32 << 24 | host).to_be_bytes();
    Endpoints {
        vlan: 0,
        mac: [[0x02, 0, 0, 0, 0, 0x01], [0x02, 0, 0, 0, 0, 0x02]],
        ips: Ips::V4 { client: c, server: [10, 200, flood.net(), 1 + (i % 16) as u8] },
        port: [32_768 + (i & 15) as u16 * 1_024 + (i >> 4) as u16 % 1_024, 443],
        ttl: [64, 60],
    }
}

/// splitmix64: deterministic ISNs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The state of the flow being written.
struct Flow {
    clock: u64,
    ep: Endpoints,
    isn: [u32; 2],
    ip_id: u16,
    fill: Vec<u8>,
}

impl Flow {
    fn seg<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        side: usize,
        flags: u8,
        seq: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        let ts = self.clock;
        self.clock += 1;
        self.ip_id = self.ip_id.wrapping_add(1);
        let ack = if flags & SYN != 0 && side == 0 { 0 } else { self.isn[1 - side].wrapping_add(1) };
        let tsval = (ts / 1_000) as u32;
        let s = Seg { side, seq, ack, flags, ip_id: self.ip_id, tsval, tsecr: tsval, payload };
        w.tcp(ts, &self.ep, &s)
    }

    /// SYN from the client (side 0) or SYN-ACK from the server (side 1).
    fn syn<W: Write>(&mut self, w: &mut PcapWriter<W>, side: usize) -> io::Result<()> {
        let flags = if side == 0 { SYN } else { SYN | ACK };
        self.seg(w, side, flags, self.isn[side], &[])
    }

    /// Data from `side` at stream offset `off` (byte 0 is ISN + 1): `len` bytes of `fill`.
    fn data<W: Write>(&mut self, w: &mut PcapWriter<W>, side: usize, off: u32, len: usize, fill: u8) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.fill);
        buf[..len].fill(fill);
        let seq = self.isn[side].wrapping_add(1).wrapping_add(off);
        let r = self.seg(w, side, ACK | PSH, seq, &buf[..len]);
        self.fill = buf;
        r
    }

    /// Data from `side` at stream offset `off` with the given bytes.
    fn bytes<W: Write>(&mut self, w: &mut PcapWriter<W>, side: usize, off: u32, payload: &[u8]) -> io::Result<()> {
        let seq = self.isn[side].wrapping_add(1).wrapping_add(off);
        self.seg(w, side, ACK | PSH, seq, payload)
    }
}

fn ooo<W: Write>(w: &mut PcapWriter<W>, f: &mut Flow, i: u32) -> io::Result<()> {
    f.syn(w, 0)?;
    f.syn(w, 1)?;
    for (side, limit) in [(0, HEAD_BUDGET_CLIENT), (1, HEAD_BUDGET_SERVER)] {
        // Byte 0 is missing; 32 segments of (limit - 1) / 32 bytes from offset 1, last first.
        let len = (limit - 1) / MAX_PENDING;
        for k in (0..MAX_PENDING).rev() {
            f.data(w, side, 1 + k * len, len as usize, (i as u8).wrapping_add(k as u8))?;
        }
        f.data(w, side, limit - 1, 1, 0xee)?;
        f.data(w, side, limit, 1, 0xef)?;
    }
    Ok(())
}

fn half<W: Write>(w: &mut PcapWriter<W>, f: &mut Flow, i: u32) -> io::Result<()> {
    f.syn(w, 0)?;
    f.syn(w, 1)?;
    let total = half_client_bytes();
    let mut msg = vec![i as u8; total];
    msg[..5].copy_from_slice(&REC_16K);
    // A ClientHello claiming the rest of the record.
    msg[5..9].copy_from_slice(&[1, 0, 0x3f, 0xfc]);
    msg[9..11].copy_from_slice(&[3, 3]);
    for (k, chunk) in msg.chunks(MSS).enumerate() {
        f.bytes(w, 0, (k * MSS) as u32, chunk)?;
    }
    Ok(())
}

fn overlap<W: Write>(w: &mut PcapWriter<W>, f: &mut Flow, i: u32) -> io::Result<()> {
    f.syn(w, 0)?;
    f.syn(w, 1)?;
    let b = i as u8;
    let hdr = REC_16K.len() as u32;
    for k in (0..MAX_PENDING).rev() {
        f.data(w, 0, hdr + k * OV_STEP, OV_LEN as usize, b.wrapping_add(k as u8))?;
    }
    for k in 0..4 {
        f.data(w, 0, hdr + k * 7 * OV_STEP, OV_LEN as usize, !b.wrapping_add(k as u8))?;
    }
    f.data(w, 0, hdr + MAX_PENDING * OV_STEP, OV_LEN as usize, 0xee)?;
    f.bytes(w, 0, 0, &REC_16K)?;
    let delivered = hdr + (MAX_PENDING - 1) * OV_STEP + OV_LEN;
    for k in 0..4 {
        f.data(w, 0, k * 300, 512, 0xa0 + k as u8)?;
    }
    f.data(w, 0, delivered - 100, 400, 0xb0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood(which: Flood, flows: u32) -> (Vec<u8>, FloodSummary) {
        let w = PcapWriter::new(Vec::new()).expect("header");
        let (w, sum) = write(w, which, flows).expect("write");
        (w.finish().expect("finish"), sum)
    }

    /// (src ip, src port, dst ip, dst port, flags, seq, payload length) of a frame.
    type Frame = ([u8; 4], u16, [u8; 4], u16, u8, u32, usize);

    fn frames(pcap: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        let (mut off, mut last) = (24, 0u64);
        while off < pcap.len() {
            let u = |i: usize| u64::from(u32::from_le_bytes(pcap[off + i..off + i + 4].try_into().expect("4")));
            let (ts, len) = (u(0) * 1_000_000 + u(4), u(8) as usize);
            assert!(ts > last, "packet time increases");
            last = ts;
            let p = etherparse::SlicedPacket::from_ethernet(&pcap[off + 16..off + 16 + len]).expect("frame parses");
            let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else { panic!("IPv4") };
            let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport else { panic!("TCP") };
            let flags = u8::from(t.fin()) | u8::from(t.syn()) << 1 | u8::from(t.psh()) << 3 | u8::from(t.ack()) << 4;
            let h = ip.header();
            out.push((
                h.source(),
                t.source_port(),
                h.destination(),
                t.destination_port(),
                flags,
                t.sequence_number(),
                t.payload().len(),
            ));
            off += 16 + len;
        }
        out
    }

    #[test]
    fn packet_counts_match_the_per_flow_plan() {
        for which in Flood::ALL {
            let (pcap, sum) = flood(which, 40);
            let fr = frames(&pcap);
            assert_eq!(fr.len() as u64, which.packets_per_flow() * 40, "{which:?}");
            assert_eq!((sum.packets, sum.bytes, sum.flows), (fr.len() as u64, pcap.len() as u64, 40), "{which:?}");
            let syns = fr.iter().filter(|f| f.4 == SYN).count();
            assert_eq!(syns, 40, "{which:?}: one client SYN per flow");
        }
    }

    #[test]
    fn same_input_same_bytes() {
        for which in Flood::ALL {
            assert_eq!(flood(which, 33).0, flood(which, 33).0, "{which:?}");
        }
        assert_ne!(flood(Flood::Ooo, 3).0, flood(Flood::Overlap, 3).0);
    }

    #[test]
    fn four_tuples_are_distinct_over_the_syn_flood_range() {
        let mut seen = std::collections::HashSet::new();
        for i in (0..Flood::Syn.default_flows()).step_by(7).chain([Flood::Syn.default_flows() - 1]) {
            let ep = endpoints(Flood::Syn, i);
            let Ips::V4 { client, server } = ep.ips else { panic!("v4") };
            assert_eq!(client[0], 10);
            assert!(seen.insert((client, ep.port[0], server)), "flow {i} repeats a 4-tuple");
        }
    }

    #[test]
    fn ooo_fills_the_budget_past_a_missing_first_byte() {
        let (pcap, _) = flood(Flood::Ooo, 1);
        let fr = frames(&pcap);
        let isn = |side: usize| fr[side].5.wrapping_add(1);
        for (side, limit) in [(0usize, HEAD_BUDGET_CLIENT), (1, HEAD_BUDGET_SERVER)] {
            let dir: Vec<_> = fr.iter().filter(|f| (f.3 == 443) == (side == 0) && f.6 > 0).collect();
            let offs: Vec<u32> = dir.iter().map(|f| f.5.wrapping_sub(isn(side))).collect();
            assert!(offs.iter().all(|&o| o >= 1), "byte 0 never sent");
            let held: usize = dir[..MAX_PENDING as usize].iter().map(|f| f.6).sum();
            assert!(held as u32 > limit - MAX_PENDING - 1 && (held as u32) < limit, "{held} of {limit}");
            assert_eq!(offs[MAX_PENDING as usize + 1], limit, "one byte beyond the budget");
        }
    }
}
