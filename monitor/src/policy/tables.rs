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

/// One profile's SSH rule parameters (issue 16). NIST SP 800-52r2 is about TLS only; the SSH
/// sources are named per table. `None` lists mean "judged by the weak lists only".
#[derive(Debug)]
pub struct SshTable {
    /// Severity of a weak key exchange the server offers though the session did not use it.
    pub kex_offered: Option<Severity>,
    /// Severity of a negotiated `hmac-sha1` / `hmac-sha1-etm@openssh.com` (None: allowed).
    pub sha1_mac: Option<Severity>,
    /// Severity of a negotiated `ssh-rsa` host key algorithm (SHA-1 signatures, RFC 8332).
    pub ssh_rsa: Severity,
    /// Key exchanges, ciphers and MACs the profile allows; a negotiated one outside is medium.
    pub kex: Option<&'static [&'static str]>,
    pub ciphers: Option<&'static [&'static str]>,
    pub macs: Option<&'static [&'static str]>,
}

/// hipaa: the weak lists of RFC 9142 (kex: SHA-1 and 1024-bit groups), RFC 8758 (arcfour),
/// RFC 8332 (ssh-rsa's SHA-1 signatures) and NIST SP 800-131A Rev. 2 (3DES, SHA-1 signatures
/// disallowed; HMAC-SHA-1 still acceptable, so hmac-sha1 is not a finding).
const SSH_HIPAA: SshTable = SshTable {
    kex_offered: Some(Severity::Low),
    sha1_mac: None,
    ssh_rsa: Severity::Medium,
    kex: None,
    ciphers: None,
    macs: None,
};

/// nist-800-52r2: SP 800-52r2 does not cover SSH; NIST SP 800-131A Rev. 2 (SHA-1 signature
/// generation disallowed, HMAC-SHA-1 acceptable) and RFC 9142 decide, stricter on what the
/// server still offers.
const SSH_NIST: SshTable = SshTable {
    kex_offered: Some(Severity::Medium),
    sha1_mac: None,
    ssh_rsa: Severity::High,
    kex: None,
    ciphers: None,
    macs: None,
};

/// Mozilla's OpenSSH guidelines, "Modern (OpenSSH 6.7+)" configuration
/// (<https://infosec.mozilla.org/guidelines/openssh>), plus `curve25519-sha256` (RFC 8731's name
/// of the listed `curve25519-sha256@libssh.org`) and the post-quantum hybrids, which keep an
/// X25519 component and postdate the guideline.
const MOZILLA_SSH_KEX: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp521",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group-exchange-sha256",
];
const MOZILLA_SSH_CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
];
const MOZILLA_SSH_MACS: &[&str] = &[
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-512",
    "hmac-sha2-256",
    "umac-128@openssh.com",
];
const SSH_MOZILLA_MODERN: SshTable = SshTable {
    kex_offered: Some(Severity::Medium),
    sha1_mac: Some(Severity::Medium),
    ssh_rsa: Severity::High,
    kex: Some(MOZILLA_SSH_KEX),
    ciphers: Some(MOZILLA_SSH_CIPHERS),
    macs: Some(MOZILLA_SSH_MACS),
};
/// Mozilla's "Intermediate (OpenSSH 5.3)" configuration exists for servers too old for
/// curve25519 and GCM (its lists are a subset of what old OpenSSH had), so it is not used as an
/// allow-list — it would flag modern servers; the weak lists apply, and hmac-sha1 is low.
const SSH_MOZILLA_INTERMEDIATE: SshTable = SshTable {
    kex_offered: Some(Severity::Low),
    sha1_mac: Some(Severity::Low),
    ssh_rsa: Severity::Medium,
    kex: None,
    ciphers: None,
    macs: None,
};

/// FIPS 140-3 approved algorithms: key agreement per SP 800-56A Rev. 3 (NIST curves, the RFC
/// 3526/7919 safe-prime groups, group exchange with SHA-256) and the ML-KEM hybrids whose
/// classical part is approved; not curve25519 (not a 56A scheme; same decision as the TLS
/// groups), not sntrup761. AES (SP 800-38A CTR, 38D GCM) only. HMAC with SHA-1 or SHA-2
/// (FIPS 198-1; HMAC-SHA-1 stays approved). CNSA 1.0 for SSH (RFC 9212) is stricter still
/// (P-384, AES-256-GCM) and is not a profile here.
const FIPS_SSH_KEX: &[&str] = &[
    "mlkem768nistp256-sha256",
    "mlkem1024nistp384-sha384",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
];
const FIPS_SSH_CIPHERS: &[&str] =
    &["aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr"];
const FIPS_SSH_MACS: &[&str] = &[
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512",
    "hmac-sha2-256",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1",
];
const SSH_FIPS: SshTable = SshTable {
    kex_offered: Some(Severity::Medium),
    sha1_mac: None,
    ssh_rsa: Severity::High,
    kex: Some(FIPS_SSH_KEX),
    ciphers: Some(FIPS_SSH_CIPHERS),
    macs: Some(FIPS_SSH_MACS),
};

/// The SSH table of `p`.
pub fn ssh_table(p: Profile) -> &'static SshTable {
    match p {
        Profile::Hipaa => &SSH_HIPAA,
        Profile::Nist80052r2 => &SSH_NIST,
        Profile::MozillaModern => &SSH_MOZILLA_MODERN,
        Profile::MozillaIntermediate => &SSH_MOZILLA_INTERMEDIATE,
        Profile::Fips => &SSH_FIPS,
    }
}
