//! TLS record walk, shared stage: follow the record headers of one TLS direction segment by
//! segment, so a handshake of any size is captured whole (a 64 KiB ClientHello, a 340 KB
//! certificate chain and the ServerKeyExchange after it) while the flow head of ordinary
//! traffic stays at its budget, and stop at the first encrypted record. The kernel runs it
//! inlined on each TCP segment of a TLS flow, the agent's replay model on each segment it is
//! given, in arrival order: the same code decides what both keep.
//! Must never read more than 5 bytes per header, follow more than [`MAX_RECORD_WALK`] headers
//! per segment, read a header past the cap, or loop without a constant bound (the verifier).
use crate::classify::tls_content;

/// TLS record headers followed within one segment.
pub const MAX_RECORD_WALK: usize = 8;

/// Where the walk of one direction stands. Offsets count stream bytes from byte 0 of the
/// direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// Offset of the next record header to read.
    pub next: u32,
    /// The first bytes of a header cut by the end of its segment (`part_len` of them, 1..=4);
    /// the segment that continues the stream right there completes it.
    pub part: [u8; 4],
    pub part_len: u8,
}

/// How a segment's walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// The walk goes on with a later segment (or stopped at the cap, or lost its place).
    More,
    /// A header that is no TLS record header (SSLv2, garbage): the walk stops for good and
    /// only the budget applies.
    NotTls,
    /// An application-data record starts at `header` (an offset): encrypted from there on.
    /// The direction keeps the 5 header bytes (they tell encryption began), nothing after.
    Encrypted { header: u32 },
}

/// Stream bytes a direction captures: its `budget`, or more while the walk follows clear
/// records: up to and including the header of the next record (`next + 5`), at most `cap`.
/// `walked`: the walk's `next`, when the direction's records are followed.
#[inline(always)]
pub fn grant(budget: u32, cap: u32, walked: Option<u32>) -> u32 {
    let followed = match walked {
        Some(next) => {
            let end = next.saturating_add(5);
            if end < cap {
                end
            } else {
                cap
            }
        }
        None => 0,
    };
    if followed > budget {
        followed
    } else {
        budget
    }
}

/// Walk the record headers that begin in one segment: `seg` is the offset of its first byte,
/// `avail` its payload bytes; `load(off, dst, n)` copies `n` (1..=5) bytes at offset `off` of
/// the segment into `dst` (false when it cannot). Headers at or past `cap - 5` are not read.
#[inline(always)]
pub fn walk_segment<L>(w: &mut Walk, seg: u32, avail: u32, cap: u32, load: &mut L) -> WalkEnd
where
    L: FnMut(u32, &mut [u8; 8], u32) -> bool,
{
    let seg_end = seg.saturating_add(avail);
    let mut next = w.next;
    if next < seg {
        // A header cut by the end of the segment before: complete only if that segment ended
        // exactly where this one starts, after the kept bytes. Its rest is read as a fixed 4
        // bytes (fewer paths for the verifier than a byte loop), so this segment must hold 4.
        let k = u32::from(w.part_len);
        if k == 0 || k > 4 || seg - next != k || avail < 4 || next.saturating_add(5) > cap {
            return WalkEnd::More;
        }
        let mut t = [0u8; 8];
        if !load(0, &mut t, 4) {
            return WalkEnd::More;
        }
        let p = w.part;
        let h = match k {
            1 => [p[0], t[0], t[1], t[2], t[3]],
            2 => [p[0], p[1], t[0], t[1], t[2]],
            3 => [p[0], p[1], p[2], t[0], t[1]],
            _ => [p[0], p[1], p[2], p[3], t[0]],
        };
        w.part_len = 0;
        if let Some(end) = step(h, &mut next) {
            w.next = next;
            return end;
        }
    }
    let mut end = WalkEnd::More;
    let mut i = 0;
    while i < MAX_RECORD_WALK {
        if next.saturating_add(5) > cap || next >= seg_end || next < seg {
            break;
        }
        let off = next - seg;
        let left = avail - off;
        let mut t = [0u8; 8];
        if left < 5 {
            // Cut by the end of the segment: keep what is here for the next one.
            if load(off, &mut t, left) {
                w.part = [t[0], t[1], t[2], t[3]];
                w.part_len = left as u8;
            }
            break;
        }
        if !load(off, &mut t, 5) {
            break;
        }
        w.part_len = 0;
        if let Some(e) = step([t[0], t[1], t[2], t[3], t[4]], &mut next) {
            end = e;
            break;
        }
        i += 1;
    }
    w.next = next;
    end
}

/// [`walk_segment`] over a segment held in memory (the agent's side): copies from `seg`.
pub fn walk_slice(w: &mut Walk, seg_off: u32, seg: &[u8], cap: u32) -> WalkEnd {
    let mut load = |at: u32, dst: &mut [u8; 8], n: u32| {
        let (at, n) = (at as usize, n as usize);
        match seg.get(at..at.saturating_add(n)) {
            Some(b) if n <= 5 => {
                dst[..n].copy_from_slice(b);
                true
            }
            _ => false,
        }
    };
    let avail = u32::try_from(seg.len()).unwrap_or(u32::MAX);
    walk_segment(w, seg_off, avail, cap, &mut load)
}

/// One record header at `next`: the end of the walk (not TLS, or encrypted), or on to the
/// next header.
#[inline(always)]
fn step(h: [u8; 5], next: &mut u32) -> Option<WalkEnd> {
    let ct = h[0];
    if h[1] != 3 || !(tls_content::CHANGE_CIPHER_SPEC..=tls_content::HEARTBEAT).contains(&ct) {
        return Some(WalkEnd::NotTls);
    }
    // Application data: encrypted from here on. Not ChangeCipherSpec: TLS 1.3 sends a
    // middlebox-compatibility CCS before a second ClientHello and after a
    // HelloRetryRequest, with cleartext handshake records still to come.
    if ct == tls_content::APPLICATION_DATA {
        return Some(WalkEnd::Encrypted { header: *next });
    }
    *next = next.saturating_add(5 + u32::from(u16::from_be_bytes([h[3], h[4]])));
    None
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{vec, vec::Vec};

    use super::{grant, walk_segment, walk_slice, Walk, WalkEnd, MAX_RECORD_WALK};

    /// Walk `stream` cut at `cuts` (segment boundaries), returning the end of each walk.
    fn walk(stream: &[u8], cuts: &[usize], cap: u32) -> (Walk, Vec<WalkEnd>) {
        let mut w = Walk::default();
        let mut ends = Vec::new();
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(stream.len());
        for pair in bounds.windows(2) {
            ends.push(walk_slice(&mut w, pair[0] as u32, &stream[pair[0]..pair[1]], cap));
        }
        (w, ends)
    }

    fn record(ct: u8, len: usize) -> Vec<u8> {
        let mut r = vec![ct, 3, 3, (len >> 8) as u8, len as u8];
        r.resize(5 + len, 0xab);
        r
    }

    #[test]
    fn follows_records_split_anywhere() {
        // A 40 KB flight in three handshake records, then a CCS and application data.
        let mut s = record(22, 16_384);
        s.extend(record(22, 16_384));
        s.extend(record(22, 7_000));
        s.extend(record(20, 1));
        let app = s.len() as u32;
        s.extend(record(23, 30));
        for cut in 1..s.len() {
            let (w, ends) = walk(&s, &[cut], u32::MAX);
            let want = WalkEnd::Encrypted { header: app };
            assert_eq!(ends.iter().filter(|e| **e == want).count(), 1, "cut at {cut}: {ends:?}");
            assert_eq!(w.next, app, "cut at {cut}");
        }
        // Cut everywhere into 4-byte segments (the least that completes a cut header): every
        // header straddles at some point.
        let cuts: Vec<usize> = (4..s.len()).step_by(4).collect();
        let (_, ends) = walk(&s, &cuts, u32::MAX);
        assert_eq!(ends.last(), Some(&WalkEnd::More));
        assert!(ends.contains(&WalkEnd::Encrypted { header: app }));
    }

    #[test]
    fn stops_at_garbage_and_the_cap() {
        let mut s = record(22, 100);
        s.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(walk(&s, &[], u32::MAX).1, [WalkEnd::NotTls]);
        // A header past the cap is not read; the grant ends at the cap.
        let mut s = record(22, 100);
        s.extend(record(22, 100));
        let (w, ends) = walk(&s, &[], 108);
        assert_eq!((w.next, ends[0]), (105, WalkEnd::More));
        assert_eq!(grant(64, 108, Some(w.next)), 108);
        assert_eq!(grant(64, 1 << 20, Some(w.next)), 110);
        assert_eq!(grant(4096, 1 << 20, Some(w.next)), 4096);
        assert_eq!(grant(4096, 1 << 20, None), 4096);
    }

    #[test]
    fn loses_its_place_on_a_gap_and_bounds_headers_per_segment() {
        let mut s = record(22, 10);
        s.extend(record(22, 10));
        // The second segment starts 3 bytes after the header that straddled the first's end,
        // but the first kept only 2: a gap; the walk waits where it was.
        let mut w = Walk::default();
        let mut load = |_: u32, _: &mut [u8; 8], _: u32| true;
        w.next = 15;
        w.part_len = 2;
        assert_eq!(walk_segment(&mut w, 18, 10, u32::MAX, &mut load), WalkEnd::More);
        assert_eq!(w.next, 15);
        // Many empty records in one segment: only MAX_RECORD_WALK headers are followed.
        let s: Vec<u8> = (0..40).flat_map(|_| record(22, 0)).collect();
        let (w, _) = walk(&s, &[], u32::MAX);
        assert_eq!(w.next as usize, 5 * MAX_RECORD_WALK);
    }
}
