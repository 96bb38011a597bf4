//! Sink, ECS envelope: the fields every JSON event carries so that it loads into Elastic,
//! OpenSearch or Splunk with stock ECS mappings — `@timestamp`, `ecs.version`, `event.*`,
//! `observer.*`, `network.*` — and the style that says whether an event also carries the
//! pre-ECS field names (`type`, `timestamp`, `findings`, `tls.client.ja4` …), kept for one
//! release (see README "Event schema"). Everything tlsmon adds beyond ECS sits under
//! `tlsmon.*`. Must never name a field that ECS (the version in [`ECS_VERSION`]) does not
//! define with the type given here, outside `tlsmon.*`; `tests/ecs_events.rs` checks every
//! event of the corpus against the ECS field reference.
use std::net::IpAddr;

use serde::Serialize;

use crate::policy::{Finding, Severity};

/// The ECS release the events follow (the field reference the tests check against).
pub const ECS_VERSION: &str = "9.4.0";

/// How events are written: with or without the pre-ECS names, and who observed them.
#[derive(Clone, Debug, Serialize)]
pub struct Style {
    /// Also write the pre-ECS field names (this release's default; `--no-legacy-fields`).
    #[serde(skip)]
    pub legacy: bool,
    pub observer: Observer,
}

impl Default for Style {
    fn default() -> Self {
        Style { legacy: true, observer: Observer::default() }
    }
}

/// ECS `observer.*`: this program, and in live capture the host and (when it is the only one)
/// the interface it captures on. Replay names no host: the capture's observer is unknown.
#[derive(Clone, Debug, Serialize)]
pub struct Observer {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub vendor: &'static str,
    pub product: &'static str,
    pub version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            kind: "sensor",
            vendor: "tlsmon",
            product: "tlsmon",
            version: env!("CARGO_PKG_VERSION"),
            hostname: None,
            ingress: None,
        }
    }
}

impl Observer {
    /// Live capture: this host's name, and the interface when there is only one.
    pub fn live(ifaces: &[String]) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        let ingress = match ifaces {
            [one] => Some(Ingress { interface: Interface { name: one.clone() } }),
            _ => None,
        };
        Observer { hostname, ingress, ..Observer::default() }
    }
}

/// ECS `observer.ingress.interface.name`.
#[derive(Clone, Debug, Serialize)]
pub struct Ingress {
    pub interface: Interface,
}

#[derive(Clone, Debug, Serialize)]
pub struct Interface {
    pub name: String,
}

/// ECS `ecs.version`.
#[derive(Serialize)]
pub struct Ecs {
    pub version: &'static str,
}

pub const ECS: Ecs = Ecs { version: ECS_VERSION };

/// ECS `event.*`: every tlsmon event is a network protocol observation of one connection; an
/// event with a finding not accepted by an exception is an `alert`.
#[derive(Serialize)]
pub struct Meta {
    pub kind: &'static str,
    pub category: [&'static str; 1],
    #[serde(rename = "type")]
    pub types: [&'static str; 2],
    /// `tlsmon.tls`, `tlsmon.probe`, `tlsmon.plaintext`, `tlsmon.ssh`.
    pub dataset: &'static str,
    pub module: &'static str,
    /// The worst finding's severity (1 info … 5 critical), absent without findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<u8>,
}

impl Meta {
    /// `dataset` is one of the four event kinds' `tlsmon.*` names.
    pub fn new(dataset: &'static str, findings: &[Finding]) -> Self {
        let open = findings.iter().any(|f| !f.is_accepted());
        Meta {
            kind: if open { "alert" } else { "event" },
            category: ["network"],
            types: ["connection", "protocol"],
            dataset,
            module: "tlsmon",
            severity: findings.iter().map(|f| f.severity).max().map(severity_number),
        }
    }
}

/// Severity as ECS `event.severity` (a number, higher is worse).
pub fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// ECS `network.*`: transport, the application protocol when known, the IP version.
#[derive(Serialize)]
pub struct Network {
    pub transport: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
    #[serde(rename = "type")]
    pub ip: &'static str,
}

impl Network {
    pub fn new(transport: &'static str, protocol: Option<&'static str>, addr: IpAddr) -> Self {
        Network { transport, protocol, ip: if addr.is_ipv4() { "ipv4" } else { "ipv6" } }
    }
}

/// ECS `source.*` / `destination.*`.
#[derive(Serialize)]
pub struct Host {
    /// Written as its text (serde's `IpAddr`, the same as `to_string`).
    pub ip: IpAddr,
    pub port: u16,
}
