//! gen-phi TCP framing: one capture = sequential TCP connections (3-way handshake, payload
//! segments of at most 1448 bytes with ACKs, FIN teardown) written with the `gen` pcap writer.
//! Must never read the clock or OS randomness: timestamps, ISNs and ports follow a fixed plan.
use std::io;

use crate::gen::pcap::{Endpoints, Ips, PcapWriter, Seg, ACK, FIN, PSH, SYN};
use crate::gen::START_US;

/// Largest TCP payload per segment (MSS 1460 minus the 12-byte timestamp option).
pub const MSS: usize = 1448;
/// Packet spacing.
const STEP_US: u64 = 2_000;

pub struct Pcap {
    w: PcapWriter<Vec<u8>>,
    t: u64,
    conns: u16,
}

impl Pcap {
    pub fn new() -> io::Result<Self> {
        Ok(Pcap { w: PcapWriter::new(Vec::with_capacity(16_384))?, t: START_US, conns: 0 })
    }

    pub fn finish(self) -> io::Result<Vec<u8>> {
        self.w.finish()
    }

    /// Opens a connection to `port` from an ephemeral client port (IPv4 10.77.0.0/16 or
    /// IPv6 fd00:77::/64) and writes its handshake.
    pub fn conn(&mut self, v6: bool, port: u16) -> io::Result<Tcp<'_>> {
        let cport = 49_200 + 11 * self.conns;
        self.conn_ports(v6, [cport, port])
    }

    /// As [`Pcap::conn`] with both ports given (index 0 = the side that sends the SYN).
    pub fn conn_ports(&mut self, v6: bool, port: [u16; 2]) -> io::Result<Tcp<'_>> {
        let n = self.conns;
        self.conns += 1;
        let host = 10 + n as u8;
        let ips = if v6 {
            let mut client = [0u8; 16];
            client[..4].copy_from_slice(&[0xfd, 0x00, 0x00, 0x77]);
            let mut server = client;
            client[15] = host;
            server[14] = 0x01;
            server[15] = 0x04;
            Ips::V6 { client, server }
        } else {
            Ips::V4 { client: [10, 77, 0, host], server: [10, 77, 1, 4] }
        };
        let ep = Endpoints {
            vlan: 0,
            mac: [[0x02, 0x77, 0, 0, 0, host], [0x02, 0x77, 0, 0, 1, 4]],
            ips,
            port,
            ttl: [64, 64],
        };
        let isn = [0x1a2b_3c4d_u32.wrapping_add(u32::from(n).wrapping_mul(0x0101_9e37)), 0x7e5d_0000 ^ u32::from(n)];
        let mut t = Tcp { p: self, ep, next: isn, ip_id: [0x3100 + n * 64, 0x5100 + n * 64] };
        t.pkt(0, SYN, &[])?;
        t.pkt(1, SYN | ACK, &[])?;
        t.pkt(0, ACK, &[])?;
        Ok(t)
    }
}

/// One open connection. Side 0 = client (SYN sender), 1 = server.
pub struct Tcp<'a> {
    p: &'a mut Pcap,
    ep: Endpoints,
    next: [u32; 2],
    ip_id: [u16; 2],
}

impl Tcp<'_> {
    fn pkt(&mut self, side: usize, flags: u8, payload: &[u8]) -> io::Result<()> {
        self.p.t += STEP_US;
        let ms = (self.p.t / 1_000) as u32;
        let seg = Seg {
            side,
            seq: self.next[side],
            ack: if flags & ACK != 0 { self.next[1 - side] } else { 0 },
            flags,
            ip_id: self.ip_id[side],
            tsval: ms,
            tsecr: if flags == SYN { 0 } else { ms.wrapping_sub(2) },
            payload,
        };
        self.ip_id[side] = self.ip_id[side].wrapping_add(1);
        let grow = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.next[side] = self.next[side].wrapping_add(grow);
        self.p.w.tcp(self.p.t, &self.ep, &seg)
    }

    /// `side` sends `data` (in MSS-sized segments), then the peer ACKs it.
    pub fn send(&mut self, side: usize, data: &[u8]) -> io::Result<()> {
        self.send_cut(side, data, &[])
    }

    /// As [`Tcp::send`], but also cutting the segments after each offset in `cuts` (ascending),
    /// so one application message spans several segments.
    pub fn send_cut(&mut self, side: usize, data: &[u8], cuts: &[usize]) -> io::Result<()> {
        let mut start = 0;
        let mut cuts = cuts.iter().copied().filter(|&c| c > 0 && c < data.len()).peekable();
        while start < data.len() {
            while cuts.next_if(|&c| c <= start).is_some() {}
            let end = cuts.peek().copied().unwrap_or(data.len()).min(start + MSS);
            let flags = if end == data.len() { PSH | ACK } else { ACK };
            self.pkt(side, flags, &data[start..end])?;
            start = end;
        }
        self.pkt(1 - side, ACK, &[])
    }

    /// Client FIN, server FIN, client ACK.
    pub fn close(mut self) -> io::Result<()> {
        self.pkt(0, FIN | ACK, &[])?;
        self.pkt(1, FIN | ACK, &[])?;
        self.pkt(0, ACK, &[])
    }
}

/// Test helpers: parse back what [`Pcap`] wrote.
#[cfg(test)]
pub mod parse {
    /// One TCP packet: (ports [src, dst], seq, ack, flags, payload).
    pub struct Pkt {
        pub ts_us: u64,
        pub ports: [u16; 2],
        pub seq: u32,
        pub ack: u32,
        pub flags: u8,
        pub payload: Vec<u8>,
    }

    pub fn packets(pcap: &[u8]) -> Vec<Pkt> {
        assert_eq!(&pcap[..4], &0xa1b2_c3d4u32.to_le_bytes());
        let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut out = Vec::new();
        let mut o = 24;
        while o < pcap.len() {
            let ts = u64::from(u32le(&pcap[o..])) * 1_000_000 + u64::from(u32le(&pcap[o + 4..]));
            let len = u32le(&pcap[o + 8..]) as usize;
            let f = &pcap[o + 16..o + 16 + len];
            o += 16 + len;
            let (proto, l4) = match u16::from_be_bytes([f[12], f[13]]) {
                0x0800 => {
                    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
                    assert_eq!(total, len - 14, "IPv4 total length");
                    (f[23], &f[14 + usize::from(f[14] & 15) * 4..])
                }
                0x86dd => {
                    assert_eq!(usize::from(u16::from_be_bytes([f[18], f[19]])), len - 54, "IPv6 payload length");
                    (f[20], &f[54..])
                }
                e => panic!("ethertype {e:#x}"),
            };
            assert_eq!(proto, 6);
            let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            out.push(Pkt {
                ts_us: ts,
                ports: [u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]])],
                seq: be32(&l4[4..]),
                ack: be32(&l4[8..]),
                flags: l4[13],
                payload: l4[usize::from(l4[12] >> 4) * 4..].to_vec(),
            });
        }
        out
    }

    /// Per connection (in order of SYN), the client and server byte streams.
    pub fn streams(pcap: &[u8]) -> Vec<[Vec<u8>; 2]> {
        let mut conns: Vec<([u16; 2], [Vec<u8>; 2])> = Vec::new();
        for p in packets(pcap) {
            if p.flags == super::SYN {
                conns.push((p.ports, [Vec::new(), Vec::new()]));
            }
            let c =
                conns.iter_mut().rev().find(|c| c.0 == p.ports || c.0 == [p.ports[1], p.ports[0]]).expect("known conn");
            let side = usize::from(c.0 != p.ports);
            c.1[side].extend_from_slice(&p.payload);
        }
        conns.into_iter().map(|c| c.1).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_consecutive_and_split_at_mss() {
        let mut p = Pcap::new().unwrap();
        let mut c = p.conn(false, 104).unwrap();
        let big = vec![7u8; 3000];
        c.send_cut(0, &big, &[10]).unwrap();
        c.send(1, b"ok").unwrap();
        c.close().unwrap();
        let bytes = p.finish().unwrap();
        let pk = parse::packets(&bytes);
        let lens: Vec<usize> = pk.iter().map(|p| p.payload.len()).collect();
        assert_eq!(lens, [0, 0, 0, 10, 1448, 1448, 94, 0, 2, 0, 0, 0, 0]);
        assert_eq!(parse::streams(&bytes)[0][0], big);
        assert!(pk.windows(2).all(|w| w[1].ts_us > w[0].ts_us));
        assert_eq!(pk[0].ts_us, START_US + STEP_US);
    }
}
