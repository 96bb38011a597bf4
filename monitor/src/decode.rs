//! Stage 1, decode: one captured frame → flow endpoints, TCP/UDP metadata and payload.
//! Must never allocate per packet, never panic on any input, and never look past the payload head.
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// pcap link types we understand (LINKTYPE_* values from the tcpdump registry).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const PPP_HDLC: u32 = 50;
    pub const RAW_OLD_12: u32 = 12;
    pub const RAW_OLD_14: u32 = 14;
    pub const RAW: u32 = 101;
    pub const C_HDLC: u32 = 104;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    /// Every link type above (the `frame_decode` fuzz target tries each).
    pub const ALL: [u32; 13] =
        [NULL, ETHERNET, PPP, RAW_OLD_12, RAW_OLD_14, PPP_HDLC, RAW, C_HDLC, LOOP, LINUX_SLL, IPV4, IPV6, LINUX_SLL2];
}

/// Transport protocol of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// An IP address as 16 bytes (IPv4 in the first four, rest zero) plus the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr {
    pub bytes: [u8; 16],
    pub v6: bool,
}

impl Addr {
    pub fn v4(a: [u8; 4]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&a);
        Addr { bytes, v6: false }
    }
    pub fn v6(bytes: [u8; 16]) -> Self {
        Addr { bytes, v6: true }
    }
    pub fn from_ip(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(a) => Addr::v4(a.octets()),
            std::net::IpAddr::V6(a) => Addr::v6(a.octets()),
        }
    }
    pub fn to_ip(self) -> std::net::IpAddr {
        if self.v6 {
            std::net::IpAddr::from(self.bytes)
        } else {
            let mut a = [0u8; 4];
            a.copy_from_slice(&self.bytes[..4]);
            std::net::IpAddr::from(a)
        }
    }
}

/// The socket of this host that sent a packet: its cookie (unique per socket for the kernel's
/// lifetime) and cgroup v2 id. Only live capture knows it (TC egress); replay never does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalSocket {
    pub cookie: u64,
    pub cgroup_id: u64,
}

/// What decode hands to the flow stage: borrowed from the frame, no copies.
#[derive(Debug)]
pub struct Packet<'a> {
    pub src: Addr,
    pub dst: Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    pub payload: &'a [u8],
    /// The frame was cut before the end of the payload (snap length): bytes are missing.
    pub truncated: bool,
    /// The local socket that sent it (live capture on egress only).
    pub local: Option<LocalSocket>,
}

/// Why a frame gave no packet. Counted, never fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    UnknownLinkType,
    NotIp,
    NotTcpUdp,
    Fragment,
    Malformed,
}

const ETH_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const GTP_U_PORT: u16 = 2152;

/// Decode one frame of the given link type.
pub fn decode(linktype: u32, frame: &[u8]) -> Result<Packet<'_>, Skip> {
    decode_depth(linktype, frame, 0)
}

fn decode_depth(linktype: u32, frame: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    // Most frames are plain Ethernet (maybe VLAN-tagged) + IP + TCP/UDP: read those directly,
    // the rest with etherparse (which the fast path must agree with; see the tests).
    if linktype == linktype::ETHERNET {
        if let Some(p) = frame.get(14..).and_then(|ip| fast_untagged(be16(frame, 12)?, ip)) {
            return Ok(p);
        }
    }
    decode_lax(linktype, frame, depth)
}

/// The VLAN tags [`decode_lax`] skips (802.1Q, 802.1ad QinQ, old 0x9100; up to 4), then
/// [`fast_ip`] on what they carry: the same packet `decode_lax` reads after the same tags.
fn fast_untagged(mut ether_type: u16, mut rest: &[u8]) -> Option<Packet<'_>> {
    for _ in 0..4 {
        if !is_vlan(ether_type) {
            break;
        }
        ether_type = be16(rest, 2)?;
        rest = rest.get(4..)?;
    }
    fast_ip(ether_type, rest)
}

fn is_vlan(ether_type: u16) -> bool {
    ether_type == 0x8100 || ether_type == 0x88a8 || ether_type == 0x9100
}

/// A well-formed, whole, unfragmented IPv4 or IPv6 (no extension headers) packet carrying
/// TCP or UDP (not GTP-U), or `None` to let etherparse decide.
fn fast_ip(ether_type: u16, ip: &[u8]) -> Option<Packet<'_>> {
    let (src, dst, proto, body) = match ether_type {
        0x0800 => {
            let ihl = usize::from(*ip.first()? & 0x0f) * 4;
            let total = usize::from(be16(ip, 2)?);
            let frag = be16(ip, 6)?;
            if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || frag & 0x3fff != 0 {
                return None;
            }
            let a = |o: usize| -> Option<[u8; 4]> { ip.get(o..o + 4)?.try_into().ok() };
            (Addr::v4(a(12)?), Addr::v4(a(16)?), ip[9], &ip[ihl..total])
        }
        0x86dd => {
            let len = usize::from(be16(ip, 4)?);
            if ip[0] >> 4 != 6 || len == 0 || 40 + len > ip.len() {
                return None;
            }
            let a = |o: usize| -> Option<[u8; 16]> { ip.get(o..o + 16)?.try_into().ok() };
            (Addr::v6(a(8)?), Addr::v6(a(24)?), ip[6], &ip[40..40 + len])
        }
        _ => return None,
    };
    let (src_port, dst_port) = (be16(body, 0)?, be16(body, 2)?);
    match proto {
        6 => {
            let off = usize::from(*body.get(12)? >> 4) * 4;
            if off < 20 || off > body.len() {
                return None;
            }
            let flags = body[13];
            let seq = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
            Some(Packet {
                src,
                dst,
                src_port,
                dst_port,
                transport: Transport::Tcp,
                syn: flags & 0x02 != 0,
                ack: flags & 0x10 != 0,
                fin: flags & 0x01 != 0,
                rst: flags & 0x04 != 0,
                seq,
                payload: &body[off..],
                truncated: false,
                local: None,
            })
        }
        17 => {
            if usize::from(be16(body, 4)?) != body.len()
                || body.len() < 8
                || src_port == GTP_U_PORT
                || dst_port == GTP_U_PORT
            {
                return None;
            }
            Some(Packet {
                src,
                dst,
                src_port,
                dst_port,
                transport: Transport::Udp,
                syn: false,
                ack: false,
                fin: false,
                rst: false,
                seq: 0,
                payload: &body[8..],
                truncated: false,
                local: None,
            })
        }
        _ => None,
    }
}

fn decode_lax(linktype: u32, frame: &[u8], depth: u8) -> Result<Packet<'_>, Skip> {
    let sliced = match linktype {
        linktype::ETHERNET => {
            let ether_type = be16(frame, 12).ok_or(Skip::Malformed)?;
            let mut rest = &frame[14..];
            let mut et = ether_type;
            // VLAN tags (802.1Q, 802.1ad QinQ, old 0x9100), any depth up to 4.
            for _ in 0..4 {
                if is_vlan(et) {
                    et = be16(rest, 2).ok_or(Skip::Malformed)?;
                    rest = &rest[4..];
                } else {
                    break;
                }
            }
            from_ether_type(et, rest)?
        }
        linktype::RAW | linktype::RAW_OLD_12 | linktype::RAW_OLD_14 | linktype::IPV4 | linktype::IPV6 => {
            LaxSlicedPacket::from_ip(frame).map_err(|_| Skip::NotIp)?
        }
        linktype::NULL | linktype::LOOP => {
            // 4-byte address family, host order for NULL, network order for LOOP; only the
            // value matters: 2 = IPv4, 24/28/30 = IPv6 on the BSDs, 10 on Linux.
            let fam = frame.get(..4).ok_or(Skip::Malformed)?;
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let family = if linktype == linktype::LOOP {
                be
            } else if le < 256 {
                le
            } else {
                be
            };
            let et = match family {
                2 => EtherType::IPV4.0,
                10 | 24 | 28 | 30 => EtherType::IPV6.0,
                _ => return Err(Skip::NotIp),
            };
            from_ether_type(et, &frame[4..])?
        }
        linktype::PPP | linktype::PPP_HDLC => {
            // Optional address and control bytes (0xff 0x03), then the PPP protocol: one byte
            // when compressed (odd first byte), else two.
            let f = frame.strip_prefix(&[0xff, 0x03][..]).unwrap_or(frame);
            let (proto, rest) = match f {
                [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
                [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
                _ => return Err(Skip::Malformed),
            };
            match proto {
                PPP_IPV4 | PPP_IPV6 => LaxSlicedPacket::from_ip(rest).map_err(|_| Skip::Malformed)?,
                _ => return Err(Skip::NotIp),
            }
        }
        linktype::C_HDLC => {
            // Cisco HDLC: address, control, then an Ethernet type.
            let et = be16(frame, 2).ok_or(Skip::Malformed)?;
            from_ether_type(et, &frame[4..])?
        }
        linktype::LINUX_SLL => {
            let et = be16(frame, 14).ok_or(Skip::Malformed)?;
            from_ether_type(et, &frame[16..])?
        }
        linktype::LINUX_SLL2 => {
            let et = be16(frame, 0).ok_or(Skip::Malformed)?;
            if frame.len() < 20 {
                return Err(Skip::Malformed);
            }
            from_ether_type(et, &frame[20..])?
        }
        _ => return Err(Skip::UnknownLinkType),
    };
    let truncated = sliced.ip_payload().map(|p| p.incomplete).unwrap_or(false);
    let (src, dst, fragmented) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (Addr::v4(h.source()), Addr::v4(h.destination()), ip.is_payload_fragmented())
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (Addr::v6(h.source()), Addr::v6(h.destination()), ip.is_payload_fragmented())
        }
        _ => return Err(Skip::NotIp),
    };
    if fragmented {
        return Err(Skip::Fragment);
    }
    match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(Packet {
            src,
            dst,
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            transport: Transport::Tcp,
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            seq: tcp.sequence_number(),
            payload: tcp.payload(),
            truncated,
            local: None,
        }),
        Some(TransportSlice::Udp(udp)) => {
            let (sp, dp) = (udp.source_port(), udp.destination_port());
            if depth == 0 && (sp == GTP_U_PORT || dp == GTP_U_PORT) {
                if let Some(inner) = gtp_u_payload(udp.payload()) {
                    return decode_depth(linktype::RAW, inner, depth + 1);
                }
            }
            Ok(Packet {
                src,
                dst,
                src_port: sp,
                dst_port: dp,
                transport: Transport::Udp,
                syn: false,
                ack: false,
                fin: false,
                rst: false,
                seq: 0,
                payload: udp.payload(),
                truncated,
                local: None,
            })
        }
        _ if sliced.stop_err.is_some() => Err(Skip::Malformed),
        _ => Err(Skip::NotTcpUdp),
    }
}

/// Ether types etherparse does not walk itself: PPPoE session → PPP → IP.
fn from_ether_type(et: u16, rest: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    if et == ETH_PPPOE_SESSION {
        // PPPoE header (6 bytes) then the 2-byte PPP protocol.
        let proto = be16(rest, 6).ok_or(Skip::Malformed)?;
        let inner = &rest[8..];
        return match proto {
            PPP_IPV4 | PPP_IPV6 => LaxSlicedPacket::from_ip(inner).map_err(|_| Skip::Malformed),
            _ => Err(Skip::NotIp),
        };
    }
    if et != EtherType::IPV4.0 && et != EtherType::IPV6.0 {
        return Err(Skip::NotIp);
    }
    Ok(LaxSlicedPacket::from_ether_type(EtherType(et), rest))
}

/// The inner IP packet of a GTP-U G-PDU (3GPP TS 29.281), if this is one.
fn gtp_u_payload(p: &[u8]) -> Option<&[u8]> {
    let flags = *p.first()?;
    if flags >> 5 != 1 || p.get(1) != Some(&0xff) {
        return None;
    }
    let mut off = 8usize;
    if flags & 0x07 != 0 {
        // sequence number, N-PDU number, next extension header type
        let mut next = *p.get(off + 3)?;
        off += 4;
        while next != 0 {
            let units = *p.get(off)? as usize;
            if units == 0 {
                return None;
            }
            next = *p.get(off + units * 4 - 1)?;
            off += units * 4;
        }
    }
    let inner = p.get(off..)?;
    matches!(inner.first().map(|b| b >> 4), Some(4) | Some(6)).then_some(inner)
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_ipv4_frame(vlan_tags: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for _ in 0..vlan_tags {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        // IPv4 header, 20 bytes, total length 20 + 20 + 3
        f.extend_from_slice(&[0x45, 0, 0, 43, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        // TCP header: ports 1234 → 443, seq 7, data offset 5, flags PSH|ACK
        f.extend_from_slice(&[0x04, 0xd2, 0x01, 0xbb, 0, 0, 0, 7, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(b"abc");
        f
    }

    #[test]
    fn ethernet_vlan_and_qinq() {
        for tags in 0..3 {
            let f = tcp_ipv4_frame(tags);
            let p = decode(linktype::ETHERNET, &f).expect("decodes");
            assert_eq!((p.src_port, p.dst_port, p.seq), (1234, 443, 7));
            assert_eq!(p.payload, b"abc");
            assert_eq!(p.src.to_ip().to_string(), "10.0.0.1");
            assert!(!p.truncated);
        }
    }

    #[test]
    fn fast_path_takes_tagged_frames_as_etherparse_does() {
        for tags in 1..=5 {
            let f = tcp_ipv4_frame(tags);
            let fast = fast_untagged(be16(&f, 12).unwrap(), &f[14..]);
            match fast {
                Some(p) => {
                    let lax = decode_lax(linktype::ETHERNET, &f, 0).expect("etherparse decodes");
                    assert_eq!(fields(&p), fields(&lax), "{tags} tags");
                }
                None => assert_eq!(tags, 5, "the fast path stops after 4 tags, as decode_lax does"),
            }
        }
    }

    #[test]
    fn truncated_frame_is_flagged_not_dropped() {
        let f = tcp_ipv4_frame(0);
        let p = decode(linktype::ETHERNET, &f[..f.len() - 2]).expect("decodes");
        assert_eq!(p.payload, b"a");
        assert!(p.truncated);
    }

    /// The fields the pipeline reads, to compare the fast path with etherparse.
    fn fields(p: &Packet<'_>) -> impl PartialEq + std::fmt::Debug {
        let flags = (p.syn, p.ack, p.fin, p.rst, p.truncated, p.transport);
        (p.src, p.dst, p.src_port, p.dst_port, flags, p.seq, p.payload.to_vec())
    }

    #[test]
    fn fast_path_agrees_with_etherparse() {
        let tcp4 = tcp_ipv4_frame(0);
        let mut udp4 = tcp4[..34].to_vec();
        udp4[17] = 20 + 8 + 3;
        udp4[23] = 17;
        udp4.extend_from_slice(&[0x30, 0x39, 0x01, 0xbb, 0, 11, 0, 0]);
        udp4.extend_from_slice(b"xyz");
        let mut tcp6 = vec![0u8; 12];
        tcp6.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 23, 6, 64]);
        tcp6.extend((0..32).map(|i| i as u8));
        tcp6.extend_from_slice(&tcp4[34..]);
        let mut x: u32 = 7;
        let mut checked = 0;
        for base in [tcp4, udp4, tcp6] {
            let p = fast_ip(be16(&base, 12).unwrap(), &base[14..]).expect("fast path takes the well-formed frame");
            assert_eq!(fields(&p), fields(&decode_lax(linktype::ETHERNET, &base, 0).unwrap()));
            // Flip bytes of the headers and cut or pad the frame: whatever the fast path takes,
            // etherparse must decode the same way.
            for _ in 0..20_000 {
                let mut f = base.clone();
                for _ in 0..1 + (x % 3) {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let at = 14 + (x >> 8) as usize % (f.len() - 14).min(60);
                    f[at] = (x >> 20) as u8;
                }
                match (x >> 4) % 4 {
                    0 => f.truncate(f.len() - (x >> 12) as usize % 8),
                    1 => f.extend_from_slice(&[0; 6]),
                    _ => {}
                }
                if let Some(fast) = f.get(14..).and_then(|ip| fast_ip(be16(&f, 12)?, ip)) {
                    checked += 1;
                    let lax =
                        decode_lax(linktype::ETHERNET, &f, 0).expect("etherparse decodes what the fast path took");
                    assert_eq!(fields(&fast), fields(&lax), "frame {f:02x?}");
                }
            }
        }
        assert!(checked > 10_000, "only {checked} mutated frames took the fast path");
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 1;
        for len in 0..200 {
            let frame: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            for lt in linktype::ALL.into_iter().chain([9999]) {
                let _ = decode(lt, &frame);
            }
        }
    }

    #[test]
    fn sll2_and_null() {
        let eth = tcp_ipv4_frame(0);
        let ip = &eth[14..];
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(ip);
        assert_eq!(decode(linktype::LINUX_SLL2, &sll2).unwrap().dst_port, 443);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert_eq!(decode(linktype::NULL, &null).unwrap().dst_port, 443);
        assert_eq!(decode(linktype::RAW, ip).unwrap().dst_port, 443);
        // PPP: with and without address/control bytes, compressed protocol field; Cisco HDLC.
        for head in [&[0x00, 0x21][..], &[0xff, 0x03, 0x00, 0x21], &[0x21], &[0x0f, 0x00, 0x08, 0x00]] {
            let mut f = head.to_vec();
            f.extend_from_slice(ip);
            let lt = if head.len() == 4 && head[0] == 0x0f { linktype::C_HDLC } else { linktype::PPP };
            assert_eq!(decode(lt, &f).unwrap().dst_port, 443, "{head:?}");
        }
    }
}
