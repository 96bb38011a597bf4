//! XMPP inspector tests. Fixtures follow the RFC 6120 §9.1–9.2 example exchanges (c2s STARTTLS,
//! SASL PLAIN) and §9.3 style s2s streams, with fake values only; the prosody lab
//! (tests/live_xmpp.rs) checks the same facts against a real server.
use super::*;

pub(crate) const C_HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream from='juliet@im.example.test' \
to='im.example.test' version='1.0' xml:lang='en' xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams'>";
pub(crate) const S_FEATURES: &[u8] = b"<?xml version='1.0'?><stream:stream from='im.example.test' \
id='t7AMCin9zjMNwQKDnplntZPIDEI=' to='juliet@im.example.test' version='1.0' xml:lang='en' \
xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\n<stream:features>\
<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
pub(crate) const C_STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
pub(crate) const S_PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
/// Features offering STARTTLS (optional) and SASL PLAIN.
const S_FEATURES_OPTIONAL: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='im.example.test' version='1.0'>\
<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\
<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>\
<mechanism>PLAIN</mechanism></mechanisms></stream:features>";
/// SASL PLAIN in clear: base64 of "\0FAKE-USER01\0FakePass1".
const SECRET_B64: &str = "AEZBS0UtVVNFUjAxAEZha2VQYXNzMQ==";

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn run(c: &[u8], s: &[u8]) -> (StartTls, Vec<Credential>, XmppMeta) {
    let (session, meta) = detect(c, s).expect("XMPP detected");
    assert_eq!(session.protocol, Protocol::Xmpp);
    (session.starttls, session.credentials, meta)
}

#[test]
fn c2s_starttls_required_and_used() {
    let c = cat(&[C_HEADER, C_STARTTLS, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"]);
    let s = cat(&[S_FEATURES, S_PROCEED]);
    let (st, cr, meta) = run(&c, &s);
    assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false });
    assert!(cr.is_empty());
    assert_eq!(meta, XmppMeta { stream: Some("client"), tls_required: true });
}

#[test]
fn c2s_offered_but_sasl_plain_in_clear() {
    let auth = format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{SECRET_B64}</auth>");
    let c = cat(&[C_HEADER, auth.as_bytes()]);
    let s = cat(&[S_FEATURES_OPTIONAL, b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]);
    let (st, cr, meta) = run(&c, &s);
    assert_eq!(st, StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true });
    assert_eq!(cr, vec![Credential::XmppSaslPlain]);
    assert_eq!(meta, XmppMeta { stream: Some("client"), tls_required: false });
    // Nothing of the payload survives in what is returned.
    let all = format!("{:?}", detect(&c, &s));
    assert!(!all.contains(SECRET_B64) && !all.contains("juliet") && !all.contains("im.example"), "{all}");
}

#[test]
fn refused_upgrade_and_no_offer() {
    let s = cat(&[S_FEATURES, b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"]);
    let (st, _, _) = run(&cat(&[C_HEADER, C_STARTTLS]), &s);
    assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(false), cleartext_after_offer: false });
    // No STARTTLS feature; SCRAM (not a clear password) in clear.
    let s = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>\
</mechanisms></stream:features>";
    let c = cat(&[C_HEADER, b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1=</auth>"]);
    let (st, cr, _) = run(&c, s);
    assert_eq!(st, StartTls::default());
    assert!(cr.is_empty());
}

#[test]
fn s2s_prefixes_double_quotes_and_dialback_in_clear() {
    let c = b"<?xml version=\"1.0\"?>\r\n<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" \
xmlns=\"jabber:server\" xmlns:db=\"jabber:server:dialback\" to=\"b.example.test\" version=\"1.0\">\
<db:result from=\"a.example.test\" to=\"b.example.test\">b4835385f37fe2895af6c196b59097b16862406db80559900d596ba0e0ec3a2d</db:result>";
    let s = b"<?xml version=\"1.0\"?><stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" \
xmlns=\"jabber:server\" xmlns:db=\"jabber:server:dialback\" id=\"x\" version=\"1.0\">\
<stream:features><tls:starttls xmlns:tls=\"urn:ietf:params:xml:ns:xmpp-tls\"> <tls:required/> </tls:starttls>\
<dialback xmlns=\"urn:xmpp:features:dialback\"/></stream:features>";
    let (st, cr, meta) = run(c, s);
    assert_eq!(st, StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true });
    assert!(cr.is_empty());
    assert_eq!(meta, XmppMeta { stream: Some("server"), tls_required: true });
}

#[test]
fn legacy_iq_auth_password() {
    let c = cat(&[
        C_HEADER,
        b"<iq type='set' id='auth2'><query xmlns='jabber:iq:auth'><username>FAKE-USER01</username>\
<password>FakePass1</password><resource>x</resource></query></iq>",
    ]);
    let s = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1'>";
    let (st, cr, _) = run(&c, s);
    assert_eq!(st, StartTls::default(), "no features, no offer");
    assert_eq!(cr, vec![Credential::XmppIqAuthPassword]);
    // A digest (hashed) is not a clear password.
    let c = cat(&[C_HEADER, b"<iq type='set'><query xmlns='jabber:iq:auth'><digest>48fc78be</digest></query></iq>"]);
    assert!(run(&c, s).1.is_empty());
}

#[test]
fn quoted_angle_brackets_comments_and_whitespace() {
    let s = b"<?xml version='1.0'?>\n<!-- a > comment -->\n<stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' id='a>b\"c'>\n  <stream:features>\n    \
<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\">\n      <required />\n    </starttls>\n  </stream:features>\n";
    let (st, _, meta) = run(C_HEADER, s);
    assert!(st.offered);
    assert!(meta.tls_required);
}

#[test]
fn not_xmpp() {
    assert!(detect(b"EHLO x\r\n", b"220 mx ESMTP\r\n").is_none());
    assert!(detect(b"<html><body>", b"HTTP/1.1 200 OK\r\n").is_none());
    assert!(detect(b"<?xml version='1.0'?><ClinicalDocument xmlns='urn:hl7-org:v3'>", b"").is_none());
    assert!(detect(b"\x16\x03\x01\x00\x10", b"\x16\x03\x03\x00\x10").is_none());
    assert!(detect(b"", b"").is_none());
    // A stream header without the streams namespace or the stream prefix is not enough.
    assert!(detect(b"<foo:stream xmlns='jabber:client'>", b"").is_none());
}

/// Each direction cut at every offset (a head cut by the budget or a flow judged early): never
/// panics, recognises XMPP as soon as a header is whole, and facts only grow with the bytes.
#[test]
fn cut_anywhere_is_monotone() {
    let c = cat(&[C_HEADER, C_STARTTLS]);
    let s = cat(&[S_FEATURES, S_PROCEED]);
    let full = run(&c, &s);
    let mut last = (StartTls::default(), false);
    for cut in 0..=s.len() {
        let got = detect(&c, &s[..cut]).map(|(x, m)| (x.starttls, m));
        let (st, meta) = got.expect("the client's header is whole");
        assert!(st.offered >= last.0.offered && meta.tls_required >= last.1, "cut {cut}");
        last = (st, meta.tls_required);
    }
    assert_eq!(last.0, full.0);
    for cut in 0..=c.len() {
        let got = detect(&c[..cut], &[]);
        assert_eq!(got.is_some(), cut >= C_HEADER.len(), "cut {cut}");
    }
}

/// Hostile heads: unterminated quotes, huge tags, deep nesting, NULs — bounded, no panic.
#[test]
fn hostile_heads_are_bounded() {
    let mut h = C_HEADER.to_vec();
    h.extend(std::iter::repeat_n(b"<a>".as_slice(), 4000).flatten());
    h.extend_from_slice(b"<auth mechanism='PLAIN");
    let _ = detect(&h, &h);
    let long =
        [b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x='".as_slice(), &[b'a'; 9000]].concat();
    assert!(detect(&long, b"").is_none(), "a header longer than a tag may be is not read");
    let _ = detect(b"<stream:stream\0<<<>>>'\"<", b"<<<<<<<<<<");
    let _ = detect(&[b'<'; 8192], &[b'>'; 8192]);
}
