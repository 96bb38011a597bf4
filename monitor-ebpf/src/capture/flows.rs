//! Kernel capture, flow map stage: the canonical key of a packet's flow (both directions share
//! one entry), lookup, insertion and removal in the IPv4 or IPv6 LRU map (counted: entries
//! opened and closed, from which the agent derives the LRU's silent evictions), and the
//! per-direction fields of a [`FlowValue`].
//! Must never decide what a flow is or copy payload, nor count on the per-packet path: it only
//! finds and stores flow state, and counts on insert and remove.
use aya_ebpf::bindings::BPF_NOEXIST;
use monitor_common::{counter, flow_kind, FlowKey, FlowKey4, FlowValue, NO_DIR};

use super::emit::bump;
use crate::parse::Meta;
use crate::{FLOWS, FLOWS4};

/// `-EEXIST` from a BPF_NOEXIST insert: the key is in the map already.
const EEXIST: i32 = 17;

/// One of the two flow maps: the key type and its operations.
pub(super) trait Flows {
    type Key;
    /// Fill `key` with the canonical key of the packet's flow; returns the packet's direction
    /// in it (0: a → b).
    fn key(m: &Meta, key: &mut Self::Key) -> usize;
    fn get(key: &Self::Key) -> Option<*mut FlowValue>;
    /// Insert a new flow unless the key is present (BPF_NOEXIST); the helper's error code.
    fn insert(key: &Self::Key) -> Result<(), i32>;
    /// Delete the key; true when this call removed an entry.
    fn remove(key: &Self::Key) -> bool;
}

pub(super) struct V4;
pub(super) struct V6;

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
    fn insert(key: &FlowKey4) -> Result<(), i32> {
        FLOWS4.insert(key, &new_flow(), u64::from(BPF_NOEXIST))
    }
    #[inline(always)]
    fn remove(key: &FlowKey4) -> bool {
        FLOWS4.remove(key).is_ok()
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
    fn insert(key: &FlowKey) -> Result<(), i32> {
        FLOWS.insert(key, &new_flow(), u64::from(BPF_NOEXIST))
    }
    #[inline(always)]
    fn remove(key: &FlowKey) -> bool {
        FLOWS.remove(key).is_ok()
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

/// Open the packet's flow (only a SYN or payload gets here, after a lookup missed). False when
/// the map refused the entry (`FLOW_MAP_FULL`).
///
/// Counting evictions: the LRU map makes room for an insert by silently evicting entries (a
/// batch at a time, see the agent's flow census), and no helper reports which. Every entry
/// this counts as `FLOWS_OPENED` therefore ends in exactly one of three ways: still in the map,
/// removed by [`close`] (`FLOWS_CLOSED`), or evicted; the agent counts the first from
/// userspace and derives the last. BPF_NOEXIST keeps that exact when two CPUs open the same
/// flow at once: the second insert fails with -EEXIST (and the flow, not counted twice, is
/// found by the caller's next lookup) instead of replacing the first CPU's entry.
#[inline(always)]
pub(super) fn open<F: Flows>(key: &F::Key) -> bool {
    match F::insert(key) {
        Ok(()) => {
            bump(counter::FLOWS_OPENED);
            true
        }
        Err(e) if e == -EEXIST => true,
        Err(_) => {
            bump(counter::FLOW_MAP_FULL);
            false
        }
    }
}

/// Remove the flow (a reset): counted as `FLOWS_CLOSED` only when the entry was still there,
/// so a flow evicted between the lookup and here is not counted twice.
#[inline(always)]
pub(super) fn close<F: Flows>(key: &F::Key) {
    if F::remove(key) {
        bump(counter::FLOWS_CLOSED);
    }
}

pub(super) fn new_flow() -> FlowValue {
    FlowValue { kind: flow_kind::NEW, syn_dir: NO_DIR, ..FlowValue::default() }
}

#[inline(always)]
pub(super) fn set_base(v: &mut FlowValue, d: usize, seq: u32) {
    if d == 0 {
        v.base[0] = seq;
    } else {
        v.base[1] = seq;
    }
}

/// Store the direction's flags back; a reset flow leaves the map.
#[inline(always)]
pub(super) fn finish<F: Flows>(v: &mut FlowValue, d: usize, df: u8, rst: bool, key: &F::Key) {
    if d == 0 {
        v.dir_flags[0] = df;
    } else {
        v.dir_flags[1] = df;
    }
    if rst {
        close::<F>(key);
    }
}
