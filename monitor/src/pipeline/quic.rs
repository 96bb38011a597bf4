//! Pipeline, UDP flows (QUIC and DTLS): datagrams → the same flow table, idle expiry and
//! memory budget as TCP → the QUIC Initial or DTLS inspector → a handshake assembled and
//! judged like TCP's, with JA4's `q` or `d`. Must never open a flow for a datagram that is not
//! a QUIC long header (any on port 443, a known version elsewhere) or a DTLS handshake record,
//! nor keep more than the inspector's bounds per flow.
use crate::decode::{LocalSocket, Packet};
use crate::flow::{Endpoint, FlowKey};
use crate::inspect::dtls::{self, DtlsConn};
use crate::inspect::fingerprint::Ja4Transport;
use crate::inspect::quic::{packet, QuicConn};
use crate::observation::{Handshake, Local, Observed, Output};

use super::state::FlowState;
use super::Pipeline;

/// The UDP port QUIC is looked for on whatever the version (HTTP/3).
pub const QUIC_PORT: u16 = 443;

/// What the pipeline keeps of an open QUIC flow.
#[derive(Default)]
pub(super) struct QuicFlow {
    pub(super) conn: QuicConn,
    /// Bytes charged to the memory budget (its last `held`).
    pub(super) charged: usize,
    /// The local socket that sent each direction's datagrams (live capture, egress).
    pub(super) local: [Option<LocalSocket>; 2],
}

impl QuicFlow {
    fn held(&self) -> usize {
        std::mem::size_of::<QuicFlow>() + self.conn.held()
    }
}

/// What the pipeline keeps of an open DTLS flow.
#[derive(Default)]
pub(super) struct DtlsFlow {
    pub(super) conn: DtlsConn,
    /// Bytes charged to the memory budget (its last `held`).
    pub(super) charged: usize,
    /// The local socket that sent each direction's datagrams (live capture, egress).
    pub(super) local: [Option<LocalSocket>; 2],
}

impl DtlsFlow {
    fn held(&self) -> usize {
        std::mem::size_of::<DtlsFlow>() + self.conn.held()
    }
}

impl Pipeline {
    /// One UDP datagram: opens or feeds a QUIC or DTLS flow; any other UDP is only counted.
    pub(super) fn track_udp(&mut self, ts_ns: u64, p: &Packet<'_>) {
        let src = Endpoint { addr: p.src, port: p.src_port };
        let dst = Endpoint { addr: p.dst, port: p.dst_port };
        let (key, dir) = FlowKey::new(src, dst, true);
        let mut gone = Vec::new();
        self.table.expire(ts_ns, &mut |k, e| gone.push((k, e)));
        if self.table.get_mut(&key).is_none() {
            let on_port = p.src_port == QUIC_PORT || p.dst_port == QUIC_PORT;
            let long = p.payload.first().is_some_and(|b| b & 0x80 != 0);
            let state = if packet::looks_like_quic(p.payload) || on_port && long {
                FlowState::Quic(Box::default())
            } else if dtls::looks_like_dtls(p.payload) {
                FlowState::Dtls(Box::default())
            } else {
                self.finalize_all(gone);
                return;
            };
            self.table.insert(key, ts_ns, state, &mut |k, e| gone.push((k, e)));
        }
        self.finalize_all(gone);
        let Some(entry) = self.table.get_mut(&key) else { return };
        entry.last_ns = ts_ns;
        // Judged already (both hellos seen): later datagrams are only counted.
        if p.truncated && matches!(entry.state, FlowState::Quic(_) | FlowState::Dtls(_)) {
            self.stats.truncated_packets += 1;
        }
        let done = match &mut entry.state {
            FlowState::Quic(q) => {
                q.local[dir] = p.local.or(q.local[dir]);
                q.conn.datagram(dir, p.payload, ts_ns);
                let held = q.held();
                self.charged = self.charged - q.charged + held;
                q.charged = held;
                q.conn.done()
            }
            FlowState::Dtls(d) => {
                d.local[dir] = p.local.or(d.local[dir]);
                d.conn.datagram(dir, p.payload, ts_ns);
                let held = d.held();
                self.charged = self.charged - d.charged + held;
                d.charged = held;
                d.conn.done()
            }
            _ => return,
        };
        if done {
            let first_ns = entry.first_ns;
            let state = std::mem::replace(&mut entry.state, FlowState::Done);
            self.judge(key, first_ns, state);
        }
    }

    /// A QUIC flow's handshake, judged like a TCP one; its counters are folded in.
    pub(super) fn judge_quic(&mut self, key: FlowKey, first_ns: u64, mut q: Box<QuicFlow>) {
        self.charged -= q.charged;
        q.conn.finish();
        self.stats.quic.add(&q.conn.stats);
        let [t0, t1] = &mut q.conn.tls;
        let dirs = [&mut t0.facts, &mut t1.facts];
        let Some(mut hs) = Handshake::take([key.lo, key.hi], dirs, q.conn.client, first_ns, Ja4Transport::Quic) else {
            return;
        };
        hs.quic = Some(q.conn.facts.clone());
        let findings = self.cfg.policy.evaluate(&hs);
        self.stats.handshakes += 1;
        let local = local_of(q.local, hs.client == key.lo);
        self.out.push(Output { observed: Observed::Tls { handshake: hs, upgrade: None }, findings, local });
    }

    /// A DTLS flow's handshake, judged like a TCP one; its counters are folded in.
    pub(super) fn judge_dtls(&mut self, key: FlowKey, first_ns: u64, mut d: Box<DtlsFlow>) {
        self.charged -= d.charged;
        d.conn.finish();
        self.stats.dtls.add(&d.conn.stats);
        let [t0, t1] = &mut d.conn.tls;
        let dirs = [&mut t0.facts, &mut t1.facts];
        let Some(mut hs) = Handshake::take([key.lo, key.hi], dirs, d.conn.client, first_ns, Ja4Transport::Dtls) else {
            return;
        };
        hs.dtls = Some(d.conn.facts.clone());
        let findings = self.cfg.policy.evaluate(&hs);
        self.stats.handshakes += 1;
        let local = local_of(d.local, hs.client == key.lo);
        self.out.push(Output { observed: Observed::Tls { handshake: hs, upgrade: None }, findings, local });
    }
}

/// The flow's local sockets, client's first (`lo_is_client`: the key's low end is the client).
fn local_of(by_dir: [Option<LocalSocket>; 2], lo_is_client: bool) -> Local {
    let c = usize::from(!lo_is_client);
    Local { sockets: [by_dir[c], by_dir[1 - c]], ..Local::default() }
}
