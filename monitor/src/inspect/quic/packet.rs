//! Inspect, QUIC packet headers: the invariant long header (RFC 8999) and the v1/v2 long-header
//! packet types (RFC 9000 §17.2, RFC 9369 §3.2), variable-length integers.
//! Must never read past the datagram nor trust a length field: malformed is `None`.

/// QUIC version 1 (RFC 9000).
pub const V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const V2: u32 = 0x6b33_43cf;
/// IETF drafts 29 to 32, whose Initial salt rustls knows (`Version::V1Draft`).
pub const DRAFTS: std::ops::RangeInclusive<u32> = 0xff00_001d..=0xff00_0020;
/// Longest connection ID QUIC v1/v2 allow.
pub const MAX_CID: usize = 20;

/// Is this a version whose Initial packets tlsmon can open?
pub fn known_version(v: u32) -> bool {
    v == V1 || v == V2 || DRAFTS.contains(&v)
}

/// What a long-header packet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
    /// Version 0: the server lists the versions it supports.
    VersionNegotiation,
    /// A version tlsmon does not know: only the invariant header was read.
    Unknown,
}

/// One long-header packet at the start of a datagram (or of what follows a coalesced packet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Long<'a> {
    pub version: u32,
    pub kind: Kind,
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// Initial: the token; Retry: the retry token (integrity tag left out).
    pub token: &'a [u8],
    /// Offset of the packet number (Initial, 0-RTT, Handshake).
    pub pn_offset: usize,
    /// Offset just past this packet: the next coalesced packet starts there.
    pub end: usize,
    /// Version Negotiation: the supported versions listed.
    pub versions: Vec<u32>,
}

/// A QUIC variable-length integer (RFC 9000 §16) at `*pos`, advancing it.
pub fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*pos..*pos + len)?;
    let mut v = u64::from(first & 0x3f);
    for x in &bytes[1..] {
        v = v << 8 | u64::from(*x);
    }
    *pos += len;
    Some(v)
}

fn cid<'a>(b: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::from(*b.get(*pos)?);
    let c = b.get(*pos + 1..*pos + 1 + len)?;
    *pos += 1 + len;
    Some(c)
}

/// Does the datagram open with a long header of a version tlsmon knows? (How a QUIC flow is
/// recognised on any port: a client's first Initial.)
pub fn looks_like_quic(d: &[u8]) -> bool {
    match d {
        [first, v0, v1, v2, v3, ..] if first & 0x80 != 0 => known_version(u32::from_be_bytes([*v0, *v1, *v2, *v3])),
        _ => false,
    }
}

/// Parse the long header at the start of `d`; `None` when it is not one or is cut short.
pub fn parse_long(d: &[u8]) -> Option<Long<'_>> {
    let first = *d.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let version = u32::from_be_bytes(d.get(1..5)?.try_into().ok()?);
    let mut pos = 5;
    let dcid = cid(d, &mut pos)?;
    let scid = cid(d, &mut pos)?;
    let mut p =
        Long { version, kind: Kind::Unknown, dcid, scid, token: &[], pn_offset: 0, end: d.len(), versions: Vec::new() };
    if version == 0 {
        p.kind = Kind::VersionNegotiation;
        p.versions = d[pos..].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
        return Some(p);
    }
    if !known_version(version) {
        return Some(p);
    }
    if dcid.len() > MAX_CID || scid.len() > MAX_CID {
        return None;
    }
    let bits = (first >> 4) & 0x03;
    p.kind = match (version == V2, bits) {
        (false, 0) | (true, 1) => Kind::Initial,
        (false, 1) | (true, 2) => Kind::ZeroRtt,
        (false, 2) | (true, 3) => Kind::Handshake,
        _ => Kind::Retry,
    };
    if p.kind == Kind::Retry {
        // Retry token, then a 16-byte integrity tag, to the end of the datagram.
        p.token = d.get(pos..d.len().checked_sub(16)?)?;
        return Some(p);
    }
    if p.kind == Kind::Initial {
        let n = usize::try_from(varint(d, &mut pos)?).ok()?;
        p.token = d.get(pos..pos.checked_add(n)?)?;
        pos += n;
    }
    let len = usize::try_from(varint(d, &mut pos)?).ok()?;
    p.pn_offset = pos;
    p.end = pos.checked_add(len).filter(|e| *e <= d.len())?;
    Some(p)
}

/// The full packet number from its truncated form (RFC 9000 Appendix A.3), given the largest
/// packet number seen in the space so far.
pub fn decode_pn(largest: Option<u64>, truncated: u64, bits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l + 1);
    let win = 1u64 << bits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate + hwin <= expected && candidate < (1u64 << 62) - win {
        candidate + win
    } else if candidate > expected + hwin && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_of_rfc9000_appendix_a1() {
        let cases: [(&[u8], u64); 4] = [
            (&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (b, want) in cases {
            let mut pos = 0;
            assert_eq!(varint(b, &mut pos), Some(want));
            assert_eq!(pos, b.len());
            let mut pos = 0;
            assert_eq!(varint(&b[..b.len() - 1], &mut pos), None, "cut short");
        }
    }

    #[test]
    fn packet_numbers_of_rfc9000_appendix_a3() {
        assert_eq!(decode_pn(Some(0xa82f_30ea), 0x9b32, 16), 0xa82f_9b32);
        assert_eq!(decode_pn(None, 0, 8), 0);
        assert_eq!(decode_pn(Some(0xff), 0x01, 8), 0x101);
    }

    #[test]
    fn truncated_headers_are_none() {
        let mut d = vec![0xc3, 0, 0, 0, 1, 8];
        d.extend_from_slice(&[1; 8]);
        d.extend_from_slice(&[0, 0, 0x41, 0x00]);
        for n in 0..d.len() {
            assert!(parse_long(&d[..n]).is_none(), "{n} bytes");
        }
    }
}
