//! Sink, period report (`tlsmon report`, `tlsmon replay --report html`): one model of a period
//! built from JSON events — the posture inventory (the one source of fix lines), the posture
//! per UTC day, plaintext flows by protocol, and what could not be seen — with the audit logs'
//! verification stamps, rendered as HTML, Markdown or JSON. Bounded (servers as the inventory,
//! days, protocols); must never keep a payload or a PHI value, only the events' metadata.
pub mod fields;
pub mod html;
pub mod json;
pub mod markdown;
pub mod read;
mod sections;
mod svg;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::inspect::names::version_name;
use crate::observation::Output;
use crate::policy::Severity;
use crate::sink::inventory::{Added, Inventory, ServerKey};
use fields::Ev;

pub use read::{read_logs, ReportError, Stamp};

/// Most UTC days kept (ten years); events of further days are counted in `days_dropped`.
pub const MAX_DAYS: usize = 3660;
/// Most distinct plaintext protocols and skipped line types kept.
const MAX_KEYS: usize = 64;
/// Severities, worst first (the order of every table and chart).
pub const SEVERITIES: [Severity; 5] =
    [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];

pub use crate::cli::PeriodFormat;

/// The posture of one UTC day.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Day {
    /// TLS handshakes (probes not counted).
    pub handshakes: u64,
    /// Handshakes by negotiated version ("TLS 1.2"); "none" when none was negotiated.
    pub versions: BTreeMap<String, u64>,
    /// Handshakes that negotiated a suite, and of those with forward secrecy / a post-quantum group.
    pub negotiated: u64,
    pub pfs: u64,
    pub pq: u64,
    /// Findings not accepted, by severity ("critical" …).
    pub findings: BTreeMap<&'static str, u64>,
    /// Findings an exception accepted.
    pub accepted: u64,
    pub plaintext_flows: u64,
    pub ssh_sessions: u64,
    pub probes: u64,
}

/// Flows in clear of one protocol: all of them, and those raising `plaintext.phi`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PlainRow {
    pub flows: u64,
    pub phi_flows: u64,
}

/// The period report's model.
#[derive(Debug)]
pub struct Period {
    /// The title's subject: the logs or the captures read.
    pub sources: Vec<String>,
    /// Events before `since` or from `until` on (Unix ns) are left out.
    pub since: Option<i128>,
    pub until: Option<i128>,
    pub inventory: Inventory,
    /// The reporting agents: one verification stamp per audit-log series (none in a replay).
    pub stamps: Vec<Stamp>,
    /// Per server, the agents that reported it (indexes into `stamps`).
    pub seen_by: HashMap<ServerKey, BTreeSet<usize>>,
    pub days: BTreeMap<String, Day>,
    pub days_dropped: u64,
    pub plaintext: BTreeMap<String, PlainRow>,
    /// Handshakes over UDP by protocol (quic, dtls).
    pub udp: BTreeMap<String, u64>,
    /// Events read, and the first and last event time in the period (Unix ns).
    pub events: u64,
    pub first_ns: Option<i128>,
    pub last_ns: Option<i128>,
    /// Events outside the period; lines that are no event by their type (checkpoints …);
    /// lines that are not JSON or carry no time; findings with ids this build does not know.
    pub outside: u64,
    pub skipped: BTreeMap<String, u64>,
    pub unreadable: u64,
    pub unknown_findings: u64,
    pub keys_dropped: u64,
}

/// Forward secrecy by name: TLS 1.3, or an (EC)DHE key exchange.
fn is_pfs(version: Option<u16>, cipher: &str) -> bool {
    matches!(version, Some(0x0304 | 0xfefc)) || cipher.contains("ECDHE") || cipher.contains("_DHE_")
}

/// A post-quantum (hybrid or pure ML-KEM / Kyber) group, by name.
fn is_pq(curve: &str) -> bool {
    let c = curve.to_ascii_lowercase();
    c.contains("mlkem") || c.contains("kyber")
}

/// "2026-11-30" of a Unix-ns time.
pub fn day_name(ns: i128) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns).map(|t| t.date().to_string()).unwrap_or_else(|_| "-".into())
}

/// RFC 3339 of a Unix-ns time.
pub fn time_name(ns: i128) -> String {
    crate::sink::json::rfc3339(u64::try_from(ns).unwrap_or(0))
}

/// `n` of `d` in percent, one decimal (0 of 0 is 0): the same figure in every format.
pub fn share(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / d as f64).round() / 10.0
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, dropped: &mut u64) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if map.len() < MAX_KEYS {
        map.insert(key.to_string(), 1);
    } else {
        *dropped += 1;
    }
}

impl Period {
    pub fn new(inventory: Inventory, sources: Vec<String>, since: Option<i128>, until: Option<i128>) -> Period {
        Period {
            sources,
            since,
            until,
            inventory,
            stamps: Vec::new(),
            seen_by: HashMap::new(),
            days: BTreeMap::new(),
            days_dropped: 0,
            plaintext: BTreeMap::new(),
            udp: BTreeMap::new(),
            events: 0,
            first_ns: None,
            last_ns: None,
            outside: 0,
            skipped: BTreeMap::new(),
            unreadable: 0,
            unknown_findings: 0,
            keys_dropped: 0,
        }
    }

    /// Fold in one output of a replay, through its JSON event: the same path as a log line.
    pub fn add_output(&mut self, o: &Output) {
        let style = crate::sink::json::Style { legacy: false, ..Default::default() };
        match serde_json::to_value(crate::sink::json::any_event(o, &style)) {
            Ok(v) => self.add(&v, None),
            Err(_) => self.unreadable += 1,
        }
    }

    /// Fold in one event (a JSON line), reported by the agent `agent` (an index into `stamps`).
    pub fn add(&mut self, v: &Value, agent: Option<usize>) {
        let ev = Ev(v);
        let kind = ev.kind().unwrap_or("(no type)");
        if !matches!(kind, "tls" | "probe" | "plaintext" | "ssh") {
            bump(&mut self.skipped, kind, &mut self.keys_dropped);
            return;
        }
        let Some(t) = ev.time_ns() else {
            self.unreadable += 1;
            return;
        };
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
            self.outside += 1;
            return;
        }
        self.events += 1;
        self.first_ns = Some(self.first_ns.map_or(t, |f| f.min(t)));
        self.last_ns = Some(self.last_ns.map_or(t, |l| l.max(t)));
        if let Added::Server(key) = self.inventory.add_event(&ev, &mut self.unknown_findings) {
            if let Some(a) = agent {
                self.seen_by.entry(key).or_default().insert(a);
            }
        }
        let name = day_name(t);
        if !self.days.contains_key(&name) && self.days.len() >= MAX_DAYS {
            self.days_dropped += 1;
            return;
        }
        let day = self.days.entry(name).or_default();
        match kind {
            "tls" => {
                day.handshakes += 1;
                let version = ev.version();
                let vname = version.map_or_else(|| "none".to_string(), version_name);
                *day.versions.entry(vname).or_default() += 1;
                if let Some(c) = ev.cipher() {
                    day.negotiated += 1;
                    day.pfs += u64::from(is_pfs(version, c));
                    day.pq += u64::from(ev.curve().is_some_and(is_pq));
                }
                if let Some(p) = ev.network_protocol().filter(|_| ev.transport() == Some("udp")) {
                    bump(&mut self.udp, p, &mut self.keys_dropped);
                }
            }
            "probe" => day.probes += 1,
            "ssh" => day.ssh_sessions += 1,
            _ => {
                day.plaintext_flows += 1;
                let proto = ev.plaintext_protocol().unwrap_or("unknown");
                if !self.plaintext.contains_key(proto) && self.plaintext.len() >= MAX_KEYS {
                    self.keys_dropped += 1;
                } else {
                    let row = self.plaintext.entry(proto.to_string()).or_default();
                    row.flows += 1;
                    row.phi_flows += u64::from(ev.findings().any(|f| f.id == "plaintext.phi"));
                }
            }
        }
        for f in ev.findings() {
            if self.inventory.profile.is_empty() {
                // A log does not name its profile; every finding's rule does ("hipaa/min-version").
                if let Some((profile, _)) = f.rule.split_once('/') {
                    self.inventory.profile = profile.to_string();
                }
            }
            if f.accepted.is_some() {
                day.accepted += 1;
            } else if let Some(s) = f.severity {
                *day.findings.entry(s.as_str()).or_default() += 1;
            }
        }
    }

    /// The period's verdict in words: as the inventory's, but never "compliant" over no events.
    pub fn verdict_word(&self) -> &'static str {
        if self.events == 0 {
            "NO EVENTS"
        } else {
            crate::sink::report::verdict_word(self.inventory.verdict())
        }
    }

    /// The same for the JSON report: `compliant`, `non-compliant` or `no-events`.
    pub fn verdict_id(&self) -> &'static str {
        if self.events == 0 {
            "no-events"
        } else {
            self.inventory.verdict().as_str()
        }
    }

    /// Days in order with their figures.
    pub fn day_rows(&self) -> impl Iterator<Item = (&String, &Day)> {
        self.days.iter()
    }

    /// The agents that reported a server, by name ("" when only one agent or a replay).
    pub fn reporters(&self, k: &ServerKey) -> Vec<&str> {
        if self.stamps.len() < 2 {
            return Vec::new();
        }
        self.seen_by
            .get(k)
            .into_iter()
            .flatten()
            .filter_map(|i| self.stamps.get(*i))
            .map(|s| s.agent.as_str())
            .collect()
    }

    /// Certificates seen, soonest expiry first: (server, CN, not after, days left at the
    /// period's end, source).
    pub fn certificates(&self) -> Vec<CertRow<'_>> {
        let end = self.last_ns.map_or(0, |t| (t / 1_000_000_000) as i64);
        let mut v: Vec<CertRow> = self
            .inventory
            .servers
            .iter()
            .filter_map(|(k, p)| p.cert.as_ref().map(|c| (k, c)))
            .map(|(k, c)| CertRow {
                server: k,
                cn: c.subject_cn.as_deref().unwrap_or("-"),
                not_after: &c.not_after,
                days_left: (c.not_after_unix - end).div_euclid(86_400),
                source: c.source,
            })
            .collect();
        v.sort_by(|a, b| a.days_left.cmp(&b.days_left).then(a.server.cmp(b.server)));
        v
    }

    /// What could not be seen or was left out, for a person: (what, count, meaning).
    pub fn coverage(&self) -> Vec<(String, u64, String)> {
        let mut out = Vec::new();
        let hidden = self
            .inventory
            .servers
            .values()
            .filter(|p| p.cert.is_none() && p.versions.keys().any(|v| v == "TLS 1.3" || v == "DTLS 1.3"))
            .count() as u64;
        out.push((
            "tls13_certificates_not_seen".into(),
            hidden,
            "servers that negotiated TLS 1.3 whose certificate was never seen: TLS 1.3 encrypts it; run the agent with --probe to fetch it".into(),
        ));
        let udp: u64 = self.udp.values().sum();
        out.push((
            "udp_handshakes".into(),
            udp,
            "handshakes over UDP decoded (QUIC Initial, DTLS); no other UDP traffic is inspected".into(),
        ));
        for l in &self.inventory.losses {
            out.push((l.what.to_string(), l.count, l.meaning.to_string()));
        }
        if !self.stamps.is_empty() {
            out.push((
                "capture_losses".into(),
                0,
                "drops and losses of the capture are not in the audit log (see tlsmon_dropped_total in the agent's metrics)".into(),
            ));
        }
        let mut add = |what: &str, n: u64, meaning: &str| {
            if n > 0 {
                out.push((what.to_string(), n, meaning.to_string()));
            }
        };
        add("outside_period", self.outside, "events outside --since/--until, left out");
        add("unreadable_lines", self.unreadable, "lines that are not JSON or carry no readable time");
        for (t, n) in &self.skipped {
            add(&format!("skipped_{t}"), *n, "log lines that are not events (e.g. signed checkpoints), skipped");
        }
        add(
            "unknown_findings",
            self.unknown_findings,
            "findings with ids this version of tlsmon does not know, left out",
        );
        let (dropped, max) = (self.inventory.servers_dropped, self.inventory.max_servers);
        add("servers_dropped", dropped, &format!("events of servers past the {max}-server limit, not inventoried"));
        add("days_dropped", self.days_dropped, &format!("events of days past the {MAX_DAYS}-day limit"));
        add("keys_dropped", self.keys_dropped, "protocols or line types past the table limit");
        out
    }
}

/// One certificate of the report.
pub struct CertRow<'a> {
    pub server: &'a ServerKey,
    pub cn: &'a str,
    pub not_after: &'a str,
    pub days_left: i64,
    pub source: &'static str,
}

/// The report in the asked format.
pub fn render(format: PeriodFormat, p: &Period) -> String {
    match format {
        PeriodFormat::Html => html::render(p),
        PeriodFormat::Markdown => markdown::render(p),
        PeriodFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json::document(p)).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn report_bound_defaults_to_the_inventory_bound() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["tlsmon", "report", "a.jsonl"]).expect("parses");
        let crate::cli::Command::Report(a) = cli.cmd else { panic!("report") };
        assert_eq!(a.max_servers, crate::sink::inventory::MAX_SERVERS);
        assert_eq!(a.format, PeriodFormat::Html);
    }

    fn tls(ts: &str, version: &str, cipher: &str, curve: &str) -> Value {
        json!({"type": "tls", "timestamp": ts, "destination": {"ip": "10.0.0.5", "port": 443},
               "tls": {"version_protocol": "tls", "version": version, "cipher": cipher, "curve": curve},
               "findings": [{"id": "tls.version.deprecated", "severity": "high", "rule": "hipaa/min-version", "evidence": "x"}]})
    }

    #[test]
    fn days_count_versions_pfs_pq_and_skip_what_is_no_event() {
        let since = fields::parse_time("2026-11-02");
        let mut p = Period::new(Inventory::new("", 10), vec![], since, None);
        p.add(&tls("2026-11-02T01:00:00.000000Z", "1.3", "TLS_AES_128_GCM_SHA256", "X25519MLKEM768"), None);
        p.add(&tls("2026-11-02T23:59:59.999999Z", "1.2", "TLS_RSA_WITH_AES_128_GCM_SHA256", "x25519"), None);
        p.add(&tls("2026-11-03T00:00:00.000000Z", "1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "x25519"), None);
        p.add(&tls("2026-11-01T12:00:00.000000Z", "1.0", "x", "x"), None);
        p.add(&json!({"type": "checkpoint", "seq": 9}), None);
        p.add(&json!({"type": "tls", "timestamp": "garbage"}), None);
        assert_eq!(p.days.len(), 2);
        let d = &p.days["2026-11-02"];
        assert_eq!((d.handshakes, d.negotiated, d.pfs, d.pq), (2, 2, 1, 1));
        assert_eq!(d.versions.get("TLS 1.3"), Some(&1));
        assert_eq!(d.findings.get("high"), Some(&2));
        assert_eq!(share(d.pfs, d.negotiated), 50.0);
        assert_eq!(p.days["2026-11-03"].pfs, 1);
        assert_eq!((p.outside, p.unreadable, p.skipped.get("checkpoint")), (1, 1, Some(&1)));
        assert_eq!(p.inventory.profile, "hipaa", "the profile is read off the findings' rule");
        assert_eq!(p.inventory.handshakes, 3);
    }
}

#[cfg(test)]
mod empty_tests {
    use super::*;

    /// No events is no evidence: never "compliant".
    #[test]
    fn no_events_is_not_compliant() {
        let p = Period::new(Inventory::new("hipaa", 10), vec!["a".into()], None, None);
        assert_eq!(p.verdict_id(), "no-events");
        assert!(render(PeriodFormat::Markdown, &p).contains("- Verdict: **NO EVENTS**"));
        assert!(render(PeriodFormat::Html, &p).contains(r#"data-k="verdict">NO EVENTS<"#));
        assert!(render(PeriodFormat::Json, &p).contains(r#""verdict": "no-events""#));
    }
}
