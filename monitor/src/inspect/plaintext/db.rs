//! Inspect, plaintext, databases: PostgreSQL (SSLRequest/GSSENCRequest, StartupMessage,
//! cleartext password) and MySQL (initial handshake, CLIENT_SSL). Must never keep a user, a
//! database name, a password, a query or a server version string.
use super::facts::{Credential, Protocol, Session, StartTls};

const PG_SSL: u32 = 80877103;
const PG_GSSENC: u32 = 80877104;
const PG_CANCEL: u32 = 80877102;
const PG_V3: u32 = 196608;
const MYSQL_CLIENT_SSL: u32 = 0x0800;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let x = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

pub(super) fn detect(client: &[u8], server: &[u8]) -> Option<Session> {
    postgresql(client, server).or_else(|| mysql(client, server))
}

fn postgresql(client: &[u8], server: &[u8]) -> Option<Session> {
    let mut st = StartTls::default();
    let mut pos = 0usize;
    let mut srv = 0usize; // next unread server byte
    let mut startup = false;
    let mut seen = false;
    let mut upgraded = false;
    while let (Some(len), Some(code)) = (be32(client, pos), be32(client, pos + 4)) {
        match (len, code) {
            (8, PG_SSL) | (8, PG_GSSENC) => {
                seen = true;
                let answer = server.get(srv).copied();
                srv += 1;
                if code == PG_SSL {
                    st.requested = true;
                    match answer {
                        Some(b'S') => st.accepted = Some(true),
                        Some(b'N') => st.accepted = Some(false),
                        _ => {}
                    }
                }
                if matches!(answer, Some(b'S' | b'G')) {
                    upgraded = true;
                }
                if answer != Some(b'N') {
                    break; // encrypted (or unanswered) from here on
                }
                pos += 8;
            }
            (16, PG_CANCEL) => {
                seen = true;
                break;
            }
            (9..=10000, PG_V3) => {
                let end = pos + len as usize;
                if client.get(end - 1).is_some_and(|&b| b != 0) {
                    break; // a complete startup packet ends with a NUL
                }
                seen = true;
                startup = true;
                pos = end;
                break;
            }
            _ => break,
        }
        if pos > 64 {
            break;
        }
    }
    if !seen {
        return None;
    }
    let mut credentials = Vec::new();
    if startup && !upgraded && cleartext_asked(server.get(srv..).unwrap_or_default()) {
        if let Some(rest) = client.get(pos..) {
            if typed(rest).any(|t| t == b'p') {
                credentials.push(Credential::PostgresqlPassword);
            }
        }
    }
    Some(Session { protocol: Protocol::Postgresql, starttls: st, credentials })
}

/// Message types of a run of `type, int32 length` messages (stops at a malformed or cut one).
fn typed(mut b: &[u8]) -> impl Iterator<Item = u8> + '_ {
    std::iter::from_fn(move || {
        let ty = *b.first()?;
        let len = be32(b, 1)? as usize;
        if !ty.is_ascii_alphabetic() || len < 4 || b.len() < 1 + len {
            return None;
        }
        b = &b[1 + len..];
        Some(ty)
    })
    .take(32)
}

/// AuthenticationCleartextPassword: 'R', int32 8, int32 3.
fn cleartext_asked(server: &[u8]) -> bool {
    server.first() == Some(&b'R') && be32(server, 1) == Some(8) && be32(server, 5) == Some(3)
}

fn mysql(client: &[u8], server: &[u8]) -> Option<Session> {
    let h = server.get(..4)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
    if h[3] != 0 || !(20..=1024).contains(&len) {
        return None;
    }
    let p = server.get(4..4 + len)?;
    if p.first() != Some(&0x0a) {
        return None;
    }
    let nul = p.iter().skip(1).take(64).position(|&b| b == 0)? + 1;
    let version = &p[1..nul];
    if !version.first().is_some_and(u8::is_ascii_digit) || !version.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    // conn id (4), auth data (8), filler, capability flags (lower 16 bits).
    let at = nul + 1 + 4 + 8;
    if p.get(at) != Some(&0) {
        return None;
    }
    let caps = p.get(at + 1..at + 3)?;
    let offered = u32::from(u16::from_le_bytes([caps[0], caps[1]])) & MYSQL_CLIENT_SSL != 0;
    let mut st = StartTls { offered, ..StartTls::default() };
    if let Some(c) = client.get(..8).filter(|c| c[3] == 1) {
        let flags = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        if flags & MYSQL_CLIENT_SSL != 0 {
            st.requested = true;
            st.accepted = Some(true); // no answer in MySQL: TLS follows
        } else {
            st.cleartext_after_offer = offered;
        }
    }
    Some(Session { protocol: Protocol::Mysql, starttls: st, credentials: Vec::new() })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) fn pg_startup() -> Vec<u8> {
        let params = b"user\0FAKE-USER01\0database\0fake_mrn_db\0\0";
        let mut v = ((8 + params.len()) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&PG_V3.to_be_bytes());
        v.extend_from_slice(params);
        v
    }

    fn ssl_request(code: u32) -> Vec<u8> {
        let mut v = 8u32.to_be_bytes().to_vec();
        v.extend_from_slice(&code.to_be_bytes());
        v
    }

    #[test]
    fn postgresql_ssl_accepted_refused() {
        let r = detect(&ssl_request(PG_SSL), b"S\x16\x03\x03").unwrap();
        assert_eq!(r.protocol, Protocol::Postgresql);
        assert_eq!(
            r.starttls,
            StartTls { offered: false, requested: true, accepted: Some(true), cleartext_after_offer: false }
        );
        let mut c = ssl_request(PG_GSSENC);
        c.extend(ssl_request(PG_SSL));
        c.extend(pg_startup());
        let r = detect(&c, b"NN").unwrap();
        assert_eq!(
            r.starttls,
            StartTls { offered: false, requested: true, accepted: Some(false), cleartext_after_offer: false }
        );
    }

    #[test]
    fn postgresql_cleartext_password() {
        let mut c = pg_startup();
        c.extend_from_slice(b"p\x00\x00\x00\x0eFakePass1\x00\x00");
        let s = b"R\x00\x00\x00\x08\x00\x00\x00\x03";
        let r = detect(&c, s).unwrap();
        assert_eq!(r.starttls, StartTls::default());
        assert_eq!(r.credentials, vec![Credential::PostgresqlPassword]);
        // SCRAM (10) is not a cleartext password.
        let r = detect(&c, b"R\x00\x00\x00\x08\x00\x00\x00\x0a").unwrap();
        assert!(r.credentials.is_empty());
    }

    pub(in super::super) fn mysql_greeting(caps: u16) -> Vec<u8> {
        let mut p = vec![0x0a];
        p.extend_from_slice(b"8.0.36\0");
        p.extend_from_slice(&[1, 0, 0, 0]);
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&[0x21, 2, 0, 0xff, 0xff, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        let mut v = (p.len() as u32).to_le_bytes()[..3].to_vec();
        v.push(0);
        v.extend(p);
        v
    }

    pub(in super::super) fn mysql_client(caps: u32, payload_len: usize) -> Vec<u8> {
        let mut p = caps.to_le_bytes().to_vec();
        p.resize(payload_len, 0);
        let mut v = (p.len() as u32).to_le_bytes()[..3].to_vec();
        v.push(1);
        v.extend(p);
        v
    }

    #[test]
    fn mysql_states() {
        let r = detect(&mysql_client(0x0a8a0d | 0x0800, 32), &mysql_greeting(0xffff)).unwrap();
        assert_eq!(r.protocol, Protocol::Mysql);
        assert_eq!(
            r.starttls,
            StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false }
        );
        let r = detect(&mysql_client(0x0a8a0d & !0x0800, 80), &mysql_greeting(0xffff)).unwrap();
        assert_eq!(
            r.starttls,
            StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true }
        );
        let r = detect(&mysql_client(0x0a8a0d & !0x0800, 80), &mysql_greeting(0xf7ff)).unwrap();
        assert_eq!(r.starttls, StartTls::default());
        assert!(detect(b"", &mysql_greeting(0xffff)[..20]).is_none());
    }

    #[test]
    fn not_databases() {
        assert!(detect(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4", b"\x16\x03\x03\x00\x5a\x02").is_none());
        assert!(detect(&ssl_request(12345), b"S").is_none());
    }
}
