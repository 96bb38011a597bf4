//! Emitter: where judged flows go, for replay and live alike — JSON lines, the text summary or
//! nothing on stdout; the audit log, Alertmanager, the metrics and the posture inventory.
//! Must never stop the run over one bad write: it remembers the first error of each output and
//! tells the run loop to stop (stdout closed, audit log failing).
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use monitor::attribution::Attributor;
use monitor::cli::Format;
use monitor::observation::Output;
use monitor::policy::Severity;
use monitor::probe::{ProbeStats, Prober};
use monitor::run::Sink;
use monitor::sink::alertmanager::Alerter;
use monitor::sink::audit::{self, AuditLog};
use monitor::sink::json::{self, Style};
use monitor::sink::published::Published;
use monitor::sink::summary::Summary;

/// How long the Alertmanager sink may take at exit to post what is queued.
const ALERT_FINISH: Duration = Duration::from_secs(5);

/// Where judged handshakes go, for replay and live alike: JSON lines, the text summary, or
/// nowhere; every event to the audit log when there is one, and to Alertmanager when asked;
/// every one into the metrics and the posture inventory (for --report, /metrics, /inventory).
/// Remembers the worst severity (for --fail-on) and the first write error of each.
pub struct Emitter<W: Write> {
    format: Format,
    out: W,
    /// Flush after every JSON line (live: whoever reads the pipe sees events as they happen).
    flush_each: bool,
    pub summary: Summary,
    worst: Option<Severity>,
    write_err: Option<std::io::Error>,
    audit: Option<AuditLog>,
    audit_err: Option<audit::AuditError>,
    published: Arc<Published>,
    pub alerter: Option<Alerter>,
    /// The opt-in prober: offered every judged handshake, its results written like the rest.
    pub prober: Option<Prober>,
    /// The prober's counters when it stopped.
    probe_final: Option<ProbeStats>,
    /// Live: names the processes of each output's local sockets before anything is written.
    pub attributor: Option<Attributor>,
    /// How events are written (schema, observer), on stdout and in the audit log.
    pub style: Style,
    /// One JSON line at a time, rendered here and written at once (reused; its capacity is
    /// the largest line written so far).
    line: Vec<u8>,
}

impl<W: Write> Emitter<W> {
    pub fn new(format: Format, out: W, flush_each: bool, audit: Option<AuditLog>, published: Arc<Published>) -> Self {
        let summary = Summary::default();
        let (worst, write_err, audit_err, alerter) = (None, None, None, None);
        let (prober, probe_final) = (None, None);
        Emitter {
            format,
            out,
            flush_each,
            summary,
            worst,
            write_err,
            audit,
            audit_err,
            published,
            alerter,
            prober,
            probe_final,
            attributor: None,
            style: Style::default(),
            line: Vec::new(),
        }
    }

    /// Write `o` everywhere it goes; `line` is its JSON line when already rendered in
    /// [`Self::style`] (by a replay worker).
    fn write(&mut self, o: Output, line: Option<Vec<u8>>) {
        if let Some(p) = &self.prober {
            // The capture's view of the prober's own connections is not traffic (counted).
            if p.is_own(&o) {
                return;
            }
            p.consider(&o);
        }
        // Accepted risks do not fail a run (--fail-on); expired exceptions do not accept.
        self.worst = self.worst.max(o.findings.iter().filter(|f| !f.is_accepted()).map(|f| f.severity).max());
        self.published.metrics.observe(&o);
        self.published.inventory().add(&o);
        self.published.period_add(&o);
        if let Some(a) = &mut self.alerter {
            a.observe(&o);
        }
        if let (Some(log), None) = (&mut self.audit, &self.audit_err) {
            self.audit_err = log.append(&json::any_event(&o, &self.style)).err();
        }
        match self.format {
            Format::Json => {
                if self.write_err.is_some() {
                    return;
                }
                let r = match &line {
                    Some(l) => Ok(l),
                    None => {
                        self.line.clear();
                        json::write_line(&o, &self.style, &mut self.line).map(|_| &self.line)
                    }
                };
                let out = &mut self.out;
                let r = r.map_err(std::io::Error::from).and_then(|l| out.write_all(l)).and_then(|_| {
                    if self.flush_each {
                        out.flush()
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = r {
                    self.write_err = Some(e);
                }
            }
            Format::Text => self.summary.add(&o),
            Format::None => {}
        }
    }

    /// Fsync the audit log if its interval has passed, and let the Alertmanager sink resend or
    /// resolve (call about once a second).
    pub fn periodic(&mut self) {
        self.probe_results();
        if let Some(a) = &mut self.alerter {
            a.tick();
        }
        if let (Some(log), None) = (&mut self.audit, &self.audit_err) {
            self.audit_err = log.sync_if_due().err();
            self.checkpoint_metric();
        }
    }

    /// The latest audit checkpoint into the metrics.
    fn checkpoint_metric(&self) {
        if let Some((seq, at)) = self.audit.as_ref().and_then(AuditLog::signed) {
            self.published.metrics.audit_checkpoint(seq, at);
        }
    }

    /// Write what the prober has finished since the last call.
    pub fn probe_results(&mut self) {
        for o in self.prober.as_ref().map(Prober::results).unwrap_or_default() {
            self.write(o, None);
        }
    }

    /// Stop the prober (probes still running are abandoned) and write what it finished.
    pub fn stop_prober(&mut self) {
        self.probe_results();
        if let Some(p) = self.prober.take() {
            self.probe_final = Some(p.stop());
        }
    }

    /// The prober's counters (running or stopped), when there is a prober.
    pub fn probe_stats(&self) -> Option<ProbeStats> {
        self.prober.as_ref().map(Prober::stats).or(self.probe_final)
    }

    /// Write `tail` (the text report), flush, and return the worst severity seen. Output
    /// closed by the reader (broken pipe) is not an error.
    pub fn close(mut self, tail: Option<String>) -> Result<Option<Severity>> {
        self.stop_prober();
        if let Some(e) = self.audit_err.take() {
            return Err(e).context("writing the audit log");
        }
        if let Some(log) = &mut self.audit {
            log.seal().context("signing the audit log's exit checkpoint")?;
        }
        self.checkpoint_metric();
        if let Some(log) = self.audit.take() {
            log.close().context("closing the audit log")?;
        }
        if let Some(a) = self.alerter.take() {
            a.finish(ALERT_FINISH);
        }
        let mut r = match tail {
            Some(t) => self.out.write_all(t.as_bytes()),
            None => Ok(()),
        };
        r = r.and_then(|_| self.out.flush());
        if let Some(e) = self.write_err.take().or(r.err()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).context("writing output");
            }
        }
        Ok(self.worst)
    }
}

impl<W: Write> Sink for Emitter<W> {
    fn emit(&mut self, o: Output) {
        self.emit_line(o, None);
    }

    fn emit_line(&mut self, mut o: Output, mut line: Option<Vec<u8>>) {
        if let Some(a) = &mut self.attributor {
            a.enrich(&mut o);
            // The line was rendered before the local ends were named.
            line = None;
        }
        self.write(o, line);
    }

    /// A capture file that failed: everything before it is written first, then the error.
    fn failed(&mut self, message: &str) {
        self.out.flush().ok();
        eprintln!("tlsmon: error: {message}");
    }

    fn broken(&self) -> Option<&'static str> {
        if self.write_err.is_some() {
            Some("standard output closed")
        } else if self.audit_err.is_some() {
            Some("audit log write failed")
        } else {
            None
        }
    }
}
