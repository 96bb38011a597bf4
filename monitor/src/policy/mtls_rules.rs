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
