//! The single entry point live capture and replay share: packet → flow table → head reassembly
//! → TLS (also unwrapped from TDS PRELOGIN packets), SSH and plaintext inspection (QUIC Initials for UDP flows) → policy → outputs
//! (handshakes, SSH sessions, plaintext flows).
//! Synchronous, no I/O, time from packets only; must never keep more than the flow-head budget
//! per direction, more plaintext bytes than configured, nor more flows than configured.
use monitor_common::{
    flow_kind, KernelConfig, HANDSHAKE_CAP_CLIENT, HANDSHAKE_CAP_SERVER, HEAD_BUDGET_CLIENT, HEAD_BUDGET_SERVER,
};

use crate::decode::{Packet, Transport};
use crate::flow::reassembly::Head;
use crate::flow::{Endpoint, Entry, FlowKey, FlowTable};
use crate::inspect::fingerprint::Ja4Transport;
use crate::inspect::plaintext;
use crate::inspect::ssh;
use crate::inspect::tds;
use crate::inspect::tls::trust::TrustStore;
use crate::inspect::tls::State;
use crate::observation::{client_dir, Handshake, Local, Observed, Output, PipelineStats, PlainFlow, SshFlow};
use crate::policy::Policy;
use state::{a_closed, add_head_stats, Dir, FlowState};
use std::sync::Arc;

/// Bounds and policy of a pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub max_flows: usize,
    pub idle_timeout_s: u64,
    pub client_budget: u32,
    pub server_budget: u32,
    /// How far a TLS direction's head may grow past its budget while its clear records are
    /// followed (a large handshake), as the kernel does.
    pub client_cap: u32,
    pub server_cap: u32,
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
    /// Bytes all tracked flows may hold (state, out-of-order segments, partial records, clear
    /// bytes); when over, the least recently seen open flows are judged early and counted.
    pub max_memory: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_flows: 65_536,
            idle_timeout_s: 120,
            client_budget: HEAD_BUDGET_CLIENT,
            server_budget: HEAD_BUDGET_SERVER,
            client_cap: HANDSHAKE_CAP_CLIENT,
            server_cap: HANDSHAKE_CAP_SERVER,
            policy: Policy::default(),
            trust: None,
            candidates: KernelConfig::default_config(),
            plain_keep: PLAIN_KEEP,
            max_plain_bytes: MAX_PLAIN_BYTES,
            max_memory: MAX_MEMORY,
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
/// Default memory budget of all tracked flows (128 MiB). Ordinary traffic holds a few MB
/// (handshakes finish in milliseconds, then a flow keeps only its table entry); the budget is
/// there for floods. 128 MiB lets ~5 000 flows hold their whole out-of-order allowance at once,
/// the 64 MiB plaintext share fits inside it, and with the binary, runtime and ring buffer the
/// agent stays under ~200 MB — a tenth of a 2 GB host.
pub const MAX_MEMORY: usize = 128 << 20;
/// Budget charge of one flow-table entry (key, entry, the hash table's control byte), for
/// every tracked flow, judged or not.
const ENTRY_COST: usize = std::mem::size_of::<(FlowKey, Entry<FlowState>)>() + 1;

/// Where an output falls in the run's event stream: outputs are ordered by the packet at
/// which their flow was judged (its index in the whole input, from 1; `u64::MAX` at the end
/// of input), then by phase at that packet — flows judged by the idle sweep (and capacity
/// evictions) first, ordered by (first packet time, flow key), then the packet's own flow,
/// then memory-budget evictions. A parallel replay merges its workers' outputs on this, so
/// the stream is the same for any number of workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Order {
    pub index: u64,
    pub phase: u8,
    pub first_ns: u64,
    pub key: Option<FlowKey>,
}

/// [`Order::phase`] values.
const PHASE_SWEEP: u8 = 0;
const PHASE_PACKET: u8 = 1;
const PHASE_BUDGET: u8 = 2;

/// The pipeline.
pub struct Pipeline {
    cfg: PipelineConfig,
    table: FlowTable<FlowState>,
    out: Vec<Output>,
    /// Each output's place in the stream (parallel to `out`).
    order: Vec<Order>,
    /// Index of the packet being processed (see [`Order`]).
    index: u64,
    /// Packet indices and idle sweeps come from outside (a worker of a parallel replay).
    external_clock: bool,
    /// Plaintext bytes kept across open flows (bounded by `max_plain_bytes`).
    plain_bytes: usize,
    /// Bytes charged by open flows (the sum of their `charged`; table entries come on top).
    charged: usize,
    pub stats: PipelineStats,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Self {
        let table = FlowTable::new(cfg.max_flows, cfg.idle_timeout_s.saturating_mul(1_000_000_000));
        let mut stats = PipelineStats::default();
        stats.memory.limit = cfg.max_memory as u64;
        let (out, order) = (Vec::new(), Vec::new());
        Pipeline { cfg, table, out, order, index: 0, external_clock: false, plain_bytes: 0, charged: 0, stats }
    }

    /// A worker of a parallel replay: packets come with their index in the whole input
    /// ([`Pipeline::packet_at`]) and idle flows are judged only by [`Pipeline::sweep_at`], on
    /// the clock of the whole input, so outputs and their [`Order`] do not depend on which
    /// packets this worker sees.
    pub fn set_external_clock(&mut self) {
        self.external_clock = true;
        self.table.set_external_clock();
    }

    /// Process one decoded packet.
    pub fn packet(&mut self, ts_ns: u64, p: &Packet<'_>) {
        self.index += 1;
        self.process(ts_ns, p);
    }

    /// Process the packet at `index` in the whole input (a worker of a parallel replay).
    pub fn packet_at(&mut self, index: u64, ts_ns: u64, p: &Packet<'_>) {
        self.index = index;
        self.process(ts_ns, p);
    }

    /// The idle sweep the whole input's clock calls for before the packet at `index`.
    pub fn sweep_at(&mut self, index: u64, now_ns: u64) {
        self.index = index;
        let mut gone = Vec::new();
        self.table.sweep(now_ns, &mut |k, e| gone.push((k, e)));
        self.finalize_all(gone);
        self.stats.memory.held = self.held() as u64;
    }

    fn process(&mut self, ts_ns: u64, p: &Packet<'_>) {
        self.track(ts_ns, p);
        self.order_rest(PHASE_PACKET);
        self.keep_budget();
        self.order_rest(PHASE_BUDGET);
    }

    /// Outputs not yet placed fall in `phase` at the current packet.
    fn order_rest(&mut self, phase: u8) {
        let o = Order { index: self.index, phase, first_ns: 0, key: None };
        self.order.resize(self.out.len(), o);
    }

    /// Bytes all tracked flows hold, as charged to the memory budget.
    fn held(&self) -> usize {
        self.charged + self.table.len() * ENTRY_COST
    }

    /// Over the memory budget: judge the least recently seen open flows early until 7/8 of it
    /// is held (so a full budget is not sorted on every packet), counting flows and bytes.
    fn keep_budget(&mut self) {
        let mut held = self.held();
        let m = &mut self.stats.memory;
        m.peak = m.peak.max(held as u64);
        if held > self.cfg.max_memory {
            let target = self.cfg.max_memory - self.cfg.max_memory / 8;
            let mut open: Vec<(u64, FlowKey)> = self
                .table
                .iter()
                .filter(|(_, e)| matches!(e.state, FlowState::Active(_) | FlowState::Quic(_) | FlowState::Dtls(_)))
                .map(|(k, e)| (e.last_ns, *k))
                .collect();
            open.sort_unstable_by_key(|(last_ns, _)| *last_ns);
            for (_, k) in open {
                if held <= target {
                    break;
                }
                let Some(e) = self.table.remove(&k) else { continue };
                let bytes = match &e.state {
                    FlowState::Active(a) => a.charged,
                    FlowState::Quic(q) => q.charged,
                    FlowState::Dtls(d) => d.charged,
                    FlowState::Done => 0,
                };
                held -= bytes + ENTRY_COST;
                self.stats.memory.evicted_flows += 1;
                self.stats.memory.evicted_bytes += bytes as u64;
                self.judge(k, e.first_ns, e.state);
            }
        }
        debug_assert_eq!(held, self.held(), "the budget's running total and its sum agree");
        self.stats.memory.held = held as u64;
    }

    fn track(&mut self, ts_ns: u64, p: &Packet<'_>) {
        if p.transport == Transport::Udp {
            self.stats.udp_packets += 1;
            self.track_udp(ts_ns, p);
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
        if !gone.is_empty() {
            self.finalize_all(std::mem::take(&mut gone));
        }
        // Only a SYN or payload opens a flow; stray ACKs, FINs and RSTs do not. One lookup
        // for a packet of a known flow.
        let opens = p.syn || !p.payload.is_empty();
        let cfg = &self.cfg;
        let new = || opens.then(|| FlowState::new(cfg, &key));
        let found = self.table.get_or_insert(key, ts_ns, new, &mut |k, e| gone.push((k, e)));
        let entry = match found {
            Some(entry) if gone.is_empty() => entry,
            found => {
                // Flows pushed out to make room are judged first.
                let found = found.is_some();
                self.finalize_all(gone);
                if !found {
                    return;
                }
                let Some(entry) = self.table.get_mut(&key) else { return };
                entry
            }
        };
        entry.last_ns = ts_ns;
        let entry = match (p.local, &entry.state) {
            (Some(now), FlowState::Active(a))
                if p.syn && !p.ack && a.dirs[dir].local.is_some_and(|b| b.cookie != now.cookie) =>
            {
                // Another socket opens a connection on this 4-tuple: a new connection reused it
                // (the port of a closed one) before the old flow was judged. Judge the old one
                // now, so neither its facts nor its process leak into the new one.
                let (first_ns, old) =
                    (entry.first_ns, std::mem::replace(&mut entry.state, FlowState::new(&self.cfg, &key)));
                entry.first_ns = ts_ns;
                self.stats.socket_reuse += 1;
                self.judge(key, first_ns, old);
                let Some(entry) = self.table.get_mut(&key) else { return };
                entry
            }
            _ => entry,
        };
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
        // The connection's own socket sends its SYN and its payload; a bare ACK, FIN or RST
        // may leave from the kernel's per-namespace control socket (replies in TIME_WAIT,
        // resets), which names no process.
        if p.local.is_some() && (p.syn || !p.payload.is_empty()) {
            a.dirs[dir].local = p.local;
        }
        let cfg = &self.cfg;
        let new_head = |client: bool| {
            if client {
                Head::with_cap(cfg.client_budget, cfg.client_cap)
            } else {
                Head::with_cap(cfg.server_budget, cfg.server_cap)
            }
        };
        if p.syn {
            // SYN: the sender is the client; SYN-ACK: the sender is the server.
            let is_client = !p.ack;
            if is_client {
                a.syn_from.get_or_insert(dir);
            }
            a.dirs[dir].head.get_or_insert_with(|| new_head(is_client)).syn(p.seq);
        }
        if !p.payload.is_empty() {
            let d = &mut a.dirs[dir];
            let head = d.head.get_or_insert_with(|| {
                let client = match a.syn_from {
                    Some(c) => c == dir,
                    None => monitor_common::looks_like_client_hello(p.payload),
                };
                new_head(client)
            });
            let ports = [key.lo.port, key.hi.port];
            // The kernel decides what a flow is from the first payload at a stream's start,
            // before it cuts that payload; so does its model here.
            if a.class.is_none() && head.at_start(p.seq) {
                a.class = Some(self.cfg.candidates.classify(p.payload, ports));
            }
            let records = a.class == Some(flow_kind::TLS);
            let (tls, plain, plain_full, unwrap) = (&mut d.tls, &mut d.plain, &mut d.plain_full, &mut d.tds);
            let (class, tds, candidates) = (&mut a.class, &mut a.tds, &self.cfg.candidates);
            let (keep, room) = (self.cfg.plain_keep, self.cfg.max_plain_bytes.saturating_sub(self.plain_bytes));
            let mut kept = 0usize;
            let mut dropped = 0u64;
            head.insert(p.seq, p.payload, records, &mut |bytes| {
                let class = *class.get_or_insert_with(|| candidates.classify(bytes, ports));
                let is_tds = *tds.get_or_insert_with(|| class == flow_kind::PLAINTEXT && tds::is_prelogin(bytes));
                let before = tls.state;
                if is_tds {
                    // TDS 7.x: the TLS handshake travels in PRELOGIN packets, then raw.
                    unwrap.get_or_insert_with(tds::Unwrap::new).feed(bytes, &mut |piece| match piece {
                        tds::Piece::Tls(b) => tls.feed(b, ts_ns),
                        tds::Piece::Clear => tls.mark_clear(),
                    });
                } else {
                    tls.feed(bytes, ts_ns);
                }
                // Clear bytes (not TLS, or before an upgrade) of a candidate flow are kept for
                // the plaintext inspectors; once TLS begins nothing more is clear. A TDS
                // segment that began in clear is kept whole: the inspector reads PRELOGIN
                // packets and stops at the TLS they carry.
                if class != flow_kind::PLAINTEXT || *plain_full {
                    return;
                }
                let clear_start = is_tds && before == State::Start;
                if !matches!(tls.state, State::NotTls | State::Start) && !clear_start {
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
                *plain_full = plain.len() >= keep || !matches!(tls.state, State::NotTls | State::Start);
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
        let held = a.held();
        self.charged = self.charged - a.charged + held;
        a.charged = held;
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
        self.stats.memory.held = self.held() as u64;
    }

    /// Judge flows the table let go (idle, evicted, end of input) in a fixed order: by first
    /// packet time, then key.
    fn finalize_all(&mut self, mut gone: Vec<(FlowKey, Entry<FlowState>)>) {
        self.order_rest(PHASE_PACKET);
        gone.sort_unstable_by_key(|(k, e)| (e.first_ns, *k));
        for (k, e) in gone {
            let first_ns = e.first_ns;
            self.judge(k, first_ns, e.state);
            let o = Order { index: self.index, phase: PHASE_SWEEP, first_ns, key: Some(k) };
            self.order.resize(self.out.len(), o);
        }
    }

    /// Turn a flow's facts into an output (a TLS handshake, else a recognised plaintext flow)
    /// and fold its counters in.
    fn judge(&mut self, key: FlowKey, first_ns: u64, state: FlowState) {
        let mut a = match state {
            FlowState::Active(a) => a,
            FlowState::Quic(q) => return self.judge_quic(key, first_ns, q),
            FlowState::Dtls(d) => return self.judge_dtls(key, first_ns, d),
            FlowState::Done => return,
        };
        self.charged -= a.charged;
        for d in a.dirs.iter_mut() {
            d.tls.finish();
        }
        self.stats.cert_cache_evicted += crate::inspect::tls::cert::take_cache_evicted();
        for d in a.dirs.iter_mut() {
            if let Some(h) = &d.head {
                add_head_stats(&mut self.stats.head, &h.stats);
            }
            self.plain_bytes -= d.plain.len();
        }
        let endpoints = [key.lo, key.hi];
        // The local sockets, client's first once the client is known.
        let local = |a: &state::Active, client: Endpoint| Local {
            sockets: a.sockets(usize::from(client != endpoints[0])),
            ..Local::default()
        };
        if let Some(flow) = ssh_flow(&a, endpoints, first_ns) {
            let findings = self.cfg.policy.evaluate_ssh(&flow);
            let local = local(&a, flow.client);
            self.out.push(Output { observed: Observed::Ssh(flow), findings, local });
            return;
        }
        // The clear bytes of a candidate flow, client's first.
        let plain = a.candidate().then(|| {
            let dirs = [&a.dirs[0].tls.facts, &a.dirs[1].tls.facts];
            let c = client_dir(dirs, a.syn_from, [key.lo.port, key.hi.port]);
            let s = endpoints[1 - c];
            (endpoints[c], s, plaintext::inspect(&a.dirs[c].plain, &a.dirs[1 - c].plain, s.port))
        });
        if a.candidate() {
            self.stats.plain_candidates += 1;
        }
        // The flow is over: its facts move into the handshake.
        let [d0, d1] = &mut a.dirs;
        let dirs = [&mut d0.tls.facts, &mut d1.tls.facts];
        if let Some(hs) = Handshake::take(endpoints, dirs, a.syn_from, first_ns, Ja4Transport::Tcp) {
            let upgrade = plain.map(|(_, _, facts)| facts).filter(|f| f.protocol.is_some());
            let findings = self.cfg.policy.evaluate_upgraded(&hs, upgrade.as_ref());
            self.stats.handshakes += 1;
            let local = local(&a, hs.client);
            self.out.push(Output { observed: Observed::Tls { handshake: hs, upgrade }, findings, local });
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
            let local = local(&a, flow.client);
            self.out.push(Output { observed: Observed::Plaintext(flow), findings, local });
        }
    }

    /// End of input: judge every flow still open.
    pub fn finish(&mut self) {
        self.order_rest(PHASE_PACKET);
        self.index = u64::MAX;
        let all = self.table.drain();
        self.finalize_all(all);
        self.stats.flows = self.table.stats;
        self.stats.memory.held = self.held() as u64;
    }

    /// Outputs judged since the last call, in the order they were judged.
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.stats.flows = self.table.stats;
        self.order.clear();
        self.out.drain(..)
    }

    /// Outputs judged since the last call with their place in the stream, in the order they
    /// were judged (which is [`Order`]'s, but for flows judged early by a bound).
    pub fn drain_ordered(&mut self) -> impl Iterator<Item = (Order, Output)> + '_ {
        self.stats.flows = self.table.stats;
        self.order_rest(PHASE_PACKET);
        self.order.drain(..).zip(self.out.drain(..))
    }
}

/// The SSH session a candidate flow carried, when either side began with an identification
/// string (judged from the same bounded clear heads as the plaintext inspectors).
fn ssh_flow(a: &state::Active, endpoints: [Endpoint; 2], first_ns: u64) -> Option<SshFlow> {
    if !a.candidate() {
        return None;
    }
    let dirs = [&a.dirs[0].tls.facts, &a.dirs[1].tls.facts];
    let c = client_dir(dirs, a.syn_from, [endpoints[0].port, endpoints[1].port]);
    let (client, server) = (&a.dirs[c].plain, &a.dirs[1 - c].plain);
    ssh::is_ssh(client, server).then(|| SshFlow {
        ts_ns: first_ns,
        client: endpoints[c],
        server: endpoints[1 - c],
        facts: ssh::inspect(client, server),
    })
}

mod quic;
mod state;
#[cfg(test)]
mod tests;
