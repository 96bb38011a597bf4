//! Sink, Alertmanager (`--alertmanager URL`), the state machine: one alert per (server,
//! finding), posted to Alertmanager's API v2 by a worker thread (`post`), resent while active,
//! resolved when the server is judged clean again or nothing raised it for a while. Must never
//! block the pipeline (a bounded queue, `try_send`, drops counted), never keep more than
//! [`MAX_ALERTS`] keys, and never put anything from the traffic into an alert but the policy's
//! PHI-free evidence, the server address and the SNI.
mod alert;
mod post;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cli::AlertArgs;
use crate::observation::Endpoint;
use crate::observation::{Observed, Output};
use crate::policy::catalogue::{self, ResolvesBy};
use crate::policy::Severity;
use alert::{alert, Alert};
use post::{Poster, Shared};

/// Most (server, finding) keys tracked; beyond, new keys are counted as dropped.
pub const MAX_ALERTS: usize = 10_000;
/// Most alerts in one POST (resends of a full map are split).
const MAX_BATCH: usize = 1_000;

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
            // An SSH server that sent its KEXINIT answered: its algorithms are judged again.
            Observed::Ssh(s) => (s.server, None, s.facts.server.kexinit.is_some(), false),
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

#[cfg(test)]
impl Entry {
    /// A high `tls.version.deprecated` key on ehr.example, as tests need one.
    fn sample() -> Entry {
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
}
