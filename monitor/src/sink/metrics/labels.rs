//! Sink, Prometheus metrics: the closed sets every label takes its values from, and the label
//! values of one handshake. Must never let a value from the traffic (address, port, SNI,
//! certificate subject) become a label value.
use std::collections::{BTreeMap, BTreeSet};

use super::{Metrics, Mode};
use crate::inspect::names::{is_pq_group, version_parts};
use crate::observation::Handshake;
use crate::policy::{cipher_class, forward_secrecy};

/// `tlsmon_handshakes_total{version}`: "none" when there was no ServerHello.
pub const VERSIONS: &[&str] =
    &["ssl2", "ssl3", "tls1.0", "tls1.1", "tls1.2", "tls1.3", "dtls1.0", "dtls1.2", "dtls1.3", "unknown", "none"];
/// `tlsmon_handshakes_cipher_class_total{class}` (see [`cipher_class`]).
pub const CIPHER_CLASSES: &[&str] = &["aead", "cbc", "legacy", "insecure", "other", "none"];
/// `tlsmon_handshakes_forward_secrecy_total{pfs}` (see [`forward_secrecy`]).
pub const PFS: &[&str] = &["yes", "no", "unknown"];
/// `tlsmon_handshakes_pq_total{pq}`: a post-quantum hybrid group, a classical one, or none.
pub const PQ: &[&str] = &["hybrid", "classical", "none"];
pub const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];
pub const EVENT_TYPES: &[&str] = &["tls", "plaintext", "probe", "ssh"];
/// `tlsmon_ssh_kex_total{class}`: the negotiated SSH key exchange's class (see
/// [`crate::inspect::ssh::kex_class`]; `none` when none was negotiated).
pub const SSH_KEX_CLASSES: &[&str] = &["pq-hybrid", "ecdh", "dh", "weak", "other", "none"];
/// `tlsmon_parse_anomalies_total{kind}`.
pub const ANOMALIES: &[&str] = &[
    "malformed_packet",
    "truncated_packet",
    "malformed_record",
    "malformed_handshake",
    "truncated_handshake",
    "bad_record",
    "bad_timestamp",
];
/// `tlsmon_packets_skipped_total{reason}`: why a packet the source saw gave nothing to inspect
/// (the fields of `DecodeStats`).
pub const SKIP_REASONS: &[&str] = &["link", "not_ip", "not_tcp_udp", "fragment", "malformed"];
/// `tlsmon_flows_total{event}`.
pub const FLOW_EVENTS: &[&str] = &["created", "expired", "evicted"];
/// `tlsmon_dropped_total{what}`: every place the agent refuses data it was given.
pub const DROPPED: &[&str] = &[
    "ringbuf_full",
    "flow_map_full",
    "reassembly_pending",
    "head_budget",
    "memory_budget_flows",
    "memory_budget_bytes",
    "plain_bytes_cap",
    "quic_crypto_cap",
    "dtls_handshake_cap",
    "inventory_full",
    "alert_queue_full",
    "probe_queue_full",
    "probe_results",
    "probe_own_flows",
];
/// `tlsmon_probes_total{result}`: how the prober's probes ended.
pub const PROBE_RESULTS: &[&str] = &["ok", "unreachable", "timeout", "failed"];
/// `tlsmon_probe_targets_total{outcome}`: what the prober did with a server offered to it
/// (queue drops are under `tlsmon_dropped_total{what="probe_queue_full"}`).
pub const PROBE_TARGETS: &[&str] = &["queued", "recent", "out_of_scope"];
/// `tlsmon_attribution_total{result}`: local sockets of flows (live) named by their process,
/// without an owner in the kernel's map, or named but with a cgroup id no path was found for.
pub const ATTRIBUTION_RESULTS: &[&str] = &["attributed", "owner_missing", "cgroup_unresolved"];
/// `tlsmon_probe_queue{state}`.
pub const PROBE_QUEUE: &[&str] = &["pending", "in_flight"];
/// `tlsmon_pipeline_memory_bytes{of}`: what open flows hold now, the most they held, the budget.
pub const MEMORY: &[&str] = &["held", "peak", "limit"];
/// `tlsmon_certificates_expiring{within}`, in days.
pub const EXPIRY_WINDOWS: &[(&str, i64)] = &[("7d", 7), ("30d", 30), ("90d", 90)];
pub const VERDICTS: &[&str] = &["compliant", "non-compliant"];
pub const REPLAY_FILES: &[&str] = &["total", "done"];

/// Every labelled metric → its labels → the closed set of values each may take. These are
/// exactly the series that exist when tlsmon starts (live or replay: every combination of the
/// sets above is created at 0), so a label value that shows up later escaped its set.
pub fn label_sets() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut sets: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for mode in [Mode::Live, Mode::Replay] {
        for family in Metrics::new(mode).registry.gather() {
            for metric in family.get_metric() {
                for l in metric.get_label() {
                    let labels = sets.entry(family.name().to_string()).or_default();
                    labels.entry(l.name().to_string()).or_default().insert(l.value().to_string());
                }
            }
        }
    }
    sets
}

/// The label values of one handshake: (version, cipher class, forward secrecy, pq).
pub fn handshake_labels(hs: &Handshake) -> [&'static str; 4] {
    let version = match hs.version() {
        None => "none",
        Some(v) => match version_parts(v) {
            Some(("ssl", "2.0")) => "ssl2",
            Some(("ssl", "3.0")) => "ssl3",
            Some(("tls", "1.0")) => "tls1.0",
            Some(("tls", "1.1")) => "tls1.1",
            Some(("tls", "1.2")) => "tls1.2",
            Some(("tls", "1.3")) => "tls1.3",
            Some(("dtls", "1.0")) => "dtls1.0",
            Some(("dtls", "1.2")) => "dtls1.2",
            Some(("dtls", "1.3")) => "dtls1.3",
            _ => "unknown",
        },
    };
    let pq = match hs.group() {
        Some(g) if is_pq_group(g) => "hybrid",
        Some(_) => "classical",
        None => "none",
    };
    [version, cipher_class(hs), forward_secrecy(hs), pq]
}
