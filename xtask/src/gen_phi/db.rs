//! gen-phi database captures: PostgreSQL SSLRequest answered 'S' (then TLS 1.3) or 'N' (then a
//! cleartext password), MySQL with and without the SSL upgrade. Must never emit a packet length
//! that disagrees with its contents.
use std::io;

use serde_json::json;

use super::flow::Pcap;
use super::{Capture, PASSWORD};
use crate::gen::hello::{client_hello, server_hello, ClientHello, ServerHello};
use crate::gen::tls::{
    change_cipher_spec, opaque_record, records, CT_APP, CT_HANDSHAKE, SECP256R1, TLS10, TLS12, TLS13, X25519,
};

pub const DB_USER: &str = "zztest_user";
pub const SQL: &str = "SELECT * FROM patients WHERE name='ZZTEST^LIMA'";

fn pg_msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![typ];
    b.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    b.extend_from_slice(body);
    b
}

pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

pub fn pg_startup() -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for kv in ["user", DB_USER, "database", "ehr", "application_name", "psql"] {
        body.extend_from_slice(kv.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut b = (body.len() as u32 + 4).to_be_bytes().to_vec();
    b.extend_from_slice(&body);
    b
}

/// TLS 1.3 (postgres) or 1.2 (mysql) ClientHello and ServerHello records, from `gen::hello`.
fn hellos(tls13: bool, sni: &str) -> (Vec<u8>, Vec<u8>) {
    let random: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(29).wrapping_add(7)).collect();
    let share: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(53).wrapping_add(1)).collect();
    let (suites, groups, versions): (&[u16], &[u16], &[u16]) = if tls13 {
        (&[0x1301, 0x1302, 0x1303], &[X25519], &[TLS13])
    } else {
        (&[0xc02f, 0xc030, 0xc02b, 0x009c], &[X25519, SECP256R1], &[])
    };
    let ks: [(u16, &[u8]); 1] = [(X25519, &share)];
    let ch = ClientHello {
        legacy_version: TLS12,
        random: &random,
        session_id: if tls13 { &random } else { &[] },
        suites,
        compression: &[0],
        grease: [0; 3],
        sni: Some(sni),
        ems: !tls13,
        reneg_info: !tls13,
        groups,
        ec_point_formats: !tls13,
        ticket: false,
        alpn: &[],
        status_request: false,
        sig_algs: &[0x0403, 0x0804, 0x0401],
        key_shares: if tls13 { &ks } else { &[] },
        psk_modes: tls13,
        versions,
        psk: None,
    };
    let mut body = Vec::new();
    client_hello(&mut body, &ch);
    let mut client = Vec::new();
    records(&mut client, CT_HANDSHAKE, TLS10, &body, &[]);
    let sh = ServerHello {
        legacy_version: TLS12,
        random: &share,
        session_id: if tls13 { &random } else { &[] },
        suite: if tls13 { 0x1301 } else { 0xc02f },
        compression: 0,
        reneg_info: !tls13,
        ems: !tls13,
        ec_point_formats: !tls13,
        ticket: false,
        alpn: None,
        tls13_share: tls13.then_some((X25519, &share[..])),
        psk: false,
    };
    body.clear();
    server_hello(&mut body, &sh);
    let mut server = Vec::new();
    records(&mut server, CT_HANDSHAKE, TLS12, &body, &[]);
    (client, server)
}

fn postgres(ssl: bool) -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 5432)?;
    c.send(0, &SSL_REQUEST)?;
    if ssl {
        c.send(1, b"S")?;
        let (ch, mut sh) = hellos(true, "db.example.test");
        c.send(0, &ch)?;
        change_cipher_spec(&mut sh, TLS12);
        let fake: Vec<u8> = (0..90u8).map(|i| i.wrapping_mul(151) ^ 0x5a).collect();
        opaque_record(&mut sh, CT_APP, TLS12, &fake);
        c.send(1, &sh)?;
        let mut app = Vec::new();
        change_cipher_spec(&mut app, TLS12);
        opaque_record(&mut app, CT_APP, TLS12, &fake[..53]);
        opaque_record(&mut app, CT_APP, TLS12, &fake[7..70]);
        c.send(0, &app)?;
        c.send(1, &{
            let mut r = Vec::new();
            opaque_record(&mut r, CT_APP, TLS12, &fake[3..40]);
            r
        })?;
    } else {
        c.send(1, b"N")?;
        c.send(0, &pg_startup())?;
        c.send(1, &pg_msg(b'R', &3u32.to_be_bytes()))?;
        let mut pw = PASSWORD.as_bytes().to_vec();
        pw.push(0);
        c.send(0, &pg_msg(b'p', &pw))?;
        let mut ok = pg_msg(b'R', &0u32.to_be_bytes());
        ok.extend(pg_msg(b'S', b"server_version\x0016.3\x00"));
        ok.extend(pg_msg(b'K', &[0, 0, 0x30, 0x39, 0x12, 0x34, 0x56, 0x78]));
        ok.extend(pg_msg(b'Z', b"I"));
        c.send(1, &ok)?;
        c.send(0, &pg_msg(b'X', b""))?;
    }
    c.close()?;
    p.finish()
}

pub const CLIENT_SSL: u32 = 0x0800;
/// LONG_PASSWORD, FOUND_ROWS, LONG_FLAG, CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS,
/// SECURE_CONNECTION, PLUGIN_AUTH, CONNECT_ATTRS off, PLUGIN_AUTH_LENENC, DEPRECATE_EOF.
const CLIENT_CAPS: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x8_0000 | 0x20_0000 | 0x100_0000;

fn my_pkt(seq: u8, body: &[u8]) -> Vec<u8> {
    let mut b = (body.len() as u32).to_le_bytes()[..3].to_vec();
    b.push(seq);
    b.extend_from_slice(body);
    b
}

pub fn mysql_greeting() -> Vec<u8> {
    let caps = CLIENT_CAPS | CLIENT_SSL;
    let mut b = vec![0x0a];
    b.extend_from_slice(b"8.0.36\0");
    b.extend_from_slice(&42u32.to_le_bytes());
    b.extend_from_slice(b"fAkEsAlT");
    b.push(0);
    b.extend_from_slice(&(caps as u16).to_le_bytes());
    b.push(0xff);
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    b.push(21);
    b.extend_from_slice(&[0; 10]);
    b.extend_from_slice(b"nOtArEaLsAlT\0");
    b.extend_from_slice(b"mysql_native_password\0");
    my_pkt(0, &b)
}

/// The fixed 32-byte prefix of HandshakeResponse41 / SSLRequest.
fn my_prefix(caps: u32) -> Vec<u8> {
    let mut b = caps.to_le_bytes().to_vec();
    b.extend_from_slice(&0x0100_0000u32.to_le_bytes());
    b.push(0xff);
    b.extend_from_slice(&[0; 23]);
    b
}

fn mysql(ssl: bool) -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 3306)?;
    c.send(1, &mysql_greeting())?;
    if ssl {
        c.send(0, &my_pkt(1, &my_prefix(CLIENT_CAPS | CLIENT_SSL)))?;
        let (ch, sh) = hellos(false, "mysql.example.test");
        c.send(0, &ch)?;
        c.send(1, &sh)?;
    } else {
        let mut r = my_prefix(CLIENT_CAPS);
        r.extend_from_slice(DB_USER.as_bytes());
        r.push(0);
        r.push(20);
        r.extend((0..20u8).map(|i| i.wrapping_mul(97) ^ 0x3c));
        r.extend_from_slice(b"ehr\0mysql_native_password\0");
        c.send(0, &my_pkt(1, &r))?;
        c.send(1, &my_pkt(2, &[0, 0, 0, 2, 0, 0, 0]))?;
        let mut q = vec![0x03];
        q.extend_from_slice(SQL.as_bytes());
        c.send(0, &my_pkt(0, &q))?;
        let lenenc = |s: &str| {
            let mut v = vec![s.len() as u8];
            v.extend_from_slice(s.as_bytes());
            v
        };
        let mut col =
            [lenenc("def"), lenenc("ehr"), lenenc("patients"), lenenc("patients"), lenenc("name"), lenenc("name")]
                .concat();
        col.push(0x0c);
        col.extend_from_slice(&255u16.to_le_bytes());
        col.extend_from_slice(&1020u32.to_le_bytes());
        col.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0]);
        let mut rs = my_pkt(1, &[1]);
        rs.extend(my_pkt(2, &col));
        rs.extend(my_pkt(3, &lenenc("ZZTEST^LIMA")));
        rs.extend(my_pkt(4, &[0xfe, 0, 0, 2, 0, 0, 0]));
        c.send(1, &rs)?;
        c.send(0, &my_pkt(0, &[0x01]))?;
    }
    c.close()?;
    p.finish()
}

pub fn captures() -> io::Result<Vec<Capture>> {
    let tls = |v: &str, cipher: &str| json!({"type": "tls", "tls.version": v, "tls.cipher": cipher});
    Ok(vec![
        Capture {
            file: "postgres-ssl.pcap",
            description: "PostgreSQL SSLRequest answered 'S', then TLS 1.3 (SNI db.example.test, X25519, \
                          TLS_AES_128_GCM_SHA256) and encrypted records",
            expect: vec![tls("1.3", "TLS_AES_128_GCM_SHA256")],
            bytes: postgres(true)?,
        },
        Capture {
            file: "postgres-nossl.pcap",
            description: "PostgreSQL SSLRequest answered 'N'; startup with user and database, cleartext password auth",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "postgresql",
                "plaintext.credentials": ["postgresql-password"], "findings": ["plaintext.credentials"]})],
            bytes: postgres(false)?,
        },
        Capture {
            file: "mysql-ssl.pcap",
            description:
                "MySQL greeting with CLIENT_SSL, client SSLRequest, then TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 hellos",
            expect: vec![tls("1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")],
            bytes: mysql(true)?,
        },
        Capture {
            file: "mysql-nossl.pcap",
            description: "MySQL server offers CLIENT_SSL; client logs in without it and runs a patient query in clear",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "mysql",
                "plaintext.starttls.offered": true, "plaintext.starttls.requested": false,
                "findings": ["plaintext.starttls-missing"]})],
            bytes: mysql(false)?,
        },
    ])
}

#[cfg(test)]
mod tests {
    use tls_parser::{
        parse_tls_client_hello_extensions, parse_tls_plaintext, parse_tls_server_hello_extensions, TlsExtension,
        TlsMessage, TlsMessageHandshake,
    };

    use super::super::flow::parse::streams;
    use super::*;

    /// Parses the first record of `rec` with tls-parser; returns (cipher or 0, version, SNI).
    fn hello(rec: &[u8]) -> (u16, u16, Option<String>) {
        let (_, r) = parse_tls_plaintext(rec).expect("record parses");
        let TlsMessage::Handshake(m) = &r.msg[0] else { panic!("handshake") };
        let mut sni = None;
        let (cipher, mut version, exts) = match m {
            TlsMessageHandshake::ClientHello(ch) => {
                (0, ch.version.0, parse_tls_client_hello_extensions(ch.ext.unwrap_or(&[])).expect("extensions").1)
            }
            TlsMessageHandshake::ServerHello(sh) => {
                let exts = parse_tls_server_hello_extensions(sh.ext.unwrap_or(&[])).expect("extensions").1;
                (sh.cipher.0, sh.version.0, exts)
            }
            _ => panic!("hello"),
        };
        for e in exts {
            match e {
                TlsExtension::SupportedVersions(v) if v.len() == 1 => version = v[0].0,
                TlsExtension::SNI(names) => sni = Some(String::from_utf8_lossy(names[0].1).into_owned()),
                _ => {}
            }
        }
        (cipher, version, sni)
    }

    #[test]
    fn upgraded_hellos_parse_with_tls_parser() {
        let s = &streams(&postgres(true).unwrap())[0];
        assert_eq!(hello(&s[0][8..]), (0, TLS13, Some("db.example.test".into())));
        assert_eq!(hello(&s[1][1..]), (0x1301, TLS13, None));
        let s = &streams(&mysql(true).unwrap())[0];
        assert_eq!(hello(&s[0][36..]).2.as_deref(), Some("mysql.example.test"));
        let g = mysql_greeting().len();
        assert_eq!(hello(&s[1][g..]), (0xc02f, TLS12, None));
    }

    #[test]
    fn postgres_and_mysql_framing() {
        let s = &streams(&postgres(true).unwrap())[0];
        assert_eq!(&s[0][..8], &SSL_REQUEST);
        assert_eq!((s[1][0], s[0][8], s[1][1]), (b'S', 22, 22));
        let st = pg_startup();
        assert_eq!(u32::from_be_bytes([st[0], st[1], st[2], st[3]]) as usize, st.len());
        let s = &streams(&postgres(false).unwrap())[0];
        assert_eq!(&s[1][..9], b"NR\0\0\0\x08\0\0\0");
        let g = mysql_greeting();
        assert_eq!(u32::from_le_bytes([g[0], g[1], g[2], 0]) as usize, g.len() - 4);
        let s = &streams(&mysql(true).unwrap())[0];
        assert_eq!(&s[0][..4], &[32, 0, 0, 1]);
        let caps = u32::from_le_bytes([s[0][4], s[0][5], s[0][6], s[0][7]]);
        assert_ne!(caps & CLIENT_SSL, 0);
        assert_eq!(s[0][36], 22);
        let s = &streams(&mysql(false).unwrap())[0];
        let caps = u32::from_le_bytes([s[0][4], s[0][5], s[0][6], s[0][7]]);
        assert_eq!(caps & CLIENT_SSL, 0);
    }
}
