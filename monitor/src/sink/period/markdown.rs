//! Sink, period report in Markdown: the same sections and figures as the HTML (which the JSON
//! document is the source of), for a wiki or a ticket. Rendering only; escapes every string
//! that came from a log.
use std::fmt::Write;

use super::json::accepted;
use super::{day_name, share, Period, SEVERITIES};
use crate::sink::inventory::{fix, Verdict};
use crate::sink::report::{expired_note, facts, md, problems, server_label, verdict_word};

fn versions(d: &super::Day) -> String {
    let v: Vec<String> = d.versions.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

pub fn render(p: &Period) -> String {
    let mut s = String::new();
    let inv = &p.inventory;
    let names: Vec<String> = p.sources.iter().map(|c| md(c)).collect();
    let _ = writeln!(s, "# TLS posture report: {}\n", names.join(", "));
    let (from, to) = (p.first_ns.map(day_name), p.last_ns.map(day_name));
    let _ = writeln!(
        s,
        "- Period: {} to {} (UTC, event time)",
        from.as_deref().unwrap_or("-"),
        to.as_deref().unwrap_or("-")
    );
    let _ = writeln!(s, "- Profile: `{}`", md(&inv.profile));
    let _ = writeln!(s, "- Verdict: **{}**", p.verdict_word());
    let n = inv.servers.len();
    let _ = writeln!(s, "- Servers: {n}, {} non-compliant; events: {}", inv.non_compliant(), p.events);

    let _ = writeln!(s, "\n## Audit log verification\n");
    if p.stamps.is_empty() {
        let _ = writeln!(s, "No audit log: a replay of captures.");
    }
    for st in &p.stamps {
        let chain = match &st.first_bad {
            None => "chain intact".to_string(),
            Some(b) => format!("chain BROKEN at {} line {}: {}", md(&b.file), b.line, md(&b.problem)),
        };
        let _ = writeln!(
            s,
            "- **{}**: {chain}; {} lines in {} files; first seq {} hash `{}`; last seq {} hash `{}`; signatures: {}",
            md(&st.agent),
            st.lines,
            st.files.len(),
            st.first_seq.map_or("-".into(), |v| v.to_string()),
            st.first_hash.as_deref().unwrap_or("-"),
            st.last_seq.map_or("-".into(), |v| v.to_string()),
            st.last_hash.as_deref().unwrap_or("-"),
            md(&st.signatures)
        );
    }

    let _ = writeln!(s, "\n## Posture per day (UTC)\n");
    let _ = writeln!(
        s,
        "| Day | Handshakes | Versions | PFS % | PQ % | Critical | High | Medium | Low | Info | Accepted | Plaintext flows |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (day, d) in p.day_rows() {
        let sev: Vec<String> =
            SEVERITIES.iter().map(|v| d.findings.get(v.as_str()).copied().unwrap_or(0).to_string()).collect();
        let _ = writeln!(
            s,
            "| {day} | {} | {} | {:.1} | {:.1} | {} | {} | {} |",
            d.handshakes,
            md(&versions(d)),
            share(d.pfs, d.negotiated),
            share(d.pq, d.negotiated),
            sev.join(" | "),
            d.accepted,
            d.plaintext_flows
        );
    }

    let sorted = inv.sorted();
    let _ = writeln!(s, "\n## Servers (worst first)\n");
    if sorted.is_empty() {
        let _ = writeln!(s, "none\n");
    }
    for (k, post) in &sorted {
        let srv = k.addr();
        let by = p.reporters(k);
        let by = if by.is_empty() { String::new() } else { format!(" — reported by {}", md(&by.join(", "))) };
        let _ = writeln!(s, "### {} — {}{by}\n", md(&server_label(k)), verdict_word(post.verdict()));
        let _ = writeln!(s, "{}\n", md(&facts(post)));
        for f in problems(post) {
            let note = md(&expired_note(f));
            let _ = writeln!(
                s,
                "- {} — {} (`{}`, HIPAA {}){note}",
                md(&fix(f, &srv)),
                f.severity.as_str(),
                f.id,
                md(f.hipaa_ref)
            );
        }
        if post.verdict() == Verdict::Compliant && problems(post).next().is_none() {
            let _ = writeln!(s, "- nothing to fix");
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## Plaintext flows by protocol (counts only)\n");
    if p.plaintext.is_empty() {
        let _ = writeln!(s, "none");
    } else {
        let _ = writeln!(s, "| Protocol | Flows in clear | With PHI (plaintext.phi) |\n|---|---:|---:|");
        for (proto, r) in &p.plaintext {
            let _ = writeln!(s, "| {} | {} | {} |", md(proto), r.flows, r.phi_flows);
        }
    }

    let _ = writeln!(s, "\n## Certificates (soonest expiry first)\n");
    let certs = p.certificates();
    if certs.is_empty() {
        let _ = writeln!(s, "none seen");
    } else {
        let _ = writeln!(s, "| Server | CN | Not after | Days left | Source |\n|---|---|---|---:|---|");
        for c in certs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                md(&server_label(c.server)),
                md(c.cn),
                md(c.not_after),
                c.days_left,
                c.source
            );
        }
    }

    let _ = writeln!(s, "\n## Accepted risks\n");
    let risks = accepted(p);
    if risks.is_empty() {
        let _ = writeln!(s, "none");
    }
    for r in risks {
        let get = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let _ = writeln!(
            s,
            "- {} {} ({}): {} until {} — {}",
            md(&get("server")),
            md(&get("id")),
            md(&get("state")),
            md(&get("reason")),
            md(&get("expires")),
            r["count"]
        );
    }

    let _ = writeln!(s, "\n## Coverage: what could not be seen\n");
    for (what, count, meaning) in p.coverage() {
        let _ = writeln!(s, "- {count} {what} — {}", md(&meaning));
    }
    s
}
