//! SSH rules over the real OpenSSH 9.2p1 sessions of `inspect/ssh/testdata` and hand-made facts.
use crate::inspect::ssh::{inspect, SshFacts};
use crate::observation::{Endpoint, SshFlow};
use crate::policy::{Policy, Profile, Severity};

const MODERN: [&[u8]; 2] = [
    include_bytes!("../../inspect/ssh/testdata/modern-client.bin"),
    include_bytes!("../../inspect/ssh/testdata/modern-server.bin"),
];
const LEGACY: [&[u8]; 2] = [
    include_bytes!("../../inspect/ssh/testdata/legacy-client.bin"),
    include_bytes!("../../inspect/ssh/testdata/legacy-server.bin"),
];

fn flow(facts: SshFacts) -> SshFlow {
    let ep = |port| Endpoint { addr: crate::decode::Addr::v4([10, 215, 0, 1]), port };
    SshFlow { ts_ns: 1, client: ep(50_000), server: ep(22), facts }
}

fn judge(p: Profile, s: [&[u8]; 2]) -> Vec<(&'static str, Severity, String)> {
    let policy = Policy { profile: p, ..Policy::default() };
    policy.evaluate_ssh(&flow(inspect(s[0], s[1]))).into_iter().map(|f| (f.id, f.severity, f.evidence)).collect()
}

fn ids(v: &[(&'static str, Severity, String)]) -> Vec<(&'static str, Severity)> {
    v.iter().map(|(i, s, _)| (*i, *s)).collect()
}

#[test]
fn legacy_session_per_profile() {
    use Severity::*;
    let hipaa = judge(Profile::Hipaa, LEGACY);
    // Worst first, then by id.
    assert_eq!(ids(&hipaa), [("ssh.cipher.weak", High), ("ssh.kex.weak", High), ("ssh.hostkey.weak", Medium)]);
    assert_eq!(hipaa[0].2, "negotiated 3des-cbc");
    assert_eq!(hipaa[1].2, "negotiated diffie-hellman-group1-sha1 (RFC 9142)");
    assert_eq!(hipaa[2].2, "negotiated ssh-rsa");
    let modern = judge(Profile::MozillaModern, LEGACY);
    assert_eq!(
        ids(&modern),
        [("ssh.cipher.weak", High), ("ssh.hostkey.weak", High), ("ssh.kex.weak", High), ("ssh.mac.weak", Medium)]
    );
    assert_eq!(ids(&judge(Profile::Fips, LEGACY))[..2], [("ssh.cipher.weak", High), ("ssh.hostkey.weak", High)]);
}

#[test]
fn modern_session_per_profile() {
    use Severity::*;
    for p in [Profile::Hipaa, Profile::Nist80052r2, Profile::MozillaModern, Profile::MozillaIntermediate] {
        assert_eq!(ids(&judge(p, MODERN)), [("ssh.pq-hybrid", Info)], "{p:?}");
    }
    // FIPS: neither sntrup761x25519 nor ChaCha20-Poly1305 is approved.
    let fips = judge(Profile::Fips, MODERN);
    assert_eq!(ids(&fips), [("ssh.cipher.weak", Medium), ("ssh.kex.weak", Medium), ("ssh.pq-hybrid", Info)]);
    assert_eq!(fips[1].2, "negotiated sntrup761x25519-sha512, not in the fips list");
}

#[test]
fn hand_made_facts() {
    use crate::inspect::ssh::{Banner, Negotiated, SshSide};
    use Severity::*;
    let banner =
        |proto: &str| Some(Banner { proto: proto.into(), software: "x".into(), comments: None, lines_before: 0 });
    let n = Negotiated {
        kex: Some("curve25519-sha256".into()),
        host_key: Some("ssh-dss".into()),
        cipher_c2s: Some("arcfour256".into()),
        cipher_s2c: Some("none".into()),
        mac_c2s: Some("hmac-md5-96".into()),
        mac_s2c: Some("umac-64@openssh.com".into()),
        compression_c2s: Some("zlib".into()),
        compression_s2c: Some("zlib@openssh.com".into()),
        ..Negotiated::default()
    };
    let server_kex = crate::inspect::ssh::KexInit {
        kex: vec!["curve25519-sha256".into(), "diffie-hellman-group14-sha1".into()],
        ..Default::default()
    };
    let f = SshFacts {
        client: SshSide { banner: banner("2.0"), kexinit: None },
        server: SshSide { banner: banner("1.99"), kexinit: Some(server_kex) },
        negotiated: Some(n),
        anomalies: vec!["client-kexinit-truncated"],
    };
    let got = Policy::default().evaluate_ssh(&flow(f.clone()));
    let got: Vec<_> = got.iter().map(|f| (f.id, f.severity, f.evidence.as_str())).collect();
    assert_eq!(
        got,
        [
            ("ssh.cipher.weak", Critical, "negotiated arcfour256, none"),
            ("ssh.version.v1", Critical, "server identifies as SSH-1.99 (x)"),
            ("ssh.hostkey.weak", High, "negotiated ssh-dss"),
            ("ssh.mac.weak", High, "negotiated hmac-md5-96, umac-64@openssh.com"),
            ("anomaly.ssh-malformed", Low, "SSH handshake: client-kexinit-truncated"),
            ("ssh.compression", Low, "negotiated zlib (compression before authentication)"),
            ("ssh.kex.weak", Low, "server offers diffie-hellman-group14-sha1 (not negotiated)"),
        ]
    );
    // Severity overrides apply as for TLS.
    let p = Policy { severity_overrides: vec![("ssh.compression".into(), High)], ..Policy::default() };
    let got = p.evaluate_ssh(&flow(f));
    assert!(got.iter().any(|f| f.id == "ssh.compression" && f.severity == High));
}
