//! Sink, period report as HTML, the sections after the header: the verification stamps, the
//! posture per day (charts and table), the servers worst first, plaintext flows, certificates,
//! accepted risks and coverage. Rendering only; every string from a log goes through `esc`.
use std::fmt::Write;

use super::html::{esc, num, sev_badge, severity_color, version_color, version_rank};
use super::json::accepted;
use super::svg::{bars, Series};
use super::{day_name, share, Period, SEVERITIES};
use crate::sink::inventory::{fix, Verdict};
use crate::sink::report::{expired_note, facts, problems, server_label, verdict_word};

pub(super) fn stamps(s: &mut String, p: &Period) {
    s.push_str(r#"<section class="first" id="verification"><h2>1. Audit log verification</h2>"#);
    if p.stamps.is_empty() {
        s.push_str(r#"<p class="note">No audit log: a replay of captures, verified by nothing but their own bytes.</p></section>"#);
        return;
    }
    s.push_str(r#"<p class="note">Each agent's log is checked line by line: every hash recomputed, every seq and prev followed across its rolled files. The reporting agent is named after the directory its log was collected in.</p>"#);
    s.push_str("<table><thead><tr><th style=\"width:19%\">Agent</th><th style=\"width:15%\">Hash chain</th><th class=\"n\" style=\"width:8%\">Lines</th><th style=\"width:23%\">First seq / hash</th><th style=\"width:23%\">Last seq / hash</th><th style=\"width:12%\">Signatures</th></tr></thead><tbody>");
    for (i, st) in p.stamps.iter().enumerate() {
        let chain = match &st.first_bad {
            None => format!(r#"<span class="good" data-k="agent.{i}.chain">intact</span>"#),
            Some(b) => format!(
                r#"<span class="bad" data-k="agent.{i}.chain">BROKEN</span> at <code>{}</code> line {}: {}"#,
                esc(&b.file),
                b.line,
                esc(&b.problem)
            ),
        };
        // File names only (the JSON report has the paths): the table stays readable.
        let base =
            |f: &String| std::path::Path::new(f).file_name().map_or(f.clone(), |n| n.to_string_lossy().into_owned());
        let files: Vec<String> = st.files.iter().map(|f| format!("<code>{}</code>", esc(&base(f)))).collect();
        let seqhash = |seq: Option<u64>, hash: &Option<String>| {
            format!(
                "{} <code>{}</code>",
                seq.map_or("-".into(), |v| v.to_string()),
                esc(hash.as_deref().unwrap_or("-"))
            )
        };
        let sig = if st.checkpoint_lines > 0 {
            format!("{} ({} checkpoint lines)", esc(&st.signatures), st.checkpoint_lines)
        } else {
            esc(&st.signatures)
        };
        let _ = write!(
            s,
            r#"<tr><td><b>{}</b><br><span class="note">{}</span></td><td>{chain}</td>{}<td>{}</td><td>{}</td><td data-k="agent.{i}.signatures">{sig}</td></tr>"#,
            esc(&st.agent),
            files.join("<br>"),
            num(&format!("agent.{i}.lines"), st.lines),
            seqhash(st.first_seq, &st.first_hash),
            seqhash(st.last_seq, &st.last_hash),
        );
    }
    s.push_str("</tbody></table></section>");
}

/// Longest period (days) whose days without events are drawn as empty bars.
const MAX_FILLED_DAYS: i64 = 62;

/// Days between the first and the last day with events that had none.
fn gap_days(p: &Period) -> i64 {
    let parse = |d: &String| super::fields::parse_time(d).map(|ns| (ns / 86_400_000_000_000) as i64);
    match (p.days.keys().next().and_then(parse), p.days.keys().next_back().and_then(parse)) {
        (Some(a), Some(b)) => b - a + 1 - p.days.len() as i64,
        _ => 0,
    }
}

/// The days the charts draw: every day from the first to the last when the span is short
/// (the ones without events empty), else only the days with events.
fn chart_days(p: &Period) -> (Vec<String>, Vec<super::Day>) {
    let span = gap_days(p) + p.days.len() as i64;
    let first = p.days.keys().next().and_then(|d| super::fields::parse_time(d));
    match first {
        Some(start) if span <= MAX_FILLED_DAYS => (0..span)
            .map(|i| {
                let name = day_name(start + i128::from(i) * 86_400_000_000_000);
                let d = p.days.get(&name).cloned().unwrap_or_default();
                (name, d)
            })
            .unzip(),
        _ => p.days.iter().map(|(k, d)| (k.clone(), d.clone())).unzip(),
    }
}

pub(super) fn trend(s: &mut String, p: &Period) {
    s.push_str(r#"<section id="trend"><h2>2. Posture over time (per UTC day)</h2>"#);
    if p.days.is_empty() {
        s.push_str(r#"<p class="note">No events in the period.</p></section>"#);
        return;
    }
    let (days, chart_days) = chart_days(p);
    if days.len() != p.days.len() {
        s.push_str(r#"<p class="note">The charts show every day of the period, days without events empty.</p>"#);
    } else if days.len() > 1 && gap_days(p) > 0 {
        s.push_str(r#"<p class="note">The charts show only the days with events (the period is too long to draw every day).</p>"#);
    }
    let mut versions: Vec<&String> = p.days.values().flat_map(|d| d.versions.keys()).collect();
    versions.sort_by_key(|v| (version_rank(v), v.to_string()));
    versions.dedup();
    let vseries: Vec<Series> = versions
        .iter()
        .map(|v| Series {
            name: v.to_string(),
            color: version_color(v),
            values: chart_days.iter().map(|d| d.versions.get(*v).copied().unwrap_or(0) as f64).collect(),
        })
        .collect();
    let shares = [
        Series {
            name: "forward secrecy".into(),
            color: "#1f77b4",
            values: chart_days.iter().map(|d| share(d.pfs, d.negotiated)).collect(),
        },
        Series {
            name: "post-quantum group".into(),
            color: "#2ca02c",
            values: chart_days.iter().map(|d| share(d.pq, d.negotiated)).collect(),
        },
    ];
    let sev: Vec<Series> = SEVERITIES
        .iter()
        .map(|sv| Series {
            name: sv.as_str().into(),
            color: severity_color(*sv),
            values: chart_days.iter().map(|d| d.findings.get(sv.as_str()).copied().unwrap_or(0) as f64).collect(),
        })
        .collect();
    let _ = write!(
        s,
        "<figure><figcaption>TLS handshakes by negotiated version</figcaption>{}</figure>",
        bars("TLS handshakes per day by version", &days, &vseries, true, false)
    );
    let _ = write!(
        s,
        "<figure><figcaption>Share of handshakes with forward secrecy and with a post-quantum key exchange</figcaption>{}</figure>",
        bars("forward secrecy and post-quantum share per day", &days, &shares, false, true)
    );
    let _ = write!(
        s,
        "<figure><figcaption>Findings by severity (accepted risks not counted)</figcaption>{}</figure>",
        bars("findings per day by severity", &days, &sev, true, false)
    );
    s.push_str("<table class=\"days\"><thead><tr><th>Day (UTC)</th><th class=\"n\">Hand&shy;shakes</th><th class=\"v\">Versions</th><th class=\"n\">PFS %</th><th class=\"n\">PQ %</th>");
    for sv in SEVERITIES {
        let _ = write!(s, "<th class=\"n\" title=\"findings of severity {0}\">{0}</th>", sv.as_str());
    }
    s.push_str("<th class=\"n\">Acc&shy;epted</th><th class=\"n\">Plain&shy;text flows</th></tr></thead><tbody>");
    for (day, d) in p.day_rows() {
        let v: Vec<String> = d.versions.iter().map(|(k, n)| format!("{} ×{n}", esc(k))).collect();
        let _ = write!(
            s,
            "<tr><td class=\"d\">{}</td>{}<td class=\"v\">{}</td>{}{}",
            esc(day),
            num(&format!("{day}.handshakes"), d.handshakes),
            v.join(", "),
            num(&format!("{day}.pfs_share"), format!("{:.1}", share(d.pfs, d.negotiated))),
            num(&format!("{day}.pq_share"), format!("{:.1}", share(d.pq, d.negotiated))),
        );
        for sv in SEVERITIES {
            s.push_str(&num(&format!("{day}.{}", sv.as_str()), d.findings.get(sv.as_str()).copied().unwrap_or(0)));
        }
        let _ = write!(
            s,
            "{}{}</tr>",
            num(&format!("{day}.accepted"), d.accepted),
            num(&format!("{day}.plaintext_flows"), d.plaintext_flows)
        );
    }
    s.push_str("</tbody></table></section>");
}

pub(super) fn servers(s: &mut String, p: &Period) {
    s.push_str(r#"<section id="servers"><h2>3. Servers, worst first</h2>"#);
    let sorted = p.inventory.sorted();
    let (bad, good): (Vec<_>, Vec<_>) = sorted.into_iter().partition(|(_, q)| q.verdict() == Verdict::NonCompliant);
    if bad.is_empty() {
        s.push_str(r#"<p class="good">No server is non-compliant.</p>"#);
    }
    for (k, q) in &bad {
        let srv = k.addr();
        let by = p.reporters(k);
        let by = if by.is_empty() { String::new() } else { format!(" · reported by {}", esc(&by.join(", "))) };
        let _ = write!(
            s,
            r#"<div class="server"><h3>{} — <span class="bad">{}</span></h3><p class="note">{}{by}</p><table><thead><tr><th style="width:10%">Severity</th><th>Fix</th><th style="width:22%">Finding</th><th style="width:14%">HIPAA</th><th class="n" style="width:8%">Count</th></tr></thead><tbody>"#,
            esc(&server_label(k)),
            verdict_word(q.verdict()),
            esc(&facts(q)),
        );
        for f in problems(q) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}{}</td><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td></tr>",
                sev_badge(f.severity),
                esc(&fix(f, &srv)),
                esc(&expired_note(f)),
                esc(f.id),
                esc(f.hipaa_ref),
                f.count
            );
        }
        s.push_str("</tbody></table></div>");
    }
    if !good.is_empty() {
        s.push_str("<h3>Compliant servers</h3><table><thead><tr><th style=\"width:30%\">Server</th><th>What was seen</th><th>Suggested</th></tr></thead><tbody>");
        for (k, q) in &good {
            let srv = k.addr();
            let hints: Vec<String> = problems(q).map(|f| esc(&fix(f, &srv))).collect();
            let by = p.reporters(k);
            let by = if by.is_empty() {
                String::new()
            } else {
                format!("<br><span class=\"note\">reported by {}</span>", esc(&by.join(", ")))
            };
            let _ = write!(
                s,
                "<tr><td>{}{by}</td><td>{}</td><td>{}</td></tr>",
                esc(&server_label(k)),
                esc(&facts(q)),
                if hints.is_empty() { "-".into() } else { hints.join("<br>") }
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>");
}

pub(super) fn rest(s: &mut String, p: &Period) {
    s.push_str(r#"<section id="plaintext"><h2>4. Plaintext flows by protocol</h2><p class="note">Counts only: no payload and no PHI value is ever kept.</p>"#);
    if p.plaintext.is_empty() {
        s.push_str("<p>No flow in clear was recognised.</p>");
    } else {
        s.push_str("<table><thead><tr><th>Protocol</th><th class=\"n\">Flows in clear</th><th class=\"n\">With PHI (plaintext.phi)</th></tr></thead><tbody>");
        for (proto, r) in &p.plaintext {
            let _ = write!(
                s,
                "<tr><td>{}</td>{}{}</tr>",
                esc(proto),
                num(&format!("plaintext.{proto}.flows"), r.flows),
                num(&format!("plaintext.{proto}.phi_flows"), r.phi_flows)
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>");

    s.push_str(r#"<section id="certificates"><h2>5. Certificates, soonest expiry first</h2><p class="note">Days left are counted from the last event of the period. TLS 1.3 certificates are seen only when probed.</p>"#);
    let certs = p.certificates();
    if certs.is_empty() {
        s.push_str("<p>No certificate was seen.</p>");
    } else {
        s.push_str("<table><thead><tr><th>Server</th><th style=\"width:24%\">Subject CN</th><th style=\"width:13%\">Not after</th><th class=\"n\" style=\"width:8%\">Days left</th><th style=\"width:9%\">Source</th></tr></thead><tbody>");
        for c in certs {
            let class = if c.days_left < 0 { " class=\"d bad\"" } else { " class=\"d\"" };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td{class}>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&server_label(c.server)),
                esc(c.cn),
                esc(c.not_after),
                c.days_left,
                c.source
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>");

    s.push_str(r#"<section id="risks"><h2>6. Accepted risks</h2>"#);
    let risks = accepted(p);
    if risks.is_empty() {
        s.push_str("<p>No exception applied to any finding in the period.</p>");
    } else {
        s.push_str("<table><thead><tr><th>Server</th><th>Finding</th><th>State</th><th>Reason</th><th>Until</th><th class=\"n\">Count</th></tr></thead><tbody>");
        for r in risks {
            let get = |k: &str| esc(r[k].as_str().unwrap_or(""));
            let _ = write!(
                s,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                get("server"),
                get("id"),
                get("state"),
                get("reason"),
                get("expires"),
                r["count"]
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>");

    s.push_str(r#"<section id="coverage"><h2>7. Coverage: what could not be seen</h2><table><thead><tr><th>What</th><th class="n">Count</th><th>Meaning</th></tr></thead><tbody>"#);
    for (what, count, meaning) in p.coverage() {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td>{}<td>{}</td></tr>",
            esc(&what),
            num(&format!("coverage.{what}"), count),
            esc(&meaning)
        );
    }
    s.push_str("</tbody></table></section>");
}
