//! Sink, posture inventory: per server (IP, port, SNI) what was negotiated, the certificate
//! facts, the findings and a verdict under the active profile, aggregated from judged
//! handshakes. Bounded (servers, and keys per server); must never hold payload or PHI — only
//! the handshake facts the JSON event already carries.
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Serialize;

use crate::inspect::names::{cipher_name, group_label, sslv2_cipher_name, version_name};
use crate::inspect::tls::cert::CertInfo;
use crate::observation::Acceptance;
use crate::observation::Handshake;
use crate::observation::Output;
use crate::policy::{Finding, Severity};
use crate::sink::json::rfc3339;

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
    pub rule: &'static str,
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

/// The posture of one server.
#[derive(Clone, Debug, Default)]
pub struct Posture {
    pub handshakes: u64,
    /// Flows that stayed in clear with a recognised protocol, and those protocols.
    pub plaintext_flows: u64,
    pub plaintext: BTreeMap<String, u64>,
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
    /// Keys not kept because a per-server table was full.
    pub keys_dropped: u64,
}

impl Posture {
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.worst)
    }

    /// Findings worst first, then in the catalogue's order (versions, suites, key exchange, certificates …).
    pub fn findings_sorted(&self) -> Vec<&FindingRow> {
        let mut v: Vec<&FindingRow> = self.findings.values().collect();
        let rank = |id: &str| crate::sink::report::catalogue_rank(id);
        v.sort_by(|a, b| b.severity.cmp(&a.severity).then(rank(a.id).cmp(&rank(b.id))).then(a.id.cmp(b.id)));
        v
    }

    /// Accepted findings in the same order.
    pub fn accepted_sorted(&self) -> Vec<&FindingRow> {
        let mut v: Vec<&FindingRow> = self.accepted.values().collect();
        let rank = |id: &str| crate::sink::report::catalogue_rank(id);
        v.sort_by(|a, b| b.severity.cmp(&a.severity).then(rank(a.id).cmp(&rank(b.id))).then(a.id.cmp(b.id)));
        v
    }
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

fn day(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs).map(|d| d.date().to_string()).unwrap_or_else(|_| secs.to_string())
}

/// The leaf's common name; when x509-parser could not read it as a string (or there is none),
/// the last `CN=` of the subject DN; none when the DN has no CN.
pub fn leaf_cn(c: &CertInfo) -> Option<String> {
    if let Some(cn) = &c.subject_cn {
        return Some(cn.clone());
    }
    let i = c.subject.rfind("CN=")?;
    c.subject[i + 3..].split(", ").next().map(str::to_string)
}

/// How a fix names a certificate: `CN=name`, else its subject DN.
fn leaf_label(c: &CertInfo) -> String {
    match leaf_cn(c) {
        Some(cn) => format!("CN={cn}"),
        None => format!("\"{}\"", c.subject),
    }
}

/// The fact a finding's fix names, taken from the handshake that raised it.
fn subject(f: &Finding, o: &Output) -> Option<String> {
    let Some(hs) = o.handshake() else {
        // A plaintext flow: its protocol.
        return o.plaintext().and_then(|p| p.facts.protocol).map(|p| p.as_str().to_string());
    };
    let cn = || hs.certs.first().map(leaf_label);
    let leaf_after = || hs.certs.first().map(|c| day(c.not_after)).unwrap_or_default();
    match f.id {
        "tls.version.insecure" | "tls.version.deprecated" => match hs.version() {
            Some(v @ (0x0002 | 0x0300 | 0x0301 | 0x0302)) => Some(version_name(v)),
            _ => hs.client_hello.as_ref().map(|c| version_name(c.max_version())),
        },
        "tls.version.client-legacy-only" => hs.client_hello.as_ref().map(|c| version_name(c.max_version())),
        "tls.cipher.insecure" | "tls.cipher.weak" | "tls.kx.no-pfs" => negotiated_cipher(hs),
        "tls.cert.expired" => cn().map(|n| format!("{n} (expired {})", leaf_after())),
        "tls.cert.expiring" => cn().map(|n| format!("{n} (expires {})", leaf_after())),
        "tls.cert.not-yet-valid" => cn()
            .map(|n| format!("{n} (valid from {})", hs.certs.first().map(|c| day(c.not_before)).unwrap_or_default())),
        "tls.cert.self-signed" | "tls.cert.untrusted" | "tls.cert.weak-signature" | "tls.cert.weak-key" => cn(),
        "tls.cert.name-mismatch" => hs.client_hello.as_ref().and_then(|c| c.sni.clone()),
        _ => Some(f.evidence.clone()),
    }
}

fn negotiated_cipher(hs: &Handshake) -> Option<String> {
    let sh = hs.server_hello.as_ref()?;
    Some(match sh.sslv2_kind {
        Some(k) => sslv2_cipher_name(k),
        None => cipher_name(sh.cipher),
    })
}

impl Inventory {
    pub fn new(profile: &str, max_servers: usize) -> Self {
        Inventory {
            profile: profile.to_string(),
            max_servers,
            servers: HashMap::new(),
            handshakes: 0,
            servers_dropped: 0,
        }
    }

    /// Fold one judged handshake or plaintext flow in.
    pub fn add(&mut self, o: &Output) {
        let hs = o.handshake();
        self.handshakes += u64::from(hs.is_some());
        let (_, server, ts_ns) = o.endpoints();
        let sni = hs.and_then(|h| h.client_hello.as_ref()).and_then(|c| c.sni.clone()).unwrap_or_else(|| "-".into());
        let key = ServerKey { ip: server.addr.to_ip(), port: server.port, sni };
        if self.servers.len() >= self.max_servers && !self.servers.contains_key(&key) {
            self.servers_dropped += 1;
            return;
        }
        let p = self.servers.entry(key).or_default();
        if p.handshakes + p.plaintext_flows == 0 || ts_ns < p.first_ns {
            p.first_ns = ts_ns;
        }
        p.last_ns = p.last_ns.max(ts_ns);
        let d = &mut p.keys_dropped;
        if let Some(proto) = o.plaintext().and_then(|f| f.facts.protocol) {
            p.plaintext_flows += 1;
            bump(&mut p.plaintext, proto.as_str().to_string(), d);
        }
        if let Some(hs) = hs {
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
                p.cert = Some(CertFacts {
                    subject_cn: leaf_cn(c),
                    issuer_cn: c.issuer_cn.clone(),
                    not_after: day(c.not_after),
                    key_algorithm: c.key_type,
                    key_size: c.key_bits,
                    signature_algorithm: c.signature_algorithm.clone(),
                    self_signed: c.self_signed,
                    not_after_unix: c.not_after,
                    seen_unix: (hs.ts_ns / 1_000_000_000) as i64,
                });
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
                rule: f.rule,
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

    /// The JSON form (served as-is at /inventory in live mode): stable field names.
    pub fn to_json(&self, captures: &[String]) -> serde_json::Value {
        let servers: Vec<serde_json::Value> = self
            .sorted()
            .into_iter()
            .map(|(k, p)| {
                let findings: Vec<serde_json::Value> = p
                    .findings_sorted()
                    .into_iter()
                    .map(|f| {
                        let mut v = serde_json::json!({
                            "id": f.id,
                            "severity": f.severity,
                            "hipaa_ref": f.hipaa_ref,
                            "rule": f.rule,
                            "count": f.count,
                            "evidence": f.evidence,
                            "subjects": f.subjects,
                            "fix": crate::sink::report::fix(f, &k.addr()),
                        });
                        if let Some(Acceptance::Expired { reason, expired }) = &f.acceptance {
                            v["exception_expired"] = serde_json::json!({ "reason": reason, "expired": expired });
                        }
                        v
                    })
                    .collect();
                let accepted: Vec<serde_json::Value> = p
                    .accepted_sorted()
                    .into_iter()
                    .map(|f| {
                        let (reason, expires) = match &f.acceptance {
                            Some(Acceptance::Accepted { reason, expires }) => (reason.as_str(), expires.as_str()),
                            _ => ("", ""),
                        };
                        serde_json::json!({
                            "id": f.id,
                            "severity": f.severity,
                            "hipaa_ref": f.hipaa_ref,
                            "rule": f.rule,
                            "count": f.count,
                            "evidence": f.evidence,
                            "reason": reason,
                            "expires": expires,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "ip": k.ip.to_string(),
                    "port": k.port,
                    "sni": k.sni,
                    "verdict": p.verdict(),
                    "worst_severity": p.worst,
                    "handshakes": p.handshakes,
                    "plaintext_flows": p.plaintext_flows,
                    "plaintext": p.plaintext,
                    "first_seen": rfc3339(p.first_ns),
                    "last_seen": rfc3339(p.last_ns),
                    "versions": p.versions,
                    "ciphers": p.ciphers,
                    "groups": p.groups,
                    "client_max_versions": p.client_max_versions,
                    "certificate": p.cert,
                    "findings": findings,
                    "accepted": accepted,
                    "keys_dropped": p.keys_dropped,
                })
            })
            .collect();
        serde_json::json!({
            "profile": self.profile,
            "captures": captures,
            "verdict": self.verdict(),
            "totals": {
                "servers": self.servers.len(),
                "compliant": self.servers.len() - self.non_compliant(),
                "non_compliant": self.non_compliant(),
                "handshakes": self.handshakes,
                "servers_dropped": self.servers_dropped,
            },
            "servers": servers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Addr;
    use crate::inspect::tls::hello::{ClientHello, ServerHello};
    use crate::observation::Endpoint;

    fn finding(id: &'static str, severity: Severity) -> Finding {
        Finding {
            id,
            severity,
            hipaa_ref: "164.312(e)(1)",
            rule: "hipaa/test",
            evidence: format!("{id} evidence"),
            acceptance: None,
        }
    }

    /// A handshake to `ip:port` asking for `sni`, negotiating `version` and `cipher`.
    fn out(ip: [u8; 4], port: u16, sni: Option<&str>, version: u16, cipher: u16, ts_s: u64, f: Vec<Finding>) -> Output {
        let hs = Handshake {
            ts_ns: ts_s * 1_000_000_000,
            server: Endpoint { addr: Addr::v4(ip), port },
            client: Endpoint { addr: Addr::v4([192, 168, 1, 9]), port: 50_000 },
            client_hello: Some(ClientHello {
                version: 0x0303,
                supported_versions: vec![0x0304, 0x0303],
                sni: sni.map(str::to_string),
                ..Default::default()
            }),
            server_hello: Some(ServerHello { version, cipher, ..Default::default() }),
            ..Default::default()
        };
        Output { observed: crate::observation::Observed::Tls { handshake: hs, upgrade: None }, findings: f }
    }

    #[test]
    fn aggregates_per_server_and_sni() {
        let mut inv = Inventory::default();
        let dep = || vec![finding("tls.version.deprecated", Severity::High)];
        inv.add(&out([10, 0, 0, 5], 443, Some("a.example"), 0x0301, 0x000a, 20, dep()));
        inv.add(&out([10, 0, 0, 5], 443, Some("a.example"), 0x0301, 0x000a, 10, dep()));
        inv.add(&out([10, 0, 0, 5], 443, Some("a.example"), 0x0303, 0xc02f, 30, vec![]));
        inv.add(&out([10, 0, 0, 5], 443, None, 0x0304, 0x1301, 40, vec![]));
        assert_eq!(inv.servers.len(), 2, "same address, another SNI (or none) is another server");
        assert_eq!(inv.handshakes, 4);
        let key = ServerKey { ip: "10.0.0.5".parse().unwrap(), port: 443, sni: "a.example".into() };
        let p = &inv.servers[&key];
        assert_eq!(p.handshakes, 3);
        assert_eq!(p.versions.get("TLS 1.0"), Some(&2));
        assert_eq!(p.versions.get("TLS 1.2"), Some(&1));
        assert_eq!(p.ciphers.get("TLS_RSA_WITH_3DES_EDE_CBC_SHA"), Some(&2));
        assert_eq!(p.client_max_versions.get("TLS 1.3"), Some(&3));
        assert_eq!((p.first_ns, p.last_ns), (10_000_000_000, 30_000_000_000));
        let row = &p.findings["tls.version.deprecated"];
        assert_eq!((row.count, row.severity), (2, Severity::High));
        assert_eq!(row.subjects, vec!["TLS 1.0".to_string()]);
        assert_eq!(p.verdict(), Verdict::NonCompliant);
        let bare = ServerKey { sni: "-".into(), ..key };
        assert_eq!(inv.servers[&bare].verdict(), Verdict::Compliant);
        assert_eq!(inv.non_compliant(), 1);
        assert_eq!(inv.verdict(), Verdict::NonCompliant);
    }

    #[test]
    fn verdict_threshold_is_medium() {
        assert_eq!(Verdict::of(None), Verdict::Compliant);
        assert_eq!(Verdict::of(Some(Severity::Info)), Verdict::Compliant);
        assert_eq!(Verdict::of(Some(Severity::Low)), Verdict::Compliant);
        assert_eq!(Verdict::of(Some(Severity::Medium)), Verdict::NonCompliant);
        assert_eq!(Verdict::of(Some(Severity::Critical)), Verdict::NonCompliant);
    }

    #[test]
    fn bounded_servers_are_counted_when_dropped() {
        let mut inv = Inventory::new(PROFILE_HIPAA, 2);
        for i in 0..5u8 {
            inv.add(&out([10, 0, 0, i], 443, None, 0x0303, 0xc02f, 1, vec![]));
        }
        // A server already known still counts after the table is full.
        inv.add(&out([10, 0, 0, 0], 443, None, 0x0303, 0xc02f, 2, vec![]));
        assert_eq!(inv.servers.len(), 2);
        assert_eq!(inv.servers_dropped, 3);
        assert_eq!(inv.handshakes, 6);
        let j = inv.to_json(&[]);
        assert_eq!(j["totals"]["servers_dropped"], 3);
        assert_eq!(j["totals"]["servers"], 2);
    }

    #[test]
    fn per_server_tables_are_bounded() {
        let mut inv = Inventory::default();
        for c in 0..100u16 {
            inv.add(&out([10, 0, 0, 1], 443, None, 0x0303, 0xc000 + c, 1, vec![]));
        }
        let p = inv.servers.values().next().unwrap();
        assert_eq!(p.ciphers.len(), MAX_KEYS_PER_SERVER);
        assert_eq!(p.keys_dropped, 100 - MAX_KEYS_PER_SERVER as u64);
        assert_eq!(p.handshakes, 100);
    }

    #[test]
    fn sorted_by_worst_finding_then_address() {
        let mut inv = Inventory::default();
        inv.add(&out([10, 0, 0, 9], 443, None, 0x0303, 0xc02f, 1, vec![]));
        inv.add(&out(
            [10, 0, 0, 8],
            443,
            None,
            0x0301,
            0xc013,
            1,
            vec![finding("tls.version.deprecated", Severity::High)],
        ));
        inv.add(&out(
            [10, 0, 0, 7],
            443,
            None,
            0x0303,
            0xc02f,
            1,
            vec![finding("tls.version.no-tls13", Severity::Low)],
        ));
        inv.add(&out(
            [10, 0, 0, 20],
            443,
            None,
            0x0303,
            0x0005,
            1,
            vec![finding("tls.cipher.insecure", Severity::Critical)],
        ));
        inv.add(&out(
            [10, 0, 0, 3],
            443,
            None,
            0x0302,
            0xc013,
            1,
            vec![finding("tls.version.deprecated", Severity::High)],
        ));
        let order: Vec<String> = inv.sorted().iter().map(|(k, _)| k.addr()).collect();
        assert_eq!(order, ["10.0.0.20:443", "10.0.0.3:443", "10.0.0.8:443", "10.0.0.7:443", "10.0.0.9:443"]);
        let j = inv.to_json(&["a.pcap".into()]);
        let ips: Vec<&str> = j["servers"].as_array().unwrap().iter().map(|s| s["ip"].as_str().unwrap()).collect();
        assert_eq!(ips, ["10.0.0.20", "10.0.0.3", "10.0.0.8", "10.0.0.7", "10.0.0.9"]);
        assert_eq!(j["servers"][0]["verdict"], "non-compliant");
        assert_eq!(j["servers"][3]["verdict"], "compliant");
        assert_eq!(
            j["servers"][0]["findings"][0]["fix"],
            "remove RC4 suites (TLS_RSA_WITH_RC4_128_SHA) from 10.0.0.20:443"
        );
        assert_eq!(j["profile"], "hipaa");
        assert_eq!(j["totals"]["non_compliant"], 3);
    }
}
