//! Kernel capture, TLS record walk: follow the record headers of a TLS direction across its
//! segments and mark the direction done at the first application-data record.
//! Must never follow more than `MAX_RECORD_WALK` headers per segment, read past the bytes the
//! segment carries, or let ciphertext through (only the application-data header goes out).
use monitor_common::{counter, dir_flags, tls_content, FlowValue};

use super::emit::bump;
use crate::parse::Meta;
use crate::Packet;

/// TLS record headers followed within one segment.
const MAX_RECORD_WALK: usize = 8;

/// Follow the TLS record headers that start inside this segment's first `carry` bytes; mark
/// the direction done at an application-data record (nothing after it is in clear) and cut
/// `carry` right after that record's header. Returns the direction's flags.
#[inline(always)]
pub(super) fn walk_records<P: Packet>(p: &P, m: &Meta, v: &mut FlowValue, d: usize, mut df: u8, carry: &mut u32) -> u8 {
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
        if h[1] != 3 || ct < tls_content::CHANGE_CIPHER_SPEC || ct > tls_content::HEARTBEAT {
            // Not a TLS record header (SSLv2, garbage): only the budget applies from here.
            return df | dir_flags::NO_WALK;
        }
        // Application data: encrypted from here on. Not ChangeCipherSpec: TLS 1.3 sends a
        // middlebox-compatibility CCS before a second ClientHello and after a
        // HelloRetryRequest, with cleartext handshake records still to come.
        if ct == tls_content::APPLICATION_DATA {
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
