//! Every IANA cipher suite tls-parser knows and every named group the project knows gets a
//! verdict (allowed, or a finding id with its severity) under every profile; spot checks pin the
//! published lists.
use tls_parser::{TlsCipherEnc, TlsCipherKx, TlsCipherSuite, CIPHERS};

use super::rules::{judge_group, judge_suite, suite_no_pfs};
use super::tables::table;
use super::{Profile, Severity};
use crate::inspect::names::group_name;

/// The suite's findings under `p` as (id, severity), the cipher rule's then forward secrecy's.
fn suite_verdict(p: Profile, c: &TlsCipherSuite) -> Vec<(&'static str, Severity)> {
    let mut v: Vec<_> = judge_suite(p, c).map(|(e, sev, _, _)| (e.id, sev)).into_iter().collect();
    v.extend(suite_no_pfs(c).map(|_| ("tls.kx.no-pfs", Severity::High)));
    v
}

fn by_name(name: &str) -> &'static TlsCipherSuite {
    TlsCipherSuite::from_name(name).unwrap_or_else(|| panic!("{name} unknown to tls-parser"))
}

#[test]
fn every_suite_gets_a_verdict_in_every_profile() {
    assert!(CIPHERS.len() > 300, "tls-parser's IANA table is loaded ({})", CIPHERS.len());
    for p in Profile::ALL {
        let mut allowed = 0;
        for c in CIPHERS.values() {
            let v = suite_verdict(p, c);
            let rule = judge_suite(p, c).map(|(_, _, r, ev)| {
                assert!(ev.contains(c.name), "{p:?} {}: evidence names the suite: {ev}", c.name);
                r
            });
            assert!(rule.is_none_or(|r| r.starts_with(p.name())), "{p:?} {}: rule {rule:?}", c.name);
            if v.is_empty() {
                allowed += 1;
                let pfs =
                    matches!(c.kx, TlsCipherKx::Ecdhe | TlsCipherKx::Dhe | TlsCipherKx::Eccpwd | TlsCipherKx::Tls13);
                // (ECCPWD, RFC 8492, is an ephemeral password-authenticated ECDH.)
                assert!(pfs, "{p:?} allows {} without forward secrecy", c.name);
                if let Some(list) = table(p).suites {
                    assert!(list.contains(&c.id), "{p:?} allows unlisted {}", c.name);
                }
            }
            // Broken ciphers are critical whatever the profile.
            if matches!(c.enc, TlsCipherEnc::Null | TlsCipherEnc::Rc4 | TlsCipherEnc::Des) {
                assert_eq!(v.first(), Some(&("tls.cipher.insecure", Severity::Critical)), "{p:?} {}", c.name);
            }
            if p == Profile::Fips && v.is_empty() {
                assert_eq!(c.enc, TlsCipherEnc::Aes, "fips allows non-AES {}", c.name);
            }
            if p == Profile::MozillaModern && v.is_empty() {
                assert_eq!(c.kx, TlsCipherKx::Tls13, "mozilla-modern allows pre-1.3 {}", c.name);
                assert!(suite_verdict(Profile::MozillaIntermediate, c).is_empty(), "modern ⊄ intermediate");
            }
        }
        // Every listed code point is a suite tls-parser knows (a typo would shrink the count).
        if let Some(list) = table(p).suites {
            assert_eq!(allowed, list.len(), "{p:?}: allowed suites = the published list");
        }
        let expected = match p {
            // 54 AEAD suites with forward secrecy by mode, plus the 6 ChaCha20-Poly1305 ones
            // (tls-parser gives them no mode but an AEAD MAC).
            Profile::Hipaa => 60,
            Profile::Nist80052r2 | Profile::Fips => 24,
            Profile::MozillaModern => 3,
            Profile::MozillaIntermediate => 12,
        };
        assert_eq!(allowed, expected, "{p:?}");
    }
}

#[test]
fn known_suites_spot_checks() {
    use Profile::*;
    let none: Vec<(&str, Severity)> = Vec::new();
    let weak = |s| vec![("tls.cipher.weak", s)];
    let c = by_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    for p in [Hipaa, Nist80052r2, MozillaIntermediate, Fips] {
        assert_eq!(suite_verdict(p, c), none, "{p:?}");
    }
    assert_eq!(suite_verdict(MozillaModern, c), weak(Severity::Medium));
    let chacha = by_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
    assert_eq!(suite_verdict(Fips, chacha), weak(Severity::Medium));
    assert_eq!(suite_verdict(Nist80052r2, chacha), weak(Severity::Medium));
    assert_eq!(suite_verdict(MozillaIntermediate, chacha), none);
    // ChaCha20-Poly1305 is AEAD: no tls.cipher.weak under hipaa (it once said "not AEAD").
    assert_eq!(suite_verdict(Hipaa, chacha), none);
    let rsa = by_name("TLS_RSA_WITH_AES_128_GCM_SHA256");
    for p in Profile::ALL {
        assert!(suite_verdict(p, rsa).contains(&("tls.kx.no-pfs", Severity::High)), "{p:?}");
    }
    let cbc256 = by_name("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256");
    assert_eq!(suite_verdict(Hipaa, cbc256), weak(Severity::Medium));
    assert_eq!(suite_verdict(Nist80052r2, cbc256), none);
    assert_eq!(suite_verdict(Fips, cbc256), none);
    assert_eq!(suite_verdict(MozillaIntermediate, cbc256), weak(Severity::Medium));
    let tls13_chacha = by_name("TLS_CHACHA20_POLY1305_SHA256");
    assert_eq!(suite_verdict(MozillaModern, tls13_chacha), none);
    assert_eq!(suite_verdict(Fips, tls13_chacha), weak(Severity::Medium));
    let ccm = by_name("TLS_AES_128_CCM_SHA256");
    assert_eq!(suite_verdict(Fips, ccm), none);
    assert_eq!(suite_verdict(MozillaModern, ccm), weak(Severity::Medium));
    let triple = by_name("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA");
    for p in Profile::ALL {
        assert_eq!(suite_verdict(p, triple), weak(Severity::High), "{p:?}");
    }
    let rc4 = by_name("TLS_ECDHE_RSA_WITH_RC4_128_SHA");
    for p in Profile::ALL {
        assert_eq!(suite_verdict(p, rc4), vec![("tls.cipher.insecure", Severity::Critical)], "{p:?}");
    }
}

fn group_verdict(p: Profile, g: u16) -> Option<(&'static str, Severity)> {
    judge_group(p, g).map(|(e, sev, rule, ev)| {
        assert!(rule.starts_with(p.name()), "{rule}");
        assert!(ev.starts_with(group_name(g).unwrap_or("0x")), "{ev}");
        (e.id, sev)
    })
}

#[test]
fn every_named_group_gets_a_verdict_in_every_profile() {
    let groups: Vec<u16> = (0..=u16::MAX).filter(|g| group_name(*g).is_some()).collect();
    assert!(groups.len() > 40, "{}", groups.len());
    for p in Profile::ALL {
        let allowed: Vec<u16> = groups.iter().copied().filter(|g| group_verdict(p, *g).is_none()).collect();
        for g in &groups {
            if let Some((id, sev)) = group_verdict(p, *g) {
                assert_eq!(id, "tls.kx.weak-group");
                assert!(sev >= Severity::Medium, "{p:?} {g}");
            }
        }
        if let Some(list) = table(p).groups {
            let mut want = list.to_vec();
            want.sort_unstable();
            assert_eq!(allowed, want, "{p:?}: allowed groups = the published list");
        }
    }
    use Profile::*;
    let weak_curve = Some(("tls.kx.weak-group", Severity::High));
    let unlisted = Some(("tls.kx.weak-group", Severity::Medium));
    for p in Profile::ALL {
        assert_eq!(group_verdict(p, 23), None, "secp256r1 under {p:?}");
        assert_eq!(group_verdict(p, 1), weak_curve, "sect163k1 under {p:?}");
        assert_eq!(group_verdict(p, 21), weak_curve, "secp224r1 under {p:?}");
    }
    let (x25519, mlkem, ffdhe2048, brainpool) = (29, 0x11ec, 256, 26);
    assert_eq!(group_verdict(Fips, x25519), unlisted);
    assert_eq!(group_verdict(Fips, mlkem), unlisted);
    assert_eq!(group_verdict(Fips, 0x11eb), None);
    for p in [Hipaa, Nist80052r2, MozillaModern, MozillaIntermediate] {
        assert_eq!(group_verdict(p, x25519), None, "{p:?}");
        assert_eq!(group_verdict(p, mlkem), None, "{p:?}");
    }
    assert_eq!(group_verdict(MozillaIntermediate, ffdhe2048), None);
    assert_eq!(group_verdict(MozillaModern, ffdhe2048), unlisted);
    assert_eq!(group_verdict(Hipaa, brainpool), None);
    assert_eq!(group_verdict(MozillaModern, brainpool), unlisted);
}

/// FIPS 186-5 signatures: a DSA-signed leaf passes hipaa (SHA-2) but not fips; SHA-1 stays the
/// high `cert-strength` finding everywhere.
#[test]
fn fips_certificate_signatures() {
    use crate::inspect::tls::cert::CertInfo;
    use crate::observation::Handshake;
    let judged = |p: Profile, sig: &str| {
        let leaf = CertInfo {
            not_before: 0,
            not_after: 4_000_000_000,
            key_type: "ec",
            key_bits: 256,
            signature_algorithm: sig.into(),
            ..Default::default()
        };
        let hs = Handshake { ts_ns: 1_700_000_000_000_000_000, certs: vec![leaf], ..Default::default() };
        let policy = super::Policy { profile: p, ..Default::default() };
        policy.evaluate(&hs).into_iter().map(|f| (f.id, f.severity, f.rule, f.evidence)).collect::<Vec<_>>()
    };
    assert_eq!(judged(Profile::Hipaa, "dsa-with-SHA256"), vec![]);
    assert_eq!(
        judged(Profile::Fips, "dsa-with-SHA256"),
        vec![(
            "tls.cert.weak-signature",
            Severity::Medium,
            "fips/allowed-signatures",
            "certificate signed with dsa-with-SHA256 (not in the fips list)".to_string()
        )]
    );
    assert_eq!(judged(Profile::Fips, "ecdsa-with-SHA384"), vec![]);
    assert_eq!(judged(Profile::Fips, "ED25519"), vec![]);
    let sha1 = judged(Profile::Fips, "sha1WithRSAEncryption");
    assert_eq!(
        sha1.iter().map(|f| (f.0, f.1, f.2)).collect::<Vec<_>>(),
        vec![("tls.cert.weak-signature", Severity::High, "fips/cert-strength")]
    );
}
