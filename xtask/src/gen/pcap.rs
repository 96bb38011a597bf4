//! Generator output: classic pcap (LINKTYPE_ETHERNET, µs) framing of Ethernet/802.1Q/IPv4/IPv6
//! TCP and UDP packets. Must never allocate per packet: headers go through one fixed buffer.
use std::io::{self, Write};

pub const SNAPLEN: u32 = 262_144;
const LINKTYPE_ETHERNET: u32 = 1;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// TCP header with NOP NOP Timestamps (32 bytes); SYNs carry MSS, SACK-perm, TS, NOP, WS (40).
const TCP_HDR: usize = 32;
const TCP_SYN_HDR: usize = 40;

#[derive(Clone, Copy)]
pub enum Ips {
    V4 { client: [u8; 4], server: [u8; 4] },
    V6 { client: [u8; 16], server: [u8; 16] },
}

/// Both ends of one flow as they appear on the wire. Index 0 = client, 1 = server.
#[derive(Clone, Copy)]
pub struct Endpoints {
    /// 802.1Q VLAN id; 0 = untagged.
    pub vlan: u16,
    pub mac: [[u8; 6]; 2],
    pub ips: Ips,
    pub port: [u16; 2],
    pub ttl: [u8; 2],
}

/// One TCP segment from `side` (0 client, 1 server).
pub struct Seg<'a> {
    pub side: usize,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub ip_id: u16,
    pub tsval: u32,
    pub tsecr: u32,
    pub payload: &'a [u8],
}

pub struct PcapWriter<W: Write> {
    w: W,
    hdr: [u8; 128],
    pub bytes: u64,
    pub packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header. `w` should be buffered (a big `BufWriter`).
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut g = [0u8; 24];
        g[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        g[4..6].copy_from_slice(&2u16.to_le_bytes());
        g[6..8].copy_from_slice(&4u16.to_le_bytes());
        g[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        g[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&g)?;
        Ok(PcapWriter { w, hdr: [0; 128], bytes: 24, packets: 0 })
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }

    /// Writes Ethernet [+ 802.1Q] + IP headers into `self.hdr`; returns the offset after them.
    fn l2l3(&mut self, ep: &Endpoints, side: usize, proto: u8, l4_len: usize, ip_id: u16) -> usize {
        let h = &mut self.hdr;
        h[0..6].copy_from_slice(&ep.mac[1 - side]);
        h[6..12].copy_from_slice(&ep.mac[side]);
        let mut o = 12;
        if ep.vlan != 0 {
            h[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
            h[14..16].copy_from_slice(&ep.vlan.to_be_bytes());
            o = 16;
        }
        match ep.ips {
            Ips::V4 { client, server } => {
                h[o..o + 2].copy_from_slice(&0x0800u16.to_be_bytes());
                let ip = o + 2;
                let (src, dst) = if side == 0 { (client, server) } else { (server, client) };
                h[ip] = 0x45;
                h[ip + 1] = 0;
                h[ip + 2..ip + 4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
                h[ip + 4..ip + 6].copy_from_slice(&ip_id.to_be_bytes());
                h[ip + 6..ip + 8].copy_from_slice(&0x4000u16.to_be_bytes());
                h[ip + 8] = ep.ttl[side];
                h[ip + 9] = proto;
                h[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
                h[ip + 12..ip + 16].copy_from_slice(&src);
                h[ip + 16..ip + 20].copy_from_slice(&dst);
                let sum = ipv4_checksum(&h[ip..ip + 20]);
                h[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
                ip + 20
            }
            Ips::V6 { client, server } => {
                h[o..o + 2].copy_from_slice(&0x86ddu16.to_be_bytes());
                let ip = o + 2;
                let (src, dst) = if side == 0 { (client, server) } else { (server, client) };
                h[ip..ip + 4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
                h[ip + 4..ip + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                h[ip + 6] = proto;
                h[ip + 7] = ep.ttl[side];
                h[ip + 8..ip + 24].copy_from_slice(&src);
                h[ip + 24..ip + 40].copy_from_slice(&dst);
                ip + 40
            }
        }
    }

    fn emit(&mut self, ts_us: u64, hdr_len: usize, payload: &[u8]) -> io::Result<()> {
        let len = (hdr_len + payload.len()) as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.w.write_all(&rec)?;
        self.w.write_all(&self.hdr[..hdr_len])?;
        self.w.write_all(payload)?;
        self.bytes += 16 + u64::from(len);
        self.packets += 1;
        Ok(())
    }

    pub fn tcp(&mut self, ts_us: u64, ep: &Endpoints, s: &Seg) -> io::Result<()> {
        let syn = s.flags & SYN != 0;
        let th = if syn { TCP_SYN_HDR } else { TCP_HDR };
        let t = self.l2l3(ep, s.side, 6, th + s.payload.len(), s.ip_id);
        let h = &mut self.hdr;
        h[t..t + 2].copy_from_slice(&ep.port[s.side].to_be_bytes());
        h[t + 2..t + 4].copy_from_slice(&ep.port[1 - s.side].to_be_bytes());
        h[t + 4..t + 8].copy_from_slice(&s.seq.to_be_bytes());
        h[t + 8..t + 12].copy_from_slice(&s.ack.to_be_bytes());
        h[t + 12] = ((th / 4) as u8) << 4;
        h[t + 13] = s.flags;
        let win: u16 = if syn { 64_240 } else { 2_052 };
        h[t + 14..t + 16].copy_from_slice(&win.to_be_bytes());
        h[t + 16..t + 20].copy_from_slice(&[0, 0, 0, 0]); // checksum (not computed), urgent
        let o = t + 20;
        if syn {
            // MSS 1460, SACK permitted, Timestamps, NOP, window scale 7.
            h[o..o + 4].copy_from_slice(&[2, 4, 0x05, 0xb4]);
            h[o + 4..o + 6].copy_from_slice(&[4, 2]);
            h[o + 6..o + 8].copy_from_slice(&[8, 10]);
            h[o + 8..o + 12].copy_from_slice(&s.tsval.to_be_bytes());
            h[o + 12..o + 16].copy_from_slice(&s.tsecr.to_be_bytes());
            h[o + 16..o + 20].copy_from_slice(&[1, 3, 3, 7]);
        } else {
            h[o..o + 4].copy_from_slice(&[1, 1, 8, 10]);
            h[o + 4..o + 8].copy_from_slice(&s.tsval.to_be_bytes());
            h[o + 8..o + 12].copy_from_slice(&s.tsecr.to_be_bytes());
        }
        self.emit(ts_us, t + th, s.payload)
    }

    /// One UDP datagram from `side` (checksum left zero).
    pub fn udp(&mut self, ts_us: u64, ep: &Endpoints, side: usize, ip_id: u16, payload: &[u8]) -> io::Result<()> {
        let t = self.l2l3(ep, side, 17, 8 + payload.len(), ip_id);
        let h = &mut self.hdr;
        h[t..t + 2].copy_from_slice(&ep.port[side].to_be_bytes());
        h[t + 2..t + 4].copy_from_slice(&ep.port[1 - side].to_be_bytes());
        h[t + 4..t + 6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        h[t + 6..t + 8].copy_from_slice(&[0, 0]);
        self.emit(ts_us, t + 8, payload)
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h.chunks_exact(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_checksum_matches_known_header() {
        // RFC 1071 style example: header from a real capture, checksum field zeroed; expect 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
    }
}
