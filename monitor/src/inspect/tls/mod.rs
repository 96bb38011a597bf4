//! Inspect, TLS record layer for one direction of a flow head: reassembles records and
//! handshake messages (split across records and segments, several per record) and keeps the
//! facts. Must never read past what the flow head delivered, never keep payload beyond the
//! partial record/message it waits for, and never treat malformed bytes as an error.
pub mod cert;
pub mod certreq;
pub mod hello;
pub mod trust;

use std::sync::Arc;

use cert::CertInfo;
use hello::{ClientHello, ServerHello};

const CT_CCS: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPDATA: u8 = 23;
const CT_HEARTBEAT: u8 = 24;
/// Largest record the RFC allows (2^14 + 2048 for ciphertext).
const MAX_RECORD: usize = (1 << 14) + 2048;
/// Most anomalies kept per direction.
const MAX_ANOMALIES: usize = 4;
/// Most alerts kept per direction.
const MAX_ALERTS: usize = 4;

/// Where one direction's parse stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Nothing seen yet.
    #[default]
    Start,
    /// TLS records in clear.
    Handshake,
    /// Encrypted from here on (ChangeCipherSpec or application data seen): nothing more to learn.
    Done,
    /// The first bytes are not TLS.
    NotTls,
}

/// An alert seen in clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    pub level: u8,
    pub description: u8,
}

/// A malformed-traffic observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub id: &'static str,
    pub detail: String,
}

/// Key-exchange parameters from ServerKeyExchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KxParams {
    pub dh_prime_bits: Option<u32>,
    pub named_group: Option<u16>,
}

/// What one direction of a flow showed.
#[derive(Clone, Debug, Default)]
pub struct DirFacts {
    pub client_hello: Option<ClientHello>,
    pub server_hello: Option<ServerHello>,
    pub hello_retry: Option<ServerHello>,
    pub certs: Vec<CertInfo>,
    pub chain_complete: bool,
    pub chain_trust: Option<trust::Trust>,
    pub kx: KxParams,
    pub alerts: Vec<Alert>,
    pub ccs: bool,
    pub app_data: bool,
    pub server_hello_done: bool,
    /// The server's CertificateRequest (TLS <= 1.2; encrypted under TLS 1.3).
    pub cert_request: Option<certreq::CertRequest>,
    /// A Certificate message with an empty list (a client declining a CertificateRequest).
    pub cert_empty: bool,
    pub anomalies: Vec<Anomaly>,
    /// Timestamp (ns) of the first record of this direction.
    pub first_ts_ns: u64,
    /// Bytes of plaintext skipped before TLS began (an upgraded session).
    pub plaintext_prefix: u32,
}

/// Does `b` open a TLS handshake record (TLS 1.x / SSLv3)?
fn starts_handshake(b: &[u8]) -> bool {
    matches!(b, [CT_HANDSHAKE, 3, v, ..] if *v <= 4)
}

/// Record-layer parser for one direction.
#[derive(Debug, Default)]
pub struct TlsStream {
    pub state: State,
    pub facts: DirFacts,
    /// The flow may start in clear and upgrade (STARTTLS, SSLRequest, RDP X.224): skip
    /// non-TLS segments until one starts with a TLS record instead of giving up.
    pub upgradable: bool,
    /// CA bundle to judge certificate chains against (none: no trust verdict).
    pub trust: Option<Arc<trust::TrustStore>>,
    /// Bytes of a record not yet complete.
    rec: Vec<u8>,
    /// Bytes of a handshake message not yet complete.
    hs: Vec<u8>,
}

/// Heap bytes allowed for each fact set a direction parsed (a hello, a certificate) in
/// [`TlsStream::held`]: an estimate of their strings and lists, not an allocator count.
pub const FACTS_ALLOWANCE: usize = 1024;

impl TlsStream {
    /// Heap bytes this direction holds (for the pipeline's memory budget): the partial record
    /// and message buffers as allocated, plus [`FACTS_ALLOWANCE`] per parsed hello and
    /// certificate.
    pub fn held(&self) -> usize {
        let f = &self.facts;
        let sets = usize::from(f.client_hello.is_some()) + usize::from(f.server_hello.is_some()) + f.certs.len();
        // A CertificateRequest's names may exceed the allowance (16 of up to 256 characters).
        let cr =
            f.cert_request.as_ref().map_or(0, |c| FACTS_ALLOWANCE + c.ca_names.iter().map(String::len).sum::<usize>());
        self.rec.capacity() + self.hs.capacity() + sets * FACTS_ALLOWANCE + cr
    }

    /// Is there nothing more to learn from this direction?
    pub fn finished(&self) -> bool {
        matches!(self.state, State::Done | State::NotTls)
    }

    /// Feed contiguous bytes of the flow head.
    pub fn feed(&mut self, data: &[u8], ts_ns: u64) {
        if self.finished() || data.is_empty() {
            return;
        }
        if self.state == State::Start {
            self.facts.first_ts_ns = ts_ns;
        }
        if self.state == State::Start && self.upgradable && !self.rec.is_empty() && starts_handshake(data) {
            // A short clear reply (PostgreSQL's one-byte 'S') waited for more bytes; the
            // segment that follows opens the TLS handshake, so the wait was plaintext.
            self.facts.plaintext_prefix += self.rec.len() as u32;
            self.rec.clear();
        }
        if self.rec.is_empty() {
            let used = self.records(data);
            if !self.finished() {
                self.rec.extend_from_slice(&data[used..]);
            }
        } else {
            let mut rec = std::mem::take(&mut self.rec);
            rec.extend_from_slice(data);
            let used = self.records(&rec);
            rec.drain(..used);
            if !self.finished() {
                self.rec = rec;
            }
        }
    }

    /// Feed handshake-layer bytes that come without a record layer (QUIC CRYPTO frames,
    /// reassembled in order): messages split anywhere are put together as from records.
    pub fn feed_handshake(&mut self, data: &[u8], ts_ns: u64) {
        if self.finished() || data.is_empty() {
            return;
        }
        if self.state == State::Start {
            self.facts.first_ts_ns = ts_ns;
            self.state = State::Handshake;
        }
        self.record(CT_HANDSHAKE, data);
    }

    /// The carrier says this direction goes on in clear before any TLS (a TDS LOGIN7 or query
    /// after PRELOGIN): nothing to wait for.
    pub fn mark_clear(&mut self) {
        if self.state == State::Start {
            self.state = State::NotTls;
        }
    }

    /// Record a malformed-traffic observation found by a caller (at most a few per direction).
    pub fn note_anomaly(&mut self, id: &'static str, detail: String) {
        self.anomaly(id, detail);
    }

    /// The head ended (flow closed, budget used up, or end of input): learn what the partial
    /// record and message still tell (a certificate chain cut by the budget).
    pub fn finish(&mut self) {
        if self.state != State::Handshake {
            return;
        }
        if self.rec.len() > 5 && self.rec[0] == CT_HANDSHAKE {
            let frag = self.rec[5..].to_vec();
            self.hs.extend_from_slice(&frag);
        }
        if self.hs.len() > 4 && self.hs[0] == 11 && self.facts.certs.is_empty() {
            // A chain cut by the budget: whole certificates only, no trust verdict.
            self.facts.certs = cert::parse_chain(&self.hs[4..], None).certs;
            self.facts.chain_complete = false;
        }
        if self.facts.client_hello.is_none() && self.facts.server_hello.is_none() && !self.hs.is_empty() {
            self.anomaly("anomaly.truncated-handshake", format!("handshake message cut after {} bytes", self.hs.len()));
        }
        self.rec = Vec::new();
        self.hs = Vec::new();
    }

    fn anomaly(&mut self, id: &'static str, detail: String) {
        if self.facts.anomalies.len() < MAX_ANOMALIES {
            self.facts.anomalies.push(Anomaly { id, detail });
        }
    }

    /// Parse whole records from `b`; returns the bytes used.
    fn records(&mut self, b: &[u8]) -> usize {
        let mut pos = 0;
        while !self.finished() {
            let r = &b[pos..];
            if r.len() < 5 {
                // SSLv2 headers are 2 bytes, but an SSLv2 hello is longer than 5 anyway.
                return pos;
            }
            if self.state == State::Start && r[0] & 0x80 != 0 && (r[2] == 1 || r[2] == 4) {
                let len = (((r[0] & 0x7f) as usize) << 8) | r[1] as usize;
                if r.len() < 2 + len {
                    return pos;
                }
                self.sslv2(&r[2..2 + len]);
                pos += 2 + len;
                continue;
            }
            let (ct, major, len) = (r[0], r[1], u16::from_be_bytes([r[3], r[4]]) as usize);
            let valid = (CT_CCS..=CT_HEARTBEAT).contains(&ct) && major == 3 && len <= MAX_RECORD;
            if !valid {
                if self.state == State::Start && self.upgradable {
                    // Plaintext before the upgrade: counted, never kept.
                    self.facts.plaintext_prefix += (b.len() - pos) as u32;
                    return b.len();
                } else if self.state == State::Start {
                    self.state = State::NotTls;
                } else {
                    self.anomaly(
                        "anomaly.malformed-record",
                        format!("invalid record header: type {ct}, version {major}.{}, length {len}", r[2]),
                    );
                    self.state = State::Done;
                }
                return pos;
            }
            if self.state == State::Start {
                if ct != CT_HANDSHAKE && ct != CT_ALERT {
                    // Joined mid-session: encrypted records, nothing to learn.
                    self.state = State::Done;
                    return pos;
                }
                self.state = State::Handshake;
            }
            if ct == CT_APPDATA {
                // Encrypted from here on: the header says so, the body is not needed (the
                // kernel forwards no byte past this header).
                self.facts.app_data = true;
                self.state = State::Done;
                return pos;
            }
            if r.len() < 5 + len {
                return pos;
            }
            self.record(ct, &r[5..5 + len]);
            pos += 5 + len;
        }
        pos
    }

    fn record(&mut self, ct: u8, frag: &[u8]) {
        match ct {
            CT_HANDSHAKE if self.facts.ccs => {} // encrypted Finished
            CT_HANDSHAKE => {
                if self.hs.is_empty() {
                    let used = self.messages(frag);
                    self.hs.extend_from_slice(&frag[used..]);
                } else {
                    let mut hs = std::mem::take(&mut self.hs);
                    hs.extend_from_slice(frag);
                    let used = self.messages(&hs);
                    hs.drain(..used);
                    self.hs = hs;
                }
            }
            // After a HelloRetryRequest a TLS 1.3 server may send its compatibility CCS
            // before the real ServerHello, which still comes in clear.
            CT_CCS if self.facts.hello_retry.is_some() && self.facts.server_hello.is_none() => {}
            CT_CCS => {
                self.facts.ccs = true;
                // TLS 1.3 middlebox-compat CCS: the rest is encrypted too.
                self.state = State::Done;
            }
            // Alerts after ChangeCipherSpec are encrypted; at most MAX_ALERTS kept.
            CT_ALERT if !self.facts.ccs && frag.len() == 2 && self.facts.alerts.len() < MAX_ALERTS => {
                self.facts.alerts.push(Alert { level: frag[0], description: frag[1] });
            }
            CT_ALERT => {}
            CT_APPDATA => {
                self.facts.app_data = true;
                self.state = State::Done;
            }
            CT_HEARTBEAT => self.heartbeat(frag),
            _ => {}
        }
    }

    /// Heartbeat in clear: a request whose claimed payload exceeds the record is Heartbleed.
    fn heartbeat(&mut self, frag: &[u8]) {
        if frag.len() >= 3 && frag[0] == 1 {
            let claimed = u16::from_be_bytes([frag[1], frag[2]]) as usize;
            if claimed + 3 + 16 > frag.len() {
                let detail =
                    format!("heartbeat request claims {claimed} bytes in a {}-byte record (CVE-2014-0160)", frag.len());
                self.anomaly("anomaly.heartbleed", detail);
                return;
            }
        }
        self.anomaly("anomaly.heartbeat", format!("heartbeat record of {} bytes in clear", frag.len()));
    }

    /// Parse whole handshake messages from `b`; returns the bytes used.
    fn messages(&mut self, b: &[u8]) -> usize {
        let mut pos = 0;
        while b.len() - pos >= 4 {
            let h = &b[pos..];
            let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            if h.len() < 4 + len {
                break;
            }
            self.message(h[0], &h[4..4 + len]);
            pos += 4 + len;
        }
        pos
    }

    fn message(&mut self, ty: u8, body: &[u8]) {
        match ty {
            1 if self.facts.client_hello.is_none() => match hello::parse_client_hello(body) {
                Some(ch) => self.facts.client_hello = Some(ch),
                None => self
                    .anomaly("anomaly.malformed-handshake", format!("unparsable ClientHello of {} bytes", body.len())),
            },
            2 => match hello::parse_server_hello(body) {
                Some(sh) if sh.hello_retry => self.facts.hello_retry = Some(sh),
                Some(sh) if self.facts.server_hello.is_none() => self.facts.server_hello = Some(sh),
                Some(_) => {}
                None => self
                    .anomaly("anomaly.malformed-handshake", format!("unparsable ServerHello of {} bytes", body.len())),
            },
            6 => self.facts.hello_retry = hello::parse_draft_hello_retry(body),
            11 if self.facts.certs.is_empty() && body.get(..3) == Some(&[0, 0, 0]) => self.facts.cert_empty = true,
            11 if self.facts.certs.is_empty() => {
                let chain = cert::parse_chain(body, self.trust.as_deref());
                self.facts.certs = chain.certs;
                self.facts.chain_complete = chain.complete;
                self.facts.chain_trust = chain.trust;
            }
            12 => self.facts.kx = self.server_key_exchange(body),
            13 if self.facts.cert_request.is_none() => {
                let tls12 = self.facts.server_hello.as_ref().is_some_and(|sh| sh.negotiated_version() == 0x0303);
                match certreq::parse(body, tls12) {
                    Some(cr) => self.facts.cert_request = Some(cr),
                    None => self.anomaly(
                        "anomaly.malformed-handshake",
                        format!("unparsable CertificateRequest of {} bytes", body.len()),
                    ),
                }
            }
            14 => self.facts.server_hello_done = true,
            _ => {}
        }
    }

    /// ServerKeyExchange: DH prime size (DHE) or named curve (ECDHE), per the suite's kx.
    fn server_key_exchange(&self, body: &[u8]) -> KxParams {
        use tls_parser::TlsCipherKx;
        let kx = self.facts.server_hello.as_ref().and_then(|sh| super::names::suite(sh.cipher)).map(|c| c.kx);
        match kx {
            Some(TlsCipherKx::Dhe) | Some(TlsCipherKx::Dh) => {
                // ServerDHParams: opaque dh_p<1..2^16-1>, ...
                let plen = body.get(..2).map(|s| u16::from_be_bytes([s[0], s[1]]) as usize).unwrap_or(0);
                let p = body.get(2..2 + plen).unwrap_or(&[]);
                let lead = p.iter().take_while(|b| **b == 0).count();
                let bits = p.get(lead).map(|b| (p.len() - lead - 1) as u32 * 8 + (8 - b.leading_zeros()));
                KxParams { dh_prime_bits: bits, named_group: None }
            }
            Some(TlsCipherKx::Ecdhe) | Some(TlsCipherKx::Ecdh) if body.first() == Some(&3) => {
                KxParams { dh_prime_bits: None, named_group: body.get(1..3).map(|s| u16::from_be_bytes([s[0], s[1]])) }
            }
            _ => KxParams::default(),
        }
    }

    /// An SSLv2-format record (client or server hello; the rest of SSLv2 is encrypted).
    fn sslv2(&mut self, msg: &[u8]) {
        self.state = State::Handshake;
        match msg.first() {
            Some(1) => match hello::parse_sslv2_client_hello(msg) {
                Some(ch) => self.facts.client_hello = Some(ch),
                None => self.anomaly("anomaly.malformed-handshake", "unparsable SSLv2 ClientHello".into()),
            },
            Some(4) => {
                self.facts.server_hello = hello::parse_sslv2_server_hello(msg);
                if let Some(c) = hello::sslv2_server_certificate(msg).and_then(cert::parse_cert) {
                    self.facts.certs = vec![c];
                    self.facts.chain_complete = true;
                }
                // Everything after SERVER-HELLO in SSLv2 is encrypted.
                self.state = State::Done;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ct: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ct, 3, 3];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn not_tls() {
        let mut s = TlsStream::default();
        s.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1);
        assert_eq!(s.state, State::NotTls);
    }

    #[test]
    fn upgradable_skips_plaintext_until_tls() {
        let mut s = TlsStream { upgradable: true, ..Default::default() };
        s.feed(b"220 mail.example ESMTP\r\n", 1);
        s.feed(b"220 2.0.0 Ready to start TLS\r\n", 2);
        assert_eq!(s.state, State::Start);
        s.feed(&record(CT_ALERT, &[2, 40]), 3);
        assert_eq!(s.facts.alerts.len(), 1);
        assert_eq!(s.facts.plaintext_prefix, 54);
    }

    #[test]
    fn upgradable_one_byte_reply_then_tls() {
        // PostgreSQL: the server answers an SSLRequest with the single byte 'S', then TLS.
        let mut s = TlsStream { upgradable: true, ..Default::default() };
        s.feed(b"S", 1);
        assert_eq!(s.state, State::Start);
        s.feed(&record(CT_HANDSHAKE, &[2, 0, 0, 0]), 2);
        assert_eq!(s.state, State::Handshake);
        assert_eq!(s.facts.plaintext_prefix, 1);
        assert!(s.facts.anomalies.iter().all(|a| a.id != "anomaly.malformed-record"), "{:?}", s.facts.anomalies);
    }

    #[test]
    fn alert_then_ccs() {
        let mut s = TlsStream::default();
        let mut b = record(CT_ALERT, &[2, 70]);
        b.extend(record(CT_CCS, &[1]));
        s.feed(&b, 1);
        assert_eq!(s.facts.alerts, vec![Alert { level: 2, description: 70 }]);
        assert!(s.facts.ccs);
        assert!(s.finished());
    }

    #[test]
    fn heartbleed_request() {
        let mut s = TlsStream::default();
        let mut b = record(CT_HANDSHAKE, &[14, 0, 0, 0]);
        b.extend(record(CT_HEARTBEAT, &[1, 0x40, 0x00]));
        s.feed(&b, 1);
        assert!(s.facts.server_hello_done);
        assert_eq!(s.facts.anomalies[0].id, "anomaly.heartbleed");
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 7;
        for len in 0..300 {
            let mut s = TlsStream::default();
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            if len > 5 {
                b[0] = 22;
                b[1] = 3;
            }
            for chunk in b.chunks(7) {
                s.feed(chunk, 1);
            }
            s.finish();
        }
    }
}
