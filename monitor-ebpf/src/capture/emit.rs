//! Kernel capture, emit stage: the per-CPU counters, and one ring-buffer record (header plus
//! up to `MAX_RECORD_PAYLOAD` payload bytes) staged in a per-CPU map and written out.
//! Must never reserve a variable size, copy more than one record's payload, or lose a record
//! without counting it.
use core::hint::black_box;

use monitor_common::{
    counter, kind, record_flags, tcp_flags, HEADER_LEN, MAX_RECORDS_PER_PACKET, MAX_RECORD_PAYLOAD, RECORD_MAGIC,
    RECORD_VERSION,
};

use crate::parse::Meta;
use crate::{Packet, COUNTERS, EVENTS, STAGE};

#[inline(always)]
pub(crate) fn bump(index: u32) {
    add(index, 1);
}

#[inline(always)]
pub(super) fn add(index: u32, n: u64) {
    add2(index, n, None);
}

/// Add `n` to counter `index` and, when given, `m.1` to counter `m.0`: two counters for one
/// lookup of this CPU's counters.
#[inline(always)]
pub(super) fn add2(index: u32, n: u64, m: Option<(u32, u64)>) {
    if let Some(c) = COUNTERS.get_ptr_mut(0) {
        // SAFETY: the pointer comes from a successful lookup of this CPU's slot, valid for the
        // duration of the program; per-CPU slots are not shared with other CPUs.
        let c = unsafe { &mut (*c).0 };
        if let Some(slot) = c.get_mut(index as usize) {
            *slot += n;
        }
        if let Some((index, n)) = m {
            if let Some(slot) = c.get_mut(index as usize) {
                *slot += n;
            }
        }
    }
}

/// One record to write: header fields beyond the packet's tuple, and which payload bytes.
#[derive(Clone, Copy)]
pub struct Out {
    seq: u32,
    /// Packet offset and length of the payload bytes to copy (`n` <= MAX_RECORD_PAYLOAD).
    off: u32,
    n: u32,
    kind: u16,
    tcp_flags: u8,
    flags: u8,
    /// What [`send_payload`] may send of a TCP segment.
    pub carry: Carry,
}

/// How much of a TCP segment's payload goes out, decided by the flow stage and read by
/// [`send_payload`] from this per-CPU map memory.
#[derive(Clone, Copy)]
pub struct Carry {
    /// Payload bytes in the packet.
    pub avail: u32,
    /// Bytes the direction's grant leaves from the segment's start.
    pub room: u32,
    /// Bytes before encryption began (`u32::MAX` when it has not).
    pub clear: u32,
    /// The direction is done after this segment (`dir_flags::DONE` or 0).
    pub done: u8,
}

impl Out {
    #[inline(always)]
    pub(super) fn set(&mut self, kind: u16, seq: u32, off: u32, n: u32, tcp_flags: u8, flags: u8) {
        self.kind = kind;
        self.seq = seq;
        self.off = off;
        self.n = n;
        self.tcp_flags = tcp_flags;
        self.flags = flags;
    }
}

/// Send a TCP segment's payload, as far as `o.carry` allows, in records of at most
/// `MAX_RECORD_PAYLOAD` bytes (SYN on the first, FIN/RST on the last).
///
/// A BPF subprogram whose inputs come from map memory, whose scalars the verifier does not
/// track: however the flow stage decided, the loop below is verified from one entry state
/// instead of once per decision path (32 iterations times every path went past the
/// verifier's million-instruction budget).
#[inline(never)]
pub(super) fn send_payload<P: Packet>(p: &P, m: &Meta, o: &mut Out) {
    // SAFETY: plain reads of a valid, exclusively borrowed struct in map memory.
    let Carry { avail, room, clear, done } = unsafe { core::ptr::read_volatile(&o.carry) };
    let f = m.tcp_flags;
    let mut carry = if avail < room { avail } else { room };
    const MAX_CARRY: u32 = (MAX_RECORDS_PER_PACKET * MAX_RECORD_PAYLOAD) as u32;
    if carry > MAX_CARRY {
        carry = MAX_CARRY;
    }
    let mut rflags = 0;
    if carry < m.payload_len || m.first_fragment {
        rflags |= record_flags::TRUNCATED;
        bump(counter::PAYLOAD_TRUNCATED);
    }
    // Encrypted from the application-data header on: forward the header, not the ciphertext.
    if clear < carry {
        carry = clear;
    }
    let mut i = 0;
    while i < MAX_RECORDS_PER_PACKET {
        let off = (i * MAX_RECORD_PAYLOAD) as u32;
        if off >= carry {
            break;
        }
        let left = carry - off;
        let last = left <= MAX_RECORD_PAYLOAD as u32;
        let n = if last { left } else { MAX_RECORD_PAYLOAD as u32 };
        // SYN only on the first chunk, FIN/RST only on the last, so the agent's flow state
        // changes where the sender's did.
        let mut chunk_flags = f & (tcp_flags::ACK | tcp_flags::PSH);
        if i == 0 {
            chunk_flags |= f & tcp_flags::SYN;
        }
        let mut chunk_rflags = rflags;
        if last {
            chunk_flags |= f & (tcp_flags::FIN | tcp_flags::RST);
            if done != 0 {
                chunk_rflags |= record_flags::DIR_DONE;
            }
        }
        o.set(kind::TCP_PAYLOAD, m.seq.wrapping_add(off), m.payload_off + off, n, chunk_flags, chunk_rflags);
        emit(p, m, o);
        i += 1;
    }
}

/// A SYN, FIN or RST without payload (or whose payload is not captured).
#[inline(always)]
pub(super) fn lifecycle<P: Packet>(p: &P, m: &Meta, o: &mut Out) {
    o.set(kind::TCP_LIFECYCLE, m.seq, 0, 0, m.tcp_flags, 0);
    emit(p, m, o);
}

/// Write one record: header, then `n` payload bytes copied from packet offset `off`. A BPF
/// subprogram rather than inlined: it keeps the stack of each call site small.
#[inline(never)]
pub(super) fn emit<P: Packet>(p: &P, m: &Meta, o: &Out) {
    let Out { seq, off, n, kind, tcp_flags, flags, .. } = *o;
    let Some(rec) = STAGE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's staging slot, from a successful lookup; not shared with other CPUs
    // and not re-entered (TC and XDP programs do not nest on one CPU).
    let rec = unsafe { &mut *rec };
    let n = black_box(n);
    if n > MAX_RECORD_PAYLOAD as u32 {
        return;
    }
    // Field by field into the map value: a header built on the stack would cost 72 bytes of
    // the 512-byte stack at every inlined call site.
    let h = &mut rec.header;
    h.magic = RECORD_MAGIC;
    h.version = RECORD_VERSION;
    h.kind = kind;
    h.len = HEADER_LEN as u32 + n;
    h.payload_len = n as u16;
    h.ip_version = m.ip_version;
    h.direction = p.direction();
    h.src_addr = m.src;
    h.dst_addr = m.dst;
    h.src_port = m.src_port;
    h.dst_port = m.dst_port;
    h.protocol = m.protocol;
    h.tcp_flags = tcp_flags;
    h.flags = flags;
    h._pad = 0;
    h.seq = seq;
    h._pad2 = [0; 4];
    // SAFETY: a helper without arguments or side effects; read only for packets that produce
    // a record (about 20 ns).
    h.timestamp_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    // Which local socket sent the packet (0, 0 when none did): two helpers, only for packets
    // that produce a record. A SYN-ACK leaves from the listener's request socket, not from
    // the socket that carries the connection afterwards: it names none.
    let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
    let (cookie, cgroup) = if tcp_flags & syn_ack == syn_ack { (0, 0) } else { p.socket() };
    h.socket_cookie = cookie;
    h.cgroup_id = cgroup;
    let size = if n == 0 {
        HEADER_LEN
    } else {
        let len = ((n - 1) & (MAX_RECORD_PAYLOAD as u32 - 1)) + 1;
        if p.load(off, rec.payload.as_mut_ptr(), len) != 0 {
            bump(counter::LOAD_FAILED);
            return;
        }
        HEADER_LEN + len as usize
    };
    // SAFETY: `size` <= size_of::<Record>() (n <= MAX_RECORD_PAYLOAD), inside the map value.
    let bytes = unsafe { core::slice::from_raw_parts((rec as *const monitor_common::Record).cast::<u8>(), size) };
    match EVENTS.output::<[u8]>(bytes, 0) {
        Ok(()) => add2(counter::RECORDS, 1, Some((counter::RECORD_BYTES, size as u64))),
        Err(_) => bump(counter::RINGBUF_FULL),
    }
}
