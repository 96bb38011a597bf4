//! Kernel flow-head capture: per flow, decide at the first payload whether it is worth
//! watching (TLS, SSLv2, a plaintext signature or port), then copy each direction's first
//! `budget` stream bytes into the ring buffer until that direction turns encrypted; SYN, FIN
//! and RST go out as lifecycle records; UDP/443 QUIC Initials are forwarded whole.
//! Must never copy more than the budget, loop without a constant bound, or fail closed: every
//! skip, cut and loss is a counter.
use core::hint::black_box;

use monitor_common::{
    counter, dir_flags, flow_kind, kind, record_flags, tcp_flags, FlowKey, FlowKey4, FlowValue, HEADER_LEN,
    MAX_CANDIDATE_PORTS, MAX_RECORDS_PER_PACKET, MAX_RECORD_PAYLOAD, MAX_SIGNATURES, NO_DIR, RECORD_MAGIC,
    RECORD_VERSION,
};

use crate::parse::{parse_frame, Meta, Skip, IPPROTO_UDP};
use crate::{Packet, COUNTERS, EVENTS, FLOWS, FLOWS4, SCRATCH, STAGE, TLSMON_CONFIG};

/// Per-packet working state, kept in a per-CPU map: the 512-byte stack cannot hold it.
pub struct Scratch {
    pub meta: Meta,
    pub key: FlowKey,
    pub key4: FlowKey4,
    pub out: Out,
}

/// TLS record headers followed within one segment.
const MAX_RECORD_WALK: usize = 8;
const TLS_CCS: u8 = 20;
const TLS_ALERT: u8 = 21;
const TLS_HANDSHAKE: u8 = 22;
const TLS_APPDATA: u8 = 23;
const TLS_HEARTBEAT: u8 = 24;
const QUIC_V2: u32 = 0x6b33_43cf;
const QUIC_PORT: u16 = 443;

/// Reads one field of the load-time config (volatile, so the loader's value is seen).
macro_rules! config {
    ($field:ident) => {
        // SAFETY: a read of a plain field of a static the program owns.
        unsafe { core::ptr::read_volatile(&raw const TLSMON_CONFIG.$field) }
    };
}

#[inline(always)]
pub fn bump(index: u32) {
    add(index, 1);
}

#[inline(always)]
fn add(index: u32, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful lookup of this CPU's slot, valid for the
        // duration of the program; per-CPU slots are not shared with other CPUs.
        unsafe { *slot += n };
    }
}

/// Entry point of both hooks.
#[inline(always)]
pub fn packet<P: Packet>(p: &P) {
    let frame_len = p.len();
    bump(counter::PACKETS);
    add(counter::PACKET_BYTES, u64::from(frame_len));
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's scratch slot from a successful lookup; programs do not nest on a CPU.
    let scratch = unsafe { &mut *scratch };
    let m = &mut scratch.meta;
    match parse_frame(p.data(), p.data_end(), m) {
        Ok(()) => {}
        Err(skip) => {
            bump(match skip {
                Skip::NotIp => counter::NOT_IP,
                Skip::NotTcpUdp => counter::NOT_TCP_UDP,
                Skip::Fragment => counter::IP_FRAGMENT,
                Skip::Truncated => counter::TRUNCATED_HEADER,
            });
            return;
        }
    };
    // Payload bytes present in the packet: the IP header's count, less what a short frame
    // (snap length) or Ethernet padding changes.
    let present = frame_len.saturating_sub(m.payload_off);
    let avail = if present < m.payload_len { present } else { m.payload_len };
    let o = &mut scratch.out;
    if scratch.meta.protocol == IPPROTO_UDP {
        udp(p, &scratch.meta, avail, o);
    } else {
        if scratch.meta.ip_version == 4 {
            tcp::<P, V4>(p, &scratch.meta, avail, &mut scratch.key4, o);
        } else {
            tcp::<P, V6>(p, &scratch.meta, avail, &mut scratch.key, o);
        }
    }
}

#[inline(always)]
fn udp<P: Packet>(p: &P, m: &Meta, avail: u32, o: &mut Out) {
    if config!(quic) == 0 || (m.src_port != QUIC_PORT && m.dst_port != QUIC_PORT) || avail < 7 {
        bump(counter::UDP_SKIPPED);
        return;
    }
    let mut h = [0u8; 8];
    if p.load(m.payload_off, h.as_mut_ptr(), 5) != 0 {
        bump(counter::LOAD_FAILED);
        return;
    }
    let version = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    let packet_type = (h[0] >> 4) & 0x03;
    let initial = if version == QUIC_V2 { packet_type == 1 } else { packet_type == 0 };
    if h[0] & 0x80 == 0 || version == 0 || !initial {
        bump(counter::UDP_SKIPPED);
        return;
    }
    bump(counter::QUIC_INITIAL);
    let mut flags = 0;
    let mut n = avail;
    if n > MAX_RECORD_PAYLOAD as u32 {
        n = MAX_RECORD_PAYLOAD as u32;
    }
    if n < m.payload_len || m.first_fragment {
        flags |= record_flags::TRUNCATED;
        bump(counter::PAYLOAD_TRUNCATED);
    }
    o.set(kind::QUIC_INITIAL, 0, m.payload_off, n, 0, flags);
    emit(p, m, o);
}

/// One of the two flow maps: the key type and its operations.
trait Flows {
    type Key;
    /// Fill `key` with the canonical key of the packet's flow; returns the packet's direction
    /// in it (0: a → b).
    fn key(m: &Meta, key: &mut Self::Key) -> usize;
    fn get(key: &Self::Key) -> Option<*mut FlowValue>;
    fn insert(key: &Self::Key) -> bool;
    fn remove(key: &Self::Key);
}

struct V4;
struct V6;

/// Is the sender `a` of the canonical order: smaller address, then smaller port?
#[inline(always)]
fn src_first(m: &Meta) -> bool {
    match cmp16(&m.src, &m.dst) {
        core::cmp::Ordering::Less => true,
        core::cmp::Ordering::Greater => false,
        core::cmp::Ordering::Equal => m.src_port <= m.dst_port,
    }
}

impl Flows for V4 {
    type Key = FlowKey4;
    #[inline(always)]
    fn key(m: &Meta, key: &mut FlowKey4) -> usize {
        let (a, b) = if src_first(m) { (&m.src, &m.dst) } else { (&m.dst, &m.src) };
        key.addr_a = [a[0], a[1], a[2], a[3]];
        key.addr_b = [b[0], b[1], b[2], b[3]];
        if src_first(m) {
            key.port_a = m.src_port;
            key.port_b = m.dst_port;
            0
        } else {
            key.port_a = m.dst_port;
            key.port_b = m.src_port;
            1
        }
    }
    #[inline(always)]
    fn get(key: &FlowKey4) -> Option<*mut FlowValue> {
        FLOWS4.get_ptr_mut(key)
    }
    #[inline(always)]
    fn insert(key: &FlowKey4) -> bool {
        FLOWS4.insert(key, &new_flow(), 0).is_ok()
    }
    #[inline(always)]
    fn remove(key: &FlowKey4) {
        let _ = FLOWS4.remove(key);
    }
}

impl Flows for V6 {
    type Key = FlowKey;
    #[inline(always)]
    fn key(m: &Meta, key: &mut FlowKey) -> usize {
        key.protocol = m.protocol;
        key._pad = [0; 3];
        if src_first(m) {
            key.addr_a = m.src;
            key.addr_b = m.dst;
            key.port_a = m.src_port;
            key.port_b = m.dst_port;
            0
        } else {
            key.addr_a = m.dst;
            key.addr_b = m.src;
            key.port_a = m.dst_port;
            key.port_b = m.src_port;
            1
        }
    }
    #[inline(always)]
    fn get(key: &FlowKey) -> Option<*mut FlowValue> {
        FLOWS.get_ptr_mut(key)
    }
    #[inline(always)]
    fn insert(key: &FlowKey) -> bool {
        FLOWS.insert(key, &new_flow(), 0).is_ok()
    }
    #[inline(always)]
    fn remove(key: &FlowKey) {
        let _ = FLOWS.remove(key);
    }
}

/// Any total order on addresses will do; compare as two native-endian u64 halves.
#[inline(always)]
fn cmp16(a: &[u8; 16], b: &[u8; 16]) -> core::cmp::Ordering {
    let w = |x: &[u8; 16], i: usize| {
        u64::from_ne_bytes([x[i], x[i + 1], x[i + 2], x[i + 3], x[i + 4], x[i + 5], x[i + 6], x[i + 7]])
    };
    match w(a, 0).cmp(&w(b, 0)) {
        core::cmp::Ordering::Equal => w(a, 8).cmp(&w(b, 8)),
        o => o,
    }
}

fn new_flow() -> FlowValue {
    FlowValue { kind: flow_kind::NEW, syn_dir: NO_DIR, ..FlowValue::default() }
}

#[inline(always)]
fn tcp<P: Packet, F: Flows>(p: &P, m: &Meta, avail: u32, key: &mut F::Key, o: &mut Out) {
    let f = m.tcp_flags;
    let syn = f & tcp_flags::SYN != 0;
    let ack = f & tcp_flags::ACK != 0;
    let closing = f & (tcp_flags::FIN | tcp_flags::RST) != 0;
    let rst = f & tcp_flags::RST != 0;
    if avail == 0 && f & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0 {
        // A pure ACK changes nothing for any flow: no lookup.
        bump(counter::TCP_NO_PAYLOAD);
        return;
    }
    let d = F::key(m, key);
    let key: &F::Key = key;
    let mut slot = F::get(key);
    if slot.is_none() {
        // Only a SYN or payload opens a flow; stray ACKs, FINs and RSTs do not.
        if avail == 0 && !syn {
            bump(counter::TCP_NO_PAYLOAD);
            return;
        }
        if !F::insert(key) {
            bump(counter::FLOW_MAP_FULL);
            return;
        }
        slot = F::get(key);
    }
    let Some(v) = slot else {
        bump(counter::FLOW_MAP_FULL);
        return;
    };
    // SAFETY: a pointer from a successful lookup, valid for this run; concurrent updates from
    // other CPUs can only make the capture decision stale, never unsafe.
    let v = unsafe { &mut *v };
    if syn && !ack && v.kind != flow_kind::NEW {
        // The 4-tuple is reused by a new connection.
        *v = new_flow();
    }
    if v.kind == flow_kind::IGNORED {
        if avail > 0 {
            bump(counter::FLOW_IGNORED);
        }
        if rst {
            F::remove(key);
        }
        return;
    }
    let df = if d == 0 { v.dir_flags[0] } else { v.dir_flags[1] };
    let mut df = df;
    if syn {
        if !ack {
            v.syn_dir = d as u8;
        }
        if df & dir_flags::BASE == 0 {
            set_base(v, d, m.seq.wrapping_add(1));
            df |= dir_flags::BASE;
        }
    }
    if avail == 0 {
        if syn || closing {
            lifecycle(p, m, o);
        } else {
            bump(counter::TCP_NO_PAYLOAD);
        }
        finish::<F>(v, d, df, rst, key);
        return;
    }
    if df & dir_flags::DONE != 0 {
        bump(counter::DIR_DONE);
        if closing {
            lifecycle(p, m, o);
        }
        finish::<F>(v, d, df, rst, key);
        return;
    }
    // The first bytes decide what the flow is and, without a SYN, who is the client; later
    // packets of a decided direction skip this copy.
    if v.kind == flow_kind::NEW || df & dir_flags::BUDGET == 0 {
        let mut head = [0u8; 8];
        let head_len = if avail < 8 { avail } else { 8 };
        if load_small(p, m.payload_off, &mut head, head_len) != 0 {
            bump(counter::LOAD_FAILED);
            return;
        }
        // Only bytes at the start of the stream decide: a segment that overtook the first one
        // (its SYN told where the stream starts) is captured under the budget and the
        // decision waits for the first segment.
        let base = if d == 0 { v.base[0] } else { v.base[1] };
        let at_start = df & dir_flags::BASE == 0 || m.seq == base;
        if v.kind == flow_kind::NEW && at_start {
            v.kind = classify(&head, head_len, m);
            if v.kind == flow_kind::IGNORED {
                bump(counter::NOT_CANDIDATE);
                if rst {
                    F::remove(key);
                }
                return;
            }
        }
        if df & dir_flags::BUDGET == 0 {
            let client = if v.syn_dir != NO_DIR { usize::from(v.syn_dir) == d } else { looks_like_client_hello(&head) };
            df |= dir_flags::BUDGET;
            if client {
                df |= dir_flags::CLIENT;
            }
        }
    }
    if df & dir_flags::BASE == 0 {
        set_base(v, d, m.seq);
        df |= dir_flags::BASE;
    }
    let budget = if df & dir_flags::CLIENT != 0 { config!(client_budget) } else { config!(server_budget) };
    let base = if d == 0 { v.base[0] } else { v.base[1] };
    let rel = m.seq.wrapping_sub(base);
    if rel >= budget {
        bump(counter::BUDGET_EXHAUSTED);
        if closing {
            lifecycle(p, m, o);
        }
        finish::<F>(v, d, df, rst, key);
        return;
    }
    let room = budget - rel;
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
    if v.kind == flow_kind::TLS && df & dir_flags::NO_WALK == 0 {
        df = walk_records(p, m, v, d, df, &mut carry);
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
            if df & dir_flags::DONE != 0 {
                chunk_rflags |= record_flags::DIR_DONE;
            }
        }
        o.set(kind::TCP_PAYLOAD, m.seq.wrapping_add(off), m.payload_off + off, n, chunk_flags, chunk_rflags);
        emit(p, m, o);
        i += 1;
    }
    finish::<F>(v, d, df, rst, key);
}

#[inline(always)]
fn set_base(v: &mut FlowValue, d: usize, seq: u32) {
    if d == 0 {
        v.base[0] = seq;
    } else {
        v.base[1] = seq;
    }
}

/// Store the direction's flags back; a reset flow leaves the map.
#[inline(always)]
fn finish<F: Flows>(v: &mut FlowValue, d: usize, df: u8, rst: bool, key: &F::Key) {
    if d == 0 {
        v.dir_flags[0] = df;
    } else {
        v.dir_flags[1] = df;
    }
    if rst {
        F::remove(key);
    }
}

/// Copy up to 8 bytes at `off` into `out` (`n` in 1..=8).
#[inline(always)]
fn load_small<P: Packet>(p: &P, off: u32, out: &mut [u8; 8], n: u32) -> i64 {
    let n = black_box(n);
    if n == 0 || n > 8 {
        return -1;
    }
    p.load(off, out.as_mut_ptr(), n)
}

/// Does the first payload of a flow make it worth capturing?
#[inline(always)]
fn classify(head: &[u8; 8], len: u32, m: &Meta) -> u8 {
    // A TLS handshake or alert record (TLS 1.x / SSLv3), or an SSLv2 ClientHello/ServerHello.
    let tls = len >= 3 && (head[0] == TLS_HANDSHAKE || head[0] == TLS_ALERT) && head[1] == 3 && head[2] <= 4;
    let sslv2 = len >= 3 && head[0] & 0x80 != 0 && (head[2] == 1 || head[2] == 4);
    if tls || sslv2 {
        return flow_kind::TLS;
    }
    let n_ports = config!(n_ports) as usize;
    let mut i = 0;
    while i < MAX_CANDIDATE_PORTS {
        if i >= n_ports {
            break;
        }
        // SAFETY: i < MAX_CANDIDATE_PORTS, the array's length. Raw pointer arithmetic: an
        // indexing bounds check would leave a panic call the verifier refuses.
        let port = unsafe { core::ptr::read_volatile((&raw const TLSMON_CONFIG.ports).cast::<u16>().add(i)) };
        if port == m.src_port || port == m.dst_port {
            return flow_kind::PLAINTEXT;
        }
        i += 1;
    }
    let word = u64::from_le_bytes(*head);
    let n_sigs = config!(n_signatures) as usize;
    let mut s = 0;
    while s < MAX_SIGNATURES {
        if s >= n_sigs {
            break;
        }
        // SAFETY: s < MAX_SIGNATURES, both arrays' length; raw pointer arithmetic as above.
        let (sig, sig_len) = unsafe {
            (
                core::ptr::read_volatile((&raw const TLSMON_CONFIG.signatures).cast::<[u8; 8]>().add(s)),
                core::ptr::read_volatile((&raw const TLSMON_CONFIG.signature_lens).cast::<u8>().add(s)),
            )
        };
        let sig_len = u32::from(sig_len);
        if sig_len > 0 && sig_len <= len && sig_len <= 8 {
            let mask = if sig_len == 8 { u64::MAX } else { (1u64 << (sig_len * 8)) - 1 };
            if word & mask == u64::from_le_bytes(sig) & mask {
                return flow_kind::PLAINTEXT;
            }
        }
        s += 1;
    }
    flow_kind::IGNORED
}

/// The agent's rule for a direction whose role the SYN did not tell: a TLS or SSLv2
/// ClientHello is the client's.
#[inline(always)]
fn looks_like_client_hello(h: &[u8; 8]) -> bool {
    (h[0] == TLS_HANDSHAKE && h[1] == 3 && h[5] == 1) || (h[0] & 0x80 != 0 && h[2] == 1)
}

/// Follow the TLS record headers that start inside this segment's first `carry` bytes; mark
/// the direction done at an application-data record (nothing after it is in clear) and cut
/// `carry` right after that record's header. Returns the direction's flags.
#[inline(always)]
fn walk_records<P: Packet>(p: &P, m: &Meta, v: &mut FlowValue, d: usize, mut df: u8, carry: &mut u32) -> u8 {
    let limit = *carry;
    let base = if d == 0 { v.base[0] } else { v.base[1] };
    let mut next = if df & dir_flags::RECORD != 0 {
        if d == 0 {
            v.next_record[0]
        } else {
            v.next_record[1]
        }
    } else {
        base
    };
    df |= dir_flags::RECORD;
    let start = next.wrapping_sub(m.seq) as i32;
    if start < 0 || start as u32 >= limit {
        // The next header is in a segment not seen yet (reordering) or beyond this one.
        return df;
    }
    let mut off = start as u32;
    let mut i = 0;
    while i < MAX_RECORD_WALK {
        if off + 5 > limit {
            break;
        }
        let mut h = [0u8; 8];
        if p.load(m.payload_off + off, h.as_mut_ptr(), 5) != 0 {
            bump(counter::LOAD_FAILED);
            break;
        }
        let ct = h[0];
        if h[1] != 3 || ct < TLS_CCS || ct > TLS_HEARTBEAT {
            // Not a TLS record header (SSLv2, garbage): only the budget applies from here.
            return df | dir_flags::NO_WALK;
        }
        // Application data: encrypted from here on. Not ChangeCipherSpec: TLS 1.3 sends a
        // middlebox-compatibility CCS before a second ClientHello and after a
        // HelloRetryRequest, with cleartext handshake records still to come.
        if ct == TLS_APPDATA {
            // Forward the header (it tells the agent encryption began), not the ciphertext.
            df |= dir_flags::DONE;
            *carry = off + 5;
            break;
        }
        off += 5 + u32::from(u16::from_be_bytes([h[3], h[4]]));
        i += 1;
    }
    next = m.seq.wrapping_add(off);
    if d == 0 {
        v.next_record[0] = next;
    } else {
        v.next_record[1] = next;
    }
    df
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
}

impl Out {
    #[inline(always)]
    fn set(&mut self, kind: u16, seq: u32, off: u32, n: u32, tcp_flags: u8, flags: u8) {
        self.kind = kind;
        self.seq = seq;
        self.off = off;
        self.n = n;
        self.tcp_flags = tcp_flags;
        self.flags = flags;
    }
}

/// A SYN, FIN or RST without payload (or whose payload is not captured).
#[inline(always)]
fn lifecycle<P: Packet>(p: &P, m: &Meta, o: &mut Out) {
    o.set(kind::TCP_LIFECYCLE, m.seq, 0, 0, m.tcp_flags, 0);
    emit(p, m, o);
}

/// Write one record: header, then `n` payload bytes copied from packet offset `off`. A BPF
/// subprogram rather than inlined: it keeps the stack of each call site small.
#[inline(never)]
fn emit<P: Packet>(p: &P, m: &Meta, o: &Out) {
    let Out { seq, off, n, kind, tcp_flags, flags } = *o;
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
        Ok(()) => {
            bump(counter::RECORDS);
            add(counter::RECORD_BYTES, size as u64);
        }
        Err(_) => bump(counter::RINGBUF_FULL),
    }
}
