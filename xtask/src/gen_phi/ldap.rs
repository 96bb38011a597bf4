//! gen-phi LDAP captures (BER, RFC 4511): a simple bind in clear, and a rootDSE search showing
//! the StartTLS extended operation before a bind in clear. Must never emit a BER length that
//! disagrees with its contents.
use std::io;

use serde_json::json;

use super::flow::Pcap;
use super::{Capture, PASSWORD};

pub const BIND_DN: &str = "uid=zztest.user,ou=people,dc=example,dc=test";
pub const STARTTLS_OID: &str = "1.3.6.1.4.1.1466.20037";

/// One BER TLV with a definite length (short or long form).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut b = vec![tag];
    let n = content.len();
    if n < 0x80 {
        b.push(n as u8);
    } else if n < 0x100 {
        b.extend_from_slice(&[0x81, n as u8]);
    } else {
        b.push(0x82);
        b.extend_from_slice(&(n as u16).to_be_bytes());
    }
    b.extend_from_slice(content);
    b
}

fn int(v: u8) -> Vec<u8> {
    tlv(0x02, &[v])
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// LDAPMessage ::= SEQUENCE { messageID, protocolOp }.
fn ldap_msg(id: u8, op: Vec<u8>) -> Vec<u8> {
    tlv(0x30, &cat(&[int(id), op]))
}

fn bind_request(id: u8) -> Vec<u8> {
    ldap_msg(id, tlv(0x60, &cat(&[int(3), tlv(0x04, BIND_DN.as_bytes()), tlv(0x80, PASSWORD.as_bytes())])))
}

/// LDAPResult body (success) under `tag`.
fn result(id: u8, tag: u8) -> Vec<u8> {
    ldap_msg(id, tlv(tag, &cat(&[tlv(0x0a, &[0]), tlv(0x04, b""), tlv(0x04, b"")])))
}

fn ldap(rootdse: bool) -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 389)?;
    let mut id = 1;
    if rootdse {
        let filter = tlv(0x87, b"objectClass");
        let attrs = tlv(0x30, &tlv(0x04, b"supportedExtension"));
        let search = tlv(
            0x63,
            &cat(&[tlv(0x04, b""), tlv(0x0a, &[0]), tlv(0x0a, &[0]), int(0), int(0), tlv(0x01, &[0]), filter, attrs]),
        );
        c.send(0, &ldap_msg(id, search))?;
        let vals: Vec<Vec<u8>> = [STARTTLS_OID, "1.3.6.1.4.1.4203.1.11.1", "1.3.6.1.4.1.4203.1.11.3"]
            .iter()
            .map(|v| tlv(0x04, v.as_bytes()))
            .collect();
        let attr = tlv(0x30, &cat(&[tlv(0x04, b"supportedExtension"), tlv(0x31, &vals.concat())]));
        let entry = ldap_msg(id, tlv(0x64, &cat(&[tlv(0x04, b""), tlv(0x30, &attr)])));
        c.send(1, &cat(&[entry, result(id, 0x65)]))?;
        id += 1;
    }
    c.send(0, &bind_request(id))?;
    c.send(1, &result(id, 0x61))?;
    c.send(0, &ldap_msg(id + 1, vec![0x42, 0x00]))?;
    c.close()?;
    p.finish()
}

pub fn captures() -> io::Result<Vec<Capture>> {
    Ok(vec![
        Capture {
            file: "ldap-simple-bind.pcap",
            description: "LDAPv3 simple bind with a password in clear on port 389, then unbind",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "ldap",
                "plaintext.credentials": ["ldap-simple-bind"], "findings": ["plaintext.credentials"]})],
            bytes: ldap(false)?,
        },
        Capture {
            file: "ldap-nostarttls.pcap",
            description: "LDAP rootDSE search shows the StartTLS extended operation; client binds in clear anyway",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "ldap",
                "plaintext.credentials": ["ldap-simple-bind"], "plaintext.starttls.offered": true,
                "plaintext.starttls.requested": false,
                "findings": ["plaintext.credentials", "plaintext.starttls-missing"]})],
            bytes: ldap(true)?,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::super::flow::parse::streams;
    use super::*;

    /// Reads one TLV; returns (tag, content, rest), checking the length fits.
    fn read(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, hdr) = match b[1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(b[2]), 3),
            0x82 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            n => panic!("length form {n:#x}"),
        };
        assert!(hdr + len <= b.len(), "BER length overruns");
        (b[0], &b[hdr..hdr + len], &b[hdr + len..])
    }

    fn ops(mut s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        while !s.is_empty() {
            let (tag, msg, rest) = read(s);
            assert_eq!(tag, 0x30);
            let (t, _, after_id) = read(msg);
            assert_eq!(t, 0x02);
            let (op, _, tail) = read(after_id);
            assert!(tail.is_empty(), "one op per message");
            v.push(op);
            s = rest;
        }
        v
    }

    #[test]
    fn ber_lengths_are_consistent() {
        let s = &streams(&ldap(true).unwrap())[0];
        assert_eq!(ops(&s[0]), [0x63, 0x60, 0x42]);
        assert_eq!(ops(&s[1]), [0x64, 0x65, 0x61]);
        let bind_msg = bind_request(2);
        let (_, msg, _) = read(&bind_msg);
        let (_, _, op) = read(msg);
        let (_, bind, _) = read(op);
        let (_, _, r) = read(bind);
        let (_, dn, r) = read(r);
        assert_eq!(dn, BIND_DN.as_bytes());
        assert_eq!(read(r).0, 0x80);
        assert_eq!(read(r).1, PASSWORD.as_bytes());
        assert_eq!(tlv(4, &[0; 200])[..3], [4, 0x81, 200]);
        assert_eq!(tlv(4, &[0; 300])[..4], [4, 0x82, 1, 44]);
    }
}
