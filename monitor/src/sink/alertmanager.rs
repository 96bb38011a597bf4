//! Sink, Alertmanager (`--alertmanager URL`): one alert per (server, finding), posted to
//! Alertmanager's API v2 by a worker thread, resent while active, resolved when the server is
//! judged clean again or nothing raised it for a while. Must never block the pipeline (a bounded
//! queue, `try_send`, drops counted), never keep more than [`MAX_ALERTS`] keys, and never put
//! anything from the traffic into an alert but the policy's PHI-free evidence, the server
//! address and the SNI.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::observation::Endpoint;
use crate::observation::{Observed, Output};
use crate::policy::catalogue::{self, ResolvesBy};
use crate::policy::Severity;

/// Most (server, finding) keys tracked; beyond, new keys are counted as dropped.
pub const MAX_ALERTS: usize = 10_000;
/// Most alerts in one POST (resends of a full map are split).
const MAX_BATCH: usize = 1_000;
/// Attempts per batch before it is dropped (backoff 0.5 s doubling, capped at 30 s).
const MAX_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const RUNBOOK: &str = "https://github.com/tlsmon/tlsmon/blob/main/dashboards/RUNBOOK.md";

/// Direct alerting to Alertmanager: the same for live capture and replay.
#[derive(clap::Args, Debug, Clone)]
pub struct AlertArgs {
    /// Also post findings as alerts to this Alertmanager (base URL, e.g.
    /// http://127.0.0.1:9093; alerts go to URL/api/v2/alerts). One alert per (server, finding),
    /// labelled alertname=TlsmonFinding, finding, severity, server, source=tlsmon; resent while
    /// the finding is seen, resolved when the server is judged without it or it is no longer
    /// seen. Posting never slows capture: a full queue or an unreachable Alertmanager drops
    /// alerts (counted), and active ones are re-posted at the next resend.
    #[arg(long, value_name = "URL")]
    pub alertmanager: Option<String>,
    /// Alert on findings of at least this severity (info findings such as tls.pq-hybrid are
    /// good news). Findings accepted by a config-file exception are never alerted.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value = "medium")]
    pub alert_min_severity: Severity,
    /// Batches of alerts waiting for the poster at most; beyond, alerts are dropped (counted).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub alert_queue: usize,
    /// Resolve an alert when no handshake or flow raised it for this many seconds (wall clock).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub alert_resolve_secs: u64,
    /// Re-post active alerts this often: Alertmanager forgets alerts that are not re-sent.
    /// Each carries endsAt = now + 4 × this, so a stopped agent's alerts expire by themselves.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub alert_resend_secs: u64,
}

impl Default for AlertArgs {
    fn default() -> Self {
        AlertArgs {
            alertmanager: None,
            alert_min_severity: Severity::Medium,
            alert_queue: 1024,
            alert_resolve_secs: 3600,
            alert_resend_secs: 60,
        }
    }
}

/// What the alerter counted (shared with the worker and the metrics).
#[derive(Debug, Default)]
pub struct AlertStats {
    sent: AtomicU64,
    post_errors: AtomicU64,
    dropped: AtomicU64,
    active: AtomicU64,
}

impl AlertStats {
    /// Alerts Alertmanager accepted (each alert of a batch counts; resends and resolutions too).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    /// POST attempts that failed (connection, timeout, non-2xx).
    pub fn post_errors(&self) -> u64 {
        self.post_errors.load(Ordering::Relaxed)
    }
    /// Alerts given up: queue full, retries exhausted or refused (4xx), key map full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// (server, finding) alerts active now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }
    fn add(c: &AtomicU64, n: usize) {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// One alert as Alertmanager's API v2 takes it.
#[derive(Clone, Debug, Serialize)]
struct Alert {
    labels: Labels,
    annotations: Annotations,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
}

#[derive(Clone, Debug, Serialize)]
struct Labels {
    alertname: &'static str,
    finding: &'static str,
    severity: &'static str,
    server: String,
    source: &'static str,
}

#[derive(Clone, Debug, Serialize)]
struct Annotations {
    summary: String,
    description: String,
    runbook_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<String>,
}

/// One active (server, finding) alert.
struct Entry {
    severity: Severity,
    starts_at: SystemTime,
    last_raised: Instant,
    evidence: String,
    hipaa_ref: &'static str,
    rule: &'static str,
    sni: Option<String>,
}

/// The alerter: state on the pipeline thread, posting on a worker thread.
pub struct Alerter {
    min: Severity,
    resolve: Duration,
    resend: Duration,
    /// Active keys by server (a server has a handful of findings at most).
    map: HashMap<Endpoint, Vec<(&'static str, Entry)>>,
    /// Keys in `map`, at most [`MAX_ALERTS`].
    keys: usize,
    last_resend: Instant,
    pending: Vec<Alert>,
    tx: SyncSender<Vec<Alert>>,
    stats: Arc<AlertStats>,
    shared: Arc<Shared>,
    worker: std::thread::JoinHandle<()>,
}

/// What `finish` tells the worker: post what is left by then.
#[derive(Default)]
struct Shared {
    deadline: Mutex<Option<Instant>>,
}

impl Shared {
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bad `--alertmanager` URL or a worker that could not start.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("--alertmanager {url}: {reason} (expected e.g. http://127.0.0.1:9093)")]
    Url { url: String, reason: &'static str },
    #[error("starting the Alertmanager poster thread")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
}

/// The POST endpoint for a base URL: http(s), a host, no query; `/api/v2/alerts` appended.
pub fn alerts_url(base: &str) -> Result<String, AlertError> {
    let bad = |reason| AlertError::Url { url: base.to_string(), reason };
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .ok_or_else(|| bad("the URL must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("no host in the URL"));
    }
    if base.contains(['?', '#', ' ']) {
        return Err(bad("a base URL takes no query, fragment or spaces"));
    }
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/api/v2/alerts").unwrap_or(base);
    Ok(format!("{base}/api/v2/alerts"))
}

impl Alerter {
    /// `None` without `--alertmanager`; the URL is checked and the worker started otherwise.
    pub fn start(args: &AlertArgs, stats: Arc<AlertStats>) -> anyhow::Result<Option<Alerter>> {
        let Some(base) = &args.alertmanager else { return Ok(None) };
        let url = alerts_url(base)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(args.alert_queue.max(1));
        let shared = Arc::new(Shared::default());
        let worker = {
            let (stats, shared, url) = (stats.clone(), shared.clone(), url.clone());
            std::thread::Builder::new()
                .name("alertmanager".into())
                .spawn(move || Poster::new(url, stats, shared).run(rx))
                .map_err(|source| AlertError::Spawn { source })?
        };
        tracing::info!(url = %url, min_severity = args.alert_min_severity.as_str(), "posting alerts to Alertmanager");
        Ok(Some(Alerter {
            min: args.alert_min_severity,
            resolve: Duration::from_secs(args.alert_resolve_secs),
            resend: Duration::from_secs(args.alert_resend_secs.max(1)),
            map: HashMap::new(),
            keys: 0,
            last_resend: Instant::now(),
            pending: Vec::new(),
            tx,
            stats,
            shared,
            worker,
        }))
    }

    /// One judged handshake or flow: new keys are posted at once, keys of this server the
    /// output shows fixed are resolved. Never blocks.
    pub fn observe(&mut self, o: &Output) {
        let (server, sni, answered, certs_seen) = match &o.observed {
            Observed::Tls { handshake: h, .. } => {
                let sni = h.client_hello.as_ref().and_then(|ch| ch.sni.as_deref());
                (h.server, sni, h.server_hello.is_some(), !h.certs.is_empty())
            }
            // A clear flow resolves nothing (see `shown_fixed`).
            Observed::Plaintext(p) => (p.server, None, false, false),
        };
        let now = Instant::now();
        let min = self.min;
        let raised = || o.findings.iter().filter(move |f| !f.is_accepted() && f.severity >= min);
        if raised().next().is_none() && !(answered && self.map.contains_key(&server)) {
            return;
        }
        let full = self.keys >= MAX_ALERTS;
        let entries = self.map.entry(server).or_default();
        for f in raised() {
            match entries.iter_mut().find(|(id, _)| *id == f.id) {
                Some((_, e)) => {
                    e.last_raised = now;
                    if e.evidence != f.evidence {
                        e.evidence.clone_from(&f.evidence);
                    }
                    if sni.is_some() && e.sni.as_deref() != sni {
                        e.sni = sni.map(str::to_string);
                    }
                }
                None if full => AlertStats::add(&self.stats.dropped, 1),
                None => {
                    let e = Entry {
                        severity: f.severity,
                        starts_at: SystemTime::now(),
                        last_raised: now,
                        evidence: f.evidence.clone(),
                        hipaa_ref: f.hipaa_ref,
                        rule: f.rule,
                        sni: sni.map(str::to_string),
                    };
                    self.pending.push(alert(server, f.id, &e, SystemTime::now(), false, self.resend));
                    entries.push((f.id, e));
                    self.keys += 1;
                }
            }
        }
        // The server answered again without a finding it had: fixed, as far as a handshake can
        // tell (certificates only when they were seen, i.e. not under TLS 1.3; what clients
        // do is not the server's to fix).
        if answered {
            let fixed: Vec<&'static str> = entries
                .iter()
                .filter(|(id, _)| !raised().any(|f| f.id == *id) && shown_fixed(id, certs_seen))
                .map(|(id, _)| *id)
                .collect();
            for id in fixed {
                self.resolve_key(server, id);
            }
        }
        if self.map.get(&server).is_some_and(Vec::is_empty) {
            self.map.remove(&server);
        }
        self.flush();
    }

    /// About once a second: resolve keys not raised for --alert-resolve-secs, re-post the
    /// active ones every --alert-resend-secs.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let stale: Vec<_> = self
            .map
            .iter()
            .flat_map(|(s, es)| es.iter().map(move |(id, e)| (*s, *id, e)))
            .filter(|(_, _, e)| now.duration_since(e.last_raised) >= self.resolve)
            .map(|(s, id, _)| (s, id))
            .collect();
        for (server, id) in stale {
            self.resolve_key(server, id);
        }
        self.map.retain(|_, es| !es.is_empty());
        if now.duration_since(self.last_resend) >= self.resend {
            self.last_resend = now;
            let (wall, resend) = (SystemTime::now(), self.resend);
            let all: Vec<Alert> = self
                .map
                .iter()
                .flat_map(|(s, es)| es.iter().map(move |(id, e)| alert(*s, id, e, wall, false, resend)))
                .collect();
            for chunk in all.chunks(MAX_BATCH) {
                self.pending.extend_from_slice(chunk);
                self.flush();
            }
        }
        self.flush();
    }

    /// Post what is queued (and resolve nothing: a stopped agent's alerts expire by their
    /// endsAt), giving up at `limit` from now; then stop the worker.
    pub fn finish(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        *self.shared.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
        // The last batch waits for room in the queue, up to the deadline.
        let mut last = std::mem::take(&mut self.pending);
        while !last.is_empty() {
            match self.tx.try_send(last) {
                Ok(()) => break,
                Err(TrySendError::Full(b)) if Instant::now() < deadline => {
                    last = b;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                    AlertStats::add(&self.stats.dropped, b.len());
                    break;
                }
            }
        }
        drop(self.tx);
        // The worker honours the deadline; a second of grace for a request in flight.
        while !self.worker.is_finished() && Instant::now() < deadline + Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.worker.is_finished() {
            self.worker.join().ok();
        } else {
            tracing::warn!("Alertmanager poster still busy at exit; leaving it");
        }
    }

    /// Post `id` of `server` resolved and forget it (an emptied server is the caller's to remove).
    fn resolve_key(&mut self, server: Endpoint, id: &'static str) {
        let Some(es) = self.map.get_mut(&server) else { return };
        if let Some(i) = es.iter().position(|(x, _)| *x == id) {
            let (_, e) = es.swap_remove(i);
            self.keys -= 1;
            self.pending.push(alert(server, id, &e, SystemTime::now(), true, self.resend));
        }
    }

    /// Hand the pending alerts to the worker; a full queue drops them (counted).
    fn flush(&mut self) {
        self.stats.active.store(self.keys as u64, Ordering::Relaxed);
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) = self.tx.try_send(batch) {
            AlertStats::add(&self.stats.dropped, b.len());
        }
    }
}

/// Whether a judgement of the server without finding `id` shows it fixed, as the catalogue's
/// `resolves_by` says: certificate findings only when the certificates were seen; findings about
/// what one client did, and plaintext ones, resolve by inactivity only (so do unknown ids).
fn shown_fixed(id: &str, certs_seen: bool) -> bool {
    match catalogue::lookup(id).map(|e| e.resolves_by) {
        Some(ResolvesBy::Judgement) => true,
        Some(ResolvesBy::CertsSeen) => certs_seen,
        Some(ResolvesBy::Inactivity) | None => false,
    }
}

/// `"10.0.0.5:443"`, `"[2001:db8::1]:443"`.
fn server_label(s: Endpoint) -> String {
    SocketAddr::new(s.addr.to_ip(), s.port).to_string()
}

fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The alert of one key: active (endsAt = now + 4 resends) or resolved (endsAt = now).
fn alert(server: Endpoint, id: &'static str, e: &Entry, now: SystemTime, resolved: bool, resend: Duration) -> Alert {
    let server = server_label(server);
    let ends = if resolved { now } else { now + 4 * resend };
    Alert {
        annotations: Annotations {
            summary: format!("{} on {server}", title(id)),
            description: format!(
                "{} (severity {}, HIPAA {}, rule {}).",
                e.evidence,
                e.severity.as_str(),
                e.hipaa_ref,
                e.rule
            ),
            runbook_url: format!("{RUNBOOK}#{}", id.replace('.', "-")),
            sni: e.sni.clone(),
        },
        labels: Labels {
            alertname: "TlsmonFinding",
            finding: id,
            severity: e.severity.as_str(),
            server,
            source: "tlsmon",
        },
        starts_at: rfc3339(e.starts_at),
        ends_at: rfc3339(ends),
    }
}

/// A few words per finding id for the alert's summary (the catalogue's title; else the id).
fn title(id: &str) -> &str {
    catalogue::lookup(id).map_or(id, |e| e.title)
}

/// The worker: owns the HTTP client, merges queued batches, retries with backoff.
struct Poster {
    url: String,
    agent: ureq::Agent,
    stats: Arc<AlertStats>,
    shared: Arc<Shared>,
}

impl Poster {
    fn new(url: String, stats: Arc<AlertStats>, shared: Arc<Shared>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Poster { url, agent, stats, shared }
    }

    fn run(self, rx: Receiver<Vec<Alert>>) {
        let mut open = true;
        while open {
            let mut batch = match rx.recv() {
                Ok(b) => b,
                Err(_) => break,
            };
            open = merge_queued(&rx, &mut batch);
            if self.shared.deadline().is_some_and(|d| Instant::now() >= d) {
                AlertStats::add(&self.stats.dropped, batch.len());
                continue;
            }
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 1;
            loop {
                match self.post(&batch) {
                    Ok(()) => {
                        AlertStats::add(&self.stats.sent, batch.len());
                        break;
                    }
                    Err(Retry::No) => {
                        AlertStats::add(&self.stats.dropped, batch.len());
                        break;
                    }
                    Err(Retry::Yes) if attempt >= MAX_ATTEMPTS => {
                        tracing::warn!(
                            alerts = batch.len(),
                            attempts = attempt,
                            "Alertmanager unreachable; alerts dropped"
                        );
                        AlertStats::add(&self.stats.dropped, batch.len());
                        break;
                    }
                    Err(Retry::Yes) => {}
                }
                // Back off, taking in what is queued meanwhile (one post for the backlog).
                let until = Instant::now() + backoff;
                let until = self.shared.deadline().map_or(until, |d| until.min(d));
                while open {
                    match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                        Ok(b) => merge(&mut batch, b),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => open = false,
                    }
                }
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
                if self.shared.deadline().is_some_and(|d| Instant::now() >= d) {
                    AlertStats::add(&self.stats.dropped, batch.len());
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
        }
        // Past the deadline with batches still queued: count them.
        while let Ok(b) = rx.try_recv() {
            AlertStats::add(&self.stats.dropped, b.len());
        }
    }

    /// One POST; `Retry::Yes` for connection errors, timeouts and 5xx.
    fn post(&self, batch: &[Alert]) -> Result<(), Retry> {
        let mut req = self.agent.post(&self.url).header("content-type", "application/json");
        if let Some(d) = self.shared.deadline() {
            let left = d.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
            req = req.config().timeout_global(Some(left.min(Duration::from_secs(5)))).build();
        }
        let body = serde_json::to_vec(batch).unwrap_or_default();
        let res = req.send(&body[..]);
        let fail = |retry| {
            AlertStats::add(&self.stats.post_errors, 1);
            Err(retry)
        };
        match res {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_client_error() => {
                tracing::warn!(status = r.status().as_u16(), alerts = batch.len(), "Alertmanager refused the alerts");
                fail(Retry::No)
            }
            Ok(r) => {
                tracing::debug!(status = r.status().as_u16(), "Alertmanager error; will retry");
                fail(Retry::Yes)
            }
            Err(e) => {
                tracing::debug!(error = %e, "posting to Alertmanager failed; will retry");
                fail(Retry::Yes)
            }
        }
    }
}

enum Retry {
    Yes,
    No,
}

/// Take every batch already queued into `batch`; false once the sender is gone.
fn merge_queued(rx: &Receiver<Vec<Alert>>, batch: &mut Vec<Alert>) -> bool {
    loop {
        match rx.try_recv() {
            Ok(b) => merge(batch, b),
            Err(std::sync::mpsc::TryRecvError::Empty) => return true,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
        }
    }
}

/// Merge `more` into `batch`: the later state of a key (same labels) replaces the earlier.
fn merge(batch: &mut Vec<Alert>, more: Vec<Alert>) {
    let mut at: HashMap<(String, &'static str), usize> =
        batch.iter().enumerate().map(|(i, a)| ((a.labels.server.clone(), a.labels.finding), i)).collect();
    for a in more {
        match at.get(&(a.labels.server.clone(), a.labels.finding)) {
            Some(&i) => batch[i] = a,
            None => {
                at.insert((a.labels.server.clone(), a.labels.finding), batch.len());
                batch.push(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_checked_and_completed() {
        assert_eq!(alerts_url("http://127.0.0.1:9093").unwrap(), "http://127.0.0.1:9093/api/v2/alerts");
        assert_eq!(alerts_url("https://am.example/prefix/").unwrap(), "https://am.example/prefix/api/v2/alerts");
        assert_eq!(alerts_url("http://am:9093/api/v2/alerts").unwrap(), "http://am:9093/api/v2/alerts");
        for bad in ["127.0.0.1:9093", "ftp://am", "http://", "http://:9093", "http://am/?x=1"] {
            let e = alerts_url(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("http://127.0.0.1:9093"), "{e}");
        }
    }

    #[test]
    fn what_a_clean_judgement_resolves() {
        assert!(shown_fixed("tls.version.deprecated", false));
        assert!(shown_fixed("tls.cert.expired", true));
        assert!(!shown_fixed("tls.cert.expired", false), "TLS 1.3 hides the certificate");
        for id in ["tls.version.client-legacy-only", "tls.alert.fatal", "anomaly.heartbleed", "plaintext.phi"] {
            assert!(!shown_fixed(id, true), "{id}");
        }
    }

    fn entry() -> Entry {
        Entry {
            severity: Severity::High,
            starts_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            last_raised: Instant::now(),
            evidence: "TLS 1.0 negotiated (RFC 8996)".into(),
            hipaa_ref: "164.312(e)(1)",
            rule: "hipaa/min-version",
            sni: Some("ehr.example".into()),
        }
    }

    #[test]
    fn alert_shape() {
        let server = Endpoint {
            addr: crate::decode::Addr::v6("2001:db8::5".parse::<std::net::Ipv6Addr>().unwrap().octets()),
            port: 443,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let a = alert(server, "tls.version.deprecated", &entry(), now, false, Duration::from_secs(60));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["labels"]["server"], "[2001:db8::5]:443");
        assert_eq!(v["labels"]["severity"], "high");
        assert_eq!(v["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(v["endsAt"], "2023-11-14T22:19:00Z", "now + 4 x 60 s");
        assert_eq!(v["annotations"]["summary"], "TLS 1.0/1.1 negotiated on [2001:db8::5]:443");
        assert!(v["annotations"]["runbook_url"].as_str().unwrap().ends_with("RUNBOOK.md#tls-version-deprecated"));
        assert_eq!(v["annotations"]["sni"], "ehr.example");
        let r = alert(server, "tls.version.deprecated", &entry(), now, true, Duration::from_secs(60));
        assert_eq!(r.ends_at, "2023-11-14T22:15:00Z", "resolved: endsAt = now");
    }

    #[test]
    fn merge_keeps_the_latest_state_per_key() {
        let s = |port| Endpoint { port, ..Default::default() };
        let now = SystemTime::now();
        let r = Duration::from_secs(60);
        let mut batch = vec![alert(s(1), "tls.compression", &entry(), now, false, r)];
        batch.push(alert(s(2), "tls.compression", &entry(), now, false, r));
        merge(
            &mut batch,
            vec![
                alert(s(1), "tls.compression", &entry(), now, true, r),
                alert(s(3), "tls.compression", &entry(), now, false, r),
            ],
        );
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0].ends_at, rfc3339(now), "the resolution replaced the firing state");
    }
}
