//! Sink, period report as one self-contained HTML file: inline CSS, inline SVG charts, no
//! script, nothing fetched; prints to A4 with a page per section. Rendering only: every string
//! from a log (server names and SNI are chosen by whoever connects) is HTML-escaped, and key
//! figures carry `data-k` names so tests can hold them to the JSON report.
use std::fmt::Write;

use super::json::accepted;
use super::svg::{bars, Series};
use super::{day_name, share, Period, SEVERITIES};
use crate::policy::Severity;
use crate::sink::inventory::{fix, Verdict};
use crate::sink::report::{expired_note, facts, problems, server_label, verdict_word};

/// HTML-escape text and attribute values; control characters are dropped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root{--ink:#1b1f24;--mute:#5b6570;--line:#d0d4d9;--bad:#b42318;--good:#1a7f37;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;border-bottom:2px solid var(--ink);padding-bottom:4px;margin:32px 0 12px}
h3{font-size:15px;margin:18px 0 6px}
.sub,.note{color:var(--mute)}
table{width:100%;border-collapse:collapse;margin:8px 0 16px}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:var(--bg);font-weight:600;overflow-wrap:normal}
td.d{white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.n{white-space:nowrap}
table.days td,table.days th{padding:3px 4px}
table.days .v{min-width:9em}
code{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.kv th{width:28%}
.verdict{font-weight:700}.bad{color:var(--bad)}.good{color:var(--good)}
.sev{display:inline-block;min-width:64px;padding:0 6px;border-radius:3px;color:#fff;font-size:12px;text-align:center}
.sev-critical{background:#7f0000}.sev-high{background:#d62728}.sev-medium{background:#c25e00}.sev-low{background:#8a6d00}.sev-info{background:#6b7785}
.server{border:1px solid var(--line);border-radius:4px;padding:6px 12px;margin:12px 0}
.server h3{margin-top:6px}
figure{margin:8px 0 20px}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;max-width:760px;height:auto;display:block}
.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}
.sw{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px;border:1px solid #0003}
footer{margin-top:32px;color:var(--mute);font-size:12px}
@page{size:A4;margin:12mm}
@media print{
 body{font-size:9.5pt;max-width:none;padding:0}
 h2{margin-top:0}
 section{break-before:page}
 section.first{break-before:auto}
 .server,figure,tr{break-inside:avoid}
 table{font-size:8.5pt}
 thead{display:table-header-group}
 .sev{color:#000;background:none!important;border:1px solid #000}
}
"#;

fn version_color(v: &str) -> &'static str {
    match v {
        "SSL 2.0" | "SSL 3.0" => "#7f0000",
        "TLS 1.0" => "#d62728",
        "TLS 1.1" => "#ff7f0e",
        "TLS 1.2" => "#1f77b4",
        "TLS 1.3" => "#2ca02c",
        "DTLS 1.0" => "#bcbd22",
        "DTLS 1.2" => "#17becf",
        "DTLS 1.3" => "#98df8a",
        "none" => "#b8bec6",
        _ => "#9467bd",
    }
}

fn version_rank(v: &str) -> usize {
    const ORDER: [&str; 9] =
        ["SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3", "DTLS 1.0", "DTLS 1.2", "DTLS 1.3"];
    ORDER.iter().position(|o| *o == v).unwrap_or(if v == "none" { 99 } else { 50 })
}

pub fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#7f0000",
        Severity::High => "#d62728",
        Severity::Medium => "#ff7f0e",
        Severity::Low => "#e6c229",
        Severity::Info => "#9aa5b1",
    }
}

/// A number cell with its key.
fn num(key: &str, v: impl std::fmt::Display) -> String {
    format!(r#"<td class="n" data-k="{}">{v}</td>"#, esc(key))
}

fn sev_badge(s: Severity) -> String {
    format!(r#"<span class="sev sev-{0}">{0}</span>"#, s.as_str())
}

fn header(s: &mut String, p: &Period) {
    let inv = &p.inventory;
    let title = p.sources.join(", ");
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>TLS posture report: {}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let sum = |f: fn(&super::Day) -> u64| p.days.values().map(f).sum::<u64>();
    let (neg, pfs, pq) = (sum(|d| d.negotiated), sum(|d| d.pfs), sum(|d| d.pq));
    let verdict = inv.verdict();
    let class = if verdict == Verdict::Compliant { "good" } else { "bad" };
    let period = match (p.first_ns, p.last_ns) {
        (Some(a), Some(b)) => format!("{} to {} (UTC, event time)", day_name(a), day_name(b)),
        _ => "no events".into(),
    };
    let _ = write!(
        s,
        r#"<header><h1>TLS posture report</h1><p class="sub">{}</p><table class="kv"><tbody>
<tr><th>Period</th><td>{}</td></tr>
<tr><th>Profile</th><td>{}</td></tr>
<tr><th>Verdict</th><td class="verdict {class}" data-k="verdict">{}</td></tr>
<tr><th>Servers</th><td><span data-k="total.servers">{}</span> servers, <span data-k="total.non_compliant">{}</span> non-compliant</td></tr>
<tr><th>Events</th><td data-k="total.events">{}</td></tr>
<tr><th>TLS handshakes</th><td data-k="total.handshakes">{}</td></tr>
<tr><th>Forward secrecy</th><td><span data-k="total.pfs_share">{:.1}</span>% of handshakes with a negotiated suite</td></tr>
<tr><th>Post-quantum key exchange</th><td><span data-k="total.pq_share">{:.1}</span>%</td></tr>
<tr><th>Plaintext flows with PHI</th><td data-k="total.plaintext_phi_flows">{}</td></tr>
</tbody></table></header>"#,
        esc(&title),
        esc(&period),
        esc(&inv.profile),
        verdict_word(verdict),
        inv.servers.len(),
        inv.non_compliant(),
        p.events,
        sum(|d| d.handshakes),
        share(pfs, neg),
        share(pq, neg),
        p.plaintext.values().map(|r| r.phi_flows).sum::<u64>()
    );
}

fn stamps(s: &mut String, p: &Period) {
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

fn trend(s: &mut String, p: &Period) {
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

fn servers(s: &mut String, p: &Period) {
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

fn rest(s: &mut String, p: &Period) {
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
        s.push_str("<table><thead><tr><th>Server</th><th>Subject CN</th><th>Not after</th><th class=\"n\">Days left</th><th>Source</th></tr></thead><tbody>");
        for c in certs {
            let class = if c.days_left < 0 { " class=\"bad\"" } else { "" };
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

/// The report as one HTML document.
pub fn render(p: &Period) -> String {
    let mut s = String::with_capacity(64 << 10);
    header(&mut s, p);
    stamps(&mut s, p);
    trend(&mut s, p);
    servers(&mut s, p);
    rest(&mut s, p);
    let _ = writeln!(
        s,
        "<footer>Generated by tlsmon {} from event metadata only; no payload, no PHI value.</footer></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_markup_could_hide_in() {
        assert_eq!(esc("<script>a&b\"c'd</script>\u{1b}[1m"), "&lt;script&gt;a&amp;b&quot;c&#39;d&lt;/script&gt;[1m");
    }
}
