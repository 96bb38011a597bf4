//! Kernel capture, TCP stage: per packet, find or open the flow, let the first payload decide
//! what the flow is (the shared classifier in monitor-common) and whose budget a direction
//! gets, then cut the payload to the budget and emit it in records.
//! Data segments of a flow already decided (ignored, a direction encrypted or past its grant)
//! leave right after the flow lookup, before the packet's addresses are copied anywhere.
//! Must never copy past a direction's budget, capture an ignored flow or a direction already
//! encrypted, or classify bytes that are not at the start of the stream.
use core::hint::black_box;

use monitor_common::walk::grant;
use monitor_common::{counter, dir_flags, flow_kind, tcp_flags, FlowHead, FlowValue, FLOW_HEAD_LEN, NO_DIR};

use super::config;
use super::emit::{bump, lifecycle, send_payload, Carry, Out};
use super::flows::{close, finish, new_flow, open, set_base, Flows};
use super::records::{walk_records, WalkIo};
use crate::parse::{Headers, Meta};
use crate::Packet;

#[inline(always)]
pub(super) fn tcp<P: Packet, F: Flows>(
    p: &P,
    h: &Headers,
    avail: u32,
    key: &mut F::Key,
    m: &mut Meta,
    o: &mut Out,
    w: &mut WalkIo,
) {
    let f = h.tcp_flags;
    let syn = f & tcp_flags::SYN != 0;
    let ack = f & tcp_flags::ACK != 0;
    let closing = f & (tcp_flags::FIN | tcp_flags::RST) != 0;
    let rst = f & tcp_flags::RST != 0;
    let lifecycle_flags = f & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST);
    if avail == 0 && lifecycle_flags == 0 {
        // A pure ACK changes nothing for any flow: no lookup.
        bump(counter::TCP_NO_PAYLOAD);
        return;
    }
    let Some(d) = F::key(p.data(), p.data_end(), h, key) else {
        bump(counter::TRUNCATED_HEADER);
        return;
    };
    let key: &F::Key = key;
    let mut slot = F::get(key);
    if let Some(v) = slot {
        // SAFETY: as below.
        if lifecycle_flags == 0 && decided(unsafe { &*v }, d, h.seq) {
            return;
        }
    }
    if h.meta(p.data(), p.data_end(), m).is_err() {
        bump(counter::TRUNCATED_HEADER);
        return;
    }
    let m: &Meta = m;
    if slot.is_none() {
        // Only a SYN or payload opens a flow; stray ACKs, FINs and RSTs do not.
        if avail == 0 && !syn {
            bump(counter::TCP_NO_PAYLOAD);
            return;
        }
        if !open::<F>(key) {
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
            close::<F>(key);
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
        let len = if avail < FLOW_HEAD_LEN as u32 { avail } else { FLOW_HEAD_LEN as u32 };
        let mut head = FlowHead { len, ..FlowHead::default() };
        if load_small(p, m.payload_off, &mut head.bytes, head.len) != 0 {
            bump(counter::LOAD_FAILED);
            return;
        }
        // Only bytes at the start of the stream decide: a segment that overtook the first one
        // (its SYN told where the stream starts) is captured under the budget and the
        // decision waits for the first segment.
        let base = if d == 0 { v.base[0] } else { v.base[1] };
        let at_start = df & dir_flags::BASE == 0 || m.seq == base;
        if v.kind == flow_kind::NEW && at_start {
            v.kind = config().classify_head(&head, [m.src_port, m.dst_port]);
            if v.kind == flow_kind::IGNORED {
                bump(counter::NOT_CANDIDATE);
                if rst {
                    close::<F>(key);
                }
                return;
            }
        }
        if df & dir_flags::BUDGET == 0 {
            let client = if v.syn_dir != NO_DIR { usize::from(v.syn_dir) == d } else { head.looks_like_client_hello() };
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
    let (budget, cap) = limits(df);
    let base = if d == 0 { v.base[0] } else { v.base[1] };
    let rel = m.seq.wrapping_sub(base);
    if rel >= grant(budget, cap, walked(v, d, df)) {
        bump(counter::BUDGET_EXHAUSTED);
        if closing {
            lifecycle(p, m, o);
        }
        finish::<F>(v, d, df, rst, key);
        return;
    }
    let mut stop = u32::MAX;
    if v.kind == flow_kind::TLS && df & dir_flags::NO_WALK == 0 {
        *w = WalkIo { d: d as u32, df, rel, avail, cap, stop };
        walk_records(p, m, v, w);
        // Read back from map memory (see `WalkIo`), not from what the compiler remembers.
        // SAFETY: plain reads of fields of a valid, exclusively borrowed struct.
        (df, stop) = unsafe { (core::ptr::read_volatile(&w.df), core::ptr::read_volatile(&w.stop)) };
    }
    o.carry = Carry {
        avail,
        room: grant(budget, cap, walked(v, d, df)).saturating_sub(rel),
        clear: stop.saturating_sub(rel),
        done: df & dir_flags::DONE,
    };
    // Flow state first, payload last: nothing of this function is live after the call, so the
    // verifier meets the payload loop in one state instead of once per path that led here.
    finish::<F>(v, d, df, rst, key);
    send_payload(p, m, o);
}

/// Is this data segment (payload, no SYN, FIN or RST) of a flow whose decision it cannot
/// change: the flow ignored, its direction done, or the segment past the direction's grant?
/// Then it is counted as the full path would count it, and nothing is written: the full path
/// would store back the same flags. A SYN never gets here, so a new connection on a reused
/// 4-tuple still resets the entry.
#[inline(always)]
fn decided(v: &FlowValue, d: usize, seq: u32) -> bool {
    if v.kind == flow_kind::IGNORED {
        bump(counter::FLOW_IGNORED);
        return true;
    }
    let df = if d == 0 { v.dir_flags[0] } else { v.dir_flags[1] };
    if df & dir_flags::DONE != 0 {
        bump(counter::DIR_DONE);
        return true;
    }
    // Past the head: the flow and the direction's budget are decided and its start is known
    // (else the full path would decide or set them first).
    let known = dir_flags::BUDGET | dir_flags::BASE;
    if v.kind == flow_kind::NEW || df & known != known {
        return false;
    }
    let (budget, cap) = limits(df);
    let base = if d == 0 { v.base[0] } else { v.base[1] };
    if seq.wrapping_sub(base) >= grant(budget, cap, walked(v, d, df)) {
        bump(counter::BUDGET_EXHAUSTED);
        return true;
    }
    false
}

/// The direction's budget and cap (never below the budget), by who it is.
#[inline(always)]
fn limits(df: u8) -> (u32, u32) {
    let (budget, cap) = if df & dir_flags::CLIENT != 0 {
        (config().client_budget, config().client_cap)
    } else {
        (config().server_budget, config().server_cap)
    };
    (budget, if cap > budget { cap } else { budget })
}

/// How far the direction's clear TLS records have been followed (stream offset of the next
/// header), when they are: the grant grows with a handshake larger than the budget, up to
/// the cap.
#[inline(always)]
fn walked(v: &FlowValue, d: usize, df: u8) -> Option<u32> {
    let (next, base) = if d == 0 { (v.next_record[0], v.base[0]) } else { (v.next_record[1], v.base[1]) };
    (df & dir_flags::RECORD != 0).then(|| next.wrapping_sub(base))
}

/// Copy up to 8 bytes at `off` into `out` (`n` in 1..=8).
#[inline(always)]
fn load_small<P: Packet>(p: &P, off: u32, out: &mut [u8; FLOW_HEAD_LEN], n: u32) -> i64 {
    let n = black_box(n);
    if n == 0 || n > FLOW_HEAD_LEN as u32 {
        return -1;
    }
    p.load(off, out.as_mut_ptr(), n)
}
