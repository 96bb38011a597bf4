//! Flow classifier, shared stage: what a TCP flow's first payload bytes make of it (TLS,
//! plaintext candidate, ignored) and whether they are a client's first flight, decided by the
//! same code in the kernel (inlined into the eBPF programs) and in the agent's replay model.
//! Must never index without a bound the compiler can see, loop without a constant bound, or
//! look at more than [`FLOW_HEAD_LEN`] bytes: the verifier has to accept it.
use crate::{flow_kind, KernelConfig, SIGNATURE_LEN};

/// Bytes of a flow's first payload the flow classifier looks at (the kernel copies no more).
pub const FLOW_HEAD_LEN: usize = SIGNATURE_LEN;

/// TLS record content types the classifier and the kernel's record walk know.
pub mod tls_content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
    pub const HEARTBEAT: u8 = 24;
}

/// The first bytes of a payload as the flow classifier sees them: up to [`FLOW_HEAD_LEN`]
/// bytes, zero-padded, and how many are real. The kernel fills it from the packet, the agent
/// from reassembled stream bytes; both then ask the same questions of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowHead {
    pub bytes: [u8; FLOW_HEAD_LEN],
    /// Real bytes in `bytes` (0..=FLOW_HEAD_LEN); the rest are zero.
    pub len: u32,
}

impl FlowHead {
    /// The first (at most [`FLOW_HEAD_LEN`]) bytes of `first`.
    pub fn new(first: &[u8]) -> Self {
        let mut h = FlowHead::default();
        for (dst, src) in h.bytes.iter_mut().zip(first) {
            *dst = *src;
            h.len += 1;
        }
        h
    }

    /// A TLS handshake or alert record (TLS 1.x / SSLv3), or an SSLv2 ClientHello/ServerHello.
    #[inline(always)]
    pub fn is_tls(&self) -> bool {
        let [b0, b1, b2, ..] = self.bytes;
        let tls = (b0 == tls_content::HANDSHAKE || b0 == tls_content::ALERT) && b1 == 3 && b2 <= 4;
        let sslv2 = b0 & 0x80 != 0 && (b2 == 1 || b2 == 4);
        self.len >= 3 && (tls || sslv2)
    }

    /// A client's first flight: a TLS handshake record whose first message is a ClientHello,
    /// or an SSLv2 ClientHello. Decides the budget of a direction whose role no SYN told.
    #[inline(always)]
    pub fn looks_like_client_hello(&self) -> bool {
        let [b0, b1, b2, _, _, b5, ..] = self.bytes;
        (self.len >= 6 && b0 == tls_content::HANDSHAKE && b1 == 3 && b5 == 1)
            || (self.len >= 3 && b0 & 0x80 != 0 && b2 == 1)
    }

    /// Does the head start with the first `sig_len` bytes of `sig`? Never for an empty or
    /// over-long signature.
    #[inline(always)]
    fn starts_with(&self, sig: &[u8; SIGNATURE_LEN], sig_len: u8) -> bool {
        let sig_len = u32::from(sig_len);
        if sig_len == 0 || sig_len > self.len || sig_len > SIGNATURE_LEN as u32 {
            return false;
        }
        // Compare as little-endian words under a mask: no loop, no index past the arrays.
        let mask = if sig_len == 8 { u64::MAX } else { (1u64 << (sig_len * 8)) - 1 };
        u64::from_le_bytes(self.bytes) & mask == u64::from_le_bytes(*sig) & mask
    }
}

/// [`FlowHead::looks_like_client_hello`] of a payload's first bytes.
pub fn looks_like_client_hello(first: &[u8]) -> bool {
    FlowHead::new(first).looks_like_client_hello()
}

impl KernelConfig {
    /// The decision on a flow's first payload (stream byte 0 of whichever side spoke first),
    /// made by the kernel and by the agent's model of it alike: [`flow_kind::TLS`] for a TLS
    /// handshake/alert record or an SSLv2 hello, [`flow_kind::PLAINTEXT`] when either of
    /// `ports` is a candidate or the head starts with a signature, else [`flow_kind::IGNORED`].
    /// Bounded loops and no panicking index: the kernel runs it inlined.
    #[inline(always)]
    pub fn classify_head(&self, head: &FlowHead, ports: [u16; 2]) -> u8 {
        if head.is_tls() {
            return flow_kind::TLS;
        }
        // Iterators over the fixed-size arrays, cut to the configured counts: the loops are
        // bounded by the arrays' lengths and no index can fail (a failed bounds check would
        // leave a panic path the verifier refuses).
        let n_ports = self.n_ports as usize;
        if self.ports.iter().take(n_ports).any(|&p| p == ports[0] || p == ports[1]) {
            return flow_kind::PLAINTEXT;
        }
        let n_sigs = self.n_signatures as usize;
        let mut sigs = self.signatures.iter().zip(&self.signature_lens).take(n_sigs);
        if sigs.any(|(sig, &len)| head.starts_with(sig, len)) {
            return flow_kind::PLAINTEXT;
        }
        flow_kind::IGNORED
    }

    /// [`KernelConfig::classify_head`] of a first payload's first bytes (the agent's side).
    pub fn classify(&self, first: &[u8], ports: [u16; 2]) -> u8 {
        self.classify_head(&FlowHead::new(first), ports)
    }
}

/// Does a UDP payload start with a clear DTLS record (RFC 6347 §4.1, RFC 9147 §4): content
/// type ChangeCipherSpec, Alert or Handshake (20, 21, 22), version DTLS 1.0, 1.2 or 1.3's
/// 0xfefc? The kernel forwards these datagrams on any port; handshakes open a flow in the
/// agent, the ChangeCipherSpec and alerts of an open flow tell how it ended.
pub const fn dtls_candidate(first: &[u8]) -> bool {
    first.len() >= 3 && matches!(first[0], 20..=22) && first[1] == 0xfe && matches!(first[2], 0xff | 0xfd | 0xfc)
}

#[cfg(test)]
mod tests {
    use super::{dtls_candidate, looks_like_client_hello, FlowHead};
    use crate::{flow_kind, KernelConfig, MAX_CANDIDATE_PORTS, MAX_SIGNATURES};

    #[test]
    fn classify_first_payloads() {
        let k = KernelConfig::default_config();
        let cases: [(&[u8], u16, u8); 20] = [
            (b"\x16\x03\x01\x02\x00\x01", 40_000, flow_kind::TLS),
            (b"\x80\x2e\x01\x00\x02", 40_000, flow_kind::TLS),
            (b"\x0bMSH|^~\\&|", 6661, flow_kind::PLAINTEXT),
            (b"\x0bFHS|", 6661, flow_kind::PLAINTEXT),
            (b"MSH#$%\\&#APP", 5000, flow_kind::PLAINTEXT),
            (b"BHS|^~\\&", 5000, flow_kind::PLAINTEXT),
            (b"\x01\x00\x00\x00\x00\xcd\x00\x01", 4242, flow_kind::PLAINTEXT),
            (b"POST /fhir/Patient HTTP/1.1", 9000, flow_kind::PLAINTEXT),
            (b"HTTP/1.1 200 OK", 9000, flow_kind::PLAINTEXT),
            (b"ISA*00*", 40_123, flow_kind::PLAINTEXT),
            // Server-first protocols are candidates by port only.
            (b"220 mail.example ESMTP", 25, flow_kind::PLAINTEXT),
            (b"220 mail.example ESMTP", 2525, flow_kind::IGNORED),
            // SSH: by signature on any port, by port 22 whatever speaks first.
            (b"SSH-2.0-OpenSSH_9.2", 2222, flow_kind::PLAINTEXT),
            (b"SSH-1.99-Cisco-1.25", 40_022, flow_kind::PLAINTEXT),
            (b"", 22, flow_kind::PLAINTEXT),
            (b"SSX-2.0-", 2222, flow_kind::IGNORED),
            // SQL Server: a TDS PRELOGIN (MS-TDS 4.1's sample) on any port; 1433 whatever comes.
            (b"\x12\x01\x00\x2f\x00\x00\x01\x00", 40_433, flow_kind::PLAINTEXT),
            (b"\x12\x01\x01\x2f\x00\x00\x01\x00", 40_433, flow_kind::IGNORED),
            (b"\x10\x01\x00\x90\x00\x00\x01\x00", 1433, flow_kind::PLAINTEXT),
            // TDS 8.0 (strict) opens with a raw ClientHello: TLS on 1433 as anywhere.
            (b"\x16\x03\x01\x02\x00\x01", 1433, flow_kind::TLS),
        ];
        for (first, port, want) in cases {
            assert_eq!(k.classify(first, [port, 51_000]), want, "{first:?} on {port}");
        }
        // The PRELOGIN signature fills the last free slot and matches no other signature's
        // payloads (nor they it).
        assert_eq!(k.n_signatures as usize, MAX_SIGNATURES);
        let tds = b"\x12\x01\x00";
        for sig in crate::DEFAULT_SIGNATURES.iter().filter(|s| *s != tds) {
            assert!(!sig.starts_with(tds) && !tds.starts_with(sig), "{sig:?}");
        }
        let mut k2 = k;
        k2.add_port(2525).unwrap();
        assert_eq!(k2.classify(b"220 mail.example ESMTP", [51_000, 2525]), flow_kind::PLAINTEXT);
    }

    #[test]
    fn classify_tls_records() {
        let k = KernelConfig::default_config();
        let ports = [40_000, 51_000];
        let cases: [(&[u8], u8); 12] = [
            // Handshake record, TLS 1.0 .. 1.3 record versions (and the reserved 3.4).
            (b"\x16\x03\x00\x00\x2e", flow_kind::TLS),
            (b"\x16\x03\x03\x00\x7a\x02", flow_kind::TLS),
            (b"\x16\x03\x04", flow_kind::TLS),
            (b"\x16\x03\x05\x00\x2e", flow_kind::IGNORED),
            (b"\x16\x02\x01\x00\x2e", flow_kind::IGNORED),
            // An alert as the first record (a server refusing at once).
            (b"\x15\x03\x03\x00\x02\x02\x28", flow_kind::TLS),
            // Application data, CCS or heartbeat first: not a flow start worth following.
            (b"\x17\x03\x03\x00\x20", flow_kind::IGNORED),
            (b"\x14\x03\x03\x00\x01\x01", flow_kind::IGNORED),
            (b"\x18\x03\x03\x00\x01", flow_kind::IGNORED),
            // SSLv2 ClientHello (type 1) and ServerHello (type 4); type 2 is not a hello.
            (b"\x80\x2e\x01\x00\x02\x00\x15", flow_kind::TLS),
            (b"\x83\x6c\x04\x00\x01", flow_kind::TLS),
            (b"\x80\x2e\x02\x00\x02", flow_kind::IGNORED),
        ];
        for (first, want) in cases {
            assert_eq!(k.classify(first, ports), want, "{first:?}");
        }
    }

    #[test]
    fn classify_short_heads() {
        let k = KernelConfig::default_config();
        let ports = [40_000, 51_000];
        // Fewer than 3 bytes are never TLS, and zero padding never completes a match.
        assert_eq!(k.classify(b"\x16\x03", ports), flow_kind::IGNORED);
        assert_eq!(k.classify(b"\x16", ports), flow_kind::IGNORED);
        assert_eq!(k.classify(b"\x80\x2e", ports), flow_kind::IGNORED);
        // A signature longer than the head does not match ("GET " needs 4 bytes) ...
        assert_eq!(k.classify(b"GET", ports), flow_kind::IGNORED);
        assert_eq!(k.classify(b"\x01", ports), flow_kind::IGNORED);
        // ... one as long as the head does, up to the full 8 bytes.
        assert_eq!(k.classify(b"GET ", ports), flow_kind::PLAINTEXT);
        assert_eq!(k.classify(b"\x0b", ports), flow_kind::PLAINTEXT);
        assert_eq!(k.classify(b"OPTIONS ", ports), flow_kind::PLAINTEXT);
        assert_eq!(k.classify(b"OPTIONS", ports), flow_kind::IGNORED);
        assert_eq!(k.classify(b"OPTIONS * HTTP/1.1", ports), flow_kind::PLAINTEXT);
        // Only the first 8 bytes count.
        assert_eq!(k.classify(b"\x00\x00\x00\x00\x00\x00\x00\x00GET ", ports), flow_kind::IGNORED);
        // An empty payload on a candidate port is still a candidate (server-first protocols).
        assert_eq!(k.classify(b"", [80, 51_000]), flow_kind::PLAINTEXT);
    }

    #[test]
    fn classify_ports_either_end() {
        let k = KernelConfig::default_config();
        for (ports, want) in [
            ([51_000, 5432], flow_kind::PLAINTEXT),
            ([5432, 51_000], flow_kind::PLAINTEXT),
            ([11112, 104], flow_kind::PLAINTEXT),
            ([443, 51_000], flow_kind::IGNORED),
            ([0, 0], flow_kind::IGNORED),
        ] {
            assert_eq!(k.classify(b"\xde\xad\xbe\xef", ports), want, "{ports:?}");
        }
        // Only the first n_ports entries count; a count past the array's end is clamped.
        let mut k2 = KernelConfig::default_config();
        k2.n_ports = 0;
        assert_eq!(k2.classify(b"junk", [51_000, 5432]), flow_kind::IGNORED);
        k2.n_ports = u32::MAX;
        k2.ports[MAX_CANDIDATE_PORTS - 1] = 7;
        assert_eq!(k2.classify(b"junk", [7, 51_000]), flow_kind::PLAINTEXT);
        assert_eq!(k2.classify(b"junk", [8, 51_000]), flow_kind::IGNORED);
        let mut k3 = KernelConfig::default_config();
        for p in 1..=MAX_CANDIDATE_PORTS as u16 {
            let _ = k3.add_port(60_000 + p);
        }
        assert_eq!(k3.add_port(1), Err(MAX_CANDIDATE_PORTS));
        assert_eq!(k3.add_port(80), Ok(()), "already listed");
    }

    #[test]
    fn classify_signatures_from_config() {
        let mut k = KernelConfig::default_config();
        k.n_signatures = 0;
        assert_eq!(k.classify(b"GET / HTTP/1.1", [40_000, 51_000]), flow_kind::IGNORED);
        // Zero-length and over-long (> 8) entries never match; the count is clamped.
        k.n_signatures = u32::MAX;
        k.signature_lens = [0; MAX_SIGNATURES];
        assert_eq!(k.classify(b"GET / HTTP/1.1", [40_000, 51_000]), flow_kind::IGNORED);
        k.signatures[MAX_SIGNATURES - 1] = *b"SSH-2.0-";
        k.signature_lens[MAX_SIGNATURES - 1] = 9;
        assert_eq!(k.classify(b"SSH-2.0-OpenSSH", [40_000, 2222]), flow_kind::IGNORED);
        k.signature_lens[MAX_SIGNATURES - 1] = 8;
        assert_eq!(k.classify(b"SSH-2.0-OpenSSH", [40_000, 2222]), flow_kind::PLAINTEXT);
        k.signature_lens[MAX_SIGNATURES - 1] = 4;
        assert_eq!(k.classify(b"SSH-1.99", [40_000, 2222]), flow_kind::PLAINTEXT);
        assert_eq!(k.classify(b"SSX-2.0-", [40_000, 2222]), flow_kind::IGNORED);
        // TLS wins over a signature that would match it.
        k.signatures[0] = *b"\x16\x03\x01\0\0\0\0\0";
        k.signature_lens[0] = 3;
        assert_eq!(k.classify(b"\x16\x03\x01\x02\x00", [40_000, 80]), flow_kind::TLS);
    }

    #[test]
    fn dtls_candidates() {
        for v in [[0xfe, 0xff], [0xfe, 0xfd], [0xfe, 0xfc]] {
            for ct in [20, 21, 22] {
                assert!(dtls_candidate(&[ct, v[0], v[1], 0, 0]));
            }
            assert!(!dtls_candidate(&[23, v[0], v[1]]), "application data is encrypted");
            assert!(!dtls_candidate(&[22, v[0]]), "short");
        }
        // TLS over UDP is not DTLS; QUIC long headers and DTLS 1.3 unified headers neither.
        for first in [[22, 3, 3], [22, 0xfe, 0xfe], [0xc3, 0, 0], [0x2f, 0xfe, 0xfd]] {
            assert!(!dtls_candidate(&first));
        }
    }

    #[test]
    fn client_hello_sniff() {
        let cases: [(&[u8], bool); 9] = [
            (b"\x16\x03\x01\x02\x00\x01\x00\x01", true),
            (b"\x16\x03\x03\x00\x7a\x02\x00", false),
            (b"\x16\x03\x01\x02\x00", false),
            (b"\x15\x03\x03\x00\x02\x01", false),
            (b"\x80\x2e\x01\x00\x02", true),
            (b"\x80\x2e\x04\x00\x01", false),
            (b"\x80\x2e", false),
            (b"GET / HTTP/1.1", false),
            (b"", false),
        ];
        for (first, want) in cases {
            assert_eq!(looks_like_client_hello(first), want, "{first:?}");
        }
    }

    #[test]
    fn flow_head_keeps_eight_bytes() {
        let h = FlowHead::new(b"0123456789");
        assert_eq!((h.bytes, h.len), (*b"01234567", 8));
        let h = FlowHead::new(b"ab");
        assert_eq!((h.bytes, h.len), (*b"ab\0\0\0\0\0\0", 2));
        assert_eq!(FlowHead::new(b""), FlowHead::default());
    }
}
