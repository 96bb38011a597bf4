//! Probe, queue: which (server, port, SNI) to probe next — each target queued once per
//! re-probe interval, only inside the scope, handed out under a global rate (token bucket) and a
//! concurrency cap. Pure logic on a caller's clock (milliseconds), no I/O.
//! Must never hold more than its bounds (pending targets, remembered targets) nor hand out a
//! target faster than the rate or beyond the cap; whatever it refuses is counted.
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::scope::Scope;

/// One server to probe: where, and the name clients asked for (sent as SNI); `why` says what
/// called for it and is not part of its identity.
#[derive(Clone, Debug)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    pub sni: Option<String>,
    pub why: &'static str,
}

impl PartialEq for Target {
    fn eq(&self, o: &Target) -> bool {
        (self.ip, self.port, &self.sni) == (o.ip, o.port, &o.sni)
    }
}

impl Eq for Target {}

impl std::hash::Hash for Target {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.ip, self.port, &self.sni).hash(h);
    }
}

/// Bounds and pace.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Targets waiting for a probe; more are dropped and counted.
    pub max_pending: usize,
    /// Targets remembered (to probe each once per interval); the least recently queued are
    /// forgotten first when full.
    pub max_known: usize,
    /// A target is queued again this long after it was last queued.
    pub interval_ms: u64,
    /// Probes started per second at most, over all targets.
    pub rate_per_s: u32,
    /// Probes running at once at most.
    pub max_in_flight: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_pending: 1024,
            max_known: 10_000,
            interval_ms: 24 * 3600 * 1000,
            rate_per_s: 2,
            max_in_flight: 4,
        }
    }
}

/// What [`Queue::offer`] did with a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Queued or probed within the interval already.
    Recent,
    /// Outside the allowlist, or denied: never contacted.
    OutOfScope,
    /// The pending queue was full: dropped (counted).
    Full,
}

/// Counters of the queue at work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued: u64,
    pub recent: u64,
    pub out_of_scope: u64,
    pub dropped_full: u64,
    /// Remembered targets forgotten to stay within `max_known` (they may be probed again
    /// before their interval is over).
    pub forgotten: u64,
    pub started: u64,
}

pub struct Queue {
    cfg: QueueConfig,
    scope: Scope,
    pending: VecDeque<Target>,
    /// Target → when it was last queued (ms).
    known: HashMap<Target, u64>,
    /// Whether a probe may start now (a bucket of one token, so probes are paced 1/rate s
    /// apart and no one-second window holds more than `rate_per_s`), and when it was filled.
    tokens: u32,
    filled_ms: Option<u64>,
    in_flight: usize,
    pub stats: QueueStats,
}

impl Queue {
    pub fn new(cfg: QueueConfig, scope: Scope) -> Queue {
        let cfg = QueueConfig { rate_per_s: cfg.rate_per_s.max(1), max_in_flight: cfg.max_in_flight.max(1), ..cfg };
        Queue {
            cfg,
            scope,
            pending: VecDeque::new(),
            known: HashMap::new(),
            tokens: 0,
            filled_ms: None,
            in_flight: 0,
            stats: QueueStats::default(),
        }
    }

    /// A server the pipeline saw without certificate facts: queue it unless it is out of
    /// scope, was queued within the interval, or the queue is full.
    pub fn offer(&mut self, t: Target, now_ms: u64) -> Offer {
        let offer = self.offer_inner(t, now_ms);
        match offer {
            Offer::Queued => self.stats.queued += 1,
            Offer::Recent => self.stats.recent += 1,
            Offer::OutOfScope => self.stats.out_of_scope += 1,
            Offer::Full => self.stats.dropped_full += 1,
        }
        offer
    }

    fn offer_inner(&mut self, t: Target, now_ms: u64) -> Offer {
        if !self.scope.permits(t.ip, t.port) {
            return Offer::OutOfScope;
        }
        if let Some(&at) = self.known.get(&t) {
            if now_ms.saturating_sub(at) < self.cfg.interval_ms {
                return Offer::Recent;
            }
        }
        if self.pending.len() >= self.cfg.max_pending {
            return Offer::Full;
        }
        if !self.known.contains_key(&t) && self.known.len() >= self.cfg.max_known {
            self.forget_oldest();
        }
        self.known.insert(t.clone(), now_ms);
        self.pending.push_back(t);
        Offer::Queued
    }

    /// Forget the least recently queued eighth of the remembered targets (not those pending).
    fn forget_oldest(&mut self) {
        let mut ages: Vec<(u64, Target)> =
            self.known.iter().filter(|(t, _)| !self.pending.contains(t)).map(|(t, at)| (*at, t.clone())).collect();
        ages.sort_unstable_by_key(|(at, _)| *at);
        let n = (self.known.len() / 8).max(1);
        for (_, t) in ages.into_iter().take(n) {
            self.known.remove(&t);
            self.stats.forgotten += 1;
        }
    }

    /// The next target to probe now, if the rate and the concurrency cap allow one; the caller
    /// reports its end with [`Queue::finished`].
    pub fn next(&mut self, now_ms: u64) -> Option<Target> {
        if self.pending.is_empty() || self.in_flight >= self.cfg.max_in_flight {
            return None;
        }
        self.refill(now_ms);
        if self.tokens == 0 {
            return None;
        }
        let t = self.pending.pop_front()?;
        self.tokens -= 1;
        self.in_flight += 1;
        self.stats.started += 1;
        Some(t)
    }

    /// One token per 1/rate s since the last fill, holding at most one.
    fn refill(&mut self, now_ms: u64) {
        let rate = u64::from(self.cfg.rate_per_s);
        let Some(filled) = self.filled_ms else {
            self.filled_ms = Some(now_ms);
            self.tokens = 1;
            return;
        };
        let new = now_ms.saturating_sub(filled).saturating_mul(rate) / 1000;
        if new > 0 {
            self.tokens = 1;
            // Keep the remainder while catching up; an idle bucket restarts from now.
            self.filled_ms = Some(if new == 1 { filled + 1000 / rate } else { now_ms });
        }
    }

    /// A probe handed out by [`Queue::next`] ended (done, failed or timed out).
    pub fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::scope::Rule;

    fn scope() -> Scope {
        Scope::new(vec![Rule::parse("10.0.0.0/8:443").unwrap()], vec![Rule::parse("10.9.0.0/16").unwrap()]).unwrap()
    }

    fn target(last: u8, sni: &str) -> Target {
        Target { ip: IpAddr::from([10, 0, 0, last]), port: 443, sni: Some(sni.into()), why: "test" }
    }

    #[test]
    fn each_target_once_per_interval_and_only_in_scope() {
        let cfg = QueueConfig { interval_ms: 60_000, ..Default::default() };
        let mut q = Queue::new(cfg, scope());
        assert_eq!(q.offer(target(1, "a.lab"), 0), Offer::Queued);
        assert_eq!(q.offer(target(1, "a.lab"), 59_999), Offer::Recent);
        assert_eq!(q.offer(target(1, "b.lab"), 1), Offer::Queued, "another SNI is another target");
        let outside = Target { ip: IpAddr::from([192, 0, 2, 1]), port: 443, sni: None, why: "test" };
        assert_eq!(q.offer(outside, 2), Offer::OutOfScope);
        let denied = Target { ip: IpAddr::from([10, 9, 0, 1]), port: 443, sni: None, why: "test" };
        assert_eq!(q.offer(denied, 2), Offer::OutOfScope);
        assert_eq!(q.next(3), Some(target(1, "a.lab")));
        assert_eq!(q.offer(target(1, "a.lab"), 60_000), Offer::Queued, "due again after the interval");
        let s = q.stats;
        assert_eq!((s.queued, s.recent, s.out_of_scope, s.started), (3, 1, 2, 1));
    }

    #[test]
    fn rate_and_concurrency_hold_under_200_queued_servers() {
        let cfg = QueueConfig { rate_per_s: 2, max_in_flight: 3, ..Default::default() };
        let mut q = Queue::new(cfg, scope());
        for i in 0..200u32 {
            let t = Target { ip: IpAddr::from([10, 1, (i >> 8) as u8, i as u8]), port: 443, sni: None, why: "test" };
            assert_eq!(q.offer(t, 0), Offer::Queued);
        }
        // Ten simulated seconds in 10 ms steps; every probe takes 700 ms.
        let mut started: Vec<u64> = Vec::new();
        let mut running: Vec<u64> = Vec::new();
        for now in (0..10_000u64).step_by(10) {
            running.retain(|&end| {
                let over = end <= now;
                if over {
                    q.finished();
                }
                !over
            });
            while let Some(_t) = q.next(now) {
                started.push(now);
                running.push(now + 700);
                assert!(q.in_flight() <= 3, "concurrency cap");
            }
        }
        // At most 2 in any one-second window and 2/s overall: one every 500 ms.
        for (i, &t) in started.iter().enumerate() {
            let in_window = started[i..].iter().take_while(|&&u| u < t + 1000).count();
            assert!(in_window <= 2, "{in_window} probes within 1 s of {t} ms: {started:?}");
        }
        assert_eq!(started.len(), 20, "{started:?}");
        assert_eq!(q.pending(), 200 - started.len());
    }

    #[test]
    fn bounds_drop_and_count() {
        let cfg = QueueConfig { max_pending: 4, max_known: 8, ..Default::default() };
        let mut q = Queue::new(cfg, scope());
        for i in 0..6 {
            q.offer(target(i, "x"), 0);
        }
        assert_eq!((q.pending(), q.stats.dropped_full), (4, 2));
        // Drain the queue (the rate allows 2 per second), then offer more than max_known.
        let mut now = 0;
        while q.pending() > 0 {
            if q.next(now).is_some() {
                q.finished();
            }
            now += 100;
        }
        for i in 10..20 {
            q.offer(target(i, "y"), now + u64::from(i));
            if q.next(now + 10_000 * u64::from(i)).is_some() {
                q.finished();
            }
        }
        assert!(q.known.len() <= 8, "{}", q.known.len());
        assert!(q.stats.forgotten > 0);
    }
}
