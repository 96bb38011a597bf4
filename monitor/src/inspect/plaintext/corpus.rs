//! Inspect, plaintext, tests on real captured bytes: the clear heads of public corpus captures
//! (../shared/corpus, reassembled per direction, cut where TLS begins), through `inspect`.
//! Must never assert anything but protocol metadata (the captures' sample PHI stays out).
use super::*;

/// nDPI tests/cfgs/default/pcap/hl7.pcap (corpus ndpi__hl7.pcap), client 49242 -> 6661, whole stream (nDPI's public sample message).
const HL7_C: &[u8] = b"\x0bMSH|^~\\&|SENDING_APPLICATION|SENDING_FACILITY|RECEIVING_APPLICATION|RECEIVING_FACILITY|20110613083617||ADT^A01|934576120110613083617|P|2.3||||\rEVN|A01|20110613083617|||\rPID|1||135769||MOUSE^MICKEY^||19281118|M|||123 Main St.^^Lake Buena Vista^FL ^32830||(407)939-5555^^^ohtoodles@notdisney.com|||||1719|999999999||| |MOUSETOWN||||||||||||||||\rNK1|1|MOUSE^MINNIE|WIFE||||||NK\rPV1|1|O|||||^^^^^^^^|^^^^^^^^\rAL1|1||^Penicillin||Anaphylactic shock\rAL1|2||^Cat dander||Skin rash\r\x1c\r";
/// same capture, server reply.
const HL7_S: &[u8] = b"\x0bMSH|^~\\&|RECEIVING_APPLICATION|RECEIVING_FACILITY|SENDING_APPLICATION|SENDING_FACILITY|20180129192342.245||ACK|20180129192342.245|P|2.3\rMSA|AA|934576120110613083617\r\x1c\r";
/// Suricata verify ldap-starttls (corpus suricata__ldap-starttls.pcap), client 37386 -> 389, up to the ClientHello.
const LDAP_C: &[u8] = b"0\x1d\x02\x01\x01w\x18\x80\x161.3.6.1.4.1.1466.20037";
/// same capture, server, up to the ServerHello.
const LDAP_S: &[u8] = b"0\x0c\x02\x01\x01x\x07\n\x01\x00\x04\x00\x04\x00";
/// nDPI pop3_stls.pcap (corpus ndpi__pop3_stls.pcap), client 50583 -> 110, up to the ClientHello.
const POP3_C: &[u8] = b"AUTH\r\nCAPA\r\nSTLS\r\n";
/// same capture, server, up to the ServerHello.
const POP3_S: &[u8] = b"+OK lavad\r\n-ERR Unrecognized command.\r\n+OK Capabilities follow.\r\nTOP\r\nUSER\r\nUIDL\r\nSTLS\r\nPIPELINING\r\nEXPIRE NEVER\r\nLOGIN-DELAY 0\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nIMPLEMENTATION lavad 4.3.0\r\n.\r\n+OK Ready to start TLS negotiation.\r\n";
/// Zeek testing/btest/Traces/tls/smtp-starttls.pcap (corpus zeek__smtp-starttls.pcap), client 54170 -> 25, up to the ClientHello.
const SMTP_C: &[u8] = b"EHLO openssl.client.net\r\nSTARTTLS\r\n";
/// same capture, server, up to the ServerHello.
const SMTP_S: &[u8] = b"220 mx.google.com ESMTP hf10si4097299icc.190 - gsmtp\r\n250-mx.google.com at your service, [192.150.187.237]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n220 2.0.0 Ready to start TLS\r\n";
/// nDPI imap-plaintext.pcap (corpus ndpi__imap-plaintext.pcap), first lines of both directions.
const IMAP_C: &[u8] = b"C00000 CAPABILITY\r\nC00001 LOGIN samir pfres\r\nC00002 LIST \"\" \"*\"\r\n";
const IMAP_S: &[u8] = b"* OK IMAP4Rev1 Server Version 4.9.04.012\r\n* CAPABILITY IMAP4rev1 IDLE AUTH=LOGIN AUTH=PLAIN AUTH=CRAM-MD5\r\nC00000 OK CAPABILITY completed\r\nC00001 OK LOGIN completed\r\n";

/// Sample PHI and credentials of those captures, which must never come out.
const SAMPLE_PHI: &[&str] =
    &["MOUSE", "MICKEY", "135769", "19281118", "Main St", "939-5555", "samir", "pfres", "934576120110613083617"];

fn upgraded() -> Option<StartTls> {
    Some(StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false })
}

#[test]
fn ndpi_hl7() {
    let f = inspect(HL7_C, HL7_S, 6661);
    assert_eq!((f.protocol, f.confidence), (Some(Protocol::Hl7), Some(Confidence::High)));
    assert_eq!(
        f.hl7,
        Some(Hl7Meta {
            message_types: vec!["ADT^A01".into(), "ACK".into()],
            version: Some("2.3".into()),
            messages: 2,
            batch: false,
            mllp: true
        })
    );
}

#[test]
fn suricata_ldap_starttls() {
    let f = inspect(LDAP_C, LDAP_S, 389);
    assert_eq!(f.protocol, Some(Protocol::Ldap));
    assert_eq!(
        f.starttls,
        Some(StartTls { offered: false, requested: true, accepted: Some(true), cleartext_after_offer: false })
    );
}

#[test]
fn ndpi_pop3_stls() {
    let f = inspect(POP3_C, POP3_S, 110);
    assert_eq!(f.protocol, Some(Protocol::Pop3));
    assert_eq!(f.starttls, upgraded());
    assert!(f.credentials.is_empty());
}

#[test]
fn zeek_smtp_starttls() {
    let f = inspect(SMTP_C, SMTP_S, 25);
    assert_eq!(f.protocol, Some(Protocol::Smtp));
    assert_eq!(f.starttls, upgraded());
    // Port-agnostic.
    assert_eq!(inspect(SMTP_C, SMTP_S, 2500).starttls, upgraded());
}

#[test]
fn ndpi_imap_plaintext_login() {
    let f = inspect(IMAP_C, IMAP_S, 143);
    assert_eq!(f.protocol, Some(Protocol::Imap));
    assert_eq!(f.credentials, vec![Credential::ImapLogin]);
    assert_eq!(f.starttls, Some(StartTls::default()));
}

#[test]
fn captures_cut_anywhere_and_mutated_never_panic_nor_leak() {
    let pairs: [(&[u8], &[u8], u16); 5] = [
        (HL7_C, HL7_S, 6661),
        (LDAP_C, LDAP_S, 389),
        (POP3_C, POP3_S, 110),
        (SMTP_C, SMTP_S, 25),
        (IMAP_C, IMAP_S, 143),
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (c, s, port) in pairs {
        for cut in 0..=c.len() {
            let f = inspect(&c[..cut], s, port);
            let dump = format!("{f:?}");
            assert!(SAMPLE_PHI.iter().all(|p| !dump.contains(p)), "{dump}");
        }
        for _ in 0..300 {
            let mut m = c.to_vec();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if let Some(b) = m.get_mut((x as usize >> 8) % c.len().max(1)) {
                    *b = x as u8;
                }
            }
            let dump = format!("{:?}", inspect(&m, s, port));
            assert!(SAMPLE_PHI.iter().all(|p| !dump.contains(p)), "{dump}");
        }
    }
}
