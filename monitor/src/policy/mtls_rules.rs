//! Policy, mutual TLS: the client's certificate judged like a server's (as client-side
//! findings), and the servers the config file says must require one (`[[mtls-required]]`).
//! Must never guess what TLS 1.3 encrypts: there the requirement is reported unverifiable.
use std::net::IpAddr;

use ipnet::IpNet;

use super::catalogue::entry;
use super::exceptions::SniPattern;
use super::rules::raise;
use super::{rule, Finding, Policy};
use crate::inspect::tls::hello::version_rank;
use crate::observation::Handshake;

/// One `[[mtls-required]]` entry: servers that must ask for and get a client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtlsRequired {
    /// Server addresses (a bare IP is a /32 or /128).
    pub server: IpNet,
    /// Server port; any when absent.
    pub port: Option<u16>,
    /// Server name the client asked for; any (including none) when absent.
    pub sni: Option<SniPattern>,
}

impl MtlsRequired {
    /// Does this entry name a handshake to `server:port` asking for `sni`?
    pub fn names(&self, server: IpAddr, port: u16, sni: Option<&str>) -> bool {
        self.server.contains(&server)
            && self.port.is_none_or(|p| p == port)
            && self.sni.as_ref().is_none_or(|pat| sni.is_some_and(|n| pat.matches(n)))
    }
}

pub(super) fn all(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    client_certificate(p, hs, out);
    required(p, hs, out);
}

/// The client's leaf: validity, self-signature, key and signature strength.
fn client_certificate(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.client_certs.first() else { return };
    let now = (hs.ts_ns / 1_000_000_000) as i64;
    let who = leaf.subject_cn.as_deref().map_or_else(|| leaf.subject.clone(), |cn| format!("CN={cn}"));
    let day = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t).map(|d| d.date().to_string()).unwrap_or_else(|_| t.to_string())
    };
    if now > leaf.not_after {
        let ev = format!("client certificate {who} expired on {}", day(leaf.not_after));
        raise(out, entry!("tls.client-cert.expired"), rule!(p.profile, "client-cert-validity"), ev);
    }
    if leaf.self_signed {
        let ev = format!("client certificate {who} is self-signed");
        raise(out, entry!("tls.client-cert.self-signed"), rule!(p.profile, "client-cert-trust"), ev);
    }
    if leaf.weak_key() {
        let ev = format!("client certificate {who}: {} key of {} bits", leaf.key_type.to_uppercase(), leaf.key_bits);
        raise(out, entry!("tls.client-cert.weak-key"), rule!(p.profile, "client-cert-strength"), ev);
    }
    if let Some(c) = hs.client_certs.iter().find(|c| c.weak_signature() && !(c.self_signed && c.is_ca)) {
        let ev = format!("client certificate {who}: signed with {}", c.signature_algorithm);
        raise(out, entry!("tls.client-cert.weak-signature"), rule!(p.profile, "client-cert-strength"), ev);
    }
}

/// A handshake to a server of `[[mtls-required]]`. TLS <= 1.2: the server's whole first flight
/// (through ServerHelloDone) must show a CertificateRequest, and the client must not answer it
/// with an empty Certificate. A resumed session shows neither (no ServerHelloDone) and is not
/// judged. TLS 1.3: both are encrypted, so the requirement cannot be checked on the wire.
fn required(p: &Policy, hs: &Handshake, out: &mut Vec<Finding>) {
    if p.mtls_required.is_empty() || hs.probe.is_some() {
        return;
    }
    let sni = hs.client_hello.as_ref().and_then(|c| c.sni.as_deref());
    if !p.mtls_required.iter().any(|m| m.names(hs.server.addr.to_ip(), hs.server.port, sni)) {
        return;
    }
    let Some(v) = hs.version() else { return };
    let rule = rule!(p.profile, "mtls-required");
    if version_rank(v) >= version_rank(0x0304) {
        let ev = "TLS 1.3: the CertificateRequest and the client's Certificate are encrypted".to_string();
        raise(out, entry!("tls.mtls.unverifiable"), rule, ev);
    } else if hs.cert_request.is_none() && hs.server_hello_done {
        raise(out, entry!("tls.mtls.missing"), rule, "server sent no CertificateRequest".into());
    } else if hs.cert_request.is_some() && hs.client_cert_empty {
        let ev = "client declined the CertificateRequest (empty Certificate)".to_string();
        raise(out, entry!("tls.mtls.missing"), rule, ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::tls::cert::CertInfo;
    use crate::inspect::tls::certreq::CertRequest;
    use crate::inspect::tls::hello::ServerHello;
    use crate::observation::Severity;

    /// 2026-12-02 00:00:00 UTC.
    const NOW: u64 = 1_796_169_600 * 1_000_000_000;

    fn tls12(server: &str) -> Handshake {
        let mut hs = Handshake {
            ts_ns: NOW,
            server_hello: Some(ServerHello { version: 0x0303, ..Default::default() }),
            server_hello_done: true,
            ..Default::default()
        };
        hs.server.addr = crate::decode::Addr::from_ip(server.parse::<IpAddr>().unwrap());
        hs.server.port = 443;
        hs
    }

    fn policy(server: &str) -> Policy {
        let m = MtlsRequired { server: super::super::exceptions::parse_server(server).unwrap(), port: None, sni: None };
        Policy { mtls_required: vec![m], ..Default::default() }
    }

    fn found(p: &Policy, hs: &Handshake) -> Vec<(&'static str, Severity)> {
        let mut out = Vec::new();
        all(p, hs, &mut out);
        out.iter().map(|f| (f.id, f.severity)).collect()
    }

    #[test]
    fn required_server_judged_only_when_the_wire_shows_it() {
        let p = policy("10.0.0.0/8");
        let mut hs = tls12("10.1.1.1");
        assert_eq!(found(&p, &hs), [("tls.mtls.missing", Severity::High)], "no CertificateRequest");
        assert_eq!(found(&policy("192.168.0.0/16"), &hs), [], "another server");
        hs.server_hello_done = false;
        assert_eq!(found(&p, &hs), [], "resumed or cut: the first flight was not seen whole");
        hs.cert_request = Some(CertRequest::default());
        assert_eq!(found(&p, &hs), [], "asked, answer not seen");
        hs.client_cert_empty = true;
        assert_eq!(found(&p, &hs), [("tls.mtls.missing", Severity::High)], "declined");
        let mut t13 = tls12("10.1.1.1");
        t13.server_hello = Some(ServerHello { version: 0x0303, selected_version: Some(0x0304), ..Default::default() });
        t13.server_hello_done = false;
        assert_eq!(found(&p, &t13), [("tls.mtls.unverifiable", Severity::Info)]);
        let mut probe = tls12("10.1.1.1");
        probe.probe = Some(Box::default());
        assert_eq!(found(&p, &probe), [], "the prober is not one of the server's clients");
    }

    #[test]
    fn client_leaf_judged_like_a_server_leaf() {
        let mut hs = tls12("10.1.1.1");
        let good = CertInfo {
            subject_cn: Some("dev".into()),
            not_before: 0,
            not_after: 2_000_000_000,
            key_type: "ec",
            key_bits: 256,
            signature_algorithm: "ecdsa-with-SHA256".into(),
            ..Default::default()
        };
        hs.client_certs = vec![good.clone()];
        assert_eq!(found(&Policy::default(), &hs), []);
        hs.client_certs = vec![CertInfo { self_signed: true, ..good.clone() }];
        assert_eq!(found(&Policy::default(), &hs), [("tls.client-cert.self-signed", Severity::Low)]);
        // A SHA-1 self-signed root sent along is not judged; a SHA-1 intermediate is.
        let root = CertInfo {
            self_signed: true,
            is_ca: true,
            signature_algorithm: "sha1WithRSAEncryption".into(),
            ..good.clone()
        };
        hs.client_certs = vec![good.clone(), root.clone()];
        assert_eq!(found(&Policy::default(), &hs), []);
        hs.client_certs = vec![good, CertInfo { self_signed: false, ..root }];
        assert_eq!(found(&Policy::default(), &hs), [("tls.client-cert.weak-signature", Severity::High)]);
    }
}
