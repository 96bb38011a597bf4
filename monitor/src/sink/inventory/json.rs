//! Sink, posture inventory as JSON: the document `--report json` writes and /inventory serves,
//! with stable field names. Rendering only; must never add a fact the inventory does not hold.
use serde::ser::{SerializeSeq as _, Serializer};
use serde::Serialize;

use super::Inventory;
use crate::observation::Acceptance;
use crate::sink::json::rfc3339;

impl Inventory {
    /// The JSON form as a value (tests, small inventories): stable field names.
    pub fn to_json(&self, captures: &[String]) -> serde_json::Value {
        serde_json::to_value(self.json_document(captures)).unwrap_or_default()
    }

    /// The JSON document `--report json` writes and /inventory serves, serialized one server
    /// at a time: a full inventory (10 000 servers, ~20 MB of JSON) never exists as a value
    /// tree (that took ~200 MB). Fields in alphabetical order, as a value's keys come out.
    pub fn json_document<'a>(&'a self, captures: &'a [String]) -> impl Serialize + 'a {
        #[derive(Serialize)]
        struct Document<'a> {
            captures: &'a [String],
            not_inspected: &'a [crate::observation::Loss],
            profile: &'a str,
            servers: Servers<'a>,
            totals: serde_json::Value,
            verdict: super::Verdict,
        }
        Document {
            captures,
            not_inspected: &self.losses,
            profile: &self.profile,
            servers: Servers(self),
            totals: serde_json::json!({
                "servers": self.servers.len(),
                "compliant": self.servers.len() - self.non_compliant(),
                "non_compliant": self.non_compliant(),
                "handshakes": self.handshakes,
                "servers_dropped": self.servers_dropped,
            }),
            verdict: self.verdict(),
        }
    }
}

/// The servers, worst first, each made a value only while it is written.
struct Servers<'a>(&'a Inventory);

impl Serialize for Servers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted = self.0.sorted();
        let mut seq = s.serialize_seq(Some(sorted.len()))?;
        for (k, p) in sorted {
            seq.serialize_element(&server_json(k, p))?;
        }
        seq.end()
    }
}

pub(crate) fn server_json(k: &super::ServerKey, p: &super::Posture) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = p
        .findings_sorted()
        .into_iter()
        .map(|f| {
            let mut v = finding_fields(f);
            v["subjects"] = serde_json::json!(f.subjects);
            v["fix"] = serde_json::json!(super::fix(f, &k.addr()));
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
            let mut v = finding_fields(f);
            v["reason"] = serde_json::json!(reason);
            v["expires"] = serde_json::json!(expires);
            v
        })
        .collect();
    let mut v = serde_json::json!({
        "ip": k.ip.to_string(),
        "port": k.port,
        "sni": k.sni,
        "verdict": p.verdict(),
        "worst_severity": p.worst,
        "handshakes": p.handshakes,
        "probes": p.probes,
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
    });
    // SSH servers only, so a TLS server's entry reads as before.
    if p.ssh_sessions > 0 {
        v["ssh_sessions"] = serde_json::json!(p.ssh_sessions);
        v["ssh"] = serde_json::json!(p.ssh);
    }
    // Live with process attribution only: the local processes that spoke to or served it.
    if !p.local.is_empty() {
        v["local_processes"] = serde_json::json!(p.local);
    }
    v
}

/// The fields every finding of a server carries, accepted or not (serde_json sorts the keys,
/// so the order they are added in does not show).
fn finding_fields(f: &super::FindingRow) -> serde_json::Value {
    serde_json::json!({
        "id": f.id,
        "severity": f.severity,
        "hipaa_ref": f.hipaa_ref,
        "rule": f.rule,
        "count": f.count,
        "evidence": f.evidence,
    })
}
