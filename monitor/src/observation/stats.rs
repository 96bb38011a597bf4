//! Observation, counters: what a source saw and decoded, and what the pipeline did with it —
//! the same fields in live capture and replay, read by the summary, `--stats` and the metrics.
//! Must never hold anything but counts.
use crate::flow::reassembly::HeadStats;
use crate::flow::TableStats;

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
