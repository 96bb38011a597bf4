//! Sink, Alertmanager: the poster thread — owns the HTTP client, merges queued batches, posts
//! them to API v2 with retries and backoff until `finish`'s deadline. Must never be waited on by
//! the pipeline (it only ever `try_send`s to it) and never lose a count: every alert it gives up
//! is added to the dropped total.
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::alert::Alert;
use super::AlertStats;

/// Attempts per batch before it is dropped (backoff 0.5 s doubling, capped at 30 s).
const MAX_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What `finish` tells the worker: post what is left by then.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) deadline: Mutex<Option<Instant>>,
}

impl Shared {
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker: owns the HTTP client, merges queued batches, retries with backoff.
pub(super) struct Poster {
    url: String,
    agent: ureq::Agent,
    stats: Arc<AlertStats>,
    shared: Arc<Shared>,
}

impl Poster {
    pub(super) fn new(url: String, stats: Arc<AlertStats>, shared: Arc<Shared>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Poster { url, agent, stats, shared }
    }

    pub(super) fn run(self, rx: Receiver<Vec<Alert>>) {
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
    use super::super::alert::{alert, rfc3339};
    use super::super::Entry;
    use super::*;
    use crate::observation::Endpoint;
    use std::time::SystemTime;

    #[test]
    fn merge_keeps_the_latest_state_per_key() {
        let s = |port| Endpoint { port, ..Default::default() };
        let now = SystemTime::now();
        let r = Duration::from_secs(60);
        let mut batch = vec![alert(s(1), "tls.compression", &Entry::sample(), now, false, r)];
        batch.push(alert(s(2), "tls.compression", &Entry::sample(), now, false, r));
        merge(
            &mut batch,
            vec![
                alert(s(1), "tls.compression", &Entry::sample(), now, true, r),
                alert(s(3), "tls.compression", &Entry::sample(), now, false, r),
            ],
        );
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0].ends_at, rfc3339(now), "the resolution replaced the firing state");
    }
}
