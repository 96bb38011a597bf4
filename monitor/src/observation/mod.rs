//! Observation: what the pipeline produces — a judged TLS handshake or plaintext flow with its
//! findings, the endpoints, and the pipeline's counters. Policy and sinks import this module,
//! never the pipeline. Plain data: must never hold payload bytes, only parsed facts.
pub mod finding;
mod handshake;

pub use crate::flow::Endpoint;
pub use finding::{Acceptance, Finding, Severity};
pub use handshake::{client_dir, Handshake};

use crate::flow::reassembly::HeadStats;
use crate::flow::TableStats;
use crate::inspect::plaintext::PlainFacts;

/// One plaintext flow the inspectors recognised: endpoints and protocol facts, never payload.
#[derive(Clone, Debug)]
pub struct PlainFlow {
    pub ts_ns: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    pub facts: PlainFacts,
}

/// What one output is about. (Outputs are few and moved once: a box would buy nothing.)
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Observed {
    /// A TLS handshake; `upgrade` holds what the clear-text prefix showed when the session
    /// began in clear and upgraded (STARTTLS, SSLRequest…).
    Tls {
        handshake: Handshake,
        upgrade: Option<PlainFacts>,
    },
    Plaintext(PlainFlow),
}

/// One judged flow.
#[derive(Clone, Debug)]
pub struct Output {
    pub observed: Observed,
    pub findings: Vec<Finding>,
}

impl Output {
    /// The handshake, when this output is about one.
    pub fn handshake(&self) -> Option<&Handshake> {
        match &self.observed {
            Observed::Tls { handshake, .. } => Some(handshake),
            Observed::Plaintext(_) => None,
        }
    }

    /// The plaintext flow, when this output is about one.
    pub fn plaintext(&self) -> Option<&PlainFlow> {
        match &self.observed {
            Observed::Plaintext(p) => Some(p),
            Observed::Tls { .. } => None,
        }
    }

    /// (client, server, time of the flow's first packet).
    pub fn endpoints(&self) -> (Endpoint, Endpoint, u64) {
        match &self.observed {
            Observed::Tls { handshake: h, .. } => (h.client, h.server, h.ts_ns),
            Observed::Plaintext(p) => (p.client, p.server, p.ts_ns),
        }
    }
}

/// What the pipeline counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipelineStats {
    pub packets: u64,
    pub bytes: u64,
    pub skipped_link: u64,
    pub skipped_not_ip: u64,
    pub skipped_not_tcp_udp: u64,
    pub skipped_fragment: u64,
    pub skipped_malformed: u64,
    pub udp_packets: u64,
    pub truncated_packets: u64,
    pub handshakes: u64,
    /// Flows judged as plaintext candidates (first payload on a candidate port or signature).
    pub plain_candidates: u64,
    /// Plaintext flows reported (a protocol recognised that carries PHI, credentials or a
    /// STARTTLS finding, or any recognised protocol but bare HTTP).
    pub plaintext_flows: u64,
    /// Plaintext bytes a direction wanted but did not keep: all flows together were at
    /// `max_plain_bytes`.
    pub plain_bytes_dropped: u64,
    pub head: HeadStats,
    pub flows: TableStats,
}
