//! Inspect, certificates (TLS <= 1.2 Certificate messages): X.509 facts via x509-parser.
//! Must never keep the DER around beyond the bounded per-thread cache of recent certificates
//! ([`parse_cert_cached`]), never panic on malformed certificates.
use std::cell::{Cell, RefCell};

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

/// Most certificates of one chain we look at.
pub const MAX_CHAIN: usize = 6;

/// The facts of one certificate that the policy and the outputs need.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CertInfo {
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_cn: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub san_dns: Vec<String>,
    /// Validity, seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub key_type: &'static str,
    pub key_bits: u32,
    pub signature_algorithm: String,
    pub sha256: String,
    pub serial: String,
    pub self_signed: bool,
    pub is_ca: bool,
}

/// Parse one DER certificate. `None` if it is not a certificate x509-parser can read.
pub fn parse_cert(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = |name: &X509Name| name.iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_owned);
    let san_dns = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .take(64)
                .collect()
        })
        .unwrap_or_default();
    let (key_type, key_bits) = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => ("rsa", k.key_size() as u32),
        Ok(x509_parser::public_key::PublicKey::EC(p)) => ("ec", ec_bits(&cert, p.key_size() as u32)),
        Ok(x509_parser::public_key::PublicKey::DSA(k)) => ("dsa", k.len() as u32 * 8),
        _ => (key_type_by_oid(&cert.public_key().algorithm.algorithm.to_id_string()), 0),
    };
    let self_signed = cert.subject().as_raw() == cert.issuer().as_raw() && akid_matches_skid(&cert);
    Some(CertInfo {
        subject: cert.subject().to_string(),
        subject_cn: cn(cert.subject()),
        issuer: cert.issuer().to_string(),
        issuer_cn: cn(cert.issuer()),
        san_dns,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key_type,
        key_bits,
        signature_algorithm: sig_alg_name(&cert.signature_algorithm.algorithm.to_id_string()),
        sha256: hex::encode_upper(Sha256::digest(der)),
        serial: cert.raw_serial_as_string(),
        self_signed,
        is_ca: cert.is_ca(),
    })
}

/// Most certificates the per-thread cache holds.
const CACHE_CERTS: usize = 256;
/// Most DER bytes the per-thread cache holds (larger certificates are parsed, not kept).
const CACHE_BYTES: usize = 1 << 20;

/// Recently parsed certificates of this thread (a pipeline's, or a replay worker's): the same
/// server sends the same chain on every connection, and parsing dominates the chain's cost.
/// Full when at [`CACHE_CERTS`] or [`CACHE_BYTES`]: then emptied, the entries dropped counted.
#[derive(Default)]
struct CertCache {
    map: FxHashMap<Box<[u8]>, Option<CertInfo>>,
    bytes: usize,
}

thread_local! {
    static CACHE: RefCell<CertCache> = RefCell::default();
    /// Entries the cache of this thread dropped, not yet taken by [`take_cache_evicted`].
    static EVICTED: Cell<u64> = const { Cell::new(0) };
}

/// [`parse_cert`], remembered: a certificate seen before on this thread is not parsed again
/// (the result is the same, the function being pure).
pub fn parse_cert_cached(der: &[u8]) -> Option<CertInfo> {
    if der.len() > CACHE_BYTES / 16 {
        return parse_cert(der);
    }
    CACHE.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else { return parse_cert(der) };
        if let Some(info) = c.map.get(der) {
            return info.clone();
        }
        let info = parse_cert(der);
        if c.map.len() >= CACHE_CERTS || c.bytes + der.len() > CACHE_BYTES {
            EVICTED.with(|e| e.set(e.get() + c.map.len() as u64));
            c.map.clear();
            c.bytes = 0;
        }
        c.bytes += der.len();
        c.map.insert(der.into(), info.clone());
        info
    })
}

/// Certificates this thread's cache dropped since the last call (for the pipeline's counters).
pub fn take_cache_evicted() -> u64 {
    EVICTED.with(|e| e.replace(0))
}

/// An EC point's size says 2·bits+8 for uncompressed points; prefer the named curve.
fn ec_bits(cert: &X509Certificate<'_>, point_bits: u32) -> u32 {
    let curve = cert.public_key().algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    match curve.as_deref() {
        Some("1.2.840.10045.3.1.7") => 256,
        Some("1.3.132.0.34") => 384,
        Some("1.3.132.0.35") => 521,
        Some("1.3.132.0.33") => 224,
        Some("1.2.840.10045.3.1.1") => 192,
        _ => point_bits,
    }
}

/// A self-issued certificate is self-signed unless its authority key id names another key.
fn akid_matches_skid(cert: &X509Certificate<'_>) -> bool {
    let mut akid = None;
    let mut skid = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => akid = a.key_identifier.as_ref().map(|k| k.0),
            ParsedExtension::SubjectKeyIdentifier(s) => skid = Some(s.0),
            _ => {}
        }
    }
    match (akid, skid) {
        (Some(a), Some(s)) => a == s,
        _ => true,
    }
}

fn key_type_by_oid(oid: &str) -> &'static str {
    match oid {
        "1.3.101.112" => "ed25519",
        "1.3.101.113" => "ed448",
        "1.2.840.113549.1.1.10" => "rsa-pss",
        _ => "unknown",
    }
}

/// Signature algorithm OID → the name x509/OpenSSL users know.
fn sig_alg_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        other => return other.to_string(),
    };
    name.to_string()
}

impl CertInfo {
    /// RSA or DSA under 2048 bits, EC under 256 (an unknown size is not judged).
    pub fn weak_key(&self) -> bool {
        match self.key_type {
            "rsa" | "dsa" => self.key_bits > 0 && self.key_bits < 2048,
            "ec" => self.key_bits > 0 && self.key_bits < 256,
            _ => false,
        }
    }

    /// SHA-1 or MD5/MD2 signature.
    pub fn weak_signature(&self) -> bool {
        let s = self.signature_algorithm.to_ascii_lowercase();
        s.starts_with("md") || s.contains("sha1")
    }

    /// Does this certificate cover `host` (SAN DNS names, else the subject CN; one-label wildcards)?
    pub fn matches_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let names: Vec<&str> = if self.san_dns.is_empty() {
            self.subject_cn.as_deref().into_iter().collect()
        } else {
            self.san_dns.iter().map(String::as_str).collect()
        };
        names.iter().any(|n| name_matches(&n.to_ascii_lowercase(), &host))
    }
}

fn name_matches(pattern: &str, host: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("*.") {
        match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix,
            None => false,
        }
    } else {
        pattern == host
    }
}

/// What a Certificate message showed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chain {
    pub certs: Vec<CertInfo>,
    /// Every certificate of the message was read (not cut by the head budget).
    pub complete: bool,
    /// Verdict against the CA bundle, when one is configured and the chain is complete.
    pub trust: Option<super::trust::Trust>,
}

/// Walk a TLS <= 1.2 Certificate message body: u24 list length, then (u24 length, DER)*.
/// Works on a cut body too (a chain larger than the flow-head budget): whole certificates only.
pub fn parse_chain(body: &[u8], store: Option<&super::trust::TrustStore>) -> Chain {
    let mut ders = Vec::new();
    let mut i = 3usize;
    let mut complete = true;
    while ders.len() < MAX_CHAIN {
        let Some(h) = body.get(i..i + 3) else { break };
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let Some(der) = body.get(i + 3..i + 3 + len) else {
            complete = false;
            break;
        };
        ders.push(der);
        i += 3 + len;
    }
    // More certificates than we read: the chain is not whole, so no trust verdict on it.
    complete &= i >= body.len();
    chain_of(&ders, complete, store)
}

/// The facts of certificates as the server sent them (leaf first), `complete` when nothing
/// was cut off: every one parsed, and the trust verdict when there is a bundle.
pub fn chain_of(ders: &[&[u8]], mut complete: bool, store: Option<&super::trust::TrustStore>) -> Chain {
    let certs: Vec<CertInfo> = ders.iter().filter_map(|d| parse_cert_cached(d)).collect();
    complete &= certs.len() == ders.len() && !certs.is_empty();
    let trust = store.filter(|_| complete).map(|s| s.evaluate(ders));
    Chain { certs, complete, trust }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(name_matches("*.example.org", "www.example.org"));
        assert!(!name_matches("*.example.org", "a.b.example.org"));
        assert!(!name_matches("*.example.org", "example.org"));
        assert!(name_matches("example.org", "example.org"));
    }

    #[test]
    fn cache_gives_what_parsing_gives() {
        take_cache_evicted();
        let junk = [0x30u8, 3, 2, 1, 5];
        assert_eq!(parse_cert_cached(&junk), parse_cert(&junk));
        assert_eq!(parse_cert_cached(&junk), None, "a miss is remembered as one");
        // Filling the cache past its bound empties it, and says how many were dropped.
        for i in 0..CACHE_CERTS as u32 {
            parse_cert_cached(&i.to_be_bytes());
        }
        assert_eq!(take_cache_evicted(), CACHE_CERTS as u64);
        assert_eq!(take_cache_evicted(), 0);
    }

    #[test]
    fn garbage_chain() {
        let c = parse_chain(&[0, 0, 9, 0, 0, 6, 1, 2, 3, 4, 5, 6], None);
        assert!(c.certs.is_empty());
        assert!(!c.complete);
        assert!(parse_chain(&[], None).certs.is_empty());
    }
}
