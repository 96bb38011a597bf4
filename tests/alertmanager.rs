//! Direct alerting to a real Alertmanager (Debian's prometheus-alertmanager, started per test on
//! loopback with a webhook receiver served by the test): one alert per (server, finding) however
//! many handshakes raise it, resolution by a clean judgement and by inactivity, retries against
//! an Alertmanager that starts late, drops and a bounded exit against one that never answers,
//! and no PHI in anything posted.
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monitor::cli::AlertArgs;
use monitor::observation::Output;
use monitor::policy::Severity;
use monitor::sink::alertmanager::{AlertStats, Alerter};
use serde_json::Value;

#[path = "testdata/mod.rs"]
mod testdata;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Poll `f` every 100 ms until it returns `Some`, at most `limit`.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The notifications Alertmanager's webhook receiver delivered (request bodies, as JSON).
type Hooks = Arc<Mutex<Vec<Value>>>;

/// A tiny HTTP server taking webhook POSTs; runs until the test process ends.
fn webhook() -> (u16, Hooks) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the webhook listener");
    let port = listener.local_addr().expect("webhook address").port();
    let hooks: Hooks = Arc::default();
    let store = hooks.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            if let Some(body) = read_request(conn) {
                if let Ok(v) = serde_json::from_slice(&body) {
                    store.lock().unwrap().push(v);
                }
            }
        }
    });
    (port, hooks)
}

/// Read one HTTP request's body and answer 200 (bounded by a read timeout).
fn read_request(mut conn: TcpStream) -> Option<Vec<u8>> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; len.min(16 << 20)];
    r.read_exact(&mut body).ok()?;
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    Some(body)
}

/// One Alertmanager on loopback with its own storage; killed and removed on drop.
struct Am {
    child: Child,
    dir: PathBuf,
    port: u16,
    hooks: Hooks,
}

impl Am {
    fn start() -> Am {
        Am::start_on(free_port())
    }

    /// Start on `port` and wait (at most 30 s) until `/-/ready` answers.
    fn start_on(port: u16) -> Am {
        let (hook_port, hooks) = webhook();
        let dir = std::env::temp_dir().join(format!("tlsmon-am-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the Alertmanager dir");
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['server', 'finding']\n  group_wait: 1s\n  group_interval: 1s\n  \
             repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/\n        \
             send_resolved: true\n"
        );
        std::fs::write(dir.join("alertmanager.yml"), config).expect("writing the Alertmanager config");
        let log = std::fs::File::create(dir.join("log")).expect("creating the Alertmanager log");
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {ALERTMANAGER}: {e}"));
        let am = Am { child, dir, port, hooks };
        let ready = wait_for(Duration::from_secs(30), || {
            ureq::get(&format!("{}/-/ready", am.url())).call().ok().filter(|r| r.status() == 200)
        });
        if ready.is_none() {
            let log = std::fs::read_to_string(am.dir.join("log")).unwrap_or_default();
            panic!("Alertmanager on port {port} not ready within 30 s; its log:\n{log}");
        }
        am
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /api/v2/alerts?QUERY` (active alerts by default; resolved ones are not listed).
    fn alerts(&self, query: &str) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts{query}", self.url());
        let mut r = ureq::get(&url).call().expect("GET /api/v2/alerts");
        let text = r.body_mut().read_to_string().expect("reading the alerts");
        serde_json::from_str(&text).expect("the alerts are JSON")
    }

    /// Active alerts' (server, finding) pairs.
    fn keys(&self) -> BTreeSet<(String, String)> {
        self.alerts("").iter().map(key_of).collect()
    }

    /// Every alert the webhook was notified of with status `status`, as (server, finding).
    fn notified(&self, status: &str) -> BTreeSet<(String, String)> {
        let hooks = self.hooks.lock().unwrap();
        hooks
            .iter()
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["status"] == status)
            .map(|a| key_of(&a))
            .collect()
    }
}

impl Drop for Am {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn key_of(a: &Value) -> (String, String) {
    let l = &a["labels"];
    (l["server"].as_str().unwrap_or("").to_string(), l["finding"].as_str().unwrap_or("").to_string())
}

fn args(url: &str) -> AlertArgs {
    AlertArgs { alertmanager: Some(url.to_string()), ..Default::default() }
}

/// Every output of these captures (each through its own pipeline).
fn outputs(files: &[PathBuf]) -> Vec<Output> {
    let mut all = Vec::new();
    for f in files {
        match monitor::run::replay_path(f) {
            Ok((o, _)) => all.extend(o),
            Err((_, e)) => panic!("replaying {}: {e}", f.display()),
        }
    }
    all
}

fn server_of(o: &Output) -> String {
    let s = o.endpoints().1;
    SocketAddr::new(s.addr.to_ip(), s.port).to_string()
}

/// The (server, finding) keys outputs raise at or above `min`, without accepted findings.
fn expected_keys(outs: &[Output], min: Severity) -> BTreeSet<(String, String)> {
    outs.iter()
        .flat_map(|o| {
            let server = server_of(o);
            o.findings
                .iter()
                .filter(move |f| f.severity >= min && !f.is_accepted())
                .map(move |f| (server.clone(), f.id.to_string()))
        })
        .collect()
}

fn corpus_file(name: &str) -> PathBuf {
    testdata::corpus().join("pcaps").join(name)
}

/// `tlsmon replay FILES… --format json ARGS…`: the events, the final metrics and the run time.
fn replay_bin(files: &[PathBuf], args: &[&str]) -> (Vec<Value>, String, Duration) {
    let metrics = std::env::temp_dir().join(format!("tlsmon-am-metrics-{}-{}", std::process::id(), free_port()));
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .arg("replay")
        .args(files)
        .args(["--format", "json", "--no-progress", "--metrics-out"])
        .arg(&metrics)
        .args(args)
        .output()
        .expect("running tlsmon");
    let took = t0.elapsed();
    assert!(out.status.code().is_some_and(|c| c <= 1), "tlsmon failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&metrics).unwrap_or_default();
    std::fs::remove_file(&metrics).ok();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (events, text, took)
}

/// A sample's value in Prometheus text (`name` with its labels, as written).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} not in the metrics:\n{text}")) as u64
}

/// The (server, finding) keys JSON events raise at or above `min` (severity names in order).
fn event_keys(events: &[Value], min: &str) -> BTreeSet<(String, String)> {
    const ORDER: [&str; 5] = ["info", "low", "medium", "high", "critical"];
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(0);
    let mut keys = BTreeSet::new();
    for ev in events {
        let ip: IpAddr = ev["destination"]["ip"].as_str().unwrap().parse().unwrap();
        let server = SocketAddr::new(ip, ev["destination"]["port"].as_u64().unwrap() as u16).to_string();
        for f in ev["findings"].as_array().into_iter().flatten() {
            if rank(f["severity"].as_str().unwrap()) >= rank(min) && f.get("accepted").is_none() {
                keys.insert((server.clone(), f["id"].as_str().unwrap().to_string()));
            }
        }
    }
    keys
}

/// The binary: every corpus capture replayed three times in one run (each server's handshakes
/// raise the same findings again and again; one capture's server alone raises one finding in 24
/// handshakes). Alertmanager ends up holding exactly one alert per distinct (server, finding)
/// of the JSON events at/above the minimum severity, labelled as documented, and the agent
/// posted one alert per key, not one per handshake.
#[test]
fn replay_posts_one_alert_per_server_and_finding() {
    let am = Am::start();
    let corpus = testdata::corpus_files();
    let files: Vec<PathBuf> = corpus.iter().chain(&corpus).chain(&corpus).cloned().collect();
    let (events, metrics, _) = replay_bin(&files, &["--alertmanager", &am.url(), "--alert-min-severity", "low"]);
    let expected = event_keys(&events, "low");
    let raising: usize = events
        .iter()
        .flat_map(|e| e["findings"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["severity"] != "info")
        .count();
    let repeated = ("40.113.10.47:443".to_string(), "tls.version.no-tls13".to_string());
    let repeats = events.iter().filter(|e| e["destination"]["ip"] == "40.113.10.47").count();
    assert_eq!(repeats, 24, "8 handshakes to one server in ndpi__tls_certificate_too_long, three times");
    assert!(expected.contains(&repeated), "{expected:?}");
    assert!(expected.len() >= 40 && raising >= 3 * expected.len(), "{} keys, {raising} raised", expected.len());

    let alerts = am.alerts("");
    let got: BTreeSet<_> = alerts.iter().map(key_of).collect();
    let sent = metric(&metrics, "tlsmon_alerts_sent_total");
    eprintln!(
        "{} events, {raising} findings >= low, {} keys, {} alerts active, {sent} sent",
        events.len(),
        expected.len(),
        got.len()
    );
    assert_eq!(alerts.len(), got.len(), "one alert per key");
    assert!(got.is_subset(&expected), "only keys of the events: {:?}", got.difference(&expected));
    // A key its server was later judged without (the same server answered another client
    // without it) was resolved on the way: Alertmanager notified it resolved.
    let gone: BTreeSet<_> = expected.difference(&got).cloned().collect();
    eprintln!("resolved by a later clean judgement: {gone:?}");
    assert!(gone.len() * 20 <= expected.len(), "few keys flap in the corpus: {gone:?}");
    // (Posted after the whole replay, merged, such a key reaches Alertmanager already resolved.)
    let firing = wait_for(Duration::from_secs(15), || Some(am.notified("firing")).filter(|f| f.len() == got.len()));
    assert_eq!(firing, Some(got.clone()), "Alertmanager notified the receiver of each active alert");
    // Each key posted once, each flap (resolved, raised again) twice more per replay pass.
    let most = expected.len() + 6 * gone.len();
    assert!(sent >= expected.len() as u64 && sent as usize <= most, "sent {sent}, keys {}", expected.len());
    assert!((sent as usize) * 3 < raising, "posted per key, not per handshake: {sent} vs {raising}");
    assert_eq!(metric(&metrics, "tlsmon_alert_post_errors_total"), 0);
    assert_eq!(metric(&metrics, "tlsmon_dropped_total{what=\"alert_queue_full\"}"), 0);

    for a in &alerts {
        let l = &a["labels"];
        assert_eq!(l["alertname"], "TlsmonFinding");
        assert_eq!(l["source"], "tlsmon");
        let labels: BTreeSet<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(labels, BTreeSet::from(["alertname", "finding", "severity", "server", "source"]));
        let sev = l["severity"].as_str().unwrap();
        assert!(["low", "medium", "high", "critical"].contains(&sev), "{sev}");
        let id = l["finding"].as_str().unwrap();
        let ann = &a["annotations"];
        assert_eq!(
            ann["runbook_url"].as_str().unwrap(),
            format!("https://github.com/tlsmon/tlsmon/blob/main/dashboards/RUNBOOK.md#{}", id.replace('.', "-"))
        );
        assert!(ann["summary"].as_str().unwrap().ends_with(l["server"].as_str().unwrap()), "{ann}");
        assert!(ann["description"].as_str().unwrap().contains("HIPAA"), "{ann}");
        assert_eq!(a["status"]["state"], "active");
        assert!(a["endsAt"].as_str().unwrap() > a["startsAt"].as_str().unwrap(), "{a}");
    }
    let r = alerts.iter().find(|a| key_of(a) == repeated).unwrap();
    assert_eq!(r["labels"]["severity"], "low");
    assert!(r["annotations"]["sni"].is_string(), "the SNI of the corpus handshakes: {r}");
    assert!(got.iter().any(|(s, _)| s.starts_with('[')), "IPv6 servers as [addr]:port: {got:?}");
}

/// Outputs of a real capture: one whose server raises findings (TLS 1.1, certificates seen) and
/// one of another capture judged clean with its certificates seen, moved to the first's server:
/// the same ip:port first with, then without the findings (the server was fixed).
fn bad_and_fixed() -> (Output, Output) {
    let bad = outputs(&[corpus_file("zeek__tls1_1.pcap")])
        .into_iter()
        .find(|o| o.findings.iter().any(|f| f.id == "tls.version.deprecated"))
        .expect("zeek__tls1_1 negotiates TLS 1.1");
    let clean = outputs(&testdata::corpus_files())
        .into_iter()
        .find(|o| {
            o.handshake().is_some_and(|h| h.server_hello.is_some() && !h.certs.is_empty())
                && o.findings.iter().all(|f| f.severity < Severity::Low)
        })
        .expect("a clean TLS 1.2 handshake with certificates in the corpus");
    let mut fixed = clean;
    if let monitor::observation::Observed::Tls { handshake, .. } = &mut fixed.observed {
        handshake.server = bad.endpoints().1;
    }
    (bad, fixed)
}

fn start(args: &AlertArgs) -> (Alerter, Arc<AlertStats>) {
    let stats = Arc::new(AlertStats::default());
    let a = Alerter::start(args, stats.clone()).expect("starting the alerter").expect("--alertmanager given");
    (a, stats)
}

/// Library: the server raises its findings (active in Alertmanager), then is judged without
/// them: every server-side finding is resolved (gone from the active list, the receiver
/// notified "resolved"), a client-side one (what that client offered) stays active.
#[test]
fn clean_judgement_resolves() {
    let am = Am::start();
    let (bad, fixed) = bad_and_fixed();
    let min = Severity::Low;
    let all = expected_keys(std::slice::from_ref(&bad), min);
    let client_side: BTreeSet<_> =
        all.iter().filter(|(_, id)| id == "tls.version.client-legacy-only").cloned().collect();
    let server_side: BTreeSet<_> = all.difference(&client_side).cloned().collect();
    assert!(server_side.len() >= 2, "{all:?}");
    assert!(expected_keys(std::slice::from_ref(&fixed), min).is_empty());

    let (mut alerter, stats) = start(&AlertArgs { alert_min_severity: min, ..args(&am.url()) });
    for _ in 0..50 {
        alerter.observe(&bad);
    }
    let active = wait_for(Duration::from_secs(10), || Some(am.keys()).filter(|k| *k == all));
    assert_eq!(active, Some(all.clone()), "active: {:?}", am.keys());
    let firing = wait_for(Duration::from_secs(15), || Some(am.notified("firing")).filter(|f| *f == all));
    assert_eq!(firing, Some(all.clone()), "the receiver was notified of them firing");
    assert_eq!(stats.active(), all.len() as u64);

    alerter.observe(&fixed);
    let left = wait_for(Duration::from_secs(10), || Some(am.keys()).filter(|k| *k == client_side));
    assert_eq!(left, Some(client_side.clone()), "only the client-side finding stays active: {:?}", am.keys());
    let resolved = wait_for(Duration::from_secs(15), || Some(am.notified("resolved")).filter(|r| *r == server_side));
    assert_eq!(resolved, Some(server_side.clone()), "the receiver was notified of them resolved");
    assert_eq!(stats.active(), client_side.len() as u64);
    alerter.finish(Duration::from_secs(5));
    assert_eq!(stats.sent(), (all.len() + server_side.len()) as u64, "one post per key, one per resolution");
    assert_eq!((stats.dropped(), stats.post_errors()), (0, 0));
}

/// Library: nothing raises the findings for --alert-resolve-secs: the next tick resolves them.
#[test]
fn inactivity_resolves() {
    let am = Am::start();
    let (bad, _) = bad_and_fixed();
    let all = expected_keys(std::slice::from_ref(&bad), Severity::Medium);
    let (mut alerter, stats) = start(&AlertArgs { alert_resolve_secs: 2, ..args(&am.url()) });
    alerter.observe(&bad);
    alerter.tick();
    let active = wait_for(Duration::from_secs(10), || Some(am.keys()).filter(|k| *k == all));
    assert_eq!(active, Some(all.clone()), "active: {:?}", am.keys());
    let t0 = Instant::now();
    // Ticking on, as the agent does each second: resolved after 2 s, not before.
    let gone = wait_for(Duration::from_secs(10), || {
        alerter.tick();
        am.keys().is_empty().then(|| t0.elapsed())
    });
    let after = gone.expect("resolved by inactivity");
    assert!(after >= Duration::from_millis(1500), "not before --alert-resolve-secs: {after:?}");
    let resolved = wait_for(Duration::from_secs(15), || Some(am.notified("resolved")).filter(|r| *r == all));
    assert_eq!(resolved, Some(all.clone()), "the receiver was notified of them resolved");
    assert_eq!(stats.active(), 0);
    alerter.finish(Duration::from_secs(5));
    assert_eq!(stats.sent(), 2 * all.len() as u64);
}

/// Library: Alertmanager comes up a second after the agent began posting: the first attempts
/// fail (counted), a retry delivers the alerts.
#[test]
fn retries_until_alertmanager_is_up() {
    let port = free_port();
    let (bad, _) = bad_and_fixed();
    let all = expected_keys(std::slice::from_ref(&bad), Severity::Medium);
    let (mut alerter, stats) = start(&args(&format!("http://127.0.0.1:{port}")));
    alerter.observe(&bad);
    let failed = wait_for(Duration::from_secs(5), || (stats.post_errors() > 0).then_some(()));
    assert!(failed.is_some(), "the first attempt fails: nothing listens yet");
    std::thread::sleep(Duration::from_secs(1));
    let am = Am::start_on(port);
    let got = wait_for(Duration::from_secs(20), || Some(am.keys()).filter(|k| *k == all));
    assert_eq!(got, Some(all.clone()), "a retry delivered them: {:?}", am.keys());
    alerter.finish(Duration::from_secs(5));
    eprintln!("post errors before Alertmanager was up: {}", stats.post_errors());
    assert!(stats.post_errors() >= 2, "{}", stats.post_errors());
    assert_eq!((stats.sent(), stats.dropped()), (all.len() as u64, 0));
}

/// The binary against a port nobody listens on, with a one-batch queue and many alerts: the
/// run ends within the exit limit (5 s) however many alerts wait, nothing is sent, every alert
/// is counted as dropped.
#[test]
fn unreachable_alertmanager_drops_and_exits() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let files = testdata::corpus_files();
    let (events, metrics, took) =
        replay_bin(&files, &["--alertmanager", &url, "--alert-queue", "1", "--alert-min-severity", "low"]);
    let keys = event_keys(&events, "low");
    let dropped = metric(&metrics, "tlsmon_dropped_total{what=\"alert_queue_full\"}");
    let errors = metric(&metrics, "tlsmon_alert_post_errors_total");
    eprintln!("{} keys, dropped {dropped}, post errors {errors}, run {took:?}", keys.len());
    assert!(took < Duration::from_secs(10), "bounded exit: {took:?}");
    assert_eq!(metric(&metrics, "tlsmon_alerts_sent_total"), 0);
    assert!(errors >= 2, "attempts failed and were retried: {errors}");
    assert!(dropped >= keys.len() as u64 && keys.len() >= 40, "every alert dropped: {dropped} of {} keys", keys.len());
}

/// The binary over the generated PHI captures, alerting on everything (info up): plaintext.phi
/// and credential alerts arrive, and not one of the captures' sensitive strings (the fake
/// patients' names, MRNs, passwords …) is in what Alertmanager stored or notified.
#[test]
fn no_phi_in_alerts() {
    let am = Am::start();
    let (dir, manifest) = testdata::phi_manifest();
    let files: Vec<PathBuf> =
        manifest["captures"].as_array().unwrap().iter().map(|c| dir.join(c["file"].as_str().unwrap())).collect();
    let sensitive: Vec<&str> = manifest["sensitive"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(sensitive.len() >= 20, "the generator lists its fake PHI");
    let (events, _, _) = replay_bin(&files, &["--alertmanager", &am.url(), "--alert-min-severity", "info"]);
    let keys = event_keys(&events, "info");
    let got = am.keys();
    assert_eq!(got, keys);
    let phi = got.iter().filter(|(_, id)| id == "plaintext.phi").count();
    assert!(phi >= 5, "PHI alerts: {phi} in {got:?}");
    assert!(got.iter().any(|(_, id)| id == "plaintext.credentials"), "{got:?}");
    wait_for(Duration::from_secs(15), || (am.notified("firing").len() == got.len()).then_some(()));
    let stored = serde_json::to_string(&am.alerts("")).unwrap();
    let hooks = serde_json::to_string(&*am.hooks.lock().unwrap()).unwrap();
    for s in &sensitive {
        assert!(!stored.contains(s), "{s:?} is in an alert: {stored}");
        assert!(!hooks.contains(s), "{s:?} is in a notification");
    }
}
