//! End-to-end with Debian's real Prometheus (/usr/bin/prometheus, issue 6): Prometheus scrapes
//! several tlsmon agents (job `tlsmon`, 1 s scrape and rule evaluation), each replaying the
//! capture meant to trigger one alert, one clean capture, and one `tlsmon live` in the lab
//! (kernel counters, ring buffer). Through Prometheus's HTTP API it checks that every alert of
//! dashboards/tlsmon-alerts.yml fires for exactly the agents expected (the clean one raises no
//! finding alert), that `TlsmonAgentDown` fires for an agent that is killed, and that every
//! query of every Grafana dashboard returns data.
//!
//! The rules are loaded from a copy whose `for:` durations are cut to 2 s (the real ones are up
//! to 1 h); `promtool test rules` in tests/dashboards.rs proves the real durations.
//! Everything runs in the lab's mon namespace (loopback there), so Prometheus reaches the live
//! agent and the replays alike, and nothing listens on the host. Must never leave a process
//! or temp dir behind: every child and dir is owned by a guard that cleans up on drop.
mod lab;
mod testdata;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use lab::{Family, Lab, Mode, Posture, SERVERS};
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Most time for any one wait (agent address, Prometheus ready, targets up, alerts).
const WAIT: Duration = Duration::from_secs(40);
/// The shortened `for:` of the rule copy.
const SHORT_FOR: &str = "2s";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A child process killed (and reaped) on drop.
struct Proc {
    name: String,
    child: Child,
}
impl Proc {
    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temp dir removed on drop.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One `tlsmon replay --listen 127.0.0.1:0 … -` waiting for its capture on stdin.
struct Agent {
    name: &'static str,
    addr: SocketAddr,
    stdin: Option<ChildStdin>,
    capture: Option<PathBuf>,
    proc: Proc,
    stderr: Receiver<String>,
}

/// Reads the child's stderr on a thread; returns the line channel.
fn stderr_lines(child: &mut Child) -> Result<Receiver<String>> {
    let err = child.stderr.take().context("child stderr")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).try_for_each(|l| tx.send(l)).unwrap_or(()));
    Ok(rx)
}

/// Waits (bounded) for `tlsmon: serving metrics on http://ADDR/metrics`; returns ADDR and
/// every line read.
fn serving_addr(rx: &Receiver<String>, seen: &mut Vec<String>) -> Result<SocketAddr> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("tlsmon: serving metrics on http://") {
                // "ADDR/metrics (also /inventory, /healthz)"
                let addr = rest.split("/metrics").next().unwrap_or(rest);
                return addr.parse().with_context(|| format!("bad address in {line:?}"));
            }
        }
    }
    bail!("no \"serving metrics\" line within {WAIT:?}; stderr:\n{}", seen.join("\n"))
}

fn start_agent(name: &'static str, capture: Option<PathBuf>, extra: &[&str]) -> Result<Agent> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .args(["replay", "--listen", "127.0.0.1:0", "--format", "none"])
        .args(extra)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting tlsmon replay ({name})"))?;
    let stdin = child.stdin.take();
    let stderr = stderr_lines(&mut child)?;
    let proc = Proc { name: name.to_string(), child };
    let mut seen = Vec::new();
    let addr = serving_addr(&stderr, &mut seen).with_context(|| format!("agent {name}"))?;
    Ok(Agent { name, addr, stdin, capture, proc, stderr })
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Prometheus's HTTP API.
struct Prom {
    base: String,
    agent: ureq::Agent,
}

impl Prom {
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        let v: Value = resp.body_mut().read_json().with_context(|| format!("GET {path}: not JSON"))?;
        ensure!(status == 200 && v["status"] == "success", "GET {path} {query:?}: {status} {v}");
        Ok(v["data"].clone())
    }

    /// An instant query's result vector.
    fn query(&self, q: &str) -> Result<Vec<Value>> {
        let d = self.get("/api/v1/query", &[("query", q)])?;
        Ok(d["result"].as_array().cloned().unwrap_or_default())
    }

    /// One number from a query that returns one sample.
    fn scalar(&self, q: &str) -> Result<f64> {
        let r = self.query(q)?;
        ensure!(r.len() == 1, "{q}: {} samples, expected 1: {r:?}", r.len());
        r[0]["value"][1].as_str().and_then(|s| s.parse().ok()).with_context(|| format!("{q}: value {r:?}"))
    }

    /// Firing alerts as (alertname, instance).
    fn firing(&self) -> Result<BTreeSet<(String, String)>> {
        let d = self.get("/api/v1/alerts", &[])?;
        Ok(d["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let l = &a["labels"];
                (l["alertname"].as_str().unwrap_or("").to_string(), l["instance"].as_str().unwrap_or("").to_string())
            })
            .collect())
    }
}

/// Polls `f` every 250 ms until it returns Ok(true), at most [`WAIT`].
fn wait_for(what: &str, mut f: impl FnMut() -> Result<bool>) -> Result<Duration> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < WAIT {
        match f() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(e) => last = format!("{e:#}"),
        }
        thread::sleep(Duration::from_millis(250));
    }
    bail!("{what}: not within {WAIT:?} (last error: {last})")
}

/// The rules file with every `for:` cut to [`SHORT_FOR`] (and nothing else changed).
fn short_rules() -> Result<String> {
    let text = fs::read_to_string(root().join("dashboards/tlsmon-alerts.yml"))?;
    let mut n = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(_) => {
                n += 1;
                format!("{}for: {SHORT_FOR}", &l[..l.len() - l.trim_start().len()])
            }
            None => l.to_string(),
        })
        .collect();
    ensure!(n >= 9, "only {n} `for:` lines in the rules");
    Ok(out.join("\n") + "\n")
}

/// The alert names in the rules file.
fn alert_names() -> Result<BTreeSet<String>> {
    let text = fs::read_to_string(root().join("dashboards/tlsmon-alerts.yml"))?;
    Ok(text.lines().filter_map(|l| l.trim().strip_prefix("- alert:")).map(|s| s.trim().to_string()).collect())
}

/// Every dashboard query: (dashboard, panel title, expr).
fn dashboard_queries() -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    let dir = root().join("dashboards/grafana");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in files.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let d: Value = serde_json::from_str(&fs::read_to_string(f)?)?;
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let mut panels: Vec<&Value> = Vec::new();
        for p in d["panels"].as_array().context("panels")? {
            panels.push(p);
            panels.extend(p["panels"].as_array().into_iter().flatten());
        }
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().context("expr")?.to_string();
                out.push((name.clone(), p["title"].as_str().unwrap_or("").to_string(), expr));
            }
        }
    }
    Ok(out)
}

/// Grafana's variables as Grafana would expand them for "All" agents, a 5-minute range and
/// a 1 s scrape interval.
fn expand(expr: &str, instance: &str) -> String {
    expr.replace("$instance", instance)
        .replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("$__interval", "5s")
}

/// The live-only metric list stated in tests/dashboards.rs.
fn live_only_list() -> Vec<String> {
    let src = include_str!("dashboards.rs");
    let start = src.find("pub const LIVE_ONLY").expect("LIVE_ONLY in tests/dashboards.rs");
    let end = start + src[start..].find("];").unwrap();
    src[start..end].split('"').skip(1).step_by(2).map(String::from).collect()
}

fn corpus(name: &str) -> PathBuf {
    testdata::corpus().join("pcaps").join(name)
}

#[test]
fn prometheus_scrapes_agents_alerts_fire_and_every_panel_has_data() -> Result<()> {
    let t0 = Instant::now();
    let mut lab = Lab::create()?;
    lab.start_servers()?;
    let mon = lab.mon_ns.clone();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tlsmon"));
    let live = lab.start_live(&bin, Mode::Tc, &["--listen", "127.0.0.1:0"])?;
    let lab_ref = &lab;
    lab.in_netns(&mon, move || run(lab_ref, live, t0))
}

fn run(lab: &Lab, mut live: lab::Live, t0: Instant) -> Result<()> {
    let tmp = TempDir(std::env::temp_dir().join(format!("tlsmon-prom-e2e-{}", std::process::id())));
    let _ = fs::remove_dir_all(&tmp.0);
    fs::create_dir_all(tmp.0.join("tsdb"))?;

    // The live agent's address, from its stderr.
    let mut lines = live.stderr_lines.clone();
    let live_addr = {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(a) = lines.iter().find_map(|l| l.strip_prefix("tlsmon: serving metrics on http://")) {
                break a.split("/metrics").next().unwrap_or(a).parse::<SocketAddr>()?;
            }
            ensure!(Instant::now() < deadline, "live agent printed no serving line:\n{}", lines.join("\n"));
            thread::sleep(Duration::from_millis(50));
            lines.extend(live.drain_stderr());
        }
    };

    // One exception, so accepted findings have a series that rises.
    let config = tmp.0.join("accept.toml");
    fs::write(
        &config,
        "[[exception]]\nfinding = \"tls.cert.weak-signature\"\nserver = \"216.58.192.14\"\n\
         reason = \"e2e: accepted to show tlsmon_findings_accepted_total\"\nexpires = \"2099-12-31\"\n",
    )?;
    let config_s = config.to_string_lossy().into_owned();
    let test_data = testdata::generated();
    let cert7 = test_data.join("tls/cert-expiring-7d.pcap");
    ensure!(
        cert7.exists(),
        "{} missing: `cargo xtask test` writes it (xtask/src/gen/expiring_soon.rs)",
        cert7.display()
    );

    // The clean agent keeps a signed audit log (the audit panels' gauges).
    let (audit, key) = (tmp.0.join("clean-audit.jsonl"), tmp.0.join("clean-audit.key"));
    let (audit_s, key_s) = (audit.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
    let signed = vec!["--audit-log", audit_s.as_str(), "--audit-sign-key", key_s.as_str()];
    // name, capture, extra args.
    let specs: Vec<(&'static str, Option<PathBuf>, Vec<&str>)> = vec![
        ("critical", Some(corpus("zeek__ssl.v3.pcap")), vec![]),
        ("tls11", Some(corpus("zeek__tls1_1.pcap")), vec!["--config", &config_s]),
        ("phi", Some(corpus("ndpi__hl7.pcap")), vec![]),
        ("cert30", Some(corpus("suricata__tls-client-auth.pcap")), vec![]),
        ("cert7", Some(cert7.clone()), vec![]),
        ("expired", Some(corpus("ndpi__selfsigned.pcap")), vec![]),
        ("drops", Some(corpus("ndpi__tor.pcap")), vec!["--alertmanager", "http://127.0.0.1:1", "--alert-queue", "1"]),
        ("clean", Some(corpus("zeek__ecdsa-cert.pcap")), signed),
        ("down", None, vec![]),
    ];
    let mut agents = Vec::new();
    for (name, capture, extra) in specs {
        agents.push(start_agent(name, capture, &extra)?);
    }
    // name → instance label (host:port) and back.
    let mut addrs: BTreeMap<&str, String> = agents.iter().map(|a| (a.name, a.addr.to_string())).collect();
    addrs.insert("live", live_addr.to_string());
    let by_addr: BTreeMap<String, &str> = addrs.iter().map(|(n, a)| (a.clone(), *n)).collect();
    let inst = |name: &str| -> String { addrs.get(name).cloned().unwrap_or_default() };

    // Prometheus, scraping all of them every second and evaluating the shortened rules.
    let port = free_port()?;
    fs::write(tmp.0.join("rules.yml"), short_rules()?)?;
    let mut targets: Vec<String> = agents.iter().map(|a| format!("'{}'", a.addr)).collect();
    targets.push(format!("'{live_addr}'"));
    fs::write(
        tmp.0.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: ['{}']\nscrape_configs:\n  - job_name: tlsmon\n    static_configs:\n      - targets: [{}]\n",
            tmp.0.join("rules.yml").display(),
            targets.join(", ")
        ),
    )?;
    let prom_log = fs::File::create(tmp.0.join("prometheus.log"))?;
    let mut prom_proc = Proc {
        name: "prometheus".into(),
        child: Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", tmp.0.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", tmp.0.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(prom_log.try_clone()?)
            .stderr(prom_log)
            .spawn()
            .context("starting /usr/bin/prometheus (Debian package `prometheus`)")?,
    };
    let prom = Prom {
        base: format!("http://127.0.0.1:{port}"),
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into(),
    };
    let prom_log = || fs::read_to_string(tmp.0.join("prometheus.log")).unwrap_or_default();
    let n_targets = agents.len() + 1;
    let up = wait_for("every target scraped (up == 1) twice", || {
        if let Ok(Some(s)) = prom_proc.child.try_wait() {
            bail!("prometheus exited ({s}):\n{}", prom_log());
        }
        let r = prom.query("count_over_time(up{job=\"tlsmon\"}[1m]) >= 2 and up{job=\"tlsmon\"} == 1")?;
        Ok(r.len() == n_targets)
    })
    .with_context(prom_log)?;

    // Zeros scraped: now feed each agent its capture and close its stdin.
    // (The "down" agent has none: its stdin stays open, its replay never ends.)
    for a in agents.iter_mut() {
        if let Some(c) = a.capture.as_ref() {
            let mut stdin = a.stdin.take().context("agent stdin")?;
            stdin.write_all(&fs::read(c)?).with_context(|| format!("feeding {}", a.name))?;
        }
    }
    // Live traffic: one stock client run against the modern lab server (IPv4).
    let modern = SERVERS.iter().find(|s| s.posture == Posture::Modern).context("modern lab server")?;
    let runs = lab.run_server_clients(modern, Family::V4)?;

    let replays: Vec<String> = agents.iter().filter(|a| a.capture.is_some()).map(|a| a.addr.to_string()).collect();
    let fed = wait_for("every replay finished (tlsmon_replay_finished == 1 in Prometheus)", || {
        let done: BTreeSet<String> = prom
            .query("tlsmon_replay_finished == 1")?
            .iter()
            .filter_map(|r| r["metric"]["instance"].as_str().map(String::from))
            .collect();
        Ok(replays.iter().all(|r| done.contains(r)))
    })?;

    // Which alerts must fire for which agent (every other (alert, agent) pair must not).
    let mut expect: BTreeSet<(String, String)> = [
        ("TlsmonCriticalFinding", "critical"),
        ("TlsmonDeprecatedTlsVersion", "critical"),
        ("TlsmonNoForwardSecrecy", "critical"),
        ("TlsmonDeprecatedTlsVersion", "tls11"),
        ("TlsmonPlaintextPhi", "phi"),
        ("TlsmonCertificateExpiring30d", "cert30"),
        ("TlsmonCertificateExpiring7d", "cert7"),
        ("TlsmonCertificateExpired", "expired"),
        ("TlsmonDroppingEvents", "drops"),
        ("TlsmonDeprecatedTlsVersion", "drops"),
        ("TlsmonCertificateExpiring30d", "drops"),
    ]
    .iter()
    .map(|(a, n)| (a.to_string(), inst(n)))
    .collect();
    let mut firing = BTreeSet::new();
    let alerts_at = wait_for("the expected alerts firing", || {
        firing = prom.firing()?;
        Ok(expect.iter().all(|e| firing.contains(e)))
    })
    .with_context(|| format!("firing: {firing:?}\nexpected: {expect:?}"));
    let names = |set: &BTreeSet<(String, String)>| -> Vec<String> {
        set.iter().map(|(a, i)| format!("{a}@{}", by_addr.get(i).copied().unwrap_or(i.as_str()))).collect()
    };
    let alerts_at = alerts_at.with_context(|| format!("firing {:?}", names(&firing)))?;
    // Stable for a few more evaluations, then exactly the expected set.
    thread::sleep(Duration::from_secs(3));
    firing = prom.firing()?;
    let unexpected: Vec<_> = firing.difference(&expect).cloned().collect();
    let missing: Vec<_> = expect.difference(&firing).cloned().collect();
    ensure!(
        unexpected.is_empty() && missing.is_empty(),
        "alerts: unexpected {:?}, missing {:?}",
        names(&unexpected.into_iter().collect()),
        names(&missing.into_iter().collect())
    );
    let clean = inst("clean");
    ensure!(!firing.iter().any(|(_, i)| *i == clean), "the clean agent raised alerts");

    // Agent down: kill one and see TlsmonAgentDown for it.
    let down = inst("down");
    agents.iter_mut().find(|a| a.name == "down").context("down agent")?.proc.kill();
    let down_at = wait_for("TlsmonAgentDown for the killed agent", || {
        Ok(prom.firing()?.contains(&("TlsmonAgentDown".to_string(), down.clone())))
    })?;
    expect.insert(("TlsmonAgentDown".into(), down.clone()));
    let all_alerts = alert_names()?;
    let fired: BTreeSet<String> = expect.iter().map(|(a, _)| a.clone()).collect();
    ensure!(fired == all_alerts, "alerts never exercised: {:?}", all_alerts.difference(&fired).collect::<Vec<_>>());

    // Figures behind the alerts, per agent.
    let checks: Vec<(String, f64)> = vec![
        (format!("sum(tlsmon_findings_accepted_total{{instance=\"{}\"}})", inst("tls11")), 1.0),
        (format!("tlsmon_certificates_expiring{{within=\"7d\",instance=\"{}\"}}", inst("cert7")), 1.0),
        (format!("tlsmon_certificates_expiring{{within=\"30d\",instance=\"{}\"}}", inst("cert7")), 1.0),
        (format!("tlsmon_certificates_expiring{{within=\"30d\",instance=\"{}\"}}", inst("cert30")), 1.0),
        (format!("tlsmon_certificates_expiring{{within=\"7d\",instance=\"{}\"}}", inst("cert30")), 0.0),
        (format!("tlsmon_plaintext_phi_flows_total{{protocol=\"hl7\",instance=\"{}\"}}", inst("phi")), 1.0),
        (format!("sum(tlsmon_findings_total{{instance=\"{clean}\"}})"), 0.0),
        (format!("tlsmon_handshakes_total{{version=\"tls1.2\",instance=\"{clean}\"}}"), 1.0),
    ];
    let mut bad = Vec::new();
    for (q, want) in &checks {
        match prom.scalar(q) {
            Ok(v) if v == *want => {}
            r => bad.push(format!("{q} = {r:?}, expected {want}")),
        }
    }
    let drops =
        prom.scalar(&format!("tlsmon_dropped_total{{what=\"alert_queue_full\",instance=\"{}\"}}", inst("drops")))?;
    if drops < 1.0 {
        bad.push(format!("alert_queue_full drops = {drops}"));
    }
    let packets =
        prom.scalar(&format!("tlsmon_kernel_counter_total{{counter=\"packets\",instance=\"{live_addr}\"}}"))?;
    if packets < 1.0 {
        bad.push(format!("live kernel packets = {packets}"));
    }

    // Live-only metrics: exported by the live agent, by none of the replays.
    for m in live_only_list() {
        let per: Vec<String> = prom
            .query(&format!("count by (instance) ({{__name__=\"{m}\"}})"))?
            .iter()
            .map(|r| r["metric"]["instance"].as_str().unwrap_or("").to_string())
            .collect();
        if per != [live_addr.to_string()] {
            bad.push(format!("live-only {m} exported by {per:?}, expected only the live agent {live_addr}"));
        }
    }

    // Every dashboard query returns data, over all agents.
    let queries = dashboard_queries()?;
    for (file, title, expr) in &queries {
        let q = expand(expr, ".*");
        match prom.query(&q) {
            Ok(r) if !r.is_empty() => {}
            Ok(_) => bad.push(format!("{file}: {title:?}: no data for {q}")),
            Err(e) => bad.push(format!("{file}: {title:?}: {e:#}")),
        }
    }
    let panels: BTreeSet<(&String, &String)> = queries.iter().map(|(f, t, _)| (f, t)).collect();
    // And the posture/PHI/certificate stats show the right agent's figure when filtered to it.
    let by_title = |t: &str| queries.iter().find(|q| q.1 == t).map(|q| q.2.clone()).context(t.to_string());
    for (title, agent, want) in [
        ("PHI flows in clear", "phi", 1.0),
        ("Expiring within 7 days", "cert7", 1.0),
        ("Expired", "expired", 1.0),
        ("Non-compliant servers", "clean", 0.0),
        ("Critical findings", "critical", 3.0),
    ] {
        let q = expand(&by_title(title)?, &regex_escape(&inst(agent)));
        match prom.scalar(&q) {
            // increase() extrapolates a little past the last sample: compare whole counts.
            Ok(v) if v.round() == want => {}
            r => bad.push(format!("panel {title:?} for {agent}: {r:?}, expected {want} ({q})")),
        }
    }
    ensure!(bad.is_empty(), "{} problem(s):\n  {}", bad.len(), bad.join("\n  "));

    // The agents are still healthy (none of the replays exited on its own).
    for a in agents.iter_mut().filter(|a| a.name != "down") {
        if let Ok(Some(s)) = a.proc.child.try_wait() {
            let err: Vec<String> = a.stderr.try_iter().collect();
            bail!("agent {} ({}) exited early: {s}\n{}", a.name, a.proc.name, err.join("\n"));
        }
    }
    eprintln!(
        "prometheus e2e: {} agents + 1 live ({} client runs); targets up {:.1} s, replays done {:.1} s, \
         {} alert firings checked (+ agent down {:.1} s after kill), {} dashboard queries in {} panels with data, \
         total {:.1} s",
        agents.len(),
        runs.len(),
        up.as_secs_f64(),
        fed.as_secs_f64(),
        expect.len(),
        down_at.as_secs_f64(),
        queries.len(),
        panels.len(),
        t0.elapsed().as_secs_f64()
    );
    let _ = alerts_at;
    drop(prom_proc);
    drop(agents);
    let stopped = live.stop()?;
    ensure!(stopped.status.success(), "tlsmon live exited with {}: {}", stopped.status, stopped.stderr.join("\n"));
    Ok(())
}

/// `127.0.0.1:1234` as a literal inside `=~"…"` (dots escaped).
fn regex_escape(s: &str) -> String {
    s.replace('.', "\\\\.")
}
