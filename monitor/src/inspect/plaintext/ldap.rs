//! Inspect, plaintext, LDAP (BER, definite lengths): simple binds, the StartTLS extended
//! operation and its answer, the StartTLS OID in the root DSE. Must never keep a DN, a
//! password, a filter or an attribute value.
use super::facts::{Credential, Protocol, Session, StartTls};
use super::scan::find;

const STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
/// protocolOp tags of RFC 4511.
const OPS: &[u8] = &[
    0x60, 0x61, 0x42, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x4a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x50, 0x73, 0x77,
    0x78, 0x79,
];
/// Client operations that carry data or identity (bind, search, modify, add, delete, modDN, compare).
const DATA_OPS: &[u8] = &[0x60, 0x63, 0x66, 0x68, 0x4a, 0x6c, 0x6e];

/// One complete TLV at the start of `b`: (tag, value, total length).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], usize)> {
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let l0 = *b.get(1)?;
    let (len, hdr) = if l0 < 0x80 {
        (l0 as usize, 2)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None; // indefinite or absurd
        }
        let bytes = b.get(2..2 + n)?;
        (bytes.iter().fold(0usize, |a, &x| (a << 8) | x as usize), 2 + n)
    };
    let end = hdr.checked_add(len)?;
    Some((tag, b.get(hdr..end)?, end))
}

struct Msg<'a> {
    id: u32,
    op: u8,
    body: &'a [u8],
}

/// Complete LDAPMessages from the start of `buf`, up to the first malformed or cut one.
fn messages(buf: &[u8]) -> Vec<Msg<'_>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while out.len() < 64 {
        let Some((0x30, seq, used)) = tlv(rest) else { break };
        let Some((0x02, id, n)) = tlv(seq) else { break };
        if id.is_empty() || id.len() > 4 {
            break;
        }
        let Some((op, body, m)) = tlv(&seq[n..]) else { break };
        if !OPS.contains(&op) {
            break;
        }
        let tail = &seq[n + m..];
        if !tail.is_empty() && !matches!(tlv(tail), Some((0xa0, _, k)) if k == tail.len()) {
            break;
        }
        out.push(Msg { id: id.iter().fold(0u32, |a, &x| (a << 8) | x as u32), op, body });
        rest = &rest[used..];
    }
    out
}

/// A simple bind with a non-empty password.
fn simple_bind(body: &[u8]) -> bool {
    let Some((0x02, _, a)) = tlv(body) else { return false };
    let Some((0x04, _, b)) = tlv(&body[a..]) else { return false };
    matches!(tlv(&body[a + b..]), Some((0x80, pw, _)) if !pw.is_empty())
}

fn is_starttls(m: &Msg<'_>) -> bool {
    m.op == 0x77 && matches!(tlv(m.body), Some((0x80, name, _)) if name == STARTTLS_OID)
}

pub(super) fn detect(client: &[u8], server: &[u8]) -> Option<Session> {
    let c = messages(client);
    let s = messages(server);
    if c.is_empty() && s.is_empty() {
        return None;
    }
    let offer_id = s.iter().find(|m| m.op == 0x64 && find(m.body, STARTTLS_OID).is_some()).map(|m| m.id);
    let mut st = StartTls { offered: offer_id.is_some(), ..StartTls::default() };
    let mut credentials = Vec::new();
    // Client messages after the one that asked for the root DSE are "after the offer".
    let mut after_offer = false;
    for m in &c {
        if is_starttls(m) {
            st.requested = true;
            let answer = s.iter().find(|r| r.op == 0x78 && r.id == m.id);
            st.accepted = answer.and_then(|r| match tlv(r.body) {
                Some((0x0a, code, _)) => Some(code == [0]),
                _ => None,
            });
            if st.accepted == Some(true) {
                break; // TLS follows
            }
        } else {
            if m.op == 0x60 && simple_bind(m.body) && !credentials.contains(&Credential::LdapSimpleBind) {
                credentials.push(Credential::LdapSimpleBind);
            }
            if after_offer && DATA_OPS.contains(&m.op) && (!st.requested || st.accepted == Some(false)) {
                st.cleartext_after_offer = true;
            }
        }
        if Some(m.id) == offer_id {
            after_offer = true;
        }
    }
    Some(Session { protocol: Protocol::Ldap, starttls: st, credentials })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn t(tag: u8, v: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if v.len() < 0x80 {
            out.push(v.len() as u8);
        } else {
            out.extend_from_slice(&[0x82, (v.len() >> 8) as u8, v.len() as u8]);
        }
        out.extend_from_slice(v);
        out
    }

    fn msg(id: u8, op: u8, body: &[u8]) -> Vec<u8> {
        let mut seq = t(0x02, &[id]);
        seq.extend(t(op, body));
        t(0x30, &seq)
    }

    pub(in super::super) fn bind(id: u8, dn: &[u8], pw: &[u8]) -> Vec<u8> {
        let mut b = t(0x02, &[3]);
        b.extend(t(0x04, dn));
        b.extend(t(0x80, pw));
        msg(id, 0x60, &b)
    }

    fn root_dse_search(id: u8) -> Vec<u8> {
        msg(
            id,
            0x63,
            &[
                0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00,
                0x87, 0x0b, b'o', b'b', b'j', b'e', b'c', b't', b'c', b'l', b'a', b's', b's', 0x30, 0x00,
            ],
        )
    }

    fn root_dse_entry(id: u8) -> Vec<u8> {
        let mut attr = t(0x04, b"supportedExtension");
        attr.extend(t(0x31, &t(0x04, STARTTLS_OID)));
        let mut e = t(0x04, b"");
        e.extend(t(0x30, &t(0x30, &attr)));
        let mut out = msg(id, 0x64, &e);
        out.extend(msg(id, 0x65, &[0x0a, 1, 0, 4, 0, 4, 0]));
        out
    }

    fn starttls_req(id: u8) -> Vec<u8> {
        msg(id, 0x77, &t(0x80, STARTTLS_OID))
    }

    fn ext_resp(id: u8, code: u8) -> Vec<u8> {
        msg(id, 0x78, &[0x0a, 1, code, 4, 0, 4, 0])
    }

    #[test]
    fn offered_and_upgraded() {
        let mut c = root_dse_search(1);
        c.extend(starttls_req(2));
        c.extend_from_slice(b"\x16\x03\x01\x00\x05");
        let mut s = root_dse_entry(1);
        s.extend(ext_resp(2, 0));
        let r = detect(&c, &s).unwrap();
        assert_eq!(r.protocol, Protocol::Ldap);
        assert_eq!(
            r.starttls,
            StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false }
        );
        assert!(r.credentials.is_empty());
    }

    #[test]
    fn offered_then_simple_bind_in_clear() {
        let mut c = root_dse_search(1);
        c.extend(bind(2, b"cn=ZZTEST ALPHA,dc=example,dc=test", b"FakePass1"));
        let r = detect(&c, &root_dse_entry(1)).unwrap();
        assert_eq!(
            r.starttls,
            StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true }
        );
        assert_eq!(r.credentials, vec![Credential::LdapSimpleBind]);
    }

    #[test]
    fn refused_and_anonymous() {
        let mut c = starttls_req(1);
        c.extend(bind(2, b"", b""));
        let r = detect(&c, &ext_resp(1, 2)).unwrap();
        assert_eq!(
            r.starttls,
            StartTls { offered: false, requested: true, accepted: Some(false), cleartext_after_offer: false }
        );
        assert!(r.credentials.is_empty(), "anonymous bind is not a credential");
    }

    #[test]
    fn long_form_lengths_and_garbage() {
        let long = bind(1, &[b'x'; 200], b"pw");
        assert_eq!(long[1], 0x82); // long form used
        assert_eq!(detect(&long, b"").unwrap().credentials, vec![Credential::LdapSimpleBind]);
        assert!(detect(&long[..long.len() - 1], b"").is_none(), "cut message is not parsed");
        assert!(detect(b"\x30\x80\x02\x01\x01", b"").is_none());
        assert!(detect(b"\x30\x03\x02\x01\x01", b"").is_none());
    }
}
