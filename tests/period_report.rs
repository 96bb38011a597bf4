//! `tlsmon report` over audit logs spread over three UTC days and two agents (one a rolled,
//! signed series): the JSON report's per-day figures equal what the
//! test counts in the events it wrote, the HTML and Markdown carry the same figures, servers
//! name the agents that reported them, a hostile SNI is escaped, --since/--until cut the
//! period, a tampered log is named in its agent's stamp, and a ~30 MB log takes seconds.
#[path = "period_series.rs"]
mod period_series;

use std::collections::BTreeMap;
use std::path::PathBuf;

use period_series::*;
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    root().join("target/test-data/period-report").join(format!("{name}-{}", std::process::id()))
}

/// Per day: tls handshakes, plaintext flows, findings not accepted by severity.
#[derive(Debug, Default, PartialEq)]
struct DayCount {
    handshakes: u64,
    plaintext: u64,
    findings: BTreeMap<String, u64>,
}

fn count(evs: &[&Value]) -> BTreeMap<String, DayCount> {
    let mut m: BTreeMap<String, DayCount> = BTreeMap::new();
    for ev in evs {
        let d = m.entry(ev["timestamp"].as_str().expect("time")[..10].to_string()).or_default();
        match ev["type"].as_str() {
            Some("tls") => d.handshakes += 1,
            Some("plaintext") => d.plaintext += 1,
            _ => {}
        }
        for f in ev["findings"].as_array().expect("findings") {
            if f.get("accepted").is_none() {
                *d.findings.entry(f["severity"].as_str().expect("sev").to_string()).or_default() += 1;
            }
        }
    }
    m
}

#[test]
fn multi_day_fleet_report_agrees_across_formats() {
    let evs = spread(events(&captures()));
    let dir = tmp("fleet");
    let (files, per_agent) = write_logs(&dir, &evs);
    let (code, json) = tlsmon(&["report", "--format", "json"], &files);
    assert_eq!(code, 0, "every chain intact");
    let doc: Value = serde_json::from_str(&json).expect("JSON report");

    // One stamp per agent, named by directory, intact, with its first and last seq.
    let agents = doc["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 2, "{agents:?}");
    assert_eq!(agents[0]["agent"], "ward-a");
    assert_eq!(agents[1]["agent"], "ward-b");
    for a in agents {
        assert_eq!(a["chain"], "intact", "{a}");
        assert_eq!(a["signatures"], "not checked");
        assert_eq!(a["first_seq"], 1);
        assert_eq!(a["first_hash"].as_str().map(str::len), Some(64));
    }
    assert!(agents[0]["files"].as_array().expect("files").len() >= 2, "ward-a is a rolled series");
    let cps = checkpoint_lines(&files);
    assert!(cps >= 2, "a checkpoint ends each rolled file and the log: {cps}");
    assert_eq!(agents[0]["lines"], per_agent[0].len() as u64 + cps, "every event and the checkpoints");
    assert_eq!(agents[0]["last_seq"], per_agent[0].len() as u64 + cps);
    assert_eq!(agents[0]["checkpoint_lines"], cps);
    assert_eq!(agents[1]["lines"], per_agent[1].len() as u64);
    let skipped = doc["coverage"].as_array().expect("coverage").iter().find(|c| c["what"] == "skipped_checkpoint");
    assert_eq!(skipped.expect("the checkpoint lines are counted")["count"], cps);

    // Per-day figures: what the test wrote, both agents' events together.
    let all: Vec<&Value> = per_agent.iter().flatten().collect();
    let want = count(&all);
    assert_eq!(want.keys().map(String::as_str).collect::<Vec<_>>(), DAYS);
    let days = doc["days"].as_array().expect("days");
    assert_eq!(days.len(), 3);
    for d in days {
        let date = d["date"].as_str().expect("date");
        let w = &want[date];
        assert_eq!(d["handshakes"], w.handshakes, "{date}");
        assert_eq!(d["plaintext_flows"], w.plaintext, "{date}");
        for sev in ["critical", "high", "medium", "low", "info"] {
            assert_eq!(d["findings"][sev], w.findings.get(sev).copied().unwrap_or(0), "{date} {sev}");
        }
        let versions: u64 = d["versions"].as_object().expect("versions").values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(versions, w.handshakes, "{date}: every handshake has one version column");
    }
    let total: u64 = want.values().map(|d| d.handshakes).sum();
    assert_eq!(doc["totals"]["handshakes"], total);
    assert!(doc["totals"]["pq"].as_u64().unwrap() > 0, "the ML-KEM capture counts as post-quantum");
    assert!(doc["totals"]["pfs"].as_u64().unwrap() > 0);
    assert!(doc["plaintext"]["hl7"]["phi_flows"].as_u64().unwrap() > 0, "HL7 in clear is PHI");

    // Servers worst first, with fix lines and HIPAA references; both agents named.
    let servers = doc["servers"].as_array().expect("servers");
    let rank = |s: &Value| ["info", "low", "medium", "high", "critical"].iter().position(|x| s["worst_severity"] == *x);
    assert!(servers.windows(2).all(|w| rank(&w[0]) >= rank(&w[1])), "worst first");
    let f = &servers[0]["findings"][0];
    assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()) && f["hipaa_ref"].as_str().is_some(), "{f}");
    assert!(
        servers.iter().any(|s| s["reported_by"] == serde_json::json!(["ward-a", "ward-b"])),
        "a server both agents saw names both"
    );

    // The HTML carries the same figures, escapes the hostile SNI, fetches nothing.
    let (_, html) = tlsmon(&["report"], &files);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for d in days {
        let date = d["date"].as_str().unwrap();
        for (k, v) in [
            ("handshakes", d["handshakes"].to_string()),
            ("plaintext_flows", d["plaintext_flows"].to_string()),
            ("pfs_share", format!("{:.1}", d["pfs_share"].as_f64().unwrap())),
            ("pq_share", format!("{:.1}", d["pq_share"].as_f64().unwrap())),
            ("critical", d["findings"]["critical"].to_string()),
            ("high", d["findings"]["high"].to_string()),
            ("medium", d["findings"]["medium"].to_string()),
            ("low", d["findings"]["low"].to_string()),
        ] {
            assert_eq!(html_key(&html, &format!("{date}.{k}")), Some(v), "{date}.{k}");
        }
    }
    assert_eq!(html_key(&html, "total.handshakes"), Some(total.to_string()));
    assert_eq!(html_key(&html, "total.servers"), Some(doc["totals"]["servers"].to_string()));
    assert_eq!(html_key(&html, "plaintext.hl7.flows"), Some(doc["plaintext"]["hl7"]["flows"].to_string()));
    assert_eq!(html_key(&html, "agent.0.chain"), Some("intact".into()));
    let cps = checkpoint_lines(&files);
    assert_eq!(html_key(&html, "agent.0.signatures"), Some(format!("not checked ({cps} checkpoint lines)")));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x"), "hostile SNI escaped");
    for banned in ["<script", "<img", "http://", "https://", "<link", "url(", "@import"] {
        assert!(!html.contains(banned), "the HTML carries {banned}");
    }
    assert!(html.contains("reported by ward-a, ward-b"));

    // Markdown: the same per-day row.
    let (_, md) = tlsmon(&["report", "--format", "markdown"], &files);
    let d0 = &days[0];
    let row = format!("| {} | {} |", d0["date"].as_str().unwrap(), d0["handshakes"]);
    assert!(md.contains(&row), "{row} in\n{md}");
    assert!(md.contains("\\<script\\>alert(1)"), "hostile SNI escaped in Markdown");

    // The period filter: the middle day only.
    let (_, cut) = tlsmon(&["report", "--format", "json", "--since", DAYS[1], "--until", "2026-11-04"], &files);
    let cut: Value = serde_json::from_str(&cut).expect("JSON");
    let cut_days: Vec<&str> = cut["days"].as_array().unwrap().iter().map(|d| d["date"].as_str().unwrap()).collect();
    assert_eq!(cut_days, [DAYS[1]]);
    assert_eq!(cut["totals"]["handshakes"], want[DAYS[1]].handshakes);
    let outside = cut["coverage"].as_array().unwrap().iter().find(|c| c["what"] == "outside_period").expect("counted");
    let in_day = all.iter().filter(|e| e["timestamp"].as_str().unwrap().starts_with(DAYS[1])).count();
    assert_eq!(outside["count"], (all.len() - in_day) as u64);

    // One changed byte in ward-b's log: its stamp names the line, ward-a's stays intact, exit 1.
    let b_log = files.iter().find(|f| f.parent().unwrap().ends_with("ward-b")).unwrap().clone();
    let text = std::fs::read_to_string(&b_log).unwrap();
    let second = text.find('\n').unwrap() + 1;
    let at = second + text[second..].find("\"timestamp\":\"2026").unwrap() + 16;
    let mut bytes = text.into_bytes();
    bytes[at] = b'5';
    std::fs::write(&b_log, bytes).unwrap();
    let (code, json) = tlsmon(&["report", "--format", "json"], &files);
    assert_eq!(code, 1, "a broken chain fails the report");
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["agents"][0]["chain"], "intact");
    assert_eq!(doc["agents"][1]["chain"], "broken");
    assert_eq!(doc["agents"][1]["first_bad"]["line"], 2, "{}", doc["agents"][1]);
    let (_, html) = tlsmon(&["report"], &files);
    assert!(html_key(&html, "agent.1.chain").is_some_and(|c| c.contains("BROKEN")), "the HTML says so");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A ~30 MB audit log: the report streams it in seconds (debug build: under 60 s).
#[test]
fn thirty_megabytes_in_seconds() {
    let base = spread(events(&captures()));
    let dir = tmp("big");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("agent")).unwrap();
    let path = dir.join("agent/audit.jsonl");
    let mut log = monitor::sink::audit::AuditLog::open(&path, Default::default()).unwrap();
    let mut n = 0u64;
    while std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < 30 << 20 {
        for (i, ev) in base.iter().enumerate() {
            let mut ev = ev.clone();
            // Many servers: the inventory's bound is exercised, the day stays the same.
            ev["destination"]["ip"] = Value::from(format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255));
            ev["timestamp"] = Value::from(format!("{}T{:02}:00:00.000000Z", DAYS[i % 3], n % 24));
            log.append(&ev).unwrap();
            n += 1;
        }
        log.sync().unwrap();
    }
    log.close().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let start = std::time::Instant::now();
    let (code, json) = tlsmon(&["report", "--format", "json", "--max-servers", "1000"], std::slice::from_ref(&path));
    let secs = start.elapsed().as_secs_f64();
    eprintln!("report over {} MB ({n} events): {secs:.1} s", size >> 20);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["totals"]["events"], n);
    assert_eq!(doc["totals"]["servers"], 1000, "bounded by --max-servers");
    let dropped = doc["coverage"].as_array().unwrap().iter().find(|c| c["what"] == "servers_dropped").expect("counted");
    assert!(dropped["count"].as_u64().unwrap() > 0);
    let (code, html) = tlsmon(&["report", "--max-servers", "1000"], &[path]);
    assert_eq!(code, 0);
    assert_eq!(html_key(&html, "total.events"), Some(n.to_string()));
    assert!(secs < 60.0, "{secs:.1} s for {} MB", size >> 20);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One source of truth for fix lines: the servers of `replay --report json` (built from the
/// pipeline's outputs) and of `tlsmon report --format json` over the audit log the same replay
/// wrote (built from the JSON events) are the same, field by field, fix lines included.
#[test]
fn audit_log_report_has_the_replay_servers() {
    let dir = tmp("same");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.jsonl");
    let log_s = log.to_str().unwrap().to_string();
    let (_, inv) = tlsmon(&["replay", "--report", "json", "--audit-log", &log_s], &captures());
    let (code, rep) = tlsmon(&["report", "--format", "json", &log_s], &[]);
    assert_eq!(code, 0);
    let inv: Value = serde_json::from_str(&inv).unwrap();
    let rep: Value = serde_json::from_str(&rep).unwrap();
    let (a, b) = (inv["servers"].as_array().unwrap(), rep["servers"].as_array().unwrap());
    assert!(a.len() >= 10, "{}", a.len());
    assert_eq!(a.len(), b.len());
    let mut fixes = 0;
    for (x, y) in a.iter().zip(b) {
        for (k, v) in x.as_object().unwrap() {
            if k == "first_seen" || k == "last_seen" {
                // The events carry microseconds.
                assert_eq!(v.as_str().unwrap()[..26], y[k].as_str().unwrap()[..26], "{k}");
            } else {
                assert_eq!(v, &y[k], "server {} {}: {k}", x["ip"], x["sni"]);
            }
        }
        fixes += x["findings"].as_array().unwrap().len();
    }
    assert!(fixes >= 20, "findings with fix lines compared: {fixes}");
    assert_eq!(inv["verdict"], rep["verdict"]);
    // `replay --report html` is the same model, built from the same events.
    let (_, html) = tlsmon(&["replay", "--report", "html"], &captures());
    for d in rep["days"].as_array().unwrap() {
        let date = d["date"].as_str().unwrap();
        for k in ["handshakes", "plaintext_flows", "high", "accepted"] {
            let want = if k == "high" { d["findings"]["high"].to_string() } else { d[k].to_string() };
            assert_eq!(html_key(&html, &format!("{date}.{k}")), Some(want), "{date}.{k}");
        }
    }
    assert_eq!(html_key(&html, "total.servers"), Some(rep["totals"]["servers"].to_string()));
    assert!(html.contains("No audit log: a replay of captures"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Accepted risks: an exception that held (its reason and expiry), and one that had expired,
/// reach the period report from the audit log's events.
#[test]
fn accepted_risks_with_their_expiry() {
    let dir = tmp("risks");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lab")).unwrap();
    let cap = corpus("zeek__tls1_1.pcap");
    let (_, evs) = tlsmon(&["replay", "--format", "json"], std::slice::from_ref(&cap));
    let ev: Value = serde_json::from_str(evs.lines().next().expect("one event")).unwrap();
    let ip = ev["destination"]["ip"].as_str().unwrap();
    let other = ev["findings"].as_array().unwrap().iter().find(|f| f["id"] != "tls.version.deprecated").unwrap();
    let other = other["id"].as_str().unwrap();
    let exc = |id: &str, reason: &str, expires: &str| {
        format!("[[exception]]\nfinding = \"{id}\"\nserver = \"{ip}\"\nport = 443\nreason = \"{reason}\"\nexpires = \"{expires}\"\n")
    };
    let cfg = dir.join("c.toml");
    let text =
        exc("tls.version.deprecated", "legacy <lab> appliance", "2017-11-30") + &exc(other, "was fixed", "2017-11-29");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.join("lab/audit.jsonl");
    let (cfg_s, log_s) = (cfg.to_str().unwrap(), log.to_str().unwrap());
    tlsmon(&["--config", cfg_s, "replay", "--format", "none", "--audit-log", log_s], &[cap]);
    let (code, json) = tlsmon(&["report", "--format", "json", log_s], &[]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&json).unwrap();
    let risks = doc["accepted_risks"].as_array().unwrap();
    assert_eq!(risks.len(), 2, "{risks:?}");
    assert_eq!(risks[0]["id"], "tls.version.deprecated");
    assert_eq!(risks[0]["state"], "accepted");
    assert_eq!(risks[0]["reason"], "legacy <lab> appliance");
    assert_eq!(risks[0]["expires"], "2017-11-30");
    assert_eq!((risks[1]["id"].as_str(), &risks[1]["state"]), (Some(other), &Value::from("expired")));
    assert_eq!(risks[1]["expires"], "2017-11-29");
    assert_eq!(doc["days"][0]["accepted"], 1);
    assert_eq!(html_key(&tlsmon(&["report", log_s], &[]).1, "2017-11-30.accepted"), Some("1".into()));
    let html = tlsmon(&["report", log_s], &[]).1;
    assert!(html.contains("legacy &lt;lab&gt; appliance</td><td>2017-11-30</td>"), "the HTML lists it with its expiry");
    let md = tlsmon(&["report", "--format", "markdown", log_s], &[]).1;
    assert!(md.contains("tls.version.deprecated (accepted): legacy \\<lab\\> appliance until 2017-11-30"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A log signed by the agent (`--audit-sign-key`): with its public key the stamp says the
/// signatures are valid and the log sealed; with another key the checkpoint is named invalid
/// and the chain broken; without a key, "not checked".
#[test]
fn signed_log_stamp_checks_the_signatures() {
    let dir = tmp("signed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (log, key, other) = (dir.join("audit.jsonl"), dir.join("audit.key"), dir.join("other.key"));
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    tlsmon(&["replay", "--format", "none", "--audit-log", &s(&log), "--audit-sign-key", &s(&key)], &captures());
    tlsmon(&["audit", "key", "--out", &s(&other)], &[]);
    let stamp = |args: &[&str]| {
        let mut all = vec!["report", "--format", "json"];
        all.extend_from_slice(args);
        let log_s = s(&log);
        all.push(&log_s);
        let (code, out) = tlsmon(&all, &[]);
        let v: Value = serde_json::from_str(&out).unwrap();
        (code, v["agents"][0].clone())
    };
    let (pub_s, other_pub) = (format!("{}.pub", s(&key)), format!("{}.pub", s(&other)));
    let (code, st) = stamp(&["--key", &pub_s]);
    assert_eq!(code, 0, "{st}");
    let sig = st["signatures"].as_str().unwrap();
    assert!(sig.starts_with("valid (key ") && sig.contains("sealed at a clean exit"), "{sig}");
    let (code, st) = stamp(&["--key", &other_pub]);
    assert_eq!(code, 1, "a checkpoint signed by a key not given breaks the chain: {st}");
    assert!(st["signatures"].as_str().unwrap().starts_with("INVALID"), "{st}");
    assert_eq!(st["chain"], "broken");
    let (code, st) = stamp(&[]);
    assert_eq!((code, st["signatures"].as_str()), (0, Some("not checked")), "{st}");
    let _ = std::fs::remove_dir_all(&dir);
}
