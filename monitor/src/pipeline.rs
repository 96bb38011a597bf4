//! The single entry point live capture and replay share: packet → flow table → head reassembly
//! → TLS and plaintext inspection → policy → outputs (handshakes, plaintext flows).
//! Synchronous, no I/O, time from packets only; must never keep more than the flow-head budget
//! per direction, more plaintext bytes than configured, nor more flows than configured.
use monitor_common::{flow_kind, KernelConfig, HEAD_BUDGET_CLIENT, HEAD_BUDGET_SERVER, STARTTLS_PORTS};

use crate::decode::{self, Packet, Skip, Transport};
use crate::flow::reassembly::{Head, HeadStats};
use crate::flow::{Endpoint, Entry, FlowKey, FlowTable, TableStats};
use crate::handshake::{client_dir, Handshake};
use crate::inspect::fingerprint::Ja4Transport;
use crate::inspect::plaintext::{self, PlainFacts};
use crate::inspect::tls::trust::TrustStore;
use crate::inspect::tls::{State, TlsStream};
use crate::policy::{Finding, Policy};
use std::sync::Arc;

/// Bounds and policy of a pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub max_flows: usize,
    pub idle_timeout_s: u64,
    pub client_budget: u32,
    pub server_budget: u32,
    pub policy: Policy,
    /// CA bundle for `tls.cert.untrusted` (none: chains are not judged for trust).
    pub trust: Option<Arc<TrustStore>>,
    /// Which non-TLS flows are plaintext candidates (ports, first-payload signatures): the
    /// same settings the kernel program is loaded with, so replay keeps what live capture sees.
    pub candidates: KernelConfig,
    /// Plaintext bytes kept per direction of a candidate flow for the plaintext inspectors.
    pub plain_keep: usize,
    /// Plaintext bytes kept across all open flows; beyond it bytes are dropped and counted.
    pub max_plain_bytes: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_flows: 65_536,
            idle_timeout_s: 120,
            client_budget: HEAD_BUDGET_CLIENT,
            server_budget: HEAD_BUDGET_SERVER,
            policy: Policy::default(),
            trust: None,
            candidates: KernelConfig::default_config(),
            plain_keep: PLAIN_KEEP,
            max_plain_bytes: MAX_PLAIN_BYTES,
        }
    }
}

/// Default plaintext bytes kept per direction of a candidate flow.
pub const PLAIN_KEEP: usize = 8 << 10;
/// A clear candidate flow (not TLS, not waiting for an upgrade) is judged at its first packet
/// this long after its first: what it carries is known by then.
pub const PLAIN_SETTLE_NS: u64 = 10_000_000_000;
/// Default plaintext bytes kept across all open flows (64 MiB).
pub const MAX_PLAIN_BYTES: usize = 64 << 20;

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

struct Dir {
    head: Option<Head>,
    tls: TlsStream,
    closed: bool,
    /// Clear bytes kept for the plaintext inspectors (candidate flows only, bounded).
    plain: Vec<u8>,
    /// No more clear bytes wanted: TLS began, or this direction's share is full.
    plain_full: bool,
}

impl Dir {
    fn new() -> Self {
        Dir { head: None, tls: TlsStream::default(), closed: false, plain: Vec::new(), plain_full: false }
    }

    /// Nothing more to learn: the TLS parse is over (and, on a plaintext candidate, the clear
    /// bytes wanted are in), or the direction closed or used up its head budget.
    fn finished(&self, candidate: bool) -> bool {
        let tls_over = self.tls.finished() && (!candidate || self.plain_full || self.tls.state != State::NotTls);
        tls_over || self.closed || self.head.as_ref().is_some_and(Head::exhausted)
    }
}

struct Active {
    dirs: [Dir; 2],
    /// Direction whose sender sent the SYN (the client), when seen.
    syn_from: Option<usize>,
    /// The kernel's decision on the first payload ([`flow_kind`]), once there was one.
    class: Option<u8>,
}

impl Active {
    fn candidate(&self) -> bool {
        self.class == Some(flow_kind::PLAINTEXT)
    }
}

enum FlowState {
    Active(Box<Active>),
    /// Judged (or not TLS): later packets are only counted.
    Done,
}

impl FlowState {
    /// A new flow; its TLS streams get the CA bundle and, on upgrade ports, follow STARTTLS.
    fn new(cfg: &PipelineConfig, key: &FlowKey) -> Self {
        let upgradable = STARTTLS_PORTS.contains(&key.lo.port) || STARTTLS_PORTS.contains(&key.hi.port);
        let dir = || {
            let mut d = Dir::new();
            d.tls.upgradable = upgradable;
            d.tls.trust.clone_from(&cfg.trust);
            d
        };
        FlowState::Active(Box::new(Active { dirs: [dir(), dir()], syn_from: None, class: None }))
    }
}

/// The pipeline.
pub struct Pipeline {
    cfg: PipelineConfig,
    table: FlowTable<FlowState>,
    out: Vec<Output>,
    /// Plaintext bytes kept across open flows (bounded by `max_plain_bytes`).
    plain_bytes: usize,
    pub stats: PipelineStats,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Self {
        let table = FlowTable::new(cfg.max_flows, cfg.idle_timeout_s * 1_000_000_000);
        Pipeline { cfg, table, out: Vec::new(), plain_bytes: 0, stats: PipelineStats::default() }
    }

    /// Decode and process one captured frame.
    pub fn frame(&mut self, ts_ns: u64, linktype: u32, data: &[u8]) {
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        match decode::decode(linktype, data) {
            Ok(p) => self.packet(ts_ns, &p),
            Err(Skip::UnknownLinkType) => self.stats.skipped_link += 1,
            Err(Skip::NotIp) => self.stats.skipped_not_ip += 1,
            Err(Skip::NotTcpUdp) => self.stats.skipped_not_tcp_udp += 1,
            Err(Skip::Fragment) => self.stats.skipped_fragment += 1,
            Err(Skip::Malformed) => self.stats.skipped_malformed += 1,
        }
    }

    /// Process one decoded packet.
    pub fn packet(&mut self, ts_ns: u64, p: &Packet<'_>) {
        if p.transport == Transport::Udp {
            self.stats.udp_packets += 1;
            return;
        }
        if p.truncated {
            self.stats.truncated_packets += 1;
        }
        let src = Endpoint { addr: p.src, port: p.src_port };
        let dst = Endpoint { addr: p.dst, port: p.dst_port };
        let (key, dir) = FlowKey::new(src, dst, false);
        let mut gone = Vec::new();
        self.table.expire(ts_ns, &mut |k, e| gone.push((k, e)));
        if self.table.get_mut(&key).is_none() {
            // Only a SYN or payload opens a flow; stray ACKs, FINs and RSTs do not.
            if !p.syn && p.payload.is_empty() {
                self.finalize_all(gone);
                return;
            }
            let state = FlowState::new(&self.cfg, &key);
            self.table.insert(key, ts_ns, state, &mut |k, e| gone.push((k, e)));
        }
        self.finalize_all(gone);
        let Some(entry) = self.table.get_mut(&key) else { return };
        entry.last_ns = ts_ns;
        if p.syn && !p.ack && matches!(entry.state, FlowState::Done) {
            // The 4-tuple is reused by a new connection.
            entry.first_ns = ts_ns;
            entry.state = FlowState::new(&self.cfg, &key);
        }
        let FlowState::Active(a) = &mut entry.state else {
            if p.rst || p.fin {
                self.table.remove(&key);
            }
            return;
        };
        let (client_budget, server_budget) = (self.cfg.client_budget, self.cfg.server_budget);
        if p.syn {
            // SYN: the sender is the client; SYN-ACK: the sender is the server.
            let is_client = !p.ack;
            if is_client {
                a.syn_from.get_or_insert(dir);
            }
            let limit = if is_client { client_budget } else { server_budget };
            a.dirs[dir].head.get_or_insert_with(|| Head::new(limit)).syn(p.seq);
        }
        if !p.payload.is_empty() {
            let d = &mut a.dirs[dir];
            let head = d.head.get_or_insert_with(|| {
                let client = match a.syn_from {
                    Some(c) => c == dir,
                    None => monitor_common::looks_like_client_hello(p.payload),
                };
                Head::new(if client { client_budget } else { server_budget })
            });
            let (tls, plain, plain_full) = (&mut d.tls, &mut d.plain, &mut d.plain_full);
            let (class, candidates) = (&mut a.class, &self.cfg.candidates);
            let ports = [key.lo.port, key.hi.port];
            let (keep, room) = (self.cfg.plain_keep, self.cfg.max_plain_bytes.saturating_sub(self.plain_bytes));
            let mut kept = 0usize;
            let mut dropped = 0u64;
            head.insert(p.seq, p.payload, &mut |bytes| {
                let class = *class.get_or_insert_with(|| candidates.classify(bytes, ports));
                tls.feed(bytes, ts_ns);
                // Clear bytes (not TLS, or before an upgrade) of a candidate flow are kept for
                // the plaintext inspectors; once TLS begins nothing more is clear.
                if class != flow_kind::PLAINTEXT || *plain_full {
                    return;
                }
                if !matches!(tls.state, State::NotTls | State::Start) {
                    *plain_full = true;
                    return;
                }
                // The per-direction keep is the designed head; what the all-flows cap refuses
                // within it is a loss, and counted.
                let wanted = bytes.len().min(keep - plain.len());
                let take = wanted.min(room - kept);
                plain.extend_from_slice(&bytes[..take]);
                kept += take;
                dropped += (wanted - take) as u64;
                *plain_full = plain.len() >= keep;
            });
            self.plain_bytes += kept;
            self.stats.plain_bytes_dropped += dropped;
            if head.exhausted() {
                tls.finish();
            }
        }
        if p.fin || p.rst {
            let dirs: &mut [Dir; 2] = &mut a.dirs;
            for (i, d) in dirs.iter_mut().enumerate() {
                if p.rst || i == dir {
                    d.closed = true;
                    d.tls.finish();
                }
            }
        }
        let candidate = a.candidate();
        let both_done = a.dirs.iter().all(|d| d.finished(candidate));
        let not_tls = !candidate && a.dirs.iter().any(|d| d.tls.state == State::NotTls);
        // A clear session that stays open (a persistent MLLP link) is judged once it has run
        // for a while, not only when it closes, fills its heads or goes idle.
        let settled = candidate
            && a.dirs.iter().any(|d| d.tls.state == State::NotTls)
            && a.dirs.iter().all(|d| matches!(d.tls.state, State::NotTls | State::Start))
            && ts_ns.saturating_sub(entry.first_ns) >= PLAIN_SETTLE_NS;
        if both_done || not_tls || settled || p.rst {
            let first_ns = entry.first_ns;
            let state = std::mem::replace(&mut entry.state, FlowState::Done);
            if p.rst || a_closed(&state) {
                self.table.remove(&key);
            }
            self.judge(key, first_ns, state);
        }
    }

    /// Time passed without packets (live capture: a timer calls this, since packet time stops
    /// when traffic stops): judge flows idle longer than the idle timeout at `now_ns`, on the
    /// same clock as packet timestamps. Outputs are collected like those of [`Pipeline::packet`].
    pub fn advance(&mut self, now_ns: u64) {
        let mut gone = Vec::new();
        self.table.expire(now_ns, &mut |k, e| gone.push((k, e)));
        self.finalize_all(gone);
    }

    fn finalize_all(&mut self, gone: Vec<(FlowKey, Entry<FlowState>)>) {
        for (k, e) in gone {
            self.judge(k, e.first_ns, e.state);
        }
    }

    /// Turn a flow's facts into an output (a TLS handshake, else a recognised plaintext flow)
    /// and fold its counters in.
    fn judge(&mut self, key: FlowKey, first_ns: u64, state: FlowState) {
        let FlowState::Active(mut a) = state else { return };
        for d in a.dirs.iter_mut() {
            d.tls.finish();
            if let Some(h) = &d.head {
                add_head_stats(&mut self.stats.head, &h.stats);
            }
            self.plain_bytes -= d.plain.len();
        }
        let endpoints = [key.lo, key.hi];
        let dirs = [&a.dirs[0].tls.facts, &a.dirs[1].tls.facts];
        // The clear bytes of a candidate flow, client's first.
        let plain = a.candidate().then(|| {
            let c = client_dir(dirs, a.syn_from, [key.lo.port, key.hi.port]);
            let s = endpoints[1 - c];
            (endpoints[c], s, plaintext::inspect(&a.dirs[c].plain, &a.dirs[1 - c].plain, s.port))
        });
        if a.candidate() {
            self.stats.plain_candidates += 1;
        }
        if let Some(hs) = Handshake::assemble(endpoints, dirs, a.syn_from, first_ns, Ja4Transport::Tcp) {
            let upgrade = plain.map(|(_, _, facts)| facts).filter(|f| f.protocol.is_some());
            let findings = self.cfg.policy.evaluate_upgraded(&hs, upgrade.as_ref());
            self.stats.handshakes += 1;
            self.out.push(Output { observed: Observed::Tls { handshake: hs, upgrade }, findings });
            return;
        }
        let Some((client, server, facts)) = plain else { return };
        let flow = PlainFlow { ts_ns: first_ns, client, server, facts };
        let findings = self.cfg.policy.evaluate_plain(&flow);
        // Bare HTTP without health content or credentials is not worth an event.
        let reported = match flow.facts.protocol {
            Some(plaintext::Protocol::Http) => !findings.is_empty(),
            Some(_) => true,
            None => false,
        };
        if reported {
            self.stats.plaintext_flows += 1;
            self.out.push(Output { observed: Observed::Plaintext(flow), findings });
        }
    }

    /// End of input: judge every flow still open.
    pub fn finish(&mut self) {
        for (k, e) in self.table.drain() {
            self.judge(k, e.first_ns, e.state);
        }
        self.stats.flows = self.table.stats;
    }

    /// Outputs judged since the last call, in the order they were judged.
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.stats.flows = self.table.stats;
        self.out.drain(..)
    }
}

/// Were both directions closed when the flow was judged (so the entry can go)?
fn a_closed(state: &FlowState) -> bool {
    match state {
        FlowState::Active(a) => a.dirs.iter().all(|d| d.closed),
        FlowState::Done => false,
    }
}

fn add_head_stats(total: &mut HeadStats, h: &HeadStats) {
    total.retransmitted += h.retransmitted;
    total.overlaps += h.overlaps;
    total.out_of_order += h.out_of_order;
    total.pending_dropped += h.pending_dropped;
    total.beyond_budget += h.beyond_budget;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Addr;

    const S: u64 = 1_000_000_000;

    /// A minimal TLS 1.2 ClientHello record: one suite (0xc02f), null compression, no extensions.
    fn client_hello() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7u8; 32]);
        body.extend_from_slice(&[0, 0, 2, 0xc0, 0x2f, 1, 0]);
        let mut hs = vec![1, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1, 0, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    fn pkt(payload: &[u8], syn: bool, seq: u32) -> Packet<'_> {
        Packet {
            src: Addr::v4([10, 99, 0, 1]),
            dst: Addr::v4([10, 99, 0, 2]),
            src_port: 40_000,
            dst_port: 443,
            transport: Transport::Tcp,
            syn,
            ack: !syn,
            fin: false,
            rst: false,
            seq,
            payload,
            truncated: false,
        }
    }

    #[test]
    fn persistent_clear_flow_is_judged_after_it_settles() {
        // An HL7 link that stays open: one message and its ACK, then another message 12 s later.
        let mut p = Pipeline::new(PipelineConfig::default());
        let msg = b"\x0bMSH|^~\\&|A|B|C|D|20250602||ADT^A01|1|P|2.5\r\x1c\r";
        let ack = b"\x0bMSH|^~\\&|C|D|A|B|20250602||ACK^A01|2|P|2.5\rMSA|AA|1\r\x1c\r";
        let hl7 = |payload: &'static [u8], from_client: bool, seq: u32| {
            let mut k = pkt(payload, false, seq);
            k.dst_port = 2575;
            if !from_client {
                std::mem::swap(&mut k.src, &mut k.dst);
                std::mem::swap(&mut k.src_port, &mut k.dst_port);
            }
            k
        };
        p.packet(100 * S, &hl7(msg, true, 1000));
        p.packet(100 * S + 1, &hl7(ack, false, 5000));
        p.packet(105 * S, &hl7(msg, true, 1000 + msg.len() as u32));
        assert_eq!(p.drain_outputs().count(), 0, "5 s in: still collecting");
        p.packet(112 * S, &hl7(msg, true, 1000 + 2 * msg.len() as u32));
        let out: Vec<Output> = p.drain_outputs().collect();
        assert_eq!(out.len(), 1, "judged 12 s in, without FIN or idle time");
        let flow = out[0].plaintext().expect("a plaintext flow");
        assert_eq!(flow.facts.protocol, Some(plaintext::Protocol::Hl7));
        assert_eq!(flow.server.port, 2575);
        assert_eq!(out[0].findings[0].id, "plaintext.phi");
        assert_eq!(p.stats.plaintext_flows, 1);
    }

    #[test]
    fn all_flows_plaintext_cap_drops_and_counts_then_frees() {
        let mut p = Pipeline::new(PipelineConfig { max_plain_bytes: 10, ..Default::default() });
        let req: &'static [u8] = b"GET /index.html HTTP/1.1\r\n"; // 26 bytes, a candidate (signature)
        let get = |src_port: u16| {
            let mut k = pkt(req, false, 1000);
            (k.src_port, k.dst_port) = (src_port, 9000);
            k
        };
        p.packet(S, &get(40_001));
        assert_eq!(p.plain_bytes, 10, "kept up to the cap");
        assert_eq!(p.stats.plain_bytes_dropped, 16, "the rest is counted");
        p.packet(2 * S, &get(40_002));
        assert_eq!(p.stats.plain_bytes_dropped, 42, "a second flow gets nothing while the cap is full");
        p.finish();
        assert_eq!(p.plain_bytes, 0, "judged flows give their bytes back");
        assert_eq!(p.stats.plain_candidates, 2);
    }

    #[test]
    fn advance_judges_idle_flows_without_packets() {
        let mut p = Pipeline::new(PipelineConfig { idle_timeout_s: 10, ..Default::default() });
        let hello = client_hello();
        p.packet(100 * S, &pkt(&[], true, 999));
        p.packet(101 * S, &pkt(&hello, false, 1000));
        assert_eq!(p.drain_outputs().count(), 0, "the server has not answered yet");
        p.advance(105 * S);
        assert_eq!(p.drain_outputs().count(), 0, "not idle long enough");
        p.advance(112 * S);
        let out: Vec<Output> = p.drain_outputs().collect();
        assert_eq!(out.len(), 1, "the idle flow is judged by the timer");
        assert_eq!(out[0].endpoints().1.port, 443);
        assert!(out[0].handshake().is_some_and(|h| h.client_hello.is_some()));
        assert_eq!(p.stats.flows.expired, 1);
        assert_eq!(p.stats.handshakes, 1);
        // Nothing left for the end of input.
        p.finish();
        assert_eq!(p.drain_outputs().count(), 0);
    }
}
