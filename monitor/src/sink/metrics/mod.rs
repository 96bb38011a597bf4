//! Sink, Prometheus metrics: what the pipeline judged (handshakes by version, cipher class,
//! forward secrecy and key-exchange group; findings; plaintext flows) and the agent's health
//! (kernel counters, ring buffer, drops, flows, replay progress, alert posting, HTTP), in the
//! text format served at /metrics and written by `replay --metrics-out`.
//!
//! Labels only ever take values from the closed sets in [`label_sets`]: never addresses, ports,
//! SNI, certificate subjects or anything else from the traffic, so the series count stays fixed
//! on a network of any size. Every combination of those sets is created at 0 up front, so a
//! rule's `increase()` sees the first occurrence.
mod labels;
mod record;

use monitor_common::counter;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub use labels::*;

use crate::inspect::plaintext::Protocol;
use crate::policy::FINDING_IDS;

/// Which run the metrics describe, and which optional parts it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Replay,
}

/// All tlsmon metrics, registered in their own registry. Cheap to update (atomic counters);
/// `Sync`, so the HTTP thread can encode while the pipeline thread counts.
pub struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    versions: IntCounterVec,
    cipher_classes: IntCounterVec,
    pfs: IntCounterVec,
    pq: IntCounterVec,
    findings: IntCounterVec,
    accepted: IntCounterVec,
    plaintext: IntCounterVec,
    plaintext_phi: IntCounterVec,
    ssh_kex: IntCounterVec,
    anomalies: IntCounterVec,
    flows: IntCounterVec,
    dropped: IntCounterVec,
    memory: IntGaugeVec,
    cert_cache_evicted: IntCounter,
    packets: IntCounter,
    packet_bytes: IntCounter,
    skipped: IntCounterVec,
    kernel: Option<IntCounterVec>,
    ringbuf_records: Option<IntCounter>,
    replay_read: Option<IntCounter>,
    replay_size: Option<IntGauge>,
    replay_files: Option<IntGaugeVec>,
    replay_finished: Option<IntGauge>,
    alerts_sent: IntCounter,
    alert_errors: IntCounter,
    alerts_active: IntGauge,
    audit_checkpoint_seq: IntGauge,
    audit_checkpoint_time: IntGauge,
    http: IntCounterVec,
    servers: IntGaugeVec,
    cert_expiring: IntGaugeVec,
    cert_expired: IntGauge,
    probes: IntCounterVec,
    probe_targets: IntCounterVec,
    probe_queue: IntGaugeVec,
    attribution: IntCounterVec,
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &[&str], values: &[&[&str]]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), label).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    // Every combination at 0 (values[i] are the closed values of label[i]).
    let mut combos: Vec<Vec<&str>> = vec![vec![]];
    for set in values {
        combos = combos.iter().flat_map(|c| set.iter().map(move |v| [c.as_slice(), &[*v]].concat())).collect();
    }
    for combo in combos {
        c.with_label_values(&combo);
    }
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn gauge_vec(r: &Registry, name: &str, help: &str, label: &str, values: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    for v in values {
        g.with_label_values(&[v]);
    }
    g
}

impl Metrics {
    pub fn new(mode: Mode) -> Metrics {
        let r = Registry::new();
        let protocols: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
        let live = mode == Mode::Live;
        let http_codes: Vec<String> = crate::serve::CODES.iter().map(u16::to_string).collect();
        let replay = mode == Mode::Replay;
        let info = IntGaugeVec::new(
            Opts::new("tlsmon_build_info", "tlsmon's version and mode (live or replay); always 1"),
            &["version", "mode"],
        )
        .expect("valid metric");
        r.register(Box::new(info.clone())).expect("unique metric");
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), if live { "live" } else { "replay" }]).set(1);
        let start = gauge(&r, "tlsmon_start_time_seconds", "When this tlsmon process started, in Unix seconds");
        start.set(time::OffsetDateTime::now_utc().unix_timestamp());
        Metrics {
            events: counter_vec(
                &r,
                "tlsmon_events_total",
                "Events emitted: judged TLS handshakes (type=tls), plaintext flows with a recognised protocol (type=plaintext), SSH sessions (type=ssh), the prober's handshakes (type=probe)",
                &["type"],
                &[EVENT_TYPES],
            ),
            versions: counter_vec(
                &r,
                "tlsmon_handshakes_total",
                "TLS handshakes judged, by negotiated version (none: no ServerHello seen)",
                &["version"],
                &[VERSIONS],
            ),
            cipher_classes: counter_vec(
                &r,
                "tlsmon_handshakes_cipher_class_total",
                "TLS handshakes by class of the negotiated cipher suite (aead, cbc, legacy 64-bit block, insecure, other, none)",
                &["class"],
                &[CIPHER_CLASSES],
            ),
            pfs: counter_vec(
                &r,
                "tlsmon_handshakes_forward_secrecy_total",
                "TLS handshakes by forward secrecy of the key exchange (no: static RSA/DH or TLS 1.3 psk_ke)",
                &["pfs"],
                &[PFS],
            ),
            pq: counter_vec(
                &r,
                "tlsmon_handshakes_pq_total",
                "TLS handshakes by key-exchange group: post-quantum hybrid (e.g. X25519MLKEM768), classical, or none",
                &["pq"],
                &[PQ],
            ),
            findings: counter_vec(
                &r,
                "tlsmon_findings_total",
                "Findings raised (not counting those accepted by a config-file exception), by finding id and severity",
                &["id", "severity"],
                &[FINDING_IDS, SEVERITIES],
            ),
            accepted: counter_vec(
                &r,
                "tlsmon_findings_accepted_total",
                "Findings accepted by a config-file exception valid at the time, by finding id",
                &["id"],
                &[FINDING_IDS],
            ),
            plaintext: counter_vec(
                &r,
                "tlsmon_plaintext_flows_total",
                "Flows that stayed in clear with a recognised protocol, by protocol",
                &["protocol"],
                &[&protocols],
            ),
            plaintext_phi: counter_vec(
                &r,
                "tlsmon_plaintext_phi_flows_total",
                "Flows that carried health data in clear (finding plaintext.phi), by protocol",
                &["protocol"],
                &[&protocols],
            ),
            ssh_kex: counter_vec(
                &r,
                "tlsmon_ssh_kex_total",
                "SSH sessions by the class of their negotiated key exchange: pq-hybrid, ecdh, dh, weak (SHA-1 or 1024-bit, RFC 9142), other, none",
                &["class"],
                &[SSH_KEX_CLASSES],
            ),
            anomalies: counter_vec(
                &r,
                "tlsmon_parse_anomalies_total",
                "Input tlsmon could not parse: malformed or truncated packets, TLS records and handshakes, bad ring-buffer records",
                &["kind"],
                &[ANOMALIES],
            ),
            flows: counter_vec(
                &r,
                "tlsmon_flows_total",
                "Flows in the agent's flow table: created, expired (idle) and evicted (table full: judged early)",
                &["event"],
                &[FLOW_EVENTS],
            ),
            dropped: counter_vec(
                &r,
                "tlsmon_dropped_total",
                "Data the agent had to drop, by where: kernel ring buffer or flow map full, out-of-order segments over the bound, segments past a head budget before the flow was judged, flows (and their bytes) judged early at the memory budget, plaintext bytes over the all-flows cap, servers over the inventory bound, alerts over the Alertmanager queue",
                &["what"],
                &[DROPPED],
            ),
            memory: gauge_vec(
                &r,
                "tlsmon_pipeline_memory_bytes",
                "Bytes the open flows hold (state, out-of-order segments, partial records, clear bytes): now, at most so far, and the budget (--max-memory-mb)",
                "of",
                MEMORY,
            ),
            cert_cache_evicted: counter(
                &r,
                "tlsmon_cert_cache_evicted_total",
                "Parsed certificates the certificate cache forgot to stay within its bound (a speed cache: they are parsed again when seen again, nothing is lost)",
            ),
            packets: counter(
                &r,
                "tlsmon_packets_total",
                "Packets the source saw: frames read (replay) or packets the eBPF program saw on the attached interfaces (live)",
            ),
            packet_bytes: counter(&r, "tlsmon_packet_bytes_total", "Bytes of the packets the source saw"),
            skipped: counter_vec(
                &r,
                "tlsmon_packets_skipped_total",
                "Packets the source saw but could not inspect, by reason: unknown link type, not IP, neither TCP nor UDP, non-first IP fragment, malformed headers",
                &["reason"],
                &[SKIP_REASONS],
            ),
            kernel: live.then(|| {
                let names: Vec<&str> = counter::NAMES.iter().chain(&counter::DERIVED).copied().collect();
                counter_vec(
                    &r,
                    "tlsmon_kernel_counter_total",
                    "Counters of the eBPF program summed over CPUs (packets seen, skip reasons, records, ring-buffer full, flows opened and closed …) and flows_evicted, derived from them and the flow maps every 10 s",
                    &["counter"],
                    &[&names],
                )
            }),
            ringbuf_records: live.then(|| {
                counter(&r, "tlsmon_ringbuf_records_total", "Records the agent took from the kernel ring buffer")
            }),
            replay_read: replay
                .then(|| counter(&r, "tlsmon_replay_read_bytes_total", "Bytes of captured frames replayed so far")),
            replay_size: replay.then(|| {
                gauge(&r, "tlsmon_replay_size_bytes", "Total size of the capture files to replay (0 when reading stdin)")
            }),
            replay_files: replay.then(|| {
                gauge_vec(&r, "tlsmon_replay_files", "Capture files to replay (total) and replayed (done)", "state", REPLAY_FILES)
            }),
            replay_finished: replay
                .then(|| gauge(&r, "tlsmon_replay_finished", "1 once every capture file was replayed and every flow judged")),
            alerts_sent: counter(&r, "tlsmon_alerts_sent_total", "Alerts posted to Alertmanager (each alert of a batch)"),
            alert_errors: counter(&r, "tlsmon_alert_post_errors_total", "Failed attempts to post alerts to Alertmanager"),
            alerts_active: gauge(&r, "tlsmon_alerts_active", "(server, finding) alerts currently active at Alertmanager"),
            audit_checkpoint_seq: gauge(
                &r,
                "tlsmon_audit_checkpoint_seq",
                "seq of the audit log line signed by the latest checkpoint (--audit-sign-key); 0 before the first",
            ),
            audit_checkpoint_time: gauge(
                &r,
                "tlsmon_audit_checkpoint_time_seconds",
                "When this process last signed an audit log checkpoint, in Unix seconds; 0 before the first",
            ),
            http: counter_vec(
                &r,
                "tlsmon_http_requests_total",
                "Requests to the agent's HTTP endpoint, by route and status code",
                &["route", "code"],
                // The endpoint's own closed sets (`tlsmon_http_requests_total{route,code}`).
                &[crate::serve::ROUTES, &http_codes.iter().map(String::as_str).collect::<Vec<_>>()],
            ),
            servers: gauge_vec(
                &r,
                "tlsmon_servers",
                "Servers in the posture inventory by verdict under the profile (non-compliant: a finding of medium or worse)",
                "verdict",
                VERDICTS,
            ),
            cert_expiring: gauge_vec(
                &r,
                "tlsmon_certificates_expiring",
                "Servers whose leaf certificate had less than this left (and had not expired) when last seen",
                "within",
                &EXPIRY_WINDOWS.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
            ),
            cert_expired: gauge(
                &r,
                "tlsmon_certificates_expired",
                "Servers whose leaf certificate had expired when last seen",
            ),
            attribution: counter_vec(
                &r,
                "tlsmon_attribution_total",
                "Local sockets of judged flows (live): named by their process, without an owner in the kernel's map, or named with a cgroup no path was found for",
                &["result"],
                &[ATTRIBUTION_RESULTS],
            ),
            probes: counter_vec(
                &r,
                "tlsmon_probes_total",
                "Probes of the opt-in certificate prober (--probe) by how they ended",
                &["result"],
                &[PROBE_RESULTS],
            ),
            probe_targets: counter_vec(
                &r,
                "tlsmon_probe_targets_total",
                "Servers offered to the prober: queued, already probed within the interval, or outside the allowlist (never contacted)",
                &["outcome"],
                &[PROBE_TARGETS],
            ),
            probe_queue: gauge_vec(
                &r,
                "tlsmon_probe_queue",
                "Servers waiting for a probe, and probes running",
                "state",
                PROBE_QUEUE,
            ),
            registry: r,
        }
    }

    /// Everything in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding our own registry into a Vec cannot fail (names and labels are valid).
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sample lines `name{labels} value` of the exposition text, without comments.
    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
    }

    #[test]
    fn every_closed_combination_starts_at_zero() {
        let m = Metrics::new(Mode::Replay);
        let text = m.encode();
        let s = samples(&text);
        let findings = s.iter().filter(|l| l.starts_with("tlsmon_findings_total{")).count();
        assert_eq!(findings, FINDING_IDS.len() * SEVERITIES.len());
        assert!(s.contains(&r#"tlsmon_handshakes_total{version="tls1.0"} 0"#), "{text}");
        assert!(s.contains(&r#"tlsmon_plaintext_phi_flows_total{protocol="hl7"} 0"#));
        assert!(!text.contains("tlsmon_kernel_counter_total"), "no kernel metrics in replay");
        assert!(text.contains("# HELP tlsmon_dropped_total "));
        let live = Metrics::new(Mode::Live).encode();
        assert!(live.contains(r#"tlsmon_kernel_counter_total{counter="ringbuf_full"} 0"#));
        assert!(!live.contains("tlsmon_replay_"));
    }

    #[test]
    fn label_sets_are_the_series_at_start() {
        let sets = label_sets();
        assert_eq!(sets["tlsmon_handshakes_total"]["version"].len(), VERSIONS.len());
        assert_eq!(sets["tlsmon_findings_total"]["id"].len(), FINDING_IDS.len());
        let kernel = &sets["tlsmon_kernel_counter_total"]["counter"];
        assert_eq!(kernel.len(), counter::NAMES.len() + counter::DERIVED.len());
        assert!(kernel.contains("flows_evicted"));
        let modes: Vec<&str> = sets["tlsmon_build_info"]["mode"].iter().map(String::as_str).collect();
        assert_eq!(modes, ["live", "replay"]);
        assert!(!sets.contains_key("tlsmon_certificates_expired"), "unlabelled metrics have no set");
    }

    #[test]
    fn mirrored_totals_only_rise() {
        let m = Metrics::new(Mode::Live);
        m.kernel([("ringbuf_full", 5), ("packets", 10)]);
        m.kernel([("ringbuf_full", 3), ("packets", 12)]);
        let text = m.encode();
        assert!(text.contains(r#"tlsmon_kernel_counter_total{counter="ringbuf_full"} 5"#), "{text}");
        assert!(text.contains(r#"tlsmon_dropped_total{what="ringbuf_full"} 5"#));
        assert!(text.contains(r#"tlsmon_kernel_counter_total{counter="packets"} 12"#));
        // The agent's derived figure goes through the same family (KernelCounters::named).
        m.kernel([("flows_evicted", 4)]);
        assert!(m.encode().contains(r#"tlsmon_kernel_counter_total{counter="flows_evicted"} 4"#));
        // The pipeline's bounded caches too: what the certificate cache forgot.
        let stats = |n| crate::observation::PipelineStats { cert_cache_evicted: n, ..Default::default() };
        m.pipeline(&stats(7));
        m.pipeline(&stats(6));
        assert!(m.encode().contains("tlsmon_cert_cache_evicted_total 7"));
    }

    #[test]
    fn every_metric_has_help() {
        let text = Metrics::new(Mode::Live).encode();
        for line in samples(&text) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help");
            assert!(name.starts_with("tlsmon_"), "{name}");
        }
    }
}
