//! Kernel capture, UDP handshake stage: forward a UDP/443 long-header QUIC Initial packet, or
//! a datagram of clear DTLS records on any port, whole (up to one record) when the load-time
//! settings ask for it.
//! Must never touch the flow maps or forward any other UDP packet: those are only counted.
use monitor_common::classify::dtls_candidate;
use monitor_common::{counter, kind, record_flags, MAX_RECORD_PAYLOAD};

use super::config;
use super::emit::{bump, emit, Out};
use crate::parse::{Headers, Meta};
use crate::Packet;

const QUIC_V2: u32 = 0x6b33_43cf;
const QUIC_PORT: u16 = 443;
/// A DTLS record header's length: a datagram shorter than one is not forwarded.
const DTLS_RECORD_HEADER: u32 = 13;
/// Payload offsets read directly (beyond: through the load helper).
const DIRECT_MAX_OFF: u32 = 512;

/// Can the first two payload bytes, read directly when they are in the linear area, rule the
/// datagram out (neither a QUIC long header on 443 nor a DTLS record)? Keeps the helper call
/// off the path of ordinary UDP (DNS and the like).
#[inline(always)]
fn ruled_out<P: Packet>(p: &P, h: &Headers, on_port: bool) -> bool {
    let off = h.payload_off;
    if off >= DIRECT_MAX_OFF {
        return false;
    }
    let at = p.data() + off as usize;
    if at + 2 > p.data_end() {
        return false;
    }
    // SAFETY: both bytes lie within [data, data_end), checked just above.
    let (b0, b1) = unsafe { (*(at as *const u8), *((at + 1) as *const u8)) };
    let dtls = matches!(b0, 20..=22) && b1 == 0xfe;
    !dtls && !(on_port && b0 & 0x80 != 0)
}

/// The datagram's addresses go into `m` only when it is forwarded.
#[inline(always)]
pub(super) fn udp<P: Packet>(p: &P, hd: &Headers, avail: u32, m: &mut Meta, o: &mut Out) {
    let on_port = hd.src_port == QUIC_PORT || hd.dst_port == QUIC_PORT;
    if config().quic == 0 || avail < 7 || ruled_out(p, hd, on_port) {
        bump(counter::UDP_SKIPPED);
        return;
    }
    let mut h = [0u8; 8];
    if p.load(hd.payload_off, h.as_mut_ptr(), 5) != 0 {
        bump(counter::LOAD_FAILED);
        return;
    }
    let version = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    let packet_type = (h[0] >> 4) & 0x03;
    let initial = if version == QUIC_V2 { packet_type == 1 } else { packet_type == 0 };
    let kind = if on_port && h[0] & 0x80 != 0 && version != 0 && initial {
        bump(counter::QUIC_INITIAL);
        kind::QUIC_INITIAL
    } else if avail >= DTLS_RECORD_HEADER && dtls_candidate(&h) {
        bump(counter::DTLS_RECORDS);
        kind::DTLS_RECORDS
    } else {
        bump(counter::UDP_SKIPPED);
        return;
    };
    if hd.meta(p.data(), p.data_end(), m).is_err() {
        bump(counter::TRUNCATED_HEADER);
        return;
    }
    let m: &Meta = m;
    let mut flags = 0;
    let mut n = avail;
    if n > MAX_RECORD_PAYLOAD as u32 {
        n = MAX_RECORD_PAYLOAD as u32;
    }
    if n < m.payload_len || m.first_fragment {
        flags |= record_flags::TRUNCATED;
        bump(counter::PAYLOAD_TRUNCATED);
    }
    o.set(kind, 0, m.payload_off, n, 0, flags);
    emit(p, m, o);
}
