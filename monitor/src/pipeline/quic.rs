//! Pipeline, QUIC flows: UDP datagrams → the same flow table, idle expiry and memory budget as
//! TCP → the QUIC Initial inspector → a handshake assembled and judged like TCP's, with JA4's
//! `q`. Must never open a flow for a datagram that is not a QUIC long header (any on port
//! 443, a known version elsewhere), nor keep more than the inspector's bounds per flow.
use crate::decode::Packet;
use crate::flow::{Endpoint, FlowKey};
use crate::inspect::fingerprint::Ja4Transport;
use crate::inspect::quic::{packet, QuicConn};
use crate::observation::{Handshake, Observed, Output};

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
}

impl QuicFlow {
    fn held(&self) -> usize {
        std::mem::size_of::<QuicFlow>() + self.conn.held()
    }
}

impl Pipeline {
    /// One UDP datagram: opens or feeds a QUIC flow; any other UDP is only counted.
    pub(super) fn track_udp(&mut self, ts_ns: u64, p: &Packet<'_>) {
        let src = Endpoint { addr: p.src, port: p.src_port };
        let dst = Endpoint { addr: p.dst, port: p.dst_port };
        let (key, dir) = FlowKey::new(src, dst, true);
        let mut gone = Vec::new();
        self.table.expire(ts_ns, &mut |k, e| gone.push((k, e)));
        if self.table.get_mut(&key).is_none() {
            let on_port = p.src_port == QUIC_PORT || p.dst_port == QUIC_PORT;
            let long = p.payload.first().is_some_and(|b| b & 0x80 != 0);
            if !(packet::looks_like_quic(p.payload) || on_port && long) {
                self.finalize_all(gone);
                return;
            }
            let state = FlowState::Quic(Box::default());
            self.table.insert(key, ts_ns, state, &mut |k, e| gone.push((k, e)));
        }
        self.finalize_all(gone);
        let Some(entry) = self.table.get_mut(&key) else { return };
        entry.last_ns = ts_ns;
        // Judged already (both hellos seen): later datagrams are only counted.
        let FlowState::Quic(q) = &mut entry.state else { return };
        if p.truncated {
            self.stats.truncated_packets += 1;
        }
        q.conn.datagram(dir, p.payload, ts_ns);
        let held = q.held();
        self.charged = self.charged - q.charged + held;
        q.charged = held;
        if q.conn.done() {
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
        let dirs = [&q.conn.tls[0].facts, &q.conn.tls[1].facts];
        let Some(mut hs) = Handshake::assemble([key.lo, key.hi], dirs, q.conn.client, first_ns, Ja4Transport::Quic)
        else {
            return;
        };
        hs.quic = Some(q.conn.facts.clone());
        let findings = self.cfg.policy.evaluate(&hs);
        self.stats.handshakes += 1;
        self.out.push(Output { observed: Observed::Tls { handshake: hs, upgrade: None }, findings });
    }
}
