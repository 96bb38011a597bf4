//! Sink, Prometheus metrics: recording — what one judged handshake or flow counts, and the
//! totals brought in from the pipeline, the kernel, the ring-buffer reader, the inventory, the
//! replay, the alerter and the HTTP endpoint. Must never create a series outside the closed
//! sets, nor lower a counter.
use prometheus::core::{AtomicU64 as PromU64, GenericCounter};

use super::{
    handshake_labels, Metrics, ATTRIBUTION_RESULTS, EXPIRY_WINDOWS, PROBE_RESULTS, PROBE_TARGETS, SKIP_REASONS,
};
use crate::observation::{DecodeStats, Output, PipelineStats};
use crate::sink::inventory::Inventory;

/// Finding ids whose count is also a parse anomaly, and the anomaly's label.
const ANOMALY_FINDINGS: &[(&str, &str)] = &[
    ("anomaly.malformed-record", "malformed_record"),
    ("anomaly.malformed-handshake", "malformed_handshake"),
    ("anomaly.truncated-handshake", "truncated_handshake"),
];

/// Raise a counter to a total kept elsewhere (pipeline, kernel, reader stats): counters only
/// go up, so a smaller total (never expected) is ignored.
fn mirror(c: &GenericCounter<PromU64>, total: u64) {
    let cur = c.get();
    if total > cur {
        c.inc_by(total - cur);
    }
}

impl Metrics {
    /// Count one judged handshake or plaintext flow.
    pub fn observe(&self, o: &Output) {
        let hs = o.handshake();
        if hs.is_some_and(|h| h.probe.is_some()) {
            // The prober's own handshakes are not traffic: counted as probes (see `probes`).
            self.events.with_label_values(&["probe"]).inc();
        } else if let Some(hs) = hs {
            self.events.with_label_values(&["tls"]).inc();
            let [version, class, pfs, pq] = handshake_labels(hs);
            self.versions.with_label_values(&[version]).inc();
            self.cipher_classes.with_label_values(&[class]).inc();
            self.pfs.with_label_values(&[pfs]).inc();
            self.pq.with_label_values(&[pq]).inc();
        }
        if let Some(proto) = o.plaintext().and_then(|p| p.facts.protocol) {
            self.events.with_label_values(&["plaintext"]).inc();
            self.plaintext.with_label_values(&[proto.as_str()]).inc();
            if o.findings.iter().any(|f| f.id == "plaintext.phi" && !f.is_accepted()) {
                self.plaintext_phi.with_label_values(&[proto.as_str()]).inc();
            }
        }
        if let Some(s) = o.ssh() {
            self.events.with_label_values(&["ssh"]).inc();
            self.ssh_kex.with_label_values(&[s.facts.kex_class()]).inc();
        }
        for f in &o.findings {
            if f.is_accepted() {
                self.accepted.with_label_values(&[f.id]).inc();
            } else {
                self.findings.with_label_values(&[f.id, f.severity.as_str()]).inc();
            }
            if let Some((_, kind)) = ANOMALY_FINDINGS.iter().find(|(id, _)| *id == f.id) {
                self.anomalies.with_label_values(&[kind]).inc();
            }
        }
    }

    /// Bring the pipeline's counters in (flows, drops, packet anomalies).
    pub fn pipeline(&self, s: &PipelineStats) {
        mirror(&self.anomalies.with_label_values(&["truncated_packet"]), s.truncated_packets);
        mirror(&self.flows.with_label_values(&["created"]), s.flows.created);
        mirror(&self.flows.with_label_values(&["expired"]), s.flows.expired);
        mirror(&self.flows.with_label_values(&["evicted"]), s.flows.evicted);
        mirror(&self.dropped.with_label_values(&["reassembly_pending"]), s.head.pending_dropped);
        mirror(&self.dropped.with_label_values(&["head_budget"]), s.head.beyond_budget);
        mirror(&self.dropped.with_label_values(&["memory_budget_flows"]), s.memory.evicted_flows);
        mirror(&self.dropped.with_label_values(&["memory_budget_bytes"]), s.memory.evicted_bytes);
        let m = s.memory;
        for (of, v) in [("held", m.held), ("peak", m.peak), ("limit", m.limit)] {
            self.memory.with_label_values(&[of]).set(v.min(i64::MAX as u64) as i64);
        }
        mirror(&self.dropped.with_label_values(&["plain_bytes_cap"]), s.plain_bytes_dropped);
        mirror(&self.dropped.with_label_values(&["quic_crypto_cap"]), s.quic.crypto_dropped);
        mirror(&self.dropped.with_label_values(&["dtls_handshake_cap"]), s.dtls.dropped);
        mirror(&self.cert_cache_evicted, s.cert_cache_evicted);
    }

    /// Bring the source's counters in: packets and bytes seen, and why some were not inspected
    /// (the same fields from a capture file and from the kernel program).
    pub fn source(&self, s: &DecodeStats) {
        mirror(&self.packets, s.packets);
        mirror(&self.packet_bytes, s.bytes);
        let skipped =
            [s.skipped_link, s.skipped_not_ip, s.skipped_not_tcp_udp, s.skipped_fragment, s.skipped_malformed];
        for (reason, n) in SKIP_REASONS.iter().zip(skipped) {
            mirror(&self.skipped.with_label_values(&[reason]), n);
        }
        mirror(&self.anomalies.with_label_values(&["malformed_packet"]), s.skipped_malformed);
        mirror(&self.anomalies.with_label_values(&["bad_timestamp"]), s.bad_timestamps);
    }

    /// Bring the kernel program's counters in (`counter::NAMES` order), live only.
    pub fn kernel<'a>(&self, named: impl IntoIterator<Item = (&'a str, u64)>) {
        let Some(k) = &self.kernel else { return };
        for (name, v) in named {
            mirror(&k.with_label_values(&[name]), v);
            match name {
                "ringbuf_full" => mirror(&self.dropped.with_label_values(&["ringbuf_full"]), v),
                "flow_map_full" => mirror(&self.dropped.with_label_values(&["flow_map_full"]), v),
                _ => {}
            }
        }
    }

    /// The ring-buffer reader's totals: records taken and records that did not parse (live).
    pub fn reader(&self, records: u64, bad_records: u64) {
        if let Some(c) = &self.ringbuf_records {
            mirror(c, records);
        }
        mirror(&self.anomalies.with_label_values(&["bad_record"]), bad_records);
    }

    /// Servers by verdict and certificate expiry from the posture inventory, and its drops.
    pub fn inventory(&self, inv: &Inventory) {
        let non = inv.non_compliant() as i64;
        self.servers.with_label_values(&["non-compliant"]).set(non);
        self.servers.with_label_values(&["compliant"]).set(inv.servers.len() as i64 - non);
        let mut within = [0i64; EXPIRY_WINDOWS.len()];
        let mut expired = 0;
        for cert in inv.servers.values().filter_map(|p| p.cert.as_ref()) {
            let left = cert.not_after_unix - cert.seen_unix;
            if left < 0 {
                expired += 1;
                continue;
            }
            for (n, (_, days)) in within.iter_mut().zip(EXPIRY_WINDOWS) {
                *n += i64::from(left < days * 86_400);
            }
        }
        for (n, (w, _)) in within.iter().zip(EXPIRY_WINDOWS) {
            self.cert_expiring.with_label_values(&[w]).set(*n);
        }
        self.cert_expired.set(expired);
        mirror(&self.dropped.with_label_values(&["inventory_full"]), inv.servers_dropped);
    }

    /// Process attribution's counters (live).
    pub fn attribution(&self, s: &crate::attribution::AttributionStats) {
        for (result, n) in ATTRIBUTION_RESULTS.iter().zip([s.attributed, s.owner_missing, s.cgroup_unresolved]) {
            mirror(&self.attribution.with_label_values(&[result]), n);
        }
    }

    /// The prober's counters (`--probe`).
    pub fn probes(&self, s: &crate::probe::ProbeStats) {
        for (result, n) in PROBE_RESULTS.iter().zip(s.ended) {
            mirror(&self.probes.with_label_values(&[result]), n);
        }
        let q = &s.queue;
        for (outcome, n) in PROBE_TARGETS.iter().zip([q.queued, q.recent, q.out_of_scope]) {
            mirror(&self.probe_targets.with_label_values(&[outcome]), n);
        }
        mirror(&self.dropped.with_label_values(&["probe_queue_full"]), q.dropped_full);
        mirror(&self.dropped.with_label_values(&["probe_results"]), s.results_dropped);
        mirror(&self.dropped.with_label_values(&["probe_own_flows"]), s.own_flows);
        self.probe_queue.with_label_values(&["pending"]).set(s.pending as i64);
        self.probe_queue.with_label_values(&["in_flight"]).set(s.in_flight as i64);
    }

    /// Replay progress: bytes read so far in all files.
    pub fn replay_read(&self, total_bytes: u64) {
        if let Some(c) = &self.replay_read {
            mirror(c, total_bytes);
        }
    }

    /// Replay plan and progress: known size of all files, files in all and files done.
    pub fn replay_files(&self, size: u64, total: usize, done: usize, finished: bool) {
        if let (Some(s), Some(f), Some(fin)) = (&self.replay_size, &self.replay_files, &self.replay_finished) {
            s.set(size as i64);
            f.with_label_values(&["total"]).set(total as i64);
            f.with_label_values(&["done"]).set(done as i64);
            fin.set(i64::from(finished));
        }
    }

    /// The Alertmanager sink's totals.
    pub fn alerts(&self, sent: u64, post_errors: u64, dropped: u64, active: u64) {
        mirror(&self.alerts_sent, sent);
        mirror(&self.alert_errors, post_errors);
        mirror(&self.dropped.with_label_values(&["alert_queue_full"]), dropped);
        self.alerts_active.set(active as i64);
    }

    /// The latest signed audit checkpoint: the `seq` it signs, and when this process signed it.
    pub fn audit_checkpoint(&self, seq: u64, signed_at: Option<i64>) {
        self.audit_checkpoint_seq.set(i64::try_from(seq).unwrap_or(i64::MAX));
        if let Some(t) = signed_at {
            self.audit_checkpoint_time.set(t);
        }
    }

    /// The HTTP endpoint's request counts by (route, code).
    pub fn http(&self, requests: impl IntoIterator<Item = (&'static str, u16, u64)>) {
        for (route, code, n) in requests {
            mirror(&self.http.with_label_values(&[route, &code.to_string()]), n);
        }
    }
}
