//! Inspect, DTLS handshake reassembly of one direction (RFC 6347 §4.2.2, RFC 9147 §5.5):
//! fragments put together by message_seq and fragment_offset, complete messages handed on in
//! message_seq order with a TLS-style 4-byte header. Must never hold more than
//! [`MAX_HANDSHAKE`] per direction: what it refuses is counted.
use std::collections::BTreeMap;

/// Handshake bytes one direction may carry (delivered and pending together).
pub const MAX_HANDSHAKE: usize = 64 << 10;
/// Messages waiting for their turn or their missing fragments.
const MAX_PENDING: usize = 16;

/// One handshake fragment as read from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub msg_type: u8,
    pub length: u32,
    pub message_seq: u16,
    pub offset: u32,
    pub data: &'a [u8],
}

/// A message being put together.
#[derive(Debug)]
struct Pending {
    msg_type: u8,
    body: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    have: Vec<(u32, u32)>,
}

impl Pending {
    fn complete(&self) -> bool {
        self.body.is_empty() || self.have.first() == Some(&(0, self.body.len() as u32))
    }

    fn add(&mut self, off: u32, data: &[u8]) {
        let (s, e) = (off as usize, off as usize + data.len());
        self.body[s..e].copy_from_slice(data);
        self.have.push((off, e as u32));
        self.have.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }
}

/// Counters of one direction's reassembly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Fragments of messages already handed on (retransmissions).
    pub retransmitted: u64,
    /// Fragments whose offset and length do not fit the message, or that disagree with
    /// earlier fragments of the same message on its type or length.
    pub inconsistent: u64,
    /// Fragment bytes refused past [`MAX_HANDSHAKE`] or the pending-message bound.
    pub dropped: u64,
}

/// The handshake messages of one direction.
#[derive(Debug, Default)]
pub struct Reassembly {
    /// The message_seq expected next (set by the first complete message).
    next: Option<u16>,
    pending: BTreeMap<u16, Pending>,
    /// Bytes allocated for pending messages plus bytes handed on.
    used: usize,
    pub stats: ReassemblyStats,
}

impl Reassembly {
    /// Heap bytes held by pending messages.
    pub fn held(&self) -> usize {
        self.pending.values().map(|p| p.body.capacity() + p.have.capacity() * 8).sum()
    }

    /// One fragment; `out` gets each message that completes in order, as
    /// `msg_type, length (24 bits), body`.
    pub fn insert(&mut self, f: Fragment<'_>, out: &mut impl FnMut(u16, u8, &[u8])) {
        let end = u64::from(f.offset) + f.data.len() as u64;
        if end > u64::from(f.length) {
            self.stats.inconsistent += 1;
            return;
        }
        if self.next.is_some_and(|n| f.message_seq < n) {
            self.stats.retransmitted += 1;
            return;
        }
        if !self.pending.contains_key(&f.message_seq) {
            let len = f.length as usize;
            if self.used + len > MAX_HANDSHAKE || self.pending.len() >= MAX_PENDING {
                self.stats.dropped += f.data.len() as u64;
                return;
            }
            self.used += len;
            let p = Pending { msg_type: f.msg_type, body: vec![0; len], have: Vec::new() };
            self.pending.insert(f.message_seq, p);
        }
        let Some(p) = self.pending.get_mut(&f.message_seq) else { return };
        if p.msg_type != f.msg_type || p.body.len() != f.length as usize {
            self.stats.inconsistent += 1;
            return;
        }
        p.add(f.offset, f.data);
        if !p.complete() {
            return;
        }
        let mut seq = match self.next {
            Some(n) if n != f.message_seq => return, // waits for the messages before it
            _ => f.message_seq,
        };
        while let Some(p) = self.pending.get(&seq).filter(|p| p.complete()) {
            out(seq, p.msg_type, &p.body);
            self.pending.remove(&seq);
            seq = seq.wrapping_add(1);
            self.next = Some(seq);
        }
    }

    /// End of the flow: complete messages still waiting for an earlier one are handed on in
    /// order (the earlier one was never captured).
    pub fn flush(&mut self, out: &mut impl FnMut(u16, u8, &[u8])) {
        for (seq, p) in std::mem::take(&mut self.pending) {
            if p.complete() {
                out(seq, p.msg_type, &p.body);
            }
        }
    }
}
