//! Inspect, QUIC CRYPTO stream of one direction: frames put back in offset order across
//! packets and datagrams, handed on as contiguous bytes as soon as they are.
//! Must never keep a byte at or beyond [`MAX_CRYPTO`], nor more than that much out of order:
//! what it refuses is counted.
use std::collections::BTreeMap;

/// CRYPTO stream bytes one direction may carry before the rest is refused (a post-quantum
/// ClientHello is ~2 KB; a server Initial carries only its ServerHello).
pub const MAX_CRYPTO: u64 = 64 << 10;

/// The reassembly state of one direction's Initial CRYPTO stream.
#[derive(Debug, Default)]
pub struct CryptoStream {
    /// Bytes handed on so far (everything below this offset).
    delivered: u64,
    /// Pieces beyond `delivered`, by offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Bytes refused: at or beyond [`MAX_CRYPTO`], or out of order past that much held.
    pub dropped: u64,
}

impl CryptoStream {
    /// Heap bytes held out of order.
    pub fn held(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes handed on so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// One CRYPTO frame; `out` gets every newly contiguous run of bytes, in order.
    pub fn insert(&mut self, offset: u64, data: &[u8], out: &mut impl FnMut(&[u8])) {
        let end = offset.saturating_add(data.len() as u64);
        let keep_end = end.min(MAX_CRYPTO);
        self.dropped += end - keep_end.max(offset.min(end));
        if keep_end <= self.delivered || offset >= keep_end {
            return; // a retransmission, or nothing below the cap
        }
        let start = offset.max(self.delivered);
        let data = &data[(start - offset) as usize..(keep_end - offset) as usize];
        if start > self.delivered {
            let have = self.pending.get(&start).map_or(0, Vec::len);
            if data.len() <= have {
                return;
            }
            if self.pending_bytes + data.len() - have > MAX_CRYPTO as usize {
                // Overlapping pieces at many offsets: refused rather than held twice.
                self.dropped += data.len() as u64;
                return;
            }
            let slot = self.pending.entry(start).or_default();
            {
                self.pending_bytes += data.len() - slot.len();
                slot.clear();
                slot.extend_from_slice(data);
            }
            return;
        }
        out(data);
        self.delivered = keep_end;
        while let Some(e) = self.pending.first_entry() {
            if *e.key() > self.delivered {
                break;
            }
            let (off, piece) = e.remove_entry();
            self.pending_bytes -= piece.len();
            let piece_end = off + piece.len() as u64;
            if piece_end > self.delivered {
                out(&piece[(self.delivered - off) as usize..]);
                self.delivered = piece_end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[(u64, &[u8])]) -> (Vec<u8>, CryptoStream) {
        let mut s = CryptoStream::default();
        let mut got = Vec::new();
        for (off, d) in pieces {
            s.insert(*off, d, &mut |b| got.extend_from_slice(b));
        }
        (got, s)
    }

    #[test]
    fn out_of_order_overlapping_and_duplicate() {
        let (got, s) = run(&[(6, b"ghij"), (2, b"cdefg"), (2, b"cd"), (0, b"abc"), (0, b"ab")]);
        assert_eq!(got, b"abcdefghij");
        assert_eq!((s.held(), s.delivered()), (0, 10));
    }

    #[test]
    fn nothing_kept_at_or_past_the_cap() {
        let (got, s) = run(&[(MAX_CRYPTO - 2, b"wxyz"), (MAX_CRYPTO + 5, b"zz"), (u64::MAX - 3, b"qq")]);
        assert!(got.is_empty());
        assert_eq!(s.held(), 2);
        assert_eq!(s.dropped, 2 + 2 + 2);
    }
}
