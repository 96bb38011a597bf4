//! Sink, posture inventory fed from JSON events (an audit log read by `tlsmon report`): the
//! same rows, subjects and so the same fix lines as from the pipeline's outputs. Reads events
//! only through `sink::period::fields`; must never keep anything the event does not carry.
use super::{bump, CertFacts, FindingRow, Inventory, ServerKey};
use crate::inspect::names::version_name;
use crate::observation::Acceptance;
use crate::policy::catalogue::{lookup, Subject};
use crate::sink::period::fields::{parse_time, Ev, EvCert, EvFinding};

/// What one event did to the inventory.
pub enum Added {
    /// Folded into this server's posture.
    Server(ServerKey),
    /// A new server past `max_servers` (counted in `servers_dropped`).
    Dropped,
    /// Not an event the inventory keeps (no server, unknown type).
    NotKept,
}

/// The certificate key algorithms `CertInfo` names (the inventory keeps `&'static str`).
fn key_algorithm(s: &str) -> &'static str {
    ["rsa", "ec", "dsa", "ed25519", "ed448", "rsa-pss"].into_iter().find(|k| *k == s).unwrap_or("unknown")
}

/// "2026-11-30" of an RFC 3339 time.
fn day_of(t: &str) -> String {
    t.get(..10).unwrap_or(t).to_string()
}

/// `CN=name`, else the subject DN in quotes (as `subject::leaf_label`); the CN falls back to
/// the DN's last `CN=` as `subject::leaf_cn` does.
fn cert_cn(c: &EvCert) -> Option<String> {
    if let Some(cn) = c.subject_cn() {
        return Some(cn.to_string());
    }
    let dn = c.subject_dn();
    let i = dn.rfind("CN=")?;
    dn[i + 3..].split(", ").next().map(str::to_string)
}

fn cert_label(c: &EvCert) -> String {
    match cert_cn(c) {
        Some(cn) => format!("CN={cn}"),
        None => format!("\"{}\"", c.subject_dn()),
    }
}

fn cert_facts(c: &EvCert, ts_ns: u64, source: &'static str) -> CertFacts {
    let not_after = c.not_after().unwrap_or("");
    CertFacts {
        subject_cn: cert_cn(c),
        issuer_cn: c.issuer_cn().map(str::to_string),
        not_after: day_of(not_after),
        key_algorithm: key_algorithm(c.key_algorithm()),
        key_size: c.key_size(),
        signature_algorithm: c.signature_algorithm().to_string(),
        self_signed: c.self_signed(),
        source,
        not_after_unix: parse_time(not_after).map_or(0, |ns| (ns / 1_000_000_000) as i64),
        seen_unix: (ts_ns / 1_000_000_000) as i64,
    }
}

/// The fact a finding's fix names, from the event that raised it: what `subject::subject`
/// takes from the handshake, read from the event's fields.
fn subject(f: &EvFinding, ev: &Ev) -> Option<String> {
    match ev.kind() {
        Some("ssh") => return Some(f.evidence.to_string()),
        Some("plaintext") => return ev.plaintext_protocol().map(str::to_string),
        _ => {}
    }
    let cn = || ev.cert().map(|c| cert_label(&c));
    let client_max = || ev.client_max_version().map(version_name);
    let Some(e) = lookup(f.id) else { return Some(f.evidence.to_string()) };
    match e.subject {
        Subject::Version => match ev.version() {
            Some(v @ (0x0002 | 0x0300 | 0x0301 | 0x0302)) => Some(version_name(v)),
            _ => client_max(),
        },
        Subject::ClientMaxVersion => client_max(),
        Subject::Cipher => ev.cipher().map(str::to_string),
        Subject::CertCn => cn(),
        Subject::CertNotAfter(word) => {
            let day = ev.cert().and_then(|c| c.not_after()).map(day_of).unwrap_or_default();
            cn().map(|n| format!("{n} ({word} {day})"))
        }
        Subject::CertNotBefore(word) => {
            let day = ev.cert().and_then(|c| c.not_before()).map(day_of).unwrap_or_default();
            cn().map(|n| format!("{n} ({word} {day})"))
        }
        Subject::Sni => ev.sni().map(str::to_string),
        Subject::Protocol | Subject::Evidence => Some(f.evidence.to_string()),
    }
}

impl Inventory {
    /// Fold one JSON event in (`tls`, `probe`, `plaintext`, `ssh`), as [`Inventory::add`] folds
    /// the output it was written from. Findings whose id this build does not know, or whose
    /// severity is unreadable, are counted in `unknown_findings` and left out.
    pub fn add_event(&mut self, ev: &Ev, unknown_findings: &mut u64) -> Added {
        let kind = ev.kind().unwrap_or("");
        if !matches!(kind, "tls" | "probe" | "plaintext" | "ssh") {
            return Added::NotKept;
        }
        let Some((ip, port)) = ev.server() else { return Added::NotKept };
        let (tls, probe) = (matches!(kind, "tls" | "probe"), kind == "probe");
        self.handshakes += u64::from(tls && !probe);
        let ts_ns = ev.time_ns().map_or(0, |t| u64::try_from(t).unwrap_or(0));
        let sni = ev.sni().filter(|_| tls).map_or_else(|| "-".to_string(), str::to_string);
        let key = ServerKey { ip, port, sni };
        if self.servers.len() >= self.max_servers && !self.servers.contains_key(&key) {
            self.servers_dropped += 1;
            return Added::Dropped;
        }
        let p = self.servers.entry(key.clone()).or_default();
        for local in ev.local_processes() {
            bump(&mut p.local, local, &mut p.keys_dropped);
        }
        if p.handshakes + p.plaintext_flows + p.ssh_sessions == 0 || ts_ns < p.first_ns {
            p.first_ns = ts_ns;
        }
        p.last_ns = p.last_ns.max(ts_ns);
        let d = &mut p.keys_dropped;
        if kind == "plaintext" {
            p.plaintext_flows += 1;
            if let Some(proto) = ev.plaintext_protocol().filter(|p| *p != "unknown") {
                bump(&mut p.plaintext, proto.to_string(), d);
            }
        }
        if kind == "ssh" {
            p.ssh_sessions += 1;
            if let Some(s) = ev.ssh_software() {
                bump(&mut p.ssh, format!("software {s}"), d);
            }
            if ev.has_ssh_negotiated() {
                let kinds = [
                    ("kex", "kex"),
                    ("host_key", "host_key"),
                    ("compression", "compression_c2s"),
                    ("cipher", "cipher_c2s"),
                    ("cipher", "cipher_s2c"),
                    ("mac", "mac_c2s"),
                    ("mac", "mac_s2c"),
                ];
                let mut seen: Vec<String> = Vec::new();
                for (what, field) in kinds {
                    let Some(alg) = ev.ssh_negotiated(field) else { continue };
                    let k = format!("{what} {alg}");
                    if !seen.contains(&k) {
                        bump(&mut p.ssh, k.clone(), d);
                        seen.push(k);
                    }
                }
            }
        }
        if probe {
            p.probes += 1;
            if let Some(c) = ev.cert() {
                p.cert = Some(cert_facts(&c, ts_ns, "probe"));
            }
        } else if tls {
            p.handshakes += 1;
            if let Some(v) = ev.version() {
                bump(&mut p.versions, version_name(v), d);
            }
            if let Some(c) = ev.cipher() {
                bump(&mut p.ciphers, c.to_string(), d);
            }
            if let Some(g) = ev.curve() {
                bump(&mut p.groups, g.to_string(), d);
            }
            if let Some(v) = ev.client_max_version() {
                bump(&mut p.client_max_versions, version_name(v), d);
            }
            if let Some(c) = ev.cert() {
                p.cert = Some(cert_facts(&c, ts_ns, "passive"));
            }
        }
        for f in ev.findings() {
            let (Some(entry), Some(severity)) = (lookup(f.id), f.severity) else {
                *unknown_findings += 1;
                continue;
            };
            let accepted = f.accepted.is_some();
            if !accepted {
                p.worst = p.worst.max(Some(severity));
            }
            let rows = if accepted { &mut p.accepted } else { &mut p.findings };
            if !rows.contains_key(entry.id) && rows.len() >= super::MAX_KEYS_PER_SERVER {
                p.keys_dropped += 1;
                continue;
            }
            let row = rows.entry(entry.id).or_insert_with(|| FindingRow {
                id: entry.id,
                severity,
                hipaa_ref: entry.hipaa_ref,
                rule: f.rule.to_string(),
                count: 0,
                evidence: f.evidence.to_string(),
                subjects: Vec::new(),
                acceptance: None,
            });
            if let Some((reason, expires)) = f.accepted {
                row.acceptance = Some(Acceptance::Accepted { reason: reason.into(), expires: expires.into() });
            } else if let Some((reason, expired)) = f.expired {
                row.acceptance = Some(Acceptance::Expired { reason: reason.into(), expired: expired.into() });
            }
            row.count += 1;
            row.severity = row.severity.max(severity);
            if let Some(s) = subject(&f, ev) {
                if !row.subjects.contains(&s) && row.subjects.len() < super::MAX_SUBJECTS {
                    row.subjects.push(s);
                }
            }
        }
        Added::Server(key)
    }
}
