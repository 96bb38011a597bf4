//! Sink, posture inventory: the fix to apply for one finding, the catalogue's template filled
//! with the finding's subjects. Text only; must never name anything but the subjects and the
//! server address.
use super::FindingRow;
use crate::policy::catalogue;

/// "a", "a and b", "a, b and c".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The suite family a fix names, from the IANA (or SSLv2) name.
fn suite_class(name: &str) -> &'static str {
    const CLASSES: [(&str, &str); 11] = [
        ("NULL", "NULL"),
        ("_anon_", "anonymous"),
        ("EXPORT", "EXPORT"),
        ("3DES", "3DES"),
        ("EDE3", "3DES"),
        ("DES", "DES"),
        ("RC4", "RC4"),
        ("RC2", "RC2"),
        ("IDEA", "IDEA"),
        ("SEED", "SEED"),
        ("CBC", "CBC"),
    ];
    CLASSES.iter().find(|(k, _)| name.contains(k)).map(|(_, c)| *c).unwrap_or("non-AEAD")
}

/// The fix to apply for one finding on the server at `srv` ("10.0.0.5:443"): the catalogue's
/// template filled with the finding's subjects.
pub fn fix(f: &FindingRow, srv: &str) -> String {
    let Some(catalogue::Entry { fix: template, fix_default: default, .. }) = catalogue::lookup(f.id) else {
        let paren = if f.subjects.is_empty() { String::new() } else { format!(" ({})", list(&f.subjects)) };
        return format!("review {} on {srv}{paren}", f.id);
    };
    let what = if f.subjects.is_empty() { default.to_string() } else { list(&f.subjects) };
    let paren = if f.subjects.is_empty() { String::new() } else { format!(" ({})", f.subjects.join(", ")) };
    let mut classes: Vec<&str> = f.subjects.iter().map(|s| suite_class(s)).collect();
    classes.dedup();
    let class = if classes.is_empty() { default.to_string() } else { classes.join("/") };
    template.replace("{srv}", srv).replace("{what}", &what).replace("{paren}", &paren).replace("{class}", &class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Severity;

    fn row(id: &'static str, severity: Severity, subjects: &[&str]) -> FindingRow {
        FindingRow::for_test(id, severity, subjects)
    }

    /// Every finding id has its own fix, not the generic line.
    #[test]
    fn every_catalogue_id_has_a_fix() {
        for &id in crate::policy::FINDING_IDS {
            let text = fix(&row(id, Severity::High, &[]), "10.0.0.5:443");
            assert!(!text.starts_with("review "), "{id} falls back to the generic line: {text}");
            assert!(text.contains("10.0.0.5:443"), "{id}: {text}");
            assert!(!text.contains('{'), "{id} leaves a placeholder: {text}");
        }
    }

    #[test]
    fn fix_texts() {
        let srv = "10.0.0.5:443";
        let cases: [(&'static str, &[&str], &str); 11] = [
            ("tls.version.deprecated", &["TLS 1.0"], "disable TLS 1.0 on 10.0.0.5:443"),
            ("tls.version.deprecated", &["TLS 1.0", "TLS 1.1"], "disable TLS 1.0 and TLS 1.1 on 10.0.0.5:443"),
            ("tls.version.insecure", &["SSL 2.0"], "disable SSL 2.0 on 10.0.0.5:443"),
            (
                "tls.cipher.weak",
                &["TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
                "remove 3DES suites (TLS_RSA_WITH_3DES_EDE_CBC_SHA) from 10.0.0.5:443; offer AEAD suites (AES-GCM, ChaCha20-Poly1305)",
            ),
            ("tls.cipher.insecure", &["TLS_RSA_WITH_RC4_128_MD5"], "remove RC4 suites (TLS_RSA_WITH_RC4_128_MD5) from 10.0.0.5:443"),
            (
                "tls.kx.no-pfs",
                &["TLS_RSA_WITH_AES_128_GCM_SHA256"],
                "enable ECDHE key exchange (forward secrecy) on 10.0.0.5:443 and remove static key-exchange suites (TLS_RSA_WITH_AES_128_GCM_SHA256)",
            ),
            (
                "tls.cert.expired",
                &["CN=ehr.example (expired 2021-01-01)"],
                "renew the certificate for CN=ehr.example (expired 2021-01-01) on 10.0.0.5:443",
            ),
            (
                "tls.cert.self-signed",
                &["CN=plesk"],
                "replace the self-signed certificate on 10.0.0.5:443 (CN=plesk) with one issued by a trusted CA",
            ),
            ("tls.version.no-tls13", &[], "enable TLS 1.3 on 10.0.0.5:443"),
            (
                "tls.client-cert.expired",
                &["client certificate CN=device-0007 expired on 2021-01-01"],
                "renew the expired client certificates used with 10.0.0.5:443 and make 10.0.0.5:443 refuse expired \
                 ones (client certificate CN=device-0007 expired on 2021-01-01)",
            ),
            (
                "tls.mtls.missing",
                &["server sent no CertificateRequest"],
                "make 10.0.0.5:443 require a client certificate (e.g. nginx ssl_verify_client on, OpenSSL \
                 SSL_VERIFY_PEER|SSL_VERIFY_FAIL_IF_NO_PEER_CERT) (server sent no CertificateRequest)",
            ),
        ];
        for (id, subjects, want) in cases {
            assert_eq!(fix(&row(id, Severity::High, subjects), srv), want);
        }
        assert_eq!(fix(&row("tls.future-thing", Severity::High, &[]), srv), "review tls.future-thing on 10.0.0.5:443");
        assert_eq!(
            fix(&row("anomaly.truncated-handshake", Severity::Low, &["cut"]), srv),
            "look into the malformed or truncated TLS traffic on 10.0.0.5:443 (cut)"
        );
        assert_eq!(suite_class("SSL2_DES_192_EDE3_CBC_WITH_MD5"), "3DES");
        assert_eq!(suite_class("TLS_DH_anon_WITH_AES_128_CBC_SHA"), "anonymous");
    }
}
