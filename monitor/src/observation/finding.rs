//! Observation, findings: what the policy concluded about a flow ({id, severity, hipaa_ref,
//! rule, evidence}) and what an exception made of it. Plain data, shared by the policy that
//! makes findings and the sinks that write them. Must never hold payload bytes.
use serde::Serialize;

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
    /// What a config-file exception made of it: `accepted` or `exception_expired` in JSON.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub acceptance: Option<Acceptance>,
}

impl Finding {
    /// Whether an exception holding at the handshake's time accepted it (it then fails nothing:
    /// not `--fail-on`, not the server's verdict).
    pub fn is_accepted(&self) -> bool {
        matches!(self.acceptance, Some(Acceptance::Accepted { .. }))
    }
}

/// What an exception did to one finding (absent from the finding when none matched).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Acceptance {
    /// A matching exception held at the handshake's packet time: reported, but an accepted risk.
    #[serde(rename = "accepted")]
    Accepted { reason: String, expires: String },
    /// The only matching exceptions had expired by the handshake's packet time: counts as usual.
    #[serde(rename = "exception_expired")]
    Expired { reason: String, expired: String },
}
