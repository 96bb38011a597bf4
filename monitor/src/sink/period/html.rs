//! Sink, period report as one self-contained HTML file: inline CSS, inline SVG charts, no
//! script, nothing fetched; prints to A4 with a page per section. Rendering only: every string
//! from a log (server names and SNI are chosen by whoever connects) is HTML-escaped, and key
//! figures carry `data-k` names so tests can hold them to the JSON report.
use std::fmt::Write;

use super::{day_name, sections, share, Period};
use crate::policy::Severity;
use crate::sink::inventory::Verdict;

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
 body{font-size:9.5pt;max-width:none;padding:0 1px}
 h2{margin-top:0}
 section{break-before:page}
 section.first{break-before:auto}
 .server,figure,tr{break-inside:avoid}
 table{font-size:8.5pt}
 thead{display:table-header-group}
 .sev{color:#000;background:none!important;border:1px solid #000}
}
"#;

pub(super) fn version_color(v: &str) -> &'static str {
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

pub(super) fn version_rank(v: &str) -> usize {
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
pub(super) fn num(key: &str, v: impl std::fmt::Display) -> String {
    format!(r#"<td class="n" data-k="{}">{v}</td>"#, esc(key))
}

pub(super) fn sev_badge(s: Severity) -> String {
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
    let class = if inv.verdict() == Verdict::Compliant && p.events > 0 { "good" } else { "bad" };
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
        p.verdict_word(),
        inv.servers.len(),
        inv.non_compliant(),
        p.events,
        sum(|d| d.handshakes),
        share(pfs, neg),
        share(pq, neg),
        p.plaintext.values().map(|r| r.phi_flows).sum::<u64>()
    );
}

/// The report as one HTML document.
pub fn render(p: &Period) -> String {
    let mut s = String::with_capacity(64 << 10);
    header(&mut s, p);
    sections::stamps(&mut s, p);
    sections::trend(&mut s, p);
    sections::servers(&mut s, p);
    sections::rest(&mut s, p);
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
