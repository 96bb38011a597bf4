//! Sink, what the agent publishes while it runs: the metrics and the posture inventory, shared
//! between the pipeline thread (which counts) and the HTTP endpoint's thread (which serves
//! /metrics, /inventory and /healthz). Holds nothing the JSON events do not already carry.
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::serve::{Provider, ServeStats};
use crate::sink::alertmanager::AlertStats;
use crate::sink::inventory::Inventory;
use crate::sink::metrics::{Metrics, Mode};
use crate::sink::period::Period;
use crate::sink::report::{self, ReportFormat};

/// Seconds without a turn of the live loop after which /healthz answers 503.
pub const STALL_SECS: i64 = 10;

pub struct Published {
    pub metrics: Metrics,
    inventory: Mutex<Inventory>,
    /// Capture names for the inventory document's title (replay); empty in live.
    captures: Vec<String>,
    mode: Mode,
    /// Unix seconds of the live loop's last turn.
    last_turn: AtomicI64,
    finished: AtomicBool,
    /// The HTTP endpoint's counters, once it is up.
    pub http: OnceLock<Arc<ServeStats>>,
    /// The Alertmanager sink's counters, when there is one.
    pub alerts: OnceLock<Arc<AlertStats>>,
    /// The period report's model, fed every event, when `--report html` asked for it.
    period: Mutex<Option<Period>>,
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Published {
    pub fn new(mode: Mode, inventory: Inventory, captures: Vec<String>) -> Published {
        Published {
            metrics: Metrics::new(mode),
            inventory: Mutex::new(inventory),
            captures,
            mode,
            last_turn: AtomicI64::new(now_s()),
            finished: AtomicBool::new(false),
            http: OnceLock::new(),
            alerts: OnceLock::new(),
            period: Mutex::new(None),
        }
    }

    /// The inventory, for adding to it (pipeline thread) or rendering it. A panic while it
    /// was held cannot leave it half-updated in a way that matters: take it anyway.
    pub fn inventory(&self) -> MutexGuard<'_, Inventory> {
        self.inventory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start feeding every output to a period report (`--report html`).
    pub fn start_period(&self, period: Period) {
        *self.period.lock().unwrap_or_else(|p| p.into_inner()) = Some(period);
    }

    /// Fold one output into the period report, when there is one.
    pub fn period_add(&self, o: &crate::observation::Output) {
        if let Some(p) = self.period.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            p.add_output(o);
        }
    }

    /// The period report, taken at the end of the run.
    pub fn take_period(&self) -> Option<Period> {
        self.period.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// What the run could not inspect so far, for /inventory and the report.
    pub fn set_losses(&self, losses: Vec<crate::observation::Loss>) {
        self.inventory().losses = losses;
    }

    /// The live loop turned (called about once a second).
    pub fn turned(&self) {
        self.last_turn.store(now_s(), Ordering::Relaxed);
    }

    /// The run's work is over (replay: every file replayed and every flow judged).
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    /// Bring the gauges that are read from elsewhere up to date: inventory, endpoint, alerts.
    pub fn refresh(&self) {
        self.metrics.inventory(&self.inventory());
        if let Some(h) = self.http.get() {
            self.metrics.http(h.requests());
        }
        if let Some(a) = self.alerts.get() {
            self.metrics.alerts(a.sent(), a.post_errors(), a.dropped(), a.active());
        }
    }

    /// The metrics text, refreshed first.
    pub fn metrics_text(&self) -> String {
        self.refresh();
        self.metrics.encode()
    }
}

impl Provider for Published {
    fn metrics(&self) -> String {
        self.metrics_text()
    }

    fn inventory(&self) -> String {
        report::render(ReportFormat::Json, &self.inventory(), &self.captures)
    }

    fn health(&self) -> Result<String, String> {
        let finished = self.finished.load(Ordering::Relaxed);
        match self.mode {
            Mode::Replay if finished => Ok("ok: replay finished\n".into()),
            Mode::Replay => Ok("ok: replaying\n".into()),
            Mode::Live if finished => Err("stopping: live capture ended\n".into()),
            Mode::Live => {
                let idle = now_s() - self.last_turn.load(Ordering::Relaxed);
                if idle > STALL_SECS {
                    Err(format!("stalled: the capture loop has not turned for {idle} s\n"))
                } else {
                    Ok("ok: capturing\n".into())
                }
            }
        }
    }
}
