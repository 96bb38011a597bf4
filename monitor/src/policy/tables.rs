//! Policy, profile tables: what each profile allows, as data (IANA code points and names), with
//! the published source of every list. Lookup only; never judges a handshake itself.
use super::{Profile, Severity};

/// One profile's rule parameters. `None` lists mean "judged by the suite's or group's metadata
/// (hipaa's AEAD / forward-secrecy / strength rules), not by a list".
#[derive(Debug)]
pub struct Table {
    /// Lowest version that is not a finding (TLS 1.3 = 0x0304).
    pub min_version: u16,
    /// Severity of `tls.version.no-tls13` (TLS 1.2 negotiated though the client offered 1.3).
    pub no_tls13: Severity,
    /// IANA cipher suite ids the profile allows.
    pub suites: Option<&'static [u16]>,
    /// IANA supported-group ids the profile allows.
    pub groups: Option<&'static [u16]>,
    /// Certificate signature algorithms (names as `CertInfo::signature_algorithm` gives them).
    pub cert_signatures: Option<&'static [&'static str]>,
}

// TLS 1.3 suites: 0x1301 AES_128_GCM_SHA256, 0x1302 AES_256_GCM_SHA384,
// 0x1303 CHACHA20_POLY1305_SHA256, 0x1304 AES_128_CCM_SHA256, 0x1305 AES_128_CCM_8_SHA256.

/// NIST SP 800-52 Rev. 2 §3.3.1.1 (TLS 1.2: ECDHE/DHE with AES-GCM, AES-CCM(_8) and AES-CBC
/// with SHA-256/384; the SP also lists the SHA-1 CBC suites as acceptable, this profile keeps
/// only SHA-2 MACs) and §3.3.1.2 (TLS 1.3: AES-GCM and AES-CCM, no CHACHA20-POLY1305).
const NIST_SUITES: &[u16] = &[
    // ECDHE_ECDSA: AES_128_GCM_SHA256, AES_256_GCM_SHA384, AES_128_CCM, AES_256_CCM,
    // AES_128_CCM_8, AES_256_CCM_8, AES_128_CBC_SHA256, AES_256_CBC_SHA384
    0xC02B, 0xC02C, 0xC0AC, 0xC0AD, 0xC0AE, 0xC0AF, 0xC023, 0xC024,
    // ECDHE_RSA: AES_128_GCM_SHA256, AES_256_GCM_SHA384, AES_128_CBC_SHA256, AES_256_CBC_SHA384
    0xC02F, 0xC030, 0xC027, 0xC028,
    // DHE_RSA: AES_128_GCM_SHA256, AES_256_GCM_SHA384, AES_128_CCM, AES_256_CCM,
    // AES_128_CCM_8, AES_256_CCM_8, AES_128_CBC_SHA256, AES_256_CBC_SHA256
    0x009E, 0x009F, 0xC09E, 0xC09F, 0xC0A2, 0xC0A3, 0x0067, 0x006B, // TLS 1.3
    0x1301, 0x1302, 0x1304, 0x1305,
];

/// FIPS 140-3 approved: the NIST list (AES only, SHA-2 only, ECDHE/DHE) — CHACHA20-POLY1305
/// is not an approved cipher.
const FIPS_SUITES: &[u16] = NIST_SUITES;

/// Mozilla server-side TLS 6.0, "modern": the three TLS 1.3 suites.
/// <https://wiki.mozilla.org/Security/Server_Side_TLS>
const MOZILLA_MODERN_SUITES: &[u16] = &[0x1301, 0x1302, 0x1303];

/// Mozilla server-side TLS 6.0, "intermediate": TLS 1.3 suites, then ECDHE-ECDSA/RSA
/// AES128-GCM-SHA256, AES256-GCM-SHA384, CHACHA20-POLY1305 and DHE-RSA AES128-GCM-SHA256,
/// AES256-GCM-SHA384, CHACHA20-POLY1305.
const MOZILLA_INTERMEDIATE_SUITES: &[u16] = &[
    0x1301, 0x1302, 0x1303, // TLS 1.3
    0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, // ECDHE
    0x009E, 0x009F, 0xCCAA, // DHE
];

/// Mozilla 6.0 groups: X25519MLKEM768, x25519, prime256v1, secp384r1.
const MOZILLA_MODERN_GROUPS: &[u16] = &[0x11EC, 29, 23, 24];
/// Intermediate also keeps ffdhe2048 for its DHE suites (RFC 7919 group).
const MOZILLA_INTERMEDIATE_GROUPS: &[u16] = &[0x11EC, 29, 23, 24, 256];

/// NIST SP 800-52 Rev. 2 §3.3.2 / SP 800-186: P-256/384/521, Curve25519/448, ffdhe2048-8192;
/// the ML-KEM hybrids (SP 800-227, FIPS 203) are accepted as they keep an approved component.
const NIST_GROUPS: &[u16] = &[23, 24, 25, 29, 30, 256, 257, 258, 259, 260, 0x11EB, 0x11EC, 0x11ED];

/// FIPS 140-3 (SP 800-56A Rev. 3 key agreement): P-256/384/521 and ffdhe2048-8192, plus the
/// hybrids SecP256r1MLKEM768 and SecP384r1MLKEM1024 (both components approved).
/// Decision: X25519MLKEM768 is *not* allowed — X25519 is not an SP 800-56A scheme, so the
/// combination is approved only where a module's certificate says so; a FIPS deployment that
/// wants PQ hybrids should use SecP256r1MLKEM768.
const FIPS_GROUPS: &[u16] = &[23, 24, 25, 256, 257, 258, 259, 260, 0x11EB, 0x11ED];

/// FIPS 186-5 signatures: RSA (PKCS#1 v1.5, PSS) and ECDSA with SHA-2, EdDSA. Not: SHA-1, MD5,
/// DSA (generation withdrawn in 186-5).
const FIPS_CERT_SIGNATURES: &[&str] = &[
    "sha224WithRSAEncryption",
    "sha256WithRSAEncryption",
    "sha384WithRSAEncryption",
    "sha512WithRSAEncryption",
    "rsassaPss",
    "ecdsa-with-SHA224",
    "ecdsa-with-SHA256",
    "ecdsa-with-SHA384",
    "ecdsa-with-SHA512",
    "ED25519",
    "ED448",
];

const HIPAA: Table =
    Table { min_version: 0x0303, no_tls13: Severity::Low, suites: None, groups: None, cert_signatures: None };
const NIST: Table = Table {
    min_version: 0x0303,
    // SP 800-52r2 §3.1: servers shall support TLS 1.3 (by January 2024).
    no_tls13: Severity::Medium,
    suites: Some(NIST_SUITES),
    groups: Some(NIST_GROUPS),
    cert_signatures: None,
};
const MOZILLA_MODERN: Table = Table {
    min_version: 0x0304,
    no_tls13: Severity::Low,
    suites: Some(MOZILLA_MODERN_SUITES),
    groups: Some(MOZILLA_MODERN_GROUPS),
    cert_signatures: None,
};
const MOZILLA_INTERMEDIATE: Table = Table {
    min_version: 0x0303,
    no_tls13: Severity::Low,
    suites: Some(MOZILLA_INTERMEDIATE_SUITES),
    groups: Some(MOZILLA_INTERMEDIATE_GROUPS),
    cert_signatures: None,
};
const FIPS: Table = Table {
    min_version: 0x0303,
    no_tls13: Severity::Low,
    suites: Some(FIPS_SUITES),
    groups: Some(FIPS_GROUPS),
    cert_signatures: Some(FIPS_CERT_SIGNATURES),
};

/// The table of `p`.
pub fn table(p: Profile) -> &'static Table {
    match p {
        Profile::Hipaa => &HIPAA,
        Profile::Nist80052r2 => &NIST,
        Profile::MozillaModern => &MOZILLA_MODERN,
        Profile::MozillaIntermediate => &MOZILLA_INTERMEDIATE,
        Profile::Fips => &FIPS,
    }
}
