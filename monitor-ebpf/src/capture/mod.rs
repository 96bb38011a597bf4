//! Kernel flow-head capture, entry stage: parse the frame, then hand a UDP packet to [`quic`]
//! and a TCP packet to [`tcp`] with the flow map of its IP version. Per flow, the first payload
//! decides whether it is worth watching (TLS, SSLv2, a plaintext signature or port); each
//! direction's first `budget` stream bytes then go to the ring buffer until that direction
//! turns encrypted; SYN, FIN and RST go out as lifecycle records; UDP/443 QUIC Initials are
//! forwarded whole.
//! Must never copy more than the budget, loop without a constant bound, or fail closed: every
//! skip, cut and loss is a counter.
mod emit;
mod flows;
mod quic;
mod records;
mod tcp;

use monitor_common::{counter, FlowKey, FlowKey4, KernelConfig};

use crate::parse::{locate, Meta, Skip, IPPROTO_UDP};
use crate::{Packet, SCRATCH, TLSMON_CONFIG};
pub(crate) use emit::bump;
use emit::{add2, Out};
use flows::{V4, V6};

/// Per-packet working state, kept in a per-CPU map: the 512-byte stack cannot hold it.
pub struct Scratch {
    pub meta: Meta,
    pub key: FlowKey,
    pub key4: FlowKey4,
    pub out: Out,
    pub walk: records::WalkIo,
}

/// The load-time settings as the loader wrote them into the object.
///
/// Not a plain `&TLSMON_CONFIG`: the static is immutable to Rust, so LLVM may fold every read
/// through such a reference to the compiled-in `default_config()` values, and the agent's
/// settings (written into the `.rodata` map at load time) would be silently ignored. Reading
/// the static's address back with a volatile load hides which object it points to, so reads
/// through the returned reference are real loads from the map value.
#[inline(always)]
fn config() -> &'static KernelConfig {
    let p: *const KernelConfig = &raw const TLSMON_CONFIG;
    // SAFETY: `p` is the address of a static, valid and never written by the program for the
    // whole run; the volatile read of a local returns that same address.
    unsafe { &*core::ptr::read_volatile(&p) }
}

/// Entry point of both hooks.
#[inline(always)]
pub fn packet<P: Packet>(p: &P) {
    let frame_len = p.len();
    add2(counter::PACKETS, 1, Some((counter::PACKET_BYTES, u64::from(frame_len))));
    let h = match locate(p.data(), p.data_end()) {
        Ok(h) => h,
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
    let avail = h.avail(frame_len);
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's scratch slot from a successful lookup; programs do not nest on a CPU.
    let s = unsafe { &mut *scratch };
    if h.protocol == IPPROTO_UDP {
        quic::udp(p, &h, avail, &mut s.meta, &mut s.out);
    } else if h.ip_version == 4 {
        tcp::tcp::<P, V4>(p, &h, avail, &mut s.key4, &mut s.meta, &mut s.out, &mut s.walk);
    } else {
        tcp::tcp::<P, V6>(p, &h, avail, &mut s.key, &mut s.meta, &mut s.out, &mut s.walk);
    }
}
