//! Kernel capture, TLS record walk: follow the record headers of a TLS direction across its
//! segments with the shared walk (monitor-common `walk`), so the direction's grant grows with
//! a handshake larger than its budget, and mark the direction done at the first
//! application-data record.
//! Must never read more than the walk asks, nor let ciphertext through (only the
//! application-data header goes out).
use core::hint::black_box;

use monitor_common::walk::{walk_segment, Walk, WalkEnd};
use monitor_common::{counter, dir_flags, FlowValue};

use super::emit::bump;
use crate::parse::Meta;
use crate::Packet;

/// Inputs and outputs of one walk, kept in the per-CPU scratch map. The walk is a BPF
/// subprogram that hands its results back through this map memory, whose scalars the verifier
/// does not track: every way the walk ends then joins one state for the rest of the program,
/// instead of each multiplying the paths through the emit loop (which went past the
/// verifier's million-instruction budget).
pub struct WalkIo {
    /// Direction (0 or 1), its flags before (in) and after (out) the walk.
    pub d: u32,
    pub df: u8,
    /// Stream offset and payload bytes of the segment; the direction's cap.
    pub rel: u32,
    pub avail: u32,
    pub cap: u32,
    /// Out: the stream offset where capture ends (just after an application-data header), or
    /// `u32::MAX`.
    pub stop: u32,
}

/// Walk the record headers that begin in this segment (`io.avail` payload bytes at stream
/// offset `io.rel`, at most `io.cap` stream bytes in all). Sets the direction's flags
/// (`NO_WALK` when the records cannot be followed, `DONE` at application data) and, when
/// done, the offset where capture ends.
#[inline(never)]
pub(super) fn walk_records<P: Packet>(p: &P, m: &Meta, v: &mut FlowValue, io: &mut WalkIo) {
    let d = io.d;
    let mut df = io.df;
    let base = if d == 0 { v.base[0] } else { v.base[1] };
    let mut w = Walk::default();
    if df & dir_flags::RECORD != 0 {
        let (next, part, part_len) = if d == 0 {
            (v.next_record[0], v.part[0], v.part_len[0])
        } else {
            (v.next_record[1], v.part[1], v.part_len[1])
        };
        w = Walk { next: next.wrapping_sub(base), part, part_len };
    }
    df |= dir_flags::RECORD;
    let mut load = |off: u32, dst: &mut [u8; 8], n: u32| {
        // Bounds the verifier can see: 1..=5 bytes into the 8-byte buffer.
        let n = black_box(n);
        if n == 0 || n > 5 {
            return false;
        }
        if p.load(m.payload_off + off, dst.as_mut_ptr(), n) != 0 {
            bump(counter::LOAD_FAILED);
            return false;
        }
        true
    };
    io.stop = u32::MAX;
    match walk_segment(&mut w, io.rel, io.avail, io.cap, &mut load) {
        WalkEnd::More => {}
        WalkEnd::NotTls => df |= dir_flags::NO_WALK,
        WalkEnd::Encrypted { header } => {
            df |= dir_flags::DONE;
            io.stop = header.saturating_add(5);
        }
    }
    io.df = df;
    let next = base.wrapping_add(w.next);
    if d == 0 {
        v.next_record[0] = next;
        v.part[0] = w.part;
        v.part_len[0] = w.part_len;
    } else {
        v.next_record[1] = next;
        v.part[1] = w.part;
        v.part_len[1] = w.part_len;
    }
}
