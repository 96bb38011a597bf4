//! Agent-side decoding of ring-buffer records: checks magic, version, kind and every length
//! before reading a field, with `read_unaligned` (never `transmute`).
//! Must never panic on any byte string: a bad record is a [`RecordError`], counted by the caller.
use crate::{kind, RecordHeader, HEADER_LEN, MAX_RECORD_PAYLOAD, RECORD_MAGIC, RECORD_VERSION};

/// One record borrowed from the ring buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub header: RecordHeader,
    pub payload: &'a [u8],
}

/// Why bytes are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than a header.
    Short {
        len: usize,
    },
    BadMagic {
        magic: u32,
    },
    BadVersion {
        version: u16,
    },
    BadKind {
        kind: u16,
    },
    /// `len`/`payload_len` disagree with each other, with the bytes present or with the limit.
    BadLength {
        len: u32,
        payload_len: u16,
        available: usize,
    },
    BadIpVersion {
        ip_version: u8,
    },
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::Short { len } => write!(f, "record of {len} bytes is shorter than its header"),
            RecordError::BadMagic { magic } => write!(f, "record magic {magic:#010x} is not TLSM"),
            RecordError::BadVersion { version } => {
                write!(f, "record version {version}, this agent reads {RECORD_VERSION}")
            }
            RecordError::BadKind { kind } => write!(f, "unknown record kind {kind}"),
            RecordError::BadLength { len, payload_len, available } => {
                write!(f, "record length {len} / payload {payload_len} do not fit {available} bytes")
            }
            RecordError::BadIpVersion { ip_version } => write!(f, "record IP version {ip_version}"),
        }
    }
}

/// Decode one record. Bytes past `header.len` (ring-buffer alignment) are ignored.
pub fn parse_record(bytes: &[u8]) -> Result<RecordRef<'_>, RecordError> {
    if bytes.len() < HEADER_LEN {
        return Err(RecordError::Short { len: bytes.len() });
    }
    // SAFETY: at least HEADER_LEN bytes are readable (checked above); RecordHeader is
    // #[repr(C)] plain integers and arrays, valid for any bit pattern; read_unaligned copies.
    let header: RecordHeader = unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<RecordHeader>()) };
    if header.magic != RECORD_MAGIC {
        return Err(RecordError::BadMagic { magic: header.magic });
    }
    if header.version != RECORD_VERSION {
        return Err(RecordError::BadVersion { version: header.version });
    }
    if !matches!(header.kind, kind::TCP_PAYLOAD | kind::TCP_LIFECYCLE | kind::QUIC_INITIAL | kind::DTLS_RECORDS) {
        return Err(RecordError::BadKind { kind: header.kind });
    }
    if header.ip_version != 4 && header.ip_version != 6 {
        return Err(RecordError::BadIpVersion { ip_version: header.ip_version });
    }
    let plen = usize::from(header.payload_len);
    let bad = RecordError::BadLength { len: header.len, payload_len: header.payload_len, available: bytes.len() };
    if plen > MAX_RECORD_PAYLOAD || header.len as usize != HEADER_LEN + plen || bytes.len() < HEADER_LEN + plen {
        return Err(bad);
    }
    if header.kind == kind::TCP_LIFECYCLE && plen != 0 {
        return Err(bad);
    }
    Ok(RecordRef { header, payload: &bytes[HEADER_LEN..HEADER_LEN + plen] })
}

/// Encode a record (tests, and the userspace model of the kernel): header fields `magic`,
/// `version`, `len` and `payload_len` are set from `payload`. `payload` is cut at
/// `MAX_RECORD_PAYLOAD`. Returns the bytes written to `out` (which must hold them).
pub fn write_record(mut header: RecordHeader, payload: &[u8], out: &mut [u8]) -> Option<usize> {
    let plen = payload.len().min(MAX_RECORD_PAYLOAD);
    let total = HEADER_LEN + plen;
    if out.len() < total {
        return None;
    }
    header.magic = RECORD_MAGIC;
    header.version = RECORD_VERSION;
    header.payload_len = plen as u16;
    header.len = total as u32;
    // SAFETY: out holds at least HEADER_LEN bytes (checked above); write_unaligned copies a
    // plain #[repr(C)] value into them.
    unsafe { core::ptr::write_unaligned(out.as_mut_ptr().cast::<RecordHeader>(), header) };
    out[HEADER_LEN..total].copy_from_slice(&payload[..plen]);
    Some(total)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{dir, tcp_flags};
    use std::vec;

    fn sample() -> RecordHeader {
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[10, 99, 0, 1]);
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[10, 99, 0, 2]);
        RecordHeader {
            kind: kind::TCP_PAYLOAD,
            ip_version: 4,
            direction: dir::EGRESS,
            src_addr: src,
            dst_addr: dst,
            src_port: 40000,
            dst_port: 443,
            protocol: 6,
            tcp_flags: tcp_flags::ACK | tcp_flags::PSH,
            seq: 0xdead_beef,
            timestamp_ns: 123_456_789,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip() {
        let payload = [0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5];
        let mut buf = vec![0u8; HEADER_LEN + payload.len() + 7];
        let n = write_record(sample(), &payload, &mut buf).unwrap();
        assert_eq!(n, HEADER_LEN + payload.len());
        let r = parse_record(&buf).unwrap();
        assert_eq!(r.payload, &payload);
        assert_eq!(r.header.seq, 0xdead_beef);
        assert_eq!(r.header.dst_port, 443);
        assert_eq!(r.header.len as usize, n);
        assert_eq!(r.header.magic, RECORD_MAGIC);
        // Unaligned input decodes the same.
        let mut shifted = vec![0u8; 1];
        shifted.extend_from_slice(&buf[..n]);
        assert_eq!(parse_record(&shifted[1..]).unwrap(), r);
    }

    #[test]
    fn rejects_every_bad_length_and_field() {
        let mut buf = vec![0u8; HEADER_LEN + 4];
        write_record(sample(), b"abcd", &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(parse_record(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[0] ^= 1;
        assert!(matches!(parse_record(&bad), Err(RecordError::BadMagic { .. })));
        let mut bad = buf.clone();
        bad[4] = 9;
        assert!(matches!(parse_record(&bad), Err(RecordError::BadVersion { version: 9 })));
        let mut bad = buf.clone();
        bad[6] = 77;
        assert!(matches!(parse_record(&bad), Err(RecordError::BadKind { kind: 77 })));
        let mut bad = buf.clone();
        bad[12..14].copy_from_slice(&3000u16.to_le_bytes());
        assert!(matches!(parse_record(&bad), Err(RecordError::BadLength { .. })));
        let mut bad = buf.clone();
        bad[14] = 5;
        assert!(matches!(parse_record(&bad), Err(RecordError::BadIpVersion { ip_version: 5 })));
        let mut life = sample();
        life.kind = kind::TCP_LIFECYCLE;
        let mut bad = vec![0u8; HEADER_LEN + 1];
        write_record(life, b"x", &mut bad).unwrap();
        assert!(matches!(parse_record(&bad), Err(RecordError::BadLength { .. })));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 7;
        for len in 0..300 {
            let bytes: std::vec::Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse_record(&bytes);
        }
    }

    #[test]
    fn ports_are_added_once_and_up_to_capacity() {
        let mut c = crate::KernelConfig::default();
        let n = c.n_ports;
        c.add_port(6661).unwrap();
        c.add_port(6661).unwrap();
        c.add_port(80).unwrap();
        assert_eq!(c.n_ports, n + 1);
        assert_eq!(c.ports[n as usize], 6661);
        let mut p = 7000;
        while c.add_port(p).is_ok() {
            p += 1;
        }
        assert_eq!(c.n_ports as usize, crate::MAX_CANDIDATE_PORTS);
        assert_eq!(c.add_port(9999), Err(crate::MAX_CANDIDATE_PORTS));
    }

    #[test]
    fn default_config_holds_the_shared_lists() {
        let c = crate::KernelConfig::default();
        assert_eq!(c.n_ports as usize, crate::STARTTLS_PORTS.len() + crate::PLAINTEXT_PORTS.len());
        assert!(c.ports[..c.n_ports as usize].contains(&5432));
        assert_eq!(c.n_signatures as usize, crate::DEFAULT_SIGNATURES.len());
        for (i, sig) in crate::DEFAULT_SIGNATURES.iter().enumerate() {
            assert_eq!(&c.signatures[i][..c.signature_lens[i] as usize], *sig);
        }
        assert_eq!(&c.signatures[0][..c.signature_lens[0] as usize], b"\x0b", "the MLLP start block");
        assert!(crate::DEFAULT_SIGNATURES.iter().all(|s| s.len() <= crate::SIGNATURE_LEN));
    }
}
