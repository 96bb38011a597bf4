//! Observation, counters: what a source saw and decoded, and what the pipeline did with it —
//! the same fields in live capture and replay, read by the summary, `--stats` and the metrics.
//! Must never hold anything but counts.
use crate::flow::reassembly::HeadStats;
use crate::flow::TableStats;
use crate::inspect::dtls::DtlsStats;
use crate::inspect::quic::QuicStats;

/// What a source saw before the pipeline: packets and bytes, and why some gave no packet. The
/// same in both sources: replay decodes every frame itself, live capture reads the kernel
/// program's counters (it decodes every packet on the interface and forwards only flow heads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub packets: u64,
    pub bytes: u64,
    /// Link types tlsmon does not decode (replay only: live refuses such interfaces).
    pub skipped_link: u64,
    pub skipped_not_ip: u64,
    pub skipped_not_tcp_udp: u64,
    /// Non-first IP fragments (no transport header).
    pub skipped_fragment: u64,
    /// Headers cut short or inconsistent.
    pub skipped_malformed: u64,
    /// Packets whose capture time was outside [1970, 2200) or overflowed its units (replay
    /// only): inspected at the last good time of their file (0 before the first).
    pub bad_timestamps: u64,
}

/// What the pipeline counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipelineStats {
    pub udp_packets: u64,
    /// Open flows judged early because another local socket (a new cookie) sent on their
    /// 4-tuple: a new connection reused the port of one not yet judged (live capture).
    pub socket_reuse: u64,
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
    /// Parsed certificates the per-thread certificate cache forgot to stay within its bound
    /// (a performance cache: they are parsed again when seen again, nothing is lost).
    pub cert_cache_evicted: u64,
    pub head: HeadStats,
    pub flows: TableStats,
    pub memory: MemoryStats,
    /// QUIC flows' datagrams and Initial packets, as judged flows report them.
    pub quic: QuicStats,
    /// DTLS flows' datagrams and records, as judged flows report them.
    pub dtls: DtlsStats,
}

impl PipelineStats {
    /// Fold in another pipeline's counters (the workers of a parallel replay). Memory figures
    /// add up too: the limit is the global budget again, `peak` the sum of the workers' peaks.
    pub fn add(&mut self, o: &PipelineStats) {
        self.udp_packets += o.udp_packets;
        self.socket_reuse += o.socket_reuse;
        self.truncated_packets += o.truncated_packets;
        self.handshakes += o.handshakes;
        self.plain_candidates += o.plain_candidates;
        self.plaintext_flows += o.plaintext_flows;
        self.plain_bytes_dropped += o.plain_bytes_dropped;
        self.cert_cache_evicted += o.cert_cache_evicted;
        let (h, oh) = (&mut self.head, &o.head);
        h.retransmitted += oh.retransmitted;
        h.overlaps += oh.overlaps;
        h.out_of_order += oh.out_of_order;
        h.pending_dropped += oh.pending_dropped;
        h.beyond_budget += oh.beyond_budget;
        self.flows.created += o.flows.created;
        self.flows.expired += o.flows.expired;
        self.flows.evicted += o.flows.evicted;
        let (m, om) = (&mut self.memory, &o.memory);
        m.limit += om.limit;
        m.held += om.held;
        m.peak += om.peak;
        m.evicted_flows += om.evicted_flows;
        m.evicted_bytes += om.evicted_bytes;
        self.quic.add(&o.quic);
        self.dtls.add(&o.dtls);
    }
}

/// The pipeline's memory budget at work: what open flows hold (per-flow state, out-of-order
/// segments, partial TLS records, clear bytes) against the limit, and what was given up to
/// stay under it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// The configured budget (bytes).
    pub limit: u64,
    /// Bytes held now.
    pub held: u64,
    /// Most bytes held at once.
    pub peak: u64,
    /// Open flows judged early, oldest first, because the budget was full.
    pub evicted_flows: u64,
    /// Bytes those flows held.
    pub evicted_bytes: u64,
}

/// One kind of loss: something tlsmon could not inspect, or gave up to stay within its bounds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Loss {
    // Fields in alphabetical order: the JSON report writes them in this order.
    pub count: u64,
    /// What was lost and why, for a person.
    pub meaning: &'static str,
    /// Stable name (also the `what` label of `tlsmon_dropped_total` where there is one).
    pub what: &'static str,
}

/// Kernel counters that are losses (live capture), with their meaning.
const KERNEL_LOSSES: [(&str, &str); 4] = [
    ("ringbuf_full", "kernel records lost: the ring buffer to the agent was full"),
    ("flow_map_full", "new flows the kernel could not track: its flow map was full"),
    (
        "flows_evicted",
        "flows the kernel's LRU flow map evicted to make room, finished ones included: a loss only for those still in their handshake (approximate)",
    ),
    ("load_failed", "packets the kernel program could not read"),
];

/// Every non-zero loss of a run, in a fixed order: what the source could not decode, what the
/// pipeline's bounds (flow table, memory budget, reassembly, head budget, plaintext cap) gave
/// up, and in live capture the kernel's drops (`kernel`: its named counters) and the reader's.
/// The summary, `--stats` and the report all state these.
pub fn losses<'a>(
    source: &DecodeStats,
    p: &PipelineStats,
    kernel: impl IntoIterator<Item = (&'a str, u64)>,
    bad_records: u64,
) -> Vec<Loss> {
    let mut all = vec![
        (
            "bad_timestamp",
            source.bad_timestamps,
            "packets with a capture time before 1970, from 2200 on or past 64 bits (inspected at the last good time)",
        ),
        ("malformed", source.skipped_malformed, "packets whose headers were cut short or inconsistent"),
        ("ip_fragment", source.skipped_fragment, "non-first IP fragments (not reassembled)"),
        ("link_type", source.skipped_link, "frames of a link type tlsmon does not decode"),
        ("snaplen", p.truncated_packets, "packets the capture cut short (snap length)"),
        ("flow_table_full", p.flows.evicted, "flows judged early with what they showed: the flow table was full"),
        (
            "memory_budget_flows",
            p.memory.evicted_flows,
            "flows judged early with what they showed: the memory budget was full",
        ),
        ("memory_budget_bytes", p.memory.evicted_bytes, "bytes those flows held when they were judged early"),
        (
            "reassembly_pending",
            p.head.pending_dropped,
            "out-of-order segments refused (32 per direction, or the head budget)",
        ),
        (
            "head_budget",
            p.head.beyond_budget,
            "segments past a direction's head budget before its flow was judged (a larger handshake is cut there)",
        ),
        (
            "plain_bytes_cap",
            p.plain_bytes_dropped,
            "clear bytes not kept for the plaintext inspectors: all flows together were at the cap",
        ),
        (
            "quic_crypto_cap",
            p.quic.crypto_dropped,
            "QUIC CRYPTO bytes past a direction's 64 KiB of Initial handshake data (not inspected)",
        ),
        (
            "dtls_handshake_cap",
            p.dtls.dropped,
            "DTLS handshake bytes past a direction's 64 KiB or 16 pending messages (not inspected)",
        ),
        ("bad_records", bad_records, "ring-buffer records the agent could not read"),
    ];
    for (name, v) in kernel {
        if let Some((what, meaning)) = KERNEL_LOSSES.iter().find(|(n, _)| *n == name) {
            all.push((what, v, meaning));
        }
    }
    all.into_iter().filter(|(_, n, _)| *n > 0).map(|(what, count, meaning)| Loss { what, count, meaning }).collect()
}
