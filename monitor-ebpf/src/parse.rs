//! Kernel header parser: Ethernet (up to two VLAN tags) → IPv4/IPv6 (extension headers) →
//! TCP/UDP by direct packet access with explicit bounds checks.
//! Must never read past `end` or loop without a constant bound (the verifier rejects both).

/// What a frame turned out to be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// EtherType is neither IPv4 nor IPv6 (ARP, LLDP, …).
    NotIp,
    /// IP, but the transport is neither TCP nor UDP (ICMP, SCTP, …).
    NotTcpUdp,
    /// An IPv4 or IPv6 fragment: not parsed further.
    Fragment,
    /// A header is cut short or malformed (IHL < 5, TCP data offset < 5, …).
    Truncated,
    /// A complete TCP header is readable.
    Tcp,
    /// A complete UDP header is readable.
    Udp,
}

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const VLAN_HLEN: usize = 4;
const MAX_VLAN_TAGS: usize = 2;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
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

/// Parses the frame in `[data, end)` far enough to classify it.
#[inline(always)]
pub fn parse_frame(data: usize, end: usize) -> Outcome {
    let Some(eth) = header(data, end, 0, ETH_HLEN) else {
        return Outcome::Truncated;
    };
    let mut ethertype = be16(eth, 12);
    let mut off = ETH_HLEN;
    let mut tags = 0;
    while tags < MAX_VLAN_TAGS && (ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD) {
        let Some(vlan) = header(data, end, off, VLAN_HLEN) else {
            return Outcome::Truncated;
        };
        ethertype = be16(vlan, 2);
        off += VLAN_HLEN;
        tags += 1;
    }
    match ethertype {
        ETH_P_IP => parse_ipv4(data, end, off),
        ETH_P_IPV6 => parse_ipv6(data, end, off),
        _ => Outcome::NotIp,
    }
}

#[inline(always)]
fn parse_ipv4(data: usize, end: usize, off: usize) -> Outcome {
    let Some(ip) = header(data, end, off, 20) else {
        return Outcome::Truncated;
    };
    let ver_ihl = byte(ip, 0);
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || ihl < 20 {
        return Outcome::Truncated;
    }
    // More-fragments flag or a non-zero fragment offset.
    if be16(ip, 6) & 0x3fff != 0 {
        return Outcome::Fragment;
    }
    let proto = byte(ip, 9);
    parse_l4(data, end, off + ihl, proto)
}

#[inline(always)]
fn parse_ipv6(data: usize, end: usize, off: usize) -> Outcome {
    let Some(ip) = header(data, end, off, IPV6_HLEN) else {
        return Outcome::Truncated;
    };
    if byte(ip, 0) >> 4 != 6 {
        return Outcome::Truncated;
    }
    let mut next = byte(ip, 6);
    let mut off = off + IPV6_HLEN;
    let mut i = 0;
    while i < MAX_IPV6_EXT_HEADERS {
        let len = match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH => {
                let Some(ext) = header(data, end, off, 2) else {
                    return Outcome::Truncated;
                };
                let n = usize::from(byte(ext, 1));
                let len = if next == NEXTHDR_AUTH { (n + 2) * 4 } else { (n + 1) * 8 };
                next = byte(ext, 0);
                len
            }
            NEXTHDR_FRAGMENT => return Outcome::Fragment,
            _ => break,
        };
        off += len;
        i += 1;
    }
    parse_l4(data, end, off, next)
}

#[inline(always)]
fn parse_l4(data: usize, end: usize, off: usize, proto: u8) -> Outcome {
    match proto {
        IPPROTO_TCP => {
            let Some(tcp) = header(data, end, off, TCP_MIN_HLEN) else {
                return Outcome::Truncated;
            };
            let doff = usize::from(byte(tcp, 12) >> 4) * 4;
            if doff < TCP_MIN_HLEN || header(data, end, off, doff).is_none() {
                return Outcome::Truncated;
            }
            Outcome::Tcp
        }
        IPPROTO_UDP => {
            if header(data, end, off, UDP_HLEN).is_none() {
                return Outcome::Truncated;
            }
            Outcome::Udp
        }
        _ => Outcome::NotTcpUdp,
    }
}
