//! Fuzz inputs: how each target reads its bytes, and how the seed generator writes captured
//! traffic in the same shape — side by side, so the two cannot drift apart.
//! Must never panic on any input (the targets' own parsing must be the only thing under test).
use monitor::decode::{Addr, Packet, Transport};

/// Nanoseconds per second, for packet time.
const S: u64 = 1_000_000_000;

/// `[tag u16 LE][cut u16 LE][a][b]`: a tag (a port, flags) and bytes cut in two at `cut`
/// (clamped). Too short: tag 0 and both halves empty.
pub fn halves(data: &[u8]) -> (u16, &[u8], &[u8]) {
    let [t0, t1, c0, c1, rest @ ..] = data else { return (0, &[], &[]) };
    let cut = usize::from(u16::from_le_bytes([*c0, *c1])).min(rest.len());
    let (a, b) = rest.split_at(cut);
    (u16::from_le_bytes([*t0, *t1]), a, b)
}

/// The input [`halves`] reads back as `(tag, a, b)` (`a` longer than 64 KiB is cut).
pub fn write_halves(tag: u16, a: &[u8], b: &[u8]) -> Vec<u8> {
    let a = &a[..a.len().min(usize::from(u16::MAX))];
    let mut out = Vec::with_capacity(4 + a.len() + b.len());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&(a.len() as u16).to_le_bytes());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

/// `([len u16 LE][len bytes])*`: the input cut into length-prefixed chunks (the last one
/// clamped to what is left).
pub fn chunks(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let [l0, l1, rest @ ..] = data else { return None };
        let n = usize::from(u16::from_le_bytes([*l0, *l1])).min(rest.len());
        let (one, tail) = rest.split_at(n);
        data = tail;
        Some(one)
    })
}

/// Appends one chunk as [`chunks`] reads it (longer than 64 KiB: cut).
pub fn push_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    let chunk = &chunk[..chunk.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
    out.extend_from_slice(chunk);
}

/// UDP datagrams of one flow: [`chunks`], each `[direction byte][datagram]` (bit 0 of the
/// byte: 0 or 1, the flow key's direction). `f` gets each datagram with its direction.
pub fn datagrams(data: &[u8], mut f: impl FnMut(usize, &[u8])) {
    for c in chunks(data) {
        if let [dir, d @ ..] = c {
            f(usize::from(dir & 1), d);
        }
    }
}

/// Appends one datagram as [`datagrams`] reads it back.
pub fn push_datagram(out: &mut Vec<u8>, dir: usize, d: &[u8]) {
    let mut c = Vec::with_capacity(1 + d.len());
    c.push(u8::from(dir == 1));
    c.extend_from_slice(d);
    push_chunk(out, &c);
}

/// Bits of a synthetic packet's flag byte.
pub mod pkt {
    /// Sent by the server (else by the client).
    pub const FROM_SERVER: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const ACK: u8 = 0x04;
    pub const FIN: u8 = 0x08;
    pub const RST: u8 = 0x10;
    /// Which of four client ports (four flows to the same server).
    pub const CLIENT_SHIFT: u8 = 5;
    /// IPv6 addresses.
    pub const V6: u8 = 0x80;
}

/// Time between packets, in units of a quarter second (up to ~64 s: idle timeouts and the
/// plaintext settle time are reachable in a few packets).
const TICK_NS: u64 = S / 4;
/// Sequence number the first packet of each direction is relative to.
const ISN: [u32; 2] = [0x1000_0000, 0x8000_0000];

/// A sequence of TCP packets between clients and one server:
/// `[server port u16 LE]` then [`chunks`], each `[flags][seq delta i16 LE][ticks u8][payload]`.
/// The sequence number is the delta from where the direction's previous packet ended, so
/// in-order streams cost nothing to find while gaps, overlaps and retransmissions stay
/// reachable. `f` gets each packet with its time.
pub fn packets(data: &[u8], mut f: impl FnMut(u64, &Packet<'_>)) {
    let [p0, p1, rest @ ..] = data else { return };
    let server_port = u16::from_le_bytes([*p0, *p1]);
    let mut next = [[ISN[0]; 4], [ISN[1]; 4]];
    let mut ts = 1_700_000_000 * S;
    for c in chunks(rest) {
        let [flags, d0, d1, ticks, payload @ ..] = c else { continue };
        let from_server = usize::from(flags & pkt::FROM_SERVER != 0);
        let client = usize::from(flags >> pkt::CLIENT_SHIFT & 3);
        let seq = next[from_server][client].wrapping_add_signed(i32::from(i16::from_le_bytes([*d0, *d1])));
        let (syn, fin) = (flags & pkt::SYN != 0, flags & pkt::FIN != 0);
        next[from_server][client] = seq.wrapping_add(payload.len() as u32 + u32::from(syn) + u32::from(fin));
        ts += u64::from(*ticks) * TICK_NS;
        let (c_addr, s_addr) = if flags & pkt::V6 != 0 {
            (
                Addr::v6([0xfd, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                Addr::v6([0xfd, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
            )
        } else {
            (Addr::v4([10, 99, 0, 1]), Addr::v4([10, 99, 0, 2]))
        };
        let c_port = 40_000 + client as u16;
        let (src, dst, src_port, dst_port) = if from_server == 1 {
            (s_addr, c_addr, server_port, c_port)
        } else {
            (c_addr, s_addr, c_port, server_port)
        };
        let p = Packet {
            src,
            dst,
            src_port,
            dst_port,
            transport: Transport::Tcp,
            syn,
            ack: flags & pkt::ACK != 0,
            fin,
            rst: flags & pkt::RST != 0,
            seq,
            payload,
            truncated: false,
            local: None,
        };
        f(ts, &p);
    }
}

/// Writes real packets of one flow as [`packets`] reads them back (seed generation).
pub struct PacketWriter {
    out: Vec<u8>,
    /// Per direction, the real sequence number the previous packet ended at.
    next: [Option<u32>; 2],
    last_ns: Option<u64>,
}

impl PacketWriter {
    pub fn new(server_port: u16) -> Self {
        PacketWriter { out: server_port.to_le_bytes().to_vec(), next: [None; 2], last_ns: None }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.len() <= 2
    }

    /// Appends a packet of the flow (client 0), `from_server` telling its direction.
    pub fn push(&mut self, ts_ns: u64, from_server: bool, p: &Packet<'_>) {
        let dir = usize::from(from_server);
        let delta = self.next[dir].map_or(0, |n| p.seq.wrapping_sub(n) as i32);
        let delta = delta.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        self.next[dir] = Some(p.seq.wrapping_add(p.payload.len() as u32 + u32::from(p.syn) + u32::from(p.fin)));
        let ticks = self.last_ns.map_or(0, |l| ts_ns.saturating_sub(l) / TICK_NS).min(255) as u8;
        self.last_ns = Some(ts_ns);
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        let flags = bit(from_server, pkt::FROM_SERVER)
            | bit(p.syn, pkt::SYN)
            | bit(p.ack, pkt::ACK)
            | bit(p.fin, pkt::FIN)
            | bit(p.rst, pkt::RST)
            | bit(p.src.v6, pkt::V6);
        let mut c = vec![flags];
        c.extend_from_slice(&delta.to_le_bytes());
        c.push(ticks);
        c.extend_from_slice(p.payload);
        push_chunk(&mut self.out, &c);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_trip() {
        let data = write_halves(2575, b"client", b"server!");
        assert_eq!(halves(&data), (2575, &b"client"[..], &b"server!"[..]));
        assert_eq!(halves(&[1, 0, 0xff]), (0, &[][..], &[][..]));
        // The cut is clamped to what follows.
        assert_eq!(halves(&[7, 0, 0xff, 0xff, 1, 2]), (7, &[1, 2][..], &[][..]));
    }

    #[test]
    fn datagrams_round_trip() {
        let mut out = Vec::new();
        push_datagram(&mut out, 1, b"\xc0quic");
        push_datagram(&mut out, 0, b"");
        let mut seen = Vec::new();
        datagrams(&out, |dir, d| seen.push((dir, d.to_vec())));
        assert_eq!(seen, [(1, b"\xc0quic".to_vec()), (0, Vec::new())]);
    }

    #[test]
    fn packets_round_trip() {
        let mk = |payload: &'static [u8], seq: u32, syn: bool| Packet {
            src: Addr::v4([192, 0, 2, 1]),
            dst: Addr::v4([192, 0, 2, 2]),
            src_port: 50_000,
            dst_port: 443,
            transport: Transport::Tcp,
            syn,
            ack: !syn,
            fin: false,
            rst: false,
            seq,
            payload,
            truncated: false,
            local: None,
        };
        let mut w = PacketWriter::new(443);
        w.push(5 * S, false, &mk(b"", 99, true));
        w.push(5 * S + S / 2, false, &mk(b"hello", 100, false));
        // A gap of three bytes.
        w.push(6 * S, false, &mk(b"world", 108, false));
        let mut seen = Vec::new();
        packets(&w.into_bytes(), |ts, p| seen.push((ts, p.seq, p.syn, p.dst_port, p.payload.to_vec())));
        let t0 = seen[0].0;
        let s0 = seen[0].1;
        assert_eq!(seen.len(), 3);
        assert_eq!((seen[1].0 - t0, seen[1].1 - s0, seen[1].4.as_slice()), (2 * TICK_NS, 1, &b"hello"[..]));
        assert_eq!((seen[2].0 - t0, seen[2].1 - s0, seen[2].3), (4 * TICK_NS, 9, 443));
        assert!(seen[0].2 && !seen[1].2);
    }
}
