//! gen-phi SQL Server captures (MS-TDS 7.4, built from the specification: there is no SQL
//! Server here): PRELOGIN with ENCRYPTION off/off (the TLS handshake in PRELOGIN packets, LOGIN7
//! encrypted, then queries and results in clear), on/on and off/required (the whole session
//! in TLS), not-supported/not-supported (LOGIN7 with a fake SQL password in clear) and on
//! against not-supported (the connection ends). The TLS bytes are real: TLS 1.2 sessions
//! between Debian python3's `ssl` (OpenSSL 3.0.19) client and server, recorded once by
//! `tds/record_tls.py` and embedded. Must never emit a packet length that disagrees with its
//! contents, nor hand-make a TLS byte.
use std::io;

use serde_json::{json, Value};

use super::flow::Pcap;
use super::Capture;

/// The fake LOGIN7 values (written UTF-16LE, the password obfuscated as MS-TDS 2.2.6.4 says).
pub const HOST: &str = "ZZTEST-WS01";
pub const USER: &str = "zztest_sql";
pub const PASSWORD: &str = "FakeSqlPassw0rd!";
pub const APP: &str = "zztest-app";
pub const DATABASE: &str = "zztest_ehr";
pub const QUERY: &str = "SELECT name, mrn FROM patients WHERE name = 'ZZTEST^ALPHA'";

const TLS_LOGIN_ONLY: &[u8] = include_bytes!("tds/tls12-login-only.bin");
const TLS_ON: &[u8] = include_bytes!("tds/tls12-on.bin");
const TLS_REQUIRED: &[u8] = include_bytes!("tds/tls12-required.bin");

const PRELOGIN: u8 = 0x12;
const TABULAR: u8 = 0x04;
const LOGIN7: u8 = 0x10;
const SQL_BATCH: u8 = 0x01;

const ENCRYPT_OFF: u8 = 0;
const ENCRYPT_ON: u8 = 1;
const ENCRYPT_NOT_SUP: u8 = 2;
const ENCRYPT_REQ: u8 = 3;

/// One TDS packet (status EOM, SPID 0, window 0).
pub fn packet(ptype: u8, packet_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ptype, 1];
    v.extend_from_slice(&(payload.len() as u16 + 8).to_be_bytes());
    v.extend_from_slice(&[0, 0, packet_id, 0]);
    v.extend_from_slice(payload);
    v
}

/// A PRELOGIN option table (MS-TDS 2.2.6.5): VERSION, ENCRYPTION, INSTOPT, THREADID, MARS.
pub fn prelogin(version: [u8; 6], encryption: u8, thread_id: u32) -> Vec<u8> {
    let thread = thread_id.to_le_bytes();
    let values: [&[u8]; 5] = [&version, &[encryption], &[0], &thread, &[0]];
    let start = values.len() * 5 + 1;
    let (mut table, mut data) = (Vec::new(), Vec::new());
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

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// MS-TDS 2.2.6.4: each byte of the UTF-16LE password has its nibbles swapped, then XOR 0xA5.
pub fn obfuscate(s: &str) -> Vec<u8> {
    utf16(s).iter().map(|b| b.rotate_left(4) ^ 0xa5).collect()
}

/// A LOGIN7 with SQL authentication and the fake values above.
pub fn login7() -> Vec<u8> {
    const FIXED: usize = 94;
    let fields: [(Vec<u8>, usize); 9] = [
        (utf16(HOST), HOST.len()),
        (utf16(USER), USER.len()),
        (obfuscate(PASSWORD), PASSWORD.len()),
        (utf16(APP), APP.len()),
        (utf16("ehr-sql"), 7),
        (Vec::new(), 0),
        (utf16("zztest-lib"), 10),
        (Vec::new(), 0),
        (utf16(DATABASE), DATABASE.len()),
    ];
    let (mut offsets, mut data) = (Vec::new(), Vec::new());
    for (bytes, chars) in &fields {
        offsets.extend_from_slice(&((FIXED + data.len()) as u16).to_le_bytes());
        offsets.extend_from_slice(&(*chars as u16).to_le_bytes());
        data.extend_from_slice(bytes);
    }
    let mut b = Vec::with_capacity(FIXED + data.len());
    b.extend_from_slice(&((FIXED + data.len()) as u32).to_le_bytes());
    for v in [0x7400_0004u32, 4096, 7, 4242, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&[0xe0, 0x03, 0x00, 0x00]); // OptionFlags1, OptionFlags2 (no fIntSecurity), TypeFlags, OptionFlags3
    b.extend_from_slice(&0i32.to_le_bytes());
    b.extend_from_slice(&0x0409u32.to_le_bytes());
    b.extend(offsets);
    b.extend_from_slice(&[0x00, 0x50, 0x56, 0xaa, 0xbb, 0xcc]);
    let end = ((FIXED + data.len()) as u16).to_le_bytes();
    for _ in 0..3 {
        b.extend_from_slice(&end);
        b.extend_from_slice(&[0, 0]);
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(b.len(), FIXED);
    b.extend(data);
    packet(LOGIN7, 1, &b)
}

/// SQL batch with the ALL_HEADERS transaction descriptor header (MS-TDS 2.2.5.3).
pub fn sql_batch(query: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&22u32.to_le_bytes());
    b.extend_from_slice(&18u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend(utf16(query));
    packet(SQL_BATCH, 1, &b)
}

/// LOGINACK (TDS 7.4, "Microsoft SQL Server" 16.0.1000) and DONE.
pub fn loginack() -> Vec<u8> {
    let name = utf16("Microsoft SQL Server");
    let mut tok = vec![1, 0x74, 0x00, 0x00, 0x04, (name.len() / 2) as u8];
    tok.extend(name);
    tok.extend_from_slice(&[16, 0, 0x03, 0xe8]);
    let mut b = vec![0xad];
    b.extend_from_slice(&(tok.len() as u16).to_le_bytes());
    b.extend(tok);
    b.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    packet(TABULAR, 1, &b)
}

/// COLMETADATA (one NVARCHAR(64) column "name"), a ROW with the fake patient, DONE (count 1).
pub fn rows() -> Vec<u8> {
    let mut b = vec![0x81, 1, 0, 0, 0, 0, 0, 0x09, 0x00, 0xe7, 128, 0, 0x09, 0x04, 0xd0, 0x00, 0x34, 4];
    b.extend(utf16("name"));
    let value = utf16("ZZTEST^ALPHA");
    b.push(0xd1);
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend(value);
    b.extend_from_slice(&[0xfd, 0x10, 0x00, 0xc1, 0x00, 1, 0, 0, 0, 0, 0, 0, 0]);
    packet(TABULAR, 1, &b)
}

/// The flights of a recorded TLS session: (kind, bytes); kind 0/1 = client/server handshake
/// flight, 2/3 = client/server application data.
fn flights(transcript: &'static [u8]) -> Vec<(u8, &'static [u8])> {
    let mut out = Vec::new();
    let mut rest = transcript;
    while let [kind, a, b, c, d, tail @ ..] = rest {
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        out.push((*kind, &tail[..len]));
        rest = &tail[len..];
    }
    out
}

const CLIENT_VERSION: [u8; 6] = [0x11, 0x03, 0x00, 0x00, 0x00, 0x00];
/// SQL Server 2022 RTM: 16.0.1000.
const SERVER_VERSION: [u8; 6] = [16, 0, 0x03, 0xe8, 0, 0];

/// One connection: PRELOGIN both ways, then the recorded TLS session (handshake flights in
/// PRELOGIN packets, application data raw), then `clear` messages in clear.
fn session(
    v6: bool,
    enc: [u8; 2],
    transcript: Option<&'static [u8]>,
    clear: &[(usize, Vec<u8>)],
) -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(v6, 1433)?;
    c.send(0, &packet(PRELOGIN, 1, &prelogin(CLIENT_VERSION, enc[0], 0x1f2c)))?;
    c.send(1, &packet(TABULAR, 1, &prelogin(SERVER_VERSION, enc[1], 0)))?;
    for (kind, bytes) in transcript.map(flights).unwrap_or_default() {
        let side = usize::from(kind & 1);
        if kind < 2 {
            c.send(side, &packet(PRELOGIN, 1, bytes))?;
        } else {
            c.send(side, bytes)?;
        }
    }
    for (side, bytes) in clear {
        c.send(*side, bytes)?;
    }
    c.close()?;
    p.finish()
}

fn tls(client: &str, server: &str, negotiated: &str, findings: &[&str]) -> Value {
    json!({"type": "tls", "tls.starttls": "tds", "tls.version": "1.2",
           "tls.cipher": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "tls.established": true,
           "tls.server.x509.subject.common_name": "SSL_Self_Signed_Fallback",
           "tds.client_encryption": client, "tds.server_encryption": server, "tds.negotiated": negotiated,
           "tds.server_version": "16.0.1000", "tds.tls_in_prelogin": true, "tds.login7_in_clear": false,
           "findings": findings})
}

pub fn captures() -> io::Result<Vec<Capture>> {
    // What every recorded session raises besides tds.*: OpenSSL's client offers TLS 1.3, the
    // server stops at 1.2; SQL Server's self-signed fallback certificate; the SNI is not its CN.
    const TLS_FINDINGS: [&str; 3] = ["tls.cert.name-mismatch", "tls.cert.self-signed", "tls.version.no-tls13"];
    let with = |extra: &[&'static str]| {
        let mut v: Vec<&str> = TLS_FINDINGS.iter().chain(extra).copied().collect();
        v.sort_unstable();
        v
    };
    Ok(vec![
        Capture {
            file: "tds-encrypt-off.pcap",
            description: "SQL Server PRELOGIN, ENCRYPTION off against off: the TLS 1.2 handshake in PRELOGIN \
                          packets, LOGIN7 encrypted, then a patient query and its rows in clear (login-only)",
            expect: vec![tls("off", "off", "login-only", &with(&["tds.cleartext"]))],
            bytes: session(
                false,
                [ENCRYPT_OFF, ENCRYPT_OFF],
                Some(TLS_LOGIN_ONLY),
                &[(1, loginack()), (0, sql_batch(QUERY)), (1, rows())],
            )?,
        },
        Capture {
            file: "tds-encrypt-on.pcap",
            description: "SQL Server PRELOGIN, ENCRYPTION on against on: the TLS 1.2 handshake in PRELOGIN \
                          packets, then the whole session (LOGIN7, query, rows) in TLS records",
            expect: vec![tls("on", "on", "full", &with(&[]))],
            bytes: session(false, [ENCRYPT_ON, ENCRYPT_ON], Some(TLS_ON), &[])?,
        },
        Capture {
            file: "tds-encrypt-required.pcap",
            description: "SQL Server (IPv6) PRELOGIN, client ENCRYPTION off, server required (Force Encryption): \
                          the whole session in TLS 1.2",
            expect: vec![tls("off", "required", "full", &with(&[]))],
            bytes: session(true, [ENCRYPT_OFF, ENCRYPT_REQ], Some(TLS_REQUIRED), &[])?,
        },
        Capture {
            file: "tds-encrypt-not-supported.pcap",
            description: "SQL Server PRELOGIN, ENCRYPTION not supported on both sides: LOGIN7 with a SQL \
                          password, the query and its rows all in clear",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "tds",
                "plaintext.credentials": ["tds-login7"], "plaintext.tds.client_encryption": "not-supported",
                "plaintext.tds.server_encryption": "not-supported", "plaintext.tds.negotiated": "none",
                "plaintext.tds.login7_in_clear": true, "plaintext.tds.sql_in_clear": true,
                "findings": ["plaintext.credentials", "tds.cleartext"]})],
            bytes: session(
                false,
                [ENCRYPT_NOT_SUP, ENCRYPT_NOT_SUP],
                None,
                &[(0, login7()), (1, loginack()), (0, sql_batch(QUERY)), (1, rows())],
            )?,
        },
        Capture {
            file: "tds-encrypt-terminated.pcap",
            description: "SQL Server PRELOGIN, client ENCRYPTION on, server not supported: the connection ends \
                          before any login",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "tds",
                "plaintext.tds.client_encryption": "on", "plaintext.tds.server_encryption": "not-supported",
                "plaintext.tds.negotiated": "terminated", "plaintext.tds.login7_in_clear": false,
                "findings": []})],
            bytes: session(false, [ENCRYPT_ON, ENCRYPT_NOT_SUP], None, &[])?,
        },
    ])
}

/// The fake values the TDS captures write as UTF-16LE (the password obfuscated): none may
/// ever appear in tlsmon's output, in either spelling.
pub fn sensitive_utf16() -> Vec<&'static str> {
    vec![HOST, USER, PASSWORD, APP, DATABASE, QUERY]
}

#[cfg(test)]
mod tests {
    use super::super::flow::parse::streams;
    use super::*;

    #[test]
    fn transcripts_are_tls12_sessions() {
        for t in [TLS_LOGIN_ONLY, TLS_ON, TLS_REQUIRED] {
            let f = flights(t);
            let kinds: Vec<u8> = f.iter().map(|(k, _)| *k).collect();
            assert_eq!(&kinds[..4], &[0, 1, 0, 1]);
            assert_eq!(&f[0].1[..3], &[0x16, 0x03, 0x01], "ClientHello record");
            assert_eq!(f[0].1[5], 1);
            assert!(f.iter().skip(4).all(|(k, b)| *k >= 2 && b[0] == 0x17), "then application data");
            assert_eq!(f.iter().map(|(_, b)| b.len() + 5).sum::<usize>(), t.len());
        }
    }

    #[test]
    fn login7_is_well_formed_and_hides_the_password() {
        let l = login7();
        assert_eq!(usize::from(u16::from_be_bytes([l[2], l[3]])), l.len());
        let body = &l[8..];
        assert_eq!(u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize, body.len());
        // ibPassword / cchPassword, and the obfuscated bytes there.
        let off = usize::from(u16::from_le_bytes([body[44], body[45]]));
        let chars = usize::from(u16::from_le_bytes([body[46], body[47]]));
        assert_eq!(chars, PASSWORD.len());
        assert_eq!(&body[off..off + 2 * chars], &obfuscate(PASSWORD)[..]);
        assert!(!l.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()));
        // MS-TDS 2.2.6.4's own example: 'a' (0x61 0x00) becomes 0xB3 0xA5.
        assert_eq!(obfuscate("a"), [0xb3, 0xa5]);
    }

    #[test]
    fn sessions_are_what_they_say() {
        let caps = captures().unwrap();
        assert_eq!(caps.len(), 5);
        for c in &caps {
            let s = streams(&c.bytes);
            assert_eq!(s.len(), 1, "{}", c.file);
            assert_eq!(&s[0][0][..2], &[PRELOGIN, 1], "{}", c.file);
            assert_eq!(s[0][1][0], TABULAR, "{}", c.file);
        }
        let clear = &streams(&caps[3].bytes)[0][0];
        let needle = utf16(USER);
        assert!(clear.windows(needle.len()).any(|w| w == needle), "the clear LOGIN7 carries the fake user");
        let tls = &streams(&caps[1].bytes)[0][0];
        assert!(!tls.windows(needle.len()).any(|w| w == needle), "the encrypted one does not");
    }
}
