//! Kernel capture, flow map stage: the canonical key of a packet's flow (both directions share
//! one entry), lookup, insertion and removal in the IPv4 or IPv6 LRU map, and the per-direction
//! fields of a [`FlowValue`].
//! Must never decide what a flow is or copy payload: it only finds and stores flow state.
use monitor_common::{flow_kind, FlowKey, FlowKey4, FlowValue, NO_DIR};

use crate::parse::Meta;
use crate::{FLOWS, FLOWS4};

/// One of the two flow maps: the key type and its operations.
pub(super) trait Flows {
    type Key;
    /// Fill `key` with the canonical key of the packet's flow; returns the packet's direction
    /// in it (0: a → b).
    fn key(m: &Meta, key: &mut Self::Key) -> usize;
    fn get(key: &Self::Key) -> Option<*mut FlowValue>;
    fn insert(key: &Self::Key) -> bool;
    fn remove(key: &Self::Key);
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
        F::remove(key);
    }
}
