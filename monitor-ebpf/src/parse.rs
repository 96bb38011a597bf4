//! Kernel header parser: Ethernet (up to two VLAN tags, 802.1Q or QinQ) → IPv4 (options) /
//! IPv6 (common extension headers) → TCP/UDP by direct packet access with explicit bounds
//! checks, giving the flow tuple and where the payload lies: first the scalars every packet
//! needs ([`Headers`], kept in registers), then the addresses, read only when a flow's key or a
//! record needs them.
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

/// Where a TCP or UDP packet's headers lie and their small fields: what [`locate`] found.
#[derive(Clone, Copy)]
pub struct Headers {
    pub ip_version: u8,
    pub protocol: u8,
    /// The first fragment of a fragmented datagram: the payload continues elsewhere.
    pub first_fragment: bool,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    /// Offset of the IP header from the start of the frame (its addresses: [`Headers::addr4`],
    /// [`Headers::addr16`]).
    pub ip_off: u32,
    /// Offset of the first payload byte from the start of the frame.
    pub payload_off: u32,
    /// Payload length the IP header announces (what was on the wire).
    pub payload_len: u32,
}

/// What the parser learned about a TCP or UDP packet, addresses included (kept in per-CPU
/// map memory for the stages that build records).
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

/// Walks the frame in `[data, end)` down to the transport header.
#[inline(always)]
pub fn locate(data: usize, end: usize) -> Result<Headers, Skip> {
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
    let mut h = Headers {
        ip_version: 0,
        protocol: 0,
        first_fragment: false,
        tcp_flags: 0,
        src_port: 0,
        dst_port: 0,
        seq: 0,
        ip_off: off as u32,
        payload_off: 0,
        payload_len: 0,
    };
    match ethertype {
        ETH_P_IP => locate_ipv4(data, end, off, &mut h)?,
        ETH_P_IPV6 => locate_ipv6(data, end, off, &mut h)?,
        _ => return Err(Skip::NotIp),
    }
    Ok(h)
}

impl Headers {
    /// Payload bytes present in a packet of `frame_len` bytes: the IP header's count, less what
    /// a short frame (snap length) or Ethernet padding changes.
    #[inline(always)]
    pub fn avail(&self, frame_len: u32) -> u32 {
        let present = frame_len.saturating_sub(self.payload_off);
        if present < self.payload_len {
            present
        } else {
            self.payload_len
        }
    }

    /// IPv4 source and destination addresses (bytes in wire order), read again from the
    /// packet; None only if the packet is not the one located.
    #[inline(always)]
    pub fn addr4(&self, data: usize, end: usize) -> Option<([u8; 4], [u8; 4])> {
        let ip = header(data, end, self.ip_off as usize, 20)?;
        Some((
            [byte(ip, 12), byte(ip, 13), byte(ip, 14), byte(ip, 15)],
            [byte(ip, 16), byte(ip, 17), byte(ip, 18), byte(ip, 19)],
        ))
    }

    /// Source and destination address into 16-byte fields (IPv4: the first 4 bytes, the rest
    /// zero); false only if the packet is not the one located.
    #[inline(always)]
    pub fn addr16(&self, data: usize, end: usize, src: &mut [u8; 16], dst: &mut [u8; 16]) -> bool {
        if self.ip_version == 4 {
            let Some((s, d)) = self.addr4(data, end) else {
                return false;
            };
            // The rest must be zero (the scratch slot is reused).
            *src = [0; 16];
            *dst = [0; 16];
            src[..4].copy_from_slice(&s);
            dst[..4].copy_from_slice(&d);
            return true;
        }
        let Some(ip) = header(data, end, self.ip_off as usize, IPV6_HLEN) else {
            return false;
        };
        bytes::<16>(ip, 8, src);
        bytes::<16>(ip, 24, dst);
        true
    }

    /// The whole [`Meta`] of the packet.
    #[inline(always)]
    pub fn meta(&self, data: usize, end: usize, m: &mut Meta) -> Result<(), Skip> {
        if !self.addr16(data, end, &mut m.src, &mut m.dst) {
            return Err(Skip::Truncated);
        }
        m.ip_version = self.ip_version;
        m.protocol = self.protocol;
        m.src_port = self.src_port;
        m.dst_port = self.dst_port;
        m.tcp_flags = self.tcp_flags;
        m.seq = self.seq;
        m.payload_off = self.payload_off;
        m.payload_len = self.payload_len;
        m.first_fragment = self.first_fragment;
        Ok(())
    }
}

#[inline(always)]
fn locate_ipv4(data: usize, end: usize, off: usize, h: &mut Headers) -> Result<(), Skip> {
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
    h.ip_version = 4;
    h.first_fragment = frag & 0x2000 != 0;
    h.protocol = byte(ip, 9);
    locate_l4(data, end, off + ihl, total - ihl, h)
}

#[inline(always)]
fn locate_ipv6(data: usize, end: usize, off: usize, h: &mut Headers) -> Result<(), Skip> {
    let Some(ip) = header(data, end, off, IPV6_HLEN) else {
        return Err(Skip::Truncated);
    };
    if byte(ip, 0) >> 4 != 6 {
        return Err(Skip::Truncated);
    }
    h.ip_version = 6;
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
                h.first_fragment = frag & 1 != 0;
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
    h.protocol = next;
    locate_l4(data, end, off, remaining, h)
}

/// `l4_len`: bytes from the transport header to the end of the IP payload, per the IP header.
#[inline(always)]
fn locate_l4(data: usize, end: usize, off: usize, l4_len: usize, h: &mut Headers) -> Result<(), Skip> {
    match h.protocol {
        IPPROTO_TCP => {
            let Some(tcp) = header(data, end, off, TCP_MIN_HLEN) else {
                return Err(Skip::Truncated);
            };
            let doff = usize::from(byte(tcp, 12) >> 4) * 4;
            if doff < TCP_MIN_HLEN || doff > l4_len || header(data, end, off, doff).is_none() {
                return Err(Skip::Truncated);
            }
            h.src_port = be16(tcp, 0);
            h.dst_port = be16(tcp, 2);
            h.seq = be32(tcp, 4);
            h.tcp_flags = byte(tcp, 13);
            h.payload_off = (off + doff) as u32;
            h.payload_len = (l4_len - doff) as u32;
            Ok(())
        }
        IPPROTO_UDP => {
            let Some(udp) = header(data, end, off, UDP_HLEN) else {
                return Err(Skip::Truncated);
            };
            if l4_len < UDP_HLEN {
                return Err(Skip::Truncated);
            }
            h.src_port = be16(udp, 0);
            h.dst_port = be16(udp, 2);
            h.payload_off = (off + UDP_HLEN) as u32;
            h.payload_len = (l4_len - UDP_HLEN) as u32;
            Ok(())
        }
        _ => Err(Skip::NotTcpUdp),
    }
}
