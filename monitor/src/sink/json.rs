//! Sink, JSON lines: one `tls` event per handshake, one `plaintext` event per recognised clear
//! flow, one `ssh` event per SSH session (built in `ssh_event.rs`), in ECS (see `ecs.rs`:
//! `@timestamp`, `event.*`, `observer.*`, `network.*`, `source`/`destination`, `tls.*` as ECS
//! defines it, `process.*` …) with everything else under `tlsmon.*`. Field names are a public
//! contract (users' jq scripts, the corpus checks, SIEM mappings): never rename one. The
//! pre-ECS names stay readable for one release ([`Style::legacy`]). A field not seen is
//! absent. Plaintext events carry protocol metadata only (the inspectors' closed sets), never
//! payload.
use std::borrow::Cow;

use serde::Serialize;

use super::ecs::{Ecs, Meta, Network, Observer, ECS};
pub use super::ecs::{Host, Style};
use super::labels::{group_cow, labels, put_datetime, version_label, Hex4, Stamp};
use super::local_event::{local, owned, LocalField, Owned};
use crate::inspect::dtls::DtlsFacts;
use crate::inspect::names::{cipher_label, cipher_name, sslv2_cipher_name, version_parts};
use crate::inspect::plaintext::{
    Confidence, Credential, DicomMeta, Hl7Meta, HttpMeta, PlainFacts, StartTls, X12Meta, XmppMeta,
};
use crate::inspect::quic::QuicFacts;
use crate::inspect::tds::TdsMeta;
use crate::inspect::tls::cert::CertInfo;
use crate::inspect::tls::certreq::cert_type_name;
use crate::inspect::tls::trust::Trust;
use crate::observation::Handshake;
use crate::observation::{Observed, Output, PlainFlow};
use crate::policy::Finding;

/// One `tls` (or `probe`) event.
#[derive(Serialize)]
pub struct Event<'a> {
    #[serde(rename = "@timestamp")]
    pub timestamp: Stamp,
    pub ecs: Ecs,
    pub event: Meta,
    pub observer: &'a Observer,
    /// Absent only on a probe event whose connection never got a local address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Host>,
    pub destination: Host,
    pub network: Network,
    pub tls: Tls<'a>,
    /// Live: the local process, container, unit and pod ([`super::local_event`]).
    #[serde(flatten)]
    pub owned: Owned<'a>,
    pub tlsmon: TlsmonTls<'a>,
    /// The pre-ECS names, while legacy fields are on.
    #[serde(flatten)]
    pub legacy: Option<LegacyTls<'a>>,
}

/// `tlsmon.*` of a `tls` event: the TLS facts ECS has no field for, the layers below and
/// beside TLS, the prober's result, the findings, the local ends.
#[derive(Serialize, Clone)]
pub struct TlsmonTls<'a> {
    #[serde(skip_serializing_if = "TlsX::is_empty")]
    pub tls: TlsX<'a>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalField<'a>>,
}

/// The pre-ECS top-level names of a `tls` event (one release): `type`, `timestamp` and the
/// blocks that now sit under `tlsmon.*`.
#[derive(Serialize)]
pub struct LegacyTls<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: Stamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic: Option<Quic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtls: Option<Dtls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tds: Option<&'a TdsMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe<'a>>,
    pub findings: &'a [Finding],
}

/// `probe.*`: how the probe went, the whole chain as the server sent it, the version sweep.
#[derive(Serialize, Clone)]
pub struct Probe<'a> {
    pub result: &'static str,
    pub trigger: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<ChainCert<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<SweepRow>,
}

/// One certificate of a probed chain (leaf first).
#[derive(Serialize, Clone)]
pub struct ChainCert<'a> {
    #[serde(flatten)]
    pub x509: X509<'a>,
    pub self_signed: bool,
    pub hash: Hash<'a>,
}

/// One offer of the version sweep.
#[derive(Serialize, Clone)]
pub struct SweepRow {
    pub offered: &'static str,
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// One `plaintext` event: a flow that carried a recognised protocol in clear.
#[derive(Serialize)]
pub struct PlainEvent<'a> {
    #[serde(rename = "@timestamp")]
    pub timestamp: Stamp,
    pub ecs: Ecs,
    pub event: Meta,
    pub observer: &'a Observer,
    pub source: Host,
    pub destination: Host,
    pub network: Network,
    /// Live: the local process, container, unit and pod ([`super::local_event`]).
    #[serde(flatten)]
    pub owned: Owned<'a>,
    pub tlsmon: TlsmonPlain<'a>,
    #[serde(flatten)]
    pub legacy: Option<LegacyPlain<'a>>,
}

/// `tlsmon.*` of a `plaintext` event.
#[derive(Serialize)]
pub struct TlsmonPlain<'a> {
    pub plaintext: Plain<'a>,
    pub findings: &'a [Finding],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalField<'a>>,
}

/// The pre-ECS top-level names of a `plaintext` event (one release).
#[derive(Serialize)]
pub struct LegacyPlain<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: Stamp,
    pub plaintext: Plain<'a>,
    pub findings: &'a [Finding],
}

/// `plaintext.*`: the protocol and its metadata.
#[derive(Serialize, Clone)]
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

/// The event of one output, written in `style`.
pub fn any_event<'a>(o: &'a Output, style: &'a Style) -> AnyEvent<'a> {
    match &o.observed {
        Observed::Tls { handshake, upgrade } => {
            let mut ev = event(handshake, &o.findings, &style.observer);
            if let Some(p) = &handshake.probe {
                ev.event = Meta::new("tlsmon.probe", &o.findings);
                ev.tlsmon.probe = Some(Probe {
                    result: p.result,
                    trigger: p.trigger,
                    server_name: p.server_name.as_deref(),
                    error: p.error.as_deref(),
                    chain: handshake
                        .certs
                        .iter()
                        .map(|c| ChainCert {
                            x509: x509(c),
                            self_signed: c.self_signed,
                            hash: Hash { sha256: &c.sha256 },
                        })
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
            ev.tlsmon.tls.top.starttls = upgrade.as_ref().and_then(|u| u.protocol).map(|p| p.as_str());
            ev.tlsmon.tds = upgrade.as_ref().and_then(|u| u.tds.as_ref());
            ev.owned = owned(&o.local);
            ev.tlsmon.local = local(&o.local);
            if style.legacy {
                ev.with_legacy();
            }
            AnyEvent::Tls(ev)
        }
        Observed::Plaintext(p) => {
            let mut ev = plain_event(p, &o.findings, &style.observer);
            ev.owned = owned(&o.local);
            ev.tlsmon.local = local(&o.local);
            if style.legacy {
                ev.legacy = Some(LegacyPlain {
                    kind: "plaintext",
                    timestamp: ev.timestamp,
                    plaintext: ev.tlsmon.plaintext.clone(),
                    findings: ev.tlsmon.findings,
                });
            }
            AnyEvent::Plaintext(ev)
        }
        Observed::Ssh(s) => {
            let mut ev = super::ssh_event::ssh_event(s, &o.findings, &style.observer);
            ev.owned = owned(&o.local);
            ev.tlsmon.local = local(&o.local);
            if style.legacy {
                ev.with_legacy();
            }
            AnyEvent::Ssh(ev)
        }
    }
}

/// Append the JSON line of one output, written in `style`, newline included: the one way an
/// event becomes bytes on stdout (the emitter's, or a parallel replay's workers').
pub fn write_line(o: &Output, style: &Style, line: &mut Vec<u8>) -> serde_json::Result<()> {
    super::compact::write(line, &any_event(o, style))?;
    line.push(b'\n');
    Ok(())
}

impl Event<'_> {
    /// Add the pre-ECS names: `type`, `timestamp`, the top-level blocks, and the TLS facts
    /// ECS has no field for back inside `tls.*`.
    fn with_legacy(&mut self) {
        let t = &self.tlsmon;
        self.tls.legacy = Some(t.tls.top.clone());
        self.tls.client.legacy = Some(ClientX { self_signed: None, ..t.tls.client.clone() });
        self.tls.server.legacy = Some(ServerX { self_signed: None, ..t.tls.server.clone() });
        for (x, self_signed) in [
            (&mut self.tls.client.x509, t.tls.client.self_signed),
            (&mut self.tls.server.x509, t.tls.server.self_signed),
        ] {
            if let Some(x) = x {
                x.self_signed = self_signed;
            }
        }
        self.legacy = Some(LegacyTls {
            kind: if t.probe.is_some() { "probe" } else { "tls" },
            timestamp: self.timestamp,
            quic: t.quic.clone(),
            dtls: t.dtls.clone(),
            tds: t.tds,
            probe: t.probe.clone(),
            findings: t.findings,
        });
    }
}

/// Build the event of one plaintext flow.
pub fn plain_event<'a>(p: &'a PlainFlow, findings: &'a [Finding], observer: &'a Observer) -> PlainEvent<'a> {
    let f: &PlainFacts = &p.facts;
    let protocol = f.protocol.map(|p| p.as_str());
    PlainEvent {
        timestamp: Stamp::new(p.ts_ns),
        ecs: ECS,
        event: Meta::new("tlsmon.plaintext", findings),
        observer,
        source: Host { ip: p.client.addr.to_ip(), port: p.client.port },
        destination: Host { ip: p.server.addr.to_ip(), port: p.server.port },
        network: Network::new("tcp", protocol, p.server.addr.to_ip()),
        owned: Owned::default(),
        tlsmon: TlsmonPlain {
            plaintext: Plain {
                protocol: protocol.unwrap_or("unknown"),
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
            local: None,
        },
        legacy: None,
    }
}

/// `quic.*`: the version of the client's Initials, the server's when it differs, the versions
/// a Version Negotiation listed, whether the server sent a Retry.
#[derive(Serialize, Clone)]
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
#[derive(Serialize, Clone)]
pub struct Dtls {
    pub hello_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_version: Option<Cow<'static, str>>,
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

/// ECS `tls.*`: only what ECS defines. The rest is in [`TlsX`] (`tlsmon.tls.*`), and back
/// here in the `legacy` parts while legacy fields are on.
#[derive(Serialize, Default)]
pub struct Tls<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_protocol: Option<Cow<'a, str>>,
    pub established: bool,
    pub client: Client<'a>,
    pub server: Server<'a>,
    #[serde(flatten)]
    pub legacy: Option<TlsXTop>,
}

/// ECS `tls.client.*`.
#[derive(Serialize, Default)]
pub struct Client<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_ciphers: Vec<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<&'a str>,
    /// The client's leaf certificate (Zeek's `client_subject` / `client_issuer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509<'a>>,
    /// SHA-256 of the client's leaf (the first of Zeek's `client_cert_chain_fps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash<'a>>,
    #[serde(flatten)]
    pub legacy: Option<ClientX<'a>>,
}

/// ECS `tls.server.*`.
#[derive(Serialize, Default)]
pub struct Server<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<Hash<'a>>,
    #[serde(flatten)]
    pub legacy: Option<ServerX<'a>>,
}

/// `tlsmon.tls.*`: what tlsmon sees of a handshake that ECS has no field for.
#[derive(Serialize, Default, Clone)]
pub struct TlsX<'a> {
    #[serde(flatten)]
    pub top: TlsXTop,
    #[serde(skip_serializing_if = "ClientX::is_empty")]
    pub client: ClientX<'a>,
    #[serde(skip_serializing_if = "ServerX::is_empty")]
    pub server: ServerX<'a>,
}

impl TlsX<'_> {
    fn is_empty(&self) -> bool {
        self.top.cipher_id.is_none()
            && self.top.hello_retry_request.is_none()
            && self.top.starttls.is_none()
            && self.client.is_empty()
            && self.server.is_empty()
    }
}

/// `tlsmon.tls.{cipher_id, hello_retry_request, starttls}`.
#[derive(Serialize, Default, Clone)]
pub struct TlsXTop {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello_retry_request: Option<bool>,
    /// The clear protocol the session upgraded from (STARTTLS and the like), e.g. `smtp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<&'static str>,
}

/// `tlsmon.tls.client.*`.
#[derive(Serialize, Default, Clone)]
pub struct ClientX<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_version: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_versions: Vec<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_groups: Vec<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_share_groups: Vec<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_algorithms: Vec<Hex4>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "<[u8]>::is_empty")]
    pub compression_methods: &'a [u8],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renegotiation_info: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renegotiation_scsv: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ech: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sslv2_hello: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4_r: Option<&'a str>,
    /// Whether the client presented a certificate (mutual TLS): only when known, i.e. TLS <= 1.2
    /// with a CertificateRequest answered; absent under TLS 1.3 (encrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_presented: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<usize>,
    /// Whether the client's leaf is self-signed (`tls.client.x509.self_signed` before ECS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_signed: Option<bool>,
}

impl ClientX<'_> {
    fn is_empty(&self) -> bool {
        let ClientX {
            legacy_version,
            supported_versions,
            supported_groups,
            key_share_groups,
            signature_algorithms,
            alpn,
            compression_methods,
            renegotiation_info,
            renegotiation_scsv,
            ech,
            sslv2_hello,
            ja3_string,
            ja4,
            ja4_r,
            certificate_presented,
            chain_length,
            self_signed,
        } = self;
        [supported_versions, supported_groups, key_share_groups].iter().all(|v| v.is_empty())
            && signature_algorithms.is_empty()
            && alpn.is_empty()
            && compression_methods.is_empty()
            && legacy_version.is_none()
            && [ja3_string, ja4, ja4_r].iter().all(|v| v.is_none())
            && [renegotiation_info, renegotiation_scsv, ech, sslv2_hello, certificate_presented, self_signed]
                .iter()
                .all(|v| v.is_none())
            && chain_length.is_none()
    }
}

/// `tlsmon.tls.server.*`.
#[derive(Serialize, Default, Clone)]
pub struct ServerX<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3s_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_method: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renegotiation_info: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dh_prime_bits: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_complete: Option<bool>,
    /// Whether the chain leads to an anchor of `--ca-bundle` (absent without a bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_trusted: Option<bool>,
    /// The CertificateRequest, when the server sent one (TLS <= 1.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_request: Option<CertificateRequest<'a>>,
    /// Whether the server's leaf is self-signed (`tls.server.x509.self_signed` before ECS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_signed: Option<bool>,
}

impl ServerX<'_> {
    fn is_empty(&self) -> bool {
        let ServerX {
            ja3s_string,
            compression_method,
            renegotiation_info,
            dh_prime_bits,
            chain_length,
            chain_complete,
            chain_trusted,
            certificate_request,
            self_signed,
        } = self;
        ja3s_string.is_none()
            && compression_method.is_none()
            && dh_prime_bits.is_none()
            && chain_length.is_none()
            && certificate_request.is_none()
            && [renegotiation_info, chain_complete, chain_trusted, self_signed].iter().all(|v| v.is_none())
    }
}

/// `tlsmon.tls.server.certificate_request`: what the server asked the client for.
#[derive(Serialize, Clone)]
pub struct CertificateRequest<'a> {
    pub certificate_types: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_algorithms: Vec<Hex4>,
    /// The acceptable CAs' names (at most 16, each at most 256 characters).
    pub ca_names: &'a [String],
    /// How many names the server listed (may exceed `ca_names`).
    pub ca_names_count: usize,
}

#[derive(Serialize, Clone)]
pub struct Hash<'a> {
    pub sha256: &'a str,
}

/// ECS `x509.*`.
#[derive(Serialize, Clone)]
pub struct X509<'a> {
    pub not_before: String,
    pub not_after: String,
    pub subject: Name<'a>,
    pub issuer: Name<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub alternative_names: &'a [String],
    pub public_key_algorithm: &'static str,
    pub public_key_size: u32,
    pub signature_algorithm: &'a str,
    pub serial_number: &'a str,
    /// Pre-ECS only (legacy fields); now `tlsmon.tls.{client,server}.self_signed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_signed: Option<bool>,
}

#[derive(Serialize, Clone)]
pub struct Name<'a> {
    pub distinguished_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<&'a str>,
}

/// RFC 3339 UTC with microseconds.
pub fn rfc3339(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.format(&f).unwrap_or_default()
}

/// Certificate times may precede 1970 (see suricata's tls-pre-1970 capture): keep them exact.
/// 1970 to 9999 (four-digit years, as `time` writes them) are written here; the rest by `time`.
fn secs_rfc3339(s: i64) -> String {
    if let Ok(secs @ 0..=253_402_300_799) = u64::try_from(s) {
        let mut b = *b"0000-00-00T00:00:00Z";
        put_datetime(&mut b, secs);
        return std::str::from_utf8(&b).unwrap_or_default().to_owned();
    }
    let t = time::OffsetDateTime::from_unix_timestamp(s).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

fn x509(c: &CertInfo) -> X509<'_> {
    X509 {
        not_before: secs_rfc3339(c.not_before),
        not_after: secs_rfc3339(c.not_after),
        subject: Name { distinguished_name: &c.subject, common_name: c.subject_cn.as_deref() },
        issuer: Name { distinguished_name: &c.issuer, common_name: c.issuer_cn.as_deref() },
        alternative_names: &c.san_dns,
        public_key_algorithm: c.key_type,
        public_key_size: c.key_bits,
        signature_algorithm: &c.signature_algorithm,
        serial_number: &c.serial,
        self_signed: None,
    }
}

/// Build the event of one handshake (no legacy names, no local ends: see [`any_event`]).
pub fn event<'a>(hs: &'a Handshake, findings: &'a [Finding], observer: &'a Observer) -> Event<'a> {
    let mut tls = Tls { established: hs.established, ..Default::default() };
    let mut x = TlsX::default();
    if let Some(v) = hs.version() {
        if let Some((p, n)) = version_parts(v) {
            tls.version_protocol = Some(p);
            tls.version = Some(n);
        }
    }
    if let Some(sh) = &hs.server_hello {
        match sh.sslv2_kind {
            Some(k) => {
                tls.cipher = Some(sslv2_cipher_name(k).into());
                x.top.cipher_id = Some(k);
            }
            None => {
                tls.cipher = Some(cipher_label(sh.cipher));
                x.top.cipher_id = Some(sh.cipher as u32);
                x.server.compression_method = Some(sh.compression);
                x.server.renegotiation_info = Some(sh.renegotiation_info);
            }
        }
        tls.next_protocol = sh.alpn.as_deref().map(String::from_utf8_lossy);
    }
    tls.curve = hs.group().map(group_cow);
    x.top.hello_retry_request = hs.hello_retry.as_ref().map(|_| true);
    if let Some(ch) = &hs.client_hello {
        let c = &mut x.client;
        tls.client.server_name = ch.sni.as_deref();
        c.legacy_version = Some(version_label(ch.version));
        c.supported_versions = labels(&ch.supported_versions, version_label);
        let ciphers = &mut tls.client.supported_ciphers;
        *ciphers = labels(&ch.ciphers, cipher_label);
        ciphers.extend(ch.sslv2_kinds.iter().map(|k| Cow::Owned(sslv2_cipher_name(*k))));
        c.supported_groups = labels(&ch.groups, group_cow);
        c.key_share_groups = labels(&ch.key_share_groups, group_cow);
        c.signature_algorithms = ch.sig_algs.iter().map(|s| Hex4(*s)).collect();
        c.alpn = ch.alpn.iter().map(|a| String::from_utf8_lossy(a)).collect();
        c.compression_methods = &ch.compression;
        c.renegotiation_info = Some(ch.renegotiation_info);
        c.renegotiation_scsv = Some(ch.scsv);
        c.ech = ch.ech.then_some(true);
        c.sslv2_hello = ch.sslv2_format.then_some(true);
    }
    if let Some((s, h)) = &hs.ja3 {
        tls.client.ja3 = Some(h);
        x.client.ja3_string = Some(s);
    }
    if let Some((j, r)) = &hs.ja4 {
        x.client.ja4 = Some(j);
        x.client.ja4_r = Some(r);
    }
    if let Some((s, h)) = &hs.ja3s {
        tls.server.ja3s = Some(h);
        x.server.ja3s_string = Some(s);
    }
    x.server.dh_prime_bits = hs.kx.dh_prime_bits;
    if let Some(leaf) = hs.certs.first() {
        tls.server.x509 = Some(x509(leaf));
        tls.server.hash = Some(Hash { sha256: &leaf.sha256 });
        x.server.self_signed = Some(leaf.self_signed);
        x.server.chain_length = Some(hs.certs.len());
        x.server.chain_complete = Some(hs.chain_complete);
        x.server.chain_trusted = hs.chain_trust.as_ref().map(|t| *t == Trust::Trusted);
    }
    x.server.certificate_request = hs.cert_request.as_ref().map(|cr| CertificateRequest {
        certificate_types: cr.cert_types.iter().map(|t| cert_type_name(*t)).collect(),
        signature_algorithms: cr.sig_algs.iter().map(|s| Hex4(*s)).collect(),
        ca_names: &cr.ca_names,
        ca_names_count: cr.ca_names_total,
    });
    x.client.certificate_presented = hs.client_cert_presented();
    if let Some(leaf) = hs.client_certs.first() {
        tls.client.x509 = Some(x509(leaf));
        tls.client.hash = Some(Hash { sha256: &leaf.sha256 });
        x.client.self_signed = Some(leaf.self_signed);
        x.client.chain_length = Some(hs.client_certs.len());
    }
    let (transport, protocol) = match (&hs.quic, &hs.dtls) {
        (Some(_), _) => ("udp", "quic"),
        (_, Some(_)) => ("udp", "dtls"),
        _ => ("tcp", "tls"),
    };
    Event {
        timestamp: Stamp::new(hs.ts_ns),
        ecs: ECS,
        event: Meta::new("tlsmon.tls", findings),
        observer,
        source: (hs.probe.is_none() || hs.client.port != 0)
            .then(|| Host { ip: hs.client.addr.to_ip(), port: hs.client.port }),
        destination: Host { ip: hs.server.addr.to_ip(), port: hs.server.port },
        network: Network::new(transport, Some(protocol), hs.server.addr.to_ip()),
        tls,
        owned: Owned::default(),
        tlsmon: TlsmonTls {
            tls: x,
            quic: hs.quic.as_ref().map(quic),
            dtls: hs.dtls.as_ref().map(dtls),
            tds: None,
            probe: None,
            findings,
            local: None,
        },
        legacy: None,
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

    #[test]
    fn stamps_are_rfc3339() {
        // Leap days, century years (2100 is not a leap year, 2400 is), the ends of the range,
        // and a walk of uneven steps through the whole u64 range.
        let mut ns = vec![0, 1, 999, 1_000, 999_999_999, u64::MAX, u64::MAX - 999];
        for (y, m, d) in [(2000, 2, 29), (2100, 2, 28), (2100, 3, 1), (2400, 2, 29), (2024, 12, 31), (1970, 1, 1)] {
            let date = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
            let t = date.with_hms_nano(23, 59, 59, 999_999_999).unwrap().assume_utc();
            ns.push(t.unix_timestamp_nanos() as u64);
            ns.push(t.unix_timestamp_nanos() as u64 + 1);
        }
        let mut v = 0u64;
        while let Some(next) = v.checked_add(0x0000_3f5e_1234_5677) {
            ns.push(next);
            v = next;
        }
        for n in ns {
            assert_eq!(Stamp::new(n).as_str(), rfc3339(n), "{n}");
        }
        // Certificate times: before 1970, the last second of 9999 and past it (both `time`'s).
        let by_time = |s: i64| {
            let t = time::OffsetDateTime::from_unix_timestamp(s).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            t.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).unwrap()
        };
        let mut secs = vec![-1, 0, 1, 951_782_400, 4_107_542_399, 253_402_300_799, 253_402_300_800, i64::MAX, i64::MIN];
        let mut v = -62_000_000_000i64;
        while v < 260_000_000_000 {
            secs.push(v);
            v += 12_345_678_901;
        }
        for s in secs {
            assert_eq!(secs_rfc3339(s), by_time(s), "{s}");
        }
    }
}
