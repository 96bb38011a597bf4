//! Flow, head reassembly for one direction: orders TCP segments into the first bytes of the
//! stream (out of order, retransmitted, overlapping, SYN unseen) and hands on each newly
//! contiguous run exactly once. How many bytes is the kernel's rule, run by the same shared
//! code (monitor-common `walk`): the budget, or more while a TLS direction's clear records are
//! followed, up to the cap, and nothing past the first application-data header.
//! Must never hold more than that limit nor more than `MAX_PENDING` segments (and `limit`
//! bytes) out of order; what it refuses is counted.
use monitor_common::walk::{grant, walk_slice, Walk, WalkEnd};

/// Most out-of-order segments held per direction.
pub const MAX_PENDING: usize = 32;

/// Counters of what reassembly saw and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadStats {
    pub retransmitted: u64,
    pub overlaps: u64,
    pub out_of_order: u64,
    pub pending_dropped: u64,
    pub beyond_budget: u64,
}

/// The head of one direction of a TCP stream.
#[derive(Debug)]
pub struct Head {
    /// Sequence number of stream byte 0 (ISN + 1), once known.
    base: Option<u32>,
    /// Contiguous bytes handed on so far.
    delivered: u32,
    /// Stream bytes kept when the records are not followed.
    budget: u32,
    /// Most stream bytes kept while the records are followed (>= `budget`).
    cap: u32,
    /// The TLS record walk, once begun.
    walk: Option<Walk>,
    /// The walk met bytes that are no TLS record header: it stays where it stopped.
    no_walk: bool,
    /// Offset just after the first application-data header: nothing more is kept.
    stop: Option<u32>,
    /// Out-of-order segments: (stream offset, bytes), unsorted, bounded.
    pending: Vec<(u32, Vec<u8>)>,
    pub stats: HeadStats,
}

impl Head {
    /// A head of `budget` bytes whose records are never followed.
    pub fn new(budget: u32) -> Self {
        Head::with_cap(budget, budget)
    }

    /// A head of `budget` bytes that may grow up to `cap` while TLS records are followed.
    pub fn with_cap(budget: u32, cap: u32) -> Self {
        Head {
            base: None,
            delivered: 0,
            budget,
            cap: cap.max(budget),
            walk: None,
            no_walk: false,
            stop: None,
            pending: Vec::new(),
            stats: HeadStats::default(),
        }
    }

    /// Stream bytes this direction keeps, as the kernel decides it ([`grant`]).
    fn limit(&self) -> u32 {
        let g = grant(self.budget, self.cap, self.walk.map(|w| w.next));
        self.stop.map_or(g, |s| s.min(g))
    }

    /// Does a segment starting at `seq` open the stream (the kernel's test before it lets a
    /// flow's first payload decide what the flow is)?
    pub fn at_start(&self, seq: u32) -> bool {
        self.base.is_none_or(|b| b == seq)
    }

    /// A SYN (or SYN-ACK) fixes byte 0 of the stream.
    pub fn syn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// The budget is used up: no byte of this direction will be handed on any more.
    pub fn exhausted(&self) -> bool {
        self.delivered >= self.limit()
    }

    pub fn delivered(&self) -> u32 {
        self.delivered
    }

    /// Bytes held out of order (the per-direction bound).
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().map(|(_, d)| d.len()).sum()
    }

    /// Heap bytes this head holds (for the pipeline's memory budget): the out-of-order
    /// segments and their list, as allocated.
    pub fn held(&self) -> usize {
        self.pending.capacity() * std::mem::size_of::<(u32, Vec<u8>)>()
            + self.pending.iter().map(|(_, d)| d.capacity()).sum::<usize>()
    }

    /// Add a segment; `out` gets each newly contiguous run in stream order. `records`: the
    /// flow is TLS, so its record headers are followed (segment by segment, as they arrive,
    /// as the kernel does).
    pub fn insert(&mut self, seq: u32, data: &[u8], records: bool, out: &mut impl FnMut(&[u8])) {
        if data.is_empty() {
            return;
        }
        if self.stop.is_some() || self.exhausted() {
            self.stats.beyond_budget += 1;
            return;
        }
        let base = *self.base.get_or_insert(seq);
        // Offset relative to byte 0; negative means (partly) before the stream start.
        let rel = seq.wrapping_sub(base) as i32 as i64;
        let (mut off, mut data) = (rel, data);
        if off < 0 {
            let skip = (-off) as usize;
            if skip >= data.len() {
                self.stats.retransmitted += 1;
                return;
            }
            data = &data[skip..];
            off = 0;
        }
        if off >= self.limit() as i64 {
            self.stats.beyond_budget += 1;
            return;
        }
        let off = off as u32;
        if records && !self.no_walk {
            self.walk_records(off, data);
        }
        let room = self.limit().saturating_sub(off) as usize;
        let data = &data[..data.len().min(room)];
        if data.is_empty() {
            return;
        }
        if off > self.delivered {
            self.hold(off, data);
            return;
        }
        self.deliver(off, data, out);
        self.drain_pending(out);
    }

    /// The kernel's record walk over one segment at stream offset `off`.
    fn walk_records(&mut self, off: u32, data: &[u8]) {
        let w = self.walk.get_or_insert_with(Walk::default);
        match walk_slice(w, off, data, self.cap) {
            WalkEnd::More => {}
            WalkEnd::NotTls => self.no_walk = true,
            WalkEnd::Encrypted { header } => self.stop = Some(header.saturating_add(5)),
        }
    }

    fn deliver(&mut self, off: u32, data: &[u8], out: &mut impl FnMut(&[u8])) {
        let end = off + data.len() as u32;
        if end <= self.delivered {
            self.stats.retransmitted += 1;
            return;
        }
        if off < self.delivered {
            self.stats.overlaps += 1;
        }
        // First data wins: only the part beyond what was already handed on is new.
        let new = &data[(self.delivered - off) as usize..];
        self.delivered = end;
        out(new);
    }

    fn hold(&mut self, off: u32, data: &[u8]) {
        self.stats.out_of_order += 1;
        if self.pending.iter().any(|(o, d)| *o == off && d.len() >= data.len()) {
            self.stats.retransmitted += 1;
            return;
        }
        if self.pending.len() >= MAX_PENDING || self.pending_bytes() + data.len() > self.limit() as usize {
            self.stats.pending_dropped += 1;
            return;
        }
        self.pending.push((off, data.to_vec()));
    }

    fn drain_pending(&mut self, out: &mut impl FnMut(&[u8])) {
        while !self.pending.is_empty() {
            let Some(i) = self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, (o, _))| *o <= self.delivered)
                .min_by_key(|(_, (o, _))| *o)
                .map(|(i, _)| i)
            else {
                return;
            };
            let (off, data) = self.pending.swap_remove(i);
            self.deliver(off, &data, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(head: &mut Head, segs: &[(u32, &[u8])]) -> Vec<u8> {
        let mut got = Vec::new();
        for (seq, d) in segs {
            head.insert(*seq, d, false, &mut |b| got.extend_from_slice(b));
        }
        got
    }

    #[test]
    fn in_order_out_of_order_and_retransmit() {
        let mut h = Head::new(100);
        h.syn(999);
        let got = run(&mut h, &[(1005, b"fgh"), (1000, b"abc"), (1000, b"abc"), (1003, b"de")]);
        assert_eq!(got, b"abcdefgh");
        assert_eq!(h.stats.retransmitted, 1);
        assert_eq!(h.stats.out_of_order, 1);
    }

    #[test]
    fn overlaps_keep_first_data() {
        let mut h = Head::new(100);
        let got = run(&mut h, &[(10, b"abcd"), (12, b"XXef"), (8, b"zzab")]);
        assert_eq!(got, b"abcdef");
        assert!(h.stats.overlaps >= 1);
    }

    #[test]
    fn budget_cuts_and_counts() {
        let mut h = Head::new(5);
        let got = run(&mut h, &[(0, b"abc"), (3, b"defgh"), (8, b"ij")]);
        assert_eq!(got, b"abcde");
        assert!(h.exhausted());
        assert_eq!(h.stats.beyond_budget, 1);
    }

    #[test]
    fn sequence_wraparound() {
        let mut h = Head::new(100);
        h.syn(u32::MAX - 2);
        let got = run(&mut h, &[(u32::MAX - 1, b"ab"), (0, b"cd")]);
        assert_eq!(got, b"abcd");
    }

    #[test]
    fn pending_is_bounded() {
        let mut h = Head::new(10_000);
        h.syn(0);
        for i in 0..100u32 {
            h.insert(10 + i * 10, b"x", false, &mut |_| {});
        }
        assert_eq!(h.pending.len(), MAX_PENDING);
        assert_eq!(h.stats.pending_dropped, 100 - MAX_PENDING as u64);
    }
}
