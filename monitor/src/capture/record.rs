//! Capture, live records: a decoded ring-buffer record → the same [`Packet`] the pcap path
//! produces, and the kernel's monotonic timestamps → wall-clock time.
//! Must never read past the record's checked payload nor trust a field `parse_record` did not check.
use monitor_common::decode::RecordRef;
use monitor_common::{dir, kind, record_flags, tcp_flags};

use crate::decode::{Addr, LocalSocket, Packet, Transport};

/// The packet a record describes, borrowing its payload.
///
/// TCP payload chunks and lifecycle records become TCP packets with the record's flags and
/// sequence number; QUIC Initial records become UDP packets (no flags, seq 0).
pub fn packet<'a>(r: &RecordRef<'a>) -> Packet<'a> {
    let h = &r.header;
    let addr = |bytes: &[u8; 16]| {
        if h.ip_version == 4 {
            Addr::v4([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            Addr::v6(*bytes)
        }
    };
    let tcp = !matches!(h.kind, kind::QUIC_INITIAL | kind::DTLS_RECORDS);
    let flag = |bit: u8| tcp && h.tcp_flags & bit != 0;
    Packet {
        src: addr(&h.src_addr),
        dst: addr(&h.dst_addr),
        src_port: h.src_port,
        dst_port: h.dst_port,
        transport: if tcp { Transport::Tcp } else { Transport::Udp },
        syn: flag(tcp_flags::SYN),
        ack: flag(tcp_flags::ACK),
        fin: flag(tcp_flags::FIN),
        rst: flag(tcp_flags::RST),
        seq: if tcp { h.seq } else { 0 },
        payload: r.payload,
        truncated: h.flags & record_flags::TRUNCATED != 0,
        // A SYN-ACK leaves from a request socket, not the connection's (the kernel sends none).
        local: (h.direction == dir::EGRESS && h.socket_cookie != 0 && !(flag(tcp_flags::SYN) && flag(tcp_flags::ACK)))
            .then_some(LocalSocket { cookie: h.socket_cookie, cgroup_id: h.cgroup_id }),
    }
}

/// Maps `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) to wall-clock nanoseconds since the Unix epoch.
///
/// The offset is read once, so event times stay consistent with each other even if the wall
/// clock is stepped later (the agent's idle timer uses [`Clock::now_ns`] on the same base).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, in nanoseconds.
    offset_ns: i128,
}

impl Clock {
    /// Read both clocks now (the realtime read sits between two monotonic reads; their mean is
    /// used, so the offset is off by at most half the time between them).
    pub fn new() -> Self {
        let m1 = monotonic_ns();
        let r = realtime_ns();
        let m2 = monotonic_ns();
        let m = (i128::from(m1) + i128::from(m2)) / 2;
        Clock { offset_ns: i128::from(r) - m }
    }

    /// A clock with a given offset (tests).
    pub fn with_offset(offset_ns: i128) -> Self {
        Clock { offset_ns }
    }

    /// Wall-clock time of a kernel timestamp (saturating at the ends of `u64`).
    pub fn wall_ns(&self, monotonic_ns: u64) -> u64 {
        let t = i128::from(monotonic_ns) + self.offset_ns;
        t.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// Wall-clock time now, on the same base as [`Clock::wall_ns`].
    pub fn now_ns(&self) -> u64 {
        self.wall_ns(monotonic_ns())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

fn read_clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        // Both clocks exist on every Linux; a failure leaves 0 rather than panicking.
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// CLOCK_MONOTONIC in nanoseconds: the base of `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    read_clock(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    read_clock(libc::CLOCK_REALTIME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_common::decode::{parse_record, write_record};
    use monitor_common::{dir, RecordHeader, HEADER_LEN, MAX_RECORD_PAYLOAD};

    fn header(kind: u16, ip_version: u8, tcp_flags: u8) -> RecordHeader {
        let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
        if ip_version == 4 {
            src[..4].copy_from_slice(&[10, 99, 0, 1]);
            dst[..4].copy_from_slice(&[10, 99, 0, 2]);
        } else {
            src = [0xfd, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            dst = [0xfd, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        }
        RecordHeader {
            kind,
            ip_version,
            direction: dir::EGRESS,
            src_addr: src,
            dst_addr: dst,
            src_port: 40_000,
            dst_port: 443,
            protocol: if matches!(kind, kind::QUIC_INITIAL | kind::DTLS_RECORDS) { 17 } else { 6 },
            tcp_flags,
            seq: 0xfedc_ba98,
            timestamp_ns: 5_000_000_000,
            ..Default::default()
        }
    }

    /// Encode with the contract's writer, decode with its parser, then map to a packet.
    fn round_trip(h: RecordHeader, payload: &[u8], check: impl FnOnce(&Packet<'_>)) {
        let mut buf = vec![0u8; HEADER_LEN + MAX_RECORD_PAYLOAD];
        let n = write_record(h, payload, &mut buf).expect("buffer holds the record");
        let r = parse_record(&buf[..n]).expect("record parses");
        check(&packet(&r));
    }

    #[test]
    fn ipv4_tcp_payload() {
        let hello = [0x16, 3, 1, 0, 4, 1, 0, 0, 0];
        round_trip(header(kind::TCP_PAYLOAD, 4, tcp_flags::ACK | tcp_flags::PSH), &hello, |p| {
            assert_eq!(p.src.to_ip().to_string(), "10.99.0.1");
            assert_eq!(p.dst.to_ip().to_string(), "10.99.0.2");
            assert!(!p.src.v6);
            assert_eq!((p.src_port, p.dst_port), (40_000, 443));
            assert_eq!(p.transport, Transport::Tcp);
            assert_eq!(p.seq, 0xfedc_ba98);
            assert_eq!(p.payload, &hello);
            assert!(p.ack && !p.syn && !p.fin && !p.rst);
            assert!(!p.truncated);
        });
    }

    #[test]
    fn ipv6_tcp_payload_truncated() {
        let mut h = header(kind::TCP_PAYLOAD, 6, tcp_flags::ACK);
        h.flags = record_flags::TRUNCATED | record_flags::DIR_DONE;
        round_trip(h, b"abc", |p| {
            assert!(p.src.v6 && p.dst.v6);
            assert_eq!(p.src.to_ip().to_string(), "fd99::1");
            assert_eq!(p.dst.to_ip().to_string(), "fd99::2");
            assert_eq!(p.payload, b"abc");
            assert!(p.truncated);
        });
    }

    #[test]
    fn lifecycle_flags() {
        let cases = [
            (tcp_flags::SYN, (true, false, false, false)),
            (tcp_flags::SYN | tcp_flags::ACK, (true, true, false, false)),
            (tcp_flags::FIN | tcp_flags::ACK, (false, true, true, false)),
            (tcp_flags::RST, (false, false, false, true)),
            (tcp_flags::RST | tcp_flags::ACK, (false, true, false, true)),
        ];
        for (flags, want) in cases {
            round_trip(header(kind::TCP_LIFECYCLE, 4, flags), &[], |p| {
                assert_eq!((p.syn, p.ack, p.fin, p.rst), want, "flags {flags:#04x}");
                assert!(p.payload.is_empty());
                assert_eq!(p.transport, Transport::Tcp);
                assert_eq!(p.seq, 0xfedc_ba98);
            });
        }
    }

    #[test]
    fn quic_initial_is_udp() {
        // A stray flags byte on a UDP record must not turn into TCP flags.
        let initial = [0xc3, 0, 0, 0, 1, 8];
        round_trip(header(kind::QUIC_INITIAL, 6, 0xff), &initial, |p| {
            assert_eq!(p.transport, Transport::Udp);
            assert!(!p.syn && !p.ack && !p.fin && !p.rst);
            assert_eq!(p.seq, 0);
            assert_eq!(p.payload, &initial);
            assert_eq!(p.dst_port, 443);
        });
    }

    #[test]
    fn dtls_records_are_udp() {
        let records = [22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        round_trip(header(kind::DTLS_RECORDS, 4, 0xff), &records, |p| {
            assert_eq!(p.transport, Transport::Udp);
            assert!(!p.syn && !p.ack && !p.fin && !p.rst);
            assert_eq!(p.payload, &records);
        });
    }

    #[test]
    fn clock_offsets_kernel_time() {
        let c = Clock::with_offset(1_700_000_000_000_000_000);
        assert_eq!(c.wall_ns(5), 1_700_000_000_000_000_005);
        assert_eq!(Clock::with_offset(-10).wall_ns(3), 0, "saturates at the epoch");
        assert_eq!(Clock::with_offset(i128::MAX / 2).wall_ns(1), u64::MAX);
        // The real clocks: monotonic + offset lands within a second of realtime.
        let real = Clock::new();
        let diff = real.now_ns().abs_diff(realtime_ns());
        assert!(diff < 1_000_000_000, "wall from monotonic is {diff} ns off realtime");
        assert!(monotonic_ns() > 0);
    }
}
