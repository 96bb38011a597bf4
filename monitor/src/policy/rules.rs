//! Policy rules, one small function each, judged under the policy's profile. Suites are classified from
//! tls-parser's cipher-suite metadata (kx, au, enc, mode, mac), never from a name list.
use tls_parser::{TlsCipherAu, TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite};

use super::catalogue::{entry, lookup, Entry};
use super::tables::table;
use super::{rule, Finding, Policy, Profile, Severity};
use crate::inspect::names::{alert_name, ec_group_bits, group_label, is_pq_group, version_name};
use crate::inspect::tls::hello::version_rank;
use crate::inspect::tls::trust::Trust;
use crate::observation::Handshake;

/// A finding of the catalogue row `e` (its id and HIPAA reference) with this severity.
pub(super) fn push(out: &mut Vec<Finding>, e: &Entry, sev: Severity, rule: &'static str, evidence: String) {
    out.push(Finding { id: e.id, severity: sev, hipaa_ref: e.hipaa_ref, rule, evidence, acceptance: None });
}

/// A finding of the catalogue row `e` with the row's default severity.
pub(super) fn raise(out: &mut Vec<Finding>, e: &Entry, rule: &'static str, evidence: String) {
    push(out, e, e.severity, rule, evidence);
}

pub(super) fn all(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    versions(p, hs, out);
    cipher(p, hs, out);
    key_exchange(p, hs, out);
    compression(p, hs, out);
    renegotiation(p, hs, out);
    certificates(p, hs, out);
    alerts(p, hs, out);
    super::mtls_rules::all(p, hs, out);
    pq(p, hs, out);
    anomalies(p, hs, out);
    probe(p, hs, out);
}

fn versions(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    let t = table(p.profile);
    let insecure = |v: u16| version_rank(v) > 0 && version_rank(v) <= version_rank(0x0300);
    let mut min_version = |e, sev, evidence: String| push(out, e, sev, rule!(p.profile, "min-version"), evidence);
    let (insecure_e, deprecated) = (entry!("tls.version.insecure"), entry!("tls.version.deprecated"));
    let negotiated = hs.version();
    match negotiated {
        Some(v) if insecure(v) => {
            min_version(insecure_e, insecure_e.severity, format!("{} negotiated", version_name(v)))
        }
        // DTLS 1.0 is TLS 1.1's DTLS, deprecated with it (RFC 8996 §5).
        Some(v @ (0x0301 | 0x0302 | 0xfeff)) => {
            min_version(deprecated, deprecated.severity, format!("{} negotiated (RFC 8996)", version_name(v)))
        }
        // Below the profile's minimum but not deprecated by RFC 8996 (TLS 1.2 under modern).
        Some(v) if version_rank(v) < version_rank(t.min_version) => min_version(
            deprecated,
            Severity::Medium,
            format!("{} negotiated ({} requires {})", version_name(v), p.profile.name(), version_name(t.min_version)),
        ),
        _ => {}
    }
    let Some(ch) = &hs.client_hello else { return };
    let max = ch.max_version();
    let offer = format!("client offers at most {}", version_name(max));
    if version_rank(max) <= version_rank(0x0300) {
        if !negotiated.is_some_and(insecure) {
            min_version(insecure_e, insecure_e.severity, offer);
        }
    } else if version_rank(max) < version_rank(0x0303) {
        let e = entry!("tls.version.client-legacy-only");
        min_version(e, e.severity, offer);
    }
    if matches!(negotiated, Some(0x0303 | 0xfefd)) && version_rank(max) >= version_rank(0x0304) {
        let ev = match negotiated {
            Some(0xfefd) => "DTLS 1.2 negotiated though the client offered DTLS 1.3".to_string(),
            _ => "TLS 1.2 negotiated though the client offered TLS 1.3".to_string(),
        };
        // The severity is the profile's.
        push(out, entry!("tls.version.no-tls13"), t.no_tls13, rule!(p.profile, "prefer-tls13"), ev);
    }
}

/// The negotiated suite (not SSLv2), when tls-parser knows its id.
pub(crate) fn suite(hs: &Handshake) -> Option<&'static TlsCipherSuite> {
    hs.server_hello.as_ref().filter(|sh| sh.sslv2_kind.is_none()).and_then(|sh| crate::inspect::names::suite(sh.cipher))
}

/// A finding's (catalogue row, severity, rule, evidence) before it is pushed.
pub(super) type Verdict = (&'static Entry, Severity, &'static str, String);

fn cipher(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    if let Some((e, sev, rule, ev)) = suite(hs).and_then(|c| judge_suite(p.profile, c)) {
        push(out, e, sev, rule, ev);
    }
}

/// The cipher rule's verdict on a negotiated suite under `profile` (`None`: allowed).
pub(super) fn judge_suite(profile: Profile, c: &TlsCipherSuite) -> Option<Verdict> {
    let name = c.name;
    if let Some(why) = suite_insecure(c) {
        let ev = format!("{name} negotiated ({why})");
        let e = entry!("tls.cipher.insecure");
        return Some((e, e.severity, rule!(profile, "aead-suites"), ev));
    }
    let weak = entry!("tls.cipher.weak");
    let legacy = suite_legacy(c);
    if let Some(list) = table(profile).suites {
        if list.contains(&c.id) {
            return None;
        }
        let sev = if legacy { weak.severity } else { Severity::Medium };
        let ev = format!("{name} negotiated (not in the {} suite list)", profile.name());
        return Some((weak, sev, rule!(profile, "allowed-suites"), ev));
    }
    if legacy {
        let ev = format!("{name} negotiated (64-bit block or legacy cipher)");
        return Some((weak, weak.severity, rule!(profile, "aead-suites"), ev));
    }
    if !suite_aead(c) {
        let ev = format!("{name} negotiated (not AEAD: {:?} with {:?})", c.enc_mode, c.mac);
        return Some((weak, Severity::Medium, rule!(profile, "aead-suites"), ev));
    }
    None
}

/// Why a suite is broken whatever the profile (no encryption, broken cipher, export-grade key,
/// anonymous key exchange), if it is.
pub(crate) fn suite_insecure(c: &TlsCipherSuite) -> Option<&'static str> {
    match c.enc {
        TlsCipherEnc::Null => Some("no encryption"),
        TlsCipherEnc::Des | TlsCipherEnc::Rc4 | TlsCipherEnc::Rc2 => Some("broken cipher"),
        _ if c.enc_size < 112 => Some("export-grade key size"),
        _ if c.au == TlsCipherAu::Null && c.kx != TlsCipherKx::Tls13 => Some("anonymous key exchange"),
        _ => None,
    }
}

/// A 64-bit block or otherwise legacy cipher (3DES, IDEA, SEED).
pub(crate) fn suite_legacy(c: &TlsCipherSuite) -> bool {
    matches!(c.enc, TlsCipherEnc::TripleDes | TlsCipherEnc::Idea | TlsCipherEnc::Seed)
}

/// An AEAD suite. tls-parser gives ChaCha20-Poly1305 no mode (Null) but an AEAD MAC: that is AEAD.
pub(crate) fn suite_aead(c: &TlsCipherSuite) -> bool {
    c.mac == TlsCipherMac::Aead || !matches!(c.enc_mode, TlsCipherEncMode::Cbc | TlsCipherEncMode::Null)
}

/// Static (non-ephemeral) key exchange of a suite, as evidence.
pub(super) fn suite_no_pfs(c: &TlsCipherSuite) -> Option<String> {
    match c.kx {
        TlsCipherKx::Rsa | TlsCipherKx::Dh | TlsCipherKx::Ecdh | TlsCipherKx::Psk | TlsCipherKx::Krb5 => {
            Some(format!("{} uses static {:?} key exchange", c.name, c.kx))
        }
        _ => None,
    }
}

/// Why the handshake has no forward secrecy (static key exchange, TLS 1.3 psk_ke), if it has
/// none; `None` also when the suite is unknown.
pub(crate) fn no_forward_secrecy(hs: &Handshake) -> Option<String> {
    let resumed_psk_ke = hs.server_hello.as_ref().is_some_and(|sh| sh.key_share_group.is_none());
    suite(hs).and_then(|c| match c.kx {
        TlsCipherKx::Tls13 if resumed_psk_ke => Some("TLS 1.3 resumption without (EC)DHE (psk_ke)".into()),
        _ => suite_no_pfs(c),
    })
}

fn key_exchange(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    let no_pfs = no_forward_secrecy(hs);
    if let Some(ev) = no_pfs {
        raise(out, entry!("tls.kx.no-pfs"), rule!(p.profile, "forward-secrecy"), ev);
    }
    if let Some(bits) = hs.kx.dh_prime_bits.filter(|b| *b < 2048) {
        let ev = format!("DH prime of {bits} bits");
        raise(out, entry!("tls.kx.weak-group"), rule!(p.profile, "kx-strength"), ev);
    }
    if let Some((e, sev, rule, ev)) = hs.group().and_then(|g| judge_group(p.profile, g)) {
        push(out, e, sev, rule, ev);
    }
}

/// The key-exchange rule's verdict on a negotiated group under `profile` (`None`: allowed).
pub(super) fn judge_group(profile: Profile, g: u16) -> Option<Verdict> {
    let e = entry!("tls.kx.weak-group");
    if let Some(bits) = ec_group_bits(g).filter(|b| *b < 256) {
        let ev = format!("{} ({bits}-bit curve)", group_label(g));
        return Some((e, e.severity, rule!(profile, "kx-strength"), ev));
    }
    let list = table(profile).groups?;
    if list.contains(&g) {
        return None;
    }
    let ev = format!("{} negotiated (not in the {} group list)", group_label(g), profile.name());
    Some((e, Severity::Medium, rule!(profile, "allowed-groups"), ev))
}

fn compression(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    if let Some(m) = hs.server_hello.as_ref().map(|sh| sh.compression).filter(|m| *m != 0) {
        raise(
            out,
            entry!("tls.compression"),
            rule!(p.profile, "no-compression"),
            format!("compression method {m} negotiated (CRIME)"),
        );
    }
}

fn renegotiation(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    let Some(sh) = &hs.server_hello else { return };
    let v = sh.negotiated_version();
    if sh.sslv2_kind.is_some() || !(0x0300..=0x0303).contains(&v) || sh.renegotiation_info {
        return;
    }
    let offered = hs.client_hello.as_ref().is_some_and(|c| c.renegotiation_info || c.scsv);
    let ev = format!(
        "ServerHello has no renegotiation_info (RFC 5746); client {} it",
        if offered { "offered" } else { "did not offer" }
    );
    raise(out, entry!("tls.renegotiation.insecure"), rule!(p.profile, "secure-renegotiation"), ev);
}

fn certificates(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.certs.first() else { return };
    let now = (hs.ts_ns / 1_000_000_000) as i64;
    let day = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t).map(|d| d.date().to_string()).unwrap_or_else(|_| t.to_string())
    };
    if now > leaf.not_after {
        raise(
            out,
            entry!("tls.cert.expired"),
            rule!(p.profile, "cert-validity"),
            format!("server certificate expired on {}", day(leaf.not_after)),
        );
    } else if now < leaf.not_before {
        raise(
            out,
            entry!("tls.cert.not-yet-valid"),
            rule!(p.profile, "cert-validity"),
            format!("server certificate valid only from {}", day(leaf.not_before)),
        );
    } else if leaf.not_after - now < p.expiry_warning_s {
        raise(
            out,
            entry!("tls.cert.expiring"),
            rule!(p.profile, "cert-validity"),
            format!("server certificate expires on {} ({} days)", day(leaf.not_after), (leaf.not_after - now) / 86_400),
        );
    }
    if let Some(Trust::Untrusted(why)) = &hs.chain_trust {
        raise(out, entry!("tls.cert.untrusted"), rule!(p.profile, "cert-trust"), format!("chain not trusted: {why}"));
    }
    if leaf.self_signed {
        raise(
            out,
            entry!("tls.cert.self-signed"),
            rule!(p.profile, "cert-trust"),
            "server certificate is self-signed".into(),
        );
    }
    if let Some(sni) = hs.client_hello.as_ref().and_then(|c| c.sni.as_deref()) {
        if !leaf.matches_host(sni) {
            raise(
                out,
                entry!("tls.cert.name-mismatch"),
                rule!(p.profile, "cert-trust"),
                format!("certificate does not cover the requested server name {sni}"),
            );
        }
    }
    if leaf.weak_key() {
        raise(
            out,
            entry!("tls.cert.weak-key"),
            rule!(p.profile, "cert-strength"),
            format!("{} key of {} bits", leaf.key_type.to_uppercase(), leaf.key_bits),
        );
    }
    // The signatures that matter are on the leaf and intermediates, not on a self-signed root.
    if let Some(c) = hs.certs.iter().find(|c| c.weak_signature() && !(c.self_signed && c.is_ca)) {
        raise(
            out,
            entry!("tls.cert.weak-signature"),
            rule!(p.profile, "cert-strength"),
            format!("certificate signed with {}", c.signature_algorithm),
        );
    } else if let Some(list) = table(p.profile).cert_signatures {
        let unlisted = |c: &&crate::inspect::tls::cert::CertInfo| !list.contains(&c.signature_algorithm.as_str());
        if let Some(c) = hs.certs.iter().filter(|c| !(c.self_signed && c.is_ca)).find(unlisted) {
            let ev =
                format!("certificate signed with {} (not in the {} list)", c.signature_algorithm, p.profile.name());
            push(out, entry!("tls.cert.weak-signature"), Severity::Medium, rule!(p.profile, "allowed-signatures"), ev);
        }
    }
}

fn alerts(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    let sides = [("client", &hs.client_alerts), ("server", &hs.server_alerts)];
    for (side, list) in sides {
        if let Some(a) = list.iter().find(|a| a.level == 2) {
            raise(
                out,
                entry!("tls.alert.fatal"),
                rule!(p.profile, "handshake-failures"),
                format!("{side} sent fatal alert {}", alert_name(a.description)),
            );
        }
    }
}

fn pq(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    if let Some(g) = hs.server_hello.as_ref().and_then(|sh| sh.key_share_group).filter(|g| is_pq_group(*g)) {
        raise(out, entry!("tls.pq-hybrid"), rule!(p.profile, "pq-readiness"), format!("{} negotiated", group_label(g)));
    }
}

fn anomalies(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    for a in &hs.anomalies {
        let rule = rule!(p.profile, "integrity");
        match lookup(a.id) {
            Some(e) => raise(out, e, rule, a.detail.clone()),
            // An inspector id outside the catalogue (a test rules that out): low, like its family.
            None => {
                let e = Entry { id: a.id, ..*entry!("anomaly.malformed-record") };
                push(out, &e, Severity::Low, rule, a.detail.clone());
            }
        }
    }
}

/// What the prober learned beyond the handshake: that it could not reach or complete one, and
/// which legacy versions or weak suites the server still accepted when offered only those
/// (each try judged by the version and suite rules as if negotiated).
fn probe(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    let Some(pr) = &hs.probe else { return };
    let rule = rule!(p.profile, "probe");
    let why = || pr.error.clone().unwrap_or_else(|| pr.result.to_string());
    match pr.result {
        "ok" => {}
        "unreachable" | "timeout" => raise(out, entry!("probe.unreachable"), rule, why()),
        _ => raise(out, entry!("probe.failed"), rule, why()),
    }
    for v in &pr.versions {
        let Some((version, cipher)) = v.accepted else { continue };
        let sh = crate::inspect::tls::hello::ServerHello { version, cipher, ..Default::default() };
        let one = Handshake { server_hello: Some(sh), ..Default::default() };
        let mut found = Vec::new();
        versions(p, &one, &mut found);
        self::cipher(p, &one, &mut found);
        key_exchange(p, &one, &mut found);
        for mut f in found {
            f.evidence = format!("{} when the probe offered only {}", f.evidence, v.offered);
            out.push(f);
        }
    }
}
