//! The alert rules and Grafana dashboards in dashboards/ (issue 6), checked without Grafana:
//! Debian's promtool validates the rules and runs their unit tests (every alert fires with its
//! real `for:` and stays quiet where it should); every dashboard is importable JSON with the
//! `datasource` and `instance` variables, a unit on every panel, the instance filter on every
//! selector; and every metric name and label value used in a dashboard, a rule or the README
//! table is one the binary really exports (from `tlsmon replay --metrics-out` over the
//! corpus), so a renamed metric or label value breaks this test. Every alert's runbook link
//! and every finding id has its RUNBOOK.md anchor.
//! Live-only metrics cannot come out of a replay: they are listed here ([`LIVE_ONLY`]) and
//! tests/prometheus_e2e.rs checks that list against a real `tlsmon live`.
mod testdata;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const PROMTOOL: &str = "/usr/bin/promtool";

/// Metrics only `tlsmon live` exports (kernel counters, ring buffer): checked against a live
/// run in tests/prometheus_e2e.rs (`live_only_list_is_what_live_exports`).
pub const LIVE_ONLY: &[&str] = &["tlsmon_kernel_counter_total", "tlsmon_ringbuf_records_total"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboards_dir() -> PathBuf {
    root().join("dashboards")
}

/// Removes its directory on drop (every exit path, panics included).
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("tlsmon-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("creating a temp dir");
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Exported metric families: name → (type, every label → values seen), from the text format.
#[derive(Default, Debug)]
pub struct Exported {
    pub families: BTreeMap<String, (String, BTreeMap<String, BTreeSet<String>>)>,
    pub help: BTreeSet<String>,
}

/// Parses Prometheus text exposition (what `/metrics` and `--metrics-out` write).
pub fn parse_exposition(text: &str, out: &mut Exported) {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if rest.len() > name.len() + 1 {
                out.help.insert(name.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, typ) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            out.families.entry(name.to_string()).or_default().0 = typ.to_string();
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            let fam = out.families.entry(name.to_string()).or_default();
            if line[name_end..].starts_with('{') {
                let close = line.rfind('}').expect("closing brace in a sample line");
                for (k, v) in label_pairs(&line[name_end + 1..close]) {
                    fam.1.entry(k).or_default().insert(v);
                }
            }
        }
    }
}

/// `a="x",b="y"` → pairs (values without escapes: tlsmon's label values never need any).
fn label_pairs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let start = after.find('"').expect("quoted label value") + 1;
        let end = start + after[start..].find('"').expect("closing quote");
        out.push((key, after[start..end].to_string()));
        rest = &after[end + 1..];
    }
    out
}

/// What a replay exports: `tlsmon replay --metrics-out` over every corpus capture and the
/// generated PHI captures (so every family with data-dependent series shows up), run once.
fn exported() -> &'static Exported {
    static E: OnceLock<Exported> = OnceLock::new();
    E.get_or_init(|| {
        let tmp = TempDir::new("dash-metrics");
        let out = tmp.0.join("metrics.txt");
        let mut files = testdata::corpus_files();
        files.extend(phi_files());
        let status = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
            .arg("replay")
            .args(&files)
            .args(["--format", "none", "--metrics-out"])
            .arg(&out)
            .status()
            .expect("running tlsmon replay");
        assert!(status.code().is_some_and(|c| c <= 1), "tlsmon replay --metrics-out failed: {status}");
        let text = fs::read_to_string(&out).expect("reading --metrics-out");
        let mut e = Exported::default();
        parse_exposition(&text, &mut e);
        assert!(e.families.len() > 20, "too few metric families in --metrics-out: {:?}", e.families.keys());
        e
    })
}

/// The generated PHI captures when present (`cargo xtask test` writes them); the corpus alone
/// already covers every family, so their absence only narrows the label values seen.
fn phi_files() -> Vec<PathBuf> {
    let dir = match std::env::var_os("TLSMON_TEST_DATA") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => root().join("target/test-data"),
    }
    .join("phi");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "pcap")).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// One `name{matchers}` (or bare `name`) in a PromQL expression.
#[derive(Debug)]
pub struct Selector {
    pub name: String,
    /// (label, op, value).
    pub matchers: Vec<(String, String, String)>,
    pub braces: bool,
}

/// The metric selectors in a PromQL expression: identifiers followed by `{…}` or used bare,
/// that are not functions, keywords or label names inside `by (…)` / `without (…)`.
pub fn selectors(expr: &str) -> Vec<Selector> {
    const WORDS: &[&str] = &[
        "sum",
        "by",
        "without",
        "rate",
        "increase",
        "irate",
        "max",
        "min",
        "avg",
        "count",
        "topk",
        "bottomk",
        "sort",
        "sort_desc",
        "time",
        "vector",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "absent",
        "clamp_min",
        "clamp_max",
        "label_values",
        "histogram_quantile",
        "delta",
        "deriv",
    ];
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_grouping = false;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            // Skip string literals.
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += 1 + usize::from(b[i] == b'\\');
            }
            i += 1;
            continue;
        }
        if c == b'[' {
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let word = &expr[start..i];
            let next = expr[i..].trim_start();
            if word == "by" || word == "without" || word == "on" || word == "ignoring" {
                in_grouping = true;
                continue;
            }
            if in_grouping {
                if next.starts_with(')') {
                    in_grouping = false;
                }
                continue;
            }
            if WORDS.contains(&word) || next.starts_with('(') {
                continue;
            }
            let mut sel = Selector { name: word.to_string(), matchers: Vec::new(), braces: false };
            if next.starts_with('{') {
                let open = i + (expr[i..].len() - next.len());
                let close = open + expr[open..].find('}').expect("closing brace");
                sel.braces = true;
                sel.matchers = matchers(&expr[open + 1..close]);
                i = close + 1;
            }
            out.push(sel);
            continue;
        }
        if c == b')' {
            in_grouping = false;
        }
        i += 1;
    }
    out
}

fn matchers(s: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let op_at = rest.find(['=', '!']).expect("matcher operator");
        let label = rest[..op_at].trim().to_string();
        let op_len =
            if rest[op_at..].starts_with("=~") || rest[op_at..].starts_with("!~") || rest[op_at..].starts_with("!=") {
                2
            } else {
                1
            };
        let op = rest[op_at..op_at + op_len].to_string();
        let after = rest[op_at + op_len..].trim_start();
        assert!(after.starts_with('"'), "quoted matcher value in {s}");
        let end = 1 + after[1..].find('"').expect("closing quote");
        out.push((label, op, after[1..end].to_string()));
        rest = after[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Problems with the metric names and label values `expr` uses, judged against `e` (plus the
/// live-only families, whose label values come from monitor-common's counter names).
pub fn check_expr(expr: &str, e: &Exported, allow_up: bool) -> Vec<String> {
    let mut bad = Vec::new();
    for s in selectors(expr) {
        if s.name == "up" && allow_up {
            if !s.matchers.iter().any(|(l, o, v)| l == "job" && o == "=" && v == "tlsmon") {
                bad.push(format!("`up` without job=\"tlsmon\" in {expr}"));
            }
            continue;
        }
        let labels: BTreeMap<String, BTreeSet<String>> = if s.name == "tlsmon_kernel_counter_total" {
            let names = monitor_common::counter::NAMES.iter().chain(&monitor_common::counter::DERIVED);
            [("counter".to_string(), names.map(|n| n.to_string()).collect())].into()
        } else if LIVE_ONLY.contains(&s.name.as_str()) {
            BTreeMap::new()
        } else if let Some((_, l)) = e.families.get(&s.name) {
            l.clone()
        } else {
            bad.push(format!("metric {} is not exported (expr: {expr})", s.name));
            continue;
        };
        for (label, op, value) in &s.matchers {
            if label == "instance" || label == "job" {
                continue;
            }
            let Some(values) = labels.get(label) else {
                bad.push(format!("{} has no label {label} (expr: {expr})", s.name));
                continue;
            };
            let missing: Vec<&str> = if op == "=" || op == "!=" {
                if values.contains(value) {
                    vec![]
                } else {
                    vec![value.as_str()]
                }
            } else if let Some(prefix) = value.strip_suffix(".*") {
                if values.iter().any(|v| v.starts_with(prefix)) {
                    vec![]
                } else {
                    vec![value.as_str()]
                }
            } else {
                value.split('|').filter(|alt| !values.contains(*alt)).collect()
            };
            for m in missing {
                bad.push(format!("{}{{{label}{op}…}}: value {m:?} is not one it exports {values:?}", s.name));
            }
        }
    }
    bad
}

/// One alerting rule as written in tlsmon-alerts.yml.
#[derive(Debug, Default)]
pub struct Rule {
    pub alert: String,
    pub expr: String,
    pub for_: String,
    pub severity: String,
    pub runbook_url: String,
    pub summary: bool,
    pub description: bool,
}

/// Reads the rules file's alerts (a line-oriented reader for the layout the file uses; promtool
/// validates the YAML itself).
pub fn rules(text: &str) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- alert:") {
            out.push(Rule { alert: name.trim().to_string(), ..Rule::default() });
            continue;
        }
        let Some(r) = out.last_mut() else { continue };
        let indent = line.len() - line.trim_start().len();
        if t == "expr: |" {
            while let Some(l) = lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent) {
                r.expr.push_str(l.trim());
                r.expr.push(' ');
            }
        } else if let Some(v) = t.strip_prefix("expr:") {
            r.expr = v.trim().to_string();
        } else if let Some(v) = t.strip_prefix("for:") {
            r.for_ = v.trim().to_string();
        } else if let Some(v) = t.strip_prefix("severity:") {
            r.severity = v.trim().to_string();
        } else if let Some(v) = t.strip_prefix("runbook_url:") {
            r.runbook_url = v.trim().trim_matches('"').to_string();
        } else if t.starts_with("summary:") {
            r.summary = true;
        } else if t.starts_with("description:") {
            r.description = true;
        }
    }
    out
}

pub fn rules_file() -> Vec<Rule> {
    rules(&fs::read_to_string(dashboards_dir().join("tlsmon-alerts.yml")).expect("reading tlsmon-alerts.yml"))
}

/// Every dashboard file: (file name, JSON).
pub fn dashboards() -> Vec<(String, Value)> {
    let dir = dashboards_dir().join("grafana");
    let mut v: Vec<(String, Value)> = fs::read_dir(&dir)
        .expect("reading dashboards/grafana")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = fs::read_to_string(&p).expect("reading a dashboard");
            let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Every panel, rows' nested panels included.
pub fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels array") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter());
        }
    }
    out
}

/// Every (panel title, expr) of a dashboard, rows excluded (they carry no query).
pub fn panel_exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d).into_iter().filter(|p| p["type"] != "row") {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((p["title"].as_str().unwrap_or("").to_string(), t["expr"].as_str().unwrap_or("").to_string()));
        }
    }
    out
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {PROMTOOL} (Debian package `prometheus`; `cargo xtask setup`): {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn promtool_check_rules_passes() {
    let (ok, out) = promtool(&["check", "rules", "dashboards/tlsmon-alerts.yml"]);
    assert!(ok, "promtool check rules failed:\n{out}");
    let n = rules_file().len();
    assert!(n >= 9, "expected at least 9 alerts, the reader found {n}");
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "promtool saw another rule count than {n}:\n{out}");
}

#[test]
fn promtool_unit_tests_fire_every_alert_with_its_real_for() {
    let (ok, out) = promtool(&["test", "rules", "dashboards/tlsmon-alerts.test.yml"]);
    assert!(ok && out.contains("SUCCESS"), "promtool test rules failed:\n{out}");
    // Each alert has a case where it fires (a non-empty exp_alerts after its alertname) and one
    // where it must not (an empty one).
    let tests = fs::read_to_string(dashboards_dir().join("tlsmon-alerts.test.yml")).unwrap();
    for r in rules_file() {
        let mut fires = false;
        let mut quiet = false;
        let mut it = tests.lines().map(str::trim).peekable();
        while let Some(l) = it.next() {
            if l == format!("alertname: {}", r.alert) {
                match it.peek() {
                    Some(&"exp_alerts: []") => quiet = true,
                    Some(&"exp_alerts:") => fires = true,
                    _ => {}
                }
            }
        }
        assert!(
            fires && quiet,
            "{}: the promtool tests need a firing case ({fires}) and a quiet one ({quiet})",
            r.alert
        );
    }
}

#[test]
fn every_rule_is_complete_bounded_and_uses_exported_metrics() {
    let e = exported();
    let rules = rules_file();
    let runbook = fs::read_to_string(dashboards_dir().join("RUNBOOK.md")).unwrap();
    let mut bad = Vec::new();
    for r in &rules {
        if !["critical", "warning"].contains(&r.severity.as_str()) {
            bad.push(format!("{}: severity {:?}", r.alert, r.severity));
        }
        if r.for_.is_empty() || !r.summary || !r.description {
            bad.push(format!("{}: for/summary/description missing", r.alert));
        }
        let anchor = r.runbook_url.strip_prefix("https://github.com/tlsmon/tlsmon/blob/main/dashboards/RUNBOOK.md#");
        match anchor {
            Some(a) if runbook.contains(&format!("<a id=\"{a}\"></a>")) => {}
            _ => bad.push(format!("{}: runbook_url {:?} has no anchor in RUNBOOK.md", r.alert, r.runbook_url)),
        }
        // Bounded: aggregated by instance (and closed-set labels) unless it is `up` itself.
        if !r.expr.contains("by (instance") && !r.expr.starts_with("up{") {
            bad.push(format!("{}: not aggregated by (instance, …): {}", r.alert, r.expr));
        }
        bad.extend(check_expr(&r.expr, e, r.alert == "TlsmonAgentDown"));
    }
    let names: BTreeSet<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    for want in [
        "TlsmonCriticalFinding",
        "TlsmonDeprecatedTlsVersion",
        "TlsmonNoForwardSecrecy",
        "TlsmonPlaintextPhi",
        "TlsmonCertificateExpiring30d",
        "TlsmonCertificateExpiring7d",
        "TlsmonDroppingEvents",
        "TlsmonAgentDown",
    ] {
        if !names.contains(want) {
            bad.push(format!("alert {want} missing"));
        }
    }
    assert!(bad.is_empty(), "rule problems:\n{}", bad.join("\n"));
}

/// The finding ids of the catalogue (monitor/src/policy/catalogue.rs).
fn finding_ids() -> Vec<String> {
    monitor::policy::FINDING_IDS.iter().map(|id| id.to_string()).collect()
}

#[test]
fn runbook_has_a_section_per_finding_id_and_alert() {
    let runbook = fs::read_to_string(dashboards_dir().join("RUNBOOK.md")).unwrap();
    let ids = finding_ids();
    assert_eq!(ids.len(), 45, "the catalogue changed size: {ids:?}");
    // The metrics export the same ids (a drift between catalogue and metrics shows here too).
    let exported_ids = &exported().families["tlsmon_findings_total"].1["id"];
    assert_eq!(exported_ids, &ids.iter().cloned().collect::<BTreeSet<_>>());
    let mut missing = Vec::new();
    for id in &ids {
        let anchor = id.replace('.', "-");
        let heading = format!("<a id=\"{anchor}\"></a>\n### {id}\n");
        if !runbook.contains(&heading) {
            missing.push(id.clone());
        }
    }
    for r in rules_file() {
        if !runbook.contains(&format!("<a id=\"{}\"></a>\n### {}\n", r.alert.to_lowercase(), r.alert)) {
            missing.push(r.alert);
        }
    }
    assert!(missing.is_empty(), "RUNBOOK.md lacks sections for {missing:?}");
}

#[test]
fn dashboards_are_importable_and_filtered() {
    let ds = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let all = dashboards();
    assert_eq!(all.len(), 5, "five dashboards expected: {:?}", all.iter().map(|d| &d.0).collect::<Vec<_>>());
    let mut uids = BTreeSet::new();
    let mut bad = Vec::new();
    let (mut n_panels, mut n_exprs) = (0, 0);
    for (file, d) in &all {
        let uid = d["uid"].as_str().unwrap_or("");
        if uid.is_empty() || !uids.insert(uid.to_string()) || d["title"].as_str().unwrap_or("").is_empty() {
            bad.push(format!("{file}: missing or duplicate uid/title"));
        }
        if d["schemaVersion"].as_u64().unwrap_or(0) < 36 {
            bad.push(format!("{file}: schemaVersion below 36 (Grafana 9.x and older)"));
        }
        let vars = d["templating"]["list"].as_array().cloned().unwrap_or_default();
        let var = |n: &str| vars.iter().find(|v| v["name"] == n).cloned().unwrap_or(Value::Null);
        let dsv = var("datasource");
        if dsv["type"] != "datasource" || dsv["query"] != "prometheus" {
            bad.push(format!("{file}: no `datasource` variable of type datasource / prometheus"));
        }
        let inst = var("instance");
        let q = inst["query"]["query"].as_str().or(inst["query"].as_str()).unwrap_or("");
        if inst["type"] != "query"
            || q != "label_values(tlsmon_build_info, instance)"
            || inst["multi"] != true
            || inst["includeAll"] != true
            || inst["datasource"] != ds
        {
            bad.push(format!("{file}: `instance` variable wrong: {inst}"));
        }
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or("?");
            let id = p["id"].as_u64();
            if id.is_none() || !ids.insert(id) {
                bad.push(format!("{file}: panel {title:?} id missing or duplicate"));
            }
            let g = &p["gridPos"];
            let gp = ["x", "y", "w", "h"].map(|k| g[k].as_u64().unwrap_or(u64::MAX));
            if gp.contains(&u64::MAX) || gp[0] + gp[2] > 24 || gp[2] == 0 || gp[3] == 0 {
                bad.push(format!("{file}: panel {title:?} gridPos {g}"));
            } else {
                for (other, ob) in &boxes {
                    let overlap = gp[0] < ob[0] + ob[2]
                        && ob[0] < gp[0] + gp[2]
                        && gp[1] < ob[1] + ob[3]
                        && ob[1] < gp[1] + gp[3];
                    if overlap {
                        bad.push(format!("{file}: panels {title:?} and {other:?} overlap"));
                    }
                }
                boxes.push((title.to_string(), gp));
            }
            if p["type"] == "row" {
                if p.get("targets").is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
                    bad.push(format!("{file}: row {title:?} has queries"));
                }
                continue;
            }
            n_panels += 1;
            if p["datasource"] != ds {
                bad.push(format!("{file}: panel {title:?} datasource {}", p["datasource"]));
            }
            if p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("").is_empty() {
                bad.push(format!("{file}: panel {title:?} has no unit"));
            }
            if p["description"].as_str().unwrap_or("").is_empty() {
                bad.push(format!("{file}: panel {title:?} has no description"));
            }
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                bad.push(format!("{file}: panel {title:?} has no query"));
            }
            let mut refs = BTreeSet::new();
            for t in &targets {
                n_exprs += 1;
                let expr = t["expr"].as_str().unwrap_or("");
                if t["datasource"] != ds {
                    bad.push(format!("{file}: {title:?} target datasource {}", t["datasource"]));
                }
                if !refs.insert(t["refId"].as_str().unwrap_or("").to_string()) {
                    bad.push(format!("{file}: {title:?} duplicate refId"));
                }
                let sels = selectors(expr);
                if sels.is_empty() || !expr.contains("instance=~\"$instance\"") {
                    bad.push(format!("{file}: {title:?}: no instance filter in {expr}"));
                }
                for s in &sels {
                    let filtered = s.matchers.iter().any(|(l, o, v)| l == "instance" && o == "=~" && v == "$instance");
                    if !filtered {
                        bad.push(format!("{file}: {title:?}: selector {} without instance=~\"$instance\"", s.name));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "dashboard problems:\n{}", bad.join("\n"));
    assert!(n_panels >= 40 && n_exprs >= n_panels, "only {n_panels} panels / {n_exprs} queries");
    eprintln!("dashboards: {} files, {n_panels} panels, {n_exprs} queries checked", all.len());
}

#[test]
fn dashboards_use_only_exported_metrics_and_cover_all_of_them() {
    let e = exported();
    let mut bad = Vec::new();
    let mut used = BTreeSet::new();
    for (file, d) in dashboards() {
        for (title, expr) in panel_exprs(&d) {
            for p in check_expr(&expr, e, true) {
                bad.push(format!("{file}: {title:?}: {p}"));
            }
            used.extend(selectors(&expr).into_iter().map(|s| s.name));
        }
        let vars = d["templating"]["list"].as_array().cloned().unwrap_or_default();
        for v in vars {
            if let Some(q) = v["query"]["query"].as_str().or(v["query"].as_str()) {
                if let Some(m) = q.strip_prefix("label_values(").and_then(|r| r.split(',').next()) {
                    if !e.families.contains_key(m.trim()) {
                        bad.push(format!("{file}: variable {} uses {m}, not exported", v["name"]));
                    }
                }
            }
        }
    }
    // Every metric tlsmon exports has a panel somewhere (the Alertmanager ones appear only
    // with --alertmanager, the live ones only live: both are panels of the agent dashboard).
    let mut all: BTreeSet<String> = e.families.keys().cloned().collect();
    all.extend(LIVE_ONLY.iter().map(|s| s.to_string()));
    for m in &all {
        if !used.contains(m) && m != "tlsmon_build_info" {
            bad.push(format!("exported metric {m} has no dashboard panel"));
        }
    }
    assert!(bad.is_empty(), "dashboard metric problems:\n{}", bad.join("\n"));
}

#[test]
fn every_exported_metric_has_help_and_is_documented_in_the_readme() {
    let e = exported();
    let readme = fs::read_to_string(dashboards_dir().join("README.md")).unwrap();
    let mut bad = Vec::new();
    for (name, (typ, labels)) in &e.families {
        if !e.help.contains(name) {
            bad.push(format!("{name}: no HELP text"));
        }
        if typ == "counter" && !name.ends_with("_total") {
            bad.push(format!("{name}: counter without _total"));
        }
        // The README's metric table names it with its labels: `name{a,b}` or `name`.
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        let want = if keys.is_empty() { format!("`{name}`") } else { format!("`{name}{{{}}}`", keys.join(",")) };
        if !readme.contains(&want) {
            bad.push(format!("README.md does not list {want}"));
        }
    }
    // Where the README enumerates a label's values ("kind: a, b, c"), it lists every exported one.
    for (name, (_, labels)) in &e.families {
        let row =
            readme.lines().find(|l| l.starts_with(&format!("| `{name}{{")) || l.starts_with(&format!("| `{name}`")));
        let Some(cell) = row.and_then(|r| r.split('|').nth(3)) else { continue };
        for (key, values) in labels {
            let Some(list) = cell.split(&format!("{key}: ")).nth(1) else { continue };
            let listed: Vec<&str> = list
                .split([';', '—'])
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|v| Some(v.split_whitespace().next()?.trim_end_matches('.')))
                .collect();
            if !listed.first().is_some_and(|v| values.contains(*v)) {
                continue; // described, not enumerated ("as above", "the 28 finding ids")
            }
            for v in values.iter().filter(|v| !listed.contains(&v.as_str())) {
                bad.push(format!("README.md lists {key} values of {name} without {v}"));
            }
        }
    }
    // And the README names nothing that is not exported.
    for line in readme.lines().filter(|l| l.starts_with("| `tlsmon_")) {
        let cell = line.split('`').nth(1).unwrap_or("");
        let name = cell.split('{').next().unwrap_or("");
        if !e.families.contains_key(name) && !LIVE_ONLY.contains(&name) {
            bad.push(format!("README.md lists {name}, which is not exported"));
        }
    }
    assert!(bad.is_empty(), "metric documentation problems:\n{}", bad.join("\n"));
}

#[test]
fn selector_reader_sees_what_it_must() {
    let s = selectors(
        r#"sum by (instance, id) (increase(tlsmon_findings_total{severity="critical", id!="plaintext.phi"}[15m])) / up{job="tlsmon"} - time() - tlsmon_start_time_seconds"#,
    );
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["tlsmon_findings_total", "up", "tlsmon_start_time_seconds"]);
    assert_eq!(s[0].matchers[1], ("id".into(), "!=".into(), "plaintext.phi".into()));
    let mut e = Exported::default();
    parse_exposition("# HELP tlsmon_x_total X.\n# TYPE tlsmon_x_total counter\ntlsmon_x_total{kind=\"a\"} 0\n", &mut e);
    assert!(check_expr(r#"tlsmon_x_total{kind="a"}"#, &e, false).is_empty());
    assert_eq!(check_expr(r#"tlsmon_x_total{kind=~"a|b"}"#, &e, false).len(), 1);
    assert_eq!(check_expr(r#"tlsmon_y_total"#, &e, false).len(), 1);
}
