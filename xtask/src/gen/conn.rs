//! Generator TCP: one connection's script (3-way handshake, flights, bulk records, teardown)
//! played out segment by segment with correct sequence and acknowledgement numbers.
//! Must never allocate per segment: payload buffers live in the (reused) connection.
use std::io::{self, Write};

use super::pcap::{Endpoints, PcapWriter, Seg, ACK, FIN, PSH, RST, SYN};
use super::rng::{Pool, Rng};

#[derive(Clone, Copy, Debug)]
pub enum Act {
    /// Client SYN, server SYN-ACK, client ACK.
    Syn,
    SynAck,
    Ack,
    /// The next `len` prepared bytes of `side`'s stream (`Conn::hs`); a segment always ends at
    /// each non-zero offset in `cuts` (deliberately split ClientHellos).
    Send {
        side: u8,
        len: u32,
        cuts: [u32; 2],
    },
    /// `bytes` of application stream from `side`: opaque records (or raw bytes) made on the fly.
    Bulk {
        side: u8,
        bytes: u64,
    },
    /// Pure ACK from `side`.
    AckFrom {
        side: u8,
    },
    Fin {
        side: u8,
    },
    Rst {
        side: u8,
    },
}

/// Application-data stream of one direction: records of `ct`/`version` with bodies of at most
/// `max_body` random bytes, or raw random bytes (plaintext noise flows).
#[derive(Default)]
pub struct RecStream {
    pub raw: bool,
    pub ct: u8,
    pub version: u16,
    pub max_body: usize,
    left: usize,
    hdr: [u8; 5],
    hdr_pos: usize,
}

impl RecStream {
    pub fn set(&mut self, raw: bool, ct: u8, version: u16, max_body: usize) {
        *self = RecStream { raw, ct, version, max_body, left: 0, hdr: [0; 5], hdr_pos: 5 };
    }

    /// Appends up to `n` stream bytes to `out`, never more than `*act_left`.
    fn fill(&mut self, out: &mut Vec<u8>, mut n: usize, act_left: &mut u64, pool: &Pool, rng: &mut Rng) {
        while n > 0 && *act_left > 0 {
            let avail = (*act_left).min(n as u64) as usize;
            let take = if self.raw {
                out.extend_from_slice(pool.bytes(rng, avail));
                avail
            } else if self.hdr_pos < 5 {
                let t = (5 - self.hdr_pos).min(avail);
                out.extend_from_slice(&self.hdr[self.hdr_pos..self.hdr_pos + t]);
                self.hdr_pos += t;
                t
            } else if self.left > 0 {
                let t = self.left.min(avail);
                out.extend_from_slice(pool.bytes(rng, t));
                self.left -= t;
                t
            } else {
                // New record; the act always ends on a record boundary.
                let r = (*act_left as usize).saturating_sub(5).max(1);
                let body = if r > self.max_body + 32 {
                    self.max_body
                } else if r > self.max_body {
                    r / 2
                } else {
                    r
                };
                let [v0, v1] = self.version.to_be_bytes();
                self.hdr = [self.ct, v0, v1, (body >> 8) as u8, body as u8];
                self.hdr_pos = 0;
                self.left = body;
                0
            };
            n -= take;
            *act_left -= take as u64;
        }
    }

    /// Bytes still owed to finish the record in progress.
    fn owed(&self) -> u64 {
        if self.raw {
            0
        } else {
            (5 - self.hdr_pos + self.left) as u64
        }
    }
}

/// Per-conn knobs for misbehaviour, in permille per data segment.
#[derive(Clone, Copy, Default)]
pub struct Disorder {
    pub swap: u32,
    pub retransmit: u32,
}

#[derive(Default)]
pub struct Conn {
    pub ep: Option<Endpoints>,
    pub hs: [Vec<u8>; 2],
    pub script: Vec<Act>,
    pub rec: [RecStream; 2],
    pub disorder: Disorder,
    /// Deliver the next two data segments in reverse order (once), e.g. a split ClientHello.
    pub force_swap: bool,
    pub mss: usize,
    /// Index into the generator's per-kind counters.
    pub kind: usize,
    isn: [u32; 2],
    nxt: [u32; 2],
    ip_id: [u16; 2],
    ts_off: [u32; 2],
    hs_off: [usize; 2],
    pc: usize,
    done: u64,
    unacked: [u8; 2],
    a: Vec<u8>,
    b: Vec<u8>,
}

/// Global packet clock (µs), advanced a little for every packet written.
pub struct Clock(pub u64);

impl Clock {
    fn tick(&mut self, rng: &mut Rng) -> u64 {
        self.0 += 1 + rng.below(24);
        self.0
    }
}

impl Conn {
    /// Clears the connection for reuse, keeping buffer capacity.
    pub fn reset(&mut self, ep: Endpoints, mss: usize, rng: &mut Rng) {
        self.ep = Some(ep);
        self.hs[0].clear();
        self.hs[1].clear();
        self.script.clear();
        self.disorder = Disorder::default();
        self.force_swap = false;
        self.mss = mss;
        self.kind = 0;
        self.isn = [rng.next() as u32, rng.next() as u32];
        self.nxt = self.isn;
        self.ip_id = [rng.next() as u16, rng.next() as u16];
        self.ts_off = [rng.next() as u32 >> 1, rng.next() as u32 >> 1];
        self.hs_off = [0, 0];
        self.pc = 0;
        self.done = 0;
        self.unacked = [0, 0];
    }

    pub fn finished(&self) -> bool {
        self.pc >= self.script.len()
    }

    /// Drops the remaining bulk transfer (the capture is full): the record in progress is
    /// completed so every record stays whole, then the connection tears down normally.
    pub fn wrap_up(&mut self) {
        let mut i = self.pc + 1;
        while i < self.script.len() {
            if matches!(self.script[i], Act::Bulk { .. }) {
                self.script.remove(i);
            } else {
                i += 1;
            }
        }
        if let Some(Act::Bulk { side, bytes }) = self.script.get(self.pc).copied() {
            let owed = self.rec[side as usize].owed();
            let bytes = (self.done + owed).min(bytes);
            self.script[self.pc] = Act::Bulk { side, bytes };
            if bytes == self.done {
                self.pc += 1;
                self.done = 0;
            }
        }
    }

    fn seg<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        ts: u64,
        side: usize,
        seq: u32,
        flags: u8,
        pl: &[u8],
    ) -> io::Result<()> {
        let ep = self.ep.as_ref().ok_or_else(|| io::Error::other("connection without endpoints"))?;
        let ms = (ts / 1000) as u32;
        self.ip_id[side] = self.ip_id[side].wrapping_add(1);
        let ack = if flags & ACK != 0 { self.nxt[1 - side] } else { 0 };
        let s = Seg {
            side,
            seq,
            ack,
            flags,
            ip_id: self.ip_id[side],
            tsval: ms.wrapping_add(self.ts_off[side]),
            tsecr: if flags == SYN { 0 } else { ms.wrapping_sub(1).wrapping_add(self.ts_off[1 - side]) },
            payload: pl,
        };
        w.tcp(ts, ep, &s)
    }

    /// Fills `buf` with the next segment of the current Send/Bulk act; returns its length.
    fn next_payload(&mut self, buf: &mut Vec<u8>, pool: &Pool, rng: &mut Rng) -> usize {
        buf.clear();
        match self.script[self.pc] {
            Act::Send { side, len, cuts } => {
                let side = side as usize;
                let mut end = u64::from(len).min(self.done + self.mss as u64);
                for c in cuts.iter().map(|&c| u64::from(c)) {
                    if c > self.done && c < end {
                        end = c;
                    }
                }
                let n = (end - self.done) as usize;
                let off = self.hs_off[side];
                buf.extend_from_slice(&self.hs[side][off..off + n]);
                self.hs_off[side] += n;
                n
            }
            Act::Bulk { side, bytes } => {
                let mut left = bytes - self.done;
                self.rec[side as usize].fill(buf, self.mss, &mut left, pool, rng);
                buf.len()
            }
            _ => 0,
        }
    }

    fn act_len(&self) -> u64 {
        match self.script[self.pc] {
            Act::Send { len, .. } => u64::from(len),
            Act::Bulk { bytes, .. } => bytes,
            _ => 0,
        }
    }

    /// Plays the next step of the script (one segment, plus any reordering, retransmission
    /// and delayed ACK it causes). Returns true when the connection is finished.
    pub fn step<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        clock: &mut Clock,
        rng: &mut Rng,
        pool: &Pool,
    ) -> io::Result<bool> {
        let Some(&act) = self.script.get(self.pc) else {
            return Ok(true);
        };
        match act {
            Act::Syn => {
                let ts = clock.tick(rng);
                self.seg(w, ts, 0, self.isn[0], SYN, &[])?;
                if rng.chance(self.disorder.retransmit * 3) {
                    // The duplicate follows at once: one global clock, and a 1 s RTO would
                    // stall every other flow in the capture.
                    let ts = clock.tick(rng);
                    self.seg(w, ts, 0, self.isn[0], SYN, &[])?;
                }
                self.nxt[0] = self.isn[0].wrapping_add(1);
            }
            Act::SynAck => {
                self.nxt[1] = self.isn[1].wrapping_add(1);
                let ts = clock.tick(rng);
                self.seg(w, ts, 1, self.isn[1], SYN | ACK, &[])?;
            }
            Act::Ack => self.pure_ack(w, clock, rng, 0)?,
            Act::AckFrom { side } => self.pure_ack(w, clock, rng, side as usize)?,
            Act::Fin { side } | Act::Rst { side } => {
                let side = side as usize;
                let flags = if matches!(act, Act::Fin { .. }) { FIN | ACK } else { RST | ACK };
                let ts = clock.tick(rng);
                self.seg(w, ts, side, self.nxt[side], flags, &[])?;
                if flags & FIN != 0 {
                    self.nxt[side] = self.nxt[side].wrapping_add(1);
                }
            }
            Act::Send { side, .. } | Act::Bulk { side, .. } => {
                return self.data_step(w, clock, rng, pool, side as usize)
            }
        }
        self.pc += 1;
        Ok(self.finished())
    }

    fn pure_ack<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        clock: &mut Clock,
        rng: &mut Rng,
        side: usize,
    ) -> io::Result<()> {
        self.unacked[side] = 0;
        let ts = clock.tick(rng);
        self.seg(w, ts, side, self.nxt[side], ACK, &[])
    }

    fn data_step<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        clock: &mut Clock,
        rng: &mut Rng,
        pool: &Pool,
        side: usize,
    ) -> io::Result<bool> {
        let total = self.act_len();
        let mut a = std::mem::take(&mut self.a);
        let mut b = std::mem::take(&mut self.b);
        let seq_a = self.nxt[side];
        let la = self.next_payload(&mut a, pool, rng);
        self.done += la as u64;
        self.nxt[side] = self.nxt[side].wrapping_add(la as u32);
        let psh = |done: u64| if done == total { ACK | PSH } else { ACK };
        let flags_a = psh(self.done);
        let mut segs = 1;
        if self.done < total && (self.force_swap || rng.chance(self.disorder.swap)) {
            self.force_swap = false;
            // Out of order: the following segment overtakes this one.
            let seq_b = self.nxt[side];
            let lb = self.next_payload(&mut b, pool, rng);
            self.done += lb as u64;
            self.nxt[side] = self.nxt[side].wrapping_add(lb as u32);
            let ts = clock.tick(rng);
            self.seg(w, ts, side, seq_b, psh(self.done), &b)?;
            segs += 1;
        }
        let ts = clock.tick(rng);
        self.seg(w, ts, side, seq_a, flags_a, &a)?;
        if rng.chance(self.disorder.retransmit) {
            let ts = clock.tick(rng);
            self.seg(w, ts, side, seq_a, flags_a, &a)?;
        }
        self.a = a;
        self.b = b;
        let other = 1 - side;
        self.unacked[other] += segs;
        let act_over = self.done >= total;
        let bulk = matches!(self.script[self.pc], Act::Bulk { .. });
        if self.unacked[other] >= 2 || (act_over && bulk) {
            self.pure_ack(w, clock, rng, other)?;
        }
        if act_over {
            self.pc += 1;
            self.done = 0;
        }
        Ok(self.finished())
    }
}
