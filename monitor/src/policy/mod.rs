//! Policy: turns a handshake's facts into findings {id, severity, hipaa_ref, evidence} under the
//! active profile. Must never see payload bytes and never put anything but protocol facts into
//! evidence.
mod rules;

use serde::Serialize;

use crate::handshake::Handshake;

/// Finding severity, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One broken (or, for `info`, noteworthy) rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub hipaa_ref: &'static str,
    /// The profile rule that decided, e.g. `hipaa/min-version`.
    pub rule: &'static str,
    pub evidence: String,
}

/// Settings the rules read.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Certificates expiring within this many seconds of the packet time are `tls.cert.expiring`.
    pub expiry_warning_s: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { expiry_warning_s: 30 * 86_400 }
    }
}

impl Policy {
    /// All findings for one handshake, worst first.
    pub fn evaluate(&self, hs: &Handshake) -> Vec<Finding> {
        let mut out = Vec::new();
        rules::all(self, hs, &mut out);
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(b.id)));
        out
    }
}
