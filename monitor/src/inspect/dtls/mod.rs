//! Inspect, DTLS handshake of one UDP flow (DTLS 1.0 RFC 4347, 1.2 RFC 6347, the clear
//! ClientHello of 1.3 RFC 9147): records of each datagram, handshake fragments reassembled by
//! message_seq and offset, the HelloVerifyRequest cookie exchange followed (the ClientHello
//! with the cookie is the one that counts), and the messages read by the same TLS parser as
//! over TCP. Must never read past epoch 0 (encrypted), hold more than
//! [`reassembly::MAX_HANDSHAKE`] per direction, or panic on any datagram.
pub mod reassembly;
#[cfg(test)]
mod tests;

use reassembly::{Fragment, Reassembly};

use super::tls::{Alert, TlsStream};

/// Record content types.
const CT_CCS: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPDATA: u8 = 23;
const CT_ACK: u8 = 26;
/// Handshake types handled here rather than by the TLS parser.
const HT_CLIENT_HELLO: u8 = 1;
const HT_HELLO_VERIFY: u8 = 3;
const RECORD_HEADER: usize = 13;
const FRAGMENT_HEADER: usize = 12;
/// Most alerts kept per direction.
const MAX_ALERTS: usize = 4;

/// Is `v` a DTLS record version (1.0, 1.2, or 1.3's ClientHello record)?
pub fn is_dtls_version(v: u16) -> bool {
    matches!(v, 0xfeff | 0xfefd | 0xfefc)
}

/// Does this UDP payload open a DTLS handshake: a handshake record with a DTLS version?
pub fn looks_like_dtls(d: &[u8]) -> bool {
    d.len() >= RECORD_HEADER + FRAGMENT_HEADER
        && d[0] == CT_HANDSHAKE
        && is_dtls_version(u16::from_be_bytes([d[1], d[2]]))
        && u16::from_be_bytes([d[3], d[4]]) == 0
}

/// What the DTLS layer of a flow showed, beside the TLS facts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DtlsFacts {
    /// Record version of the client's first handshake record.
    pub record_version: Option<u16>,
    /// The server asked for a cookie (HelloVerifyRequest) and the client's hello that counts
    /// is the one that carried it.
    pub hello_verify: bool,
    /// Length of the cookie the client's counted hello carried.
    pub cookie_len: Option<u8>,
}

/// Counters of DTLS inspection (folded into the pipeline's counters when a flow is judged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtlsStats {
    pub datagrams: u64,
    /// Epoch-0 records read.
    pub records: u64,
    pub fragments: u64,
    /// Records of epoch > 0, application data or DTLS 1.3 unified headers: encrypted.
    pub encrypted: u64,
    /// Records or fragments cut short or inconsistent; datagrams not DTLS on a DTLS flow.
    pub malformed: u64,
    pub retransmitted: u64,
    /// Handshake bytes refused past the per-direction cap.
    pub dropped: u64,
    pub hello_verify: u64,
}

impl DtlsStats {
    pub fn add(&mut self, o: &DtlsStats) {
        self.datagrams += o.datagrams;
        self.records += o.records;
        self.fragments += o.fragments;
        self.encrypted += o.encrypted;
        self.malformed += o.malformed;
        self.retransmitted += o.retransmitted;
        self.dropped += o.dropped;
        self.hello_verify += o.hello_verify;
    }
}

/// The DTLS handshake of one flow, both directions (0 and 1: the flow key's directions).
#[derive(Default)]
pub struct DtlsConn {
    /// Direction of the client: the sender of the first ClientHello.
    pub client: Option<usize>,
    pub tls: [TlsStream; 2],
    pub facts: DtlsFacts,
    pub stats: DtlsStats,
    reasm: [Reassembly; 2],
    /// The direction changed cipher spec or sent encrypted records: nothing more to read.
    encrypted: [bool; 2],
    /// Scratch for a message with its TLS-style header.
    msg: Vec<u8>,
}

impl DtlsConn {
    /// Heap bytes this flow holds.
    pub fn held(&self) -> usize {
        self.tls.iter().map(TlsStream::held).sum::<usize>()
            + self.reasm.iter().map(Reassembly::held).sum::<usize>()
            + self.msg.capacity()
    }

    /// Nothing more to learn: both hellos are in and both directions went encrypted (a
    /// ChangeCipherSpec, or records of a later epoch), so what the server sent in clear
    /// (certificate, key exchange) is read and the handshake is known to be established.
    /// DTLS 1.3 encrypts everything after the ServerHello (in unified headers the kernel does
    /// not forward): judged at the ServerHello, as QUIC is, whatever the path.
    pub fn done(&self) -> bool {
        let Some(c) = self.client else { return false };
        let Some(sh) = &self.tls[1 - c].facts.server_hello else { return false };
        self.tls[c].facts.client_hello.is_some()
            && (self.encrypted.iter().all(|e| *e) || sh.negotiated_version() == 0xfefc)
    }

    /// One UDP datagram sent in direction `dir`.
    pub fn datagram(&mut self, dir: usize, d: &[u8], ts_ns: u64) {
        self.stats.datagrams += 1;
        let mut rest = d;
        while !rest.is_empty() {
            if rest[0] & 0xe0 == 0x20 {
                // A DTLS 1.3 unified header: always encrypted.
                self.stats.encrypted += 1;
                self.went_encrypted(dir);
                return;
            }
            if rest.len() < RECORD_HEADER {
                self.malformed(dir, format!("DTLS record header cut short ({} bytes)", rest.len()));
                return;
            }
            let version = u16::from_be_bytes([rest[1], rest[2]]);
            let epoch = u16::from_be_bytes([rest[3], rest[4]]);
            let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let ct = rest[0];
            if !is_dtls_version(version) || !matches!(ct, CT_CCS | CT_ALERT | CT_HANDSHAKE | CT_APPDATA | CT_ACK) {
                self.malformed(dir, format!("invalid DTLS record header: type {ct}, version 0x{version:04x}"));
                return;
            }
            let Some(body) = rest.get(RECORD_HEADER..RECORD_HEADER + len) else {
                self.malformed(dir, format!("DTLS record cut short: {len} bytes announced"));
                return;
            };
            rest = &rest[RECORD_HEADER + len..];
            if epoch > 0 || ct == CT_APPDATA || ct == CT_ACK {
                self.stats.encrypted += 1;
                self.went_encrypted(dir);
                continue;
            }
            self.stats.records += 1;
            match ct {
                CT_HANDSHAKE if !self.encrypted[dir] => {
                    if self.facts.record_version.is_none() && self.client.is_none_or(|c| c == dir) {
                        self.facts.record_version = Some(version);
                    }
                    self.fragments(dir, body, ts_ns);
                }
                CT_CCS => {
                    self.tls[dir].facts.ccs = true;
                    self.encrypted[dir] = true;
                }
                CT_ALERT if !self.encrypted[dir] && body.len() == 2 => {
                    let alerts = &mut self.tls[dir].facts.alerts;
                    if alerts.len() < MAX_ALERTS {
                        alerts.push(Alert { level: body[0], description: body[1] });
                    }
                }
                _ => {}
            }
        }
    }

    /// End of the flow: complete messages still waiting are read, partial ones told.
    pub fn finish(&mut self) {
        for dir in 0..2 {
            let mut reasm = std::mem::take(&mut self.reasm[dir]);
            reasm.flush(&mut |seq, ty, body| self.message(dir, seq, ty, body, 0));
            self.stats.retransmitted += reasm.stats.retransmitted;
            self.stats.malformed += reasm.stats.inconsistent;
            self.stats.dropped += reasm.stats.dropped;
            self.tls[dir].finish();
        }
        self.msg = Vec::new();
    }

    fn fragments(&mut self, dir: usize, mut body: &[u8], ts_ns: u64) {
        while !body.is_empty() {
            let Some(h) = body.get(..FRAGMENT_HEADER) else {
                self.malformed(dir, format!("DTLS handshake fragment header cut short ({} bytes)", body.len()));
                return;
            };
            let be24 = |o: usize| u32::from_be_bytes([0, h[o], h[o + 1], h[o + 2]]);
            let (length, frag_off, frag_len) = (be24(1), be24(6), be24(9) as usize);
            let Some(data) = body.get(FRAGMENT_HEADER..FRAGMENT_HEADER + frag_len) else {
                self.malformed(dir, format!("DTLS handshake fragment cut short: {frag_len} bytes announced"));
                return;
            };
            body = &body[FRAGMENT_HEADER + frag_len..];
            self.stats.fragments += 1;
            let f = Fragment {
                msg_type: h[0],
                length,
                message_seq: u16::from_be_bytes([h[4], h[5]]),
                offset: frag_off,
                data,
            };
            let mut reasm = std::mem::take(&mut self.reasm[dir]);
            reasm.insert(f, &mut |seq, ty, body| self.message(dir, seq, ty, body, ts_ns));
            self.reasm[dir] = reasm;
        }
    }

    /// One whole handshake message of `dir`.
    fn message(&mut self, dir: usize, _seq: u16, ty: u8, body: &[u8], ts_ns: u64) {
        if ty == HT_CLIENT_HELLO && self.client.is_none() {
            self.client = Some(dir);
        }
        if ty == HT_HELLO_VERIFY {
            if self.client != Some(dir) {
                self.stats.hello_verify += 1;
                self.facts.hello_verify = true;
                // The client's first hello does not count: the one with the cookie will.
                if let Some(c) = self.client {
                    if self.tls[c].facts.client_hello.is_some() {
                        self.tls[c] = TlsStream::default();
                    }
                }
            }
            return;
        }
        let mut msg = std::mem::take(&mut self.msg);
        msg.clear();
        msg.push(ty);
        if ty == HT_CLIENT_HELLO {
            let Some((tls_body, cookie)) = without_cookie(body) else {
                self.msg = msg;
                self.malformed(dir, "DTLS ClientHello cut short before its cookie".into());
                return;
            };
            if self.tls[dir].facts.client_hello.is_some() {
                // A later hello (renegotiation in clear is not DTLS): the first one counts.
                self.msg = msg;
                return;
            }
            self.facts.cookie_len = Some(cookie);
            msg.extend_from_slice(&(tls_body.len() as u32).to_be_bytes()[1..]);
            for part in tls_body {
                msg.extend_from_slice(part);
            }
        } else {
            msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            msg.extend_from_slice(body);
        }
        self.tls[dir].feed_handshake(&msg, ts_ns);
        self.msg = msg;
    }

    /// Records the keys of a later epoch protect: the handshake went on encrypted.
    fn went_encrypted(&mut self, dir: usize) {
        self.encrypted[dir] = true;
        let f = &mut self.tls[dir].facts;
        if !f.ccs {
            f.app_data = true;
        }
    }

    fn malformed(&mut self, dir: usize, detail: String) {
        self.stats.malformed += 1;
        self.tls[dir].note_anomaly("anomaly.malformed-record", detail);
    }
}

/// A DTLS ClientHello body in TLS form (the cookie taken out, RFC 6347 §4.2.1): the parts
/// before and after the cookie, and the cookie's length.
fn without_cookie(body: &[u8]) -> Option<(TlsBody<'_>, u8)> {
    let sid_len = usize::from(*body.get(34)?);
    let cookie_at = 35 + sid_len;
    let cookie_len = *body.get(cookie_at)?;
    let after = body.get(cookie_at + 1 + usize::from(cookie_len)..)?;
    Some((TlsBody([&body[..cookie_at], after]), cookie_len))
}

/// A message body in two pieces.
struct TlsBody<'a>([&'a [u8]; 2]);

impl TlsBody<'_> {
    fn len(&self) -> usize {
        self.0[0].len() + self.0[1].len()
    }
}

impl<'a> IntoIterator for TlsBody<'a> {
    type Item = &'a [u8];
    type IntoIter = std::array::IntoIter<&'a [u8], 2>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
