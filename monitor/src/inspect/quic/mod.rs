//! Inspect, QUIC Initial handshake of one UDP flow (RFC 9000/9001, v2 RFC 9369): long headers,
//! Initial keys from the client's Destination Connection ID, header protection and AEAD
//! removed by rustls, frames walked, CRYPTO reassembled by offset per direction, and the
//! handshake messages read by the same TLS parser as over TCP. Retry and Version Negotiation
//! are followed. Must never keep more than [`crypto::MAX_CRYPTO`] per direction or a few
//! early datagrams, never panic on any datagram, and never decrypt past the Initial space.
pub mod crypto;
pub mod frames;
pub mod packet;
pub mod protect;
#[cfg(test)]
mod tests;

use crypto::CryptoStream;
use frames::{Frame, Walk};
use packet::{Kind, Long};
use protect::InitialKeys;

use super::tls::TlsStream;

/// Key sets kept per flow (original DCID, after a Retry, a second version).
const MAX_KEY_SETS: usize = 4;
/// Datagrams kept while the client is not yet known (a server Initial captured first).
const MAX_EARLY: usize = 4;
/// Client Initial DCIDs tried for keys before the flow gives up on finding new ones.
const MAX_KEY_TRIES: u32 = 8;

/// What the QUIC layer of a flow showed, beside the TLS facts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuicFacts {
    /// Version of the client's first Initial that opened.
    pub version: Option<u32>,
    /// Version of the server's Initials, when it differs (compatible version negotiation).
    pub server_version: Option<u32>,
    /// The server answered with Version Negotiation, listing these versions.
    pub version_negotiation: Option<Vec<u32>>,
    /// The server sent a Retry (the client started over with new Initial keys).
    pub retry: bool,
    /// CONNECTION_CLOSE error code in an Initial (a handshake refused in clear), if any.
    pub close_code: Option<u64>,
}

/// Counters of QUIC inspection (folded into the pipeline's counters when a flow is judged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuicStats {
    /// UDP datagrams of QUIC flows.
    pub datagrams: u64,
    /// Initial packets opened (header protection removed, AEAD verified).
    pub initials: u64,
    /// Initial packets no key set opened (corrupt, forged, or keys never seen).
    pub undecryptable: u64,
    /// Long headers cut short or inconsistent; datagrams not QUIC at all on a QUIC flow.
    pub malformed: u64,
    /// Packets of other spaces (0-RTT, Handshake, short header) skipped: encrypted beyond
    /// what the Initial keys open.
    pub skipped: u64,
    /// Frames an Initial may not carry, or frames cut short (the packet's walk stopped).
    pub bad_frames: u64,
    /// CRYPTO bytes refused past the per-direction cap.
    pub crypto_dropped: u64,
    pub retries: u64,
    pub version_negotiations: u64,
    /// Datagrams of unknown versions.
    pub unknown_version: u64,
}

impl QuicStats {
    pub fn add(&mut self, o: &QuicStats) {
        self.datagrams += o.datagrams;
        self.initials += o.initials;
        self.undecryptable += o.undecryptable;
        self.malformed += o.malformed;
        self.skipped += o.skipped;
        self.bad_frames += o.bad_frames;
        self.crypto_dropped += o.crypto_dropped;
        self.retries += o.retries;
        self.version_negotiations += o.version_negotiations;
        self.unknown_version += o.unknown_version;
    }
}

/// The QUIC handshake of one flow, both directions (0 and 1: the flow key's directions).
#[derive(Default)]
pub struct QuicConn {
    /// Direction of the client: the sender of the first Initial its own DCID's keys open.
    pub client: Option<usize>,
    /// Handshake messages per direction, parsed like TLS over TCP.
    pub tls: [TlsStream; 2],
    pub facts: QuicFacts,
    pub stats: QuicStats,
    crypto: [CryptoStream; 2],
    largest_pn: [Option<u64>; 2],
    /// The DCID the Initial keys derive from (the client's first, or the Retry's SCID).
    odcid: Option<Vec<u8>>,
    keys: Vec<InitialKeys>,
    key_tries: u32,
    /// Datagrams that came before the client was known: (direction, bytes, time).
    early: Vec<(usize, Vec<u8>, u64)>,
    /// Scratch copy of the packet being opened.
    scratch: Vec<u8>,
}

impl QuicConn {
    /// Heap bytes this flow holds: out-of-order CRYPTO pieces, partial handshake messages and
    /// parsed facts, early datagrams, key sets.
    pub fn held(&self) -> usize {
        let early: usize = self.early.iter().map(|(_, d, _)| d.capacity()).sum();
        self.tls.iter().map(TlsStream::held).sum::<usize>()
            + self.crypto.iter().map(CryptoStream::held).sum::<usize>()
            + early
            + self.scratch.capacity()
            + self.keys.len() * 512
    }

    /// Nothing more to learn: the client's hello and the server's hello are in.
    pub fn done(&self) -> bool {
        let Some(c) = self.client else { return false };
        self.tls[c].facts.client_hello.is_some() && self.tls[1 - c].facts.server_hello.is_some()
    }

    /// One UDP datagram sent in direction `dir`.
    pub fn datagram(&mut self, dir: usize, d: &[u8], ts_ns: u64) {
        self.stats.datagrams += 1;
        let known = self.client.is_some();
        self.packets(dir, d, ts_ns);
        if !known && self.client.is_some() {
            // The client is known now: open what the other side sent before.
            for (dir, d, ts) in std::mem::take(&mut self.early) {
                self.packets(dir, &d, ts);
            }
        }
    }

    /// End of the flow: what the partial messages still tell, counters of refused bytes.
    pub fn finish(&mut self) {
        for (t, c) in self.tls.iter_mut().zip(&self.crypto) {
            t.finish();
            self.stats.crypto_dropped += c.dropped;
        }
        // Datagrams kept for a client never seen: no key opened them.
        self.stats.undecryptable += self.early.len() as u64;
        self.early = Vec::new();
        self.scratch = Vec::new();
    }

    fn packets(&mut self, dir: usize, d: &[u8], ts_ns: u64) {
        let mut rest = d;
        let mut first = true;
        while let Some(&b0) = rest.first() {
            if b0 & 0x80 == 0 {
                // A short header (1-RTT), or the zero padding after the last coalesced packet.
                if first {
                    self.stats.skipped += 1;
                }
                return;
            }
            let Some(p) = packet::parse_long(rest) else {
                self.stats.malformed += 1;
                self.anomaly(dir, format!("QUIC long header cut short or inconsistent ({} bytes)", rest.len()));
                return;
            };
            match p.kind {
                Kind::VersionNegotiation => {
                    self.stats.version_negotiations += 1;
                    self.facts.version_negotiation = Some(p.versions.iter().copied().take(16).collect());
                    return;
                }
                Kind::Unknown => {
                    self.stats.unknown_version += 1;
                    return;
                }
                Kind::Retry => {
                    self.retry(dir, &p);
                    return;
                }
                Kind::Initial => self.initial(dir, &rest[..p.end], &p, ts_ns),
                Kind::ZeroRtt | Kind::Handshake => self.stats.skipped += 1,
            }
            rest = &rest[p.end..];
            first = false;
        }
    }

    /// A Retry from the server: the client's next Initial uses the Retry's SCID as DCID, and
    /// both sides' Initial keys derive from it.
    fn retry(&mut self, dir: usize, p: &Long<'_>) {
        if self.client == Some(dir) || p.scid.is_empty() {
            self.stats.malformed += 1;
            return;
        }
        self.stats.retries += 1;
        self.facts.retry = true;
        self.odcid = Some(p.scid.to_vec());
        if let Some(c) = self.client {
            self.restart(c);
            self.largest_pn = [None; 2];
        }
    }

    fn keys_for(&mut self, version: u32, dcid: &[u8]) -> Option<usize> {
        if let Some(i) = self.keys.iter().position(|k| k.version == version && k.dcid == dcid) {
            return Some(i);
        }
        let k = InitialKeys::new(version, dcid)?;
        if self.keys.len() >= MAX_KEY_SETS {
            self.keys.remove(0);
        }
        self.keys.push(k);
        Some(self.keys.len() - 1)
    }

    /// Try to open `pkt` with the `client`/server keys of (version, dcid); on success the
    /// frames are read.
    fn try_open(&mut self, dir: usize, pkt: &[u8], p: &Long<'_>, dcid: &[u8], client: bool, ts_ns: u64) -> bool {
        let Some(i) = self.keys_for(p.version, dcid) else { return false };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(pkt);
        let opened = protect::open(self.keys[i].side(client), &mut buf, p.pn_offset, self.largest_pn[dir]);
        let ok = match opened {
            Some((pn, plain)) => {
                self.largest_pn[dir] = Some(self.largest_pn[dir].map_or(pn, |l| l.max(pn)));
                self.frames(dir, plain, ts_ns);
                true
            }
            None => false,
        };
        self.scratch = buf;
        ok
    }

    fn initial(&mut self, dir: usize, pkt: &[u8], p: &Long<'_>, ts_ns: u64) {
        let opened = match (self.client, self.odcid.clone()) {
            (Some(c), Some(odcid)) if c == dir => {
                self.try_open(dir, pkt, p, &odcid, true, ts_ns) || self.new_client_dcid(dir, pkt, p, ts_ns)
            }
            (Some(_), Some(odcid)) => {
                let ok = self.try_open(dir, pkt, p, &odcid, false, ts_ns);
                if ok && self.facts.version != Some(p.version) {
                    self.facts.server_version = Some(p.version);
                }
                ok
            }
            // The client is not known yet: the sender of an Initial its own DCID's keys open.
            _ if self.new_client_dcid(dir, pkt, p, ts_ns) => {
                self.client = Some(dir);
                self.facts.version = Some(p.version);
                true
            }
            _ => {
                if self.early.len() < MAX_EARLY {
                    self.early.push((dir, pkt.to_vec(), ts_ns));
                    return;
                }
                false
            }
        };
        if opened {
            self.stats.initials += 1;
        } else {
            self.stats.undecryptable += 1;
        }
    }

    /// A client Initial the current keys do not open: keys from its own DCID (after a Retry
    /// not captured, or a new connection attempt). Bounded tries per flow.
    fn new_client_dcid(&mut self, dir: usize, pkt: &[u8], p: &Long<'_>, ts_ns: u64) -> bool {
        if self.key_tries >= MAX_KEY_TRIES || p.dcid.is_empty() || self.odcid.as_deref() == Some(p.dcid) {
            return false;
        }
        self.key_tries += 1;
        let dcid = p.dcid.to_vec();
        // The hello starts over under the new keys, unless it is already read.
        let saved = (self.client == Some(dir)).then(|| self.restart(dir)).flatten();
        let saved_pn = self.largest_pn[dir].take();
        if self.try_open(dir, pkt, p, &dcid, true, ts_ns) {
            self.odcid = Some(dcid);
            return true;
        }
        if let Some((c, t)) = saved {
            let dropped = self.crypto[dir].dropped;
            self.crypto[dir] = c;
            self.crypto[dir].dropped = dropped;
            self.tls[dir] = t;
        }
        self.largest_pn[dir] = saved_pn;
        false
    }

    /// The client's CRYPTO stream begins again at offset 0 (after a Retry, or under new keys):
    /// drop what was read of an unfinished hello, returning it. Counters are kept.
    fn restart(&mut self, c: usize) -> Option<(CryptoStream, TlsStream)> {
        if self.tls[c].facts.client_hello.is_some() {
            return None;
        }
        let crypto = std::mem::take(&mut self.crypto[c]);
        self.crypto[c].dropped = crypto.dropped;
        Some((crypto, std::mem::take(&mut self.tls[c])))
    }

    fn frames(&mut self, dir: usize, plain: &[u8], ts_ns: u64) {
        let (crypto, tls, facts) = (&mut self.crypto[dir], &mut self.tls[dir], &mut self.facts);
        let walk = frames::walk(plain, |f| match f {
            Frame::Crypto { offset, data } => crypto.insert(offset, data, &mut |b| tls.feed_handshake(b, ts_ns)),
            Frame::Close { code, .. } => {
                facts.close_code.get_or_insert(code);
            }
        });
        match walk {
            Walk::Complete => {}
            Walk::Unexpected(ty) => {
                self.stats.bad_frames += 1;
                self.anomaly(dir, format!("QUIC Initial carries frame type 0x{ty:x}"));
            }
            Walk::Malformed => {
                self.stats.bad_frames += 1;
                self.anomaly(dir, "QUIC Initial frame cut short".into());
            }
        }
    }

    fn anomaly(&mut self, dir: usize, detail: String) {
        self.tls[dir].note_anomaly("anomaly.malformed-record", detail);
    }
}
