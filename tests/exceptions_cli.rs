//! Exceptions (accepted risks) end to end over a corpus capture: `[[exception]]` in a config
//! file suppresses exactly the finding it names, on the server it names, until its expiry date
//! judged by the capture's own packet time. Accepted findings stay in the events (marked
//! `accepted`), do not fail `--fail-on`, and show as accepted in the posture report; an expired
//! exception says `exception_expired` and accepts nothing.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn capture() -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps/zeek__tls1_1.pcap");
    p.to_str().expect("utf-8 path").to_string()
}

fn tlsmon(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(args).output().expect("runs");
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The capture's single event, run with `config` (TOML text) if any, plus extra flags.
fn run(config: Option<&str>, extra: &[&str]) -> (i32, Vec<Value>) {
    let dir = std::env::temp_dir().join(format!("tlsmon-exc-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("c.toml");
    let path_s = path.to_str().expect("utf-8").to_string();
    let cap = capture();
    let mut args: Vec<&str> = Vec::new();
    if let Some(text) = config {
        std::fs::write(&path, text).expect("write config");
        args.extend(["--config", &path_s]);
    }
    args.extend(["replay", "--format", "json"]);
    args.extend(extra);
    args.push(&cap);
    let (code, out) = tlsmon(&args);
    std::fs::remove_dir_all(&dir).ok();
    (code, out.lines().map(|l| serde_json::from_str(l).expect("event is JSON")).collect())
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// What the capture is, learnt from a run without config: (server ip, port, packet date, findings).
fn baseline() -> (String, u64, String, Vec<Value>) {
    let (code, evs) = run(None, &[]);
    assert_eq!(code, 0);
    assert_eq!(evs.len(), 1, "zeek__tls1_1.pcap holds one handshake");
    let ev = &evs[0];
    let ip = ev["destination"]["ip"].as_str().expect("ip").to_string();
    let port = ev["destination"]["port"].as_u64().expect("port");
    let date = ev["timestamp"].as_str().expect("timestamp")[..10].to_string();
    let findings = ev["findings"].as_array().expect("findings").clone();
    (ip, port, date, findings)
}

fn exception(finding: &str, server: &str, port: u64, expires: &str) -> String {
    format!(
        "[[exception]]\nfinding = \"{finding}\"\nserver = \"{server}\"\nport = {port}\n\
         reason = \"legacy lab appliance\"\nexpires = \"{expires}\"\n"
    )
}

/// The day `days` (±1) away from `date` (YYYY-MM-DD).
fn shift(date: &str, days: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(date, fmt).expect("date");
    let d = if days < 0 { d.previous_day() } else { d.next_day() }.expect("in range");
    d.format(fmt).expect("format")
}

#[test]
fn baseline_is_what_the_other_tests_assume() {
    let (ip, port, date, findings) = baseline();
    assert_eq!((ip.as_str(), port, date.as_str()), ("216.58.192.14", 443, "2017-11-30"));
    let ids: Vec<&str> = findings.iter().map(|f| f["id"].as_str().expect("id")).collect();
    assert!(ids.contains(&"tls.version.deprecated"), "{ids:?}");
    assert!(findings.iter().all(|f| f.get("accepted").is_none() && f.get("exception_expired").is_none()));
    // Without exceptions --fail-on high fails on this capture.
    assert_eq!(run(None, &["--fail-on", "high"]).0, 1);
}

#[test]
fn valid_exception_accepts_exactly_the_named_finding() {
    let (ip, port, date, base) = baseline();
    let cfg = exception("tls.version.deprecated", &format!("{ip}/24"), port, &date);
    let (_, evs) = run(Some(&cfg), &[]);
    let got = evs[0]["findings"].as_array().expect("findings");
    assert_eq!(got.len(), base.len(), "an accepted finding is still reported");
    for (g, b) in got.iter().zip(&base) {
        let mut stripped = g.clone();
        let accepted = stripped.as_object_mut().expect("object").remove("accepted");
        if g["id"] == "tls.version.deprecated" {
            let want = serde_json::json!({"reason": "legacy lab appliance", "expires": date});
            assert_eq!(accepted, Some(want));
        } else {
            assert_eq!(accepted, None, "{} must be untouched", g["id"]);
        }
        assert_eq!(&stripped, b, "everything else is as without the exception");
        assert!(g.get("exception_expired").is_none());
    }
}

#[test]
fn fail_on_ignores_accepted_findings_only() {
    let (ip, port, date, base) = baseline();
    let high: Vec<&str> =
        base.iter().filter(|f| f["severity"] == "high").map(|f| f["id"].as_str().expect("id")).collect();
    assert!(high.len() >= 2 && base.iter().any(|f| f["severity"] == "medium"), "{base:?}");
    // Only one of the high findings accepted: the others still fail --fail-on high.
    let one = exception("tls.version.deprecated", &ip, port, &date);
    assert_eq!(run(Some(&one), &["--fail-on", "high"]).0, 1);
    // Every high finding accepted: --fail-on high passes, --fail-on medium still fails (the
    // medium finding is not accepted).
    let all: String = high.iter().map(|id| exception(id, &ip, port, &date)).collect();
    let (code, evs) = run(Some(&all), &["--fail-on", "high"]);
    assert_eq!(code, 0);
    let accepted = evs[0]["findings"].as_array().expect("findings").iter().filter(|f| f.get("accepted").is_some());
    assert_eq!(accepted.count(), high.len());
    assert_eq!(run(Some(&all), &["--fail-on", "medium"]).0, 1);
    // The same exceptions expired the day before: --fail-on high fails again.
    let expired: String = high.iter().map(|id| exception(id, &ip, port, &shift(&date, -1))).collect();
    assert_eq!(run(Some(&expired), &["--fail-on", "high"]).0, 1);
}

#[test]
fn expired_exception_accepts_nothing_and_says_so() {
    let (ip, port, date, base) = baseline();
    let day_before = shift(&date, -1);
    let cfg = exception("tls.version.deprecated", &ip, port, &day_before);
    let (_, evs) = run(Some(&cfg), &[]);
    let got = evs[0]["findings"].as_array().expect("findings");
    assert_eq!(got.len(), base.len());
    for (g, b) in got.iter().zip(&base) {
        assert!(g.get("accepted").is_none(), "{g}");
        let mut stripped = g.clone();
        let expired = stripped.as_object_mut().expect("object").remove("exception_expired");
        if g["id"] == "tls.version.deprecated" {
            assert_eq!(expired, Some(serde_json::json!({"reason": "legacy lab appliance", "expired": day_before})));
        } else {
            assert_eq!(expired, None);
        }
        assert_eq!(&stripped, b);
    }
}

#[test]
fn other_server_port_or_finding_changes_nothing() {
    let (ip, port, date, base) = baseline();
    let later = shift(&date, 1);
    let configs = [
        exception("tls.version.deprecated", "216.58.193.0/24", port, &later),
        exception("tls.version.deprecated", "2001:db8::/32", port, &later),
        exception("tls.version.deprecated", &ip, port + 1, &later),
        exception("tls.version.insecure", &ip, port, &later),
        exception("tls.compression", &format!("{ip}/32"), port, &later),
        format!("{}sni = \"*.google.com\"\n", exception("tls.version.deprecated", &ip, port, &later)),
    ];
    for cfg in configs {
        let (code, evs) = run(Some(&cfg), &[]);
        assert_eq!(code, 0);
        assert_eq!(evs[0]["findings"].as_array().expect("findings"), &base, "{cfg}");
    }
}

#[test]
fn markdown_report_lists_the_accepted_finding() {
    let (ip, port, date, _) = baseline();
    let cfg = exception("tls.version.deprecated", &ip, port, &date);
    let dir = std::env::temp_dir().join(format!("tlsmon-exc-md-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("c.toml");
    std::fs::write(&path, &cfg).expect("write");
    let cap = capture();
    let path_s = path.to_str().expect("utf-8");
    let (_, md) = tlsmon(&["--config", path_s, "replay", "--report", "markdown", &cap]);
    let (_, plain) = tlsmon(&["replay", "--report", "markdown", &cap]);
    let (_, json) = tlsmon(&["--config", path_s, "replay", "--report", "json", &cap]);
    std::fs::remove_dir_all(&dir).ok();
    let line = format!("- accepted risk: tls.version.deprecated (high) until {date}: legacy lab appliance");
    assert!(md.contains(&line), "{md}");
    assert!(!md.contains("(`tls.version.deprecated`)"), "no longer a problem line: {md}");
    assert!(plain.contains("(`tls.version.deprecated`)"), "{plain}");
    // Other high findings remain: the server stays non-compliant, listing them.
    assert!(md.contains("NON-COMPLIANT") && md.contains("(`tls.cipher.weak`)"), "{md}");
    let j: Value = serde_json::from_str(&json).expect("report JSON");
    let srv = &j["servers"][0];
    assert_eq!(srv["accepted"][0]["id"], "tls.version.deprecated");
    assert_eq!(srv["accepted"][0]["reason"], "legacy lab appliance");
    assert_eq!(srv["accepted"][0]["expires"], date.as_str());
    let ids: Vec<&str> =
        srv["findings"].as_array().expect("findings").iter().filter_map(|f| f["id"].as_str()).collect();
    assert!(!ids.contains(&"tls.version.deprecated") && ids.contains(&"tls.cipher.weak"), "{ids:?}");
}

#[test]
fn accepting_every_problem_makes_the_server_compliant_and_expiry_undoes_it() {
    let (ip, port, date, base) = baseline();
    let problems: Vec<&str> =
        base.iter().filter(|f| f["severity"] != "info").map(|f| f["id"].as_str().expect("id")).collect();
    let dir = std::env::temp_dir().join(format!("tlsmon-exc-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let cap = capture();
    let report = |expires: &str| {
        let cfg: String = problems.iter().map(|id| exception(id, &ip, port, expires)).collect();
        let path = dir.join(format!("{expires}.toml"));
        std::fs::write(&path, cfg).expect("write");
        let (_, json) = tlsmon(&["--config", path.to_str().expect("utf-8"), "replay", "--report", "json", &cap]);
        serde_json::from_str::<Value>(&json).expect("report JSON")
    };
    let ok = report(&date);
    let expired = report(&shift(&date, -1));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(ok["servers"][0]["verdict"], "compliant");
    assert_eq!(ok["totals"]["non_compliant"], 0);
    assert_eq!(ok["servers"][0]["accepted"].as_array().expect("accepted").len(), problems.len());
    assert_eq!(expired["servers"][0]["verdict"], "non-compliant");
    let f = &expired["servers"][0]["findings"][0];
    assert_eq!(f["exception_expired"]["expired"], shift(&date, -1).as_str(), "{f}");
}
