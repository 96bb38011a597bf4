//! Sink, Prometheus metrics: what the pipeline judged (handshakes by version, cipher class,
//! forward secrecy and key-exchange group; findings; plaintext flows) and the agent's health
//! (kernel counters, ring buffer, drops, flows, replay progress, alert posting, HTTP), in the
//! text format served at /metrics and written by `replay --metrics-out`.
//!
//! Labels only ever take values from the closed sets in [`label_sets`]: never addresses, ports,
//! SNI, certificate subjects or anything else from the traffic, so the series count stays fixed
//! on a network of any size. Every combination of those sets is created at 0 up front, so a
//! rule's `increase()` sees the first occurrence.
use std::collections::{BTreeMap, BTreeSet};

use prometheus::core::{AtomicU64 as PromU64, GenericCounter};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::inspect::names::{is_pq_group, version_parts};
use crate::inspect::plaintext::Protocol;
use crate::observation::Handshake;
use crate::observation::{DecodeStats, Output, PipelineStats};
use crate::policy::{cipher_class, forward_secrecy, FINDING_IDS};
use crate::sink::inventory::Inventory;

/// `tlsmon_handshakes_total{version}`: "none" when there was no ServerHello.
pub const VERSIONS: &[&str] = &["ssl2", "ssl3", "tls1.0", "tls1.1", "tls1.2", "tls1.3", "unknown", "none"];
/// `tlsmon_handshakes_cipher_class_total{class}` (see [`cipher_class`]).
pub const CIPHER_CLASSES: &[&str] = &["aead", "cbc", "legacy", "insecure", "other", "none"];
/// `tlsmon_handshakes_forward_secrecy_total{pfs}` (see [`forward_secrecy`]).
pub const PFS: &[&str] = &["yes", "no", "unknown"];
/// `tlsmon_handshakes_pq_total{pq}`: a post-quantum hybrid group, a classical one, or none.
pub const PQ: &[&str] = &["hybrid", "classical", "none"];
pub const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];
pub const EVENT_TYPES: &[&str] = &["tls", "plaintext"];
/// `tlsmon_parse_anomalies_total{kind}`.
pub const ANOMALIES: &[&str] = &[
    "malformed_packet",
    "truncated_packet",
    "malformed_record",
    "malformed_handshake",
    "truncated_handshake",
    "bad_record",
];
/// `tlsmon_flows_total{event}`.
pub const FLOW_EVENTS: &[&str] = &["created", "expired", "evicted"];
/// `tlsmon_dropped_total{what}`: every place the agent refuses data it was given.
pub const DROPPED: &[&str] =
    &["ringbuf_full", "flow_map_full", "reassembly_pending", "plain_bytes_cap", "inventory_full", "alert_queue_full"];
/// `tlsmon_certificates_expiring{within}`, in days.
pub const EXPIRY_WINDOWS: &[(&str, i64)] = &[("7d", 7), ("30d", 30), ("90d", 90)];
pub const VERDICTS: &[&str] = &["compliant", "non-compliant"];
pub const REPLAY_FILES: &[&str] = &["total", "done"];

/// Finding ids whose count is also a parse anomaly, and the anomaly's label.
const ANOMALY_FINDINGS: &[(&str, &str)] = &[
    ("anomaly.malformed-record", "malformed_record"),
    ("anomaly.malformed-handshake", "malformed_handshake"),
    ("anomaly.truncated-handshake", "truncated_handshake"),
];

/// Which run the metrics describe, and which optional parts it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    Replay,
}

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
    anomalies: IntCounterVec,
    flows: IntCounterVec,
    dropped: IntCounterVec,
    kernel: Option<IntCounterVec>,
    ringbuf_records: Option<IntCounter>,
    replay_read: Option<IntCounter>,
    replay_size: Option<IntGauge>,
    replay_files: Option<IntGaugeVec>,
    replay_finished: Option<IntGauge>,
    alerts_sent: IntCounter,
    alert_errors: IntCounter,
    alerts_active: IntGauge,
    http: IntCounterVec,
    servers: IntGaugeVec,
    cert_expiring: IntGaugeVec,
    cert_expired: IntGauge,
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

/// Raise a counter to a total kept elsewhere (pipeline, kernel, reader stats): counters only
/// go up, so a smaller total (never expected) is ignored.
fn mirror(c: &GenericCounter<PromU64>, total: u64) {
    let cur = c.get();
    if total > cur {
        c.inc_by(total - cur);
    }
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
                "Events emitted: judged TLS handshakes (type=tls) and plaintext flows with a recognised protocol (type=plaintext)",
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
                "Data the agent had to drop, by where: kernel ring buffer or flow map full, out-of-order segments over the bound, plaintext bytes over the all-flows cap, servers over the inventory bound, alerts over the Alertmanager queue",
                &["what"],
                &[DROPPED],
            ),
            kernel: live.then(|| {
                counter_vec(
                    &r,
                    "tlsmon_kernel_counter_total",
                    "Counters of the eBPF program summed over CPUs (packets seen, skip reasons, records, ring-buffer full …)",
                    &["counter"],
                    &[&monitor_common::counter::NAMES],
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
            registry: r,
        }
    }

    /// Count one judged handshake or plaintext flow.
    pub fn observe(&self, o: &Output) {
        if let Some(hs) = o.handshake() {
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
        mirror(&self.dropped.with_label_values(&["plain_bytes_cap"]), s.plain_bytes_dropped);
    }

    /// Bring the source's decode counters in (packets it could not decode).
    pub fn source(&self, s: &DecodeStats) {
        mirror(&self.anomalies.with_label_values(&["malformed_packet"]), s.skipped_malformed);
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

    /// The HTTP endpoint's request counts by (route, code).
    pub fn http(&self, requests: impl IntoIterator<Item = (&'static str, u16, u64)>) {
        for (route, code, n) in requests {
            mirror(&self.http.with_label_values(&[route, &code.to_string()]), n);
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
        assert_eq!(sets["tlsmon_kernel_counter_total"]["counter"].len(), monitor_common::counter::NAMES.len());
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
