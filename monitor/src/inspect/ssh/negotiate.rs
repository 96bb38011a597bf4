//! Inspect, SSH, negotiation: the algorithms both KEXINITs settle on (RFC 4253 §7.1: per
//! category, the first algorithm on the client's list that the server also lists), and the
//! closed classes the metrics and rules use. Pure functions of the two lists; must never guess
//! an algorithm the lists do not decide.
use super::KexInit;

/// What the two KEXINITs negotiate; `None` where the lists have nothing in common (the
/// session fails there), and for a MAC when the cipher authenticates itself (AEAD: OpenSSH
/// then ignores the MAC lists).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Negotiated {
    pub kex: Option<String>,
    pub host_key: Option<String>,
    pub cipher_c2s: Option<String>,
    pub cipher_s2c: Option<String>,
    pub mac_c2s: Option<String>,
    pub mac_s2c: Option<String>,
    pub compression_c2s: Option<String>,
    pub compression_s2c: Option<String>,
    /// Both sides asked for strict key exchange (`kex-strict-{c,s}-v00@openssh.com`, the
    /// Terrapin countermeasure, CVE-2023-48795).
    pub strict_kex: bool,
    /// Categories without a common algorithm (`kex`, `host_key`, `cipher_c2s` …).
    pub failed: Vec<&'static str>,
}

/// Key-exchange names that only signal an extension (RFC 8308 `ext-info-*`, OpenSSH's strict
/// kex `kex-strict-*`): never negotiated.
pub fn pseudo_kex(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// Post-quantum hybrid key exchanges (ML-KEM / Streamlined NTRU Prime with X25519).
pub const PQ_HYBRID_KEX: &[&str] = &[
    "mlkem768x25519-sha256",
    "mlkem768nistp256-sha256",
    "mlkem1024nistp384-sha384",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];

/// Weak key exchanges (RFC 9142 §4: SHA-1 and 1024-bit groups MUST NOT / SHOULD NOT).
pub const WEAK_KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group14-sha1",
    "rsa1024-sha1",
    "gss-group1-sha1-",
    "gss-gex-sha1-",
    "gss-group14-sha1-",
];

/// A kex name's class, the `class` label of `tlsmon_ssh_kex_total`: `pq-hybrid`, `weak`,
/// `ecdh` (curve25519/448, NIST curves), `dh` (finite-field groups of 2048 bits or more,
/// group exchange over SHA-2), `other`.
pub fn kex_class(kex: &str) -> &'static str {
    if PQ_HYBRID_KEX.contains(&kex) {
        "pq-hybrid"
    } else if kex_weak(kex) {
        "weak"
    } else if kex.starts_with("curve25519-") || kex.starts_with("curve448-") || kex.starts_with("ecdh-sha2-") {
        "ecdh"
    } else if kex.starts_with("diffie-hellman-group") || kex.starts_with("rsa2048-") {
        "dh"
    } else {
        "other"
    }
}

/// A weak kex (GSS names carry a suffix after the listed prefix).
pub fn kex_weak(kex: &str) -> bool {
    WEAK_KEX.iter().any(|w| if w.ends_with('-') { kex.starts_with(w) } else { kex == *w })
}

/// A cipher that authenticates itself (no MAC negotiated with it).
pub fn cipher_aead(c: &str) -> bool {
    c.ends_with("-gcm@openssh.com") || c == "chacha20-poly1305@openssh.com" || c.starts_with("AEAD_")
}

/// RFC 4253 §7.1 over two KEXINITs.
pub fn negotiate(client: &KexInit, server: &KexInit) -> Negotiated {
    let mut n = Negotiated::default();
    let mut pick = |what: &'static str, c: &[String], s: &[String], skip: fn(&str) -> bool| {
        let found = c.iter().find(|a| !skip(a) && s.contains(a)).cloned();
        if found.is_none() {
            n.failed.push(what);
        }
        found
    };
    let none = |_: &str| false;
    let kex = pick("kex", &client.kex, &server.kex, pseudo_kex);
    let host_key = pick("host_key", &client.host_key, &server.host_key, none);
    let cipher_c2s = pick("cipher_c2s", &client.cipher_c2s, &server.cipher_c2s, none);
    let cipher_s2c = pick("cipher_s2c", &client.cipher_s2c, &server.cipher_s2c, none);
    let mac_c2s = match &cipher_c2s {
        Some(c) if cipher_aead(c) => None,
        _ => pick("mac_c2s", &client.mac_c2s, &server.mac_c2s, none),
    };
    let mac_s2c = match &cipher_s2c {
        Some(c) if cipher_aead(c) => None,
        _ => pick("mac_s2c", &client.mac_s2c, &server.mac_s2c, none),
    };
    let compression_c2s = pick("compression_c2s", &client.compression_c2s, &server.compression_c2s, none);
    let compression_s2c = pick("compression_s2c", &client.compression_s2c, &server.compression_s2c, none);
    let has = |k: &KexInit, name: &str| k.kex.iter().any(|a| a == name);
    n.strict_kex = has(client, "kex-strict-c-v00@openssh.com") && has(server, "kex-strict-s-v00@openssh.com");
    Negotiated { kex, host_key, cipher_c2s, cipher_s2c, mac_c2s, mac_s2c, compression_c2s, compression_s2c, ..n }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect()
    }

    fn kexinit(kex: &str, hk: &str, enc: &str, mac: &str, cmp: &str) -> KexInit {
        KexInit {
            kex: v(kex),
            host_key: v(hk),
            cipher_c2s: v(enc),
            cipher_s2c: v(enc),
            mac_c2s: v(mac),
            mac_s2c: v(mac),
            compression_c2s: v(cmp),
            compression_s2c: v(cmp),
            ..KexInit::default()
        }
    }

    #[test]
    fn first_client_algorithm_the_server_supports() {
        // The client's order decides, not the server's.
        let c = kexinit(
            "ext-info-c,kex-strict-c-v00@openssh.com,sntrup761x25519-sha512@openssh.com,curve25519-sha256",
            "ssh-ed25519,rsa-sha2-512",
            "aes128-ctr,aes256-ctr",
            "hmac-sha2-512,hmac-sha2-256",
            "none,zlib@openssh.com",
        );
        let s = kexinit(
            "curve25519-sha256,sntrup761x25519-sha512@openssh.com,ext-info-c,kex-strict-s-v00@openssh.com",
            "rsa-sha2-512,ssh-ed25519",
            "aes256-ctr,aes128-ctr",
            "hmac-sha2-256,hmac-sha2-512",
            "zlib@openssh.com,none",
        );
        let n = negotiate(&c, &s);
        assert_eq!(n.kex.as_deref(), Some("sntrup761x25519-sha512@openssh.com"));
        assert_eq!(n.host_key.as_deref(), Some("ssh-ed25519"));
        assert_eq!(n.cipher_c2s.as_deref(), Some("aes128-ctr"));
        assert_eq!(n.mac_s2c.as_deref(), Some("hmac-sha2-512"));
        assert_eq!(n.compression_c2s.as_deref(), Some("none"));
        assert!(n.strict_kex && n.failed.is_empty());
    }

    #[test]
    fn pseudo_algorithms_never_win_and_aead_has_no_mac() {
        // ext-info-c is on both lists (a broken server echoing it): still not a kex.
        let c =
            kexinit("ext-info-c,diffie-hellman-group1-sha1", "ssh-rsa", "aes256-gcm@openssh.com", "hmac-md5", "none");
        let s =
            kexinit("ext-info-c,diffie-hellman-group1-sha1", "ssh-rsa", "aes256-gcm@openssh.com", "hmac-sha1", "none");
        let n = negotiate(&c, &s);
        assert_eq!(n.kex.as_deref(), Some("diffie-hellman-group1-sha1"));
        assert_eq!((n.mac_c2s.as_deref(), n.mac_s2c.as_deref()), (None, None));
        assert!(n.failed.is_empty() && !n.strict_kex);
    }

    #[test]
    fn nothing_in_common_fails_the_category() {
        let c = kexinit("kex-strict-c-v00@openssh.com", "ssh-ed25519", "3des-cbc", "hmac-sha1", "none");
        let s = kexinit("kex-strict-c-v00@openssh.com,curve25519-sha256", "ssh-rsa", "aes128-ctr", "hmac-sha1", "none");
        let n = negotiate(&c, &s);
        assert_eq!(n.kex, None);
        assert_eq!(n.failed, ["kex", "host_key", "cipher_c2s", "cipher_s2c"]);
        // Without a cipher the MAC is still negotiated.
        assert_eq!(n.mac_c2s.as_deref(), Some("hmac-sha1"));
    }

    #[test]
    fn classes() {
        assert_eq!(kex_class("mlkem768x25519-sha256"), "pq-hybrid");
        assert_eq!(kex_class("sntrup761x25519-sha512"), "pq-hybrid");
        assert_eq!(kex_class("curve25519-sha256@libssh.org"), "ecdh");
        assert_eq!(kex_class("ecdh-sha2-nistp256"), "ecdh");
        assert_eq!(kex_class("diffie-hellman-group16-sha512"), "dh");
        assert_eq!(kex_class("diffie-hellman-group-exchange-sha256"), "dh");
        assert_eq!(kex_class("diffie-hellman-group14-sha1"), "weak");
        assert_eq!(kex_class("gss-group1-sha1-toWM5Slw5Ew8Mqkay+al2g=="), "weak");
        assert_eq!(kex_class("something-new"), "other");
        assert!(cipher_aead("chacha20-poly1305@openssh.com") && !cipher_aead("aes128-ctr"));
    }
}
