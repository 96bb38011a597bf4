//! Inspect, plaintext, whole-inspector tests: every protocol through `inspect`, negatives,
//! every prefix of the fixtures, and no fake PHI in any result. Fixtures are hand-written
//! protocol bytes with fake data only.
use super::*;

const PHI: &[&str] = &[
    "ZZTEST",
    "ALPHA",
    "FAKE-MRN-0001",
    "19010101",
    "FakePass1",
    "FAKE-USER01",
    "FAKE-CALLING-AE",
    "FAKE-CALLED-AE",
    "FAKESENDER",
    "FAKE-CTRL",
    "fake_mrn_db",
    "/fhir/",
    "/dicom-web/",
    "example.test",
];

const HL7_MLLP: &[u8] = b"\x0bMSH|^~\\&|SND|FAC|RCV|FAC|20260101120000||ADT^A01^ADT_A01|FAKE-CTRL-1|P|2.5.1\rPID|1||FAKE-MRN-0001||ZZTEST^ALPHA||19010101|F\r\x1c\r";
const HL7_ACK: &[u8] =
    b"\x0bMSH|^~\\&|RCV|FAC|SND|FAC|20260101120001||ACK^A01|FAKE-CTRL-2|P|2.5.1\rMSA|AA|FAKE-CTRL-1\r\x1c\r";

fn smtp_fixture() -> (Vec<u8>, Vec<u8>) {
    let c = b"EHLO client.example.test\r\nAUTH PLAIN AEZBS0UtVVNFUjAxAEZha2VQYXNzMQ==\r\nMAIL FROM:<zztest@example.test>\r\n".to_vec();
    let mut s = smtp::tests::EHLO_REPLY.to_vec();
    s.extend_from_slice(b"235 2.7.0 ok\r\n250 ok\r\n");
    (c, s)
}

/// (client, server, port) of every fixture.
fn fixtures() -> Vec<(Vec<u8>, Vec<u8>, u16)> {
    let (dc, ds) = dicom::tests::fixture();
    let (sc, ss) = smtp_fixture();
    let mut ftp_s = ftp::tests::FEAT.to_vec();
    ftp_s.extend_from_slice(b"331 ok\r\n230 ok\r\n");
    let mut pg = db::tests::pg_startup();
    pg.extend_from_slice(b"p\x00\x00\x00\x0eFakePass1\x00\x00");
    vec![
        (HL7_MLLP.to_vec(), HL7_ACK.to_vec(), 2575),
        (dc, ds, 104),
        (http::tests::FHIR_GET.to_vec(), http::tests::FHIR_RESP.to_vec(), 80),
        (x12::tests::CLAIM.to_vec(), b"".to_vec(), 9000),
        (sc, ss, 25),
        (b"FEAT\r\nUSER FAKE-USER01\r\nPASS FakePass1\r\n".to_vec(), ftp_s, 21),
        (ldap::tests::bind(1, b"cn=ZZTEST ALPHA,dc=example,dc=test", b"FakePass1"), b"".to_vec(), 389),
        (pg, b"R\x00\x00\x00\x08\x00\x00\x00\x03".to_vec(), 5432),
        (db::tests::mysql_client(0x0a820d, 80), db::tests::mysql_greeting(0xffff), 3306),
    ]
}

#[test]
fn every_protocol_through_inspect() {
    let got: Vec<(Option<Protocol>, Option<Confidence>)> =
        fixtures().iter().map(|(c, s, p)| inspect(c, s, *p)).map(|f| (f.protocol, f.confidence)).collect();
    use Confidence::*;
    use Protocol::*;
    assert_eq!(
        got,
        vec![
            (Some(Hl7), Some(High)),
            (Some(Dicom), Some(High)),
            (Some(Fhir), Some(High)),
            (Some(X12), Some(High)),
            (Some(Smtp), None),
            (Some(Ftp), None),
            (Some(Ldap), None),
            (Some(Postgresql), None),
            (Some(Mysql), None),
        ]
    );
}

#[test]
fn hl7_facts_exact() {
    let f = inspect(HL7_MLLP, HL7_ACK, 12345);
    assert_eq!(
        f,
        PlainFacts {
            protocol: Some(Protocol::Hl7),
            confidence: Some(Confidence::High),
            hl7: Some(Hl7Meta {
                message_types: vec!["ADT^A01".into(), "ACK^A01".into()],
                version: Some("2.5.1".into()),
                messages: 2,
                batch: false,
                mllp: true,
            }),
            ..PlainFacts::default()
        }
    );
}

#[test]
fn session_facts_exact() {
    let (c, s) = smtp_fixture();
    let f = inspect(&c, &s, 2525);
    assert_eq!(f.credentials, vec![Credential::SmtpAuthPlain]);
    assert_eq!(
        f.starttls,
        Some(StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true })
    );
    let f = inspect(b"EHLO a\r\nQUIT\r\n", b"220 mx ESMTP\r\n250 mx\r\n221 bye\r\n", 25);
    assert_eq!(f.starttls, Some(StartTls::default()), "recognised, nothing offered");
    let f = inspect(&db::tests::mysql_client(0x0a820d, 80), &db::tests::mysql_greeting(0xffff), 3306);
    assert_eq!(
        f.starttls,
        Some(StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true })
    );
}

#[test]
fn x12_over_http_wins_and_keeps_credentials() {
    let mut c =
        b"POST /edi HTTP/1.1\r\nAuthorization: Basic eDp5\r\nContent-Type: application/edi-x12\r\n\r\n".to_vec();
    c.extend_from_slice(x12::tests::CLAIM);
    let f = inspect(&c, b"", 443);
    assert_eq!((f.protocol, f.confidence), (Some(Protocol::X12), Some(Confidence::High)));
    assert_eq!(f.credentials, vec![Credential::HttpBasic]);
    assert!(f.http.is_some() && f.x12.is_some());
}

#[test]
fn negatives_give_default() {
    let client_hello = b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03\x11\x22\x33\x44\x0a\r\n\x30\x80";
    let server_hello = b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03";
    assert_eq!(inspect(client_hello, server_hello, 443), PlainFacts::default());
    assert_eq!(inspect(client_hello, server_hello, 25), PlainFacts::default());
    assert_eq!(inspect(b"", b"", 2575), PlainFacts::default());
    assert_eq!(inspect(b"", b"", 104), PlainFacts::default());
    // Deterministic pseudo-random bytes (xorshift).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for port in [0u16, 21, 25, 80, 104, 110, 143, 389, 2575, 3306, 5222, 5432] {
        let mut buf = vec![0u8; 4096];
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let (c, s) = buf.split_at(2048);
        assert_eq!(inspect(c, s, port), PlainFacts::default(), "port {port}");
    }
}

#[test]
fn plain_html_is_http_without_confidence() {
    let f = inspect(
        b"GET /about.html HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n<p/>\n",
        80,
    );
    assert_eq!((f.protocol, f.confidence), (Some(Protocol::Http), None));
    assert!(f.credentials.is_empty() && f.starttls.is_none());
}

#[test]
fn anonymous_is_not_a_credential() {
    let f = inspect(b"USER anonymous\r\nPASS FakePass1\r\n", b"220 FTP\r\n331 ok\r\n230 ok\r\n", 21);
    assert_eq!(f.protocol, Some(Protocol::Ftp));
    assert!(f.credentials.is_empty());
    let f = inspect(&ldap::tests::bind(1, b"", b""), b"", 389);
    assert_eq!(f.protocol, Some(Protocol::Ldap));
    assert!(f.credentials.is_empty());
}

#[test]
fn every_prefix_never_panics_and_keeps_the_protocol() {
    for (c, s, port) in fixtures() {
        let full = inspect(&c, &s, port);
        for cut in 0..=c.len() {
            let f = inspect(&c[..cut], &s, port);
            if f.protocol.is_some() && f.protocol != full.protocol {
                panic!("client cut {cut}: {:?} vs {:?}", f.protocol, full.protocol);
            }
            assert!(f.credentials.iter().all(|x| full.credentials.contains(x)), "client cut {cut}");
        }
        for cut in 0..=s.len() {
            let f = inspect(&c, &s[..cut], port);
            if f.protocol.is_some() && f.protocol != full.protocol {
                panic!("server cut {cut}: {:?} vs {:?}", f.protocol, full.protocol);
            }
        }
        // Both cut at once, and the directions swapped: only "no panic" is asked.
        for cut in 0..=c.len().max(s.len()) {
            let _ = inspect(&c[..cut.min(c.len())], &s[..cut.min(s.len())], port);
            let _ = inspect(&s[..cut.min(s.len())], &c[..cut.min(c.len())], port);
        }
    }
}

#[test]
fn no_fake_phi_in_any_result() {
    for (c, s, port) in fixtures() {
        let dump = format!("{:?}", inspect(&c, &s, port));
        for p in PHI {
            assert!(!dump.contains(p), "{p} leaked: {dump}");
        }
    }
}
