//! Pipeline, per-flow state: what the pipeline keeps of each open flow — both directions'
//! head reassembly, TLS parse and bounded clear bytes — until the flow is judged.
//! Must never keep more than the head budget and the plaintext share per direction.
use monitor_common::{flow_kind, STARTTLS_PORTS};

use super::PipelineConfig;
use crate::decode::LocalSocket;
use crate::flow::reassembly::{Head, HeadStats};
use crate::flow::FlowKey;
use crate::inspect::tds::Unwrap;
use crate::inspect::tls::{State, TlsStream};

pub(super) struct Dir {
    pub(super) head: Option<Head>,
    pub(super) tls: TlsStream,
    pub(super) closed: bool,
    /// Clear bytes kept for the plaintext inspectors (candidate flows only, bounded).
    pub(super) plain: Vec<u8>,
    /// No more clear bytes wanted: TLS began, or this direction's share is full.
    pub(super) plain_full: bool,
    /// TDS 7.x flows: the unwrapper between the stream and `tls` (the handshake travels in
    /// PRELOGIN packets).
    pub(super) tds: Option<Unwrap>,
    /// The local socket that sent this direction's packets (live capture, egress).
    pub(super) local: Option<LocalSocket>,
}

impl Dir {
    pub(super) fn new() -> Self {
        Dir {
            head: None,
            tls: TlsStream::default(),
            closed: false,
            plain: Vec::new(),
            plain_full: false,
            tds: None,
            local: None,
        }
    }

    /// Heap bytes this direction holds: out-of-order segments, partial TLS records and
    /// messages with the facts parsed so far, clear bytes.
    fn held(&self) -> usize {
        self.head.as_ref().map_or(0, Head::held) + self.tls.held() + self.plain.capacity()
    }

    /// Nothing more to learn: the TLS parse is over (and, on a plaintext candidate, the clear
    /// bytes wanted are in), or the direction closed or used up its head budget.
    pub(super) fn finished(&self, candidate: bool) -> bool {
        let tls_over = self.tls.finished() && (!candidate || self.plain_full || self.tls.state != State::NotTls);
        tls_over || self.closed || self.head.as_ref().is_some_and(Head::exhausted)
    }
}

pub(super) struct Active {
    pub(super) dirs: [Dir; 2],
    /// Direction whose sender sent the SYN (the client), when seen.
    pub(super) syn_from: Option<usize>,
    /// The kernel's decision on the first payload ([`flow_kind`]), once there was one.
    pub(super) class: Option<u8>,
    /// A candidate whose first payload opened a TDS PRELOGIN message (decided with `class`).
    pub(super) tds: Option<bool>,
    /// Bytes charged to the pipeline's memory budget for this flow (its last [`Active::held`]).
    pub(super) charged: usize,
}

impl Active {
    /// Bytes this flow holds: its state and both directions' buffers.
    pub(super) fn held(&self) -> usize {
        std::mem::size_of::<Active>() + self.dirs.iter().map(Dir::held).sum::<usize>()
    }

    pub(super) fn candidate(&self) -> bool {
        self.class == Some(flow_kind::PLAINTEXT)
    }

    /// The local sockets of the client's and the server's direction (client direction `c`).
    pub(super) fn sockets(&self, c: usize) -> [Option<LocalSocket>; 2] {
        [self.dirs[c].local, self.dirs[1 - c].local]
    }
}

pub(super) enum FlowState {
    Active(Box<Active>),
    /// A QUIC flow (UDP): its Initial handshake so far.
    Quic(Box<super::quic::QuicFlow>),
    /// A DTLS flow (UDP): its handshake records so far.
    Dtls(Box<super::quic::DtlsFlow>),
    /// Judged (or not TLS): later packets are only counted.
    Done,
}

impl FlowState {
    /// A new flow; its TLS streams get the CA bundle and, on upgrade ports, follow STARTTLS.
    pub(super) fn new(cfg: &PipelineConfig, key: &FlowKey) -> Self {
        let upgradable = STARTTLS_PORTS.contains(&key.lo.port) || STARTTLS_PORTS.contains(&key.hi.port);
        let dir = || {
            let mut d = Dir::new();
            d.tls.upgradable = upgradable;
            d.tls.trust.clone_from(&cfg.trust);
            d
        };
        FlowState::Active(Box::new(Active { dirs: [dir(), dir()], syn_from: None, class: None, tds: None, charged: 0 }))
    }
}

/// Were both directions closed when the flow was judged (so the entry can go)?
pub(super) fn a_closed(state: &FlowState) -> bool {
    match state {
        FlowState::Active(a) => a.dirs.iter().all(|d| d.closed),
        FlowState::Quic(_) | FlowState::Dtls(_) | FlowState::Done => false,
    }
}

pub(super) fn add_head_stats(total: &mut HeadStats, h: &HeadStats) {
    total.retransmitted += h.retransmitted;
    total.overlaps += h.overlaps;
    total.out_of_order += h.out_of_order;
    total.pending_dropped += h.pending_dropped;
    total.beyond_budget += h.beyond_budget;
}
