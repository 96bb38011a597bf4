//! Observation, TLS: one TLS handshake assembled from both directions of a flow, with roles decided
//! by what each side sent (ClientHello / ServerHello) before falling back to the SYN or ports.
//! Must never hold payload bytes: only parsed facts.
use crate::flow::Endpoint;
use crate::inspect::dtls::DtlsFacts;
use crate::inspect::fingerprint::{self, Ja4Transport};
use crate::inspect::quic::QuicFacts;
use crate::inspect::tls::cert::CertInfo;
use crate::inspect::tls::certreq::CertRequest;
use crate::inspect::tls::hello::{ClientHello, ServerHello};
use crate::inspect::tls::trust::Trust;
use crate::inspect::tls::{Alert, Anomaly, DirFacts, KxParams};

/// Everything tlsmon learned about one handshake.
#[derive(Clone, Debug, Default)]
pub struct Handshake {
    pub ts_ns: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    pub client_hello: Option<ClientHello>,
    pub server_hello: Option<ServerHello>,
    pub hello_retry: Option<ServerHello>,
    pub certs: Vec<CertInfo>,
    pub chain_complete: bool,
    pub chain_trust: Option<Trust>,
    pub kx: KxParams,
    /// The server's CertificateRequest (TLS <= 1.2 only: under TLS 1.3 it is encrypted).
    pub cert_request: Option<CertRequest>,
    /// The client's certificates (TLS <= 1.2, leaf first), when it presented any.
    pub client_certs: Vec<CertInfo>,
    /// The client answered with an empty Certificate message: it declined to present one.
    pub client_cert_empty: bool,
    /// The server's first flight ended in clear (ServerHelloDone, TLS <= 1.2): whatever it
    /// would ask for (a CertificateRequest) was seen.
    pub server_hello_done: bool,
    pub client_alerts: Vec<Alert>,
    pub server_alerts: Vec<Alert>,
    pub anomalies: Vec<Anomaly>,
    pub established: bool,
    pub ja3: Option<(String, String)>,
    pub ja3s: Option<(String, String)>,
    pub ja4: Option<(String, String)>,
    /// Set only on a handshake the agent made itself (the opt-in prober): what it was for
    /// and how it went. Its `ts_ns` is then the wall clock, not packet time.
    pub probe: Option<Box<ProbeFacts>>,
    /// Set on a handshake carried by QUIC Initials (UDP): the QUIC version and what the
    /// server answered at the QUIC layer.
    pub quic: Option<QuicFacts>,
    /// Set on a handshake carried by DTLS records (UDP): the cookie exchange and the
    /// record version.
    pub dtls: Option<DtlsFacts>,
}

/// What one probe did: the facts a `probe` event carries beyond the handshake's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeFacts {
    /// `ok`, `unreachable`, `timeout` or `failed`.
    pub result: &'static str,
    /// The SNI sent (the name clients used), if any.
    pub server_name: Option<String>,
    /// Why the handshake did not complete, in words.
    pub error: Option<String>,
    /// Why the server was probed: `no-certificate` (its handshakes showed none, e.g. TLS 1.3)
    /// or `probe-all`.
    pub trigger: &'static str,
    /// The version sweep (`--probe-versions`), one row per offer.
    pub versions: Vec<VersionTry>,
}

/// One offer of the version sweep and the server's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionTry {
    /// What was offered, e.g. `TLS 1.0` or `TLS 1.2 weak suites`.
    pub offered: &'static str,
    /// The version and suite the server chose, when it accepted.
    pub accepted: Option<(u16, u16)>,
    /// The alert it refused with, or why the try failed.
    pub refused: Option<String>,
}

/// Which direction is the client's: the one that sent a ClientHello, else the one that did not
/// send a ServerHello, else the SYN sender, else the side with the higher port.
pub fn client_dir(dirs: [&DirFacts; 2], syn_from: Option<usize>, ports: [u16; 2]) -> usize {
    for d in 0..2 {
        if dirs[d].client_hello.is_some() && dirs[1 - d].client_hello.is_none() {
            return d;
        }
    }
    for d in 0..2 {
        if dirs[d].server_hello.is_some() && dirs[1 - d].server_hello.is_none() {
            return 1 - d;
        }
    }
    syn_from.unwrap_or(if ports[0] >= ports[1] { 0 } else { 1 })
}

impl Handshake {
    /// Assemble from the two directions; `None` when neither side said anything TLS.
    pub fn assemble(
        endpoints: [Endpoint; 2],
        dirs: [&DirFacts; 2],
        syn_from: Option<usize>,
        first_ns: u64,
        transport: Ja4Transport,
    ) -> Option<Handshake> {
        let [mut a, mut b] = dirs.map(DirFacts::clone);
        Handshake::take(endpoints, [&mut a, &mut b], syn_from, first_ns, transport)
    }

    /// [`Handshake::assemble`] from facts that are no longer needed (a flow being judged): the
    /// hellos, certificates and alerts move into the handshake instead of being copied. When
    /// it returns `None` the facts are left as they were.
    pub fn take(
        endpoints: [Endpoint; 2],
        dirs: [&mut DirFacts; 2],
        syn_from: Option<usize>,
        first_ns: u64,
        transport: Ja4Transport,
    ) -> Option<Handshake> {
        let c = client_dir([&*dirs[0], &*dirs[1]], syn_from, [endpoints[0].port, endpoints[1].port]);
        let [d0, d1] = dirs;
        let (cf, sf) = if c == 0 { (d0, d1) } else { (d1, d0) };
        if cf.client_hello.is_none() && sf.server_hello.is_none() && cf.alerts.is_empty() && sf.alerts.is_empty() {
            return None;
        }
        let fatal = cf.alerts.iter().chain(&sf.alerts).any(|a| a.level == 2);
        let established = sf.server_hello.is_some() && (cf.ccs || cf.app_data) && (sf.ccs || sf.app_data) && !fatal;
        let ts_ns = [cf.first_ts_ns, sf.first_ts_ns].into_iter().filter(|t| *t > 0).min().unwrap_or(first_ns);
        let mut anomalies = std::mem::take(&mut cf.anomalies);
        anomalies.append(&mut sf.anomalies);
        Some(Handshake {
            ts_ns,
            client: endpoints[c],
            server: endpoints[1 - c],
            ja3: cf.client_hello.as_ref().map(fingerprint::ja3),
            ja4: cf.client_hello.as_ref().map(|ch| fingerprint::ja4(ch, transport)),
            ja3s: sf.server_hello.as_ref().filter(|sh| sh.sslv2_kind.is_none()).map(fingerprint::ja3s),
            client_hello: cf.client_hello.take(),
            server_hello: sf.server_hello.take(),
            hello_retry: sf.hello_retry.take(),
            certs: std::mem::take(&mut sf.certs),
            chain_complete: sf.chain_complete,
            chain_trust: sf.chain_trust.take(),
            kx: sf.kx,
            cert_request: sf.cert_request.take(),
            client_certs: std::mem::take(&mut cf.certs),
            client_cert_empty: cf.cert_empty,
            server_hello_done: sf.server_hello_done,
            client_alerts: std::mem::take(&mut cf.alerts),
            server_alerts: std::mem::take(&mut sf.alerts),
            anomalies,
            established,
            probe: None,
            quic: None,
            dtls: None,
        })
    }

    /// The negotiated version (ServerHello's supported_versions, else its version).
    pub fn version(&self) -> Option<u16> {
        self.server_hello.as_ref().map(ServerHello::negotiated_version)
    }

    /// Did the client present a certificate? Known only on TLS <= 1.2 when the server asked
    /// for one (or the client sent one anyway); `None` otherwise, and always under TLS 1.3,
    /// where the client's Certificate is encrypted.
    pub fn client_cert_presented(&self) -> Option<bool> {
        if !self.client_certs.is_empty() {
            Some(true)
        } else if self.client_cert_empty {
            Some(false)
        } else {
            None
        }
    }

    /// The negotiated key-exchange group: ServerHello key_share, else ServerKeyExchange curve.
    pub fn group(&self) -> Option<u16> {
        self.server_hello.as_ref().and_then(|sh| sh.key_share_group).or(self.kx.named_group)
    }
}
