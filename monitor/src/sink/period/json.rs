//! Sink, period report as JSON: the document `tlsmon report --format json` writes, with stable
//! field names; the source the tests hold the HTML and Markdown to. Rendering only; must never
//! add a fact the model does not hold.
use serde::ser::{SerializeSeq as _, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use super::{day_name, share, time_name, Period, SEVERITIES};

/// Per-day figures, with the shares as every format shows them.
pub fn day_json(date: &str, d: &super::Day) -> Value {
    let findings: serde_json::Map<String, Value> = SEVERITIES
        .iter()
        .map(|s| (s.as_str().to_string(), json!(d.findings.get(s.as_str()).copied().unwrap_or(0))))
        .collect();
    json!({
        "date": date,
        "handshakes": d.handshakes,
        "versions": d.versions,
        "negotiated": d.negotiated,
        "pfs": d.pfs,
        "pfs_share": share(d.pfs, d.negotiated),
        "pq": d.pq,
        "pq_share": share(d.pq, d.negotiated),
        "findings": findings,
        "accepted": d.accepted,
        "plaintext_flows": d.plaintext_flows,
        "ssh_sessions": d.ssh_sessions,
        "probes": d.probes,
    })
}

/// The whole document; servers serialized one at a time (a full inventory never becomes one
/// value tree).
pub fn document(p: &Period) -> impl Serialize + '_ {
    #[derive(Serialize)]
    struct Document<'a> {
        accepted_risks: Vec<Value>,
        agents: &'a [super::Stamp],
        certificates: Vec<Value>,
        coverage: Vec<Value>,
        days: Vec<Value>,
        period: Value,
        plaintext: Value,
        profile: &'a str,
        servers: Servers<'a>,
        sources: &'a [String],
        totals: Value,
        verdict: &'static str,
    }
    let inv = &p.inventory;
    let days: Vec<Value> = p.day_rows().map(|(d, day)| day_json(d, day)).collect();
    let sum = |f: fn(&super::Day) -> u64| p.days.values().map(f).sum::<u64>();
    let findings: serde_json::Map<String, Value> = SEVERITIES
        .iter()
        .map(|s| {
            (s.as_str().to_string(), json!(p.days.values().filter_map(|d| d.findings.get(s.as_str())).sum::<u64>()))
        })
        .collect();
    let (neg, pfs, pq) = (sum(|d| d.negotiated), sum(|d| d.pfs), sum(|d| d.pq));
    Document {
        accepted_risks: accepted(p),
        agents: &p.stamps,
        certificates: p
            .certificates()
            .into_iter()
            .map(|c| {
                json!({"server": c.server.addr(), "sni": c.server.sni, "subject_cn": c.cn, "not_after": c.not_after,
                       "days_left": c.days_left, "source": c.source})
            })
            .collect(),
        coverage: p
            .coverage()
            .into_iter()
            .map(|(what, count, meaning)| json!({"what": what, "count": count, "meaning": meaning}))
            .collect(),
        days,
        period: json!({
            "since": p.since.map(time_name),
            "until": p.until.map(time_name),
            "first_event": p.first_ns.map(time_name),
            "last_event": p.last_ns.map(time_name),
            "first_day": p.first_ns.map(day_name),
            "last_day": p.last_ns.map(day_name),
        }),
        plaintext: json!(p.plaintext),
        profile: &inv.profile,
        servers: Servers(p),
        sources: &p.sources,
        totals: json!({
            "events": p.events,
            "handshakes": sum(|d| d.handshakes),
            "negotiated": neg,
            "pfs": pfs,
            "pfs_share": share(pfs, neg),
            "pq": pq,
            "pq_share": share(pq, neg),
            "findings": findings,
            "accepted": sum(|d| d.accepted),
            "plaintext_flows": sum(|d| d.plaintext_flows),
            "plaintext_phi_flows": p.plaintext.values().map(|r| r.phi_flows).sum::<u64>(),
            "servers": inv.servers.len(),
            "non_compliant": inv.non_compliant(),
            "compliant": inv.servers.len() - inv.non_compliant(),
            "servers_dropped": inv.servers_dropped,
        }),
        verdict: p.verdict_id(),
    }
}

/// Accepted risks and expired exceptions, per server and finding.
pub fn accepted(p: &Period) -> Vec<Value> {
    let mut out = Vec::new();
    for (k, post) in p.inventory.sorted() {
        for f in post.accepted_sorted() {
            if let Some(crate::observation::Acceptance::Accepted { reason, expires }) = &f.acceptance {
                out.push(
                    json!({"server": k.addr(), "sni": k.sni, "id": f.id, "severity": f.severity, "count": f.count,
                                "reason": reason, "expires": expires, "state": "accepted"}),
                );
            }
        }
        for f in post.findings_sorted() {
            if let Some(crate::observation::Acceptance::Expired { reason, expired }) = &f.acceptance {
                out.push(
                    json!({"server": k.addr(), "sni": k.sni, "id": f.id, "severity": f.severity, "count": f.count,
                                "reason": reason, "expires": expired, "state": "expired"}),
                );
            }
        }
    }
    out
}

struct Servers<'a>(&'a Period);

impl Serialize for Servers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted = self.0.inventory.sorted();
        let mut seq = s.serialize_seq(Some(sorted.len()))?;
        for (k, post) in sorted {
            let mut v = crate::sink::inventory::server_json(k, post);
            v["reported_by"] = json!(self.0.reporters(k));
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}
