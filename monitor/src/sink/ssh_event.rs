//! Sink, JSON lines, SSH: the `ssh` event of one SSH session — both sides' identification and
//! offered algorithms, what they negotiate, HASSH/HASSHServer. Field names are a public contract
//! like the other events'; a field not seen is absent. Must never carry anything but the
//! inspector's validated facts (banner fields and algorithm names), never payload.
use serde::Serialize;

use super::ecs::{Ecs, Meta, Network, Observer, ECS};
use super::json::{rfc3339, Host};
use super::local_event::{LocalField, Owned};
use crate::inspect::ssh::{KexInit, Negotiated, SshSide};
use crate::observation::SshFlow;
use crate::policy::Finding;

/// One `ssh` event.
#[derive(Serialize)]
pub struct SshEvent<'a> {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    pub ecs: Ecs,
    pub event: Meta,
    pub observer: &'a Observer,
    pub source: Host,
    pub destination: Host,
    pub network: Network,
    /// Live: the local process, container, unit and pod ([`super::local_event`]).
    #[serde(flatten)]
    pub owned: Owned<'a>,
    pub tlsmon: TlsmonSsh<'a>,
    #[serde(flatten)]
    pub legacy: Option<LegacySsh<'a>>,
}

/// `tlsmon.*` of an `ssh` event.
#[derive(Serialize)]
pub struct TlsmonSsh<'a> {
    pub ssh: Ssh<'a>,
    pub findings: &'a [Finding],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalField<'a>>,
}

/// The pre-ECS top-level names of an `ssh` event (one release).
#[derive(Serialize)]
pub struct LegacySsh<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    pub ssh: Ssh<'a>,
    pub findings: &'a [Finding],
}

impl SshEvent<'_> {
    /// Add the pre-ECS names.
    pub fn with_legacy(&mut self) {
        self.legacy = Some(LegacySsh {
            kind: "ssh",
            timestamp: self.timestamp.clone(),
            ssh: self.tlsmon.ssh.clone(),
            findings: self.tlsmon.findings,
        });
    }
}

/// `tlsmon.ssh.*`.
#[derive(Serialize, Clone)]
pub struct Ssh<'a> {
    pub client: Side<'a>,
    pub server: Side<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<Agreed<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hassh: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hassh_server: Option<&'a str>,
    /// The negotiated kex is a post-quantum hybrid.
    pub pq: bool,
    /// `pq-hybrid`, `ecdh`, `dh`, `weak`, `other`, `none` (as the metrics label it).
    pub kex_class: &'static str,
    #[serde(skip_serializing_if = "<[&str]>::is_empty")]
    pub anomalies: &'a [&'static str],
}

/// `ssh.client.*` / `ssh.server.*`: the identification string and the KEXINIT's lists.
#[derive(Serialize, Default, Clone)]
pub struct Side<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_before_banner: Option<u32>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub kexinit: Option<Lists<'a>>,
}

/// The ten KEXINIT lists but the (unused) languages, and the flag.
#[derive(Serialize, Clone)]
pub struct Lists<'a> {
    pub kex: &'a [String],
    pub host_key: &'a [String],
    pub cipher_c2s: &'a [String],
    pub cipher_s2c: &'a [String],
    pub mac_c2s: &'a [String],
    pub mac_s2c: &'a [String],
    pub compression_c2s: &'a [String],
    pub compression_s2c: &'a [String],
    pub first_kex_follows: bool,
}

/// `ssh.negotiated.*`: absent fields had no common algorithm (listed in `failed`), or are MACs
/// of an AEAD cipher.
#[derive(Serialize, Clone)]
pub struct Agreed<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kex: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_c2s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_s2c: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_c2s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_s2c: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_c2s: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_s2c: Option<&'a str>,
    pub strict_kex: bool,
    #[serde(skip_serializing_if = "<[&str]>::is_empty")]
    pub failed: &'a [&'static str],
}

/// Build the event of one SSH session.
pub fn ssh_event<'a>(s: &'a SshFlow, findings: &'a [Finding], observer: &'a Observer) -> SshEvent<'a> {
    let f = &s.facts;
    SshEvent {
        timestamp: rfc3339(s.ts_ns),
        ecs: ECS,
        event: Meta::new("tlsmon.ssh", findings),
        observer,
        source: Host { ip: s.client.addr.to_ip(), port: s.client.port },
        destination: Host { ip: s.server.addr.to_ip(), port: s.server.port },
        network: Network::new("tcp", Some("ssh"), s.server.addr.to_ip()),
        owned: Owned::default(),
        tlsmon: TlsmonSsh {
            ssh: Ssh {
                client: side(&f.client),
                server: side(&f.server),
                negotiated: f.negotiated.as_ref().map(agreed),
                hassh: f.hassh(),
                hassh_server: f.hassh_server(),
                pq: f.pq(),
                kex_class: f.kex_class(),
                anomalies: &f.anomalies,
            },
            findings,
            local: None,
        },
        legacy: None,
    }
}

fn side(s: &SshSide) -> Side<'_> {
    let b = s.banner.as_ref();
    Side {
        proto: b.map(|b| b.proto.as_str()),
        software: b.map(|b| b.software.as_str()),
        comments: b.and_then(|b| b.comments.as_deref()),
        lines_before_banner: b.map(|b| b.lines_before).filter(|n| *n > 0),
        kexinit: s.kexinit.as_ref().map(lists),
    }
}

fn lists(k: &KexInit) -> Lists<'_> {
    Lists {
        kex: &k.kex,
        host_key: &k.host_key,
        cipher_c2s: &k.cipher_c2s,
        cipher_s2c: &k.cipher_s2c,
        mac_c2s: &k.mac_c2s,
        mac_s2c: &k.mac_s2c,
        compression_c2s: &k.compression_c2s,
        compression_s2c: &k.compression_s2c,
        first_kex_follows: k.first_kex_follows,
    }
}

fn agreed(n: &Negotiated) -> Agreed<'_> {
    Agreed {
        kex: n.kex.as_deref(),
        host_key: n.host_key.as_deref(),
        cipher_c2s: n.cipher_c2s.as_deref(),
        cipher_s2c: n.cipher_s2c.as_deref(),
        mac_c2s: n.mac_c2s.as_deref(),
        mac_s2c: n.mac_s2c.as_deref(),
        compression_c2s: n.compression_c2s.as_deref(),
        compression_s2c: n.compression_s2c.as_deref(),
        strict_kex: n.strict_kex,
        failed: &n.failed,
    }
}
