//! Sink, replay report: renders the posture inventory as text, JSON or Markdown, with one fix
//! to apply per finding. Pure rendering of inventory facts; must never add anything the JSON
//! event does not already carry, and escapes names that came off the wire.
use std::fmt::Write;

use crate::observation::Acceptance;
use crate::policy::Severity;
use crate::sink::inventory::{FindingRow, Inventory, Posture, ServerKey, Verdict};

/// `--report` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
}

/// The fix per finding id: a template and what `{what}` says when no subject was recorded.
/// Placeholders: `{srv}` the server address, `{what}` the subjects as a list, `{paren}` the
/// subjects in parentheses (or nothing), `{class}` the suite families of the subjects.
/// One entry per id of the findings catalogue (DESIGN.md); `anomaly.` covers the rest of its family.
pub const FIXES: &[(&str, &str, &str)] = &[
    ("tls.version.insecure", "disable {what} on {srv}", "SSL 2.0 and SSL 3.0"),
    ("tls.version.deprecated", "disable {what} on {srv}", "TLS 1.0 and TLS 1.1"),
    (
        "tls.version.client-legacy-only",
        "upgrade the clients of {srv} that offer at most {what} to TLS 1.2 or later",
        "TLS 1.1",
    ),
    ("tls.version.no-tls13", "enable TLS 1.3 on {srv}", ""),
    ("tls.cipher.insecure", "remove {class} suites{paren} from {srv}", "insecure"),
    (
        "tls.cipher.weak",
        "remove {class} suites{paren} from {srv}; offer AEAD suites (AES-GCM, ChaCha20-Poly1305)",
        "weak",
    ),
    (
        "tls.kx.no-pfs",
        "enable ECDHE key exchange (forward secrecy) on {srv} and remove static key-exchange suites{paren}",
        "",
    ),
    ("tls.kx.weak-group", "use DH groups of 2048 bits or more and curves of 256 bits or more on {srv}{paren}", ""),
    ("tls.compression", "disable TLS compression on {srv}", ""),
    ("tls.renegotiation.insecure", "enable secure renegotiation (RFC 5746 renegotiation_info) on {srv}", ""),
    ("tls.cert.expired", "renew the certificate for {what} on {srv}", "the server certificate"),
    ("tls.cert.not-yet-valid", "check the validity dates of {what} and the clock of {srv}", "the server certificate"),
    ("tls.cert.expiring", "renew the certificate for {what} on {srv} before it expires", "the server certificate"),
    ("tls.cert.self-signed", "replace the self-signed certificate on {srv}{paren} with one issued by a trusted CA", ""),
    ("tls.cert.name-mismatch", "install a certificate that covers {what} on {srv}", "the requested server name"),
    ("tls.cert.untrusted", "install a certificate chain that leads to a trusted CA on {srv}{paren}", ""),
    (
        "tls.cert.weak-key",
        "reissue the certificate{paren} on {srv} with an RSA key of 2048 bits or more or an ECDSA P-256 key",
        "",
    ),
    ("tls.cert.weak-signature", "reissue the certificate{paren} on {srv} with a SHA-256 or stronger signature", ""),
    ("tls.alert.fatal", "look into the failed handshakes on {srv}{paren}", ""),
    ("tls.pq-hybrid", "nothing to fix: post-quantum hybrid key exchange in use on {srv}", ""),
    ("plaintext.phi", "carry the health data on {srv} over TLS 1.2 or later{paren}", ""),
    ("plaintext.credentials", "require TLS before login on {srv}{paren}", ""),
    ("plaintext.starttls-missing", "require STARTTLS on {srv} and refuse sessions that stay in clear", ""),
    ("anomaly.heartbleed", "patch the TLS library on {srv} (Heartbleed, CVE-2014-0160) and replace its keys", ""),
    ("anomaly.", "look into the malformed or truncated TLS traffic on {srv}{paren}", ""),
];

/// Position of an id in the catalogue (FIXES), for ordering findings; unknown ids last.
pub fn catalogue_rank(id: &str) -> usize {
    FIXES.iter().position(|(k, _, _)| *k == id || (k.ends_with('.') && id.starts_with(k))).unwrap_or(FIXES.len())
}

/// "a", "a and b", "a, b and c".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The suite family a fix names, from the IANA (or SSLv2) name.
fn suite_class(name: &str) -> &'static str {
    const CLASSES: [(&str, &str); 11] = [
        ("NULL", "NULL"),
        ("_anon_", "anonymous"),
        ("EXPORT", "EXPORT"),
        ("3DES", "3DES"),
        ("EDE3", "3DES"),
        ("DES", "DES"),
        ("RC4", "RC4"),
        ("RC2", "RC2"),
        ("IDEA", "IDEA"),
        ("SEED", "SEED"),
        ("CBC", "CBC"),
    ];
    CLASSES.iter().find(|(k, _)| name.contains(k)).map(|(_, c)| *c).unwrap_or("non-AEAD")
}

/// The fix to apply for one finding on the server at `srv` ("10.0.0.5:443").
pub fn fix(f: &FindingRow, srv: &str) -> String {
    let entry = FIXES
        .iter()
        .find(|(id, _, _)| *id == f.id)
        .or_else(|| f.id.starts_with("anomaly.").then(|| FIXES.iter().find(|(id, _, _)| *id == "anomaly.")).flatten());
    let Some((_, template, default)) = entry else {
        let paren = if f.subjects.is_empty() { String::new() } else { format!(" ({})", list(&f.subjects)) };
        return format!("review {} on {srv}{paren}", f.id);
    };
    let what = if f.subjects.is_empty() { default.to_string() } else { list(&f.subjects) };
    let paren = if f.subjects.is_empty() { String::new() } else { format!(" ({})", f.subjects.join(", ")) };
    let mut classes: Vec<&str> = f.subjects.iter().map(|s| suite_class(s)).collect();
    classes.dedup();
    let class = if classes.is_empty() { default.to_string() } else { classes.join("/") };
    template.replace("{srv}", srv).replace("{what}", &what).replace("{paren}", &paren).replace("{class}", &class)
}

/// Names that came off the wire, made safe for Markdown: no control characters, no markup.
fn md(s: &str) -> String {
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

fn server_label(k: &ServerKey) -> String {
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

fn facts(p: &Posture) -> String {
    let mut parts = Vec::new();
    if p.handshakes > 0 || p.plaintext_flows == 0 {
        parts.push(plural(p.handshakes, "handshake"));
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
        parts.push(format!("certificate{cn}, {alg} {bits} bits{ss}, until {until}"));
    }
    parts.join(" · ")
}

fn problems(p: &Posture) -> impl Iterator<Item = &FindingRow> {
    p.findings_sorted().into_iter().filter(|f| f.severity > Severity::Info)
}

/// " (exception expired 2026-01-31: reason)" for a finding whose exception no longer applied.
fn expired_note(f: &FindingRow) -> String {
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

fn verdict_word(v: Verdict) -> &'static str {
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
    let sorted = inv.sorted();
    let (bad, good): (Vec<_>, Vec<_>) = sorted.into_iter().partition(|(_, p)| p.verdict() == Verdict::NonCompliant);
    if !bad.is_empty() {
        let _ = writeln!(s, "\n## Servers to fix (worst first)");
    }
    for (k, p) in &bad {
        let srv = k.addr();
        let _ = writeln!(s, "\n### {} — NON-COMPLIANT\n", md(&server_label(k)));
        let _ = writeln!(s, "{}\n", md(&facts(p)));
        for f in problems(p) {
            let note = md(&expired_note(f));
            let _ = writeln!(s, "- {} — {} (`{}`){note}", md(&fix(f, &srv)), f.severity.as_str(), f.id);
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
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&inv.to_json(captures)).unwrap_or_default();
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
        FindingRow {
            id,
            severity,
            hipaa_ref: "-",
            rule: "hipaa/test",
            count: 1,
            evidence: String::new(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            acceptance: None,
        }
    }

    /// Every finding id has its own fix, not the generic line.
    #[test]
    fn every_catalogue_id_has_a_fix() {
        for &id in crate::policy::FINDING_IDS {
            let text = fix(&row(id, Severity::High, &[]), "10.0.0.5:443");
            assert!(!text.starts_with("review "), "{id} falls back to the generic line: {text}");
            assert!(text.contains("10.0.0.5:443"), "{id}: {text}");
            assert!(!text.contains('{'), "{id} leaves a placeholder: {text}");
        }
        // And no stale entry: each fix belongs to a known id, or is the `anomaly.` family line.
        for (id, _, _) in FIXES {
            assert!(crate::policy::FINDING_IDS.contains(id) || *id == "anomaly.", "fix for unknown id {id}");
        }
    }

    #[test]
    fn fix_texts() {
        let srv = "10.0.0.5:443";
        let cases: [(&'static str, &[&str], &str); 9] = [
            ("tls.version.deprecated", &["TLS 1.0"], "disable TLS 1.0 on 10.0.0.5:443"),
            ("tls.version.deprecated", &["TLS 1.0", "TLS 1.1"], "disable TLS 1.0 and TLS 1.1 on 10.0.0.5:443"),
            ("tls.version.insecure", &["SSL 2.0"], "disable SSL 2.0 on 10.0.0.5:443"),
            (
                "tls.cipher.weak",
                &["TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
                "remove 3DES suites (TLS_RSA_WITH_3DES_EDE_CBC_SHA) from 10.0.0.5:443; offer AEAD suites (AES-GCM, ChaCha20-Poly1305)",
            ),
            ("tls.cipher.insecure", &["TLS_RSA_WITH_RC4_128_MD5"], "remove RC4 suites (TLS_RSA_WITH_RC4_128_MD5) from 10.0.0.5:443"),
            (
                "tls.kx.no-pfs",
                &["TLS_RSA_WITH_AES_128_GCM_SHA256"],
                "enable ECDHE key exchange (forward secrecy) on 10.0.0.5:443 and remove static key-exchange suites (TLS_RSA_WITH_AES_128_GCM_SHA256)",
            ),
            (
                "tls.cert.expired",
                &["CN=ehr.example (expired 2021-01-01)"],
                "renew the certificate for CN=ehr.example (expired 2021-01-01) on 10.0.0.5:443",
            ),
            (
                "tls.cert.self-signed",
                &["CN=plesk"],
                "replace the self-signed certificate on 10.0.0.5:443 (CN=plesk) with one issued by a trusted CA",
            ),
            ("tls.version.no-tls13", &[], "enable TLS 1.3 on 10.0.0.5:443"),
        ];
        for (id, subjects, want) in cases {
            assert_eq!(fix(&row(id, Severity::High, subjects), srv), want);
        }
        assert_eq!(fix(&row("tls.future-thing", Severity::High, &[]), srv), "review tls.future-thing on 10.0.0.5:443");
        assert_eq!(
            fix(&row("anomaly.truncated-handshake", Severity::Low, &["cut"]), srv),
            "look into the malformed or truncated TLS traffic on 10.0.0.5:443 (cut)"
        );
        assert_eq!(suite_class("SSL2_DES_192_EDE3_CBC_WITH_MD5"), "3DES");
        assert_eq!(suite_class("TLS_DH_anon_WITH_AES_128_CBC_SHA"), "anonymous");
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
