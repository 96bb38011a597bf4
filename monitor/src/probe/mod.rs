//! Probe: the one active part of tlsmon, opt-in. TLS 1.3 encrypts the server certificate; the
//! prober connects, at a bounded rate, only to allowlisted servers the pipeline saw without
//! certificate facts, completes a handshake with the SNI clients used, reads the chain, sends
//! no application data and closes. Its result becomes an ordinary judged output (a handshake
//! with `probe` facts) that goes through the same policy and sinks as passive ones.
//! Runs on its own thread and runtime, so a hanging server never stalls the capture.
//! Must never contact anything outside the scope, never exceed the rate or the concurrency cap,
//! never block the caller; whatever it refuses or drops is counted.
pub mod conn;
pub mod queue;
pub mod scope;
pub mod sweep;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::decode::Addr;
use crate::inspect::fingerprint::Ja4Transport;
use crate::inspect::names::alert_name;
use crate::inspect::tls::cert::chain_of;
use crate::inspect::tls::trust::TrustStore;
use crate::inspect::tls::TlsStream;
use crate::observation::{Endpoint, Handshake, Loss, Observed, Output, ProbeFacts, VersionTry};
use crate::policy::Policy;
use conn::{Outcome, Record};
use queue::{Queue, QueueConfig, QueueStats, Target};
use scope::{Rule, Scope};

/// Results waiting for the emitter at most; beyond, they are dropped and counted (the emitter
/// takes them every tick, and probes are few per second, so this is never expected).
const MAX_RESULTS: usize = 256;
/// Added to every gap between two connections (see `work`).
const PACE_MARGIN: Duration = Duration::from_millis(1);
/// How often the prober's loop looks for work.
const POLL: Duration = Duration::from_millis(20);

/// What the prober is allowed to do.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
    pub queue: QueueConfig,
    /// For the TCP connect and for the TLS handshake, each.
    pub timeout: Duration,
    /// Also probe servers whose certificates were seen (TLS <= 1.2), to confirm them.
    pub all: bool,
    /// Also run the version sweep (legacy versions and weak suites offered alone).
    pub versions: bool,
    /// Judge the results under this policy, chains against this bundle (the pipeline's).
    pub policy: Policy,
    pub trust: Option<Arc<TrustStore>>,
}

/// Counters of the prober, besides the queue's.
#[derive(Debug, Default)]
struct Counters {
    /// Probes ended, by [`Outcome`] (in `Outcome::ALL` order).
    ended: [AtomicU64; 4],
    /// Results the emitter did not take in time.
    results_dropped: AtomicU64,
    own_flows: AtomicU64,
}

/// The local endpoints of the prober's own connections, so the capture does not report them
/// as traffic (a sweep's TLS 1.0-only hello is the agent's, not a client's). Bounded: the
/// most recent [`OWN_MAX`] connections of the last [`OWN_FOR`].
#[derive(Debug, Default)]
pub struct Own {
    recent: Mutex<std::collections::VecDeque<(SocketAddr, Instant)>>,
}

/// Most own connections remembered.
const OWN_MAX: usize = 4096;
/// How long an own connection's endpoint is remembered (its flow is judged by then: the
/// pipeline's idle timeout is shorter by default).
const OWN_FOR: Duration = Duration::from_secs(600);

impl Own {
    /// Connect to `addr` and remember our end of the connection.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        if let (Ok(local), Ok(mut r)) = (s.local_addr(), self.recent.lock()) {
            if r.len() >= OWN_MAX {
                r.pop_front();
            }
            r.push_back((local, Instant::now()));
        }
        Ok(s)
    }

    /// Was a connection from `local` made by the prober (recently)?
    pub fn contains(&self, local: SocketAddr) -> bool {
        let Ok(mut r) = self.recent.lock() else { return false };
        while r.front().is_some_and(|(_, at)| at.elapsed() > OWN_FOR) {
            r.pop_front();
        }
        r.iter().any(|(a, _)| *a == local)
    }
}

/// A snapshot of the prober's counters (metrics, `--stats`, the losses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeStats {
    pub queue: QueueStats,
    pub pending: usize,
    pub in_flight: usize,
    /// Probes ended, by outcome (`Outcome::ALL` order).
    pub ended: [u64; 4],
    pub results_dropped: u64,
    /// Flows the capture saw that were the prober's own connections (not reported).
    pub own_flows: u64,
}

/// One connection at a time per 1/rate seconds, over every probe (and every try of a probe).
struct Pacer {
    gap: Duration,
    next: Mutex<Option<tokio::time::Instant>>,
}

impl Pacer {
    /// Wait until this connection may start: at least `gap` after the previous one actually
    /// started (a slot booked ahead would let a late waker and an on-time one crowd together).
    async fn slot(&self) {
        loop {
            let now = tokio::time::Instant::now();
            // Decided with the lock held, waited without it: Ok(None) go now, Ok(Some(t)) look
            // again at t, Err(t) go at t (a poisoned lock, never expected: one gap, then go).
            let wait = match self.next.lock() {
                Ok(mut next) => match *next {
                    Some(n) if n > now => Ok(Some(n)),
                    _ => {
                        *next = Some(now + self.gap);
                        Ok(None)
                    }
                },
                Err(_) => Err(now + self.gap),
            };
            match wait {
                Ok(None) => return,
                Ok(Some(at)) => tokio::time::sleep_until(at).await,
                Err(at) => return tokio::time::sleep_until(at).await,
            }
        }
    }
}

/// Shared between the caller's thread and the prober's.
struct Shared {
    queue: Mutex<Queue>,
    own: Own,
    counters: Counters,
    stop: AtomicBool,
    started: Instant,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The prober: offer it every judged output, take its results every tick.
pub struct Prober {
    shared: Arc<Shared>,
    results: Receiver<Output>,
    all: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    /// Start the prober's thread. Refuses an empty allowlist (and a rule it cannot use).
    pub fn start(cfg: ProbeConfig) -> Result<Prober, String> {
        let scope = Scope::new(cfg.allow.clone(), cfg.deny.clone())?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(cfg.queue.clone(), scope)),
            own: Own::default(),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            started: Instant::now(),
        });
        let (tx, results) = sync_channel(MAX_RESULTS);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the prober's runtime: {e}"))?;
        let all = cfg.all;
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tlsmon-probe".into())
            .spawn(move || rt.block_on(work(worker, Arc::new(cfg), tx)))
            .map_err(|e| format!("cannot start the prober's thread: {e}"))?;
        Ok(Prober { shared, results, all, thread: Some(thread) })
    }

    /// Queue the server of a judged handshake that showed no certificate (or any, with
    /// `probe-all`), once per interval, if the scope allows it. Never blocks on I/O.
    pub fn consider(&self, o: &Output) {
        let Some((target, _)) = wanted(o, self.all) else { return };
        let now = self.shared.now_ms();
        if let Ok(mut q) = self.shared.queue.lock() {
            q.offer(target, now);
        }
    }

    /// Whether a judged output is the capture's view of one of the prober's own connections
    /// (then it is not traffic to report; counted).
    pub fn is_own(&self, o: &Output) -> bool {
        let Some(hs) = o.handshake().filter(|h| h.probe.is_none()) else { return false };
        let own = self.shared.own.contains(SocketAddr::new(hs.client.addr.to_ip(), hs.client.port));
        if own {
            self.shared.counters.own_flows.fetch_add(1, Ordering::Relaxed);
        }
        own
    }

    /// The results ready now, judged (each an output with `probe` facts).
    pub fn results(&self) -> Vec<Output> {
        self.results.try_iter().collect()
    }

    /// Nothing queued, nothing running.
    pub fn idle(&self) -> bool {
        self.shared.queue.lock().map(|q| q.pending() == 0 && q.in_flight() == 0).unwrap_or(true)
    }

    pub fn stats(&self) -> ProbeStats {
        let mut s = ProbeStats::default();
        if let Ok(q) = self.shared.queue.lock() {
            (s.queue, s.pending, s.in_flight) = (q.stats, q.pending(), q.in_flight());
        }
        let c = &self.shared.counters;
        for (n, a) in s.ended.iter_mut().zip(&c.ended) {
            *n = a.load(Ordering::Relaxed);
        }
        s.results_dropped = c.results_dropped.load(Ordering::Relaxed);
        s.own_flows = c.own_flows.load(Ordering::Relaxed);
        s
    }

    /// Stop: no new probe starts, those running are abandoned (they only ever read), and the
    /// thread ends within a poll period. Returns the final counters.
    pub fn stop(mut self) -> ProbeStats {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// What the prober could not do, for the losses list (summary, `--stats`, report, metrics):
/// targets dropped with the queue full, results the emitter did not take, and targets still
/// waiting or running when the run ended.
pub fn losses(s: &ProbeStats) -> Vec<Loss> {
    let all = [
        ("probe_queue_full", s.queue.dropped_full, "servers not probed: the probe queue was full"),
        ("probe_results", s.results_dropped, "probe results dropped: the output did not take them in time"),
        (
            "probe_not_run",
            (s.pending + s.in_flight) as u64,
            "servers queued for a probe that had not finished when the run ended",
        ),
    ];
    all.into_iter().filter(|(_, n, _)| *n > 0).map(|(what, count, meaning)| Loss { what, count, meaning }).collect()
}

/// Whether a judged output calls for a probe: a TLS server answered (a ServerHello) but no
/// certificate was seen — TLS 1.3 encrypts it, a resumed or cut capture misses it — or any
/// TLS server with `all`. The prober's own results never do, nor QUIC handshakes (the prober
/// speaks TLS over TCP only). Returns the target and why.
pub fn wanted(o: &Output, all: bool) -> Option<(Target, &'static str)> {
    let hs = o.handshake()?;
    let sh = hs.server_hello.as_ref().filter(|sh| sh.sslv2_kind.is_none())?;
    // The prober speaks TLS over TCP: a QUIC server's certificate is another connection's.
    if hs.probe.is_some() || hs.quic.is_some() {
        return None;
    }
    let why = match (hs.certs.is_empty(), sh.negotiated_version()) {
        (true, 0x0304) => "tls13-certificate-encrypted",
        (true, _) => "no-certificate-seen",
        (false, _) if all => "probe-all",
        (false, _) => return None,
    };
    let sni = hs.client_hello.as_ref().and_then(|c| c.sni.clone());
    Some((Target { ip: hs.server.addr.to_ip(), port: hs.server.port, sni, why }, why))
}

/// The prober's loop: start what the queue hands out, until told to stop.
async fn work(shared: Arc<Shared>, cfg: Arc<ProbeConfig>, tx: SyncSender<Output>) {
    let rate = cfg.queue.rate_per_s.max(1);
    // A hair over 1/rate: the SYN leaves a little after the slot, so jitter cannot fit one
    // more connection into a second.
    let gap = Duration::from_secs(1) / rate + PACE_MARGIN;
    let pacer = Arc::new(Pacer { gap, next: Mutex::new(None) });
    while !shared.stop.load(Ordering::Relaxed) {
        loop {
            let next = shared.queue.lock().ok().and_then(|mut q| q.next(shared.now_ms()));
            let Some(target) = next else { break };
            let (shared, cfg, tx, pacer) = (shared.clone(), cfg.clone(), tx.clone(), pacer.clone());
            tokio::spawn(async move {
                let out = probe(&target, &cfg, &pacer, &shared.own).await;
                let result = out.handshake().and_then(|h| h.probe.as_ref()).map_or("failed", |p| p.result);
                if let Some(i) = Outcome::ALL.iter().position(|o| o.as_str() == result) {
                    shared.counters.ended[i].fetch_add(1, Ordering::Relaxed);
                }
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(out) {
                    shared.counters.results_dropped.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut q) = shared.queue.lock() {
                    q.finished();
                }
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Unix time now in nanoseconds (probe results carry the wall clock, never packet time).
fn wall_ns() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Probe one target and judge what came back.
async fn probe(t: &Target, cfg: &ProbeConfig, pacer: &Pacer, own: &Own) -> Output {
    pacer.slot().await;
    let at = wall_ns();
    let addr = SocketAddr::new(t.ip, t.port);
    let rec = conn::handshake(addr, t.sni.as_deref(), cfg.timeout, own).await;
    let reached = matches!(rec.outcome, Some(Outcome::Ok | Outcome::Failed));
    let versions = if cfg.versions && reached {
        sweep_versions(addr, t.sni.as_deref(), cfg, pacer, own).await
    } else {
        Vec::new()
    };
    judge(t, &rec, versions, at, cfg)
}

/// The version sweep: one short connection per offer of [`sweep::SWEEP`], each in its own
/// slot of the global rate.
async fn sweep_versions(
    addr: SocketAddr,
    sni: Option<&str>,
    cfg: &ProbeConfig,
    pacer: &Pacer,
    own: &Own,
) -> Vec<VersionTry> {
    let mut out = Vec::with_capacity(sweep::SWEEP.len());
    for offer in sweep::SWEEP {
        pacer.slot().await;
        let (accepted, refused) = match sweep::try_offer(addr, sni, offer, cfg.timeout, own).await {
            sweep::Answer::Accepted { version, cipher } => (Some((version, cipher)), None),
            sweep::Answer::Refused { alert: Some(a) } => (None, Some(format!("alert {}", alert_name(a)))),
            sweep::Answer::Refused { alert: None } => (None, Some("connection closed".to_string())),
            sweep::Answer::Failed(why) => (None, Some(why)),
        };
        out.push(VersionTry { offered: offer.label, accepted, refused });
    }
    out
}

fn endpoint(a: SocketAddr) -> Endpoint {
    Endpoint { addr: Addr::from_ip(a.ip()), port: a.port() }
}

/// Turn what one connection brought back into a judged output: the bytes each side sent in
/// clear go through the same TLS record parser as captured traffic (hellos, and the TLS 1.2
/// certificates), the chain rustls received fills in what TLS 1.3 encrypted, and the policy
/// judges the whole. Evidence says the facts came from a probe, and when.
pub fn judge(t: &Target, rec: &Record, versions: Vec<VersionTry>, at_ns: u64, cfg: &ProbeConfig) -> Output {
    let server = endpoint(SocketAddr::new(t.ip, t.port));
    let client = rec.local.map(endpoint).unwrap_or_default();
    let mut sides = [TlsStream::default(), TlsStream::default()];
    sides[1].trust = cfg.trust.clone();
    for (s, bytes) in sides.iter_mut().zip([&rec.client_bytes, &rec.server_bytes]) {
        s.feed(bytes, at_ns);
        s.finish();
    }
    let facts = [&sides[0].facts, &sides[1].facts];
    let mut hs = Handshake::assemble([client, server], facts, Some(0), at_ns, Ja4Transport::Tcp)
        .unwrap_or_else(|| Handshake { client, server, ..Default::default() });
    hs.ts_ns = at_ns;
    // Our own alerts (rustls refusing a bad signature) say nothing about the server.
    hs.client_alerts.clear();
    if hs.certs.is_empty() && !rec.chain.is_empty() {
        let ders: Vec<&[u8]> = rec.chain.iter().map(Vec::as_slice).collect();
        let chain = chain_of(&ders, rec.chain_sent <= ders.len(), cfg.trust.as_deref());
        (hs.certs, hs.chain_complete, hs.chain_trust) = (chain.certs, chain.complete, chain.trust);
    }
    let outcome = rec.outcome.unwrap_or(Outcome::Failed);
    hs.established = outcome == Outcome::Ok;
    hs.probe = Some(Box::new(ProbeFacts {
        result: outcome.as_str(),
        server_name: t.sni.clone(),
        error: rec.error.clone(),
        trigger: t.why,
        versions,
    }));
    let findings = cfg.policy.evaluate(&hs);
    Output { observed: Observed::Tls { handshake: hs, upgrade: None }, findings, local: Default::default() }
}

#[cfg(test)]
mod tests;
