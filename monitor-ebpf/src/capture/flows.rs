//! Kernel capture, flow map stage: the canonical key of a packet's flow (both directions share
//! one entry), lookup, insertion and removal in the IPv4 or IPv6 LRU map (counted: entries
//! opened and closed, from which the agent derives the LRU's silent evictions), and the
//! per-direction fields of a [`FlowValue`].
//! Must never decide what a flow is or copy payload, nor count on the per-packet path: it only
//! finds and stores flow state, and counts on insert and remove.
use aya_ebpf::bindings::BPF_NOEXIST;
use monitor_common::{counter, flow_kind, FlowKey, FlowKey4, FlowValue, NO_DIR};

use super::emit::bump;
use crate::parse::Headers;
use crate::{FLOWS, FLOWS4};

/// `-EEXIST` from a BPF_NOEXIST insert: the key is in the map already.
const EEXIST: i32 = 17;

/// One of the two flow maps: the key type and its operations.
pub(super) trait Flows {
    type Key;
    /// Fill `key` with the canonical key of the packet's flow (the addresses read from the
    /// packet); returns the packet's direction in it (0: a → b), None only if the packet is no
    /// longer the one `h` describes.
    fn key(data: usize, end: usize, h: &Headers, key: &mut Self::Key) -> Option<usize>;
    fn get(key: &Self::Key) -> Option<*mut FlowValue>;
    /// Insert a new flow unless the key is present (BPF_NOEXIST); the helper's error code.
    fn insert(key: &Self::Key) -> Result<(), i32>;
    /// Delete the key; true when this call removed an entry.
    fn remove(key: &Self::Key) -> bool;
}

pub(super) struct V4;
pub(super) struct V6;

/// Is the sender `a` of the canonical order: smaller address, then smaller port? Any total
/// order on addresses will do: addresses compare as native-endian words, IPv6 as two u64
/// halves, IPv4 as one u32 (the same order as its 16-byte zero-padded form would give).
#[inline(always)]
fn src_first<T: Ord>(src: T, dst: T, h: &Headers) -> bool {
    match src.cmp(&dst) {
        core::cmp::Ordering::Less => true,
        core::cmp::Ordering::Greater => false,
        core::cmp::Ordering::Equal => h.src_port <= h.dst_port,
    }
}

impl Flows for V4 {
    type Key = FlowKey4;
    #[inline(always)]
    fn key(data: usize, end: usize, h: &Headers, key: &mut FlowKey4) -> Option<usize> {
        let (src, dst) = h.addr4(data, end)?;
        if src_first(u32::from_ne_bytes(src), u32::from_ne_bytes(dst), h) {
            *key = FlowKey4 { addr_a: src, addr_b: dst, port_a: h.src_port, port_b: h.dst_port };
            Some(0)
        } else {
            *key = FlowKey4 { addr_a: dst, addr_b: src, port_a: h.dst_port, port_b: h.src_port };
            Some(1)
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
    fn key(data: usize, end: usize, h: &Headers, key: &mut FlowKey) -> Option<usize> {
        if !h.addr16(data, end, &mut key.addr_a, &mut key.addr_b) {
            return None;
        }
        key.protocol = h.protocol;
        key._pad = [0; 3];
        if src_first(halves(&key.addr_a), halves(&key.addr_b), h) {
            key.port_a = h.src_port;
            key.port_b = h.dst_port;
            Some(0)
        } else {
            core::mem::swap(&mut key.addr_a, &mut key.addr_b);
            key.port_a = h.dst_port;
            key.port_b = h.src_port;
            Some(1)
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

/// A 16-byte address as two native-endian u64 halves, compared in that order.
#[inline(always)]
fn halves(x: &[u8; 16]) -> (u64, u64) {
    let w = |i: usize| u64::from_ne_bytes([x[i], x[i + 1], x[i + 2], x[i + 3], x[i + 4], x[i + 5], x[i + 6], x[i + 7]]);
    (w(0), w(8))
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
