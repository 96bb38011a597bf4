//! TDS tests: headers, the PRELOGIN option table of MS-TDS 4.1, the negotiation table of
//! MS-TDS 2.2.6.5, session walks over built heads, and the unwrapper split at every offset.
use super::*;

fn packet(ptype: u8, status: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ptype, status];
    v.extend_from_slice(&((payload.len() + HEADER_LEN) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0, 1, 0]);
    v.extend_from_slice(payload);
    v
}

/// A PRELOGIN option table: VERSION, ENCRYPTION, INSTOPT, THREADID, MARS.
pub(super) fn options(version: [u8; 6], encryption: u8) -> Vec<u8> {
    let values: [&[u8]; 5] = [&version, &[encryption], &[0], &[0, 0, 0x0d, 0xb8], &[0]];
    let mut table = Vec::new();
    let mut data = Vec::new();
    let start = values.len() * 5 + 1;
    for (token, v) in values.iter().enumerate() {
        table.push(token as u8);
        table.extend_from_slice(&((start + data.len()) as u16).to_be_bytes());
        table.extend_from_slice(&(v.len() as u16).to_be_bytes());
        data.extend_from_slice(v);
    }
    table.push(0xff);
    table.extend(data);
    table
}

/// MS-TDS 4.1, the sample PRELOGIN request (client version 9.0.0, ENCRYPT_ON? see test).
const SPEC_PRELOGIN: [u8; 47] = [
    0x12, 0x01, 0x00, 0x2f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x06, 0x01, 0x00, 0x20, 0x00, 0x01, 0x02,
    0x00, 0x21, 0x00, 0x01, 0x03, 0x00, 0x22, 0x00, 0x04, 0x04, 0x00, 0x26, 0x00, 0x01, 0xff, 0x09, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0xb8, 0x0d, 0x00, 0x00, 0x01,
];

fn login7(password_chars: u16) -> Vec<u8> {
    let mut body = vec![0u8; 94];
    body[25] = if password_chars == 0 { 0x80 } else { 0 }; // fIntSecurity without a password
    body[46..48].copy_from_slice(&password_chars.to_le_bytes());
    body
}

const SERVER_2022: [u8; 6] = [16, 0, 0x03, 0xe8, 0, 0];

#[test]
fn headers() {
    assert_eq!(header(&SPEC_PRELOGIN), Some(Header { ptype: ptype::PRELOGIN, status: 1, length: 47 }));
    assert_eq!(header(&SPEC_PRELOGIN[..7]), None);
    assert_eq!(header(b"\x12\x01\x00\x07\x00\x00\x01\x00"), None, "shorter than its header");
    assert_eq!(header(b"\x13\x01\x00\x08\x00\x00\x01\x00"), None, "not a TDS type");
    assert_eq!(header(b"\x12\x40\x00\x08\x00\x00\x01\x00"), None, "unknown status bit");
    assert_eq!(header(&SPEC_PRELOGIN).unwrap().payload_len(), 39);
}

#[test]
fn prelogin_signature_on_any_prefix() {
    for n in 0..=SPEC_PRELOGIN.len() {
        assert_eq!(is_prelogin(&SPEC_PRELOGIN[..n]), n > 0, "prefix {n}");
    }
    assert!(!is_prelogin(b"\x12\x01\x00\x08\x00\x00\x01\x00"), "no room for options");
    assert!(!is_prelogin(b"\x12\x01\x00\x2f\x00\x00\x01\x00\x01"), "VERSION must come first");
    assert!(!is_prelogin(b"\x16\x03\x01\x02\x00\x01"));
    assert!(!is_prelogin(b"\x10\x01\x00\x90"), "LOGIN7 first is not PRELOGIN");
}

#[test]
fn spec_sample_options() {
    let m = analyse(&SPEC_PRELOGIN, &[]).unwrap();
    // Option 1 (ENCRYPTION) at offset 0x20 of the data: the 7th byte after the 26-byte table.
    assert_eq!(m.client_encryption, Some(Encryption::On));
    assert_eq!((m.server_encryption, m.negotiated), (None, None));
    assert!(!m.login7_in_clear && !m.sql_in_clear && !m.tls_in_prelogin);
}

#[test]
fn negotiation_table() {
    use Encryption::*;
    use Negotiated as N;
    let want = [
        ((Off, Off), N::LoginOnly),
        ((Off, On), N::Full),
        ((Off, NotSupported), N::None),
        ((Off, Required), N::Full),
        ((On, Off), N::Terminated),
        ((On, On), N::Full),
        ((On, NotSupported), N::Terminated),
        ((On, Required), N::Full),
        ((NotSupported, Off), N::None),
        ((NotSupported, On), N::Terminated),
        ((NotSupported, NotSupported), N::None),
        ((NotSupported, Required), N::Terminated),
        ((Required, Off), N::Terminated),
        ((Required, On), N::Full),
        ((Required, NotSupported), N::Terminated),
        ((Required, Required), N::Full),
    ];
    for ((c, s), n) in want {
        assert_eq!(negotiate(c, s), n, "{c:?} against {s:?}");
    }
    assert_eq!(Encryption::from_byte(0x81), Some(On), "ENCRYPT_CLIENT_CERT | ENCRYPT_ON");
    assert_eq!(Encryption::from_byte(0x04), None);
}

/// A clear session: PRELOGIN both ways with `c`/`s`, then LOGIN7 and a batch in clear.
fn clear_session(c: u8, s: u8, password: u16) -> (Vec<u8>, Vec<u8>) {
    let mut client = packet(ptype::PRELOGIN, 1, &options([11, 0, 0, 0, 0, 0], c));
    client.extend(packet(ptype::LOGIN7, 1, &login7(password)));
    client.extend(packet(ptype::SQL_BATCH, 0, b"\x16\x00\x00\x00 first half"));
    client.extend(packet(ptype::SQL_BATCH, 1, b"second half"));
    let mut server = packet(ptype::TABULAR_RESULT, 1, &options(SERVER_2022, s));
    server.extend(packet(ptype::TABULAR_RESULT, 1, b"\xad\x00\x00"));
    (client, server)
}

#[test]
fn session_in_clear() {
    let (c, s) = clear_session(2, 2, 16);
    let m = analyse(&c, &s).unwrap();
    assert_eq!(m.client_encryption, Some(Encryption::NotSupported));
    assert_eq!(m.server_encryption, Some(Encryption::NotSupported));
    assert_eq!(m.negotiated, Some(Negotiated::None));
    assert_eq!(m.server_version.as_deref(), Some("16.0.1000"));
    assert!(m.login7_in_clear && m.login7_password && m.sql_in_clear && !m.tls_in_prelogin);
    // Integrated security: LOGIN7 in clear, but no password in it.
    let (c, s) = clear_session(0, 2, 0);
    let m = analyse(&c, &s).unwrap();
    assert!(m.login7_in_clear && !m.login7_password);
    assert_eq!(m.negotiated, Some(Negotiated::None));
    // A client that asked for certificate authentication.
    let (c, s) = clear_session(0x81, 1, 0);
    let m = analyse(&c, &s).unwrap();
    assert!(m.client_cert);
    assert_eq!(m.negotiated, Some(Negotiated::Full));
}

/// A TLS session: PRELOGIN, then `tls_c`/`tls_s` in PRELOGIN packets (the client's split in two
/// packets), then raw records.
fn wrapped_session(tls_c: &[u8], tls_s: &[u8], raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut client = packet(ptype::PRELOGIN, 1, &options([11, 0, 0, 0, 0, 0], 0));
    let half = tls_c.len() / 2;
    client.extend(packet(ptype::PRELOGIN, 0, &tls_c[..half]));
    client.extend(packet(ptype::PRELOGIN, 1, &tls_c[half..]));
    client.extend_from_slice(raw);
    let mut server = packet(ptype::TABULAR_RESULT, 1, &options(SERVER_2022, 0));
    server.extend(packet(ptype::PRELOGIN, 1, tls_s));
    server.extend_from_slice(raw);
    (client, server)
}

const TLS_C: &[u8] = b"\x16\x03\x01\x00\x0a\x01\x00\x00\x06\x03\x03abcd";
const TLS_S: &[u8] = b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00";
const RAW: &[u8] = b"\x17\x03\x03\x00\x05hello\x17\x03\x03\x00\x02hi";

#[test]
fn session_with_tls_in_prelogin() {
    let (c, s) = wrapped_session(TLS_C, TLS_S, RAW);
    let m = analyse(&c, &s).unwrap();
    assert_eq!(m.negotiated, Some(Negotiated::LoginOnly));
    assert!(m.tls_in_prelogin && !m.login7_in_clear && !m.sql_in_clear);
}

#[test]
fn not_tds() {
    assert!(analyse(b"\x16\x03\x01\x00\x0a\x01", b"").is_none());
    assert!(analyse(&packet(ptype::LOGIN7, 1, &login7(3)), b"").is_none());
    // A PRELOGIN whose option table runs past its data.
    let mut bad = options([1; 6], 0);
    bad[1] = 0x7f;
    assert!(analyse(&packet(ptype::PRELOGIN, 1, &bad), b"").is_none());
}

/// Feed `parts` through an unwrapper: the TLS bytes out, and how many clear signals.
fn unwrap_all(parts: &[&[u8]]) -> (Vec<u8>, usize) {
    let mut u = Unwrap::new();
    let (mut tls, mut clear) = (Vec::new(), 0);
    for p in parts {
        u.feed(p, &mut |piece| match piece {
            Piece::Tls(b) => tls.extend_from_slice(b),
            Piece::Clear => clear += 1,
        });
    }
    (tls, clear)
}

#[test]
fn unwrap_split_anywhere() {
    let (c, s) = wrapped_session(TLS_C, TLS_S, RAW);
    let want_c = [TLS_C, RAW].concat();
    let want_s = [TLS_S, RAW].concat();
    for (stream, want) in [(&c, &want_c), (&s, &want_s)] {
        assert_eq!(unwrap_all(&[stream]), (want.clone(), 0));
        for cut in 0..=stream.len() {
            assert_eq!(unwrap_all(&[&stream[..cut], &stream[cut..]]), (want.clone(), 0), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(unwrap_all(&bytes), (want.clone(), 0), "byte by byte");
    }
    // Clear sessions: nothing handed on as TLS; the client's LOGIN7 and batch, the server's
    // second message are clear (once per message).
    let (c, s) = clear_session(2, 2, 16);
    for (stream, clear) in [(&c, 2), (&s, 1)] {
        for cut in 0..=stream.len() {
            assert_eq!(unwrap_all(&[&stream[..cut], &stream[cut..]]), (Vec::new(), clear), "cut at {cut}");
        }
    }
}

#[test]
fn unwrap_stops_at_garbage_and_never_panics() {
    let mut u = Unwrap::new();
    let mut n = 0;
    u.feed(b"GET / HTTP/1.1\r\n\r\n", &mut |_| n += 1);
    assert!(u.broken());
    assert_eq!(n, 0);
    let mut x: u32 = 11;
    for len in 0..400 {
        let mut b: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        if len > 8 {
            b[0] = 0x12;
            b[1] = 0;
        }
        let mut u = Unwrap::new();
        for chunk in b.chunks(5) {
            u.feed(chunk, &mut |_| {});
        }
        let _ = analyse(&b, &b);
    }
}
