//! Inspect, mutual TLS (TLS <= 1.2): the server's CertificateRequest (RFC 5246 §7.4.4, RFC 4346
//! §7.4.4). Under TLS 1.3 the CertificateRequest and the client's Certificate are encrypted and
//! never reach this parser. Must never keep more than [`MAX_CA_NAMES`] names of at most
//! [`MAX_NAME_CHARS`] characters, never panic on malformed bytes.
use x509_parser::prelude::{FromDer, X509Name};

/// Most CA names kept from one CertificateRequest (the count of all is kept apart).
pub const MAX_CA_NAMES: usize = 16;
/// Longest CA name kept, in characters (a longer one is cut and ends in `…`).
pub const MAX_NAME_CHARS: usize = 256;
/// Most certificate types and signature algorithms kept.
const MAX_LIST: usize = 64;

/// What the server asked the client for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertRequest {
    /// `certificate_types` (ClientCertificateType codes: 1 rsa_sign, 64 ecdsa_sign, …).
    pub cert_types: Vec<u8>,
    /// `supported_signature_algorithms` (TLS 1.2 only; empty before).
    pub sig_algs: Vec<u16>,
    /// The acceptable CAs' distinguished names as text (RFC 4514 order as x509-parser prints
    /// them), at most [`MAX_CA_NAMES`]; a name that does not parse is `unparsable DN (N bytes)`.
    pub ca_names: Vec<String>,
    /// How many names the message listed (may exceed `ca_names.len()`).
    pub ca_names_total: usize,
}

/// Certificate type code → its RFC name.
pub fn cert_type_name(t: u8) -> String {
    match t {
        1 => "rsa_sign".into(),
        2 => "dss_sign".into(),
        3 => "rsa_fixed_dh".into(),
        4 => "dss_fixed_dh".into(),
        5 => "rsa_ephemeral_dh".into(),
        6 => "dss_ephemeral_dh".into(),
        20 => "fortezza_dms".into(),
        64 => "ecdsa_sign".into(),
        65 => "rsa_fixed_ecdh".into(),
        66 => "ecdsa_fixed_ecdh".into(),
        other => format!("0x{other:02x}"),
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<usize> {
    b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]) as usize)
}

/// Parse a CertificateRequest body; `tls12` when the negotiated version is TLS 1.2 (the only
/// one with `supported_signature_algorithms`). `None` when the lengths do not add up.
pub fn parse(body: &[u8], tls12: bool) -> Option<CertRequest> {
    let n = *body.first()? as usize;
    let types = body.get(1..1 + n)?;
    let mut i = 1 + n;
    let mut sig_algs = Vec::new();
    if tls12 {
        let len = u16_at(body, i)?;
        let list = body.get(i + 2..i + 2 + len)?;
        sig_algs = list.chunks_exact(2).take(MAX_LIST).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        i += 2 + len;
    }
    let len = u16_at(body, i)?;
    let mut names = body.get(i + 2..i + 2 + len)?;
    let mut ca_names = Vec::new();
    let mut total = 0;
    while !names.is_empty() {
        let l = u16_at(names, 0)?;
        let der = names.get(2..2 + l)?;
        total += 1;
        if ca_names.len() < MAX_CA_NAMES {
            ca_names.push(dn_text(der));
        }
        names = &names[2 + l..];
    }
    Some(CertRequest {
        cert_types: types.iter().copied().take(MAX_LIST).collect(),
        sig_algs,
        ca_names,
        ca_names_total: total,
    })
}

/// A DER DistinguishedName as text, bounded.
fn dn_text(der: &[u8]) -> String {
    let s = match X509Name::from_der(der) {
        Ok((_, name)) => name.to_string(),
        Err(_) => return format!("unparsable DN ({} bytes)", der.len()),
    };
    if s.chars().count() <= MAX_NAME_CHARS {
        return s;
    }
    let mut cut: String = s.chars().take(MAX_NAME_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CertificateRequest body `openssl s_server -tls1_2 -Verify 1 -CAfile ca.pem` (OpenSSL
    /// 3.0.19) sent in tests/captures/openssl-3.0-mtls-tls12-tls13.pcap, first flow (port
    /// 44301): types rsa_sign, dss_sign, ecdsa_sign; 21 signature algorithms; one CA name.
    const OPENSSL_CR: &str = "03010240002e040305030603080708080809080a080b08040805080604010501060103030203030102010302020204020502\
060200380036303431133011060355040a0c0a746c736d6f6e206c6162311d301b06035504030c14746c736d6f6e206c616220636c69656e74204341";

    #[test]
    fn openssl_certificate_request() {
        let body = hex::decode(OPENSSL_CR).expect("hex");
        let cr = parse(&body, true).expect("parses");
        assert_eq!(cr.cert_types, vec![1, 2, 64]);
        assert_eq!(cr.sig_algs.len(), 23);
        assert_eq!(cr.sig_algs[0], 0x0403);
        assert_eq!(cr.ca_names, vec!["O=tlsmon lab, CN=tlsmon lab client CA".to_string()]);
        assert_eq!(cr.ca_names_total, 1);
        // Every cut is either a whole parse or None, never a panic.
        for cut in 0..body.len() {
            let _ = parse(&body[..cut], true);
        }
        assert_eq!(parse(&body, false), None, "a TLS 1.1 reading sees a bad DN list length");
    }

    /// A CertificateRequest, then an empty client-style Certificate, fed through the record
    /// layer split at every offset: the same facts every time.
    #[test]
    fn split_anywhere_through_the_record_layer() {
        use super::super::TlsStream;
        let body = hex::decode(OPENSSL_CR).expect("hex");
        let mut hs = vec![13, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        hs.extend_from_slice(&[11, 0, 0, 3, 0, 0, 0]);
        let mut rec = vec![22, 3, 3];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        for cut in 0..=rec.len() {
            let mut s = TlsStream::default();
            // As if the ServerHello (TLS 1.2) had come before.
            s.facts.server_hello = Some(super::super::hello::ServerHello { version: 0x0303, ..Default::default() });
            s.feed(&rec[..cut], 1);
            s.feed(&rec[cut..], 2);
            let cr = s.facts.cert_request.as_ref().expect("request");
            assert_eq!(cr.ca_names, ["O=tlsmon lab, CN=tlsmon lab client CA"], "cut {cut}");
            assert_eq!(cr.sig_algs.len(), 23, "cut {cut}");
            assert!(s.facts.cert_empty && s.facts.certs.is_empty(), "cut {cut}");
            assert!(s.facts.anomalies.is_empty(), "cut {cut}: {:?}", s.facts.anomalies);
        }
    }

    #[test]
    fn names_are_bounded() {
        let dn = hex::decode("303431133011060355040a0c0a746c736d6f6e206c6162311d301b06035504030c14746c736d6f6e206c616220636c69656e74204341")
        .expect("hex");
        let mut list = Vec::new();
        for _ in 0..40 {
            list.extend_from_slice(&(dn.len() as u16).to_be_bytes());
            list.extend_from_slice(&dn);
        }
        list.extend_from_slice(&[0, 3, 1, 2, 3]);
        let mut body = vec![1, 64];
        body.extend_from_slice(&(list.len() as u16).to_be_bytes());
        body.extend_from_slice(&list);
        let cr = parse(&body, false).expect("parses");
        assert_eq!(cr.ca_names.len(), MAX_CA_NAMES);
        assert_eq!(cr.ca_names_total, 41);
        assert_eq!(cert_type_name(64), "ecdsa_sign");
        // CN of 300 characters: SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String } } }.
        let der_len = |n: usize| vec![0x82, (n >> 8) as u8, n as u8];
        let mut atv = vec![0x06, 0x03, 0x55, 0x04, 0x03, 0x0c];
        atv.extend(der_len(300));
        atv.extend(std::iter::repeat_n(b'x', 300));
        let wrap = |tag: u8, inner: Vec<u8>| [vec![tag], der_len(inner.len()), inner].concat();
        let long = wrap(0x30, wrap(0x31, wrap(0x30, atv)));
        let text = dn_text(&long);
        assert_eq!(text.chars().count(), MAX_NAME_CHARS);
        assert!(text.starts_with("CN=xxx") && text.ends_with('…'), "{text}");
        assert_eq!(dn_text(&[0x04, 0x01, 0xff]), "unparsable DN (3 bytes)");
    }
}
