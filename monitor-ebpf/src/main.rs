//! Kernel stage: TC classifier (ingress/egress) and opt-in XDP program that parse
//! Ethernet → IPv4/IPv6 → TCP/UDP headers and count what they see in per-CPU counters.
//! Must never drop, redirect or modify a packet: every path returns TC_ACT_PIPE / XDP_PASS.
//!
//! Flow-head capture into the ring buffer is not done yet; the ring buffer is declared so the
//! agent's map layout is final.
#![no_std]
#![no_main]

mod parse;

use aya_ebpf::{
    bindings::{xdp_action::XDP_PASS, TC_ACT_PIPE},
    macros::{classifier, map, xdp},
    maps::{PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use monitor_common::{counter, COUNTERS_MAP, RING_MAP};

use crate::parse::{parse_frame, Outcome};

/// Ring buffer for flow-head records (`monitor_common::Record`); 256 KiB, a power-of-two
/// multiple of the page size as the kernel requires.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

/// Per-CPU counters indexed by `monitor_common::counter::*`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

// The `#[map]` macro names a map after its static; keep those names tied to the shared
// constants the agent looks the maps up by.
const _: () = assert!(str_eq(RING_MAP, "EVENTS"));
const _: () = assert!(str_eq(COUNTERS_MAP, "COUNTERS"));

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Bytes the TC program wants in the skb's linear area before reading headers directly:
/// Ethernet + two VLAN tags + IPv6 + a few extension headers + TCP with full options.
const TC_HEADER_PULL: u32 = 256;

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
    account(parse_frame(ctx.data(), ctx.data_end()));
    TC_ACT_PIPE
}

/// XDP program (opt-in, ingress only).
#[xdp]
pub fn tlsmon_xdp(ctx: XdpContext) -> u32 {
    account(parse_frame(ctx.data(), ctx.data_end()));
    XDP_PASS
}

/// Counts the packet and the reason it was skipped, if any.
#[inline(always)]
fn account(outcome: Outcome) {
    bump(counter::PACKETS);
    let reason = match outcome {
        Outcome::NotIp => counter::NOT_IP,
        Outcome::NotTcpUdp => counter::NOT_TCP_UDP,
        Outcome::Fragment => counter::IP_FRAGMENT,
        Outcome::Truncated => counter::TRUNCATED_HEADER,
        Outcome::Tcp | Outcome::Udp => return,
    };
    bump(reason);
}

#[inline(always)]
fn bump(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful map lookup of this CPU's slot, valid for
        // the duration of the program; per-CPU slots are not shared with other CPUs.
        unsafe { *slot += 1 };
    }
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
