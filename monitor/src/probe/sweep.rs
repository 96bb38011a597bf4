//! Probe, version sweep (opt-in): does a server still accept SSLv3, TLS 1.0, TLS 1.1 or a weak
//! TLS 1.2 suite when a client offers only that? One connection per offer: a hand-built
//! ClientHello, the answer read up to its ServerHello or an alert, then a fatal alert and close.
//! Must never send application data nor do any cryptography (no key exchange, no Finished),
//! never hold more than [`MAX_ANSWER`] bytes of an answer, and never panic on one.
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tls_parser::{
    parse_tls_raw_record, parse_tls_record_header, parse_tls_record_with_header, TlsAlertSeverity, TlsMessage,
    TlsRecordType, MAX_RECORD_LEN,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use crate::inspect::tls::hello::{parse_server_hello, EXT_RENEGOTIATION_INFO, EXT_SNI};

/// One ClientHello of the sweep: the only version and the only suites it offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    pub label: &'static str,
    pub version: u16,
    pub suites: &'static [u16],
}

/// SSLv3 as OpenSSL 0.9.8 and IE 6 sent it: DHE and RSA with AES, 3DES, RC4, DES and EXPORT;
/// the renegotiation SCSV (RFC 5746 §3.3) stands in for the extension SSLv3 hellos carry none of.
const SSL3_SUITES: &[u16] = &[
    0x0039, 0x0038, 0x0035, // DHE_RSA, DHE_DSS, RSA _WITH_AES_256_CBC_SHA
    0x0033, 0x0032, 0x002f, // … _WITH_AES_128_CBC_SHA
    0x0016, 0x0013, 0x000a, // DHE_RSA, DHE_DSS, RSA _WITH_3DES_EDE_CBC_SHA
    0x0005, 0x0004, // RSA_WITH_RC4_128_SHA, _MD5
    0x0015, 0x0012, 0x0009, // DHE_RSA, DHE_DSS, RSA _WITH_DES_CBC_SHA
    0x0014, 0x0011, 0x0008, // DHE_RSA, DHE_DSS, RSA _EXPORT_WITH_DES40_CBC_SHA
    0x0006, 0x0003, // RSA_EXPORT_WITH_RC2_CBC_40_MD5, RSA_EXPORT_WITH_RC4_40_MD5
    0x00ff, // TLS_EMPTY_RENEGOTIATION_INFO_SCSV
];

/// TLS 1.0 and 1.1 as Firefox 27 and OpenSSL 1.0.1 sent them: ECDHE, DHE, then RSA; AES-CBC,
/// 3DES, RC4.
const TLS10_SUITES: &[u16] = &[
    0xc00a, 0xc009, 0xc014, 0xc013, // ECDHE_ECDSA, ECDHE_RSA _WITH_AES_256/128_CBC_SHA
    0x0039, 0x0033, 0x0035, 0x002f, // DHE_RSA, RSA _WITH_AES_256/128_CBC_SHA
    0xc008, 0xc012, 0x0016, 0x000a, // ECDHE_ECDSA, ECDHE_RSA, DHE_RSA, RSA _WITH_3DES_EDE_CBC_SHA
    0xc007, 0xc011, 0x0005, 0x0004, // ECDHE_ECDSA, ECDHE_RSA, RSA _WITH_RC4_128_SHA, RSA_…_MD5
];

/// TLS 1.2, nothing but NULL encryption, EXPORT and single DES.
const TLS12_NULL_EXPORT_DES: &[u16] = &[
    0x003b, 0x0002, 0x0001, 0xc006, 0xc010, // RSA_WITH_NULL_SHA256/_SHA/_MD5, ECDHE_ECDSA/RSA_WITH_NULL_SHA
    0x0014, 0x0011, 0x0008, 0x0006, 0x0003, // the EXPORT suites of SSL3_SUITES
    0x0015, 0x0012, 0x0009, // DHE_RSA, DHE_DSS, RSA _WITH_DES_CBC_SHA
];
const TLS12_RC4: &[u16] = &[0xc007, 0xc011, 0x0005, 0x0004];
const TLS12_3DES: &[u16] = &[0xc008, 0xc012, 0x0016, 0x000a];
/// Static RSA key exchange (no forward secrecy) with CBC.
const TLS12_RSA_CBC: &[u16] = &[0x003d, 0x0035, 0x003c, 0x002f]; // AES_256/128 _CBC_SHA256/_SHA

/// The offers of the sweep, in order: SSLv3, TLS 1.0, TLS 1.1 (each with the suites a client
/// of that era sent), then TLS 1.2 with only weak suites — one offer per weakness, worst first,
/// so a server's preference for one (say static RSA) cannot hide that it takes another (RC4).
pub const SWEEP: &[Offer] = &[
    Offer { label: "SSLv3", version: 0x0300, suites: SSL3_SUITES },
    Offer { label: "TLS 1.0", version: 0x0301, suites: TLS10_SUITES },
    Offer { label: "TLS 1.1", version: 0x0302, suites: TLS10_SUITES },
    Offer { label: "TLS 1.2 NULL/EXPORT/DES", version: 0x0303, suites: TLS12_NULL_EXPORT_DES },
    Offer { label: "TLS 1.2 RC4", version: 0x0303, suites: TLS12_RC4 },
    Offer { label: "TLS 1.2 3DES", version: 0x0303, suites: TLS12_3DES },
    Offer { label: "TLS 1.2 static-RSA CBC", version: 0x0303, suites: TLS12_RSA_CBC },
];

/// What a server answered one offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello: the version and suite the server chose (whatever was offered).
    Accepted { version: u16, cipher: u16 },
    /// A fatal alert or close_notify (its description), or a close or reset without any
    /// answer (`None`; the last warning alert, if one came first).
    Refused { alert: Option<u8> },
    /// No answer a TLS server gives: connect error, timeout, bytes that are not TLS.
    Failed(String),
}

/// Bytes of an answer read at most without a decision.
pub const MAX_ANSWER: usize = 16 * 1024;

const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
/// secp256r1, secp384r1, secp521r1; TLS 1.2 clients put x25519 first.
const GROUPS: &[u16] = &[0x0017, 0x0018, 0x0019];
const GROUPS_TLS12: &[u16] = &[0x001d, 0x0017, 0x0018, 0x0019];
/// RSA-PSS, ECDSA and PKCS#1 with SHA-256/384/512, then the SHA-1 pair of 2013-era clients.
const SIG_ALGS: &[u16] = &[0x0804, 0x0805, 0x0806, 0x0403, 0x0503, 0x0603, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201];
const ALERT_USER_CANCELED: u8 = 90;
const ALERT_HANDSHAKE_FAILURE: u8 = 40;

fn put_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}

/// One extension: type, length, data.
fn put_ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    put_u16(out, data.len());
    out.extend_from_slice(data);
}

fn u16_list(items: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 * items.len());
    put_u16(&mut out, 2 * items.len());
    items.iter().for_each(|v| out.extend_from_slice(&v.to_be_bytes()));
    out
}

/// The ClientHello bytes (record included) for one offer. Extensions as a client of the era
/// sent them: SSLv3 none but SNI (SSLv3 servers skip what follows the hello, RFC 6101 §5.6.1.2);
/// TLS 1.x renegotiation_info, and supported_groups and ec_point_formats when an ECC suite is
/// offered; TLS 1.2 also signature_algorithms; never supported_versions. SNI when `sni` is a
/// host name (an IP literal is not sent, RFC 6066 §3). The random comes from the system.
pub fn client_hello(offer: &Offer, sni: Option<&str>) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(name) = sni.filter(|n| !n.is_empty() && n.len() <= 253 && n.parse::<IpAddr>().is_err()) {
        let mut data = Vec::with_capacity(name.len() + 5);
        put_u16(&mut data, name.len() + 3);
        data.push(0); // host_name
        put_u16(&mut data, name.len());
        data.extend_from_slice(name.as_bytes());
        put_ext(&mut ext, EXT_SNI, &data);
    }
    if offer.version >= 0x0301 {
        put_ext(&mut ext, EXT_RENEGOTIATION_INFO, &[0]);
        if offer.suites.iter().any(|s| s >> 8 == 0xc0) {
            put_ext(
                &mut ext,
                EXT_SUPPORTED_GROUPS,
                &u16_list(if offer.version >= 0x0303 { GROUPS_TLS12 } else { GROUPS }),
            );
            put_ext(&mut ext, EXT_EC_POINT_FORMATS, &[1, 0]); // uncompressed
        }
    }
    if offer.version >= 0x0303 {
        put_ext(&mut ext, EXT_SIGNATURE_ALGORITHMS, &u16_list(SIG_ALGS));
    }
    let mut body = Vec::with_capacity(128 + ext.len());
    body.extend_from_slice(&offer.version.to_be_bytes());
    body.extend_from_slice(&hello_random());
    body.push(0); // no session id
    body.extend_from_slice(&u16_list(offer.suites));
    body.extend_from_slice(&[1, 0]); // compression: null only
    if !ext.is_empty() {
        put_u16(&mut body, ext.len());
        body.extend_from_slice(&ext);
    }
    // Record version 3.1 at most, as clients sent it (old servers balk at a higher one).
    let mut out = vec![22];
    out.extend_from_slice(&offer.version.min(0x0301).to_be_bytes());
    put_u16(&mut out, body.len() + 4);
    out.push(1); // client_hello
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&body);
    out
}

/// 32 random bytes. They are a nonce only (no key is ever derived from them), so should the
/// system source fail, the clock stands in rather than the probe failing.
fn hello_random() -> [u8; 32] {
    let mut r = [0u8; 32];
    if SystemRandom::new().fill(&mut r).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut x = t.as_nanos() as u64 | 1;
        for chunk in r.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_be_bytes());
        }
    }
    r
}

/// Where a parse of the answer stands.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Decided(Answer),
    /// More bytes needed. `between`: the bytes so far end between records and messages;
    /// `warning`: the last warning alert seen.
    More {
        between: bool,
        warning: Option<u8>,
    },
}

impl Verdict {
    /// The answer when the server closed (or reset) the connection here.
    fn at_close(self, received: usize) -> Answer {
        match self {
            Verdict::Decided(a) => a,
            Verdict::More { between: true, warning } => Answer::Refused { alert: warning },
            Verdict::More { between: false, .. } => Answer::Failed(format!(
                "the connection closed after {received} bytes, inside a record or message: no ServerHello nor alert"
            )),
        }
    }
}

/// Parse the server's answer bytes so far: `Some` once decided, `None` while more bytes are
/// needed. Never panics; decides `Failed` once [`MAX_ANSWER`] bytes brought no decision.
pub fn judge_answer(buf: &[u8]) -> Option<Answer> {
    match judge(buf) {
        Verdict::Decided(a) => Some(a),
        Verdict::More { .. } => None,
    }
}

fn failed(why: String) -> Verdict {
    Verdict::Decided(Answer::Failed(why))
}

fn judge(buf: &[u8]) -> Verdict {
    if let Some(b0 @ 0x80..) = buf.first() {
        return failed(format!("not TLS: an SSLv2-format answer (first byte {b0:#04x})"));
    }
    let mut rest = buf;
    // Handshake bytes not yet a whole message (a ServerHello may span records).
    let mut hs: Vec<u8> = Vec::new();
    let mut warning = None;
    while !rest.is_empty() {
        // Judge the header from its first bytes: garbage fails at once, not after 16 KiB.
        let (ty, major) = (rest[0], rest.get(1).copied().unwrap_or(3));
        if !(20..=24).contains(&ty) || major != 3 {
            let at = buf.len() - rest.len();
            return failed(match (20..=24).contains(&ty) {
                false => format!("not TLS: byte {at} ({ty:#04x}) opens no TLS record"),
                true => format!("not TLS: the record at byte {at} has version major {major}, not 3"),
            });
        }
        if let Ok((_, hdr)) = parse_tls_record_header(rest) {
            if hdr.len > MAX_RECORD_LEN {
                return failed(format!("a record of {} bytes, more than TLS allows", hdr.len));
            }
            match hdr.record_type {
                TlsRecordType::Handshake | TlsRecordType::Alert => {}
                other => return failed(format!("a {other:?} record before any ServerHello")),
            }
        }
        let (after, rec) = match parse_tls_raw_record(rest) {
            Ok(r) => r,
            Err(_) => break, // incomplete: any other error was ruled out above
        };
        rest = after;
        if rec.hdr.record_type == TlsRecordType::Alert {
            let alerts = match parse_tls_record_with_header(rec.data, &rec.hdr) {
                Ok(([], msgs)) => msgs,
                _ => return failed(format!("a malformed alert record of {} bytes", rec.data.len())),
            };
            for m in alerts {
                if let TlsMessage::Alert(a) = m {
                    if a.severity == TlsAlertSeverity::Fatal || a.code.0 == 0 {
                        return Verdict::Decided(Answer::Refused { alert: Some(a.code.0) });
                    }
                    warning = Some(a.code.0);
                }
            }
            continue;
        }
        hs.extend_from_slice(rec.data);
        let mut used = 0;
        while let [ty, a, b, c, ..] = hs[used..] {
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if len > MAX_ANSWER {
                return failed(format!("a handshake message (type {ty}) of {len} bytes announced"));
            }
            let Some(body) = hs.get(used + 4..used + 4 + len) else { break };
            used += 4 + len;
            match ty {
                0 => continue, // HelloRequest: nothing to answer before the ServerHello
                2 => {}
                _ => return failed(format!("a handshake message of type {ty} before any ServerHello")),
            }
            return Verdict::Decided(match parse_server_hello(body) {
                Some(sh) if sh.hello_retry => {
                    Answer::Failed("a HelloRetryRequest to a hello that offers no TLS 1.3".into())
                }
                Some(sh) => Answer::Accepted { version: sh.negotiated_version(), cipher: sh.cipher },
                None => Answer::Failed(format!("an unparsable ServerHello of {len} bytes")),
            });
        }
        hs.drain(..used);
    }
    if buf.len() >= MAX_ANSWER {
        return failed(format!("{} bytes without a ServerHello or a fatal alert", buf.len()));
    }
    Verdict::More { between: rest.is_empty() && hs.is_empty(), warning }
}

/// Connect, send the offer's hello, read until the answer is decided or `timeout` (for the
/// whole exchange) is over, close. After a ServerHello the server waits for our next flight:
/// it gets a fatal `user_canceled` alert (`handshake_failure` under SSLv3, which has no
/// user_canceled), so its log names a client that gave up on purpose, not a network fault;
/// the connection is then drained briefly so the close is a FIN, not a reset. Otherwise it is
/// just closed: the server already ended the exchange, or is no TLS server to talk to.
pub async fn try_offer(
    addr: SocketAddr,
    sni: Option<&str>,
    offer: &Offer,
    timeout: Duration,
    own: &super::Own,
) -> Answer {
    let deadline = Instant::now() + timeout;
    let mut stream = match timeout_at(deadline, own.connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Answer::Failed(format!("connect to {addr}: {e}")),
        Err(_) => return Answer::Failed(format!("connect to {addr}: no answer within {timeout:?}")),
    };
    let _ = stream.set_nodelay(true);
    match timeout_at(deadline, stream.write_all(&client_hello(offer, sni))).await {
        Ok(Ok(())) => {}
        // Reset before it took our hello: refused as a close would be.
        Ok(Err(e)) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
            return Answer::Refused { alert: None }
        }
        Ok(Err(e)) => return Answer::Failed(format!("sending the ClientHello to {addr}: {e}")),
        Err(_) => return Answer::Failed(format!("sending the ClientHello to {addr}: not done within {timeout:?}")),
    }
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let answer = loop {
        let verdict = judge(&buf);
        if let Verdict::Decided(a) = verdict {
            break a;
        }
        // Undecided means under MAX_ANSWER bytes: read no more than that.
        let room = MAX_ANSWER.saturating_sub(buf.len()).min(chunk.len());
        match timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Ok(Ok(0)) => break verdict.at_close(buf.len()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => break verdict.at_close(buf.len()),
            Ok(Err(e)) => break Answer::Failed(format!("reading the answer of {addr}: {e}")),
            Err(_) => {
                let n = buf.len();
                break Answer::Failed(format!("no ServerHello nor alert within {timeout:?} ({n} bytes received)"));
            }
        }
    };
    if let Answer::Accepted { version, .. } = answer {
        let (v, alert) = match version {
            0x0300 => (version, ALERT_HANDSHAKE_FAILURE),
            0x0301..=0x0303 => (version, ALERT_USER_CANCELED),
            _ => (offer.version.min(0x0301), ALERT_USER_CANCELED),
        };
        let [hi, lo] = v.to_be_bytes();
        let until = deadline.min(Instant::now() + Duration::from_millis(500));
        if let Ok(Ok(())) = timeout_at(until, stream.write_all(&[21, hi, lo, 0, 2, 2, alert])).await {
            let mut drained = 0;
            while let Ok(Ok(n @ 1..)) = timeout_at(until, stream.read(&mut chunk)).await {
                drained += n;
                if drained > 4 * MAX_ANSWER {
                    break;
                }
            }
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::tls::hello::parse_client_hello;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use tls_parser::{parse_tls_plaintext, TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite};
    use tls_parser::{TlsMessageHandshake, TlsVersion};

    /// The ServerHello record `openssl s_server -min_protocol TLSv1 -no_tls1_1 -no_tls1_2
    /// -cipher DEFAULT:@SECLEVEL=0` (OpenSSL 3.0.19, P-256 key) sent `openssl s_client -tls1`,
    /// from s_client's `-msg` dump: TLS 1.0, ECDHE_ECDSA_WITH_AES_256_CBC_SHA.
    const SERVER_HELLO_TLS10: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0x45, //
        0x02, 0x00, 0x00, 0x41, 0x03, 0x01, 0xaa, 0x02, 0xbf, 0x1a, 0x3a, 0x83, 0x60, 0x97, 0xce, 0xa0, //
        0xd2, 0x7d, 0xf1, 0x7c, 0x7e, 0x8c, 0xc4, 0x33, 0xa4, 0x68, 0xd1, 0xee, 0x7d, 0x39, 0x79, 0x12, //
        0x15, 0x80, 0x52, 0x74, 0xf5, 0x60, 0x00, 0xc0, 0x0a, 0x00, 0x00, 0x19, 0xff, 0x01, 0x00, 0x01, //
        0x00, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, //
        0x00, 0x00, 0x17, 0x00, 0x00,
    ];
    /// The answer of `openssl s_server -tls1_3` (3.0.19) to the same client: fatal protocol_version.
    const ALERT_PROTOCOL_VERSION: &[u8] = &[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46];
    const SNI: &str = "ehr.hospital.example";
    const TIMEOUT: Duration = Duration::from_secs(2);

    fn record(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ty, 3, 1];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn failed_with(a: Option<Answer>, words: &str) -> bool {
        matches!(&a, Some(Answer::Failed(m)) if m.contains(words))
    }

    #[test]
    fn hellos_parse_back_with_their_version_suites_and_sni() {
        for offer in SWEEP {
            let rec = client_hello(offer, Some(SNI));
            let (rest, plain) = parse_tls_plaintext(&rec).expect(offer.label);
            assert!(rest.is_empty(), "{}: {} bytes after the record", offer.label, rest.len());
            assert_eq!(plain.hdr.version, TlsVersion(offer.version.min(0x0301)));
            let [TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch))] = plain.msg.as_slice() else {
                panic!("{}: not one ClientHello: {:?}", offer.label, plain.msg);
            };
            assert_eq!(ch.version, TlsVersion(offer.version), "{}", offer.label);
            assert_eq!(ch.ciphers.iter().map(|c| c.0).collect::<Vec<_>>(), offer.suites, "{}", offer.label);
            let f = parse_client_hello(&rec[9..]).expect(offer.label);
            assert_eq!(f.sni.as_deref(), Some(SNI), "{}", offer.label);
            assert!(f.supported_versions.is_empty() && !f.extensions.contains(&0x002b), "{}", offer.label);
            assert_eq!(f.compression, [0]);
            let (tls, ecc) = (offer.version >= 0x0301, offer.suites.iter().any(|s| s >> 8 == 0xc0));
            assert_eq!(f.renegotiation_info, tls, "{}: renegotiation_info", offer.label);
            assert_eq!(f.scsv, !tls, "{}: the SCSV only in SSLv3", offer.label);
            assert_eq!(!f.groups.is_empty() && f.point_formats == [0], tls && ecc, "{}: ECC extensions", offer.label);
            assert_eq!(!f.sig_algs.is_empty(), offer.version == 0x0303, "{}: signature_algorithms", offer.label);
        }
        let tls10 = &SWEEP[1];
        let plain = parse_client_hello(&client_hello(tls10, None)[9..]).unwrap();
        assert!(plain.sni.is_none() && !plain.extensions.contains(&EXT_SNI));
        assert!(parse_client_hello(&client_hello(tls10, Some("192.0.2.7"))[9..]).unwrap().sni.is_none(), "IP literal");
        assert_ne!(client_hello(tls10, None)[11..43], client_hello(tls10, None)[11..43], "a fresh random each time");
    }

    #[test]
    fn offers_are_the_old_versions_then_weak_tls12_suites() {
        let versions: Vec<u16> = SWEEP.iter().map(|o| o.version).collect();
        assert_eq!(versions, [0x0300, 0x0301, 0x0302, 0x0303, 0x0303, 0x0303, 0x0303]);
        let suite = |id: u16| TlsCipherSuite::from_id(id).unwrap_or_else(|| panic!("{id:#06x} unknown to tls-parser"));
        for o in &SWEEP[..3] {
            let cs: Vec<_> = o.suites.iter().filter(|&&s| s != 0x00ff).map(|&s| suite(s)).collect();
            // What clients of the era offered: CBC, 3DES, RC4 — and nothing TLS 1.2 brought.
            assert!(
                cs.iter().any(|c| c.enc == TlsCipherEnc::Aes && c.enc_mode == TlsCipherEncMode::Cbc),
                "{}",
                o.label
            );
            assert!(cs.iter().any(|c| c.enc == TlsCipherEnc::TripleDes), "{}", o.label);
            assert!(cs.iter().any(|c| c.enc == TlsCipherEnc::Rc4), "{}", o.label);
            assert!(cs.iter().all(|c| matches!(c.mac, TlsCipherMac::HmacSha1 | TlsCipherMac::HmacMd5)), "{}", o.label);
        }
        for o in &SWEEP[3..] {
            for c in o.suites.iter().map(|&s| suite(s)) {
                let weak = matches!(c.enc, TlsCipherEnc::Null | TlsCipherEnc::Des | TlsCipherEnc::TripleDes)
                    || matches!(c.enc, TlsCipherEnc::Rc2 | TlsCipherEnc::Rc4)
                    || c.name.contains("EXPORT")
                    || (c.kx == TlsCipherKx::Rsa && c.enc_mode == TlsCipherEncMode::Cbc);
                assert!(weak, "{}: {} is not a weak suite", o.label, c.name);
            }
        }
    }

    #[test]
    fn a_real_server_hello_is_accepted_however_it_is_split() {
        let want = Some(Answer::Accepted { version: 0x0301, cipher: 0xc00a });
        for cut in 0..SERVER_HELLO_TLS10.len() {
            assert_eq!(judge_answer(&SERVER_HELLO_TLS10[..cut]), None, "cut at {cut}");
        }
        assert_eq!(judge_answer(SERVER_HELLO_TLS10), want);
        let then_cert = [SERVER_HELLO_TLS10, &[0x16, 0x03, 0x01, 0x01, 0xa1, 0x0b]].concat();
        assert_eq!(judge_answer(&then_cert), want, "followed by the start of the Certificate record");
        let msg = &SERVER_HELLO_TLS10[5..];
        for cut in 0..=msg.len() {
            let two = [record(22, &msg[..cut]), record(22, &msg[cut..])].concat();
            assert_eq!(judge_answer(&two), want, "the message split over two records at {cut}");
        }
        // A warning unrecognized_name (a server without that name goes on) and a HelloRequest.
        let after = [record(21, &[1, 112]), record(22, &[0, 0, 0, 0]), SERVER_HELLO_TLS10.to_vec()].concat();
        assert_eq!(judge_answer(&after), want);
        // The server picks a version above the offer (broken): reported as it is, caller judges.
        let mut v12 = SERVER_HELLO_TLS10.to_vec();
        v12[10] = 3;
        assert_eq!(judge_answer(&v12), Some(Answer::Accepted { version: 0x0303, cipher: 0xc00a }));
        v12[9] = 2; // version 2.3: no such ServerHello
        assert!(failed_with(judge_answer(&v12), "unparsable ServerHello"));
    }

    #[test]
    fn alerts_refuse_and_a_close_decides_what_was_pending() {
        for cut in 0..ALERT_PROTOCOL_VERSION.len() {
            assert_eq!(judge_answer(&ALERT_PROTOCOL_VERSION[..cut]), None, "cut at {cut}");
        }
        assert_eq!(judge_answer(ALERT_PROTOCOL_VERSION), Some(Answer::Refused { alert: Some(70) }));
        assert_eq!(judge_answer(&record(21, &[1, 0])), Some(Answer::Refused { alert: Some(0) }), "close_notify");
        let warning = record(21, &[1, 112]);
        assert_eq!(judge_answer(&warning), None, "a warning alone decides nothing");
        assert_eq!(judge(&warning).at_close(7), Answer::Refused { alert: Some(112) });
        assert_eq!(judge(&[]).at_close(0), Answer::Refused { alert: None }, "closed without a word");
        assert!(matches!(judge(&SERVER_HELLO_TLS10[..20]).at_close(20), Answer::Failed(m) if m.contains("inside")));
        assert!(failed_with(judge_answer(&record(21, &[2])), "malformed alert"));
        assert!(failed_with(judge_answer(&record(21, &[2, 40, 2])), "malformed alert"));
    }

    #[test]
    fn garbage_and_absurd_answers_fail_at_once_and_16_kib_bounds_the_rest() {
        assert_eq!(judge_answer(&[]), None);
        assert!(failed_with(judge_answer(b"HTTP/1.1 400 Bad Request\r\n\r\n"), "not TLS"));
        assert!(failed_with(judge_answer(b"S"), "not TLS"), "one byte is enough to tell");
        assert!(failed_with(judge_answer(&[0x16, 0x02]), "not TLS"));
        assert!(failed_with(judge_answer(&[0x80, 0x2e, 0x04, 0x00, 0x01]), "SSLv2"));
        assert!(failed_with(judge_answer(&[0x16, 3, 1, 0xff, 0xff]), "65535 bytes"));
        assert!(failed_with(judge_answer(&record(22, &[2, 0xff, 0xff, 0xff])), "16777215 bytes"));
        assert!(failed_with(judge_answer(&[0x17, 3, 3, 0x40, 0x00]), "ApplicationData record"));
        assert!(failed_with(judge_answer(&record(20, &[1])), "ChangeCipherSpec record"));
        assert!(failed_with(judge_answer(&record(22, &[11, 0, 0, 0])), "type 11"));
        // Answers that decide nothing: warnings, HelloRequests; undecided below 16 KiB only.
        for unit in [record(21, &[1, 112]), record(22, &[0, 0, 0, 0])] {
            let flood: Vec<u8> = unit.iter().copied().cycle().take(MAX_ANSWER / unit.len() * unit.len()).collect();
            assert_eq!(judge_answer(&flood), None);
            let more = [flood, unit].concat();
            assert!(failed_with(judge_answer(&more), "without a ServerHello"), "{} bytes", more.len());
        }
    }

    #[test]
    fn random_answers_never_panic_and_decisions_hold_as_bytes_arrive() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut decided = [0usize; 3];
        for i in 0..20_000usize {
            let mut b: Vec<u8> = match i % 4 {
                // A real answer with bytes flipped and cut.
                0 => {
                    let mut b = [SERVER_HELLO_TLS10, ALERT_PROTOCOL_VERSION].concat();
                    for _ in 0..1 + next() % 4 {
                        let at = (next() % b.len() as u64) as usize;
                        b[at] = next() as u8;
                    }
                    b.truncate((next() % (b.len() as u64 + 1)) as usize);
                    b
                }
                _ => (0..next() % 600).map(|_| next() as u8).collect(),
            };
            if i % 4 == 1 && b.len() >= 5 {
                b[..3].copy_from_slice(&[21 + (next() % 2) as u8, 3, (next() % 4) as u8]);
            }
            let full = judge_answer(&b);
            let cut = (next() % (b.len() as u64 + 1)) as usize;
            if let Some(early) = judge_answer(&b[..cut]) {
                assert_eq!(full.as_ref(), Some(&early), "decided at {cut} of {b:02x?}");
            }
            match full {
                Some(Answer::Accepted { .. }) => decided[0] += 1,
                Some(Answer::Refused { .. }) => decided[1] += 1,
                Some(Answer::Failed(_)) => decided[2] += 1,
                None => {}
            }
        }
        assert!(decided.iter().all(|&n| n > 0), "every kind of answer reached: {decided:?}");
        let big: Vec<u8> = (0..MAX_ANSWER + 100).map(|_| next() as u8).collect();
        assert!(judge_answer(&big).is_some());
    }

    /// `openssl s_server` on 127.0.0.1:`port` with a throwaway key: killed, reaped and its
    /// directory removed on drop.
    struct Server {
        port: u16,
        dir: PathBuf,
        child: Option<Child>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(c) = self.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl Server {
        fn start(port: u16, key: &str, args: &[&str]) -> Server {
            let dir = std::env::temp_dir().join(format!("tlsmon-sweep-{}-{port}", std::process::id()));
            let mut s = Server { port, dir, child: None };
            std::fs::create_dir_all(&s.dir).unwrap();
            let req = format!("req -x509 -newkey {key} -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN={SNI}");
            let out = Command::new("openssl").args(req.split(' ')).current_dir(&s.dir).output().expect("openssl runs");
            assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
            let log = std::fs::File::create(s.dir.join("log")).unwrap();
            let accept = format!("127.0.0.1:{port}");
            let child = Command::new("openssl")
                .args(["s_server", "-accept", &accept, "-cert", "cert.pem", "-key", "key.pem", "-www"])
                .args(args)
                .current_dir(&s.dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("openssl s_server starts");
            s.child = Some(child);
            s.wait_listening();
            s
        }

        fn addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], self.port))
        }

        fn log(&self) -> String {
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        }

        fn wait_listening(&mut self) {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                    panic!("s_server on {} exited ({st}): {}", self.port, self.log());
                }
                if std::net::TcpStream::connect_timeout(&self.addr(), Duration::from_millis(100)).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("s_server not listening on {} after 5 s: {}", self.port, self.log());
        }

        async fn sweep(&self) -> Vec<(&'static str, Answer)> {
            let mut out = Vec::new();
            for o in SWEEP {
                out.push((o.label, try_offer(self.addr(), Some(SNI), o, TIMEOUT, &crate::probe::Own::default()).await));
            }
            out
        }
    }

    fn answer<'a>(got: &'a [(&str, Answer)], label: &str) -> &'a Answer {
        &got.iter().find(|(l, _)| *l == label).unwrap().1
    }

    #[tokio::test]
    async fn openssl_with_tls13_and_tls10_only() {
        let tls = ["-min_protocol", "TLSv1", "-no_tls1_1", "-no_tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0"];
        let srv = Server::start(47310, "ec -pkeyopt ec_paramgen_curve:P-256", &tls);
        let got = srv.sweep().await;
        let Answer::Accepted { version: 0x0301, cipher } = answer(&got, "TLS 1.0") else { panic!("{got:#?}") };
        assert!(TLS10_SUITES.contains(cipher), "{cipher:#06x}");
        // Offered 1.1 (disabled), OpenSSL steps down to 1.0: accepted, but never as 1.1.
        assert!(matches!(answer(&got, "TLS 1.1"), Answer::Accepted { version: 0x0301, .. }), "{got:#?}");
        // The rest refused with an alert (OpenSSL 3 has no SSLv3, nor 3DES, RC4, NULL, EXPORT).
        for (label, a) in got.iter().filter(|(l, _)| !l.starts_with("TLS 1.0") && !l.starts_with("TLS 1.1")) {
            assert!(matches!(a, Answer::Refused { alert: Some(_) }), "{label}: {a:?}");
        }
        // Our fatal user_canceled reached it: s_server logs the alert (OpenSSL's "user cancelled").
        let log = srv.log();
        assert!(log.contains("alert user cancelled") || log.contains("alert number 90"), "{log}");
    }

    #[tokio::test]
    async fn openssl_with_tls13_only_accepts_no_offer() {
        let srv = Server::start(47311, "ec -pkeyopt ec_paramgen_curve:P-256", &["-tls1_3"]);
        let got = srv.sweep().await;
        assert!(matches!(got[0].1, Answer::Refused { alert: Some(_) }), "{got:?}");
        for (label, a) in &got[1..] {
            assert_eq!(a, &Answer::Refused { alert: Some(70) }, "{label}: protocol_version");
        }
    }

    #[tokio::test]
    async fn openssl_at_its_defaults_with_an_rsa_key_takes_static_rsa_cbc_only() {
        let srv = Server::start(47316, "rsa:2048", &[]);
        let got = srv.sweep().await;
        let Answer::Accepted { version: 0x0303, cipher } = answer(&got, "TLS 1.2 static-RSA CBC") else {
            panic!("{got:#?}")
        };
        assert!(TLS12_RSA_CBC.contains(cipher), "{cipher:#06x}");
        for (label, a) in got.iter().filter(|(l, _)| l.starts_with("SSLv3") || l.contains("NULL") || l.contains("RC4"))
        {
            assert!(matches!(a, Answer::Refused { alert: Some(_) }), "{label}: {a:?}");
        }
    }

    /// A TCP listener on 127.0.0.1:`port` that hands each connection to `serve` on a thread.
    fn listener(port: u16, serve: fn(std::net::TcpStream)) -> SocketAddr {
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((s, _)) = l.accept() {
                serve(s);
            }
        });
        addr
    }

    #[tokio::test]
    async fn garbage_silence_and_no_listener_fail_within_the_timeout() {
        use std::io::{Read, Write};
        let offer = &SWEEP[1];
        let garbage = listener(47312, |mut s| {
            let _ = s.read(&mut [0; 512]);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        });
        let silent = listener(47313, |s| {
            std::thread::sleep(Duration::from_secs(4));
            drop(s);
        });
        let closer = listener(47314, drop);
        let start = std::time::Instant::now();
        let a = try_offer(garbage, None, offer, TIMEOUT, &crate::probe::Own::default()).await;
        assert!(matches!(&a, Answer::Failed(m) if m.contains("not TLS")), "{a:?}");
        assert_eq!(
            try_offer(closer, None, offer, TIMEOUT, &crate::probe::Own::default()).await,
            Answer::Refused { alert: None }
        );
        let nobody = SocketAddr::from(([127, 0, 0, 1], 47315));
        let a = try_offer(nobody, None, offer, TIMEOUT, &crate::probe::Own::default()).await;
        assert!(matches!(&a, Answer::Failed(m) if m.contains("connect to 127.0.0.1:47315")), "{a:?}");
        assert!(start.elapsed() < Duration::from_millis(500), "{:?}", start.elapsed());
        let start = std::time::Instant::now();
        let a = try_offer(silent, None, offer, TIMEOUT, &crate::probe::Own::default()).await;
        let took = start.elapsed();
        assert!(matches!(&a, Answer::Failed(m) if m.contains("within 2s (0 bytes")), "{a:?}");
        assert!(took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(300), "{took:?}");
    }
}
