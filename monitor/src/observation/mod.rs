//! Observation: what the pipeline produces — a judged TLS handshake, plaintext flow or SSH session with its
//! findings, the endpoints, and the pipeline's counters. Policy and sinks import this module,
//! never the pipeline. Plain data: must never hold payload bytes, only parsed facts.
pub mod finding;
mod handshake;
mod local;
mod stats;

pub use crate::flow::Endpoint;
pub use finding::{Acceptance, Finding, Severity};
pub use handshake::{client_dir, Handshake, ProbeFacts, VersionTry};
pub use local::{label as process_label, Local, Process};
pub use stats::{losses, DecodeStats, Loss, MemoryStats, PipelineStats};

use crate::inspect::plaintext::PlainFacts;
use crate::inspect::ssh::SshFacts;

/// One plaintext flow the inspectors recognised: endpoints and protocol facts, never payload.
#[derive(Clone, Debug)]
pub struct PlainFlow {
    pub ts_ns: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    pub facts: PlainFacts,
}

/// One SSH session's clear start (banners, KEXINITs, what they negotiate): facts, never payload.
#[derive(Clone, Debug)]
pub struct SshFlow {
    pub ts_ns: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    pub facts: SshFacts,
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
    /// An SSH session (SFTP and SCP ride on it).
    Ssh(SshFlow),
}

/// One judged flow.
#[derive(Clone, Debug)]
pub struct Output {
    pub observed: Observed,
    pub findings: Vec<Finding>,
    /// The flow's sockets and processes on this host (live capture only).
    pub local: Local,
}

impl Output {
    /// The handshake, when this output is about one.
    pub fn handshake(&self) -> Option<&Handshake> {
        match &self.observed {
            Observed::Tls { handshake, .. } => Some(handshake),
            Observed::Plaintext(_) | Observed::Ssh(_) => None,
        }
    }

    /// The plaintext flow, when this output is about one.
    pub fn plaintext(&self) -> Option<&PlainFlow> {
        match &self.observed {
            Observed::Plaintext(p) => Some(p),
            Observed::Tls { .. } | Observed::Ssh(_) => None,
        }
    }

    /// The SSH session, when this output is about one.
    pub fn ssh(&self) -> Option<&SshFlow> {
        match &self.observed {
            Observed::Ssh(s) => Some(s),
            Observed::Tls { .. } | Observed::Plaintext(_) => None,
        }
    }

    /// (client, server, time of the flow's first packet).
    pub fn endpoints(&self) -> (Endpoint, Endpoint, u64) {
        match &self.observed {
            Observed::Tls { handshake: h, .. } => (h.client, h.server, h.ts_ns),
            Observed::Plaintext(p) => (p.client, p.server, p.ts_ns),
            Observed::Ssh(s) => (s.client, s.server, s.ts_ns),
        }
    }
}
