//! Inspect, naming: IANA names for versions, named groups and alerts; cipher names come from
//! tls-parser's IANA table. Pure lookups, no state.
use tls_parser::TlsCipherSuite;

/// ("ssl"|"tls"|"dtls", "3.0"|"1.0"…) for a wire version; drafts of 1.3 count as 1.3.
pub fn version_parts(v: u16) -> Option<(&'static str, &'static str)> {
    Some(match v {
        0x0002 => ("ssl", "2.0"),
        0x0300 => ("ssl", "3.0"),
        0x0301 => ("tls", "1.0"),
        0x0302 => ("tls", "1.1"),
        0x0303 => ("tls", "1.2"),
        0x0304 | 0x7f00..=0x7fff | 0xfb00..=0xfbff => ("tls", "1.3"),
        0xfeff => ("dtls", "1.0"),
        0xfefd => ("dtls", "1.2"),
        0xfefc => ("dtls", "1.3"),
        _ => return None,
    })
}

/// "TLS 1.2", "SSL 3.0", or the hex value (the known names copied, not formatted: the
/// inventory and the policy name the version of every handshake).
pub fn version_name(v: u16) -> String {
    match version_parts(v) {
        Some(("ssl", "2.0")) => "SSL 2.0".into(),
        Some(("ssl", "3.0")) => "SSL 3.0".into(),
        Some(("tls", "1.0")) => "TLS 1.0".into(),
        Some(("tls", "1.1")) => "TLS 1.1".into(),
        Some(("tls", "1.2")) => "TLS 1.2".into(),
        Some(("tls", "1.3")) => "TLS 1.3".into(),
        Some(("dtls", "1.0")) => "DTLS 1.0".into(),
        Some(("dtls", "1.2")) => "DTLS 1.2".into(),
        Some(("dtls", "1.3")) => "DTLS 1.3".into(),
        Some((p, n)) => format!("{} {}", p.to_ascii_uppercase(), n),
        None => format!("0x{v:04x}"),
    }
}

/// IANA cipher suite name, or `0xNNNN` when unassigned.
pub fn cipher_name(id: u16) -> String {
    cipher_label(id).into_owned()
}

/// tls-parser's suite `id` ([`TlsCipherSuite::from_id`]) from a table hashed once: its own map
/// hashes every lookup with SipHash, and a handshake looks up every suite a client offers.
pub fn suite(id: u16) -> Option<&'static TlsCipherSuite> {
    static BY_ID: std::sync::OnceLock<rustc_hash::FxHashMap<u16, &'static TlsCipherSuite>> = std::sync::OnceLock::new();
    BY_ID.get_or_init(|| tls_parser::CIPHERS.entries().map(|(id, c)| (*id, c)).collect()).get(&id).copied()
}

/// [`cipher_name`] without a copy of the names tls-parser knows (a client offers dozens).
pub fn cipher_label(id: u16) -> std::borrow::Cow<'static, str> {
    match suite(id) {
        Some(c) => c.name.into(),
        None => format!("0x{id:04X}").into(),
    }
}

/// SSLv2 cipher kinds (RFC draft-hickman SSLv2 appendix).
pub fn sslv2_cipher_name(kind: u32) -> String {
    match kind {
        0x010080 => "SSL2_RC4_128_WITH_MD5".into(),
        0x020080 => "SSL2_RC4_128_EXPORT40_WITH_MD5".into(),
        0x030080 => "SSL2_RC2_128_CBC_WITH_MD5".into(),
        0x040080 => "SSL2_RC2_128_CBC_EXPORT40_WITH_MD5".into(),
        0x050080 => "SSL2_IDEA_128_CBC_WITH_MD5".into(),
        0x060040 => "SSL2_DES_64_CBC_WITH_MD5".into(),
        0x0700c0 => "SSL2_DES_192_EDE3_CBC_WITH_MD5".into(),
        other => format!("SSL2_0x{other:06X}"),
    }
}

/// IANA TLS Supported Groups registry names.
pub fn group_name(g: u16) -> Option<&'static str> {
    const SECT: [&str; 22] = [
        "sect163k1",
        "sect163r1",
        "sect163r2",
        "sect193r1",
        "sect193r2",
        "sect233k1",
        "sect233r1",
        "sect239k1",
        "sect283k1",
        "sect283r1",
        "sect409k1",
        "sect409r1",
        "sect571k1",
        "sect571r1",
        "secp160k1",
        "secp160r1",
        "secp160r2",
        "secp192k1",
        "secp192r1",
        "secp224k1",
        "secp224r1",
        "secp256k1",
    ];
    Some(match g {
        1..=22 => SECT[g as usize - 1],
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        31 => "brainpoolP256r1tls13",
        32 => "brainpoolP384r1tls13",
        33 => "brainpoolP512r1tls13",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        258 => "ffdhe4096",
        259 => "ffdhe6144",
        260 => "ffdhe8192",
        0x0200 => "MLKEM512",
        0x0201 => "MLKEM768",
        0x0202 => "MLKEM1024",
        0x11eb => "SecP256r1MLKEM768",
        0x11ec => "X25519MLKEM768",
        0x11ed => "SecP384r1MLKEM1024",
        0x6399 => "X25519Kyber768Draft00",
        0x639a => "SecP256r1Kyber768Draft00",
        0xff01 => "arbitrary_explicit_prime_curves",
        0xff02 => "arbitrary_explicit_char2_curves",
        _ => return None,
    })
}

/// Group name or `0xNNNN`.
pub fn group_label(g: u16) -> String {
    group_name(g).map(str::to_owned).unwrap_or_else(|| format!("0x{g:04x}"))
}

/// Post-quantum (hybrid or pure ML-KEM / Kyber) key exchange groups.
pub fn is_pq_group(g: u16) -> bool {
    matches!(g, 0x0200..=0x0202 | 0x11eb..=0x11ed | 0x6399 | 0x639a)
}

/// Security bits of an elliptic-curve group's field (for the weak-group rule); `None` for
/// finite-field, hybrid and unknown groups.
/// Curve25519 counts as a 256-bit-class curve (RFC 7748: ~128-bit security, as P-256).
pub fn ec_group_bits(g: u16) -> Option<u16> {
    match g {
        29 => Some(256),
        1..=33 => tls_parser::NamedGroup(g).key_bits(),
        _ => None,
    }
}

/// TLS alert description names (RFC 8446 §6 and earlier registries).
pub fn alert_name(d: u8) -> String {
    let s = match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        other => return format!("alert_{other}"),
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(cipher_name(0xc02f), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
        for v in [0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x7f1c, 0xfb1a, 0xfeff, 0xfefd, 0xfefc, 0x1234] {
            let formatted = match version_parts(v) {
                Some((p, n)) => format!("{} {}", p.to_ascii_uppercase(), n),
                None => format!("0x{v:04x}"),
            };
            assert_eq!(version_name(v), formatted);
        }
        for id in 0..=u16::MAX {
            assert_eq!(suite(id).map(|c| c.name), TlsCipherSuite::from_id(id).map(|c| c.name), "{id:#06x}");
        }
        assert_eq!(group_name(0x11ec), Some("X25519MLKEM768"));
        assert_eq!(group_name(23), Some("secp256r1"));
        assert_eq!(ec_group_bits(21), Some(224));
        assert_eq!(ec_group_bits(29), Some(256));
        assert_eq!(ec_group_bits(23), Some(256));
        assert_eq!(ec_group_bits(0x11ec), None);
        assert_eq!(version_parts(0x7f13), Some(("tls", "1.3")));
    }
}
