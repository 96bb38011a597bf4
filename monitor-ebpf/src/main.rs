//! Kernel stage: TC classifier (ingress and egress, the default) and opt-in XDP program that
//! copy the heads of TCP flows (and QUIC Initials) into the ring buffer and count everything
//! they skip, cut or lose in per-CPU counters.
//! Must never drop, redirect or modify a packet: every path returns TC_ACT_UNSPEC / XDP_PASS.
#![no_std]
#![no_main]

mod capture;
mod owner;
mod parse;

use aya_ebpf::{
    bindings::xdp_action::XDP_PASS,
    helpers::generated::{bpf_get_socket_cookie, bpf_skb_cgroup_id, bpf_skb_load_bytes, bpf_xdp_load_bytes},
    macros::{classifier, map, xdp},
    maps::{LruHashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use monitor_common::{
    dir, Counters, FlowKey, FlowKey4, FlowValue, KernelConfig, Record, COUNTERS_MAP, FLOWS4_MAP, FLOWS_MAP, FLOWS_MAX,
    RING_MAP,
};

/// Ring buffer for flow-head records (`monitor_common::RecordHeader` + payload); 4 MiB, a
/// power-of-two multiple of the page size as the kernel requires (about 1900 full records).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 * 1024 * 1024, 0);

/// Per-CPU counters: one `monitor_common::Counters` per CPU, indexed by `counter::*`.
#[map]
static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

/// IPv6 flows seen, both directions under one canonical key; least recently used go first.
#[map]
static FLOWS: LruHashMap<FlowKey, FlowValue> = LruHashMap::with_max_entries(FLOWS_MAX, 0);

/// IPv4 flows seen (a smaller key: cheaper to hash on every packet).
#[map]
static FLOWS4: LruHashMap<FlowKey4, FlowValue> = LruHashMap::with_max_entries(FLOWS_MAX, 0);

/// Per-CPU staging area for one record (too large for the 512-byte stack).
#[map]
static STAGE: PerCpuArray<Record> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU working state of one packet (`capture::Scratch`).
#[map]
static SCRATCH: PerCpuArray<capture::Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Load-time settings, overridden by the agent (`monitor_common::CONFIG_GLOBAL`).
#[unsafe(no_mangle)]
static TLSMON_CONFIG: KernelConfig = KernelConfig::default_config();

// The `#[map]` macro names a map after its static; keep those names tied to the shared
// constants the agent looks the maps up by.
const _: () = assert!(monitor_common::str_eq(RING_MAP, "EVENTS"));
const _: () = assert!(monitor_common::str_eq(COUNTERS_MAP, "COUNTERS"));
const _: () = assert!(monitor_common::str_eq(FLOWS_MAP, "FLOWS"));
const _: () = assert!(monitor_common::str_eq(FLOWS4_MAP, "FLOWS4"));
const _: () = assert!(monitor_common::str_eq(monitor_common::CONFIG_GLOBAL, "TLSMON_CONFIG"));

/// What the capture code needs from a hook: header bytes by direct access, payload by copy.
pub trait Packet {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    /// Length of the whole packet (an skb may be longer than its linear part).
    fn len(&self) -> u32;
    /// [`dir::INGRESS`] or [`dir::EGRESS`].
    fn direction(&self) -> u8;
    /// Copy `len` bytes (1..=2048, checked by the caller) at `off` into `dst`; 0 on success.
    fn load(&self, off: u32, dst: *mut u8, len: u32) -> i64;
    /// (cookie, cgroup v2 id) of the local socket that sent the packet, (0, 0) when none did or
    /// the hook cannot tell.
    fn socket(&self) -> (u64, u64);
}

/// What the TC programs return: TC_ACT_UNSPEC, which is TCX_NEXT on a TCX link (the next
/// program in the chain runs, then the stack's default: pass) and "continue with the next
/// filter" under classic cls_bpf. TC_ACT_PIPE or TC_ACT_OK would end a TCX chain and starve
/// every program attached after ours.
const TC_NEXT: i32 = -1;

/// Bytes the TC program wants in the skb's linear area before reading headers directly:
/// Ethernet + two VLAN tags + IPv6 + a few extension headers + TCP with full options.
const TC_HEADER_PULL: u32 = 256;

struct Tc<'a>(&'a TcContext);

impl Packet for Tc<'_> {
    #[inline(always)]
    fn data(&self) -> usize {
        self.0.data()
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        self.0.data_end()
    }
    #[inline(always)]
    fn len(&self) -> u32 {
        self.0.len()
    }
    #[inline(always)]
    fn direction(&self) -> u8 {
        // SAFETY: the context pointer is the program's argument, valid for the whole run.
        let (ingress_if, ifindex) = unsafe { ((*self.0.skb.skb).ingress_ifindex, (*self.0.skb.skb).ifindex) };
        if ingress_if == ifindex {
            dir::INGRESS
        } else {
            dir::EGRESS
        }
    }
    #[inline(always)]
    fn load(&self, off: u32, dst: *mut u8, len: u32) -> i64 {
        // SAFETY: `dst` points into a map value (or stack buffer) of at least `len` bytes.
        unsafe { bpf_skb_load_bytes(self.0.skb.skb as *const _, off, dst.cast(), len) }
    }
    /// On egress the skb still belongs to the socket that sent it; on ingress it belongs to none
    /// yet (the stack finds the socket after TC), and a packet forwarded or crossing a network
    /// namespace was orphaned on the way, so both helpers return 0 there.
    #[inline(always)]
    fn socket(&self) -> (u64, u64) {
        if self.direction() != dir::EGRESS {
            return (0, 0);
        }
        let skb = self.0.skb.skb;
        // SAFETY: both helpers take the program's own context and only read `skb->sk`.
        unsafe { (bpf_get_socket_cookie(skb.cast()), bpf_skb_cgroup_id(skb)) }
    }
}

struct Xdp<'a>(&'a XdpContext);

impl Packet for Xdp<'_> {
    #[inline(always)]
    fn data(&self) -> usize {
        self.0.data()
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        self.0.data_end()
    }
    #[inline(always)]
    fn len(&self) -> u32 {
        (self.0.data_end() - self.0.data()) as u32
    }
    #[inline(always)]
    fn direction(&self) -> u8 {
        dir::INGRESS
    }
    #[inline(always)]
    fn load(&self, off: u32, dst: *mut u8, len: u32) -> i64 {
        // SAFETY: `dst` points into a map value (or stack buffer) of at least `len` bytes.
        unsafe { bpf_xdp_load_bytes(self.0.ctx, off, dst.cast(), len) }
    }
    /// XDP runs before any socket is involved.
    #[inline(always)]
    fn socket(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// TC classifier attached to ingress and egress (TCX links).
#[classifier]
pub fn tlsmon_tc(ctx: TcContext) -> i32 {
    // Headers of a non-linear skb may lie outside the linear area; pull them in (bounded by
    // the packet length) so direct reads see them. Failure is not fatal: the parser then counts
    // a truncated header.
    let len = ctx.len();
    let linear = ctx.data_end() - ctx.data();
    if (linear as u64) < u64::from(TC_HEADER_PULL) && u64::from(len) > linear as u64 {
        let want = if len < TC_HEADER_PULL { len } else { TC_HEADER_PULL };
        let _ = ctx.pull_data(want);
    }
    capture::packet(&Tc(&ctx));
    TC_NEXT
}

/// XDP program (opt-in, ingress only).
#[xdp]
pub fn tlsmon_xdp(ctx: XdpContext) -> u32 {
    capture::packet(&Xdp(&ctx));
    XDP_PASS
}

/// Baseline for `cargo xtask bench kernel`: a TC program that does nothing. Never attached.
#[classifier]
pub fn tlsmon_noop_tc(_ctx: TcContext) -> i32 {
    TC_NEXT
}

/// Baseline for `cargo xtask bench kernel`: an XDP program that does nothing. Never attached.
#[xdp]
pub fn tlsmon_noop_xdp(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that could get here.
    loop {}
}

/// Matches the workspace license. Helpers reserved to GPL-compatible programs are therefore
/// unavailable; none of the TC/XDP helpers this crate needs are.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 11] = *b"Apache-2.0\0";
