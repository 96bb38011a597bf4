//! Sink, JSON lines: one ECS-style `tls` event per handshake, one `plaintext` event per
//! recognised clear flow, one `ssh` event per SSH session (built in `ssh_event.rs`). Field
//! names are a public contract (users' jq scripts, the corpus checks): never rename one. A field
//! not seen is absent. Plaintext events carry protocol metadata only (the inspectors' closed
//! sets), never payload.
use serde::Serialize;

use super::local_event::{owned, Owned};
use crate::inspect::dtls::DtlsFacts;
use crate::inspect::names::{cipher_name, group_label, sslv2_cipher_name, version_parts};
use crate::inspect::plaintext::{
    Confidence, Credential, DicomMeta, Hl7Meta, HttpMeta, PlainFacts, StartTls, X12Meta, XmppMeta,
};
use crate::inspect::quic::QuicFacts;
use crate::inspect::tds::TdsMeta;
use crate::inspect::tls::cert::CertInfo;
use crate::inspect::tls::certreq::cert_type_name;
use crate::inspect::tls::hello::is_grease;
use crate::inspect::tls::trust::Trust;
use crate::observation::Handshake;
use crate::observation::{Observed, Output, PlainFlow};
use crate::policy::Finding;

#[derive(Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    /// Absent only on a probe event whose connection never got a local address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Host>,
    pub destination: Host,
    /// Only on handshakes carried over UDP: `udp` and `quic` or `dtls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    pub tls: Tls,
    /// Only on QUIC handshakes: the QUIC layer's facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic: Option<Quic>,
    /// Only on DTLS handshakes: the DTLS layer's facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtls: Option<Dtls>,
    /// Only on SQL Server sessions (TLS carried by TDS): the PRELOGIN facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tds: Option<&'a TdsMeta>,
    /// Only on `probe` events: what the prober did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe<'a>>,
    pub findings: &'a [Finding],
    /// Live: the local process, container, unit and pod ([`super::local_event`]).
    #[serde(flatten)]
    pub owned: Owned<'a>,
}

/// `probe.*`: how the probe went, the whole chain as the server sent it, the version sweep.
#[derive(Serialize)]
pub struct Probe<'a> {
    pub result: &'static str,
    pub trigger: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainCert>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<SweepRow>,
}

/// One certificate of a probed chain (leaf first).
#[derive(Serialize)]
pub struct ChainCert {
    #[serde(flatten)]
    pub x509: X509,
    pub hash: Hash,
}

/// One offer of the version sweep.
#[derive(Serialize)]
pub struct SweepRow {
    pub offered: &'static str,
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// One `plaintext` event: a flow that carried a recognised protocol in clear.
#[derive(Serialize)]
pub struct PlainEvent<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    pub source: Host,
    pub destination: Host,
    pub plaintext: Plain<'a>,
    pub findings: &'a [Finding],
    /// Live: the local process, container, unit and pod ([`super::local_event`]).
    #[serde(flatten)]
    pub owned: Owned<'a>,
}

/// `plaintext.*`: the protocol and its metadata.
#[derive(Serialize)]
pub struct Plain<'a> {
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hl7: Option<&'a Hl7Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dicom: Option<&'a DicomMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<&'a HttpMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x12: Option<&'a X12Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xmpp: Option<XmppMeta>,
    #[serde(skip_serializing_if = "<[Credential]>::is_empty")]
    pub credentials: &'a [Credential],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<StartTls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tds: Option<&'a TdsMeta>,
}

/// Either kind of event, serialized as itself (built and written at once: not worth a box).
#[derive(Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum AnyEvent<'a> {
    Tls(Event<'a>),
    Plaintext(PlainEvent<'a>),
    Ssh(super::ssh_event::SshEvent<'a>),
}

/// The event of one output.
pub fn any_event(o: &Output) -> AnyEvent<'_> {
    match &o.observed {
        Observed::Tls { handshake, upgrade } => {
            let mut ev = event(handshake, &o.findings);
            if let Some(p) = &handshake.probe {
                ev.kind = "probe";
                ev.probe = Some(Probe {
                    result: p.result,
                    trigger: p.trigger,
                    server_name: p.server_name.as_deref(),
                    error: p.error.as_deref(),
                    chain: handshake
                        .certs
                        .iter()
                        .map(|c| ChainCert { x509: x509(c), hash: Hash { sha256: c.sha256.clone() } })
                        .collect(),
                    versions: p
                        .versions
                        .iter()
                        .map(|v| SweepRow {
                            offered: v.offered,
                            accepted: v.accepted.is_some(),
                            version: v.accepted.map(|(ver, _)| version_label(ver)),
                            cipher: v.accepted.map(|(_, c)| cipher_name(c)),
                            refused: v.refused.clone(),
                        })
                        .collect(),
                });
            }
            ev.tls.starttls = upgrade.as_ref().and_then(|u| u.protocol).map(|p| p.as_str());
            ev.tds = upgrade.as_ref().and_then(|u| u.tds.as_ref());
            ev.owned = owned(&o.local);
            AnyEvent::Tls(ev)
        }
        Observed::Plaintext(p) => {
            AnyEvent::Plaintext(PlainEvent { owned: owned(&o.local), ..plain_event(p, &o.findings) })
        }
        Observed::Ssh(s) => AnyEvent::Ssh(super::ssh_event::SshEvent {
            owned: owned(&o.local),
            ..super::ssh_event::ssh_event(s, &o.findings)
        }),
    }
}

/// Build the event of one plaintext flow.
pub fn plain_event<'a>(p: &'a PlainFlow, findings: &'a [Finding]) -> PlainEvent<'a> {
    let f: &PlainFacts = &p.facts;
    PlainEvent {
        kind: "plaintext",
        timestamp: rfc3339(p.ts_ns),
        source: Host { ip: p.client.addr.to_ip().to_string(), port: p.client.port },
        destination: Host { ip: p.server.addr.to_ip().to_string(), port: p.server.port },
        plaintext: Plain {
            protocol: f.protocol.map_or("unknown", |p| p.as_str()),
            confidence: f.confidence,
            hl7: f.hl7.as_ref(),
            dicom: f.dicom.as_ref(),
            http: f.http.as_ref(),
            x12: f.x12.as_ref(),
            xmpp: f.xmpp,
            credentials: &f.credentials,
            starttls: f.starttls,
            tds: f.tds.as_ref(),
        },
        findings,
        owned: Owned::default(),
    }
}

/// `network.*` (ECS): the transport and the protocol carrying the handshake.
#[derive(Serialize)]
pub struct Network {
    pub transport: &'static str,
    pub protocol: &'static str,
}

/// `quic.*`: the version of the client's Initials, the server's when it differs, the versions
/// a Version Negotiation listed, whether the server sent a Retry.
#[derive(Serialize)]
pub struct Quic {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub version_negotiation: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
}

/// `dtls.*`: whether the server asked for a cookie (HelloVerifyRequest; the hello judged is the
/// one that carried it), and the record version of the client's first handshake record.
#[derive(Serialize)]
pub struct Dtls {
    pub hello_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_version: Option<String>,
}

fn dtls(f: &DtlsFacts) -> Dtls {
    Dtls { hello_verify: f.hello_verify, record_version: f.record_version.map(version_label) }
}

/// A QUIC version as people write it: `1`, `2`, `draft-29`, else hexadecimal.
pub fn quic_version(v: u32) -> String {
    match v {
        1 => "1".into(),
        0x6b33_43cf => "2".into(),
        0xff00_0000..=0xff00_00ff => format!("draft-{}", v & 0xff),
        _ => format!("0x{v:08x}"),
    }
}

fn quic(f: &QuicFacts) -> Quic {
    Quic {
        version: f.version.map_or_else(|| "unknown".into(), quic_version),
        server_version: f.server_version.map(quic_version),
        version_negotiation: f.version_negotiation.iter().flatten().map(|v| quic_version(*v)).collect(),
        retry: f.retry,
    }
}

#[derive(Serialize)]
pub struct Host {
    pub ip: String,
    pub port: u16,
}

#[derive(Serialize, Default)]
pub struct Tls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_protocol: Option<String>,
    pub established: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello_retry_request: Option<bool>,
    /// The clear protocol the session upgraded from (STARTTLS and the like), e.g. `smtp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<&'static str>,
    pub client: Client,
    pub server: Server,
}

#[derive(Serialize, Default)]
pub struct Client {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_version: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_versions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_ciphers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_share_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_algorithms: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compression_methods: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renegotiation_info: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renegotiation_scsv: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ech: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sslv2_hello: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4_r: Option<String>,
    /// Whether the client presented a certificate (mutual TLS): only when known, i.e. TLS <= 1.2
    /// with a CertificateRequest answered; absent under TLS 1.3 (encrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_presented: Option<bool>,
    /// The client's leaf certificate (Zeek's `client_subject` / `client_issuer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509>,
    /// SHA-256 of the client's leaf (the first of Zeek's `client_cert_chain_fps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<usize>,
}

#[derive(Serialize, Default)]
pub struct Server {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_method: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renegotiation_info: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_prime_bits: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_complete: Option<bool>,
    /// Whether the chain leads to an anchor of `--ca-bundle` (absent without a bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_trusted: Option<bool>,
    /// The CertificateRequest, when the server sent one (TLS <= 1.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_request: Option<CertificateRequest>,
}

/// `tls.server.certificate_request`: what the server asked the client for.
#[derive(Serialize)]
pub struct CertificateRequest {
    pub certificate_types: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_algorithms: Vec<String>,
    /// The acceptable CAs' names (at most 16, each at most 256 characters).
    pub ca_names: Vec<String>,
    /// How many names the server listed (may exceed `ca_names`).
    pub ca_names_count: usize,
}

#[derive(Serialize)]
pub struct Hash {
    pub sha256: String,
}

#[derive(Serialize)]
pub struct X509 {
    pub not_before: String,
    pub not_after: String,
    pub subject: Name,
    pub issuer: Name,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternative_names: Vec<String>,
    pub public_key_algorithm: &'static str,
    pub public_key_size: u32,
    pub signature_algorithm: String,
    pub serial_number: String,
    pub self_signed: bool,
}

#[derive(Serialize)]
pub struct Name {
    pub distinguished_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
}

/// RFC 3339 UTC with microseconds.
pub fn rfc3339(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.format(&f).unwrap_or_default()
}

/// Certificate times may precede 1970 (see suricata's tls-pre-1970 capture): keep them exact.
fn secs_rfc3339(s: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(s).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

fn x509(c: &CertInfo) -> X509 {
    X509 {
        not_before: secs_rfc3339(c.not_before),
        not_after: secs_rfc3339(c.not_after),
        subject: Name { distinguished_name: c.subject.clone(), common_name: c.subject_cn.clone() },
        issuer: Name { distinguished_name: c.issuer.clone(), common_name: c.issuer_cn.clone() },
        alternative_names: c.san_dns.clone(),
        public_key_algorithm: c.key_type,
        public_key_size: c.key_bits,
        signature_algorithm: c.signature_algorithm.clone(),
        serial_number: c.serial.clone(),
        self_signed: c.self_signed,
    }
}

fn version_label(v: u16) -> String {
    match version_parts(v) {
        Some((p, n)) => format!("{p}{n}"),
        None => format!("0x{v:04x}"),
    }
}

/// Build the event of one handshake.
pub fn event<'a>(hs: &Handshake, findings: &'a [Finding]) -> Event<'a> {
    let mut tls = Tls { established: hs.established, ..Default::default() };
    if let Some(v) = hs.version() {
        if let Some((p, n)) = version_parts(v) {
            tls.version_protocol = Some(p);
            tls.version = Some(n);
        }
    }
    if let Some(sh) = &hs.server_hello {
        match sh.sslv2_kind {
            Some(k) => {
                tls.cipher = Some(sslv2_cipher_name(k));
                tls.cipher_id = Some(k);
            }
            None => {
                tls.cipher = Some(cipher_name(sh.cipher));
                tls.cipher_id = Some(sh.cipher as u32);
                tls.server.compression_method = Some(sh.compression);
                tls.server.renegotiation_info = Some(sh.renegotiation_info);
            }
        }
        tls.next_protocol = sh.alpn.as_ref().map(|a| String::from_utf8_lossy(a).into_owned());
    }
    tls.curve = hs.group().map(group_label);
    tls.hello_retry_request = hs.hello_retry.as_ref().map(|_| true);
    if let Some(ch) = &hs.client_hello {
        let c = &mut tls.client;
        c.server_name = ch.sni.clone();
        c.legacy_version = Some(version_label(ch.version));
        c.supported_versions =
            ch.supported_versions.iter().filter(|v| !is_grease(**v)).map(|v| version_label(*v)).collect();
        c.supported_ciphers = ch.ciphers.iter().filter(|v| !is_grease(**v)).map(|v| cipher_name(*v)).collect();
        c.supported_ciphers.extend(ch.sslv2_kinds.iter().map(|k| sslv2_cipher_name(*k)));
        c.supported_groups = ch.groups.iter().filter(|v| !is_grease(**v)).map(|g| group_label(*g)).collect();
        c.key_share_groups = ch.key_share_groups.iter().filter(|v| !is_grease(**v)).map(|g| group_label(*g)).collect();
        c.signature_algorithms = ch.sig_algs.iter().map(|s| format!("0x{s:04x}")).collect();
        c.alpn = ch.alpn.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        c.compression_methods = ch.compression.clone();
        c.renegotiation_info = Some(ch.renegotiation_info);
        c.renegotiation_scsv = Some(ch.scsv);
        c.ech = ch.ech.then_some(true);
        c.sslv2_hello = ch.sslv2_format.then_some(true);
    }
    if let Some((s, h)) = &hs.ja3 {
        tls.client.ja3 = Some(h.clone());
        tls.client.ja3_string = Some(s.clone());
    }
    if let Some((j, r)) = &hs.ja4 {
        tls.client.ja4 = Some(j.clone());
        tls.client.ja4_r = Some(r.clone());
    }
    if let Some((s, h)) = &hs.ja3s {
        tls.server.ja3s = Some(h.clone());
        tls.server.ja3s_string = Some(s.clone());
    }
    tls.server.dh_prime_bits = hs.kx.dh_prime_bits;
    if let Some(leaf) = hs.certs.first() {
        tls.server.x509 = Some(x509(leaf));
        tls.server.hash = Some(Hash { sha256: leaf.sha256.clone() });
        tls.server.chain_length = Some(hs.certs.len());
        tls.server.chain_complete = Some(hs.chain_complete);
        tls.server.chain_trusted = hs.chain_trust.as_ref().map(|t| *t == Trust::Trusted);
    }
    tls.server.certificate_request = hs.cert_request.as_ref().map(|cr| CertificateRequest {
        certificate_types: cr.cert_types.iter().map(|t| cert_type_name(*t)).collect(),
        signature_algorithms: cr.sig_algs.iter().map(|s| format!("0x{s:04x}")).collect(),
        ca_names: cr.ca_names.clone(),
        ca_names_count: cr.ca_names_total,
    });
    tls.client.certificate_presented = hs.client_cert_presented();
    if let Some(leaf) = hs.client_certs.first() {
        tls.client.x509 = Some(x509(leaf));
        tls.client.hash = Some(Hash { sha256: leaf.sha256.clone() });
        tls.client.chain_length = Some(hs.client_certs.len());
    }
    Event {
        kind: "tls",
        timestamp: rfc3339(hs.ts_ns),
        source: (hs.probe.is_none() || hs.client.port != 0)
            .then(|| Host { ip: hs.client.addr.to_ip().to_string(), port: hs.client.port }),
        destination: Host { ip: hs.server.addr.to_ip().to_string(), port: hs.server.port },
        network: match (&hs.quic, &hs.dtls) {
            (Some(_), _) => Some(Network { transport: "udp", protocol: "quic" }),
            (_, Some(_)) => Some(Network { transport: "udp", protocol: "dtls" }),
            _ => None,
        },
        tls,
        quic: hs.quic.as_ref().map(quic),
        dtls: hs.dtls.as_ref().map(dtls),
        tds: None,
        probe: None,
        findings,
        owned: Owned::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(1_500_000_000_123_456_789), "2017-07-14T02:40:00.123456Z");
        assert_eq!(secs_rfc3339(-5), "1969-12-31T23:59:55Z");
    }
}
