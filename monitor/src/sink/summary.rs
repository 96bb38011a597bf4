//! Sink, replay summary: the readable end-of-replay report on a terminal (handshakes, versions,
//! suites, SSH sessions, findings by severity, worst servers, verdict). Bounded maps; counts what it drops.
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::inspect::names::{cipher_name, version_name};
use crate::observation::{DecodeStats, Loss, Output, PipelineStats};
use crate::policy::Severity;

/// Most distinct servers / suites remembered.
const MAX_KEYS: usize = 10_000;

#[derive(Default)]
struct ServerRow {
    worst: Option<Severity>,
    ids: BTreeMap<&'static str, Severity>,
    sni: Option<String>,
    /// Handshakes and plaintext flows to this server.
    handshakes: u64,
}

/// Accumulates outputs for the summary.
#[derive(Default)]
pub struct Summary {
    handshakes: u64,
    established: u64,
    versions: BTreeMap<String, u64>,
    ciphers: HashMap<String, u64>,
    /// Plaintext flows by protocol (a closed set).
    plaintext: BTreeMap<&'static str, u64>,
    findings: BTreeMap<(Severity, &'static str), (u64, String)>,
    servers: HashMap<String, ServerRow>,
    dropped_keys: u64,
    /// SSH sessions by negotiated `kex cipher` (bounded like the suites).
    ssh: BTreeMap<String, u64>,
    /// Probes by result (`ok`, `unreachable`, `timeout`, `failed`).
    probes: BTreeMap<&'static str, u64>,
    pub worst: Option<Severity>,
}

impl Summary {
    pub fn add(&mut self, o: &Output) {
        let (_, server, _) = o.endpoints();
        let mut sni = None;
        match o.handshake() {
            // The prober's own handshakes: counted apart, judged like the rest below.
            Some(hs) if hs.probe.is_some() => {
                let result = hs.probe.as_ref().map_or("failed", |p| p.result);
                *self.probes.entry(result).or_default() += 1;
                sni = hs.client_hello.as_ref().and_then(|c| c.sni.clone());
            }
            Some(hs) => {
                self.handshakes += 1;
                self.established += hs.established as u64;
                let v = hs.version().map(version_name).unwrap_or_else(|| "no ServerHello".into());
                *self.versions.entry(v).or_default() += 1;
                if let Some(sh) = &hs.server_hello {
                    let name = cipher_name(sh.cipher);
                    if self.ciphers.len() < MAX_KEYS || self.ciphers.contains_key(&name) {
                        *self.ciphers.entry(name).or_default() += 1;
                    } else {
                        self.dropped_keys += 1;
                    }
                }
                sni = hs.client_hello.as_ref().and_then(|c| c.sni.clone());
            }
            None if o.ssh().is_some() => {
                let n = o.ssh().and_then(|s| s.facts.negotiated.as_ref());
                let alg = |a: Option<&String>| a.map_or("-", |a| a.as_str()).to_string();
                let key =
                    format!("{} {}", alg(n.and_then(|n| n.kex.as_ref())), alg(n.and_then(|n| n.cipher_c2s.as_ref())));
                if self.ssh.len() < MAX_KEYS || self.ssh.contains_key(&key) {
                    *self.ssh.entry(key).or_default() += 1;
                } else {
                    self.dropped_keys += 1;
                }
            }
            None => {
                if let Some(p) = o.plaintext().and_then(|p| p.facts.protocol) {
                    *self.plaintext.entry(p.as_str()).or_default() += 1;
                }
            }
        }
        let server = format!("{}", std::net::SocketAddr::new(server.addr.to_ip(), server.port));
        if self.servers.len() >= MAX_KEYS && !self.servers.contains_key(&server) {
            self.dropped_keys += 1;
        } else {
            let row = self.servers.entry(server).or_default();
            row.handshakes += 1;
            if row.sni.is_none() {
                row.sni = sni;
            }
            for f in &o.findings {
                row.ids.insert(f.id, f.severity);
                if !f.is_accepted() {
                    row.worst = row.worst.max(Some(f.severity));
                }
            }
        }
        for f in &o.findings {
            let e = self.findings.entry((f.severity, f.id)).or_insert((0, f.evidence.clone()));
            e.0 += 1;
            // An accepted risk (config-file exception) is listed but decides no verdict.
            if !f.is_accepted() {
                self.worst = self.worst.max(Some(f.severity));
            }
        }
    }

    /// The report, for a person.
    pub fn render(
        &self,
        source: &DecodeStats,
        stats: &PipelineStats,
        losses: &[Loss],
        files: usize,
        secs: f64,
    ) -> String {
        let mut s = String::new();
        let mb = source.bytes as f64 / 1e6;
        let _ = writeln!(
            s,
            "tlsmon replay: {files} file(s), {} packets, {mb:.1} MB in {secs:.2} s ({:.0} MB/s)",
            source.packets,
            if secs > 0.0 { mb / secs } else { 0.0 }
        );
        if stats.plain_candidates > 0 {
            let _ = writeln!(
                s,
                "plaintext candidates: {} flows inspected, {} reported, {} bytes dropped at the all-flows cap",
                stats.plain_candidates, stats.plaintext_flows, stats.plain_bytes_dropped
            );
        }
        loss_lines(&mut s, losses);
        self.render_body(&mut s);
        s
    }

    /// The report of a live capture: `records` ring-buffer records from `ifaces` in `secs`.
    pub fn render_live(&self, ifaces: &str, records: u64, losses: &[Loss], secs: f64) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "tlsmon live: {ifaces}, {records} records in {secs:.0} s");
        loss_lines(&mut s, losses);
        self.render_body(&mut s);
        s
    }

    fn render_body(&self, s: &mut String) {
        let _ = writeln!(s, "\nHandshakes: {} ({} established)", self.handshakes, self.established);
        if !self.versions.is_empty() {
            let mut v: Vec<_> = self.versions.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1));
            let line: Vec<String> = v.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = writeln!(s, "  versions: {}", line.join(", "));
        }
        let mut c: Vec<_> = self.ciphers.iter().collect();
        c.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (name, n) in c.iter().take(6) {
            let _ = writeln!(s, "  {n:>6}  {name}");
        }
        if c.len() > 6 {
            let _ = writeln!(s, "  … and {} more suites", c.len() - 6);
        }
        if !self.probes.is_empty() {
            let line: Vec<String> = self.probes.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = writeln!(s, "\nProbes (active, --probe): {}", line.join(", "));
        }
        if !self.plaintext.is_empty() {
            let line: Vec<String> = self.plaintext.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = writeln!(s, "\nPlaintext flows: {}", line.join(", "));
        }
        if !self.ssh.is_empty() {
            let total: u64 = self.ssh.values().sum();
            let _ = writeln!(s, "\nSSH sessions: {total} (negotiated kex, cipher)");
            let mut v: Vec<_> = self.ssh.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (k, n) in v.iter().take(6) {
                let _ = writeln!(s, "  {n:>6}  {k}");
            }
        }
        let _ = writeln!(s, "\nFindings:");
        if self.findings.is_empty() {
            let _ = writeln!(s, "  none");
        }
        for ((sev, id), (n, example)) in self.findings.iter().rev() {
            let _ = writeln!(s, "  {:<8} {:<30} {n:>6}  e.g. {example}", sev.as_str(), id);
        }
        let mut servers: Vec<_> = self.servers.iter().filter(|(_, r)| r.worst.is_some()).collect();
        servers.sort_by(|a, b| b.1.worst.cmp(&a.1.worst).then(b.1.ids.len().cmp(&a.1.ids.len())).then(a.0.cmp(b.0)));
        if !servers.is_empty() {
            let _ = writeln!(s, "\nWorst servers:");
        }
        for (addr, row) in servers.iter().take(10) {
            let sni = row.sni.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            let ids: Vec<&str> =
                row.ids.iter().filter(|(_, sev)| **sev >= Severity::Medium).map(|(id, _)| *id).collect();
            let worst = row.worst.map(Severity::as_str).unwrap_or("-");
            let _ = writeln!(s, "  {addr}{sni}  {worst}  {}", ids.join(", "));
        }
        if servers.len() > 10 {
            let _ = writeln!(s, "  … and {} more servers with findings", servers.len() - 10);
        }
        if self.dropped_keys > 0 {
            let _ = writeln!(
                s,
                "  ({} handshakes past the {MAX_KEYS}-server table are counted above only)",
                self.dropped_keys
            );
        }
        let verdict = match self.worst {
            Some(w) if w >= Severity::Medium => format!("NON-COMPLIANT (worst finding: {})", w.as_str()),
            _ => "no findings above low".to_string(),
        };
        let _ = writeln!(s, "\nVerdict: {verdict}");
    }
}

/// "Not inspected: …" with one line per non-zero loss (nothing when there was none).
pub fn loss_lines(s: &mut String, losses: &[Loss]) {
    if losses.is_empty() {
        return;
    }
    let _ = writeln!(s, "Not inspected (bounds and drops):");
    for l in losses {
        let _ = writeln!(s, "  {:>10}  {:<20} {}", l.count, l.what, l.meaning);
    }
}
