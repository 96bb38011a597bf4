//! Sink, posture inventory: per server (IP, port, SNI) what was negotiated, the certificate
//! facts, the findings and a verdict under the active profile, aggregated from judged
//! handshakes. Bounded (servers, and keys per server); must never hold payload or PHI — only
//! the handshake facts the JSON event already carries.
mod event;
mod fix;
mod json;
mod subject;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Serialize;

pub use event::Added;
pub use fix::fix;
pub(crate) use json::server_json;
pub use subject::leaf_cn;

use crate::inspect::names::{group_label, version_name};
use crate::observation::Acceptance;
use crate::observation::Output;
use crate::policy::catalogue::rank;
use crate::policy::Severity;
use subject::{negotiated_cipher, subject};

/// Most servers remembered; handshakes of further servers are counted in `servers_dropped`.
pub const MAX_SERVERS: usize = 10_000;
/// Most distinct keys in each per-server table (suites, groups, versions, finding subjects).
const MAX_KEYS_PER_SERVER: usize = 32;
/// Most subjects (versions, suites, certificate names) remembered per finding.
const MAX_SUBJECTS: usize = 8;

/// The default profile's name (`Inventory::default`); a run under another profile passes its own.
pub const PROFILE_HIPAA: &str = "hipaa";

/// One server: its address and the name clients asked for ("-" when none).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerKey {
    pub ip: IpAddr,
    pub port: u16,
    pub sni: String,
}

impl ServerKey {
    /// "10.0.0.5:443" ("[::1]:443" for IPv6).
    pub fn addr(&self) -> String {
        std::net::SocketAddr::new(self.ip, self.port).to_string()
    }
}

/// Compliant when no finding of medium severity or worse remains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Compliant,
    NonCompliant,
}

impl Verdict {
    pub fn of(worst: Option<Severity>) -> Verdict {
        match worst {
            Some(s) if s >= Severity::Medium => Verdict::NonCompliant,
            _ => Verdict::Compliant,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compliant => "compliant",
            Verdict::NonCompliant => "non-compliant",
        }
    }
}

/// Leaf certificate facts (TLS <= 1.2, where the certificate travels in clear).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    pub subject_cn: Option<String>,
    pub issuer_cn: Option<String>,
    pub not_after: String,
    pub key_algorithm: &'static str,
    pub key_size: u32,
    pub signature_algorithm: String,
    pub self_signed: bool,
    /// `passive` (seen on the wire) or `probe` (fetched by the prober: TLS 1.3 hides it).
    pub source: &'static str,
    /// `not_after` in Unix seconds, and the time of the handshake that showed the certificate
    /// (packet time): what the expiry metrics count from.
    #[serde(skip)]
    pub not_after_unix: i64,
    #[serde(skip)]
    pub seen_unix: i64,
}

/// One finding id on one server.
#[derive(Clone, Debug, Serialize)]
pub struct FindingRow {
    pub id: &'static str,
    pub severity: Severity,
    pub hipaa_ref: &'static str,
    pub rule: String,
    /// Handshakes that raised it.
    pub count: u64,
    /// The evidence of the first handshake that raised it.
    pub evidence: String,
    /// What the fix names: the versions, suites, certificate … that triggered it (bounded).
    pub subjects: Vec<String>,
    /// The exception behind it, the last one seen: `Accepted` in `Posture::accepted`,
    /// `Expired` in `Posture::findings` (an exception that no longer applied).
    pub acceptance: Option<Acceptance>,
}

#[cfg(test)]
impl FindingRow {
    /// A row as tests need it: one handshake, no evidence.
    pub(crate) fn for_test(id: &'static str, severity: Severity, subjects: &[&str]) -> FindingRow {
        FindingRow {
            id,
            severity,
            hipaa_ref: "-",
            rule: "hipaa/test".into(),
            count: 1,
            evidence: String::new(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            acceptance: None,
        }
    }
}

/// The posture of one server.
#[derive(Clone, Debug, Default)]
pub struct Posture {
    pub handshakes: u64,
    /// The prober's handshakes with this server (active, not traffic; `--probe`).
    pub probes: u64,
    /// Flows that stayed in clear with a recognised protocol, and those protocols.
    pub plaintext_flows: u64,
    pub plaintext: BTreeMap<String, u64>,
    /// SSH sessions to this server and what they negotiated (`kex <name>`, `host_key <name>`,
    /// `cipher <name>`, `mac <name>`, `compression <name>`, `software <server banner>`).
    pub ssh_sessions: u64,
    pub ssh: BTreeMap<String, u64>,
    pub versions: BTreeMap<String, u64>,
    pub ciphers: BTreeMap<String, u64>,
    pub groups: BTreeMap<String, u64>,
    pub client_max_versions: BTreeMap<String, u64>,
    pub cert: Option<CertFacts>,
    pub findings: BTreeMap<&'static str, FindingRow>,
    /// Findings accepted by an exception that held: listed, but not in `worst` or the verdict.
    pub accepted: BTreeMap<&'static str, FindingRow>,
    /// Worst severity of the findings not accepted.
    pub worst: Option<Severity>,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Processes of this host that spoke to the server (`client …`) or served it (`server …`),
    /// by flows (live only: process attribution).
    pub local: BTreeMap<String, u64>,
    /// Keys not kept because a per-server table was full.
    pub keys_dropped: u64,
}

impl Posture {
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.worst)
    }

    /// Findings worst first, then in the catalogue's order (versions, suites, key exchange, certificates …).
    pub fn findings_sorted(&self) -> Vec<&FindingRow> {
        worst_first(self.findings.values())
    }

    /// Accepted findings in the same order.
    pub fn accepted_sorted(&self) -> Vec<&FindingRow> {
        worst_first(self.accepted.values())
    }
}

/// Rows worst first, then in the catalogue's order.
fn worst_first<'a>(rows: impl Iterator<Item = &'a FindingRow>) -> Vec<&'a FindingRow> {
    let mut v: Vec<&FindingRow> = rows.collect();
    v.sort_by(|a, b| b.severity.cmp(&a.severity).then(rank(a.id).cmp(&rank(b.id))).then(a.id.cmp(b.id)));
    v
}

/// The inventory of every server seen.
#[derive(Clone, Debug)]
pub struct Inventory {
    pub profile: String,
    pub max_servers: usize,
    pub servers: HashMap<ServerKey, Posture>,
    pub handshakes: u64,
    /// Handshakes of servers that did not fit.
    pub servers_dropped: u64,
    /// What the run could not inspect (bounds and drops), as of the latest update.
    pub losses: Vec<crate::observation::Loss>,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory::new(PROFILE_HIPAA, MAX_SERVERS)
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: String, dropped: &mut u64) {
    if let Some(n) = map.get_mut(&key) {
        *n += 1;
    } else if map.len() < MAX_KEYS_PER_SERVER {
        map.insert(key, 1);
    } else {
        *dropped += 1;
    }
}

/// The leaf's facts as the inventory keeps them; `ts_ns` is when it was seen.
fn cert_facts(c: &crate::inspect::tls::cert::CertInfo, ts_ns: u64, source: &'static str) -> CertFacts {
    CertFacts {
        subject_cn: leaf_cn(c),
        issuer_cn: c.issuer_cn.clone(),
        not_after: day(c.not_after),
        key_algorithm: c.key_type,
        key_size: c.key_bits,
        signature_algorithm: c.signature_algorithm.clone(),
        self_signed: c.self_signed,
        source,
        not_after_unix: c.not_after,
        seen_unix: (ts_ns / 1_000_000_000) as i64,
    }
}

fn day(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs).map(|d| d.date().to_string()).unwrap_or_else(|_| secs.to_string())
}

impl Inventory {
    pub fn new(profile: &str, max_servers: usize) -> Self {
        Inventory {
            profile: profile.to_string(),
            max_servers,
            servers: HashMap::new(),
            handshakes: 0,
            servers_dropped: 0,
            losses: Vec::new(),
        }
    }

    /// Fold one judged handshake or plaintext flow in.
    pub fn add(&mut self, o: &Output) {
        let hs = o.handshake();
        let probe = hs.is_some_and(|h| h.probe.is_some());
        self.handshakes += u64::from(hs.is_some() && !probe);
        let (_, server, ts_ns) = o.endpoints();
        let sni = hs.and_then(|h| h.client_hello.as_ref()).and_then(|c| c.sni.clone()).unwrap_or_else(|| "-".into());
        let key = ServerKey { ip: server.addr.to_ip(), port: server.port, sni };
        if self.servers.len() >= self.max_servers && !self.servers.contains_key(&key) {
            self.servers_dropped += 1;
            return;
        }
        let p = self.servers.entry(key).or_default();
        for (role, proc) in ["client", "server"].iter().zip(&o.local.processes) {
            if let Some(proc) = proc {
                bump(&mut p.local, format!("{role} {}", proc.label()), &mut p.keys_dropped);
            }
        }
        if p.handshakes + p.plaintext_flows + p.ssh_sessions == 0 || ts_ns < p.first_ns {
            p.first_ns = ts_ns;
        }
        p.last_ns = p.last_ns.max(ts_ns);
        let d = &mut p.keys_dropped;
        if let Some(proto) = o.plaintext().and_then(|f| f.facts.protocol) {
            p.plaintext_flows += 1;
            bump(&mut p.plaintext, proto.as_str().to_string(), d);
        }
        if let Some(f) = o.ssh().map(|s| &s.facts) {
            p.ssh_sessions += 1;
            if let Some(b) = &f.server.banner {
                bump(&mut p.ssh, format!("software {}", b.software), d);
            }
            if let Some(n) = &f.negotiated {
                let cipher_mac =
                    [("cipher", &n.cipher_c2s), ("cipher", &n.cipher_s2c), ("mac", &n.mac_c2s), ("mac", &n.mac_s2c)];
                let mut seen: Vec<String> = Vec::new();
                let all = [("kex", &n.kex), ("host_key", &n.host_key), ("compression", &n.compression_c2s)];
                for (what, alg) in all.into_iter().chain(cipher_mac) {
                    let Some(alg) = alg else { continue };
                    let k = format!("{what} {alg}");
                    if !seen.contains(&k) {
                        bump(&mut p.ssh, k.clone(), d);
                        seen.push(k);
                    }
                }
            }
        }
        if let Some(hs) = hs.filter(|_| probe) {
            p.probes += 1;
            if let Some(c) = hs.certs.first() {
                p.cert = Some(cert_facts(c, hs.ts_ns, "probe"));
            }
        } else if let Some(hs) = hs {
            p.handshakes += 1;
            if let Some(v) = hs.version() {
                bump(&mut p.versions, version_name(v), d);
            }
            if let Some(c) = negotiated_cipher(hs) {
                bump(&mut p.ciphers, c, d);
            }
            if let Some(g) = hs.group() {
                bump(&mut p.groups, group_label(g), d);
            }
            if let Some(ch) = &hs.client_hello {
                bump(&mut p.client_max_versions, version_name(ch.max_version()), d);
            }
            if let Some(c) = hs.certs.first() {
                p.cert = Some(cert_facts(c, hs.ts_ns, "passive"));
            }
        }
        for f in &o.findings {
            let accepted = f.is_accepted();
            if !accepted {
                p.worst = p.worst.max(Some(f.severity));
            }
            let rows = if accepted { &mut p.accepted } else { &mut p.findings };
            if !rows.contains_key(f.id) && rows.len() >= MAX_KEYS_PER_SERVER {
                p.keys_dropped += 1;
                continue;
            }
            let row = rows.entry(f.id).or_insert_with(|| FindingRow {
                id: f.id,
                severity: f.severity,
                hipaa_ref: f.hipaa_ref,
                rule: f.rule.to_string(),
                count: 0,
                evidence: f.evidence.clone(),
                subjects: Vec::new(),
                acceptance: None,
            });
            if f.acceptance.is_some() {
                row.acceptance = f.acceptance.clone();
            }
            row.count += 1;
            row.severity = row.severity.max(f.severity);
            if let Some(s) = subject(f, o) {
                if !row.subjects.contains(&s) && row.subjects.len() < MAX_SUBJECTS {
                    row.subjects.push(s);
                }
            }
        }
    }

    /// Servers sorted by worst finding (critical first, none last), then by address and SNI.
    pub fn sorted(&self) -> Vec<(&ServerKey, &Posture)> {
        let mut v: Vec<_> = self.servers.iter().collect();
        v.sort_by(|a, b| b.1.worst.cmp(&a.1.worst).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// The whole network's verdict: non-compliant when any server is.
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.servers.values().filter_map(|p| p.worst).max())
    }

    pub fn non_compliant(&self) -> usize {
        self.servers.values().filter(|p| p.verdict() == Verdict::NonCompliant).count()
    }
}
