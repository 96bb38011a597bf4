//! Policy: turns a handshake's facts into findings {id, severity, hipaa_ref, evidence} under the
//! active profile. Must never see payload bytes and never put anything but protocol facts into
//! evidence.
pub mod catalogue;
#[cfg(test)]
mod dtls_version_tests;
pub mod exceptions;
mod mtls_rules;
mod plain_rules;
mod profile;
mod rules;
mod ssh_rules;
#[cfg(test)]
mod suite_verdict_tests;
mod tables;

pub use catalogue::FINDING_IDS;
pub use mtls_rules::MtlsRequired;
pub(crate) use profile::rule;
pub use profile::{Profile, KNOWN_PROFILES};

pub use crate::observation::{Finding, Severity};

use crate::inspect::plaintext::PlainFacts;
use crate::observation::{Endpoint, Handshake, PlainFlow, SshFlow};

/// Settings the rules read.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The profile the rules judge under (and prefix their rule names with).
    pub profile: Profile,
    /// Certificates expiring within this many seconds of the packet time are `tls.cert.expiring`.
    pub expiry_warning_s: i64,
    /// Accepted risks from the config file (`[[exception]]`).
    pub exceptions: Vec<exceptions::Exception>,
    /// `[severity]` from the config file: finding id → the severity it is reported with.
    pub severity_overrides: Vec<(String, Severity)>,
    /// Servers that must require client certificates (`[[mtls-required]]`).
    pub mtls_required: Vec<MtlsRequired>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            profile: Profile::Hipaa,
            expiry_warning_s: 30 * 86_400,
            exceptions: Vec::new(),
            severity_overrides: Vec::new(),
            mtls_required: Vec::new(),
        }
    }
}

impl Policy {
    /// All findings for one handshake, worst first, with the exceptions applied (at the
    /// handshake's packet time).
    pub fn evaluate(&self, hs: &Handshake) -> Vec<Finding> {
        self.evaluate_upgraded(hs, None)
    }

    /// As [`Policy::evaluate`], for a session that began in clear and upgraded: what the clear
    /// prefix showed (credentials sent before the upgrade) is judged too.
    pub fn evaluate_upgraded(&self, hs: &Handshake, upgrade: Option<&PlainFacts>) -> Vec<Finding> {
        let mut out = Vec::new();
        rules::all(self, hs, &mut out);
        if let Some(f) = upgrade {
            plain_rules::all(self, f, &mut out);
        }
        if hs.probe.is_some() {
            let when = probe_time(hs.ts_ns);
            for f in &mut out {
                f.evidence = format!("{} (probe at {when})", f.evidence);
            }
        }
        let sni = hs.client_hello.as_ref().and_then(|ch| ch.sni.as_deref());
        self.settle(out, hs.server, sni, hs.ts_ns)
    }

    /// All findings for a flow that stayed in clear, like [`Policy::evaluate`].
    pub fn evaluate_plain(&self, flow: &PlainFlow) -> Vec<Finding> {
        let mut out = Vec::new();
        plain_rules::all(self, &flow.facts, &mut out);
        self.settle(out, flow.server, None, flow.ts_ns)
    }

    /// All findings for an SSH session, like [`Policy::evaluate`].
    pub fn evaluate_ssh(&self, flow: &SshFlow) -> Vec<Finding> {
        let mut out = Vec::new();
        ssh_rules::all(self, &flow.facts, &mut out);
        self.settle(out, flow.server, None, flow.ts_ns)
    }

    /// Severity overrides, worst first, then the exceptions (at packet time `ts_ns`).
    fn settle(&self, mut out: Vec<Finding>, server: Endpoint, sni: Option<&str>, ts_ns: u64) -> Vec<Finding> {
        for f in &mut out {
            if let Some((_, sev)) = self.severity_overrides.iter().find(|(id, _)| id == f.id) {
                f.severity = *sev;
            }
        }
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
        exceptions::apply(&self.exceptions, server.addr.to_ip(), server.port, sni, ts_ns, &mut out);
        out
    }
}

/// A probe's wall-clock time in its findings' evidence: `2026-12-02 11:40:05 UTC`.
fn probe_time(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ns / 1_000_000_000) as i64);
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.ok().and_then(|t| t.format(&f).ok()).unwrap_or_else(|| ns.to_string())
}

/// The class of the negotiated suite whatever the profile, as the metrics label it: `insecure`
/// (no encryption, broken or export cipher, anonymous), `legacy` (3DES, IDEA, SEED), `aead`,
/// `cbc`, `other` (an unknown id, or SSLv2), `none` (no ServerHello).
pub fn cipher_class(hs: &Handshake) -> &'static str {
    let Some(sh) = &hs.server_hello else { return "none" };
    if sh.sslv2_kind.is_some() {
        return "insecure";
    }
    match rules::suite(hs) {
        None => "other",
        Some(c) if rules::suite_insecure(c).is_some() => "insecure",
        Some(c) if rules::suite_legacy(c) => "legacy",
        Some(c) if rules::suite_aead(c) => "aead",
        Some(c) if c.enc_mode == tls_parser::TlsCipherEncMode::Cbc => "cbc",
        Some(_) => "other",
    }
}

/// Forward secrecy of the handshake, as the metrics label it: `no` when the key exchange is
/// static (or TLS 1.3 psk_ke: the same rule as `tls.kx.no-pfs`), `yes` when the suite is known
/// and ephemeral, `unknown` otherwise.
pub fn forward_secrecy(hs: &Handshake) -> &'static str {
    match (rules::no_forward_secrecy(hs), rules::suite(hs)) {
        (Some(_), _) => "no",
        (None, Some(_)) => "yes",
        (None, None) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::FINDING_IDS;

    /// Every id literal the rules and the TLS inspector emit is in the catalogue (a rule's
    /// `entry!` would not build otherwise; the inspector's anomaly ids are looked up at run
    /// time), and every catalogue row is emitted somewhere.
    #[test]
    fn catalogue_lists_every_emitted_id() {
        let sources = [
            include_str!("rules.rs"),
            include_str!("plain_rules.rs"),
            include_str!("ssh_rules.rs"),
            include_str!("mtls_rules.rs"),
            include_str!("../inspect/tls/mod.rs"),
        ];
        let mut seen: Vec<&str> = Vec::new();
        for src in sources {
            for piece in src.split('"').skip(1).step_by(2) {
                let id_like =
                    piece.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
                let family =
                    ["tls.", "anomaly.", "plaintext.", "probe.", "ssh.", "tds."].iter().any(|f| piece.starts_with(f));
                if id_like && family && !seen.contains(&piece) {
                    seen.push(piece);
                }
            }
        }
        for id in &seen {
            assert!(FINDING_IDS.contains(id), "{id} is emitted but not in FINDING_IDS");
        }
        for id in FINDING_IDS {
            assert!(seen.contains(id), "{id} is in FINDING_IDS but never emitted");
        }
    }
}
