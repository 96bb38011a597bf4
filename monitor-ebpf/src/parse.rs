//! Kernel header parser: Ethernet (up to two VLAN tags, 802.1Q or QinQ) → IPv4 (options) /
//! IPv6 (common extension headers) → TCP/UDP by direct packet access with explicit bounds
//! checks, giving the flow tuple and where the payload lies.
//! Must never read past `end` or loop without a constant bound (the verifier rejects both).

/// Why a frame gave no transport header.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// EtherType is neither IPv4 nor IPv6 (ARP, LLDP, …).
    NotIp,
    /// IP, but the transport is neither TCP nor UDP (ICMP, SCTP, …).
    NotTcpUdp,
    /// A non-first IPv4 or IPv6 fragment: no transport header in it.
    Fragment,
    /// A header is cut short or malformed (IHL < 5, TCP data offset < 5, lengths that lie, …).
    Truncated,
}

/// What the parser learned about a TCP or UDP packet.
pub struct Meta {
    pub ip_version: u8,
    pub protocol: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    /// Offset of the first payload byte from the start of the frame.
    pub payload_off: u32,
    /// Payload length the IP header announces (what was on the wire).
    pub payload_len: u32,
    /// The first fragment of a fragmented datagram: the payload continues elsewhere.
    pub first_fragment: bool,
}

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HLEN: usize = 4;
const MAX_VLAN_TAGS: usize = 2;

const IPV6_HLEN: usize = 40;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_DEST: u8 = 60;
const MAX_IPV6_EXT_HEADERS: usize = 4;

const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

/// Returns `data + off` when `len` bytes from there lie within the packet. Callers read
/// through the returned pointer only, so the verifier ties every read to this one check.
#[inline(always)]
fn header(data: usize, end: usize, off: usize, len: usize) -> Option<*const u8> {
    let p = data + off;
    if p + len > end {
        None
    } else {
        Some(p as *const u8)
    }
}

/// Reads byte `i` of a header obtained from [`header`] with `len > i`.
#[inline(always)]
fn byte(h: *const u8, i: usize) -> u8 {
    // SAFETY: `header` checked that `h + len` is inside the packet and the caller keeps `i < len`.
    unsafe { *h.add(i) }
}

/// Reads a big-endian u16 at byte `i` of a header obtained from [`header`] with `len > i + 1`.
#[inline(always)]
fn be16(h: *const u8, i: usize) -> u16 {
    u16::from_be_bytes([byte(h, i), byte(h, i + 1)])
}

/// Reads a big-endian u32 at byte `i` of a header obtained from [`header`] with `len > i + 3`.
#[inline(always)]
fn be32(h: *const u8, i: usize) -> u32 {
    u32::from_be_bytes([byte(h, i), byte(h, i + 1), byte(h, i + 2), byte(h, i + 3)])
}

/// Copies `N` bytes at byte `i` of a header obtained from [`header`] with `len >= i + N`.
#[inline(always)]
fn bytes<const N: usize>(h: *const u8, i: usize, out: &mut [u8; 16]) {
    let mut k = 0;
    while k < N {
        out[k] = byte(h, i + k);
        k += 1;
    }
}

/// Parses the frame in `[data, end)` down to the transport header.
#[inline(always)]
pub fn parse_frame(data: usize, end: usize, m: &mut Meta) -> Result<(), Skip> {
    let Some(eth) = header(data, end, 0, ETH_HLEN) else {
        return Err(Skip::Truncated);
    };
    let mut ethertype = be16(eth, 12);
    let mut off = ETH_HLEN;
    let mut tags = 0;
    while tags < MAX_VLAN_TAGS && (ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD) {
        let Some(vlan) = header(data, end, off, VLAN_HLEN) else {
            return Err(Skip::Truncated);
        };
        ethertype = be16(vlan, 2);
        off += VLAN_HLEN;
        tags += 1;
    }
    match ethertype {
        ETH_P_IP => parse_ipv4(data, end, off, m),
        ETH_P_IPV6 => parse_ipv6(data, end, off, m),
        _ => Err(Skip::NotIp),
    }
}

#[inline(always)]
fn parse_ipv4(data: usize, end: usize, off: usize, m: &mut Meta) -> Result<(), Skip> {
    let Some(ip) = header(data, end, off, 20) else {
        return Err(Skip::Truncated);
    };
    let ver_ihl = byte(ip, 0);
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    if ver_ihl >> 4 != 4 || ihl < 20 || total < ihl {
        return Err(Skip::Truncated);
    }
    let frag = be16(ip, 6);
    if frag & 0x1fff != 0 {
        return Err(Skip::Fragment);
    }
    m.ip_version = 4;
    m.first_fragment = frag & 0x2000 != 0;
    m.protocol = byte(ip, 9);
    // IPv4 addresses fill the first 4 bytes; the rest must be zero (the scratch slot is reused).
    m.src = [0; 16];
    m.dst = [0; 16];
    bytes::<4>(ip, 12, &mut m.src);
    bytes::<4>(ip, 16, &mut m.dst);
    parse_l4(data, end, off + ihl, total - ihl, m)
}

#[inline(always)]
fn parse_ipv6(data: usize, end: usize, off: usize, m: &mut Meta) -> Result<(), Skip> {
    let Some(ip) = header(data, end, off, IPV6_HLEN) else {
        return Err(Skip::Truncated);
    };
    if byte(ip, 0) >> 4 != 6 {
        return Err(Skip::Truncated);
    }
    m.ip_version = 6;
    m.first_fragment = false;
    bytes::<16>(ip, 8, &mut m.src);
    bytes::<16>(ip, 24, &mut m.dst);
    let mut remaining = usize::from(be16(ip, 4));
    let mut next = byte(ip, 6);
    let mut off = off + IPV6_HLEN;
    let mut i = 0;
    while i < MAX_IPV6_EXT_HEADERS {
        let len = match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH => {
                let Some(ext) = header(data, end, off, 2) else {
                    return Err(Skip::Truncated);
                };
                let n = usize::from(byte(ext, 1));
                let len = if next == NEXTHDR_AUTH { (n + 2) * 4 } else { (n + 1) * 8 };
                next = byte(ext, 0);
                len
            }
            NEXTHDR_FRAGMENT => {
                let Some(ext) = header(data, end, off, 8) else {
                    return Err(Skip::Truncated);
                };
                let frag = be16(ext, 2);
                if frag & 0xfff8 != 0 {
                    return Err(Skip::Fragment);
                }
                m.first_fragment = frag & 1 != 0;
                next = byte(ext, 0);
                8
            }
            _ => break,
        };
        if len > remaining {
            return Err(Skip::Truncated);
        }
        remaining -= len;
        off += len;
        i += 1;
    }
    m.protocol = next;
    parse_l4(data, end, off, remaining, m)
}

/// `l4_len`: bytes from the transport header to the end of the IP payload, per the IP header.
#[inline(always)]
fn parse_l4(data: usize, end: usize, off: usize, l4_len: usize, m: &mut Meta) -> Result<(), Skip> {
    match m.protocol {
        IPPROTO_TCP => {
            let Some(tcp) = header(data, end, off, TCP_MIN_HLEN) else {
                return Err(Skip::Truncated);
            };
            let doff = usize::from(byte(tcp, 12) >> 4) * 4;
            if doff < TCP_MIN_HLEN || doff > l4_len || header(data, end, off, doff).is_none() {
                return Err(Skip::Truncated);
            }
            m.src_port = be16(tcp, 0);
            m.dst_port = be16(tcp, 2);
            m.seq = be32(tcp, 4);
            m.tcp_flags = byte(tcp, 13);
            m.payload_off = (off + doff) as u32;
            m.payload_len = (l4_len - doff) as u32;
            Ok(())
        }
        IPPROTO_UDP => {
            let Some(udp) = header(data, end, off, UDP_HLEN) else {
                return Err(Skip::Truncated);
            };
            if l4_len < UDP_HLEN {
                return Err(Skip::Truncated);
            }
            m.src_port = be16(udp, 0);
            m.dst_port = be16(udp, 2);
            m.payload_off = (off + UDP_HLEN) as u32;
            m.payload_len = (l4_len - UDP_HLEN) as u32;
            Ok(())
        }
        _ => Err(Skip::NotTcpUdp),
    }
}
