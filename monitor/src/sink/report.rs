//! Sink, replay report: renders the posture inventory as text, JSON or Markdown, with one fix
//! to apply per finding. Pure rendering of inventory facts; must never add anything the JSON
//! event does not already carry, and escapes names that came off the wire.
use std::fmt::Write;

use crate::observation::Acceptance;
use crate::policy::Severity;
use crate::sink::inventory::{fix, FindingRow, Inventory, Posture, ServerKey, Verdict};

pub use crate::cli::ReportFormat;

/// Names that came off the wire, made safe for Markdown: no control characters, no markup.
pub(crate) fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| !c.is_control()) {
        if matches!(c, '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// For a terminal: no control characters (escape sequences) from the wire.
fn plain(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

pub(crate) fn server_label(k: &ServerKey) -> String {
    if k.sni == "-" {
        k.addr()
    } else {
        format!("{} ({})", k.addr(), k.sni)
    }
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// "TLS 1.2 ×3, TLS 1.0 ×1": a count table, most seen first.
fn counts(m: &std::collections::BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn facts(p: &Posture) -> String {
    let mut parts = Vec::new();
    if p.handshakes > 0 || p.plaintext_flows + p.ssh_sessions == 0 {
        parts.push(plural(p.handshakes, "handshake"));
    }
    if p.ssh_sessions > 0 {
        parts.push(format!("{}: {}", plural(p.ssh_sessions, "SSH session"), counts(&p.ssh)));
    }
    if p.probes > 0 {
        parts.push(format!("{} (active)", plural(p.probes, "probe")));
    }
    if p.plaintext_flows > 0 {
        parts.push(format!("{} in clear: {}", plural(p.plaintext_flows, "flow"), counts(&p.plaintext)));
    }
    for m in [&p.versions, &p.ciphers, &p.groups] {
        if !m.is_empty() {
            parts.push(counts(m));
        }
    }
    if let Some(c) = &p.cert {
        let cn = c.subject_cn.as_deref().map(|n| format!(" CN={n}")).unwrap_or_default();
        let ss = if c.self_signed { ", self-signed" } else { "" };
        let (alg, bits, until) = (c.key_algorithm, c.key_size, &c.not_after);
        let from = if c.source == "probe" { " (from a probe)" } else { "" };
        parts.push(format!("certificate{cn}, {alg} {bits} bits{ss}, until {until}{from}"));
    }
    parts.join(" · ")
}

/// " — on this host: in client `legacy-client` (systemd unit hl7-bridge.service), server
/// `nginx`": the local processes that spoke to or served the server (live), most flows first,
/// at most three. Names are task names and unit names (backquoted, never Markdown).
pub(crate) fn local_note(p: &Posture) -> String {
    if p.local.is_empty() {
        return String::new();
    }
    let mut v: Vec<(&String, &u64)> = p.local.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    // The labels' own backquotes (the only ones: names lose theirs) stay code spans.
    let names: Vec<String> = v.iter().take(3).map(|(k, _)| md(k).replace("\\`", "`")).collect();
    let more = if v.len() > 3 { format!(" and {} more", v.len() - 3) } else { String::new() };
    format!(" — on this host: in {}{more}", names.join(", "))
}

pub(crate) fn problems(p: &Posture) -> impl Iterator<Item = &FindingRow> {
    p.findings_sorted().into_iter().filter(|f| f.severity > Severity::Info)
}

/// " (exception expired 2026-01-31: reason)" for a finding whose exception no longer applied.
pub(crate) fn expired_note(f: &FindingRow) -> String {
    match &f.acceptance {
        Some(Acceptance::Expired { reason, expired }) => format!(" (exception expired {expired}: {reason})"),
        _ => String::new(),
    }
}

/// "accepted risk: tls.version.deprecated (high) until 2026-12-31: reason" per accepted finding.
fn accepted_lines(p: &Posture) -> Vec<String> {
    p.accepted_sorted()
        .into_iter()
        .map(|f| {
            let (reason, until) = match &f.acceptance {
                Some(Acceptance::Accepted { reason, expires }) => (reason.as_str(), expires.as_str()),
                _ => ("", ""),
            };
            format!("accepted risk: {} ({}) until {until}: {reason}", f.id, f.severity.as_str())
        })
        .collect()
}

pub(crate) fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Compliant => "COMPLIANT",
        Verdict::NonCompliant => "NON-COMPLIANT",
    }
}

fn totals(inv: &Inventory) -> String {
    let n = inv.servers.len() as u64;
    let bad = inv.non_compliant() as u64;
    let mut s = format!(
        "{}, {bad} non-compliant, {} compliant, {}",
        plural(n, "server"),
        n - bad,
        plural(inv.handshakes, "handshake")
    );
    if inv.servers_dropped > 0 {
        let _ = write!(
            s,
            " ({} handshakes of servers past the {}-server limit not inventoried)",
            inv.servers_dropped, inv.max_servers
        );
    }
    s
}

/// The report for a person, in Markdown: worst servers first, one bullet per problem with its fix.
pub fn markdown(inv: &Inventory, captures: &[String]) -> String {
    let mut s = String::new();
    let names: Vec<String> = captures.iter().map(|c| md(c)).collect();
    let _ = writeln!(s, "# TLS posture report: {}\n", names.join(", "));
    let _ = writeln!(s, "- Profile: `{}`", md(&inv.profile));
    let _ = writeln!(s, "- Verdict: **{}**", verdict_word(inv.verdict()));
    let _ = writeln!(s, "- Totals: {}", totals(inv));
    for l in &inv.losses {
        let _ = writeln!(s, "- Not inspected: {} {} — {}", l.count, l.what, l.meaning);
    }
    let sorted = inv.sorted();
    let (bad, good): (Vec<_>, Vec<_>) = sorted.into_iter().partition(|(_, p)| p.verdict() == Verdict::NonCompliant);
    if !bad.is_empty() {
        let _ = writeln!(s, "\n## Servers to fix (worst first)");
    }
    for (k, p) in &bad {
        let srv = k.addr();
        let _ = writeln!(s, "\n### {} — NON-COMPLIANT\n", md(&server_label(k)));
        let _ = writeln!(s, "{}\n", md(&facts(p)));
        // Live: the processes of this host to fix, named on every fix line.
        let on_host = local_note(p);
        for f in problems(p) {
            let note = md(&expired_note(f));
            let _ = writeln!(s, "- {}{on_host} — {} (`{}`){note}", md(&fix(f, &srv)), f.severity.as_str(), f.id);
        }
        for a in accepted_lines(p) {
            let _ = writeln!(s, "- {}", md(&a));
        }
    }
    let _ = writeln!(s, "\n## Compliant servers\n");
    if good.is_empty() {
        let _ = writeln!(s, "none");
    }
    for (k, p) in &good {
        let srv = k.addr();
        let mut line = format!("- {} — compliant · {}", md(&server_label(k)), md(&facts(p)));
        let hints: Vec<String> = problems(p).map(|f| md(&fix(f, &srv))).collect();
        if !hints.is_empty() {
            let _ = write!(line, " · suggested: {}", hints.join("; "));
        }
        for a in accepted_lines(p) {
            let _ = write!(line, " · {}", md(&a));
        }
        let _ = writeln!(s, "{line}");
    }
    s
}

/// The compact terminal version of the same report.
pub fn text(inv: &Inventory, captures: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Posture ({}): {}", plain(&inv.profile), plain(&captures.join(", ")));
    let _ = writeln!(s, "  {} — {}", totals(inv), verdict_word(inv.verdict()));
    for l in &inv.losses {
        let _ = writeln!(s, "  not inspected: {} {} — {}", l.count, l.what, l.meaning);
    }
    for (k, p) in inv.sorted() {
        let srv = k.addr();
        let worst = p.worst.map(Severity::as_str).unwrap_or("-");
        let _ = writeln!(s, "\n{:<13} {}  worst {worst}", verdict_word(p.verdict()), plain(&server_label(k)));
        let _ = writeln!(s, "  {}", plain(&facts(p)));
        for f in problems(p) {
            let _ = writeln!(s, "  {:<8} {}{}", f.severity.as_str(), plain(&fix(f, &srv)), plain(&expired_note(f)));
        }
        for a in accepted_lines(p) {
            let _ = writeln!(s, "  {}", plain(&a));
        }
    }
    s
}

/// The report in the asked format (JSON pretty-printed, one document).
pub fn render(format: ReportFormat, inv: &Inventory, captures: &[String]) -> String {
    match format {
        ReportFormat::Text => text(inv, captures),
        ReportFormat::Markdown => markdown(inv, captures),
        // Without the events (a replay builds the period from them, see `Published`), the
        // period report of the inventory alone: no per-day posture.
        ReportFormat::Html => {
            let mut p = crate::sink::period::Period::new(inv.clone(), captures.to_vec(), None, None);
            p.inventory.losses = inv.losses.clone();
            crate::sink::period::html::render(&p)
        }
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&inv.json_document(captures)).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::inventory::{CertFacts, FindingRow, Posture};

    fn row(id: &'static str, severity: Severity, subjects: &[&str]) -> FindingRow {
        FindingRow::for_test(id, severity, subjects)
    }

    #[test]
    fn markdown_escapes_wire_names_and_lists_worst_first() {
        let mut inv = Inventory::default();
        let mut bad = Posture { handshakes: 1, worst: Some(Severity::High), ..Default::default() };
        bad.findings.insert("tls.version.deprecated", row("tls.version.deprecated", Severity::High, &["TLS 1.0"]));
        bad.findings.insert("tls.pq-hybrid", row("tls.pq-hybrid", Severity::Info, &[]));
        bad.cert = Some(CertFacts {
            subject_cn: Some("*.evil|<b>\n".into()),
            issuer_cn: None,
            not_after: "2030-01-01".into(),
            key_algorithm: "rsa",
            key_size: 2048,
            signature_algorithm: "sha256WithRSAEncryption".into(),
            self_signed: false,
            source: "passive",
            not_after_unix: 1_893_456_000,
            seen_unix: 1_748_822_400,
        });
        let key = |ip: &str, sni: &str| ServerKey { ip: ip.parse().unwrap(), port: 443, sni: sni.into() };
        inv.servers.insert(key("10.0.0.5", "ehr.example"), bad);
        inv.servers.insert(key("10.0.0.1", "-"), Posture { handshakes: 2, ..Default::default() });
        let md = markdown(&inv, &["a.pcap".into()]);
        assert!(md.starts_with("# TLS posture report: a.pcap\n"), "{md}");
        assert!(md.contains("- Profile: `hipaa`"));
        assert!(md.contains("### 10.0.0.5:443 (ehr.example) — NON-COMPLIANT\n"), "{md}");
        assert!(md.contains("\n- disable TLS 1.0 on 10.0.0.5:443 — high (`tls.version.deprecated`)\n"), "{md}");
        assert!(!md.contains("tls.pq-hybrid"), "info findings are not problems: {md}");
        assert!(md.contains("CN=\\*.evil\\|\\<b\\>,"), "{md}");
        assert!(md.contains("## Compliant servers\n\n- 10.0.0.1:443 — compliant · 2 handshakes\n"), "{md}");
    }
}
